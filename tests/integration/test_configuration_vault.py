"""The Vault configuration model against a real Vault server (dev mode) and a real PostgreSQL.

Everything written here comes from ``components.vault_settings`` through ``vault_apply``: the same
mounts, statements, roles and policies the VaultConfiguration component declares. Only what cannot
exist outside a cluster is replaced: the Kubernetes API (a small fake that answers TokenReview, so
logins through the real ``kubernetes`` auth method work), the database address, and audit file paths.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import pathlib
import time
import uuid
from typing import Any

import psycopg
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID
from psycopg import sql

from components.model import PlatformConfig, load_config
from components.render import policies as pol
from components.render import vault_objects as vs
from tests.harness import load_stack_file, stack_config
from tests.integration import servers
from tests.integration.fake_kubernetes import FakeKubernetes
from tests.integration.vault_apply import apply, connection_payload, retarget_connection

# --- helpers -------------------------------------------------------------------------------------

EXTRA_APPS = [
    # Needs an app policy: a KV path outside its own folder, and database credentials.
    {"name": "billing", "namespace": "payments", "serviceAccount": "billing",
     "kv": [{"path": "secret/data/billing/*", "access": "read"}], "databaseRole": "myapp-db"},
    # Only its own folder: the templated policy is all it gets.
    {"name": "web", "namespace": "frontend", "serviceAccount": "web",
     "kv": [{"path": "secret/data/frontend/web/*", "access": "read"}]},
    # Same namespace as billing, another service account: neither may read the other's folder.
    # It writes its own folder (an explicit choice); the others only read theirs.
    {"name": "billing-worker", "namespace": "payments", "serviceAccount": "billing-worker", "ownFolder": "write"},
]


def load(stack: str, overrides: dict | None = None) -> PlatformConfig:
    config, secret_keys = stack_config(stack, overrides)
    return load_config(config, set(secret_keys))


def with_extra_apps(stack: str) -> PlatformConfig:
    """The stack file's applications plus two more, so "cannot read another's" means something."""
    apps = load_stack_file(stack)[0]["vault-platform:applications"]
    return load(stack, {"applications": apps + EXTRA_APPS})


def fresh(vault: servers.VaultProcess) -> servers.VaultProcess:
    """A dev server mounts KV v2 at secret/ by itself; remove it so our model mounts it, as in a cluster."""
    vault.api("DELETE", "sys/mounts/secret")
    assert "secret/" not in vault.api("GET", "sys/mounts")["data"]
    return vault


def outside_a_pod(fake: FakeKubernetes) -> dict[str, Any]:
    return fake.auth_config()


def login(vault: servers.VaultProcess, path: str, role: str, jwt: str, expect=(200,)) -> dict:
    return servers.api("POST", vault.api_addr, f"auth/{path}/login", json={"role": role, "jwt": jwt}, expect=expect)


def capabilities(vault: servers.VaultProcess, token: str, paths: list[str]) -> dict[str, list[str]]:
    answer = servers.api("POST", vault.api_addr, "sys/capabilities-self", token=token, json={"paths": paths})
    return {p: sorted(answer[p]) for p in paths}


def probe(path: str) -> str:
    """A concrete path a policy path pattern matches."""
    return path[:-1] + "probe" if path.endswith("*") else path.replace("+", "probe")


# --- policies and Kubernetes logins --------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_policies_roles_and_capabilities_matrix(stack, dev_vault, fake_kube):
    config = with_extra_apps(stack)
    settings = vs.build(config)
    apply(settings, fresh(dev_vault).api, only={"mounts", "kv", "auth", "policies", "roles"},
          kubernetes_config=outside_a_pod(fake_kube))
    auth_path = settings.kubernetes_auth.path
    accessor = dev_vault.api("GET", "sys/auth")["data"][f"{auth_path}/"]["accessor"]

    # Every rendered policy is stored exactly as rendered.
    for policy in settings.all_policies(accessor):
        stored = dev_vault.api("GET", f"sys/policies/acl/{policy.name}")["data"]["policy"]
        assert stored == pol.render(policy)

    kv = config.kv.path
    tokens: dict[str, str] = {}
    for app in config.applications:
        role = next(r for r in settings.kubernetes_roles if r.name == app.name)
        answer = login(dev_vault, auth_path, app.name,
                       fake_kube.token(app.namespace, app.service_account, audiences=[role.audience]))
        assert sorted(answer["auth"]["token_policies"]) == sorted([*role.token_policies, "default"])
        assert answer["auth"]["lease_duration"] == role.token_ttl_seconds
        assert answer["auth"]["metadata"]["service_account_namespace"] == app.namespace
        tokens[app.name] = answer["auth"]["client_token"]
        # Each application gets a secret in its own folder, written by root.
        dev_vault.api("POST", f"{kv}/data/{app.namespace}/{app.service_account}/config",
                      json={"data": {"owner": app.name}})

    forbidden_sys = ["sys/mounts", "sys/mounts/secret", "sys/policies/acl/admin", "sys/auth/kubernetes",
                     "sys/audit", "sys/storage/raft/snapshot", "sys/seal", f"auth/{auth_path}/role/myapp"]
    for app in config.applications:
        token = tokens[app.name]
        own = f"{kv}/data/{app.namespace}/{app.service_account}/config"
        data, metadata = pol.OWN_FOLDER[app.own_folder]
        expected: dict[str, list[str]] = {own: sorted(data),
                                          f"{kv}/metadata/{app.namespace}/{app.service_account}/x": sorted(metadata)}
        policy = pol.app_policy(config, app)
        for rule in policy.rules if policy else ():
            expected[probe(rule.path)] = sorted(rule.capabilities)
        for other in config.applications:
            if other.name != app.name:
                expected[f"{kv}/data/{other.namespace}/{other.service_account}/config"] = ["deny"]
        for path in forbidden_sys:
            expected[path] = ["deny"]
        assert capabilities(dev_vault, token, sorted(expected)) == {p: expected[p] for p in sorted(expected)}, app.name

        # And the real requests agree: its own secret reads, another application's does not.
        stored = servers.api("GET", dev_vault.api_addr, own, token=token)["data"]["data"]
        assert stored == {"owner": app.name}
        write = servers.api("POST", dev_vault.api_addr, own, token=token, json={"data": {"owner": "me"}},
                            expect=(200, 204, 403))
        assert ("data" in write) == (app.own_folder == "write"), app.name
        # Nobody destroys the history of its own secret.
        servers.api("DELETE", dev_vault.api_addr, f"{kv}/metadata/{app.namespace}/{app.service_account}/config",
                    token=token, expect=(403,))
        for other in config.applications:
            if other.name != app.name:
                servers.api("GET", dev_vault.api_addr,
                            f"{kv}/data/{other.namespace}/{other.service_account}/config", token=token, expect=(403,))
        servers.api("GET", dev_vault.api_addr, "sys/mounts", token=token, expect=(403,))


def test_roles_accept_exactly_their_namespace_and_service_account(dev_vault, fake_kube):
    settings = vs.build(with_extra_apps("prod"))
    apply(settings, dev_vault.api, only={"auth", "roles"}, kubernetes_config=outside_a_pod(fake_kube))
    path = settings.kubernetes_auth.path
    vault_aud = ["vault"]
    answer = login(dev_vault, path, "myapp", fake_kube.token("default", "myapp", audiences=vault_aud))["auth"]
    assert answer["client_token"]
    refused = [
        ("myapp", fake_kube.token("default", "other-sa", audiences=vault_aud)),    # wrong service account
        ("myapp", fake_kube.token("payments", "myapp", audiences=vault_aud)),      # right name, wrong namespace
        ("billing", fake_kube.token("default", "myapp", audiences=vault_aud)),     # another application's role
        ("myapp", fake_kube.token("default", "myapp", audiences=vault_aud, register=False)),  # never issued
        ("myapp", fake_kube.token("default", "myapp")),                # the pod's default token: another audience
        ("myapp", fake_kube.token("default", "myapp", audiences=["some-other-service"])),
    ]
    for role, jwt in refused:
        login(dev_vault, path, role, jwt, expect=(400, 403))
    tune = dev_vault.api("GET", f"sys/auth/{path}/tune")["data"]
    assert tune["default_lease_ttl"] == settings.kubernetes_auth.default_lease_ttl_seconds
    stored = dev_vault.api("GET", f"auth/{path}/role/billing")["data"]
    assert stored["bound_service_account_names"] == ["billing"]
    assert stored["bound_service_account_namespaces"] == ["payments"]
    assert stored["audience"] == "vault" and stored["token_max_ttl"] == 24 * 3600
    # The token cannot be renewed past the role's maximum.
    assert answer["lease_duration"] <= stored["token_max_ttl"]


def test_kv_engine_settings_are_applied(dev_vault):
    # (Without the applications: their grants and delivered secrets name the secret/ mount.)
    settings = vs.build(load("dev", {"kv": {"path": "apps", "maxVersions": 3, "casRequired": True},
                                     "applications": None, "externalSecrets": None}))
    apply(settings, fresh(dev_vault).api, only={"mounts", "kv", "kv_secrets"})
    mount = dev_vault.api("GET", "sys/mounts")["data"]["apps/"]
    assert mount["type"] == "kv" and mount["options"]["version"] == "2"
    config = dev_vault.api("GET", "apps/config")["data"]
    assert config["max_versions"] == 3 and config["cas_required"] is True
    # cas_required: a write without check-and-set is refused; the initial secrets went in with cas=0.
    dev_vault.api("POST", "apps/data/x", json={"data": {"a": "1"}}, expect=(400,))
    (secret,) = settings.kv_secrets
    assert secret.cas == 0
    meta = dev_vault.api("GET", f"apps/metadata/{secret.name}")["data"]
    assert meta["current_version"] == 1 and meta["max_versions"] == 0  # the mount's 3 applies
    # Applying again does not overwrite a value rotated in Vault meanwhile: cas=0 means "only if absent".
    dev_vault.api("POST", f"apps/data/{secret.name}", json={"data": {"api_key": "rotated"}, "options": {"cas": 1}})
    with pytest.raises(servers.VaultAPIError, match="check-and-set parameter did not match"):
        apply(settings, dev_vault.api, only={"kv_secrets"})
    assert dev_vault.api("GET", f"apps/data/{secret.name}")["data"]["data"] == {"api_key": "rotated"}


def test_initial_kv_secrets_are_written_once_without_cas_required(dev_vault):
    settings = vs.build(load("dev"))  # prod seeds no secret from its config
    assert settings.kv.cas_required is False
    apply(settings, fresh(dev_vault).api, only={"mounts", "kv", "kv_secrets"})
    (secret,) = settings.kv_secrets
    stored = dev_vault.api("GET", f"{secret.mount}/data/{secret.name}")["data"]["data"]
    assert stored == {k: v.reveal() for k, v in secret.data.items()}
    # A team rotates the value; writing the initial secret again must not undo that.
    dev_vault.api("POST", f"{secret.mount}/data/{secret.name}", json={"data": {"api_key": "rotated"}})
    with pytest.raises(servers.VaultAPIError, match="check-and-set parameter did not match"):
        apply(settings, dev_vault.api, only={"kv_secrets"})
    assert dev_vault.api("GET", f"{secret.mount}/data/{secret.name}")["data"]["data"] == {"api_key": "rotated"}


# --- database ------------------------------------------------------------------------------------

def _pg_connect(postgres, user: str, password: str) -> psycopg.Connection:
    return psycopg.connect(host=postgres.host, port=postgres.port, dbname=postgres.dbname, user=user,
                           password=password, connect_timeout=5)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_dynamic_database_credentials_are_created_and_revoked(stack, flavor, dev_vault, postgres):
    settings = vs.build(load(stack))
    assert settings.database is not None
    (conn,) = settings.database.connections
    here = retarget_connection(conn, host=postgres.host, port=postgres.port, dbname=postgres.dbname,
                               username=postgres.user)
    assert here.connection_url.startswith("postgresql://{{username}}:{{password}}@")
    settings = dataclasses.replace(settings, database=dataclasses.replace(settings.database, connections=(here,)))
    table = sql.Identifier(f"probe_{stack}_{uuid.uuid4().hex[:8]}")
    with _pg_connect(postgres, postgres.user, postgres.password) as admin:
        admin.execute(sql.SQL("CREATE TABLE public.{} (id int)").format(table))  # existing tables get the GRANT
        admin.execute(sql.SQL("INSERT INTO public.{} VALUES (42)").format(table))

    apply(settings, fresh(dev_vault).api, only={"mounts", "database"}, passwords={conn.name: postgres.password})
    stored = dev_vault.api("GET", f"{settings.database.mount.path}/config/{conn.name}")["data"]
    assert stored["plugin_name"] == "postgresql-database-plugin" and stored["allowed_roles"] == list(conn.allowed_roles)
    details = stored["connection_details"]
    assert details["connection_url"] == here.connection_url and details["username"] == postgres.user
    assert details["password_authentication"] == conn.password_authentication
    assert details["max_open_connections"] == conn.max_open_connections
    if flavor == "vault":
        assert stored["verify_connection"] is conn.verify_connection
    else:
        # OpenBao 2.7 does not return verify_connection when the connection is read back.
        assert "verify_connection" not in stored
    # verify_connection is on in the model: a wrong admin password is refused at write time.
    assert conn.verify_connection
    dev_vault.api("POST", f"{settings.database.mount.path}/config/{conn.name}-wrong-password",
                  json=connection_payload(here, "not-the-password"), expect=(400, 500))
    assert postgres.password not in json.dumps(stored)  # Vault never reads the admin password back

    role = settings.database.roles[0]
    creds = dev_vault.api("GET", f"{settings.database.mount.path}/creds/{role.name}")
    assert creds["lease_duration"] == role.default_ttl_seconds
    user, password = creds["data"]["username"], creds["data"]["password"]
    with _pg_connect(postgres, user, password) as session:
        assert session.execute("SELECT current_user").fetchone() == (user,)
        assert session.execute(sql.SQL("SELECT id FROM public.{}").format(table)).fetchone() == (42,)
        held = _pg_connect(postgres, user, password)  # still connected while the lease is revoked
    try:
        dev_vault.api("PUT", "sys/leases/revoke", json={"lease_id": creds["lease_id"]})
        # The revocation statements end the user's sessions and drop the role.
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1").fetchone()
    finally:
        held.close()
    with pytest.raises(psycopg.OperationalError, match=r"password authentication failed|does not exist"):
        _pg_connect(postgres, user, password).close()
    with _pg_connect(postgres, postgres.user, postgres.password) as admin:
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (user,)).fetchone() == (0,)
        admin.execute(sql.SQL("DROP TABLE public.{}").format(table))


def test_a_connection_refuses_roles_it_does_not_allow(dev_vault, postgres):
    settings = vs.build(load("prod"))
    assert settings.database is not None
    (conn,) = settings.database.connections
    here = dataclasses.replace(retarget_connection(conn, host=postgres.host, port=postgres.port,
                                                   dbname=postgres.dbname, username=postgres.user), allowed_roles=())
    settings = dataclasses.replace(settings, database=dataclasses.replace(settings.database, connections=(here,)))
    apply(settings, fresh(dev_vault).api, only={"mounts", "database"}, passwords={conn.name: postgres.password})
    dev_vault.api("GET", f"{settings.database.mount.path}/creds/{settings.database.roles[0].name}", expect=(400, 500))


# --- PKI -----------------------------------------------------------------------------------------

def _cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def _cn(name: x509.Name) -> str:
    return name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value  # type: ignore[return-value]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pki_issues_allowed_names_only(stack, dev_vault):
    settings = vs.build(load(stack))
    assert settings.pki is not None
    apply(settings, fresh(dev_vault).api, only={"mounts", "pki"})
    issuing = settings.pki.issuing
    role = settings.pki.roles[0]
    # Both stacks' role is bound to the namespace "default": it signs that namespace's Service names.
    issued = dev_vault.api("POST", f"{role.backend}/issue/{role.name}",
                           json={"common_name": "api.default.svc.cluster.local"})
    leaf = _cert(issued["data"]["certificate"])
    assert _cn(leaf.subject) == "api.default.svc.cluster.local"
    assert _cn(leaf.issuer) == issuing.common_name
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime <= dt.timedelta(seconds=role.ttl_seconds + 120)
    aia = leaf.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    assert [d.access_location.value for d in aia] == list(issuing.issuing_certificates)
    crl = leaf.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert [n.value for p in crl for n in p.full_name] == list(issuing.crl_distribution_points)

    # The chain verifies up to our root.
    root = _cert(dev_vault.api("GET", f"{settings.pki.root.mount.path}/cert/ca")["data"]["certificate"])
    assert _cn(root.subject) == settings.pki.root.common_name
    issuer_cert = _cert(issued["data"]["issuing_ca"])
    leaf.verify_directly_issued_by(issuer_cert)
    if settings.pki.intermediate is not None:
        issuer_cert.verify_directly_issued_by(root)
        assert _cn(issuer_cert.subject) == settings.pki.intermediate.common_name
    else:
        assert issuer_cert == root

    # Longer than the role allows: capped to max_ttl.
    capped = _cert(dev_vault.api("POST", f"{role.backend}/issue/{role.name}",
                                 json={"common_name": "db.default.svc", "ttl": "1000h"})["data"]["certificate"])
    assert capped.not_valid_after_utc - capped.not_valid_before_utc <= dt.timedelta(seconds=role.max_ttl_seconds + 120)

    for refused in ("example.com", "internal", "api.svc.cluster.local", "api.other.svc.cluster.local",
                    "api.default.svc.cluster.local.evil.com"):
        error = dev_vault.api("POST", f"{role.backend}/issue/{role.name}", json={"common_name": refused},
                              expect=(400,))
        assert error["errors"] and "not allowed" in error["errors"][0], refused


def test_pki_mount_lease_matches_the_ca_lifetime(dev_vault):
    settings = vs.build(load("prod"))
    apply(settings, fresh(dev_vault).api, only={"mounts"})
    assert settings.pki is not None and settings.pki.intermediate is not None
    for ca in (settings.pki.root, settings.pki.intermediate):
        tune = dev_vault.api("GET", f"sys/mounts/{ca.mount.path}/tune")["data"]
        assert tune["max_lease_ttl"] == ca.ttl_seconds


def test_transit_keys_encrypt_and_decrypt(dev_vault):
    settings = vs.build(load("prod"))
    apply(settings, fresh(dev_vault).api, only={"mounts", "transit"})
    assert settings.transit is not None
    for key in settings.transit.keys:
        info = dev_vault.api("GET", f"{settings.transit.mount.path}/keys/{key.name}")["data"]
        assert info["type"] == key.type and info["deletion_allowed"] is False
        plaintext = base64.b64encode(b"hello").decode()
        sealed = dev_vault.api("POST", f"{settings.transit.mount.path}/encrypt/{key.name}",
                               json={"plaintext": plaintext})["data"]["ciphertext"]
        opened = dev_vault.api("POST", f"{settings.transit.mount.path}/decrypt/{key.name}",
                               json={"ciphertext": sealed})["data"]["plaintext"]
        assert opened == plaintext


# --- audit ---------------------------------------------------------------------------------------

def _wait_for_line(path, predicate, what: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 10):
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line[line.index("{"):]) if "{" in line else None
                except ValueError:
                    continue
                if isinstance(entry, dict) and predicate(entry):
                    return entry
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {what} in {path} after {timeout}s")


def test_both_audit_devices_enable_and_log(dev_vault, workdir):
    settings = vs.build(load("prod"))
    log_file = workdir / "audit" / "audit.log"
    log_file.parent.mkdir()
    devices = tuple(dataclasses.replace(d, options={"file_path": str(log_file)}) if d.path == "file" else d
                    for d in settings.audit_devices)
    assert [d.path for d in devices] == ["file", "stdout"]
    apply(dataclasses.replace(settings, audit_devices=devices), dev_vault.api, only={"audit"})

    listed = dev_vault.api("GET", "sys/audit")["data"]
    assert {k: (v["type"], v["options"]["file_path"]) for k, v in listed.items()} == {
        "file/": ("file", str(log_file)), "stdout/": ("file", "stdout")}

    dev_vault.api("GET", "sys/mounts")
    entry = _wait_for_line(log_file, lambda e: e.get("type") == "response"
                           and e.get("request", {}).get("path") == "sys/mounts", "sys/mounts response")
    # Tokens are HMAC'd in the log, never written in the clear.
    assert entry["auth"]["client_token"].startswith("hmac-sha256:")
    # The second device writes the same events to the server's stdout (the pod log in Kubernetes).
    _wait_for_line(dev_vault.log_path, lambda e: e.get("type") == "response"
                   and e.get("request", {}).get("path") == "sys/mounts", "stdout audit entry")


# --- tearing down a database connection with credentials outstanding ------------------------------

def _database_with_a_lease(dev_vault, postgres, mount: str):
    settings = vs.build(load("prod", {"database": {"path": mount}}))
    assert settings.database is not None
    (conn,) = settings.database.connections
    here = retarget_connection(conn, host=postgres.host, port=postgres.port, dbname=postgres.dbname,
                               username=postgres.user)
    settings = dataclasses.replace(settings, database=dataclasses.replace(settings.database, connections=(here,)))
    apply(settings, fresh(dev_vault).api, only={"mounts", "database"}, passwords={conn.name: postgres.password})
    role = settings.database.roles[0]
    creds = dev_vault.api("GET", f"{mount}/creds/{role.name}")
    return conn, role, creds


def _delete_in_destroy_order(dev_vault, mount: str, conn, role) -> dict:
    """What `pulumi destroy` does to the Vault objects: role, connection, then the mount."""
    dev_vault.api("DELETE", f"{mount}/roles/{role.name}")
    dev_vault.api("DELETE", f"{mount}/config/{conn.name}")
    return dev_vault.api("DELETE", f"sys/mounts/{mount}", expect=(200, 204, 400, 500))


def test_without_revoking_first_the_mount_cannot_be_removed(dev_vault, postgres):
    conn, role, _ = _database_with_a_lease(dev_vault, postgres, "database-unrevoked")
    answer = _delete_in_destroy_order(dev_vault, "database-unrevoked", conn, role)
    assert "database-unrevoked/" in dev_vault.api("GET", "sys/mounts")["data"], answer


def test_leases_are_revoked_before_the_connection_goes(dev_vault, postgres):
    from components.providers.database_leases import DatabaseLeasesProvider

    conn, role, creds = _database_with_a_lease(dev_vault, postgres, "database")
    user = creds["data"]["username"]
    props = {"address": dev_vault.api_addr, "ca_cert_pem": "", "token": servers.DEV_ROOT_TOKEN, "mount": "database",
             "connection": conn.name, "roles": [role.name]}
    provider = DatabaseLeasesProvider()
    provider.create(props)
    # A role leaving the connection: its credentials are revoked on that update.
    provider.update("database/config/app-postgres", props, {**props, "roles": []})
    with _pg_connect(postgres, postgres.user, postgres.password) as admin:
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (user,)).fetchone() == (0,)
    leases = dev_vault.api("LIST", f"sys/leases/lookup/database/creds/{role.name}", expect=(200, 404))
    assert not (leases.get("data") or {}).get("keys")

    # And on delete, for a connection with a fresh credential: then destroy's order succeeds.
    creds = dev_vault.api("GET", f"database/creds/{role.name}")
    provider.delete("database/config/app-postgres", props)
    _delete_in_destroy_order(dev_vault, "database", conn, role)
    assert "database/" not in dev_vault.api("GET", "sys/mounts")["data"]
    with _pg_connect(postgres, postgres.user, postgres.password) as admin:
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s",
                             (creds["data"]["username"],)).fetchone() == (0,)


# --- a database reached over TLS with the server's certificate verified -----------------------------

def test_a_connection_with_verify_full_checks_the_database_certificate(flavor, dev_vault, tls_postgres, workdir):
    postgres, tls = tls_postgres
    settings = vs.build(load("prod"))
    assert settings.database is not None
    (conn,) = settings.database.connections
    assert "sslmode=verify-full" in conn.connection_url and conn.tls_ca
    ca = pathlib.Path(tls.ca_cert).read_text()
    here = dataclasses.replace(retarget_connection(conn, host=postgres.host, port=postgres.port, dbname=postgres.dbname,
                                                   username=postgres.user, sslmode="verify-full"), tls_ca=ca)
    if flavor == "openbao":
        # OpenBao 2.7's PostgreSQL plugin ignores tls_ca (the certificate is checked against the
        # system roots); it takes the CA as a file named in the URL instead. The platform deploys
        # HashiCorp Vault, which takes tls_ca.
        here = dataclasses.replace(here, connection_url=here.connection_url + f"&sslrootcert={tls.ca_cert}")
    settings = dataclasses.replace(settings, database=dataclasses.replace(settings.database, connections=(here,)))
    apply(settings, fresh(dev_vault).api, only={"mounts", "database"}, passwords={conn.name: postgres.password})
    creds = dev_vault.api("GET", f"database/creds/{settings.database.roles[0].name}")["data"]
    with psycopg.connect(host=postgres.host, port=postgres.port, dbname=postgres.dbname, user=creds["username"],
                         password=creds["password"], sslmode="require", connect_timeout=5) as session:
        assert session.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
    # Another CA: the database's certificate does not verify, and the connection is refused.
    other = servers.make_test_ca(workdir / "other-ca", "some other CA")
    wrong = dataclasses.replace(here, name="wrong-ca", tls_ca=pathlib.Path(other.cert_path).read_text(),
                                connection_url=here.connection_url.replace(tls.ca_cert, other.cert_path))
    answer = dev_vault.api("POST", "database/config/wrong-ca", json=connection_payload(wrong, postgres.password),
                           expect=(400, 500))
    assert "certificate" in json.dumps(answer).lower() or "x509" in json.dumps(answer).lower(), answer
