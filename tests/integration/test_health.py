"""The probes' health paths on a real server: which states Kubernetes would call Ready or alive.

A probe succeeds when the answer is 200-399. Ready must mean "serves clients" (active or unsealed
standby), plus "never initialized" so the first init can reach a pod through the API Service; a
sealed, initialized pod must not be Ready (the PodDisruptionBudget would count it and the API
Service would send clients to it), but must stay alive (a restart does not unseal it).
"""

from __future__ import annotations

import pathlib

import requests

from components.render.helm_values import LIVENESS_PATH, READINESS_PATH
from tests.integration import servers
from tests.integration.bootstrap_steps import init_and_wait
from tests.integration.raft_cluster import start_cluster


def probe(node: servers.VaultProcess, path: str) -> bool:
    answer = requests.get(node.api_addr + path, verify=node.ca_cert or True, timeout=5)
    return 200 <= answer.status_code < 400


def test_uninitialized_is_ready_unsealed_is_ready_sealed_is_not(raft_node):
    assert probe(raft_node, READINESS_PATH) and probe(raft_node, LIVENESS_PATH)
    raft_node.init_and_unseal()
    assert probe(raft_node, READINESS_PATH) and probe(raft_node, LIVENESS_PATH)
    raft_node.restart()
    assert raft_node.health()["sealed"] is True and raft_node.health()["initialized"] is True
    assert not probe(raft_node, READINESS_PATH), "a sealed, initialized pod must not be Ready"
    assert probe(raft_node, LIVENESS_PATH), "a sealed pod must not be restarted by its liveness probe"
    raft_node.unseal()
    assert probe(raft_node, READINESS_PATH)


def test_standbys_are_ready(vault_bin, workdir):
    cluster = start_cluster(vault_bin, workdir)
    try:
        _, ready = init_and_wait({
            "address": cluster.nodes[0].api_addr, "ca_cert_pem": pathlib.Path(cluster.tls.ca_cert).read_text(),
            "mode": "auto", "shares": 1, "threshold": 1, "pgp_keys": [], "root_token_pgp_key": "",
            "unseal_addresses": [], "expected_peers": 3, "timeout_seconds": 120, "existing_token": None})
        assert ready["status"] == "ready", ready["status"]
        leader = cluster.leader()
        standbys = [n for n in cluster.nodes if n is not leader]
        assert len(standbys) == 2
        for node in cluster.nodes:
            health = node.health()
            assert health["sealed"] is False
            assert probe(node, READINESS_PATH), node.name
        assert all(n.health()["standby"] for n in standbys)
    finally:
        cluster.stop()
