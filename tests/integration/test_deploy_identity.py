"""The deploy identity against real servers: GitHub-shaped logins, and a deployer that applies the
whole configuration but cannot read secrets, make a root token, or reach raw storage.

Root writes only what CI needs to log in (the jwt auth method, its roles and the two policies), as
the first run does; everything else is written with the deployer's own token.
"""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from components.model import PlatformConfig, load_config
from components.providers.deploy_identity import DeployIdentityProvider
from components.providers.vault_http import VaultHttp
from components.render import deploy_identity as ident
from components.render import policies as pol
from components.render import vault_objects as vs
from components.render.deploy_identity import DEPLOYER_POLICY, PREVIEWER_POLICY
from tests.harness import stack_config
from tests.integration import servers
from tests.integration.github_oidc import GithubIssuer
from tests.integration.vault_apply import retarget_connection

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


def identity_props(node: servers.VaultProcess, objects: vs.VaultObjects, issuer: GithubIssuer, root: str,
                   ttl: int = 660, first_run_file: str = "") -> dict:
    """DeployIdentity's inputs as the program builds them, with the issuer's key in place of the
    discovery URL that a test cannot reach."""
    auths = [ident.auth_payload(a) for a in objects.deploy_auths]
    for auth in auths:
        auth["config"] = {k: v for k, v in auth["config"].items() if k != "oidc_discovery_url"}
        auth["config"].update(issuer.jwt_config())
    return {
        "address": node.api_addr, "ca_cert_pem": "", "token": root,
        "policies": {p.name: pol.render(p) for p in objects.policies if p.name in objects.identity_policy_names},
        "auths": auths, "client_secrets": {}, "deployer_policy": ident.DEPLOYER_POLICY, "revoke_root_token": True,
        "bootstrap_ttl_seconds": ttl, "login_path": "jwt-ci", "login_audience": "vault",
        "first_run_file": first_run_file, "token_file": first_run_file,
    }



@pytest.fixture
def with_ci_login(dev_vault, issuer) -> servers.VaultProcess:
    """What the first run writes with the root token (DeployIdentity), and nothing else."""
    props = identity_props(fresh(dev_vault), prod_objects(), issuer, dev_vault.root_token)
    DeployIdentityProvider().create({**props, "revoke_root_token": False})
    return dev_vault


def test_the_bound_repository_ref_and_environment_log_in(with_ci_login, issuer):
    deploy = login(with_ci_login, DEPLOYER_POLICY, issuer.token(repository=REPO, environment="production"))["auth"]
    assert deploy["policies"] == ["default", DEPLOYER_POLICY]
    assert 0 < deploy["lease_duration"] <= 20 * 60  # deploy.jwt.tokenTtl: minutes, not a standing token
    preview = login(with_ci_login, PREVIEWER_POLICY,
                    issuer.token(repository=REPO, ref="refs/pull/7/merge", environment="production-preview"))["auth"]
    assert preview["policies"] == ["default", PREVIEWER_POLICY]
    drift = login(with_ci_login, ident.DRIFT_ROLE,
                  issuer.token(repository=REPO, ref="refs/heads/main", environment="production-drift"))["auth"]
    assert drift["policies"] == ["default", PREVIEWER_POLICY]


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
    # The unreviewed drift environment runs main's code only, and may not deploy.
    (ident.DRIFT_ROLE, {"repository": REPO, "ref": "refs/heads/feature", "environment": "production-drift"}),
    (ident.DRIFT_ROLE, {"repository": REPO, "environment": "production-preview"}),
    (DEPLOYER_POLICY, {"repository": REPO, "environment": "production-drift"}),
], ids=["other-repository", "other-ref", "preview-environment", "no-environment", "preview-without-environment",
        "other-environment", "other-audience", "other-issuer", "expired", "drift-other-ref",
        "drift-preview-environment", "deploy-from-drift-environment"])
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
    assert "a CI login to auth/jwt-ci as deployer (HTTP 400" in message or \
        "a CI login to auth/jwt-ci as deployer (HTTP 403" in message, message
    assert wrong not in message
    # The right environment logs in through the same path.
    monkeypatch.setenv("TERRAFORM_VAULT_AUTH_JWT", issuer.token(repository=REPO, environment="production"))
    assert VaultHttp()._credentials(props)


def test_a_token_signed_by_another_key_is_refused(with_ci_login):
    forged = GithubIssuer().token(repository=REPO, environment="production")
    login(with_ci_login, DEPLOYER_POLICY, forged, expect=(400, 403))




def _kubernetes_auth(vault: servers.VaultProcess) -> None:
    """The Kubernetes auth method, enabled with root here: only the roles below are the deployer's."""
    vault.api("POST", "sys/auth/kubernetes", json={"type": "kubernetes"})


def _role(policies) -> dict:
    return {"bound_service_account_names": ["billing"], "bound_service_account_namespaces": ["payments"],
            "token_policies": policies}


# Roles as the pulumi-vault provider writes them (token_policies a list), and the ways around a list
# of allowed values: another policy among allowed ones, a comma-separated string or element, the
# deprecated `policies` alias, a policy outside the families.
FAMILY_ROLES = [["app-templated", "app-billing"], ["app-billing"], ["app-templated-write"],
                ["external-secrets-payments"], ["cert-manager-vault-pki"], ["raft-backup"], ["raft-rollout"], []]
REFUSED_ROLES = [
    {"token_policies": ["admin"]}, {"token_policies": ["deployer"]}, {"token_policies": ["previewer"]},
    {"token_policies": ["app-billing", "admin"]}, {"token_policies": ["ops-read"]}, {"token_policies": ["default"]},
    {"token_policies": "app-billing,admin"}, {"token_policies": ["app-billing,admin"]},
    {"token_policies": "admin"}, {"policies": ["admin"]}, {"policies": ["app-billing"]},
    {"token_policies": ["raft-backup-2"]},
]


def test_the_deployer_gives_kubernetes_roles_only_the_policies_the_stack_gives_roles(with_ci_login, issuer, flavor):
    _kubernetes_auth(with_ci_login)
    token = login(with_ci_login, DEPLOYER_POLICY, issuer.token(repository=REPO, environment="production"))
    deployer = token["auth"]["client_token"]
    root = with_ci_login.root_token

    def write(name: str, body: dict) -> int:
        return status_of(with_ci_login, "POST", f"auth/kubernetes/role/{name}", deployer,
                         {**_role([]), **body})

    refused = {repr(body): write("probe", body) for body in REFUSED_ROLES}
    assert set(refused.values()) == {403}, refused
    assert status_of(with_ci_login, "GET", "auth/kubernetes/role/probe", root) == 404
    written = {repr(p): write("family", {"token_policies": p}) for p in FAMILY_ROLES}
    if flavor == "vault":
        # Vault (1.21 and later) checks each element of the list against the allowed globs.
        assert set(written.values()) == {200}, written
        assert with_ci_login.api("GET", "auth/kubernetes/role/family")["data"]["token_policies"] == []
    else:
        # OpenBao compares a list parameter only as a whole with each allowed value: with the limit,
        # the deployer could write no role at all (deploy.limitRolePolicies says to turn it off there).
        assert set(written.values()) == {403}, written


def test_without_the_limit_the_deployer_writes_any_role_but_never_with_the_deprecated_alias(dev_vault, issuer):
    objects = vs.build(load("prod", {"deploy": {"limitRolePolicies": False}}))
    DeployIdentityProvider().create({**identity_props(fresh(dev_vault), objects, issuer, dev_vault.root_token),
                                     "revoke_root_token": False})
    _kubernetes_auth(dev_vault)
    deployer = login(dev_vault, DEPLOYER_POLICY,
                     issuer.token(repository=REPO, environment="production"))["auth"]["client_token"]
    for policies in (*FAMILY_ROLES, ["admin"]):
        assert status_of(dev_vault, "POST", "auth/kubernetes/role/any", deployer, _role(policies)) == 200, policies
    assert status_of(dev_vault, "POST", "auth/kubernetes/role/any", deployer,
                     {**_role([]), "policies": ["app-billing"]}) == 403


def test_the_operators_oidc_client_secret_is_read_from_aws_when_written_and_kept_nowhere(
        dev_vault, secretsmanager_endpoint, monkeypatch, workdir):
    """prod's deploy.operatorOidc.clientSecretArn: DeployIdentity reads the secret with the runner's AWS
    credentials when it writes the OIDC method, sends it to Vault only, and returns nothing of it."""
    from tests.integration.github_oidc import GithubActions

    for key, value in secretsmanager_endpoint.env().items():
        monkeypatch.setenv(key, value)
    client_secret = "CANARY-oidc-client-secret"
    arn = secretsmanager_endpoint.client().create_secret(Name="vault-oidc", SecretString=client_secret)["ARN"]
    idp = GithubActions(workdir, REPO)
    try:
        config = load("prod", {"deploy": {"operatorOidc": {
            "enabled": True, "discoveryUrl": idp.url, "clientId": "vault", "adminGroup": "vault-admins",
            "clientSecretArn": arn}}})
        objects = vs.build(config)
        props = identity_props(fresh(dev_vault), objects, GithubIssuer(), dev_vault.root_token)
        oidc = next(a for a in props["auths"] if a["type"] == "oidc")
        # The identity provider's certificate is from a test CA: Vault is given it, as a team would
        # for an internal identity provider.
        oidc["config"] = {"oidc_discovery_url": idp.url, "oidc_client_id": "vault", "default_role": "operator",
                          "oidc_discovery_ca_pem": pathlib.Path(idp.tls.ca_cert).read_text()}
        props = {**props, "revoke_root_token": False, "client_secret_arns": {"oidc": arn}}
        outs = DeployIdentityProvider().create(props).outs
        assert client_secret not in str(outs)
        stored = dev_vault.api("GET", "auth/oidc/config")["data"]
        assert stored["oidc_client_id"] == "vault" and client_secret not in str(stored)
        # A secret the runner cannot read stops the write, naming what to grant.
        missing = {**props, "client_secret_arns": {"oidc": arn.replace("vault-oidc", "absent")}}
        with pytest.raises(RuntimeError, match="secretsmanager:GetSecretValue") as raised:
            DeployIdentityProvider().create(missing)
        assert client_secret not in str(raised.value)
    finally:
        idp.close()
