"""VaultInit's and VaultReady's create, diff, update, read and delete against real, sealed and
uninitialized servers."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from components.model.checks import pgp_public_key
from components.providers.vault_init import VaultInitError, VaultInitProvider, VaultReadyProvider
from tests.integration import servers
from tests.integration.bootstrap_steps import init_and_wait, ready_props


def props(node: servers.VaultProcess, **overrides) -> dict:
    base = {
        "address": node.api_addr, "ca_cert_pem": "", "mode": "shamir", "shares": 3, "threshold": 2,
        "pgp_keys": [], "root_token_pgp_key": "", "unseal_addresses": [], "expected_peers": 1,
        "timeout_seconds": 60, "existing_token": None,
    }
    if node.ca_cert:
        base["ca_cert_pem"] = Path(node.ca_cert).read_text()
    base.update(overrides)
    return base


def test_create_returns_as_soon_as_sys_init_answers(raft_node):
    """VaultInit hands the engine the token before any wait: Vault is initialized and still sealed."""
    outs = VaultInitProvider().create(props(raft_node)).outs
    assert outs["status"] == "initialized"
    assert outs["initialized_by_stack"] is True
    assert len(outs["keys"]) == 3 and len(outs["keys_base64"]) == 3
    health = raft_node.health()
    assert health["initialized"] is True and health["sealed"] is True


def test_ready_unseals_and_the_token_works(raft_node):
    init, ready = init_and_wait(props(raft_node))
    assert ready["status"] == "ready"
    health = raft_node.health()
    assert health["initialized"] is True and health["sealed"] is False
    me = servers.api("GET", raft_node.api_addr, "auth/token/lookup-self", token=init["root_token"])
    assert "root" in me["data"]["policies"]


def test_a_second_run_is_a_no_op(raft_node):
    first, ready = init_and_wait(props(raft_node))
    news = props(raft_node)
    diff = VaultInitProvider().diff("vault-init", first, news)
    assert diff.changes is False and diff.replaces == []
    ready_diff = VaultReadyProvider().diff("vault-ready", ready, ready_props(news, first))
    assert ready_diff.changes is False and ready_diff.replaces == []
    # Even when asked to update (say the address moved), nothing re-initializes and the token stays.
    updated = VaultInitProvider().update("vault-init", first, news).outs
    assert updated["root_token"] == first["root_token"] and updated["keys"] == first["keys"]
    assert updated["status"] == "initialized"
    assert VaultReadyProvider().update("vault-ready", ready, ready_props(news, first)).outs["status"] == "ready"
    servers.api("GET", raft_node.api_addr, "auth/token/lookup-self", token=updated["root_token"])
    # Refresh keeps what only the state knows.
    read = VaultInitProvider().read("vault-init", first)
    assert read.outs["root_token"] == first["root_token"]
    assert VaultReadyProvider().read("vault-ready", ready).outs == ready


def test_an_unfinished_wait_is_finished_by_the_next_up(raft_node):
    """Two voters expected, one node: the wait ends incomplete (nothing fails, the token is kept),
    the next `pulumi up` sees that and finishes once the cluster matches."""
    init = VaultInitProvider().create(props(raft_node, expected_peers=2, timeout_seconds=3)).outs
    ready = VaultReadyProvider().create(ready_props(props(raft_node, expected_peers=2, timeout_seconds=3),
                                                    init)).outs
    assert ready["status"].startswith("incomplete: 1 of 2 Raft members joined as voters"), ready["status"]
    assert raft_node.health()["sealed"] is False
    news = ready_props(props(raft_node), init)
    assert VaultReadyProvider().diff("vault-ready", ready, ready_props(props(raft_node, expected_peers=2,
                                                                            timeout_seconds=3), init)).changes
    assert VaultReadyProvider().update("vault-ready", ready, news).outs["status"] == "ready"


def test_changing_shares_later_does_not_touch_vault(raft_node):
    provider = VaultInitProvider()
    first = provider.create(props(raft_node)).outs
    updated = provider.update("vault-init", first, props(raft_node, shares=5, threshold=3)).outs
    assert updated["shares"] == 3 and updated["keys"] == first["keys"]
    assert servers.api("GET", raft_node.api_addr, "sys/seal-status")["n"] == 3


def test_initialized_vault_without_a_token_gives_a_clear_error(raft_node):
    servers.init_and_unseal(raft_node.api_addr)
    with pytest.raises(VaultInitError) as err:
        VaultInitProvider().create(props(raft_node))
    message = str(err.value)
    assert "already initialized" in message and "secrets.vaultToken" in message
    assert "never re-initializes" in message


def test_initialized_vault_with_a_configured_token_is_adopted(raft_node):
    token, _ = servers.init_and_unseal(raft_node.api_addr)
    outs, ready = init_and_wait(props(raft_node, existing_token=token))
    assert outs["initialized_by_stack"] is False and outs["root_token"] == token and outs["status"] == "adopted"
    assert ready["status"] == "ready"


def test_a_wrong_configured_token_is_refused(raft_node):
    servers.init_and_unseal(raft_node.api_addr)
    with pytest.raises(VaultInitError, match=r"secrets\.vaultToken is not valid") as err:
        VaultInitProvider().create(props(raft_node, existing_token="hvs.not-a-token"))
    assert "\n" not in str(err.value)


def test_a_configured_token_on_a_sealed_vault_is_not_called_invalid(raft_node):
    """A sealed Vault answers every lookup with 503: the message says sealed, not "not valid"."""
    token, _ = servers.init_and_unseal(raft_node.api_addr)
    raft_node.restart()
    assert raft_node.health()["sealed"] is True
    with pytest.raises(VaultInitError) as err:
        VaultInitProvider().create(props(raft_node, existing_token=token))
    message = str(err.value)
    assert "is initialized but sealed" in message and "Unseal it" in message
    assert "not valid" not in message and "\n" not in message


def test_restarted_sealed_node_is_unsealed_by_the_next_up(raft_node):
    first, ready = init_and_wait(props(raft_node))
    raft_node.restart()
    assert raft_node.health()["sealed"] is True
    # VaultInit has nothing to do; VaultReady sees the sealed pod.
    assert VaultInitProvider().diff("vault-init", first, props(raft_node)).changes is False
    news = ready_props(props(raft_node), first)
    assert VaultReadyProvider().diff("vault-ready", ready, news).changes is True
    outs = VaultReadyProvider().update("vault-ready", ready, news).outs
    assert outs["status"] == "ready" and raft_node.health()["sealed"] is False


def test_a_wiped_vault_is_not_silently_initialized_again(raft_node):
    provider = VaultInitProvider()
    first, _ = init_and_wait(props(raft_node))
    raft_node.stop()
    raft_node.remove_data_dir()
    raft_node.start()
    raft_node.wait_until_responding()
    # The engine calls update only when diff reports a change: the wipe must be one.
    diff = provider.diff("vault-init", first, props(raft_node))
    assert diff.changes is True and diff.replaces == []
    with pytest.raises(VaultInitError, match="not initialized, but this stack initialized it before"):
        provider.update("vault-init", first, props(raft_node))
    assert raft_node.health()["initialized"] is False


def test_delete_leaves_vault_alone(raft_node):
    outs, ready = init_and_wait(props(raft_node))
    VaultReadyProvider().delete("vault-ready", ready)
    VaultInitProvider().delete("vault-init", outs)
    health = raft_node.health()
    assert health["initialized"] is True and health["sealed"] is False


def test_tls_is_verified_against_the_stack_ca(tls_raft_node, workdir):
    node, _ = tls_raft_node
    _, ready = init_and_wait(props(node))
    assert ready["status"] == "ready"
    other = servers.make_test_ca(workdir / "other-ca")
    with pytest.raises(VaultInitError, match="cannot reach Vault"):
        VaultInitProvider().create(props(node, ca_cert_pem=Path(other.cert_path).read_text(), timeout_seconds=2))


@pytest.fixture
def gpg_key(workdir):
    """A throwaway operator key in its own GNUPGHOME; returns (gpg, base64 public key)."""
    import gnupg

    home = workdir / "gnupg"
    home.mkdir(mode=0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    key = gpg.gen_key(gpg.gen_key_input(key_type="RSA", key_length=2048, name_real="Vault Operator",
                                        name_email="operator@example.invalid", no_protection=True))
    assert key.fingerprint, f"gpg could not make a key: {key.stderr}"
    public = subprocess.run(["gpg", "--homedir", str(home), "--export", key.fingerprint], check=True,
                            capture_output=True).stdout
    return gpg, base64.b64encode(public).decode()


def test_pgp_encrypted_shares_and_root_token_decrypt_with_the_operator_key(raft_node, gpg_key):
    gpg, public = gpg_key
    # What an operator exports is what the config's shape check accepts.
    assert pgp_public_key(public) is None
    outs, ready = init_and_wait(props(raft_node, shares=2, threshold=2, pgp_keys=[public, public],
                                      root_token_pgp_key=public))
    # Nothing usable is stored: the shares and the token are ciphertext, left to the operators.
    assert ready["status"].startswith("initialized; key shares are PGP-encrypted"), ready["status"]
    assert raft_node.health()["sealed"] is True
    # A sealed pod the stack cannot unseal is no change to make: previews stay quiet.
    assert VaultReadyProvider().diff("vault-ready", ready, dict(ready)).changes is False
    shares = [gpg.decrypt(base64.b64decode(k)) for k in outs["keys_base64"]]
    assert all(s.ok for s in shares), [s.status for s in shares]
    for share in shares:
        servers.api("PUT", raft_node.api_addr, "sys/unseal", json={"key": str(share)})
    assert raft_node.health()["sealed"] is False
    # Just unsealed, a node takes a moment to become the active one and serve token lookups.
    raft_node.wait_until_active()
    token = gpg.decrypt(base64.b64decode(outs["root_token"]))
    assert token.ok
    servers.api("GET", raft_node.api_addr, "auth/token/lookup-self", token=str(token))
