"""The first run without a standing root token, and the emergency way back, on real servers.

The flow a prod stack goes through: `sys/init` with the shares encrypted to the operators' PGP
keys, the deploy identity written with the root token, the root token traded for a short-lived
deployer token and revoked, the rest of the configuration applied with that token, and later runs
logging in through CI. Then the break-glass drill of docs/break-glass.md: operators decrypt their
shares and make a new root token with `generate-root`.
"""

from __future__ import annotations

import base64

import pytest

from components.providers.deploy_identity import DeployIdentityProvider
from components.providers.vault_init import VaultInitProvider
from components.render import deploy_identity as ident
from components.render import vault_objects as vs
from tests.integration import servers
from tests.integration.github_oidc import GithubIssuer
from tests.integration.test_deploy_identity import REPO, identity_props, load, login, status_of

SHARES, THRESHOLD = 3, 2


def decrypt_shares(gpg, encrypted: list[str]) -> list[str]:
    """What each operator does with their share: `echo <share> | base64 -d | gpg -d`."""
    shares = []
    for share in encrypted:
        plain = gpg.decrypt(base64.b64decode(share))
        assert plain.ok, plain.status
        shares.append(str(plain))
    return shares


def generate_root(node: servers.VaultProcess, shares: list[str]) -> str:
    """docs/break-glass.md, step by step: start an attempt, give the threshold of shares, decode."""
    attempt = servers.api("PUT", node.api_addr, "sys/generate-root/attempt", json={})
    otp, nonce = attempt["otp"], attempt["nonce"]
    answer = {}
    for share in shares[:THRESHOLD]:
        answer = servers.api("PUT", node.api_addr, "sys/generate-root/update", json={"key": share, "nonce": nonce})
    assert answer["complete"] is True, answer
    encoded = answer["encoded_token"]
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=True)).decode()


def test_the_first_run_revokes_the_root_token_and_break_glass_brings_one_back(
        raft_node, operators, monkeypatch, fake_kube, workdir):
    gpg, public_keys = operators
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    monkeypatch.delenv("TERRAFORM_VAULT_AUTH_JWT", raising=False)
    objects = vs.build(load("prod"))
    issuer = GithubIssuer()

    init = VaultInitProvider().create({
        "address": raft_node.api_addr, "ca_cert_pem": "", "mode": "shamir", "shares": SHARES, "threshold": THRESHOLD,
        "pgp_keys": public_keys, "root_token_pgp_key": "", "unseal_addresses": [], "expected_peers": 1,
        "timeout_seconds": 60, "existing_token": None}).outs
    # The stack holds the shares only as ciphertext: what it stores cannot unseal Vault.
    for stored in init["keys_base64"]:
        assert status_of_unseal(raft_node, stored) == 400
    # The operators unseal (in prod the KMS seal does this, and the shares are recovery shares).
    shares = decrypt_shares(gpg, init["keys_base64"])
    for share in shares[:THRESHOLD]:
        servers.api("PUT", raft_node.api_addr, "sys/unseal", json={"key": share})
    servers.wait_for_health(raft_node.api_addr, lambda h: not h.get("sealed") and not h.get("standby"), timeout=60)
    root = init["root_token"]

    first_run_file = workdir / ".vault-login" / "prod.first-run"
    created = DeployIdentityProvider().create(identity_props(raft_node, objects, issuer, root,
                                                             first_run_file=str(first_run_file))).outs
    assert created["root_token_revoked"] is True
    assert status_of(raft_node, "GET", "auth/token/lookup-self", root) == 403  # the old root token is gone
    # The first run's token is in a file only this user reads, and nowhere in what the engine stores.
    first_run = first_run_file.read_text().strip()
    assert oct(first_run_file.stat().st_mode & 0o777) == "0o600"
    assert first_run not in str(created)
    looked_up = servers.api("GET", raft_node.api_addr, "auth/token/lookup-self", token=first_run)["data"]
    assert looked_up["policies"] == ["default", ident.DEPLOYER_POLICY]
    assert 0 < looked_up["ttl"] <= 660 and looked_up["renewable"] is False
    # (The rest of the first run, with that token only, is the engine tier's: test_vault_side.py.)

    # A later run, in CI, with the deploy identity changed in the config: the deployer may not change
    # who may deploy, nor its own policy. The run says so, and changes nothing.
    later = identity_props(raft_node, objects, issuer, root)
    later["auths"][0]["roles"][0]["payload"]["token_ttl"] = "600s"  # a changed setting to apply
    olds = {**identity_props(raft_node, objects, issuer, root), "root_token_revoked": True,
            "bootstrap_expires_at": 0}
    monkeypatch.setenv("TERRAFORM_VAULT_AUTH_JWT", issuer.token(repository=REPO, environment="production"))
    with pytest.raises(RuntimeError, match="break-glass"):
        DeployIdentityProvider().update("deploy-identity", olds, later)
    ci_token = login(raft_node, "deployer", issuer.token(repository=REPO, environment="production"))["auth"][
        "client_token"]
    # It may read the login (its refresh shows a change made by hand), never write it.
    assert status_of(raft_node, "GET", "auth/jwt-ci/role/deployer", ci_token) == 200
    assert status_of(raft_node, "POST", "auth/jwt-ci/role/deployer", ci_token, {"token_ttl": 600}) == 403

    # Break glass: nobody can log in any more, so a threshold of operators makes a root token.
    new_root = generate_root(raft_node, decrypt_shares(gpg, init["keys_base64"]))
    assert servers.api("GET", raft_node.api_addr, "auth/token/lookup-self", token=new_root)["data"]["policies"] == [
        "root"]
    # ... applies the identity change with it ...
    monkeypatch.delenv("TERRAFORM_VAULT_AUTH_JWT")
    monkeypatch.setenv("VAULT_TOKEN", new_root)
    DeployIdentityProvider().update("deploy-identity", olds, later)
    assert servers.api("GET", raft_node.api_addr, "auth/jwt-ci/role/deployer", token=new_root)["data"][
        "token_ttl"] == 600
    # ... and revokes it when the emergency is over.
    servers.api("POST", raft_node.api_addr, "auth/token/revoke-self", token=new_root)
    assert status_of(raft_node, "GET", "auth/token/lookup-self", new_root) == 403


def status_of_unseal(node: servers.VaultProcess, key: str) -> int:
    try:
        servers.api("PUT", node.api_addr, "sys/unseal", json={"key": key})
    except servers.VaultAPIError as e:
        return e.status
    return 200


def test_nothing_is_revoked_when_the_identity_cannot_be_written(dev_vault):
    """A failure before the hand-over leaves the root token working, so the next run can try again."""
    objects = vs.build(load("prod"))
    props = identity_props(dev_vault, objects, GithubIssuer(), dev_vault.root_token)
    props["auths"][0]["config"] = {"jwt_validation_pubkeys": ["not a key"]}
    with pytest.raises(RuntimeError, match="configuring auth method 'jwt-ci'"):
        DeployIdentityProvider().create(props)
    assert dev_vault.api("GET", "auth/token/lookup-self")["data"]["policies"] == ["root"]
