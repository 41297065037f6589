"""The deploy identity against real servers: GitHub-shaped logins, and a deployer that applies the
whole configuration but cannot read secrets, make a root token, or reach raw storage.

Root writes only what CI needs to log in (the jwt auth method, its roles and the two policies), as
the first run does; everything else is written with the deployer's own token.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest

from components.model import PlatformConfig, load_config
from components.providers.vault_http import VaultHttp
from components.render import policies as pol
from components.render import vault_objects as vs
from components.render.deploy_identity import DEPLOYER_POLICY, PREVIEWER_POLICY
from tests.harness import stack_config
from tests.integration import servers
from tests.integration.github_oidc import GithubIssuer
from tests.integration.vault_apply import SECTIONS, apply, retarget_connection

REPO = "example-org/vault-platform"


def load(stack: str, overrides: dict | None = None) -> PlatformConfig:
    config, secret_keys = stack_config(stack, overrides)
    return load_config(config, set(secret_keys))


def prod_objects(postgres=None, workdir=None) -> vs.VaultObjects:
    settings = vs.build(load("prod"))
    assert settings.deploy_auths, "the prod stack file enables the CI login"
    if postgres is not None:
        (conn,) = settings.database.connections
        here = retarget_connection(conn, host=postgres.host, port=postgres.port, dbname=postgres.dbname,
                                   username=postgres.user)
        settings = dataclasses.replace(settings, database=dataclasses.replace(settings.database, connections=(here,)))
    if workdir is not None:
        log = workdir / "audit.log"
        settings = dataclasses.replace(settings, audit_devices=tuple(
            dataclasses.replace(d, options={"file_path": str(log)}) if d.path == "file" else d
            for d in settings.audit_devices))
    return settings


def fresh(vault: servers.VaultProcess) -> servers.VaultProcess:
    vault.api("DELETE", "sys/mounts/secret")  # our model mounts it, as in a cluster
    return vault


def login(vault: servers.VaultProcess, role: str, jwt: str, expect=(200,)) -> dict:
    return servers.api("POST", vault.api_addr, "auth/jwt-ci/login", json={"role": role, "jwt": jwt}, expect=expect)


def status_of(vault: servers.VaultProcess, method: str, path: str, token: str, json=None) -> int:
    try:
        servers.api(method, vault.api_addr, path, token=token, json=json)
    except servers.VaultAPIError as e:
        return e.status
    return 200


@pytest.fixture
def issuer() -> GithubIssuer:
    return GithubIssuer()


@pytest.fixture
def with_ci_login(dev_vault, issuer) -> servers.VaultProcess:
    """What root writes on the first run, and nothing else."""
    apply(prod_objects(), fresh(dev_vault).api, only={"deploy"}, jwt_config=issuer.jwt_config())
    return dev_vault


def test_the_bound_repository_ref_and_environment_log_in(with_ci_login, issuer):
    deploy = login(with_ci_login, DEPLOYER_POLICY, issuer.token(repository=REPO, environment="production"))["auth"]
    assert deploy["policies"] == ["default", DEPLOYER_POLICY]
    assert 0 < deploy["lease_duration"] <= 20 * 60  # deploy.jwt.tokenTtl: minutes, not a standing token
    preview = login(with_ci_login, PREVIEWER_POLICY,
                    issuer.token(repository=REPO, ref="refs/pull/7/merge", environment="production-preview"))["auth"]
    assert preview["policies"] == ["default", PREVIEWER_POLICY]


@pytest.mark.parametrize(("role", "claims"), [
    (DEPLOYER_POLICY, {"repository": "someone-else/vault-platform", "environment": "production"}),
    (DEPLOYER_POLICY, {"repository": REPO, "ref": "refs/heads/feature", "environment": "production"}),
    # A pull request's preview token may not deploy.
    (DEPLOYER_POLICY, {"repository": REPO, "environment": "production-preview"}),
    # A branch without the reviewed environment gets nothing.
    (DEPLOYER_POLICY, {"repository": REPO}),
    (PREVIEWER_POLICY, {"repository": REPO, "ref": "refs/pull/7/merge"}),
    (PREVIEWER_POLICY, {"repository": REPO, "environment": "staging"}),
    (DEPLOYER_POLICY, {"repository": REPO, "environment": "production", "audience": "sts.amazonaws.com"}),
    (DEPLOYER_POLICY, {"repository": REPO, "environment": "production", "issuer": "https://evil.example.com"}),
    (DEPLOYER_POLICY, {"repository": REPO, "environment": "production", "issued_ago": 3600}),
], ids=["other-repository", "other-ref", "preview-environment", "no-environment", "preview-without-environment",
        "other-environment", "other-audience", "other-issuer", "expired"])
def test_other_claims_are_refused(with_ci_login, issuer, role, claims):
    answer = login(with_ci_login, role, issuer.token(**claims), expect=(400, 403))
    assert "auth" not in answer or not answer["auth"]


def test_a_refused_ci_login_says_why_without_the_token(with_ci_login, issuer, monkeypatch):
    wrong = issuer.token(repository=REPO, environment="staging")
    monkeypatch.setenv("TERRAFORM_VAULT_AUTH_JWT", wrong)
    monkeypatch.setenv("VAULT_PLATFORM_VAULT_ROLE", DEPLOYER_POLICY)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    props = {"address": with_ci_login.api_addr, "ca_cert_pem": "", "login_path": "jwt-ci"}
    with pytest.raises(RuntimeError) as err:
        VaultHttp()._credentials(props)
    message = str(err.value)
    assert "a login to auth/jwt-ci as deployer (HTTP 400" in message or \
        "a login to auth/jwt-ci as deployer (HTTP 403" in message, message
    assert wrong not in message
    # The right environment logs in through the same path.
    monkeypatch.setenv("TERRAFORM_VAULT_AUTH_JWT", issuer.token(repository=REPO, environment="production"))
    assert VaultHttp()._credentials(props)


def test_a_token_signed_by_another_key_is_refused(with_ci_login):
    forged = GithubIssuer().token(repository=REPO, environment="production")
    login(with_ci_login, DEPLOYER_POLICY, forged, expect=(400, 403))


def test_the_deployer_applies_the_whole_configuration_and_reads_no_secret(
        flavor, dev_vault, issuer, postgres, fake_kube, workdir):
    objects = prod_objects(postgres, workdir)
    apply(objects, fresh(dev_vault).api, only={"deploy"}, jwt_config=issuer.jwt_config())
    token = login(dev_vault, DEPLOYER_POLICY, issuer.token(repository=REPO, environment="production"))["auth"][
        "client_token"]
    as_deployer = functools.partial(dev_vault.api, token=token)

    # A dev server has no Raft to configure, and rotating the shared PostgreSQL's admin password would
    # break the tests after this one: for these two the grant itself is checked (autopilot is applied
    # by the deployer on a Raft node in test_root_token_handover).
    rest = [s for s in SECTIONS if s not in ("deploy", "autopilot", "rotate_root")]
    granted = as_deployer("POST", "sys/capabilities-self", json={"paths": [
        "sys/storage/raft/autopilot/configuration", "database/rotate-root/app-postgres"]})
    assert set(granted["sys/storage/raft/autopilot/configuration"]) == {"read", "update"}
    assert granted["database/rotate-root/app-postgres"] == ["update"]
    made = apply(objects, as_deployer, only=rest, passwords={"app-postgres": postgres.password},
                 kubernetes_config=fake_kube.auth_config(), jwt_config=issuer.jwt_config())
    written = {step.path for step, _ in made}
    for expected in ("sys/audit/file", "sys/mounts/secret", "sys/mounts/database", "sys/mounts/pki",
                     "sys/auth/kubernetes", "sys/policies/acl/admin", "secret/data/myapp/config"):
        assert expected in written
    # A later `pulumi up` changes what exists: update rights, not only create.
    apply(objects, as_deployer, only={"kv", "database", "transit"}, passwords={"app-postgres": postgres.password})
    accessor = as_deployer("GET", "sys/auth")["data"]["kubernetes/"]["accessor"]
    for policy in objects.all_policies(accessor):
        as_deployer("PUT", f"sys/policies/acl/{policy.name}", json={"policy": pol.render(policy)})
    as_deployer("POST", "auth/kubernetes/config", json=fake_kube.auth_config())
    as_deployer("POST", "sys/mounts/secret/tune", json={"max_lease_ttl": "768h"})
    # An initial secret is written once: the deployer may create it, never overwrite it (the ACL
    # refuses), and even root's write with check-and-set 0 is refused once it exists.
    overwrite = {"data": {"x": "y"}, "options": {"cas": 0}}
    assert status_of(dev_vault, "POST", "secret/data/myapp/config", token, overwrite) == 403
    assert status_of(dev_vault, "POST", "secret/data/myapp/config", dev_vault.root_token, overwrite) == 400

    root = dev_vault.root_token
    denied = {
        ("GET", "secret/data/myapp/config"), ("GET", "secret/metadata/myapp/config"), ("LIST", "secret/metadata"),
        ("POST", "secret/data/another"), ("DELETE", "secret/data/myapp/config"),
        ("POST", "transit/decrypt/myapp"), ("GET", "database/creds/myapp-db"),
        ("POST", "pki_int/issue/internal-certs"),
        ("GET", "sys/raw/core/keyring"), ("POST", "sys/seal"),
        ("PUT", "sys/policies/acl/not-managed"), ("POST", "sys/mounts/not-managed"),
        ("POST", "sys/auth/not-managed"), ("POST", "auth/token/create"),
    }
    for method, path in sorted(denied):
        assert status_of(dev_vault, method, path, token, {"type": "kv"} if "mounts" in path else {}) == 403, \
            (method, path)
    # The same requests are not denied to root: the 403s come from the policy, not from bad requests.
    assert status_of(dev_vault, "GET", "secret/data/myapp/config", root) == 200
    caps = dev_vault.api("POST", "sys/capabilities", json={"token": token, "paths": [
        "sys/generate-root/attempt", "sys/generate-root/update", "sys/raw/core", "sys/rekey/init"]})
    assert all(caps[p] == ["deny"] for p in ("sys/generate-root/attempt", "sys/generate-root/update",
                                             "sys/raw/core", "sys/rekey/init")), caps


def test_the_previewer_reads_the_configuration_and_changes_nothing(dev_vault, issuer, postgres, fake_kube, workdir):
    objects = prod_objects(postgres, workdir)
    fresh(dev_vault)
    # As in the deployer's test: no Raft here, and the shared PostgreSQL keeps its admin password.
    apply(objects, dev_vault.api, only=[s for s in SECTIONS if s not in ("autopilot", "rotate_root")],
          passwords={"app-postgres": postgres.password}, kubernetes_config=fake_kube.auth_config(),
          jwt_config=issuer.jwt_config())
    token = login(dev_vault, PREVIEWER_POLICY,
                  issuer.token(repository=REPO, ref="refs/pull/3/merge", environment="production-preview"))["auth"][
        "client_token"]
    for path in ("sys/mounts", "sys/auth", "sys/policies/acl/admin", "secret/config", "database/config/app-postgres",
                 "database/roles/myapp-db", "auth/kubernetes/role/myapp", "auth/jwt-ci/role/deployer",
                 "pki_int/roles/internal-certs", "transit/keys/myapp"):
        assert status_of(dev_vault, "GET", path, token) == 200, path
    for method, path, body in (("PUT", "sys/policies/acl/admin", {"policy": "path \"*\" {capabilities=[\"sudo\"]}"}),
                               ("POST", "auth/jwt-ci/role/deployer", {"token_policies": ["admin"]}),
                               ("GET", "secret/data/myapp/config", None), ("DELETE", "sys/mounts/transit", None),
                               ("POST", "database/config/app-postgres", {"allowed_roles": ["*"]})):
        assert status_of(dev_vault, method, path, token, body) == 403, path
