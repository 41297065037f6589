"""The Vault pods' NetworkPolicy, and who may read metrics without a token."""

from __future__ import annotations

import hcl
import kubernetes_validate
import pytest

from tests.harness import run_stack

# Without the ServiceMonitor and the alert rules, the prod stack's labels, alerts and Prometheus
# namespace would have no effect: they go too.
UNMONITORED = {"labels": None, "alerts": None, "prometheusNamespace": None}

POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _manifest(rec) -> dict:
    policy = rec.one(POLICY)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": policy.get("metadata"), "spec": policy.get("spec")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_policy_is_valid_and_keeps_the_cluster_port_between_vault_pods(stack):
    manifest = _manifest(run_stack(stack))
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    spec = manifest["spec"]
    assert spec["podSelector"]["matchLabels"]["component"] == "server" and spec["policyTypes"] == ["Ingress"]
    api, cluster = spec["ingress"]
    assert cluster["ports"] == [{"protocol": "TCP", "port": 8201}]
    assert cluster["from"] == [{"podSelector": {"matchLabels": spec["podSelector"]["matchLabels"]}}]
    assert api["ports"] == [{"protocol": "TCP", "port": 8200}]


def test_prod_lets_only_named_namespaces_and_ranges_reach_the_api():
    api = _manifest(run_stack("prod"))["spec"]["ingress"][0]
    namespaces = api["from"][0]["namespaceSelector"]["matchExpressions"][0]
    assert namespaces["key"] == "kubernetes.io/metadata.name" and namespaces["operator"] == "In"
    # The Vault namespace (the backup and restart Jobs) always reaches the API; with the ServiceMonitor
    # so does Prometheus' namespace, for the metrics.
    assert namespaces["values"] == ["cert-manager", "default", "external-secrets", "monitoring", "vault"]
    without = _manifest(run_stack("prod", {"cluster": {"serviceMonitor": False}, "monitoring": {
        "prometheusRule": False, **UNMONITORED}}))["spec"]["ingress"][0]
    assert without["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "cert-manager", "default", "external-secrets", "vault"]
    assert api["from"][1:] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]


def test_dev_leaves_the_api_port_open_and_the_policy_can_be_turned_off():
    assert "from" not in _manifest(run_stack("dev"))["spec"]["ingress"][0]
    rec = run_stack("dev", {"cluster": {"networkPolicy": {"enabled": False}}})
    assert rec.of_type(POLICY) == []


def test_a_range_with_host_bits_is_refused():
    rec = run_stack("prod", {"cluster": {"networkPolicy": {"apiFrom": {"cidrs": ["10.0.0.1/16"]}}}},
                    expect_error=True)
    assert "vault-platform:cluster.networkPolicy.apiFrom.cidrs" in rec.error and "is not a CIDR range" in rec.error


@pytest.mark.parametrize(("service_monitor", "open_metrics"), [(False, False), (True, True)])
def test_metrics_are_open_only_when_scraped(service_monitor, open_metrics):
    rec = run_stack("prod", {"cluster": {"serviceMonitor": service_monitor},
                             "monitoring": {"prometheusRule": service_monitor,
                                            **({} if service_monitor else UNMONITORED)}})
    release = rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release")
    listener = hcl.loads(release.get("values.server.ha.raft.config"))["listener"]
    telemetry = listener["tcp"].get("telemetry", {})
    assert telemetry.get("unauthenticated_metrics_access", False) is open_metrics
