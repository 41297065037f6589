"""The metrics endpoint on a server running our rendered config: readable without a token only
when a dev stack scrapes it without one, otherwise like any other endpoint. prod's scrape token
(monitoring.metricsTokenSecret), made as the README says with the policy the stack writes, reads the
metrics and nothing else."""

from __future__ import annotations

import pathlib

import pytest
import requests

from components.render import policies as pol
from components.render.monitoring import unauthenticated_metrics
from tests.harness import load_stack
from tests.integration import servers
from tests.integration.bootstrap_steps import init_and_wait
from tests.integration.raft_cluster import start_cluster


def _started(vault_bin, workdir, *, open_metrics: bool):
    cluster = start_cluster(vault_bin, workdir, replicas=1, auto_unseal=False, unauthenticated_metrics=open_metrics)
    node = cluster.nodes[0]
    outs, ready = init_and_wait({
        "address": node.api_addr, "ca_cert_pem": pathlib.Path(cluster.tls.ca_cert).read_text(),
        "mode": "shamir", "shares": 1, "threshold": 1, "pgp_keys": [], "root_token_pgp_key": "",
        "unseal_addresses": [], "expected_peers": 1, "timeout_seconds": 60, "existing_token": None})
    assert ready["status"] == "ready", ready["status"]
    return cluster, node, outs["root_token"]


@pytest.mark.parametrize("scraped", [False, True])
def test_metrics_need_a_token_unless_scraping_is_configured(vault_bin, workdir, scraped):
    cluster, node, root = _started(vault_bin, workdir, open_metrics=scraped)
    try:
        url = f"{node.api_addr}/v1/sys/metrics?format=prometheus"
        anonymous = requests.get(url, verify=cluster.tls.ca_cert, timeout=10)
        if scraped:
            assert anonymous.status_code == 200 and "vault_" in anonymous.text
        else:
            assert anonymous.status_code in (400, 403), anonymous.status_code
            with_token = requests.get(url, verify=cluster.tls.ca_cert, timeout=10, headers={"X-Vault-Token": root})
            assert with_token.status_code == 200 and "vault_" in with_token.text
    finally:
        cluster.stop()


# What the scrape token must not reach: configuration, secrets, other tokens, Raft, its own lookup.
REFUSED = [("GET", "sys/mounts"), ("GET", "sys/policies/acl/metrics"), ("GET", "secret/data/anything"),
           ("POST", "auth/token/create"), ("GET", "auth/token/lookup-self"), ("GET", "sys/storage/raft/configuration"),
           ("PUT", "sys/policies/acl/metrics")]


def test_the_scrape_token_reads_the_metrics_and_nothing_else(vault_bin, workdir):
    prod = load_stack("prod")
    assert prod.cluster.service_monitor and prod.monitoring.metrics_token_secret
    cluster, node, root = _started(vault_bin, workdir, open_metrics=unauthenticated_metrics(prod))
    try:
        ca = cluster.tls.ca_cert
        # The policy exactly as the stack writes it, and the token as the README makes it.
        (policy,) = [p for p in pol.static_policies(prod) if p.name == pol.METRICS_POLICY]
        servers.api("PUT", node.api_addr, f"sys/policies/acl/{policy.name}", token=root, ca=ca,
                    json={"policy": pol.render(policy)})
        servers.mount_kv_v2(lambda method, path, **kw: servers.api(method, node.api_addr, path, token=root, ca=ca,
                                                                    **kw))
        made = servers.api("POST", node.api_addr, "auth/token/create-orphan", token=root, ca=ca,
                           json={"policies": [policy.name], "no_default_policy": True, "period": "768h",
                                 "display_name": "prometheus"})
        token = made["auth"]["client_token"]
        assert made["auth"]["policies"] == [policy.name]

        url = f"{node.api_addr}/v1/sys/metrics"
        anonymous = requests.get(url, params={"format": "prometheus"}, verify=ca, timeout=10)
        assert anonymous.status_code in (400, 403), anonymous.status_code
        # As the ServiceMonitor presents it: an Authorization bearer header.
        scraped = requests.get(url, params={"format": "prometheus"}, verify=ca, timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
        assert scraped.status_code == 200 and "vault_core_unsealed" in scraped.text, scraped.status_code
        for method, path in REFUSED:
            body = None if method == "GET" else {}
            answer = requests.request(method, f"{node.api_addr}/v1/{path}", verify=ca, timeout=10, json=body,
                                      headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 403, (method, path, answer.status_code, answer.text[:200])
    finally:
        cluster.stop()
