"""The deploy identity under mocks: what the stack declares for CI and operator logins, and what the
deployer and previewer policies grant, derived from what the stack manages."""

from __future__ import annotations

import fnmatch
import json

import pytest

from components.model import ConfigError, load_config
from components.render import deploy_identity as ident
from components.render import policies as pol
from components.render import vault_objects as vs
from tests.harness import run_stack, stack_config

IDENTITY = "pulumi-python:dynamic/bootstrap:DeployIdentity"
POLICY = "vault:index/policy:Policy"


def load(stack: str, overrides: dict | None = None, secrets: dict | None = None):
    config, secret_keys = stack_config(stack, overrides, secrets)
    return load_config(config, set(secret_keys))


def granted(policy: pol.Policy, path: str) -> set[str]:
    """Capabilities the policy gives on a concrete path, as Vault picks the one rule that applies: the
    exact path, else the glob with the longest prefix ('*' only at the end, '+' one segment); deny
    grants nothing."""
    exact = [r for r in policy.rules if r.path == path]
    globs = [r for r in policy.rules if r.path.endswith("*")
             and fnmatch.fnmatchcase(path, r.path.replace("+", "[!/]*"))]
    chosen = exact or sorted(globs, key=lambda r: len(r.path), reverse=True)[:1]
    found = set(chosen[0].capabilities) if chosen else set()
    return set() if "deny" in found else found


@pytest.fixture(scope="module")
def prod():
    return run_stack("prod")


def test_prod_declares_a_github_login_with_a_deployer_and_a_previewer(prod):
    identity = prod.one(IDENTITY)
    (ci,) = identity.get("auths")
    assert ci["type"] == "jwt" and ci["path"] == "jwt-ci" and identity.get("login_path") == "jwt-ci"
    assert ci["config"] == {"oidc_discovery_url": "https://token.actions.githubusercontent.com",
                            "bound_issuer": "https://token.actions.githubusercontent.com"}
    roles = {r["name"]: r["payload"] for r in ci["roles"]}
    assert set(roles) == {"deployer", "previewer", "drift", "restore", "migration"}
    assert roles["deployer"]["bound_claims"] == {"repository": "example-org/vault-platform",
                                                 "ref": "refs/heads/main", "environment": "production"}
    assert roles["previewer"]["bound_claims"] == {"repository": "example-org/vault-platform",
                                                  "environment": "production-preview"}
    # The scheduled drift check reads as the previewer does, from main's reviewed code only.
    assert roles["drift"]["bound_claims"] == {"repository": "example-org/vault-platform",
                                              "ref": "refs/heads/main", "environment": "production-drift"}
    assert roles["drift"]["token_policies"] == ["previewer"]
    for role in roles.values():
        assert role["bound_audiences"] == ["vault"] and role["user_claim"] == "sub"
        assert role["token_ttl"] == f"{20 * 60}s" and role["token_max_ttl"] == f"{45 * 60}s"
    assert roles["deployer"]["token_policies"] == ["deployer"]
    assert roles["previewer"]["token_policies"] == ["previewer"]
    assert set(identity.get("policies")) == {"deployer", "previewer", "admin", "raft-restore",
                                             "secrets-manager-migration"}
    assert identity.get("revoke_root_token") is True and identity.get("bootstrap_ttl_seconds") == 3600
    # It starts from the root token the stack just received, and keeps it secret.
    assert identity.get("token") == "FAKE-CANARY-ROOT-TOKEN" and identity.is_secret("token")
    assert "token" in identity.additional_secret_outputs
    # The first run's deployer token goes to a file of the checkout, never into the state.
    assert "bootstrap_token" not in identity.inputs
    assert identity.get("first_run_file") == ".vault-login/prod.first-run"


def test_the_login_exists_before_anything_is_configured_and_after_vault_is_ready(prod):
    identity = prod.one(IDENTITY)
    assert prod.depends_on(identity, prod.one("pulumi-python:dynamic/bootstrap:VaultReady"))
    provider = prod.one("pulumi:providers:vault")
    assert prod.depends_on(provider, identity)
    # The identity's policies are written by it alone, not a second time by the configuration.
    assert {r.inputs["name"] for r in prod.of_type(POLICY)}.isdisjoint({"deployer", "previewer"})


def test_dev_has_no_deploy_identity_unless_asked():
    rec = run_stack("dev")
    assert not rec.of_type(IDENTITY) and "rootToken" in rec.exports
    assert vs.build(load("dev")).deploy_auths == ()
    ci = {"deploy": {"jwt": {"enabled": True, "github": {"repository": "example-org/vault-platform"}}}}
    with_ci = run_stack("dev", ci)
    # Asked for, without revoking: the root token stays (dev), so the identity never hands one over.
    assert with_ci.one(IDENTITY).get("revoke_root_token") is False
    provider = with_ci.one("pulumi:providers:vault")
    assert json.loads(provider.get("authLoginTokenFile")) == {"filename": ".vault-login/dev.token"}


ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:vault-oidc"


def test_operators_log_in_with_oidc_and_get_the_deployer_policy_only():
    oidc_settings = {"enabled": True, "discoveryUrl": "https://login.example.com/", "clientId": "vault",
                     "adminGroup": "vault-admins"}
    # prod: the client secret is read from AWS when the identity is written; the state holds its ARN only.
    rec = run_stack("prod", {"deploy": {"operatorOidc": {**oidc_settings, "clientSecretArn": ARN}}})
    identity = rec.one(IDENTITY)
    oidc = next(a for a in identity.get("auths") if a["path"] == "oidc")
    assert oidc["type"] == "oidc" and oidc["config"]["oidc_client_id"] == "vault"
    assert "oidc_client_secret" not in oidc["config"]
    assert identity.get("client_secrets") == {} and identity.get("client_secret_arns") == {"oidc": ARN}
    # dev may give it in the config: a secret input, then.
    dev = run_stack("dev", {"deploy": {"operatorOidc": oidc_settings, "revokeRootToken": True}},
                    secrets={"oidcClientSecret": "CANARY-client-secret"}).one(IDENTITY)
    assert dev.get("client_secrets") == {"oidc": "CANARY-client-secret"} and dev.is_secret("client_secrets")
    (role,) = oidc["roles"]
    assert role["payload"]["bound_claims"] == {"groups": ["vault-admins"]}
    assert role["payload"]["token_policies"] == ["deployer"]
    assert role["payload"]["allowed_redirect_uris"] == ["http://localhost:8250/oidc/callback"]


def _objects():
    return vs.build(load("prod"))


def test_the_deployer_can_write_everything_the_stack_manages():
    objects = _objects()
    deployer = next(p for p in objects.policies if p.name == ident.DEPLOYER_POLICY)
    manage = {"create", "update"}
    needs = [f"sys/mounts/{m.path}" for m in objects.mounts]
    needs += [f"sys/auth/{objects.kubernetes_auth.path}"]
    needs += [f"sys/audit/{d.path}" for d in objects.audit_devices]
    # Every policy but the deploy identity's own, which only root and break-glass tokens change.
    needs += [f"sys/policies/acl/{p.name}" for p in objects.all_policies("accessor")
              if p.name not in objects.identity_policy_names]
    needs += [f"auth/kubernetes/role/{r.name}" for r in objects.kubernetes_roles]
    needs += ["auth/kubernetes/config", "secret/config"]
    needs += [f"database/config/{c.name}" for c in objects.database.connections]
    needs += [f"database/roles/{r.name}" for r in objects.database.roles]
    # The paths the real provider uses (the engine tier, tests/integration/test_vault_side.py, runs it).
    needs += ["pki/issuers/generate/root/internal", "pki/root/sign-intermediate", "pki_int/intermediate/set-signed",
              "pki_int/issuers/generate/intermediate/internal",
              "pki_int/config/urls", "transit/keys/myapp"]
    needs += [f"pki_int/roles/{r.name}" for r in objects.pki.roles]
    missing = {path: granted(deployer, path) for path in needs if not manage <= granted(deployer, path)
               and not (path.startswith("sys/audit/") and {"sudo"} <= granted(deployer, path))}
    assert not missing
    # Auth mounts are tuned where the provider tunes them (it ignores a refused tune).
    assert "update" in granted(deployer, "sys/mounts/auth/kubernetes/tune")
    # prod seeds no KV value; dev's initial secret is created once and never read or overwritten.
    assert granted(deployer, "secret/data/myapp/config") == set()
    dev = vs.build(load("dev", {"deploy": {"jwt": {"enabled": True, "github": {"repository": "example-org/x"}}}}))
    dev_deployer = next(p for p in dev.policies if p.name == ident.DEPLOYER_POLICY)
    assert granted(dev_deployer, "secret/data/myapp/config") == {"create"}


@pytest.mark.parametrize("path", [
    "secret/data/myapp/config", "secret/data/other", "secret/metadata/myapp/config", "database/creds/myapp-db",
    "pki_int/issue/internal-certs", "transit/decrypt/myapp", "transit/export/encryption-key/myapp",
    "sys/generate-root/attempt", "sys/raw/core/keyring", "sys/seal", "sys/rekey/init",
    "sys/auth/jwt-ci", "auth/jwt-ci/config", "sys/mounts/not-managed", "auth/token/create",
    "sys/storage/raft/snapshot",
    "identity/entity/name/x",
])
def test_the_deployer_cannot_read_secrets_or_become_root(path):
    deployer = next(p for p in _objects().policies if p.name == ident.DEPLOYER_POLICY)
    assert granted(deployer, path) - {"create"} == set() if path == "secret/data/myapp/config" \
        else granted(deployer, path) == set(), path


def _kubernetes_role_rule(policy: pol.Policy) -> pol.Rule:
    return next(r for r in policy.rules if r.path == "auth/kubernetes/role/*")


def test_the_deployer_writes_kubernetes_roles_only_with_the_policies_the_stack_gives_roles():
    deployer = next(p for p in _objects().policies if p.name == ident.DEPLOYER_POLICY)
    rule = _kubernetes_role_rule(deployer)
    allowed = dict(rule.allowed_parameters)
    # Vault matches each policy of the list against these (tests/integration/test_deploy_identity.py).
    assert allowed["token_policies"] == ("app-*", "external-secrets-*", "cert-manager-*", "raft-backup",
                                         "raft-rollout")
    assert allowed["*"] == ()
    # The deprecated alias would bypass the list; a comma-separated string would be read as several policies.
    assert "policies" in rule.denied_parameters
    assert dict(rule.denied_values)["token_policies"] == ("*,*",)
    text = pol.render(deployer)
    assert '"token_policies" = ["app-*", "external-secrets-*", "cert-manager-*", "raft-backup", "raft-rollout"]' \
        in text
    # Every policy any role of the stack carries is in the list.
    families = allowed["token_policies"]
    for role in _objects().all_roles:
        for name in role.token_policies:
            assert any(name.startswith(f[:-1]) if f.endswith("*") else name == f for f in families), name


def test_a_server_that_matches_only_whole_lists_gets_no_list_it_would_refuse_every_role_with():
    config = load("prod", {"deploy": {"limitRolePolicies": False}})
    deployer = next(p for p in vs.build(config).policies if p.name == ident.DEPLOYER_POLICY)
    rule = _kubernetes_role_rule(deployer)
    assert rule.allowed_parameters == () and "policies" in rule.denied_parameters


def test_the_admin_policy_is_written_by_the_deploy_identity_and_changes_only_with_break_glass(prod):
    identity = prod.one(IDENTITY)
    assert {"deployer", "previewer", "admin"} <= set(identity.get("policies"))
    assert "admin" not in {r.inputs["name"] for r in prod.of_type(POLICY)}
    deployer = next(p for p in _objects().policies if p.name == ident.DEPLOYER_POLICY)
    assert granted(deployer, "sys/policies/acl/admin") == {"read"}
    # Without a deploy identity (dev), the configuration writes it with the stack's root token.
    assert "admin" in {r.inputs["name"] for r in run_stack("dev").of_type(POLICY)}


def test_a_restore_and_a_migration_each_have_a_reviewed_login_with_one_narrow_policy(prod):
    identity = prod.one(IDENTITY)
    (ci,) = identity.get("auths")
    roles = {r["name"]: r["payload"] for r in ci["roles"]}
    repo = "example-org/vault-platform"
    assert roles["restore"]["bound_claims"] == {"repository": repo, "ref": "refs/heads/main",
                                                "environment": "production-restore"}
    assert roles["migration"]["bound_claims"] == {"repository": repo, "ref": "refs/heads/main",
                                                  "environment": "production-migration"}
    assert roles["restore"]["token_policies"] == ["raft-restore"]
    assert roles["migration"]["token_policies"] == ["secrets-manager-migration"]
    objects = _objects()
    restore = next(p for p in objects.policies if p.name == "raft-restore")
    migration = next(p for p in objects.policies if p.name == "secrets-manager-migration")
    # A snapshot of this cluster only: never snapshot-force (a foreign snapshot brings its own tokens).
    assert [(r.path, r.capabilities) for r in restore.rules] == [("sys/storage/raft/snapshot", ("update", "sudo"))]
    assert [(r.path, r.capabilities) for r in migration.rules] == [
        ("secret/data/imported/*", ("create", "read", "update")),
        ("secret/metadata/imported/*", ("create", "read", "update"))]
    assert identity.get("policies")["raft-restore"] == pol.render(restore)
    # Written with the identity: break-glass only after the first run, and no role may carry them.
    deployer = next(p for p in objects.policies if p.name == ident.DEPLOYER_POLICY)
    for name in ("raft-restore", "secrets-manager-migration"):
        assert granted(deployer, f"sys/policies/acl/{name}") == {"read"}
        assert not any(name.startswith(f.rstrip("*")) if f.endswith("*") else name == f
                       for f in pol.ROLE_POLICY_FAMILIES)
    changed = vs.build(load("prod", {"migration": {"kvPrefix": "from-aws/prod/"}}))
    assert [r.path for r in next(p for p in changed.policies if p.name == "secrets-manager-migration").rules] == [
        "secret/data/from-aws/prod/*", "secret/metadata/from-aws/prod/*"]
    for bad in ("", "imported", "/imported/", "imported/*", "a//b/"):
        with pytest.raises(ConfigError, match=r"migration\.kvPrefix"):
            load("prod", {"migration": {"kvPrefix": bad}})


def test_a_stack_policy_may_not_take_a_name_kubernetes_roles_carry():
    for name in ("app-ops", "external-secrets-x", "cert-manager-y"):
        with pytest.raises(ConfigError, match="policies"):
            load("dev", {"policies": [{"name": name, "rules": [{"path": "secret/data/x",
                                                                "capabilities": ["read"]}]}]})


@pytest.mark.parametrize("path", ["sys/policies/acl/deployer", "sys/policies/acl/previewer", "sys/policies/acl/admin",
                                  "auth/jwt-ci/role/deployer", "auth/jwt-ci/role/drift"])
def test_the_deployer_reads_the_deploy_identity_and_never_changes_it(path):
    deployer = next(p for p in _objects().policies if p.name == ident.DEPLOYER_POLICY)
    assert granted(deployer, path) == {"read"}


def test_the_previewer_only_reads():
    objects = _objects()
    previewer = next(p for p in objects.policies if p.name == ident.PREVIEWER_POLICY)
    every = {c for rule in previewer.rules for c in rule.capabilities}
    assert every <= {"read", "list", "sudo"}
    assert all(rule.path == "sys/audit" for rule in previewer.rules if "sudo" in rule.capabilities)
    assert granted(previewer, "secret/data/myapp/config") == set()
    assert granted(previewer, "database/config/app-postgres") == {"read", "list"}


def test_identity_policy_names_are_reserved():
    with pytest.raises(ConfigError, match="policies"):
        load("dev", {"policies": [{"name": "deployer", "rules": [{"path": "secret/data/x", "capabilities":
                                                                   ["read"]}]}]})


@pytest.mark.parametrize(("overrides", "setting"), [
    ({"init": {"pgpKeys": []}}, "init.pgpKeys"),
    ({"deploy": {"jwt": {"enabled": False}}}, "deploy.revokeRootToken"),
    ({"deploy": {"jwt": {"enabled": True, "github": None}}}, "deploy.jwt.github"),
    ({"deploy": {"jwt": {"github": {"repository": "not a repo"}}}}, "deploy.jwt.github.repository"),
    ({"deploy": {"operatorOidc": {"enabled": True}}}, "deploy.operatorOidc.discoveryUrl"),
    ({"deploy": {"operatorOidc": {"enabled": True, "discoveryUrl": "https://id.example.com", "clientId": "v",
                                  "adminGroup": "g"}}}, "secrets.oidcClientSecret"),
    ({"init": {"rootTokenPgpKey": "{pgp}"}}, "deploy.revokeRootToken"),
])
def test_prod_refuses_an_unsafe_or_incomplete_deploy_identity(overrides, setting):
    if overrides.get("init", {}).get("rootTokenPgpKey") == "{pgp}":
        from tests.harness.fakes import fake_pgp_key
        overrides = {"init": {"rootTokenPgpKey": fake_pgp_key(0)}}
    with pytest.raises(ConfigError) as raised:
        load("prod", overrides)
    assert setting in str(raised.value)


def test_prod_without_pgp_keys_says_how_to_export_one():
    with pytest.raises(ConfigError) as raised:
        load("prod", {"init": {"pgpKeys": []}})
    message = str(raised.value)
    assert "gpg --export" in message
    # No way around it in prod: plaintext shares in the state could make a root token.
    with pytest.raises(ConfigError, match=r"init\.acceptPlaintextShares"):
        load("prod", {"init": {"pgpKeys": [], "acceptPlaintextShares": True}})


def test_revoking_is_the_prod_default_and_dev_keeps_its_root_token():
    assert load("prod").deploy.revoke_root_token is True
    assert load("dev").deploy.revoke_root_token is False


CLOSED = "https://127.0.0.1:9"  # nothing listens there: Vault cannot be asked


def _login_state(**changes):
    from components.resources.bootstrap import LoginState

    state = {"address": CLOSED, "ca_cert_pem": "", "stack_token": "root", "root_token_revoked": True,
             "first_run_expires_at": 1_000_000 + 3600, "login_path": "jwt-ci", "login_audience": "vault"}
    return LoginState(**{**state, **changes})


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A project folder of its own, and no login of the caller's."""
    for name in ("VAULT_TOKEN", "TERRAFORM_VAULT_AUTH_JWT", "ACTIONS_ID_TOKEN_REQUEST_URL",
                 "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "VAULT_PLATFORM_VAULT_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAULT_PLATFORM_WORKDIR", str(tmp_path))
    return tmp_path


def _first_run_token(checkout, token="first"):  # noqa: S107 - a stand-in
    from components.resources.bootstrap import first_run_file_path, write_token_file

    write_token_file(checkout / first_run_file_path("prod"), token)


@pytest.mark.parametrize(("state", "first_run", "vault_token", "expected"), [
    # The first run: the deployer token DeployIdentity put in the first-run file.
    ({}, True, None, "first"),
    # dev: the root token, never revoked.
    ({"root_token_revoked": False, "first_run_expires_at": 0}, False, None, "root"),
    # An operator's VAULT_TOKEN comes first; Vault cannot be asked here, so the first is taken.
    ({}, True, "hvs.operator", "hvs.operator"),
    ({"root_token_revoked": False}, False, "hvs.operator", "hvs.operator"),
])
def test_the_provider_logs_in_with_a_token_file_in_the_one_login_order(checkout, monkeypatch, state, first_run,
                                                                      vault_token, expected):
    from components.resources.bootstrap import provider_token

    if first_run:
        _first_run_token(checkout)
    if vault_token:
        monkeypatch.setenv("VAULT_TOKEN", vault_token)
    path = provider_token("prod", _login_state(**state), now=1_000_000)
    assert path == ".vault-login/prod.token"
    written = checkout / path
    assert written.read_text() == f"{expected}\n"
    # The Vault provider refuses a token file anyone else may read.
    assert oct(written.stat().st_mode & 0o777) == "0o600" and oct(written.parent.stat().st_mode & 0o777) == "0o700"


def test_a_first_run_token_near_its_end_and_a_revoked_root_token_are_never_chosen(checkout):
    from components.resources.bootstrap import BOOTSTRAP_MARGIN_SECONDS, provider_token

    _first_run_token(checkout)
    with pytest.raises(RuntimeError, match="vault login -method=oidc") as raised:
        provider_token("prod", _login_state(first_run_expires_at=1_000_000 + BOOTSTRAP_MARGIN_SECONDS),
                       now=1_000_000)
    assert "deploy workflow" in str(raised.value) and "break-glass" in str(raised.value)
    assert not (checkout / ".vault-login/prod.token").exists()


def test_no_export_or_plain_input_holds_a_token(prod):
    tokens = ("FAKE-CANARY-ROOT-TOKEN", "FAKE-CANARY-FIRST-RUN-TOKEN")
    assert not any(t in json.dumps(prod.exports, default=str) for t in tokens)
    holders = 0
    for resource in prod.resources:
        for path, value in _leaves(resource.inputs):
            if isinstance(value, str) and any(t in value for t in tokens):
                holders += 1
                assert resource.is_secret(path), f"{resource.name}: {path}"
    assert holders == 2  # the identity and the wait for voters start from the root token, as secrets
    # The provider holds the name of a file, whichever way the run logs in.
    provider = prod.one("pulumi:providers:vault")
    assert json.loads(provider.get("authLoginTokenFile")) == {"filename": ".vault-login/prod.token"}
    assert "token" not in provider.inputs and "authLoginJwt" not in provider.inputs


def _leaves(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value
