"""VaultCluster: the namespace, TLS, unseal wiring, the official chart in HA Raft mode, and the
Services through which `pulumi up` reaches the API."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config import PlatformConfig
from components.helm_values import UnsealWiring, build_values, server_labels
from components.names import API_PORT, POD_HOST_PORT_BASE, Names
from components.server_hcl import SealStanza, render_server_hcl
from components.tls import VaultTls
from components.unseal import AutoUnseal
from components.validation import duration_seconds

CHART = "vault"


def api_service_annotations(config: PlatformConfig) -> dict[str, str]:
    if config.api.service_type != "LoadBalancer" or not config.api.internal_load_balancer:
        return {}
    # Both the AWS Load Balancer Controller and the in-tree controller keep it inside the VPC.
    return {
        "service.beta.kubernetes.io/aws-load-balancer-type": "external",
        "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
        "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
        "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    }


def pod_unseal_ports(config: PlatformConfig) -> list[tuple[int, int, str]]:
    """(ordinal, nodePort, host address) for each pod a shamir dev stack must unseal directly."""
    if config.unseal.type != "shamir" or config.api.service_type != "NodePort":
        return []
    assert config.api.node_port is not None
    return [(i, config.api.node_port + 1 + i, f"https://127.0.0.1:{POD_HOST_PORT_BASE + i}")
            for i in range(config.cluster.replicas)]


class VaultCluster(pulumi.ComponentResource):
    """Outputs: ``namespace``, ``ca_cert_pem``, ``release_status``, ``api_address``."""

    def __init__(self, name: str, config: PlatformConfig, aws_provider: aws.Provider | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:cluster:VaultCluster", name, None, opts)
        names = Names.of(config)
        c = config.cluster

        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=names.namespace, labels={
                "app.kubernetes.io/part-of": "vault-platform",
                # Refuse privileged pods here: nothing in this namespace needs them (mlock is off).
                "pod-security.kubernetes.io/enforce": "baseline",
            }),
            opts=pulumi.ResourceOptions(parent=self),
        )
        namespace = self.namespace_resource.metadata.name
        self.tls = VaultTls(f"{name}-tls", config, namespace, opts=pulumi.ResourceOptions(parent=self))
        self.unseal = AutoUnseal(f"{name}-unseal", config, namespace, aws_provider,
                                 opts=pulumi.ResourceOptions(parent=self))

        def values(args: list[Any]) -> dict[str, Any]:
            seal: SealStanza | None = args[0]
            wiring: UnsealWiring = args[1]
            tls_secret: str = args[2]
            hcl = render_server_hcl(names, seal, ui=c.ui)
            return build_values(config, hcl, wiring, tls_secret)

        chart_values = pulumi.Output.all(self.unseal.seal, self.unseal.wiring, self.tls.secret_name).apply(values)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=names.release,
            chart=CHART,
            version=c.chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=c.chart.repository),
            namespace=namespace,
            values=chart_values,
            timeout=int(duration_seconds(c.await_timeout)),
            max_history=10,
            # Wait for the StatefulSet: pods are Ready while sealed (see the readiness path), so this
            # finishes before initialization and VaultInit can start.
            skip_await=False,
            cleanup_on_fail=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.tls, self.unseal]),
        )

        # One Service in front of every server pod: before init there is no active pod to select,
        # and after it standbys forward requests to the active node.
        service_type = config.api.service_type
        api_port: dict[str, Any] = {"name": "https", "port": API_PORT, "targetPort": API_PORT}
        if service_type == "NodePort":
            api_port["nodePort"] = config.api.node_port
        self.api_service = k8s.core.v1.Service(
            f"{name}-api",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=names.api_service, namespace=namespace,
                                                annotations=api_service_annotations(config)),
            spec={"type": service_type, "selector": server_labels(names), "ports": [api_port],
                  "publishNotReadyAddresses": False},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        self.pod_services = []
        for ordinal, node_port, _ in pod_unseal_ports(config):
            self.pod_services.append(k8s.core.v1.Service(
                f"{name}-pod-{ordinal}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{names.pod(ordinal)}-unseal", namespace=namespace),
                spec={"type": "NodePort",
                      "selector": {**server_labels(names), "statefulset.kubernetes.io/pod-name": names.pod(ordinal)},
                      "ports": [{"name": "https", "port": API_PORT, "targetPort": API_PORT, "nodePort": node_port}],
                      "publishNotReadyAddresses": True},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            ))

        self.namespace = namespace
        self.ca_cert_pem = self.tls.ca_cert_pem
        self.api_address = pulumi.Output.from_input(config.api.address)
        self.register_outputs({"namespace": namespace, "ca_cert_pem": self.ca_cert_pem,
                               "release_status": self.release.status, "api_address": self.api_address})
