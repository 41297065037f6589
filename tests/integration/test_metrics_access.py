"""The metrics endpoint on a server running our rendered config: readable without a token only
when the stack scrapes it (cluster.serviceMonitor), otherwise like any other endpoint."""

from __future__ import annotations

import pathlib

import pytest
import requests

from tests.integration.bootstrap_steps import init_and_wait
from tests.integration.raft_cluster import start_cluster


@pytest.mark.parametrize("scraped", [False, True])
def test_metrics_need_a_token_unless_scraping_is_configured(vault_bin, workdir, scraped):
    cluster = start_cluster(vault_bin, workdir, replicas=1, auto_unseal=False, unauthenticated_metrics=scraped)
    try:
        node = cluster.nodes[0]
        outs, ready = init_and_wait({
            "address": node.api_addr, "ca_cert_pem": pathlib.Path(cluster.tls.ca_cert).read_text(),
            "mode": "shamir", "shares": 1, "threshold": 1, "pgp_keys": [], "root_token_pgp_key": "",
            "unseal_addresses": [], "expected_peers": 1, "timeout_seconds": 60, "existing_token": None})
        assert ready["status"] == "ready", ready["status"]
        url = f"{node.api_addr}/v1/sys/metrics?format=prometheus"
        anonymous = requests.get(url, verify=cluster.tls.ca_cert, timeout=10)
        if scraped:
            assert anonymous.status_code == 200 and "vault_" in anonymous.text
        else:
            assert anonymous.status_code in (400, 403), anonymous.status_code
            with_token = requests.get(url, verify=cluster.tls.ca_cert, timeout=10,
                                      headers={"X-Vault-Token": outs["root_token"]})
            assert with_token.status_code == 200 and "vault_" in with_token.text
    finally:
        cluster.stop()
