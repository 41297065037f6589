"""Fixture (c): three Raft nodes from our rendered HCL, auto-unsealed through transit by a 4th
server, initialized by VaultInit; leader election, failover without losing writes, and a restarted
node that unseals itself."""

from __future__ import annotations

import time
from pathlib import Path

import hcl
import pytest

from tests.integration import servers
from tests.integration.bootstrap_steps import init_and_wait
from tests.integration.raft_cluster import start_cluster


@pytest.fixture
def cluster(vault_bin, workdir):
    c = start_cluster(vault_bin, workdir)
    try:
        yield c
    finally:
        c.stop()


def init_cluster(cluster) -> dict:
    outs, ready = init_and_wait({
        "address": cluster.nodes[0].api_addr, "ca_cert_pem": Path(cluster.tls.ca_cert).read_text(),
        "mode": "auto", "shares": 3, "threshold": 2, "pgp_keys": [], "root_token_pgp_key": "",
        "unseal_addresses": [], "expected_peers": 3, "timeout_seconds": 120, "existing_token": None,
    })
    assert ready["status"] == "ready", ready["status"]
    return outs


def write(cluster, token: str, i: int, timeout: float = 30.0) -> None:
    """Write secret i through whichever node leads now, retrying while an election runs."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    for _ in range(int(timeout * 4)):
        try:
            leader = cluster.leader(timeout=max(1.0, deadline - time.monotonic()))
            servers.api("POST", leader.api_addr, f"secret/data/item-{i}", token=token,
                        json={"data": {"value": str(i)}}, ca=cluster.tls.ca_cert)
            return
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    raise AssertionError(f"write {i} failed for {timeout}s: {last}")


def test_rendered_config_is_what_the_nodes_run(cluster):
    parsed = hcl.loads(cluster.hcl[0])
    assert len(parsed["storage"]["raft"]["retry_join"]) == 3
    assert {j["leader_tls_servername"] for j in parsed["storage"]["raft"]["retry_join"]} == {
        "vault-0.vault-internal", "vault-1.vault-internal", "vault-2.vault-internal"}
    assert parsed["seal"]["transit"]["key_name"] == "autounseal"
    assert "token" not in parsed["seal"]["transit"]


def test_cluster_elects_a_leader_serves_writes_and_survives_losing_it(cluster):
    outs = init_cluster(cluster)
    token = outs["root_token"]
    assert len(outs["keys"]) == 3  # recovery shares, since the cluster auto-unseals
    leader = cluster.leader()
    raft = servers.api("GET", leader.api_addr, "sys/storage/raft/configuration", token=token, ca=cluster.tls.ca_cert)
    servers_ = raft["data"]["config"]["servers"]
    assert sorted(s["node_id"] for s in servers_) == ["vault-0", "vault-1", "vault-2"]
    assert all(s["voter"] for s in servers_)
    servers.api("POST", leader.api_addr, "sys/mounts/secret", token=token, ca=cluster.tls.ca_cert,
                json={"type": "kv", "options": {"version": "2"}})
    for i in range(40):
        write(cluster, token, i)

    leader.kill()
    new_leader = cluster.leader(timeout=60)
    assert new_leader is not leader
    for i in range(40, 80):
        write(cluster, token, i)
    for i in range(80):
        data = servers.api("GET", new_leader.api_addr, f"secret/data/item-{i}", token=token, ca=cluster.tls.ca_cert)
        assert data["data"]["data"]["value"] == str(i), f"write {i} was lost"

    # The killed node comes back sealed-at-start and unseals itself through transit: no keys given.
    leader.start()
    deadline = time.monotonic() + 60
    for _ in range(240):
        try:
            h = servers.health(leader.api_addr, ca=cluster.tls.ca_cert)
            if h.get("sealed") is False and h.get("_status") in (200, 429):
                break
        except Exception:  # still starting: try again below
            h = {}
        if time.monotonic() > deadline:
            pytest.fail(f"restarted node did not auto-unseal:\n{leader.log_tail()}")
        time.sleep(0.25)
    # Rejoined: it serves reads again (forwarded to the active node once it has found it).
    value = None
    deadline = time.monotonic() + 60
    for _ in range(240):
        try:
            data = servers.api("GET", leader.api_addr, "secret/data/item-79", token=token, ca=cluster.tls.ca_cert)
            value = data["data"]["data"]["value"]
            break
        except servers.VaultAPIError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
    assert value == "79", f"restarted node did not rejoin:\n{leader.log_tail()}"


@pytest.fixture
def shamir_cluster(vault_bin, workdir):
    c = start_cluster(vault_bin, workdir, auto_unseal=False)
    try:
        yield c
    finally:
        c.stop()


def test_dev_shape_init_unseals_every_pod_whatever_the_api_address_hits(shamir_cluster):
    """The dev stack: Shamir, the API Service may route to any pod, each pod has its own port."""
    c = shamir_cluster
    outs, ready = init_and_wait({
        # the API address lands on the last pod, not the first
        "address": c.nodes[-1].api_addr, "ca_cert_pem": Path(c.tls.ca_cert).read_text(),
        "mode": "shamir", "shares": 1, "threshold": 1, "pgp_keys": [], "root_token_pgp_key": "",
        "unseal_addresses": [n.api_addr for n in c.nodes], "expected_peers": 3, "timeout_seconds": 120,
        "existing_token": None,
    })
    assert ready["status"] == "ready", ready["status"]
    for node in c.nodes:
        assert servers.health(node.api_addr, ca=c.tls.ca_cert)["sealed"] is False
    raft = servers.api("GET", c.leader().api_addr, "sys/storage/raft/configuration", token=outs["root_token"],
                       ca=c.tls.ca_cert)
    assert sorted(s["node_id"] for s in raft["data"]["config"]["servers"] if s["voter"]) == \
        ["vault-0", "vault-1", "vault-2"]
