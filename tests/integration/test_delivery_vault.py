"""Secrets to workloads, against real servers: the External Secrets Operator's and cert-manager's logins
and permissions, and a real Vault Agent configured from the exported pod annotations, over TLS.

Every call is made as the operator (or the injected agent) makes it, from the manifests and annotations
the stack renders: the store's role, mount path and audiences; each namespace's Issuer's role, path and the
audiences cert-manager puts on its token; the agent config the injector derives from the annotations.
Only the Kubernetes API is a stand-in (fake_kube answers TokenReview as the API server would).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import pathlib
from typing import Any

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from components.model import PlatformConfig, load_config
from components.render import delivery
from components.render import vault_objects as vs
from components.render.cert_manager import VaultIssuer
from components.render.external_secrets import ExternalSecretsDelivery
from tests.harness import load_stack_file, stack_config
from tests.integration import injected_agent, servers
from tests.integration.fake_kubernetes import FakeKubernetes
from tests.integration.vault_apply import apply, retarget_connection

# Applications beside the stack file's myapp (default namespace, delivery both): another namespace
# with two External Secrets applications, and one that uses only the injector.
EXTRA_APPS = [
    {"name": "billing", "namespace": "payments", "serviceAccount": "billing", "delivery": "externalSecrets",
     "secrets": [{"name": "config", "path": "payments/billing/config", "keys": {"STRIPE_KEY": "stripe_key"}}]},
    {"name": "ledger", "namespace": "payments", "serviceAccount": "ledger", "delivery": "externalSecrets",
     "kv": [{"path": "secret/data/shared/ledger/*", "access": "read"}],
     "secrets": [{"name": "ledger", "path": "shared/ledger/db", "keys": {"LEDGER_DSN": "dsn"}}]},
    {"name": "web", "namespace": "frontend", "serviceAccount": "web", "delivery": "injector",
     "secrets": [{"name": "session", "path": "frontend/web/session", "keys": {"SESSION_KEY": "key"}}]},
]


def load(stack: str, overrides: dict | None = None) -> PlatformConfig:
    config, secret_keys = stack_config(stack, overrides)
    return load_config(config, set(secret_keys))


def with_extra_apps(stack: str = "prod") -> PlatformConfig:
    apps = load_stack_file(stack)[0]["vault-platform:applications"]
    return load(stack, {"applications": apps + EXTRA_APPS})


def fresh(vault: servers.VaultProcess) -> servers.VaultProcess:
    """A dev server mounts KV v2 at secret/ by itself; our model mounts it, as in a cluster."""
    vault.api("DELETE", "sys/mounts/secret")
    return vault


def write_delivered_secrets(vault: servers.VaultProcess, config: PlatformConfig) -> dict[str, dict[str, str]]:
    """Each delivered secret, written by root with a value naming its application: KV path -> data."""
    written = {}
    for app in config.applications:
        for secret in app.secrets:
            data = {prop: f"{app.name}:{prop}" for prop in secret.keys.values()}
            vault.api("POST", f"{config.kv.path}/data/{secret.path}", json={"data": data})
            written[secret.path] = data
    return written


def eso_read_path(store: dict[str, Any], key: str) -> str:
    """The API path the operator's Vault provider reads ``remoteRef.key`` from (providers/v1/vault
    buildPath, KV v2 with the store's path set)."""
    mount = store["path"]
    assert store["version"] == "v2"
    rest = key.removeprefix(mount + "/").removeprefix("data/") if key.startswith(mount + "/") else key
    return f"{mount}/data/{rest}"


def login(vault: servers.VaultProcess, mount_path: str, role: str, jwt: str, expect=(200,)) -> dict:
    """POST <mount>/login as the operators do (mount_path with or without /v1/auth/)."""
    path = mount_path.removeprefix("/v1/").removeprefix("auth/").strip("/")
    return servers.api("POST", vault.api_addr, f"auth/{path}/login", json={"role": role, "jwt": jwt},
                       ca=vault.ca_cert, expect=expect)


# --- the External Secrets Operator ------------------------------------------------------------------

def test_each_store_reads_its_namespaces_secrets_and_nothing_else(dev_vault, fake_kube):
    config = with_extra_apps()
    settings = vs.build(config)
    apply(settings, fresh(dev_vault).api, only={"mounts", "kv", "auth", "policies", "roles"},
          kubernetes_config=fake_kube.auth_config())
    written = write_delivered_secrets(dev_vault, config)
    eso = ExternalSecretsDelivery.of(config)
    assert eso.namespaces == ["default", "payments"]
    all_paths = {f"{config.kv.path}/data/{path}" for path in written}

    for namespace in eso.namespaces:
        store = eso.secret_store(namespace, "unused")["spec"]["provider"]["vault"]
        auth = store["auth"]["kubernetes"]
        account = auth["serviceAccountRef"]
        # The operator requests a token for the store's service account with exactly these audiences.
        jwt = fake_kube.token(namespace, account["name"], audiences=account["audiences"])
        token = login(dev_vault, auth["mountPath"], auth["role"], jwt)["auth"]["client_token"]

        readable = set()
        for external_secret in eso.external_secrets[namespace]:
            for item in external_secret["spec"]["data"]:
                path = eso_read_path(store, item["remoteRef"]["key"])
                data = servers.api("GET", dev_vault.api_addr, path, token=token)["data"]["data"]
                assert data[item["remoteRef"]["property"]] == written[item["remoteRef"]["key"]][
                    item["remoteRef"]["property"]]
                readable.add(path)
        # Every other application's secrets, including those of injector-only applications: refused.
        for path in sorted(all_paths - readable):
            servers.api("GET", dev_vault.api_addr, path, token=token, expect=(403,))
        assert readable and readable < all_paths
        # Nothing beyond reading exactly those secrets: no listing, no metadata, no writes, no sys.
        some = sorted(readable)[0]
        servers.api("LIST", dev_vault.api_addr, f"{config.kv.path}/metadata/", token=token, expect=(403,))
        servers.api("GET", dev_vault.api_addr, some.replace("/data/", "/metadata/", 1), token=token, expect=(403,))
        servers.api("POST", dev_vault.api_addr, some, token=token, json={"data": {"x": "y"}}, expect=(403,))
        servers.api("GET", dev_vault.api_addr, "sys/mounts", token=token, expect=(403,))

    # The payments store reads both payments applications' secrets: the stack's own list of them.
    store = eso.secret_store("payments", "unused")["spec"]["provider"]["vault"]
    keys = [i["remoteRef"]["key"] for es in eso.external_secrets["payments"] for i in es["spec"]["data"]]
    assert sorted(keys) == ["payments/billing/config", "shared/ledger/db"]
    assert store["auth"]["kubernetes"]["role"] == "external-secrets-payments"


def test_store_roles_accept_only_their_own_service_account_and_audience(dev_vault, fake_kube):
    config = with_extra_apps()
    settings = vs.build(config)
    apply(settings, dev_vault.api, only={"auth", "policies", "roles"}, kubernetes_config=fake_kube.auth_config())
    path = settings.kubernetes_auth.path
    aud = ["vault"]
    login(dev_vault, path, "external-secrets-payments", fake_kube.token("payments", "vault-kv", audiences=aud))
    refused = [
        ("external-secrets-payments", fake_kube.token("default", "vault-kv", audiences=aud)),   # another namespace
        ("external-secrets-payments", fake_kube.token("payments", "billing", audiences=aud)),   # the app's own SA
        ("external-secrets-payments", fake_kube.token("payments", "vault-kv")),                 # API server audience
        ("external-secrets-default", fake_kube.token("payments", "vault-kv", audiences=aud)),   # another store's role
        ("external-secrets-payments", fake_kube.token("external-secrets", "external-secrets", audiences=aud)),
    ]
    for role, jwt in refused:
        login(dev_vault, path, role, jwt, expect=(400, 403))
    stored = dev_vault.api("GET", f"auth/{path}/role/external-secrets-payments")["data"]
    assert stored["bound_service_account_names"] == ["vault-kv"]
    assert stored["bound_service_account_namespaces"] == ["payments"]
    assert stored["token_policies"] == ["external-secrets-payments"]
    assert stored["token_ttl"] == vs.SERVICE_TOKEN_TTL_SECONDS


# --- cert-manager -----------------------------------------------------------------------------------

def _csr(common_name: str, dns_names: list[str], ip_addresses: list[str] = ()) -> str:
    # cert-manager's default key (RSA 2048), which the PKI roles require.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sans = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .add_extension(x509.SubjectAlternativeName(sans), critical=False)
               .sign(key, hashes.SHA256()))
    return request.public_bytes(serialization.Encoding.PEM).decode()


def _sign_as_cert_manager(vault: servers.VaultProcess, issuer: dict[str, Any], token: str, common_name: str,
                          dns_names: list[str], expect=(200,)) -> dict:
    """POST /v1/<spec.vault.path> with the parameters cert-manager's Vault issuer sends (Sign)."""
    body = {"common_name": common_name, "alt_names": ",".join(dns_names), "ip_sans": "", "uri_sans": "",
            "ttl": "2160h0m0s", "csr": _csr(common_name, dns_names), "exclude_cn_from_sans": "true"}
    return servers.api("POST", vault.api_addr, "/v1/" + issuer["path"], token=token, json=body, expect=expect)


# A second namespace with an Issuer of its own, beside the stack file's (default).
PAYMENTS_ISSUER = {
    "pki": {"roles": [{"name": "internal-certs", "namespace": "default",
                       "allowedDomains": ["myapp.internal.example.com"], "maxTtl": "72h"},
                      {"name": "payments-certs", "namespace": "payments", "maxTtl": "72h"}]},
    "certManager": {"issuers": [{"namespace": "default", "pkiRole": "internal-certs"},
                                {"namespace": "payments", "pkiRole": "payments-certs"}]},
}


def _cert_manager_login(vault: servers.VaultProcess, fake_kube: FakeKubernetes, config: PlatformConfig,
                        namespace: str) -> tuple[dict[str, Any], str]:
    """The Issuer of one namespace, and the Vault token cert-manager gets for it."""
    issuers = VaultIssuer.of(config)
    spec = issuers.issuer(namespace, "unused")["spec"]["vault"]
    auth = spec["auth"]["kubernetes"]
    # cert-manager (v1.21) requests the token for the Issuer's service account, in the Issuer's
    # namespace, with the Issuer's own audience and the server's address.
    jwt = fake_kube.token(namespace, auth["serviceAccountRef"]["name"],
                          audiences=[f"vault://{namespace}/{issuers.name}", spec["server"]])
    return spec, login(vault, auth["mountPath"], auth["role"], jwt)["auth"]["client_token"]


def test_each_namespaces_issuer_signs_only_that_namespaces_names(dev_vault, fake_kube):
    config = load("prod", PAYMENTS_ISSUER)
    assert config.cert_manager.enabled and config.pki.intermediate.enabled
    settings = vs.build(config)
    apply(settings, fresh(dev_vault).api, only={"mounts", "pki", "auth", "policies", "roles"},
          kubernetes_config=fake_kube.auth_config())
    spec, token = _cert_manager_login(dev_vault, fake_kube, config, "default")

    names = ["web.default.svc", "web.default.svc.cluster.local", "myapp.internal.example.com"]
    signed = _sign_as_cert_manager(dev_vault, spec, token, names[0], names)
    cert = x509.load_pem_x509_certificate(signed["data"]["certificate"].encode())
    sans = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
    issuer_cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert issuer_cn == config.pki.intermediate.common_name
    # The role's max TTL caps what cert-manager asks for (90 days).
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= dt.timedelta(hours=72, minutes=1)

    # Another namespace's Services, names nobody gave this namespace, addresses and localhost are refused.
    for common_name in ("web.payments.svc", "web.payments.svc.cluster.local", "api.svc.cluster.local",
                        "svc.cluster.local", "default.svc", "web.example.com", "localhost"):
        _sign_as_cert_manager(dev_vault, spec, token, common_name, [common_name], expect=(400,))
    # An address, as cert-manager sends one: in the CSR and in ip_sans.
    body = {"common_name": names[0], "ip_sans": "10.0.0.1", "csr": _csr(names[0], [names[0]], ["10.0.0.1"])}
    servers.api("POST", dev_vault.api_addr, "/v1/" + spec["path"], token=token, json=body, expect=(400,))
    issuing = settings.pki.issuing.mount.path
    for method, path in [("POST", f"{issuing}/issue/internal-certs"), ("POST", f"{issuing}/roles/internal-certs"),
                         ("POST", f"{issuing}/sign/payments-certs"),
                         ("POST", f"{settings.pki.root.mount.path}/root/sign-intermediate"),
                         ("POST", f"{issuing}/revoke"), ("GET", "sys/mounts")]:
        servers.api(method, dev_vault.api_addr, path, token=token, json={"common_name": "web.default.svc"},
                    expect=(403,))

    # The payments Issuer signs its own Services and nothing of default's.
    spec, token = _cert_manager_login(dev_vault, fake_kube, config, "payments")
    _sign_as_cert_manager(dev_vault, spec, token, "ledger.payments.svc", ["ledger.payments.svc"])
    for common_name in ("web.default.svc", "myapp.internal.example.com"):
        _sign_as_cert_manager(dev_vault, spec, token, common_name, [common_name], expect=(400,))


def test_an_application_issues_only_its_own_namespaces_names(dev_vault, fake_kube):
    """applications[].pkiRole is a role bound to the application's namespace: its issue grant is as
    narrow as its namespace's Issuer."""
    config = load("prod")
    settings = vs.build(config)
    apply(settings, fresh(dev_vault).api, only={"mounts", "pki", "auth", "policies", "roles"},
          kubernetes_config=fake_kube.auth_config())
    (app,) = config.applications
    role = next(r for r in settings.kubernetes_roles if r.name == app.name)
    jwt = fake_kube.token(app.namespace, app.service_account, audiences=[role.audience])
    token = login(dev_vault, settings.kubernetes_auth.path, role.name, jwt)["auth"]["client_token"]
    issue = f"{settings.pki.issuing.mount.path}/issue/{app.pki_role}"
    issued = servers.api("POST", dev_vault.api_addr, issue, token=token, json={"common_name": "myapp.default.svc"})
    assert issued["data"]["certificate"]
    for common_name in ("myapp.payments.svc", "vault.vault.svc", "api.svc.cluster.local"):
        servers.api("POST", dev_vault.api_addr, issue, token=token, json={"common_name": common_name},
                    expect=(400,))


def test_cert_manager_role_refuses_tokens_minted_for_anything_else(dev_vault, fake_kube):
    config = load("prod")
    settings = vs.build(config)
    apply(settings, dev_vault.api, only={"auth", "policies", "roles"}, kubernetes_config=fake_kube.auth_config())
    auth = VaultIssuer.of(config).issuer("default", "unused")["spec"]["vault"]["auth"]["kubernetes"]
    role, account = auth["role"], auth["serviceAccountRef"]["name"]
    login(dev_vault, auth["mountPath"], role, fake_kube.token("default", account, audiences=["vault://default/vault-pki"]))
    for jwt in [fake_kube.token("default", account, audiences=["vault"]),           # an application's audience
                fake_kube.token("default", account, audiences=["vault://vault-pki"]),  # a ClusterIssuer's
                fake_kube.token("default", account, audiences=["vault://payments/vault-pki"]),
                fake_kube.token("default", "default", audiences=["vault://default/vault-pki"]),
                fake_kube.token("payments", account, audiences=["vault://default/vault-pki"])]:
        login(dev_vault, auth["mountPath"], role, jwt, expect=(400, 403))


# --- the injected agent -----------------------------------------------------------------------------

# Values a shell would mangle unless the template quotes them.
TRICKY = {"database_url": "postgresql://app:p@ss w0rd@db.internal:5432/app?sslmode=require",
          "api_key": "it's $HOME `id` \"quoted\" \\ end"}


def _configure_over_tls(node: servers.VaultProcess, fake_kube: FakeKubernetes, postgres,
                        config: PlatformConfig) -> vs.VaultObjects:
    node.init_and_unseal()
    settings = vs.build(config)
    assert settings.database is not None
    (conn,) = settings.database.connections
    here = retarget_connection(conn, host=postgres.host, port=postgres.port, dbname=postgres.dbname,
                               username=postgres.user)
    settings = dataclasses.replace(settings, database=dataclasses.replace(settings.database, connections=(here,)))
    apply(settings, node.api, only={"mounts", "kv", "database", "auth", "policies", "roles"},
          passwords={conn.name: postgres.password}, kubernetes_config=fake_kube.auth_config())
    return settings


def _agent_for(config: PlatformConfig, app_name: str, fake_kube: FakeKubernetes, root: pathlib.Path,
               ca_pem: str, address: str) -> tuple[dict[str, Any], injected_agent.AgentPod, dict[str, Any]]:
    app = next(a for a in config.applications if a.name == app_name)
    exported = delivery.application_export(config, app)
    annotations, volumes = exported["podAnnotations"], exported["podVolumes"]
    token_file, audience = injected_agent.token_volume(annotations, volumes)
    # The kubelet writes a token for the pod's service account, minted for the volume's audience.
    jwt = fake_kube.token(app.namespace, app.service_account, audiences=[audience])
    pod = injected_agent.prepare(root, ca_pem, jwt, token_file)
    return injected_agent.agent_config(annotations, volumes, pod, address=address), pod, exported


def test_injected_agent_renders_the_exported_templates_over_tls(vault_bin, tls_raft_node, fake_kube, postgres,
                                                                  workdir):
    node, tls = tls_raft_node
    config = load("prod")
    _configure_over_tls(node, fake_kube, postgres, config)
    node.api("POST", f"{config.kv.path}/data/myapp/config", json={"data": TRICKY})

    agent_config, pod, exported = _agent_for(config, "myapp", fake_kube, workdir / "pod",
                                             pathlib.Path(tls.ca_cert).read_text(), node.api_addr)
    # The agent verifies Vault with the CA from the tls-secret mount, and nothing else.
    assert agent_config["vault"]["ca_cert"] == str(pod.tls / "ca.crt")
    run = injected_agent.run_agent(vault_bin, agent_config, pod, timeout=60)
    assert run.returncode == 0, run.log[-3000:]

    assert exported["secretFiles"] == {"config": "/vault/secrets/config", "db": "/vault/secrets/db"}
    rendered = (pod.secrets / "config").read_text()
    lines = rendered.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["export DATABASE_URL", "export API_KEY"]
    assert lines[0] == f"export DATABASE_URL='{TRICKY['database_url']}'"
    # Sourcing the file gives the application the exact values, whatever characters they hold.
    assert injected_agent.source(pod.secrets / "config", ["DATABASE_URL", "API_KEY"]) == {
        "DATABASE_URL": TRICKY["database_url"], "API_KEY": TRICKY["api_key"]}

    database = (pod.secrets / "db").read_text().splitlines()
    assert [line.split("=", 1)[0] for line in database] == ["export PGUSER", "export PGPASSWORD"]
    creds = injected_agent.source(pod.secrets / "db", ["PGUSER", "PGPASSWORD"])
    assert creds["PGUSER"].startswith("v-") and len(creds["PGPASSWORD"]) >= 20
    with psycopg.connect(host=postgres.host, port=postgres.port, dbname=postgres.dbname, user=creds["PGUSER"],
                         password=creds["PGPASSWORD"], connect_timeout=5) as session:
        assert session.execute("SELECT current_user").fetchone() == (creds["PGUSER"],)


def test_injected_agent_refuses_a_vault_it_cannot_verify(vault_bin, tls_raft_node, fake_kube, postgres, workdir):
    node, _ = tls_raft_node
    config = load("prod")
    _configure_over_tls(node, fake_kube, postgres, config)
    node.api("POST", f"{config.kv.path}/data/myapp/config", json={"data": TRICKY})
    other_ca = servers.make_test_ca(workdir / "other-ca", "not the stack's CA")
    agent_config, pod, _ = _agent_for(config, "myapp", fake_kube, workdir / "pod",
                                      pathlib.Path(other_ca.cert_path).read_text(), node.api_addr)
    # The init container would retry forever (the pod stays in Init); 10 seconds is plenty to see it fail.
    run = injected_agent.run_agent(vault_bin, agent_config, pod, timeout=10)
    assert run.returncode != 0
    assert "x509: certificate signed by unknown authority" in run.log, run.log[-2000:]
    assert list(pod.secrets.iterdir()) == []


def test_a_missing_property_stops_the_agent_instead_of_rendering_nothing(vault_bin, tls_raft_node, fake_kube,
                                                                          postgres, workdir):
    node, tls = tls_raft_node
    config = load("prod")
    _configure_over_tls(node, fake_kube, postgres, config)
    node.api("POST", f"{config.kv.path}/data/myapp/config", json={"data": {"database_url": "x"}})  # no api_key
    agent_config, pod, _ = _agent_for(config, "myapp", fake_kube, workdir / "pod",
                                      pathlib.Path(tls.ca_cert).read_text(), node.api_addr)
    run = injected_agent.run_agent(vault_bin, agent_config, pod, timeout=90)
    assert run.returncode not in (0, None), run.log[-2000:]
    assert "map has no entry for key" in run.log and "api_key" in run.log, run.log[-2000:]
    assert not (pod.secrets / "config").exists()
