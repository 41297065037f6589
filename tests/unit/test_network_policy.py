"""The Vault pods' NetworkPolicy, and who may read metrics without a token."""

from __future__ import annotations

import hcl
import kubernetes_validate
import pytest

from tests.harness import run_stack

# Without the ServiceMonitor and the alert rules, the prod stack's labels, alerts and Prometheus
# namespace would have no effect: they go too.
UNMONITORED = {"labels": None, "alerts": None, "prometheusNamespace": None, "metricsTokenSecret": None}

POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
LB_CIDRS = ["10.0.250.0/26", "10.0.250.64/26", "10.0.250.128/26"]
SERVICE = "kubernetes:core/v1:Service"


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
    # The load balancer's own subnets, which hold no pod: not the VPC, whose addresses the VPC CNI
    # gives every pod.
    assert api["from"][1:] == [{"ipBlock": {"cidr": cidr}} for cidr in LB_CIDRS]


def test_dev_leaves_the_api_port_open_and_the_policy_can_be_turned_off():
    assert "from" not in _manifest(run_stack("dev"))["spec"]["ingress"][0]
    rec = run_stack("dev", {"cluster": {"networkPolicy": {"enabled": False}}})
    assert rec.of_type(POLICY) == []


def test_a_range_with_host_bits_is_refused():
    rec = run_stack("prod", {"cluster": {"networkPolicy": {"apiFrom": {"cidrs": ["10.0.0.1/16"]}}}},
                    expect_error=True)
    assert "vault-platform:cluster.networkPolicy.apiFrom.cidrs" in rec.error and "is not a CIDR range" in rec.error


SCRAPED_WITH_TOKEN = {"cluster": {"serviceMonitor": True}, "monitoring": {"metricsTokenSecret": "vault-metrics-token"}}


@pytest.mark.parametrize(("stack", "overrides", "open_metrics"), [
    ("prod", {"cluster": {"serviceMonitor": False}, "monitoring": {"prometheusRule": False, **UNMONITORED}}, False),
    # prod's own: the ServiceMonitor presents a token.
    ("prod", {}, False),
    ("dev", {}, False),
    ("dev", SCRAPED_WITH_TOKEN, False),
    # Only a dev stack that scrapes without a token opens the endpoint (and is warned).
    ("dev", {"cluster": {"serviceMonitor": True}}, True),
])
def test_metrics_need_a_token_unless_a_dev_stack_scrapes_without_one(stack, overrides, open_metrics):
    rec = run_stack(stack, overrides)
    release = rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release")
    listener = hcl.loads(release.get("values.server.ha.raft.config"))["listener"]
    telemetry = listener["tcp"].get("telemetry", {})
    assert telemetry.get("unauthenticated_metrics_access", False) is open_metrics


# --- who the load balancer is, as the pods see it -------------------------------------------------


def _refused(overrides: dict) -> str:
    rec = run_stack("prod", overrides, expect_error=True)
    assert rec.error and rec.resources == []
    return rec.error


def test_prod_refuses_an_admitted_range_that_holds_pods():
    """On EKS the VPC CNI gives pods VPC addresses: a VPC-wide ipBlock admits every pod of every namespace."""
    error = _refused({"cluster": {"networkPolicy": {"apiFrom": {"cidrs": ["10.0.0.0/16"]}}}})
    assert "vault-platform:cluster.networkPolicy.apiFrom.cidrs: '10.0.0.0/16' overlaps the pod range '10.0.0.0/17'" \
        in error
    error = _refused({"api": {"loadBalancer": {"subnetCidrs": ["10.0.64.0/24"]}}})
    assert "vault-platform:api.loadBalancer.subnetCidrs: '10.0.64.0/24' overlaps the pod range" in error


def test_prod_needs_the_pod_ranges_to_check_what_it_admits():
    error = _refused({"cluster": {"networkPolicy": {"podCidrs": None}}})
    assert "vault-platform:cluster.networkPolicy.podCidrs: is required in prod" in error


def test_the_load_balancer_sits_in_its_own_subnets_and_does_not_preserve_client_addresses():
    rec = run_stack("prod")
    annotations = rec.one(SERVICE, "vault-cluster-api").get("metadata.annotations")
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-subnets"] == \
        "subnet-0a1b2c3d4e5f60001,subnet-0a1b2c3d4e5f60002,subnet-0a1b2c3d4e5f60003"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"] == \
        "preserve_client_ip.enabled=false"


def test_with_client_addresses_preserved_the_policy_admits_the_clients_not_the_load_balancer():
    clients = {"cluster": {"networkPolicy": {"apiFrom": {"cidrs": ["10.1.0.0/24"]}}},
               "api": {"loadBalancer": {"preserveClientIp": True, "subnetCidrs": None}}}
    rec = run_stack("prod", clients)
    api = _manifest(rec)["spec"]["ingress"][0]
    assert api["from"][1:] == [{"ipBlock": {"cidr": "10.1.0.0/24"}}]
    annotations = rec.one(SERVICE, "vault-cluster-api").get("metadata.annotations")
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"] == \
        "preserve_client_ip.enabled=true"
    error = _refused({"api": {"loadBalancer": {"preserveClientIp": True, "subnetCidrs": None}}})
    assert "vault-platform:cluster.networkPolicy.apiFrom.cidrs: is empty" in error
    assert "preserveClientIp" in error


def test_prod_refuses_a_load_balancer_it_cannot_admit():
    error = _refused({"api": {"loadBalancer": {"subnetCidrs": None}}})
    assert "vault-platform:api.loadBalancer.subnetCidrs: is required" in error


def test_load_balancer_settings_need_a_load_balancer():
    rec = run_stack("dev", {"api": {"loadBalancer": {"preserveClientIp": True}}}, expect_error=True)
    assert "vault-platform:api.loadBalancer.preserveClientIp" in rec.error
    assert "api.serviceType is 'NodePort'" in rec.error
