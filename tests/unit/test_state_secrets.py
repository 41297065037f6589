"""What prod's state holds that is secret, and why none of it logs in to Vault or impersonates it.

Whoever can decrypt the state (the role a pull request's preview runs with must) reads every value in
it. Each secret the program leaves there is listed below with why it opens nothing; a new one fails
this test until it is listed, or better, kept out of the state. The config refuses what would undo
these reasons in prod (components/model/rules.py `_check_prod_state`): tests below check that too.
"""

from __future__ import annotations

import pytest

from components.model import ConfigError, load_config
from tests.harness import run_stack, stack_config
from tests.harness.fakes import CANARY

# (resource type, input or output) -> why it grants nothing.
HELD = {
    ("pulumi-python:dynamic:Resource", "root_token"): "the root token, revoked in the run that made it",
    ("pulumi-python:dynamic:Resource", "keys"): "recovery shares, each encrypted to an operator's PGP key",
    ("pulumi-python:dynamic:Resource", "keys_base64"): "the same shares, base64",
    ("pulumi-python:dynamic:Resource", "existing_token"): "empty: prod refuses secrets.vaultToken",
    ("pulumi-python:dynamic/bootstrap:VaultReady", "token"): "the revoked root token",
    ("pulumi-python:dynamic/bootstrap:VaultReady", "keys"): "the PGP-encrypted shares",
    ("pulumi-python:dynamic/bootstrap:DeployIdentity", "token"): "the revoked root token",
    ("pulumi-python:dynamic/bootstrap:DeployIdentity", "client_secrets"): "empty: prod reads the OIDC client "
                                                                          "secret from AWS when it is needed",
    ("vault:database/secretBackendConnection:SecretBackendConnection", "postgresql.password"):
        "the admin password Vault replaces right after (rotateRoot, required in prod)",
    ("vault:database/secretBackendConnection:SecretBackendConnection", "postgresql"): "the same password",
    ("vault:pkiSecret/secretBackendIntermediateCertRequest:SecretBackendIntermediateCertRequest", "privateKey"):
        "empty: an internal key stays in Vault",
    ("vault:kubernetes/authBackendConfig:AuthBackendConfig", "tokenReviewerJwt"): "empty: Vault uses its pod's own",
    ("vault:kubernetes/authBackendConfig:AuthBackendConfig", "tokenReviewerJwtWo"): "empty, as above",
    ("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", "token"): "empty: no lock token is set",
    ("pulumi:providers:aws", "accessKey"): "empty: credentials come from the runner's role",
    ("pulumi:providers:aws", "secretKey"): "empty, as above",
    ("pulumi:providers:aws", "token"): "empty, as above",
    ("kubernetes:core/v1:Secret", "stringData"): "an application namespace's copy of the public CA",
    ("kubernetes:core/v1:Secret", "data"): "the same",
}
# The serialized code of a dynamic provider: secret because it could capture a value; it does not.
PROVIDER_CODE = "__provider"


@pytest.fixture(scope="module")
def prod():
    return run_stack("prod")


def test_every_secret_prods_state_holds_is_listed_with_why_it_opens_nothing(prod):
    found = set()
    for r in prod.resources:
        for path in [*r.secret_paths, *r.additional_secret_outputs]:
            if path != PROVIDER_CODE:
                found.add((r.type, path))
    assert found - set(HELD) == set(), "a secret the prod state holds that is not accounted for"
    # The values that would open something if the config allowed it are empty here.
    init = prod.one("pulumi-python:dynamic:Resource", "vault-bootstrap-init")
    assert init.get("existing_token", None) in (None, "")
    identity = prod.one("pulumi-python:dynamic/bootstrap:DeployIdentity")
    assert identity.get("client_secrets") == {} and identity.get("revoke_root_token") is True
    assert init.get("pgp_keys") and len(init.get("pgp_keys")) == init.get("shares")
    connection = prod.one("vault:database/secretBackendConnection:SecretBackendConnection")
    assert connection.ignore_changes == ["postgresql.password"]  # rotated, never sent again
    assert prod.one("pulumi-python:dynamic:Resource", "vault-config-db-rotate-root-app-postgres")
    # No private key, no token, no KV value.
    assert not prod.of_type("pulumi-python:dynamic/tls:LocalTls")
    assert not [r for r in prod.of_type("kubernetes:core/v1:Secret") if "tls.key" in (r.inputs.get("stringData") or {})]
    assert not prod.of_type("vault:kv/secretV2:SecretV2")
    assert prod.export_secret_paths == ["unsealKeys"] and "rootToken" not in prod.exports


def test_no_dynamic_providers_code_carries_a_secret(prod):
    for r in prod.resources:
        code = r.inputs.get(PROVIDER_CODE)
        if code is not None:
            assert CANARY not in str(code), r.name


@pytest.mark.parametrize(("overrides", "secrets", "key"), [
    ({}, {"kv": {"a/b": {"k": f"{CANARY}-kv"}}}, "secrets.kv"),
    ({}, {"vaultToken": f"{CANARY}-token"}, "secrets.vaultToken"),
    ({"deploy": {"revokeRootToken": False}}, None, "deploy.revokeRootToken"),
    ({"init": {"acceptPlaintextShares": True, "pgpKeys": None}}, None, "init.acceptPlaintextShares"),
    ({"init": {"pgpKeys": None}}, None, "init.pgpKeys"),
    ({"tls": {"source": "generated"}}, None, "tls.source"),
    ({"unseal": {"type": "transit", "awskms": None, "transit": {"address": "https://transit.example.com",
                                                                 "keyName": "unseal"}}},
     {"transitUnsealToken": f"{CANARY}-transit"}, "secrets.transitUnsealToken"),
    ({"deploy": {"operatorOidc": {"enabled": True, "discoveryUrl": "https://login.example.com/", "clientId": "v",
                                  "adminGroup": "vault-admins"}}}, {"oidcClientSecret": f"{CANARY}-client-secret"},
     "secrets.oidcClientSecret"),
    ({"database": {"connections": [{"name": "app-postgres", "connectionUrl":
                                    "postgresql://{{username}}:{{password}}@db.example.com:5432/app?sslmode=verify-full",
                                    "username": "vault_admin", "allowedRoles": ["myapp-db"], "rotateRoot": False}]}},
     None, "database.connections[0].rotateRoot"),
])
def test_prod_refuses_what_would_put_a_login_in_its_state(overrides, secrets, key):
    raw, keys = stack_config("prod", overrides, secrets)
    with pytest.raises(ConfigError) as refused:
        load_config(raw, set(keys))
    assert any(p.startswith(f"vault-platform:{key}: ") for p in refused.value.problems), refused.value.problems
    assert CANARY not in str(refused.value)


def test_a_transit_seal_in_prod_takes_its_token_from_the_operators_secret():
    rec = run_stack("prod", {"unseal": {"type": "transit", "awskms": None, "transit": {
        "address": "https://transit.example.com:8200", "keyName": "autounseal", "tokenSecret": "vault-unseal-token"}}})
    values = rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release").get("values")
    assert values["server"]["extraSecretEnvironmentVars"] == [
        {"envName": "VAULT_TOKEN", "secretName": "vault-unseal-token", "secretKey": "VAULT_TOKEN"}]
    # The stack's own Secret holds only the transit server's CA, if any: no token.
    stack_secret = rec.one("kubernetes:core/v1:Secret", "vault-cluster-unseal-transit")
    assert "VAULT_TOKEN" not in (stack_secret.get("stringData") or {})
