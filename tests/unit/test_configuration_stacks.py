"""VaultConfiguration and DevPostgres under Pulumi mocks: the real program, both stack files."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from components.model import load_config
from components.render import policies as pol
from components.render import vault_objects as vs
from components.render.dev_postgres import IMAGE
from tests.harness import TEST_SECRETS, Recording, Resource, canary_leaks, run_stack, stack_config
from tests.harness.fakes import CANARY

COMPONENT = "vault-platform:configuration:VaultConfiguration"
DEV_POSTGRES = "vault-platform:devpostgres:DevPostgres"
BOOTSTRAP = "vault-platform:bootstrap:VaultBootstrap"
ACCESSOR = "auth_kubernetes_fake0001"  # what tests/harness/fakes.py answers for an AuthBackend
STACKS = ["dev", "prod"]


def vault_resources(rec: Recording) -> list[Resource]:
    return [r for r in rec.resources if r.type.startswith("vault:")]


def waits_for(rec: Recording, resource: Resource, component: Resource) -> bool:
    """``resource`` waits for ``component``: Pulumi records a dependency on a component as
    dependencies on the custom resources below it."""
    below = [r for r in rec.resources if component.urn in [a.urn for a in rec.ancestors(r)]]
    return any(rec.depends_on(resource, r) for r in [component, *below])


def by_input(rec: Recording, typ: str, key: str) -> dict[str, Resource]:
    return {r.inputs[key]: r for r in rec.of_type(typ)}


@pytest.mark.parametrize("stack", STACKS)
def test_every_vault_resource_uses_the_in_stack_provider_and_waits_for_bootstrap(stack):
    rec = run_stack(stack)
    component = rec.one(COMPONENT)
    bootstrap = rec.one(BOOTSTRAP)
    (provider,) = rec.of_type("pulumi:providers:vault")
    assert bootstrap.urn in [a.urn for a in rec.ancestors(provider)]
    everything = vault_resources(rec)
    ours = [r for r in everything if r.parent == component.urn]
    assert len(ours) >= 15
    for r in everything:
        where = f"{r.type}::{r.name}"
        owner = rec.provider_of(r)
        assert owner is not None and owner.urn == provider.urn, f"{where} uses {r.provider or 'the default provider'}"
        assert waits_for(rec, r, bootstrap), f"{where} does not wait for the bootstrap"


@pytest.mark.parametrize("stack", STACKS)
def test_configuration_children_are_all_vault_resources(stack):
    rec = run_stack(stack)
    component = rec.one(COMPONENT)
    assert component.parent == rec.one("vault-platform:index:VaultPlatform").urn
    children = [r for r in rec.resources if r.parent == component.urn]
    # Vault resources, and the dynamic resources that revoke a database connection's leases and
    # rotate its admin password.
    assert children and all(r.type.startswith("vault:") or r.name.startswith(("vault-config-db-leases-",
                                                                               "vault-config-db-rotate-root-"))
                            for r in children)
    # Every Vault object this component owns is named after it (unique URNs per stack).
    assert all(r.name.startswith("vault-config-") for r in children)


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_leaks(stack):
    assert canary_leaks(run_stack(stack)) == []


def test_dev_mounts():
    mounts = by_input(run_stack("dev"), "vault:index/mount:Mount", "path")
    assert {p: m.inputs["type"] for p, m in mounts.items()} == {"secret": "kv", "database": "database", "pki": "pki"}
    assert mounts["secret"].inputs["options"] == {"version": "2"}
    assert mounts["pki"].inputs["maxLeaseTtlSeconds"] == 87600 * 3600


def test_prod_mounts_and_engine_settings():
    rec = run_stack("prod")
    mounts = by_input(rec, "vault:index/mount:Mount", "path")
    assert {p: m.inputs["type"] for p, m in mounts.items()} == {
        "secret": "kv", "database": "database", "pki": "pki", "pki_int": "pki", "transit": "transit"}
    assert mounts["pki_int"].inputs["maxLeaseTtlSeconds"] == 43800 * 3600
    kv = rec.one("vault:kv/secretBackendV2:SecretBackendV2")
    assert (kv.inputs["mount"], kv.inputs["maxVersions"], kv.inputs["casRequired"]) == ("secret", 10, False)
    key = rec.one("vault:transit/secretBackendKey:SecretBackendKey")
    assert (key.inputs["backend"], key.inputs["name"], key.inputs["deletionAllowed"]) == ("transit", "myapp", False)
    assert key.protect is True


def test_prod_database_connection_password_is_secret():
    rec = run_stack("prod")
    conn = rec.one("vault:database/secretBackendConnection:SecretBackendConnection")
    assert (conn.inputs["backend"], conn.inputs["name"]) == ("database", "app-postgres")
    assert conn.inputs["pluginName"] == "postgresql-database-plugin"
    assert conn.inputs["allowedRoles"] == ["myapp-db"] and conn.inputs["verifyConnection"] is True
    pg = conn.inputs["postgresql"]
    assert pg["connectionUrl"].startswith("postgresql://{{username}}:{{password}}@app-db.internal.example.com")
    assert pg["username"] == "vault_admin" and pg["passwordAuthentication"] == "scram-sha-256"
    assert pg["password"] == TEST_SECRETS["prod"]["databasePasswords"]["app-postgres"]
    assert conn.is_secret("postgresql.password")
    assert not conn.is_secret("postgresql.connectionUrl")  # only the password is hidden in previews
    role = rec.one("vault:database/secretBackendRole:SecretBackendRole")
    assert role.inputs["dbName"] == "app-postgres" and role.inputs["name"] == "myapp-db"
    assert (role.inputs["defaultTtl"], role.inputs["maxTtl"]) == (3600, 86400)
    assert role.inputs["creationStatements"][0].startswith('CREATE ROLE "{{name}}"')
    assert role.inputs["revocationStatements"][-1] == 'DROP ROLE IF EXISTS "{{name}}";'


def test_dev_database_connects_to_dev_postgres_with_its_generated_password():
    rec = run_stack("dev")
    conn = rec.one("vault:database/secretBackendConnection:SecretBackendConnection")
    dev_pg = rec.one(DEV_POSTGRES)
    assert conn.inputs["name"] == "dev-postgres" and conn.inputs["allowedRoles"] == ["myapp-db"]
    pg = conn.inputs["postgresql"]
    assert pg["connectionUrl"] == vs.dev_postgres_connection_url("vault")
    assert pg["username"] == vs.DEV_POSTGRES_USER
    assert pg["password"].startswith(f"FAKE-{CANARY}-PASSWORD") and conn.is_secret("postgresql.password")
    assert waits_for(rec, conn, dev_pg), "the connection is verified on write: it must wait for PostgreSQL"


def test_dev_postgres_objects():
    rec = run_stack("dev")
    dev_pg = rec.one(DEV_POSTGRES)
    children = [r for r in rec.resources if r.parent == dev_pg.urn]
    assert sorted(r.type for r in children) == [
        "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Secret", "kubernetes:core/v1:Service",
        "pulumi-python:dynamic/random:GeneratedPassword"]
    password = rec.one("pulumi-python:dynamic/random:GeneratedPassword")
    assert password.inputs["length"] >= 24 and "result" in password.additional_secret_outputs
    secret = rec.one("kubernetes:core/v1:Secret", "vault-dev-postgres-secret")
    assert secret.inputs["metadata"] == {"name": "dev-postgres", "namespace": "vault", "labels": secret.inputs[
        "metadata"]["labels"]}
    assert secret.is_secret("stringData") and CANARY in secret.inputs["stringData"]["password"]
    deployment = rec.one("kubernetes:apps/v1:Deployment", "vault-dev-postgres-deployment")
    assert deployment.inputs["metadata"]["namespace"] == "vault"
    pod = deployment.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE and ":" in IMAGE and not IMAGE.endswith(":latest")
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "dev-postgres", "key": "password"}
    assert env["POSTGRES_USER"]["value"] == vs.DEV_POSTGRES_USER and env["POSTGRES_DB"]["value"] == vs.DEV_POSTGRES_DB
    service = rec.one("kubernetes:core/v1:Service", "vault-dev-postgres-service")
    assert service.inputs["metadata"]["name"] == "dev-postgres"
    assert service.inputs["spec"]["ports"][0]["port"] == 5432
    assert service.inputs["spec"]["selector"] == deployment.inputs["spec"]["selector"]["matchLabels"]
    for r, kind, api in ((deployment, "Deployment", "apps/v1"), (service, "Service", "v1")):
        manifest = {"apiVersion": api, "kind": kind, **{k: r.inputs[k] for k in ("metadata", "spec")}}
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_prod_has_no_dev_postgres():
    assert run_stack("prod").of_type(DEV_POSTGRES) == []


@pytest.mark.parametrize("stack", STACKS)
def test_application_roles_are_bound_to_exactly_one_namespace_and_service_account(stack):
    rec = run_stack(stack)
    role = rec.one("vault:kubernetes/authBackendRole:AuthBackendRole", "vault-config-app-myapp")
    assert role.inputs["backend"] == "kubernetes" and role.inputs["roleName"] == "myapp"
    assert role.inputs["boundServiceAccountNames"] == ["myapp"]
    assert role.inputs["boundServiceAccountNamespaces"] == ["default"]
    assert role.inputs["tokenPolicies"] == ["app-templated", "app-myapp"]
    assert role.inputs["tokenTtl"] == 3600 and role.inputs["tokenMaxTtl"] == 24 * 3600
    assert role.inputs["audience"] == "vault"


def test_kubernetes_auth_and_its_config():
    rec = run_stack("prod")
    auth = rec.one("vault:index/authBackend:AuthBackend")
    assert (auth.inputs["type"], auth.inputs["path"]) == ("kubernetes", "kubernetes")
    assert auth.inputs["tune"]["defaultLeaseTtl"] == "3600s"  # kubernetesAuth.tokenTtl
    config = rec.one("vault:kubernetes/authBackendConfig:AuthBackendConfig")
    assert config.inputs["kubernetesHost"] == "https://kubernetes.default.svc"
    assert config.inputs["disableLocalCaJwt"] is False
    assert "tokenReviewerJwt" not in config.inputs  # Vault uses its own pod's token: nothing stored


@pytest.mark.parametrize("stack", STACKS)
def test_policies_are_the_rendered_model(stack):
    rec = run_stack(stack)
    written = {r.inputs["name"]: r.inputs["policy"] for r in rec.of_type("vault:index/policy:Policy")
               if r.parent == rec.one(COMPONENT).urn}
    # The deploy identity's own policies are written by DeployIdentity, before the provider logs in.
    objects = vs.build(_load(stack))
    expected = {p.name: pol.render(p) for p in objects.all_policies(ACCESSOR)
                if p.name not in objects.identity_policy_names}
    assert written == expected
    assert f"identity.entity.aliases.{ACCESSOR}.metadata.service_account_name" in written["app-templated"]


def test_pki_root_and_intermediate_chain_in_prod():
    rec = run_stack("prod")
    root = rec.one("vault:pkiSecret/secretBackendRootCert:SecretBackendRootCert")
    assert (root.inputs["backend"], root.inputs["type"]) == ("pki", "internal")
    assert root.inputs["commonName"] == "vault-platform Root CA" and root.inputs["ttl"] == str(87600 * 3600)
    assert root.protect is True
    csr = rec.one("vault:pkiSecret/secretBackendIntermediateCertRequest:SecretBackendIntermediateCertRequest")
    signed = rec.one("vault:pkiSecret/secretBackendRootSignIntermediate:SecretBackendRootSignIntermediate")
    installed = rec.one("vault:pkiSecret/secretBackendIntermediateSetSigned:SecretBackendIntermediateSetSigned")
    assert csr.inputs["backend"] == "pki_int" and signed.inputs["backend"] == "pki"
    assert "CERTIFICATE REQUEST" in signed.inputs["csr"] and signed.inputs["ttl"] == str(43800 * 3600)
    assert installed.inputs["backend"] == "pki_int" and "fake-vault-intermediate" in installed.inputs["certificate"]
    assert rec.depends_on(signed, csr) and rec.depends_on(installed, signed)
    role = rec.one("vault:pkiSecret/secretBackendRole:SecretBackendRole")
    assert role.inputs["backend"] == "pki_int" and role.inputs["allowedDomains"] == [
        "*.default.svc", "*.default.svc.cluster.local", "myapp.internal.example.com"]
    assert role.inputs["maxTtl"] == str(72 * 3600) and rec.depends_on(role, installed)
    urls = by_input(rec, "vault:pkiSecret/secretBackendConfigUrls:SecretBackendConfigUrls", "backend")
    # Under api.address: the internal load balancer every client in the VPC reaches.
    assert urls["pki_int"].inputs["issuingCertificates"] == ["https://vault.internal.example.com:8200/v1/pki_int/ca"]
    assert urls["pki"].inputs["crlDistributionPoints"] == ["https://vault.internal.example.com:8200/v1/pki/crl"]


def test_dev_pki_issues_from_the_root_which_stays_disposable():
    rec = run_stack("dev")
    assert not rec.of_type(
        "vault:pkiSecret/secretBackendIntermediateCertRequest:SecretBackendIntermediateCertRequest")
    assert rec.one("vault:pkiSecret/secretBackendRole:SecretBackendRole").inputs["backend"] == "pki"
    assert rec.one("vault:pkiSecret/secretBackendRootCert:SecretBackendRootCert").protect is False


@pytest.mark.parametrize("stack", STACKS)
def test_two_audit_devices(stack):
    devices = by_input(run_stack(stack), "vault:index/audit:Audit", "path")
    assert {p: (d.inputs["type"], d.inputs["options"]) for p, d in devices.items()} == {
        "file": ("file", {"file_path": "/vault/audit/audit.log"}), "stdout": ("file", {"file_path": "stdout"})}


def test_initial_kv_secret_is_written_as_a_secret_and_never_read_back():
    # (dev: prod seeds none from its config, which would keep the values in the state.)
    secret = run_stack("dev").one("vault:kv/secretV2:SecretV2")
    assert (secret.inputs["mount"], secret.inputs["name"]) == ("secret", "myapp/config")
    assert secret.is_secret("dataJson") and secret.inputs["disableRead"] is True
    assert json.loads(secret.inputs["dataJson"]) == TEST_SECRETS["dev"]["kv"]["myapp/config"]
    # Written once: only if absent, and later config edits are not applied over a rotated value.
    assert secret.inputs["cas"] == 0 and secret.ignore_changes == ["dataJson"]
    assert run_stack("prod").of_type("vault:kv/secretV2:SecretV2") == []


@pytest.mark.parametrize("stack", STACKS)
def test_everything_that_holds_data_is_protected(stack):
    rec = run_stack(stack)
    assert rec.one("kubernetes:core/v1:Namespace").protect
    assert rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release").protect
    mounts = rec.of_type("vault:index/mount:Mount")
    assert {m.get("type") for m in mounts} >= {"kv", "database", "pki"}
    assert all(m.protect for m in mounts)


def _apps(count: int, *, database: bool, start: int = 0) -> list[dict]:
    apps = []
    for i in range(start, start + count):
        app = {"name": f"app-{i:04d}", "namespace": f"team-{i % 7}", "serviceAccount": f"sa-{i:04d}",
               "kv": [{"path": f"secret/data/team-{i % 7}/sa-{i:04d}/*", "access": "read"}]}
        if database:
            app["databaseRole"] = "myapp-db"
        apps.append(app)
    return apps


def _config_resources(rec: Recording) -> int:
    component = rec.one(COMPONENT).urn
    return sum(1 for r in rec.resources if r.parent == component)


NO_OPERATOR = {"externalSecrets": None}


def test_at_most_two_resources_per_application_with_the_templated_policy():
    # (No application delivers through the External Secrets Operator: its settings go too.)
    base = _config_resources(run_stack("prod", {"applications": [], **NO_OPERATOR}))
    own_only = run_stack("prod", {"applications": _apps(20, database=False), **NO_OPERATOR})
    with_db = run_stack("prod", {"applications": _apps(20, database=True), **NO_OPERATOR})
    assert _config_resources(own_only) - base == 20  # one Kubernetes role each, nothing else
    assert _config_resources(with_db) - base == 40  # a role and an app policy each
    objects = vs.build(_load("prod", {"applications": [], **NO_OPERATOR}))
    static = [p for p in objects.policies if p.name not in objects.identity_policy_names]
    assert len(own_only.of_type("vault:index/policy:Policy")) == len(static) + 1


def test_without_templating_every_application_with_grants_gets_its_own_policy():
    rec = run_stack("prod", {"kubernetesAuth": {"templatedPolicy": False},
                             "applications": _apps(5, database=False), **NO_OPERATOR})
    names = {r.inputs["name"] for r in rec.of_type("vault:index/policy:Policy")}
    assert "app-templated" not in names and {f"app-app-{i:04d}" for i in range(5)} <= names
    roles = rec.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")
    assert all(r.inputs["tokenPolicies"] == [f"app-{r.inputs['roleName']}"] for r in roles
               if r.name.startswith("vault-config-app-"))


def _load(stack: str, overrides: dict | None = None):
    config, keys = stack_config(stack, overrides)
    return load_config(config, set(keys))


@pytest.mark.parametrize("stack", STACKS)
def test_each_connection_revokes_its_leases_before_it_goes(stack):
    rec = run_stack(stack)
    connections = rec.of_type("vault:database/secretBackendConnection:SecretBackendConnection")
    assert connections
    for conn in connections:
        name = conn.get("name")
        leases = rec.one("pulumi-python:dynamic:Resource", f"vault-config-db-leases-{name}")
        roles = [r for r in rec.of_type("vault:database/secretBackendRole:SecretBackendRole")
                 if r.get("dbName") == name]
        assert leases.get("connection") == name and leases.get("roles") == [r.get("name") for r in roles]
        assert leases.get("mount") == "database"
        # Pulumi deletes dependents first: the leases go before the connection and the roles.
        assert rec.depends_on(leases, conn) and all(rec.depends_on(leases, r) for r in roles)
        # It logs in as whoever deploys at the time it runs: the state holds no token of it.
        assert leases.get("token", None) is None and leases.get("token_file") == f".vault-login/{stack}.token"


@pytest.mark.parametrize("stack", STACKS)
def test_nothing_changes_in_vault_before_the_audit_devices_exist(stack):
    rec = run_stack(stack)
    audits = rec.of_type("vault:index/audit:Audit")
    assert len(audits) == 2
    others = [r for r in rec.resources if r.type.startswith("vault:") and r.type != "vault:index/audit:Audit"]
    assert len(others) > 10
    for resource in others:
        assert all(rec.depends_on(resource, audit) for audit in audits), resource.name
