"""Secrets to workloads under the mocks: the Agent Injector's webhook and per-application annotations, the
application namespaces, the External Secrets Operator and its stores, cert-manager's issuer. Every custom
resource is checked against the CRD's structural schema, every chart value path against the chart's own
list, every built-in object against the Kubernetes schema."""

from __future__ import annotations

import base64
import json
import re

import kubernetes_validate
import pytest
import yaml

from components.model.names import INJECTION_LABEL
from components.render import delivery
from components.render import vault_objects as vs
from components.render.durations import go_duration
from tests import facts
from tests.harness import CANARY, ROOT, canary_leaks, load_stack, run_stack

STACKS = ("dev", "prod")
CUSTOM = ("kubernetes:external-secrets.io/", "kubernetes:cert-manager.io/")
K8S_VERSION = "1.30"
MYAPP = {"name": "myapp", "namespace": "default", "serviceAccount": "myapp",
         "kv": [{"path": "secret/data/myapp/*", "access": "read"}], "databaseRole": "myapp-db",
         "secrets": [{"name": "config", "path": "myapp/config", "keys": {"DATABASE_URL": "database_url"}}]}
# One namespace per way of delivering, so "only where needed" means something.
APPS = [
    {**MYAPP, "delivery": "both", "createServiceAccount": True},
    {"name": "billing", "namespace": "payments", "serviceAccount": "billing", "delivery": "externalSecrets",
     "createNamespace": True, "createServiceAccount": True, "refreshInterval": "5m",
     "secrets": [{"name": "config", "path": "payments/billing/config", "keys": {"STRIPE_KEY": "stripe_key"}}]},
    {"name": "web", "namespace": "frontend", "serviceAccount": "web", "createNamespace": True,
     "secrets": [{"name": "session", "path": "frontend/web/session", "keys": {"SESSION_KEY": "key"}}]},
    {"name": "cli", "namespace": "tools", "serviceAccount": "cli", "delivery": "none"},
]


def custom_resources(rec):
    return [r for r in rec.resources if r.type.startswith(CUSTOM)]


def delivery_resources(rec):
    """The custom resources that deliver secrets (not the cert-manager objects of the stack's own TLS)."""
    pairs = {r.urn for r in rec.of_type("vault-platform:tls:CertificatePair")}
    return [r for r in custom_resources(rec) if r.parent not in pairs]


def manifest(r) -> dict:
    return {k: r.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec", "rules", "roleRef", "subjects",
                                     "type", "stringData") if k in r.inputs}


def b64decode(text: str) -> str:
    return base64.b64decode(text).decode()


# --- custom resources and built-in objects are valid for the API server ----------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_passes_its_crd_schema(stack):
    rec = run_stack(stack, {"certManager": {"enabled": True, "pkiRole": "internal-certs"}})
    assert sorted(r.type for r in delivery_resources(rec)) == [
        "kubernetes:cert-manager.io/v1:ClusterIssuer", "kubernetes:external-secrets.io/v1:ExternalSecret",
        "kubernetes:external-secrets.io/v1:SecretStore"]
    # Every one, the TLS objects prod asks cert-manager for included.
    for r in custom_resources(rec):
        assert facts.custom_resource_problems(manifest(r)) == [], r.name


def test_custom_resources_of_many_applications_pass_their_schemas():
    rec = run_stack("prod", {"applications": APPS})
    assert len(delivery_resources(rec)) == 1 + 2 + 2  # the issuer; a store and an ExternalSecret per namespace
    for r in custom_resources(rec):
        assert facts.custom_resource_problems(manifest(r)) == [], r.name


def test_the_schema_check_catches_what_the_api_server_would_prune_or_refuse():
    rec = run_stack("prod")
    store = manifest(rec.one("kubernetes:external-secrets.io/v1:SecretStore"))
    typo = json.loads(json.dumps(store))
    typo["spec"]["provider"]["vault"]["caBundel"] = typo["spec"]["provider"]["vault"].pop("caBundle")
    assert any("caBundel" in p for p in facts.custom_resource_problems(typo))
    bad_version = json.loads(json.dumps(store))
    bad_version["spec"]["provider"]["vault"]["version"] = "v3"
    assert any("v3" in p for p in facts.custom_resource_problems(bad_version))
    with pytest.raises(AssertionError, match="not served"):
        facts.custom_resource_problems({**store, "apiVersion": "external-secrets.io/v1beta1"})


@pytest.mark.parametrize("stack", STACKS)
def test_built_in_objects_pass_the_kubernetes_schema(stack):
    rec = run_stack(stack, {"applications": APPS})
    kinds = {"kubernetes:core/v1:ServiceAccount", "kubernetes:rbac.authorization.k8s.io/v1:Role",
             "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "kubernetes:core/v1:Namespace",
             "kubernetes:core/v1:Secret"}
    checked = 0
    for r in rec.resources:
        if r.type in kinds and r.parent and rec.by_urn(r.parent).type.startswith("vault-platform:delivery:"):
            kubernetes_validate.validate(manifest(r), K8S_VERSION, strict=True)
            checked += 1
    assert checked >= 10


# --- the Agent Injector -------------------------------------------------------------------------------

def release(rec):
    return rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release")


@pytest.mark.parametrize(("stack", "replicas", "policy"), [("dev", 1, "Ignore"), ("prod", 2, "Fail")])
def test_injector_webhook_serves_opted_in_namespaces_with_a_stack_made_certificate(stack, replicas, policy):
    rec = run_stack(stack)
    injector = release(rec).get("values.injector")
    assert injector["replicas"] == replicas
    assert injector["webhook"]["failurePolicy"] == policy
    assert injector["webhook"]["namespaceSelector"] == {"matchLabels": {INJECTION_LABEL: "enabled"}}
    assert ("podDisruptionBudget" in injector) is (replicas > 1)
    # The serving certificate comes from the stack (its own CA), not from the injector itself: made by
    # `pulumi up` in dev, by cert-manager in prod.
    assert injector["certs"]["secretName"] == "vault-injector-tls"
    assert injector["leaderElector"] == {"enabled": False}
    if stack == "dev":
        pair = rec.one("pulumi-python:dynamic/tls:LocalTls", "vault-cluster-injector-tls-pair-keys")
        assert b64decode(injector["certs"]["caBundle"]) == \
            "-----BEGIN CERTIFICATE-----\nfake-ca-" + pair.name + "\n-----END CERTIFICATE-----\n"
        assert "vault-agent-injector-svc.vault.svc" in pair.get("dns_names")
        assert pair.get("client_auth") is False and pair.get("early_renewal_hours") > 0
        secret = rec.one("kubernetes:core/v1:Secret", "vault-cluster-injector-tls-pair-secret")
        assert secret.get("metadata.name") == "vault-injector-tls" and secret.is_secret("stringData")
    else:
        cert = rec.one("kubernetes:cert-manager.io/v1:Certificate", "vault-cluster-injector-tls-pair-certificate")
        assert cert.get("spec.secretName") == "vault-injector-tls"
        assert "vault-agent-injector-svc.vault.svc" in cert.get("spec.dnsNames")
        assert "server auth" in cert.get("spec.usages") and "client auth" not in cert.get("spec.usages")
        assert b64decode(injector["certs"]["caBundle"]).startswith("-----BEGIN CERTIFICATE-----\nfake-cert-manager-ca")
    # Injected agents run the server's Vault and log in where the roles are.
    assert injector["agentImage"] == release(rec).get("values.server.image")
    assert injector["authPath"] == "auth/kubernetes"
    chart = facts.chart("vault", release(rec).get("version"))
    assert facts.unknown_paths(chart, facts.set_paths({"injector": injector})) == []
    assert facts.type_problems(chart, {"injector": injector}) == []


def test_no_injector_no_webhook_certificate():
    rec = run_stack("dev", {"cluster": {"injector": {"enabled": False, "replicas": None, "failurePolicy": None}},
                            "applications": [{**MYAPP, "delivery": "externalSecrets"}]})
    assert [r for r in rec.resources if "injector-tls" in r.name] == []
    assert "certs" not in release(rec).get("values.injector")


@pytest.mark.parametrize("stack", STACKS)
def test_each_application_exports_its_pod_annotations_and_volumes(stack):
    rec = run_stack(stack)
    config = load_stack(stack)
    out = rec.exports["applications"]["myapp"]
    assert "applications" not in rec.export_secret_paths
    annotations = out["podAnnotations"]
    assert annotations == delivery.agent_annotations(config, config.applications[0])
    assert annotations["vault.hashicorp.com/agent-inject"] == "true"
    assert annotations["vault.hashicorp.com/role"] == "myapp" == out["role"]
    assert annotations["vault.hashicorp.com/service"] == "https://vault-active.vault.svc:8200"
    # TLS: the CA from the Secret the injector mounts at /vault/tls.
    assert annotations["vault.hashicorp.com/tls-secret"] == "vault-ca"
    assert annotations["vault.hashicorp.com/ca-cert"] == "/vault/tls/ca.crt"
    # The projected token the role's audience needs, and the volume the pod must add for it.
    assert annotations["vault.hashicorp.com/agent-service-account-token-volume-name"] == "vault-token"
    (volume,) = out["podVolumes"]
    assert volume == {"name": "vault-token", "projected": {"sources": [{"serviceAccountToken": {
        "path": "token", "audience": "vault", "expirationSeconds": 3600}}]}}
    assert annotations["vault.hashicorp.com/agent-inject-secret-config"] == "secret/data/myapp/config"
    assert annotations["vault.hashicorp.com/agent-inject-secret-db"] == "database/creds/myapp-db"
    config_template = annotations["vault.hashicorp.com/agent-inject-template-config"]
    assert re.findall(r"^export (\w+)=", config_template, re.M) == ["DATABASE_URL", "API_KEY"]
    db_template = annotations["vault.hashicorp.com/agent-inject-template-db"]
    assert re.findall(r"^export (\w+)=", db_template, re.M) == ["PGUSER", "PGPASSWORD"]
    assert out["secretFiles"] == {"config": "/vault/secrets/config", "db": "/vault/secrets/db"}
    assert out["externalSecret"] == {"name": "myapp", "secretName": "myapp-secrets", "store": "vault-kv",
                                     "keys": ["API_KEY", "DATABASE_URL"]}
    # A pod spec with these volumes is a valid pod spec.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "annotations": annotations},
           "spec": {"serviceAccountName": out["serviceAccount"], "volumes": out["podVolumes"],
                    "containers": [{"name": "app", "image": "app:1"}]}}
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


def test_exports_follow_each_applications_delivery():
    rec = run_stack("prod", {"applications": APPS})
    apps = rec.exports["applications"]
    assert set(apps) == {"myapp", "billing", "web", "cli"}
    assert "podAnnotations" not in apps["billing"] and apps["billing"]["externalSecret"]["secretName"] == \
        "billing-secrets"
    assert "externalSecret" not in apps["web"] and "podAnnotations" in apps["web"]
    assert set(apps["cli"]) == {"namespace", "serviceAccount", "role", "delivery"}
    # An application with its own audience gets a token minted for it.
    rec = run_stack("prod", {"applications": [{**MYAPP, "audience": "https://kubernetes.default.svc"}],
                             "externalSecrets": None})
    (volume,) = rec.exports["applications"]["myapp"]["podVolumes"]
    assert volume["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "https://kubernetes.default.svc"


def test_without_an_audience_the_agent_uses_the_pods_own_token():
    rec = run_stack("dev", {"kubernetesAuth": {"audience": ""}})
    out = rec.exports["applications"]["myapp"]
    assert out["podVolumes"] == []
    assert "vault.hashicorp.com/agent-service-account-token-volume-name" not in out["podAnnotations"]


# --- application namespaces ---------------------------------------------------------------------------

def test_the_ca_and_the_injection_label_reach_exactly_the_injector_namespaces():
    rec = run_stack("prod", {"applications": APPS})
    ca_pem = rec.exports["caCertificate"]
    secrets = {r.get("metadata.namespace"): r for r in rec.of_type("kubernetes:core/v1:Secret")
               if r.get("metadata.name") == "vault-ca"}
    assert sorted(secrets) == ["default", "frontend"]
    for secret in secrets.values():
        assert secret.get("stringData") == {"ca.crt": ca_pem} and secret.get("type") == "Opaque"
    # Created namespaces carry the label; an existing one is labelled by a patch that owns only the label.
    namespaces = {r.get("metadata.name"): r for r in rec.of_type("kubernetes:core/v1:Namespace")
                  if r.get("metadata.name") != "vault"}
    assert sorted(namespaces) == ["frontend", "payments"]
    assert namespaces["frontend"].get("metadata.labels")[INJECTION_LABEL] == "enabled"
    assert INJECTION_LABEL not in namespaces["payments"].get("metadata.labels")
    assert all(ns.retain_on_delete for ns in namespaces.values())
    (patch,) = rec.of_type("kubernetes:core/v1:NamespacePatch")
    assert patch.get("metadata") == {"name": "default", "labels": {INJECTION_LABEL: "enabled"}}
    # Service accounts only where asked, after their namespace.
    accounts = {(r.get("metadata.namespace"), r.get("metadata.name")) for r in
                rec.of_type("kubernetes:core/v1:ServiceAccount") if r.name.startswith("vault-apps-")}
    assert accounts == {("default", "myapp"), ("payments", "billing")}
    billing = rec.one("kubernetes:core/v1:ServiceAccount", "vault-apps-payments-sa-billing")
    assert rec.depends_on(billing, namespaces["payments"])


def test_the_vault_pods_accept_every_namespace_that_delivers_secrets():
    rec = run_stack("prod", {"applications": APPS})
    policy = rec.one("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    allowed = policy.get("spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values")
    assert set(allowed) >= {"default", "payments", "frontend", "tools", "external-secrets", "cert-manager", "vault"}


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_secret_travels_outside_secrets(stack):
    rec = run_stack(stack, {"applications": APPS, "certManager": {"enabled": True, "pkiRole": "internal-certs"}})
    assert canary_leaks(rec) == []
    assert CANARY not in json.dumps(rec.exports["applications"])
    for r in rec.resources:
        if r.type.startswith("kubernetes:") and r.type != "kubernetes:core/v1:Secret":
            assert CANARY not in json.dumps(r.inputs), r.name
    # The only private key the delivery adds is the injector's serving key: in its TLS Secret in dev,
    # and in prod nowhere in the stack (cert-manager makes and keeps it in the cluster).
    secrets = {r.name: r for r in rec.of_type("kubernetes:core/v1:Secret")}
    if stack == "dev":
        key = secrets["vault-cluster-injector-tls-pair-secret"]
        assert CANARY in key.get("stringData")["tls.key"] and key.is_secret("stringData")
    else:
        assert not [n for n, r in secrets.items() if "tls.key" in (r.inputs.get("stringData") or {})]


# --- the External Secrets Operator --------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_the_operator_chart_is_pinned_and_its_values_are_known_to_it(stack):
    rec = run_stack(stack)
    eso = rec.one("kubernetes:helm.sh/v3:Release", "vault-external-secrets-release")
    assert (eso.get("chart"), eso.get("version"), eso.get("repositoryOpts.repo")) == (
        "external-secrets", "2.9.0", "https://charts.external-secrets.io")
    assert eso.get("namespace") == "external-secrets" and eso.get("createNamespace") is True
    chart = facts.chart("external-secrets", eso.get("version"))
    values = eso.get("values")
    assert facts.unknown_paths(chart, facts.set_paths(values)) == []
    assert facts.type_problems(chart, values) == []
    # No token for any service account in the cluster: each store's Role allows its own only.
    assert values["rbac"]["serviceAccountTokenCreate"] is False
    assert values["serviceAccount"] == {"create": True, "name": "external-secrets"}
    replicas = 2 if stack == "prod" else 1
    assert values["replicaCount"] == replicas and values["leaderElect"] is (replicas > 1)
    assert ("podDisruptionBudget" in values) is (replicas > 1)


def test_a_misspelled_operator_value_would_be_caught():
    chart = facts.chart("external-secrets", "2.9.0")
    assert facts.unknown_paths(chart, ["replicaCount", "replicas", "rbac.serviceAccountTokenCreat"]) == [
        "replicas", "rbac.serviceAccountTokenCreat"]
    assert facts.type_problems(chart, {"replicaCount": "2"}) == ["replicaCount: str '2' where the chart wants integer"]


def test_an_operator_already_installed_is_used_as_it_is():
    rec = run_stack("prod", {"externalSecrets": {"install": False, "namespace": "eso", "serviceAccount": "eso-ctl"}})
    assert [r.name for r in rec.of_type("kubernetes:helm.sh/v3:Release")] == ["vault-cluster-release"]
    binding = rec.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
                      "vault-external-secrets-default-rolebinding")
    assert binding.get("subjects") == [{"kind": "ServiceAccount", "name": "eso-ctl", "namespace": "eso"}]
    assert rec.one("kubernetes:external-secrets.io/v1:SecretStore")


def test_each_namespace_has_its_store_and_each_application_its_external_secret():
    rec = run_stack("prod", {"applications": APPS})
    stores = {r.get("metadata.namespace"): r for r in rec.of_type("kubernetes:external-secrets.io/v1:SecretStore")}
    assert sorted(stores) == ["default", "payments"]
    ca_pem = rec.exports["caCertificate"]
    for namespace, store in stores.items():
        vault = store.get("spec.provider.vault")
        assert vault["server"] == "https://vault-active.vault.svc:8200"
        assert (vault["path"], vault["version"]) == ("secret", "v2")
        assert b64decode(vault["caBundle"]) == ca_pem
        assert vault["auth"] == {"kubernetes": {"mountPath": "kubernetes", "role": f"external-secrets-{namespace}",
                                                "serviceAccountRef": {"name": "vault-kv", "audiences": ["vault"]}}}
        # Only the operator may request the store's tokens, for that one service account.
        role = rec.one("kubernetes:rbac.authorization.k8s.io/v1:Role", f"vault-external-secrets-{namespace}-role")
        assert role.get("rules") == [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                                      "resourceNames": ["vault-kv"], "verbs": ["create"]}]
        binding = rec.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
                          f"vault-external-secrets-{namespace}-rolebinding")
        assert binding.get("subjects") == [{"kind": "ServiceAccount", "name": "external-secrets",
                                            "namespace": "external-secrets"}]
        assert rec.depends_on(store, rec.one("kubernetes:helm.sh/v3:Release", "vault-external-secrets-release"))
        # ...and logs in through a role that exists by then.
        assert rec.depends_on(store, rec.one("vault:kubernetes/authBackendRole:AuthBackendRole",
                                             f"vault-config-role-external-secrets-{namespace}"))
    external = {r.get("metadata.name"): r for r in rec.of_type("kubernetes:external-secrets.io/v1:ExternalSecret")}
    assert sorted(external) == ["billing", "myapp"]
    billing = external["billing"].get("spec")
    assert billing == {"refreshInterval": "5m", "secretStoreRef": {"kind": "SecretStore", "name": "vault-kv"},
                       "target": {"name": "billing-secrets", "creationPolicy": "Owner"},
                       "data": [{"secretKey": "STRIPE_KEY",
                                 "remoteRef": {"key": "payments/billing/config", "property": "stripe_key"}}]}
    assert external["myapp"].get("spec.refreshInterval") == "1h"


def test_the_stores_vault_roles_read_exactly_the_delivered_secrets():
    config = load_stack("prod", {"applications": APPS})
    objects = vs.build(config)
    roles = {r.name: r for r in objects.service_roles}
    payments = roles["external-secrets-payments"]
    assert (payments.service_account, payments.namespace, payments.audience) == ("vault-kv", "payments", "vault")
    assert payments.token_policies == ("external-secrets-payments",)
    policies = {p.name: p for p in objects.policies}
    assert [(r.path, r.capabilities) for r in policies["external-secrets-payments"].rules] == [
        ("secret/data/payments/billing/config", ("read",))]
    assert [r.path for r in policies["external-secrets-default"].rules] == ["secret/data/myapp/config"]
    # No store for namespaces without External Secrets applications.
    assert "external-secrets-frontend" not in roles and "external-secrets-tools" not in roles


def test_no_operator_without_an_application_that_uses_it():
    # (The stack's settings for the operator would have no effect then: they go too.)
    injected = {"applications": [{**MYAPP, "delivery": "injector"}], "externalSecrets": None}
    rec = run_stack("prod", injected)
    assert [r for r in rec.resources if r.type.startswith("kubernetes:external-secrets.io/")] == []
    assert [r.name for r in rec.of_type("kubernetes:helm.sh/v3:Release")] == ["vault-cluster-release"]
    assert "external-secrets" not in {r.name for r in vs.build(load_stack("prod", injected)).service_roles}


@pytest.mark.parametrize(("value", "go"), [("1h", "1h"), ("90m", "90m"), ("1d", "24h"), ("45s", "45s"),
                                           ("1h30m", "90m")])
def test_refresh_intervals_are_written_as_go_durations(value, go):
    assert go_duration(value) == go


# --- cert-manager --------------------------------------------------------------------------------------

def test_cert_manager_issuer_signs_through_its_own_role():
    rec = run_stack("prod")
    issuer = rec.one("kubernetes:cert-manager.io/v1:ClusterIssuer")
    assert issuer.get("metadata.name") == "vault-pki" == rec.exports["certManagerIssuer"]
    vault = issuer.get("spec.vault")
    assert vault["server"] == "https://vault-active.vault.svc:8200"
    assert vault["path"] == "pki_int/sign/internal-certs"
    assert b64decode(vault["caBundle"]) == rec.exports["caCertificate"]
    assert vault["auth"] == {"kubernetes": {"mountPath": "/v1/auth/kubernetes", "role": "cert-manager-vault-pki",
                                            "serviceAccountRef": {"name": "vault-pki"}}}
    account = rec.one("kubernetes:core/v1:ServiceAccount", "vault-cert-manager-serviceaccount")
    assert account.get("metadata") == {"name": "vault-pki", "namespace": "cert-manager",
                                       "labels": account.get("metadata.labels")}
    role = rec.one("kubernetes:rbac.authorization.k8s.io/v1:Role", "vault-cert-manager-role")
    assert role.get("rules")[0]["resourceNames"] == ["vault-pki"]
    binding = rec.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "vault-cert-manager-rolebinding")
    assert binding.get("subjects") == [{"kind": "ServiceAccount", "name": "cert-manager", "namespace": "cert-manager"}]
    assert rec.depends_on(issuer, role) and rec.depends_on(issuer, binding)
    vault_role = rec.one("vault:kubernetes/authBackendRole:AuthBackendRole", "vault-config-role-cert-manager-vault-pki")
    assert vault_role.get("boundServiceAccountNames") == ["vault-pki"]
    assert vault_role.get("boundServiceAccountNamespaces") == ["cert-manager"]
    assert vault_role.get("audience") == "vault://vault-pki"
    assert vault_role.get("tokenPolicies") == ["cert-manager-vault-pki"]
    policy = rec.one("vault:index/policy:Policy", "vault-config-policy-cert-manager-vault-pki")
    assert re.findall(r'^path "([^"]+)"', policy.get("policy"), re.M) == ["pki_int/sign/internal-certs"]


def test_cert_manager_is_off_unless_asked():
    rec = run_stack("dev")
    assert rec.of_type("kubernetes:cert-manager.io/v1:ClusterIssuer") == []
    assert "certManagerIssuer" not in rec.exports


# --- the application teams' page ---------------------------------------------------------------------

PAGE = ROOT / "docs" / "delivering-secrets.md"


def _yaml_documents() -> list[dict]:
    found = []
    for block in re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), re.S):
        found += [d for d in yaml.safe_load_all(block) if isinstance(d, dict)]
    return found


def test_every_custom_resource_in_the_docs_passes_its_crd_schema():
    documents = [d for d in _yaml_documents() if d.get("apiVersion", "").startswith(("cert-manager.io/",
                                                                                      "external-secrets.io/"))]
    assert {d["kind"] for d in documents} >= {"Certificate", "ExternalSecret"}
    for document in documents:
        assert facts.custom_resource_problems(document) == [], document["kind"]
    certificate = next(d for d in documents if d["kind"] == "Certificate")
    assert certificate["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "vault-pki",
                                                "group": "cert-manager.io"}
    # A name the stack files' PKI role allows, and the key type it requires.
    role = load_stack("prod").pki.roles[0]
    assert all(any(n.endswith("." + d) for d in role.allowed_domains) for n in certificate["spec"]["dnsNames"])
    assert certificate["spec"]["privateKey"]["algorithm"] == "RSA"


def test_the_docs_show_the_pod_annotations_the_stack_exports():
    text = PAGE.read_text()
    annotations = run_stack("prod").exports["applications"]["myapp"]["podAnnotations"]
    for key in annotations:
        assert key in text, key
    assert (ROOT / "README.md").read_text().count("docs/delivering-secrets.md") >= 1
