"""The Services through which `pulumi up` (and clients) reach the API. Pure: plain dicts."""

from __future__ import annotations

from typing import Any

from components.model import ApiConfig
from components.model.checks import url_host
from components.model.names import API_PORT, Names
from components.render.helm_values import server_labels


def api_service_annotations(api: ApiConfig) -> dict[str, str]:
    annotations: dict[str, str] = {}
    if api.service_type == "LoadBalancer":
        # The AWS Load Balancer Controller makes an NLB with pod IPs as targets; the last annotation
        # is what the in-tree controller reads, so neither makes it internet-facing by default.
        scheme = "internal" if api.internal_load_balancer else "internet-facing"
        annotations.update({
            "service.beta.kubernetes.io/aws-load-balancer-type": "external",
            "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
            "service.beta.kubernetes.io/aws-load-balancer-scheme": scheme,
        })
        if api.internal_load_balancer:
            annotations["service.beta.kubernetes.io/aws-load-balancer-internal"] = "true"
        lb = api.load_balancer
        if lb.subnets:
            annotations["service.beta.kubernetes.io/aws-load-balancer-subnets"] = ",".join(lb.subnets)
        # Said either way: whose address the pods see decides what the NetworkPolicy must admit.
        annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"] = \
            f"preserve_client_ip.enabled={'true' if lb.preserve_client_ip else 'false'}"
    if api.dns.record == "externalDns":
        annotations["external-dns.alpha.kubernetes.io/hostname"] = url_host(api.address)
        annotations["external-dns.alpha.kubernetes.io/ttl"] = str(api.dns.ttl)
    return annotations


def api_service_spec(api: ApiConfig, names: Names) -> dict[str, Any]:
    """One Service in front of every server pod: before init there is no active pod to select, and
    after it standbys forward requests to the active node."""
    port: dict[str, Any] = {"name": "https", "port": API_PORT, "targetPort": API_PORT}
    if api.service_type == "NodePort":
        port["nodePort"] = api.node_port
    return {"type": api.service_type, "selector": server_labels(names), "ports": [port],
            "publishNotReadyAddresses": False}


def pod_unseal_service_spec(names: Names, ordinal: int, node_port: int) -> dict[str, Any]:
    """A dev shamir stack's per-pod NodePort, through which `pulumi up` unseals exactly that pod."""
    return {"type": "NodePort",
            "selector": {**server_labels(names), "statefulset.kubernetes.io/pod-name": names.pod(ordinal)},
            "ports": [{"name": "https", "port": API_PORT, "targetPort": API_PORT, "nodePort": node_port}],
            "publishNotReadyAddresses": True}
