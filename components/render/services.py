"""The Services through which `pulumi up` (and clients) reach the API. Pure: plain dicts."""

from __future__ import annotations

from typing import Any

from components.model import ApiConfig
from components.render.helm_values import server_labels
from components.render.names import API_PORT, Names


def api_service_annotations(api: ApiConfig) -> dict[str, str]:
    if api.service_type != "LoadBalancer" or not api.internal_load_balancer:
        return {}
    # Both the AWS Load Balancer Controller and the in-tree controller keep it inside the VPC.
    return {
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    }


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
