"""The alert rules and the dashboard read only Vault metrics that a real server publishes, in the
states the alerts are about: scraped from every node of a 3-node cluster from our HCL, the way a dev
stack's ServiceMonitor without a token scrapes them (prod's presents a token that may read them:
test_metrics_access.py), and from a node that is sealed."""

from __future__ import annotations

import re

import requests

from components.model import load_config
from components.render import monitoring
from components.render import vault_objects as vs
from components.render.monitoring import Monitoring, alerts
from tests.harness import stack_config
from tests.integration import servers
from tests.integration.raft_cluster import start_cluster
from tests.integration.rollout_support import init
from tests.integration.vault_apply import apply

NAME = re.compile(r"\bvault_[a-z0-9_]+")


def _scrape(node: servers.VaultProcess, ca: str) -> dict[str, list[str]]:
    """metric name -> its sample lines."""
    answer = requests.get(f"{node.api_addr}/v1/sys/metrics?format=prometheus", verify=ca, timeout=10)
    assert answer.status_code == 200, (node.name, answer.status_code, answer.text[:200])
    found: dict[str, list[str]] = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            found.setdefault(re.split(r"[{ ]", line, maxsplit=1)[0], []).append(line)
    return found


def test_every_vault_metric_the_rules_and_dashboard_read_is_published(vault_bin, workdir, flavor):
    config, keys = stack_config("prod", {"cluster": {"replicas": 3}})
    platform = load_config(config, set(keys))
    m = Monitoring.of(platform)
    used = {n for a in alerts(m) for n in NAME.findall(a.expr)}
    used |= {n for q in monitoring.dashboard_queries(m) for n in NAME.findall(q)}
    assert {"vault_core_unsealed", "vault_core_active", "vault_autopilot_healthy",
            "vault_autopilot_failure_tolerance", "vault_audit_log_request_failure"} <= used

    cluster = start_cluster(vault_bin, workdir, unauthenticated_metrics=True)
    try:
        token = init(cluster)
        leader = cluster.leader()

        def call(method: str, path: str, **kw):
            return servers.api(method, leader.api_addr, path, token=token, ca=cluster.tls.ca_cert, **kw)

        apply(vs.build(platform), call, only={"autopilot"})
        if flavor == "vault":
            # Vault publishes the audit counters once a device exists (OpenBao from the start; its
            # audit devices come from the server config, not the API).
            call("PUT", "sys/audit/file", json={"type": "file", "options": {"file_path": str(workdir / "audit.log")}})
        servers.mount_kv_v2(call)
        for i in range(30):
            call("POST", f"secret/data/m/{i}", json={"data": {"v": str(i)}})
            call("GET", f"secret/data/m/{i}")

        published: dict[str, list[str]] = {}
        by_node = {}
        for node in cluster.nodes:
            by_node[node.name] = _scrape(node, cluster.tls.ca_cert)
            for name, lines in by_node[node.name].items():
                published.setdefault(name, []).extend(lines)
        assert sorted(used - set(published)) == []
        # Each node says whether it is the active one: exactly one does.
        active = [name for name, found in by_node.items()
                  if any(line.endswith(" 1") for line in found.get("vault_core_active", []))]
        assert active == [leader.name]
        assert any(line.endswith(" 1") for line in by_node[leader.name]["vault_autopilot_healthy"])

        # A sealed node still answers the scrape, and says it is sealed. (Vault seals only the active
        # node through the API; another one takes over.)
        servers.api("PUT", leader.api_addr, "sys/seal", token=token, ca=cluster.tls.ca_cert)
        leader.wait_for(lambda h: h.get("sealed") is True, timeout=30, what="sealed")
        sealed = _scrape(leader, cluster.tls.ca_cert)
        assert sealed["vault_core_unsealed"] and all(line.endswith(" 0") for line in sealed["vault_core_unsealed"])
    finally:
        cluster.stop()
