"""VaultMonitoring: the ServiceMonitor, the PrometheusRule and the Grafana dashboard ConfigMap
(built by components.render.monitoring). The custom resources need the Prometheus Operator's CRDs in
the cluster; each object is only declared when its setting asks for it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.render import monitoring
from components.render.monitoring import Monitoring
from components.resources.manifests import object_name


@dataclass(frozen=True)
class VaultMonitoringArgs:
    """Which objects to declare: the ServiceMonitor (``service_monitor``), the alerts
    (``prometheus_rule``), the Grafana dashboard (``grafana_dashboard``)."""

    # What the objects are made from (components.render.monitoring.Monitoring.of).
    monitoring: Monitoring
    # The Vault namespace (the resource's name, so the objects wait for it).
    namespace: pulumi.Input[str]
    service_monitor: bool = False
    prometheus_rule: bool = False
    grafana_dashboard: bool = False
    # The release: the chart's own ServiceMonitor (older stacks had it) is gone before ours appears.
    wait_for: tuple[pulumi.Resource, ...] = ()


def _meta(manifest: dict, namespace: pulumi.Input[str]) -> dict:
    return {**manifest["metadata"], "namespace": namespace}


class VaultMonitoring(pulumi.ComponentResource):
    """What Prometheus and Grafana read; registered outputs: the names of what it declared."""

    service_monitor: k8s.apiextensions.CustomResource | None
    """The ServiceMonitor that scrapes every server pod."""
    prometheus_rule: k8s.apiextensions.CustomResource | None
    """The alerts."""
    dashboard: k8s.core.v1.ConfigMap | None
    """The Grafana dashboard, in a ConfigMap its sidecar picks up."""

    def __init__(self, name: str, args: VaultMonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:monitoring:VaultMonitoring", name, None, opts)
        m = args.monitoring
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.wait_for))
        outputs: dict[str, pulumi.Input[str]] = {}
        self.service_monitor = None
        self.prometheus_rule = None
        self.dashboard = None
        if args.service_monitor:
            manifest = monitoring.service_monitor(m)
            self.service_monitor = k8s.apiextensions.CustomResource(
                f"{name}-service-monitor", api_version=manifest["apiVersion"], kind=manifest["kind"],
                metadata=_meta(manifest, args.namespace), spec=manifest["spec"], opts=child)
            outputs["service_monitor"] = self.service_monitor.metadata["name"]
        if args.prometheus_rule:
            manifest = monitoring.prometheus_rule(m)
            self.prometheus_rule = k8s.apiextensions.CustomResource(
                f"{name}-prometheus-rule", api_version=manifest["apiVersion"], kind=manifest["kind"],
                metadata=_meta(manifest, args.namespace), spec=manifest["spec"], opts=child)
            outputs["prometheus_rule"] = self.prometheus_rule.metadata["name"]
        if args.grafana_dashboard:
            manifest = monitoring.dashboard_config_map(m)
            self.dashboard = k8s.core.v1.ConfigMap(
                f"{name}-dashboard", metadata=_meta(manifest, args.namespace), data=manifest["data"], opts=child)
            outputs["dashboard"] = object_name(self.dashboard)
        self.register_outputs(outputs)
