"""VaultInit and VaultReady through the real Pulumi engine (`pulumi up`, `preview`, `refresh`,
`destroy`) against real, sealed and uninitialized servers: what the engine stores, how it loads the
dynamic providers back from the state, and what a killed run leaves behind."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pulumi import automation as auto

from tests.integration import servers
from tests.integration.engine import (
    SECRET_SIG,
    SIG_KEY,
    Bootstrap,
    Engine,
    bootstrap_program,
    by_reference_program,
    kill_tree,
    plain_leaks,
    resources,
    revealed,
    start_up,
)
from tests.integration.servers import REPO_ROOT

pytestmark = pytest.mark.engine

INIT, READY = "vault-bootstrap-init", "vault-bootstrap-ready"


def settings_for(node: servers.VaultProcess, **overrides) -> Bootstrap:
    ca = Path(node.ca_cert).read_text() if node.ca_cert else ""
    return Bootstrap(address=node.api_addr, ca_cert_pem=ca, **overrides)


def diagnostics(output: str, phrase: str) -> list[str]:
    """The engine's error lines (in the progress and the Diagnostics section) that hold ``phrase``."""
    found = []
    for line in output.splitlines():
        if phrase in line:
            found.append(line[line.index("error: "):].strip() if "error: " in line else line.strip())
    return found


def secret_values(outputs: dict) -> list[str]:
    """The root token and every share, hex and base64, as `pulumi stack output --show-secrets` gives them."""
    token = outputs["rootToken"].value
    shares = list(outputs["unsealKeys"].value)
    hex_shares = [base64.b64decode(s).hex() for s in shares]
    return [token, *shares, *hex_shares]


def test_up_preview_refresh_up_restart_destroy(tls_raft_node, engine):
    node, _ = tls_raft_node
    stack = engine.stack(bootstrap_program(settings_for(node)))

    up = stack.up()
    assert up.summary.result == "succeeded"
    assert up.summary.resource_changes == {"create": 4}
    assert up.outputs["status"].value == "ready" and up.outputs["initStatus"].value == "initialized"
    assert up.outputs["rootToken"].secret and up.outputs["unsealKeys"].secret
    health = node.health()
    assert health["initialized"] is True and health["sealed"] is False
    token = up.outputs["rootToken"].value
    assert "root" in node.api("GET", "auth/token/lookup-self", token=token)["data"]["policies"]

    # The state holds the token and shares only as ciphertext, in every file the engine wrote.
    assert plain_leaks(engine, secret_values(up.outputs)) == []
    state = resources(engine.state())
    for name, keys in ((INIT, ("root_token", "keys", "keys_base64")), (READY, ("token", "keys"))):
        for key in keys:
            assert state[name]["outputs"][key].get(SIG_KEY) == SECRET_SIG, f"{name}.{key} is not a secret"
            assert "ciphertext" in state[name]["outputs"][key], f"{name}.{key} has no ciphertext"
    before = resources(engine.state(show_secrets=True))

    # Nothing to do: the preview says so (it fails otherwise), and so do a refresh and a second up.
    preview = stack.preview(expect_no_changes=True)
    assert preview.change_summary == {"same": 4}
    refresh = stack.refresh()
    assert refresh.summary.result == "succeeded"
    after = resources(engine.state(show_secrets=True))
    for name in (INIT, READY):
        assert after[name]["outputs"] == before[name]["outputs"], f"refresh changed {name}"
    again = stack.up()
    assert again.summary.resource_changes == {"same": 4}
    assert again.outputs["rootToken"].value == token

    # A restarted node comes back sealed: the preview shows the one update, `up` unseals it.
    node.restart()
    assert node.health()["sealed"] is True
    assert stack.preview().change_summary == {"same": 3, "update": 1}
    restarted = stack.up()
    assert restarted.summary.resource_changes == {"same": 3, "update": 1}
    assert restarted.outputs["status"].value == "ready" and restarted.outputs["rootToken"].value == token
    assert node.health()["sealed"] is False

    # Destroy forgets the resources and leaves Vault as it is, saying so.
    destroyed = stack.destroy()
    assert destroyed.summary.resource_changes == {"delete": 4}
    assert "VaultInit delete does nothing" in destroyed.stdout
    health = node.health()
    assert health["initialized"] is True and health["sealed"] is False
    node.api("GET", "auth/token/lookup-self", token=token)
    assert resources(engine.state()) == {}


def test_the_providers_load_from_the_state_in_another_folder(raft_node, engine):
    """Deployed from this checkout, then refreshed, previewed and destroyed from a folder where this
    repository cannot be imported: refresh and destroy load the providers from the state alone."""
    first = engine.stack(bootstrap_program(settings_for(raft_node)), folder="first", main=REPO_ROOT)
    token = first.up().outputs["rootToken"].value

    elsewhere = engine.stack(bootstrap_program(settings_for(raft_node)), folder="elsewhere")
    assert_cannot_import_the_repository(engine, engine.root / "elsewhere")
    assert elsewhere.refresh().summary.result == "succeeded"
    assert elsewhere.preview(expect_no_changes=True).change_summary == {"same": 4}
    assert elsewhere.destroy().summary.resource_changes == {"delete": 4}
    raft_node.api("GET", "auth/token/lookup-self", token=token)


def test_a_provider_stored_by_reference_would_not_load_there(engine):
    """The control for the test above: the same steps with a provider that dill stores by reference
    (to a module of this repository) fail, so that test would catch one."""
    engine.stack(by_reference_program, folder="first", main=REPO_ROOT).up()
    elsewhere = engine.stack(by_reference_program, folder="elsewhere")
    with pytest.raises(auto.CommandError) as err:
        elsewhere.refresh()
    assert "No module named 'tests'" in str(err.value)


def assert_cannot_import_the_repository(engine: Engine, folder: Path) -> None:
    env = {**os.environ, **engine.env()}
    check = subprocess.run([sys.executable, "-c", "import components"], cwd=folder, env=env, capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode != 0 and "No module named 'components'" in check.stderr


def test_a_preview_of_a_new_stack_needs_no_server(engine):
    """`pulumi preview` in a pull request, before the cluster exists: nothing listens at the address."""
    address = f"https://127.0.0.1:{servers.free_port()}"
    stack = engine.stack(bootstrap_program(Bootstrap(address=address, unseal_addresses=[address])))
    started = time.monotonic()
    preview = stack.preview()
    assert preview.change_summary == {"create": 4}
    assert time.monotonic() - started < 60, "the preview waited for the server"
    assert resources(engine.state()) == {}


def test_an_up_killed_while_waiting_for_peers_keeps_the_token(vault_bin, workdir, engine):
    """The first `pulumi up` of a two-node Shamir cluster whose second node is not there yet: it is
    killed (SIGKILL, the whole process tree) while it waits for that node. The root token is in the
    state already; the next `up`, once the node runs, finishes without initializing again."""
    first = servers.start_raft_node(vault_bin, workdir)
    second = None
    try:
        second_port = servers.free_port()
        second_addr = f"http://127.0.0.1:{second_port}"
        settings = settings_for(first, unseal_addresses=[first.api_addr, second_addr], expected_peers=2,
                                timeout="5m")
        log = engine.root / "killed-up.log"
        engine.root.mkdir(parents=True, exist_ok=True)
        proc = start_up(engine, settings, log)
        try:
            # VaultReady unseals only after VaultInit has returned: an unsealed first node means the
            # run is past init and waiting for the second node.
            first.wait_for(lambda h: h.get("initialized") is True and h.get("sealed") is False, timeout=120,
                           what="the killed run to initialize and unseal the first node")
            time.sleep(2)
            assert proc.poll() is None, log.read_text()[-3000:]
        finally:
            kill_tree(proc)

        state = engine.state(show_secrets=True)
        init = resources(state).get(INIT)
        assert init is not None, f"the killed run lost the root token:\n{log.read_text()[-3000:]}"
        token = revealed(init["outputs"]["root_token"])
        assert "root" in first.api("GET", "auth/token/lookup-self", token=token)["data"]["policies"]
        assert READY not in resources(state)
        assert [op["type"] for op in state["deployment"].get("pending_operations") or []] == ["creating"]

        second = servers.start_raft_node(vault_bin, workdir, api_port=second_port, retry_join=[first.api_addr])
        stack = engine.stack(bootstrap_program(settings))
        # The file backend still holds the killed run's lock: `pulumi cancel` is what an operator runs.
        with pytest.raises(auto.CommandError, match="currently locked"):
            stack.up()
        stack.cancel()
        resumed = stack.up()
        assert "pending operations" in resumed.stdout
        assert resumed.summary.resource_changes == {"same": 3, "create": 1}
        assert resumed.outputs["rootToken"].value == token
        assert resumed.outputs["status"].value == "ready"
        assert second.health()["sealed"] is False
        raft = first.api("GET", "sys/storage/raft/configuration", token=token)
        assert len([s for s in raft["data"]["config"]["servers"] if s["voter"]]) == 2
    finally:
        for node in (second, first):
            if node is not None:
                node.stop()
                node.remove_data_dir()


def test_provider_errors_read_as_one_line(raft_node, engine):
    """The engine shows what went wrong and what to do, not a Python traceback: a Vault initialized
    outside the stack, then the same Vault sealed with a token configured."""
    token, _ = raft_node.init_and_unseal()
    stack = engine.stack(bootstrap_program(settings_for(raft_node)))
    with pytest.raises(auto.CommandError) as err:
        stack.up()
    output = str(err.value)
    assert "Traceback" not in output
    lines = diagnostics(output, "is already initialized, and this stack holds no token")
    assert lines and all(x.startswith(f"error: RuntimeError: Vault at {raft_node.api_addr} ") for x in lines), lines
    assert all("secrets.vaultToken" in x for x in lines)

    raft_node.restart()
    stack = engine.stack(bootstrap_program(settings_for(raft_node, vault_token=token)))
    with pytest.raises(auto.CommandError) as err:
        stack.up()
    output = str(err.value)
    assert "Traceback" not in output and "not valid" not in output and token not in output
    lines = diagnostics(output, "is initialized but sealed")
    assert lines and all(x.startswith("error: RuntimeError: Vault at ") and "Unseal it" in x for x in lines), lines
    assert resources(engine.state()).get(INIT) is None
