"""Autopilot as the stack configures it, on a real 3-node cluster from our HCL: a node killed and
replaced by a new one (a pod whose volume was lost comes back as a new server) leaves a dead voter
behind; autopilot removes it once it has been out of contact for deadServerLastContactThreshold,
and until then the bootstrap's peer check does not call the cluster ready."""

from __future__ import annotations

import pathlib
import time

import pytest

from components.model import load_config
from components.providers.vault_init import VaultReadyProvider
from components.render import vault_objects as vs
from tests.harness import stack_config
from tests.integration import servers
from tests.integration.raft_cluster import start_cluster
from tests.integration.rollout_support import init
from tests.integration.vault_apply import apply

# The shortest threshold Vault accepts, so the test waits one minute, not the stack's ten.
OVERRIDES = {"cluster": {"replicas": 3, "raft": {"autopilot": {"deadServerLastContactThreshold": "1m"}}}}


@pytest.fixture
def cluster(vault_bin, workdir):
    c = start_cluster(vault_bin, workdir, spare_ports=1)
    try:
        yield c
    finally:
        c.stop()


def _config(call) -> dict[str, bool]:
    servers_ = call("GET", "sys/storage/raft/configuration")["data"]["config"]["servers"]
    return {s["node_id"]: s["voter"] for s in servers_}


def _wait(what: str, predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout) + 5):
        if predicate():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout}s")


def test_autopilot_removes_a_killed_and_replaced_server(cluster, vault_bin):
    token = init(cluster)

    def call(method: str, path: str, **kw):
        return servers.api(method, cluster.leader().api_addr, path, token=token, ca=cluster.tls.ca_cert, **kw)

    config, keys = stack_config("prod", OVERRIDES)
    settings = vs.build(load_config(config, set(keys)))
    assert settings.autopilot is not None and settings.autopilot.min_quorum == 3
    apply(settings, call, only={"autopilot"})
    applied = call("GET", "sys/storage/raft/autopilot/configuration")["data"]
    assert applied["cleanup_dead_servers"] is True and applied["min_quorum"] == 3
    assert applied["dead_server_last_contact_threshold"] == "1m0s"
    servers.mount_kv_v2(call)
    for i in range(20):
        call("POST", f"secret/data/before/item-{i}", json={"data": {"value": str(i)}})

    # vault-2's pod is replaced, its volume with it: a new, empty server joins in its place.
    victim = next(n for n in cluster.nodes if n.name == "vault-2")
    if victim is cluster.leader():
        call("PUT", "sys/step-down")
        _wait("another leader", lambda: cluster.leader() is not victim, 60)
    victim.kill()
    victim.remove_data_dir()
    replacement = cluster.add_node(vault_bin, 3, node_id="vault-3")
    cluster.nodes.append(replacement)
    replacement.wait_until_responding(timeout=60)

    _wait("vault-3 joining as a voter", lambda: _config(call).get("vault-3") is True, 120)
    # The dead server is still a voter (for a minute): four voters, one of them dead. The bootstrap's
    # peer check counts exactly, so it does not call that ready.
    assert _config(call).get("vault-2") is True
    props = {"address": cluster.leader().api_addr, "ca_cert_pem": pathlib.Path(cluster.tls.ca_cert).read_text(),
             "expected_peers": 3, "timeout_seconds": 3}
    problems = VaultReadyProvider()._wait_peers({**props, "token": token})
    assert problems and problems[0].startswith("4 of 3 Raft members"), problems

    _wait("autopilot removing the dead vault-2", lambda: _config(call) == {
        "vault-0": True, "vault-1": True, "vault-3": True}, 240)
    props = {"address": cluster.leader().api_addr, "ca_cert_pem": pathlib.Path(cluster.tls.ca_cert).read_text(),
             "expected_peers": 3, "timeout_seconds": 10}
    assert VaultReadyProvider()._wait_peers({**props, "token": token}) == []
    # Autopilot's own view follows on its next refresh.
    _wait("autopilot's state to drop vault-2", lambda: set(call("GET", "sys/storage/raft/autopilot/state")[
        "data"]["servers"]) == {"vault-0", "vault-1", "vault-3"}, 60)
    for i in range(20):
        assert call("GET", f"secret/data/before/item-{i}")["data"]["data"]["value"] == str(i)
