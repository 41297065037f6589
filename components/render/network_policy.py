"""The Vault server pods' NetworkPolicy. Pure: a plain manifest.

The cluster port carries Raft and request forwarding between Vault pods only. The API port is open
to the namespaces and address ranges the stack config names (or to everyone when it names none),
the load balancer's subnets among them when it connects from its own addresses;
the Vault namespace itself (the backup job) and the namespaces that deliver the applications'
secrets always reach it.
"""

from __future__ import annotations

from typing import Any

from components.model.names import API_PORT, CLUSTER_PORT, Names
from components.model.platform import NetworkPolicyConfig
from components.render.helm_values import server_labels
from components.render.labels import platform_labels


def network_policy(names: Names, config: NetworkPolicyConfig, clients_of_vault: tuple[str, ...] = (),
                   extra_namespaces: tuple[str, ...] = (), load_balancer_cidrs: tuple[str, ...] = ()) -> dict[str, Any]:
    """``clients_of_vault``: namespaces whose pods must reach the API whatever the config lists (the
    applications', their agents', the External Secrets Operator's, cert-manager's). ``extra_namespaces``:
    more namespaces whose pods reach the API port when the policy restricts it (Prometheus, which
    scrapes the metrics endpoint there). ``load_balancer_cidrs``: the subnets a load balancer that does
    not preserve client addresses connects from (components.model.rules.admitted_ranges)."""
    api: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": API_PORT}]}
    clients = config.api_from
    cidrs = list(dict.fromkeys([*load_balancer_cidrs, *clients.cidrs]))
    if clients.namespaces or cidrs:
        namespaces = sorted({names.namespace, *clients.namespaces, *clients_of_vault, *extra_namespaces})
        api["from"] = [
            {"namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}},
            *({"ipBlock": {"cidr": cidr}} for cidr in cidrs),
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{names.release}-server", "namespace": names.namespace,
                     "labels": platform_labels()},
        "spec": {
            "podSelector": {"matchLabels": server_labels(names)},
            "policyTypes": ["Ingress"],
            "ingress": [
                api,
                {"ports": [{"protocol": "TCP", "port": CLUSTER_PORT}],
                 "from": [{"podSelector": {"matchLabels": server_labels(names)}}]},
            ],
        },
    }
