"""VaultCluster: the namespace, TLS, unseal wiring, the official chart in HA Raft mode, and the
Services through which `pulumi up` reaches the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.render.cluster_plan import ClusterPlan
from components.render.helm_values import InjectorWebhook
from components.render.labels import platform_labels
from components.resources.errors import InvalidInput
from components.resources.injector_tls import InjectorTls, InjectorTlsArgs
from components.resources.manifests import object_name
from components.resources.rollout import RolloutAccess, RolloutAccessArgs, values_trigger
from components.resources.tls import VaultTls, VaultTlsArgs
from components.resources.unseal import AutoUnseal, AutoUnsealArgs


@dataclass(frozen=True)
class VaultClusterArgs:
    """What a Vault cluster needs: ``plan``, everything it is made from (components.render.cluster_plan:
    ``cluster_plan(...)`` from config sections written in code, ``ClusterPlan.of(config)`` from a stack's
    config), with an odd number of server pods; ``transit_unseal_token``, the token of the Vault whose
    transit key unseals this one (a secret; only for transit unseal without the operator's own Secret)."""

    plan: ClusterPlan
    transit_unseal_token: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        replicas = self.plan.names.replicas
        if replicas < 1 or replicas % 2 == 0:
            raise InvalidInput("plan.names.replicas", f"VaultClusterArgs: cluster.replicas must be an odd number, "
                                                      f"not {replicas}")


class VaultCluster(pulumi.ComponentResource):
    """The Vault servers: their namespace, certificate and unseal, the chart's release, and the Services
    (and DNS record) through which the API is reached."""

    namespace: pulumi.Output[str]
    """The Vault namespace (the namespace resource's name: what uses it waits for it)."""
    ca_cert_pem: pulumi.Output[str]
    """PEM of the CA the servers' certificate chains to (public): what a client trusts."""
    tls_secret_name: pulumi.Output[str]
    """The kubernetes.io/tls Secret the server pods mount."""
    api_address: pulumi.Output[str]
    """The https address `pulumi up` reaches the API at (api.address)."""
    release_status: pulumi.Output[Any]
    """The Helm release's status."""
    unseal_kms_key_arn: pulumi.Output[str] | None
    """awskms: the ARN of the auto-unseal key."""
    api_load_balancer_hostname: pulumi.Output[str] | None
    """LoadBalancer: the hostname (or IP) the cloud gave the API Service; empty until it has one."""
    pod_template_trigger: pulumi.Output[str]
    """A hash of what the server pod template is made from: a change runs the rolling restart again."""
    namespace_resource: k8s.core.v1.Namespace
    """The namespace (protected: deleting it deletes the Raft volumes)."""
    tls: VaultTls
    """The servers' certificate."""
    unseal: AutoUnseal
    """What lets the pods unseal themselves."""
    injector_tls: InjectorTls | None
    """The Agent Injector webhook's certificate, when the stack makes it."""
    rollout_access: RolloutAccess | None
    """The rolling restart's service account, Role and scale-down Job (cluster.rollout.enabled)."""
    release: k8s.helm.v3.Release
    """The chart's release (protected: it owns the StatefulSet and its volumes)."""
    api_service: k8s.core.v1.Service
    """The Service in front of every server pod, through which the API is reached."""
    pod_services: list[k8s.core.v1.Service]
    """A dev shamir stack's per-pod NodePorts, through which `pulumi up` unseals each pod."""
    network_policy: k8s.networking.v1.NetworkPolicy | None
    """The server pods' NetworkPolicy (cluster.networkPolicy.enabled)."""
    api_dns_record: aws.route53.Record | None
    """route53: the CNAME for the API address's host name."""

    def __init__(self, name: str, args: VaultClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:cluster:VaultCluster", name, None, opts)
        # The AWS provider comes through opts (providers=[...]), as every provider does.
        aws_provider = self.get_provider("aws:index:Provider")
        plan = args.plan
        names = plan.names

        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=names.namespace, labels={
                **platform_labels(managed=False),
                # Refuse privileged pods here: nothing in this namespace needs them (mlock is off).
                "pod-security.kubernetes.io/enforce": "baseline",
            }),
            # Deleting the namespace deletes the Raft volumes with it: every secret.
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        namespace = object_name(self.namespace_resource)
        self.tls = VaultTls(f"{name}-tls", VaultTlsArgs(namespace, names.release, plan.tls),
                            opts=pulumi.ResourceOptions(parent=self))
        self.unseal = AutoUnseal(
            f"{name}-unseal", AutoUnsealArgs(namespace, names, plan.unseal, transit_token=args.transit_unseal_token),
            opts=pulumi.ResourceOptions(parent=self))

        self.injector_tls = None
        if plan.injector_tls is not None:
            self.injector_tls = InjectorTls(
                f"{name}-injector-tls", InjectorTlsArgs(namespace, names.release, plan.injector_tls, plan.tls.source),
                opts=pulumi.ResourceOptions(parent=self))
        webhook_inputs: dict[str, Any] = {} if self.injector_tls is None else {
            "webhook_secret": self.injector_tls.secret_name, "webhook_ca_bundle": self.injector_tls.ca_bundle}

        def values(inputs: dict[str, Any]) -> dict[str, Any]:
            webhook = (InjectorWebhook(inputs["webhook_secret"], inputs["webhook_ca_bundle"])
                       if webhook_inputs else None)
            return plan.server.values(seal=inputs["seal"], wiring=inputs["wiring"], tls_secret=inputs["tls_secret"],
                                      cert_pem=inputs["cert_pem"], webhook=webhook)

        chart_values = pulumi.Output.all(seal=self.unseal.seal, wiring=self.unseal.wiring,
                                         tls_secret=self.tls.secret_name, cert_pem=self.tls.cert_pem,
                                         **webhook_inputs).apply(values)
        # Any change to what the pod template is made from runs the rolling restart again; the
        # restart itself finds out which pods really run an old revision.
        self.pod_template_trigger = chart_values.apply(lambda v: values_trigger(v, plan.chart_version))
        release_waits: list[pulumi.Resource] = [self.tls, self.unseal,
                                                *([self.injector_tls] if self.injector_tls else [])]
        self.rollout_access = None
        if plan.rollout is not None:
            # Before the release: a lower replica count first leaves Raft, then the StatefulSet.
            self.rollout_access = RolloutAccess(
                f"{name}-rollout", RolloutAccessArgs(plan.rollout, namespace, wait_for=(self.tls,)),
                opts=pulumi.ResourceOptions(parent=self))
            release_waits.append(self.rollout_access.scale_down)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=names.release,
            chart=plan.chart.chart,
            version=plan.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=plan.chart.repository)
            if plan.chart.repository else None,
            namespace=namespace,
            values=chart_values,
            timeout=plan.timeout_seconds,
            max_history=10,
            # Awaited: the injector and the release's objects. It does not wait for the server pods
            # to be Ready (they cannot be before init): the StatefulSet's OnDelete strategy makes
            # Helm's readiness check skip it.
            skip_await=False,
            cleanup_on_fail=False,
            # Uninstalling the release removes the StatefulSet that owns the data volumes.
            opts=pulumi.ResourceOptions(parent=self, depends_on=release_waits, protect=True),
        )

        api = plan.api
        self.api_service = k8s.core.v1.Service(
            f"{name}-api",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=names.api_service, namespace=namespace,
                                                annotations=api.service_annotations),
            spec=api.service_spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        self.pod_services = [
            k8s.core.v1.Service(
                f"{name}-pod-{service.ordinal}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=service.name, namespace=namespace),
                spec=service.spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )
            for service in api.pod_unseal_services
        ]

        self.network_policy = None
        if plan.network_policy is not None:
            manifest = plan.network_policy
            self.network_policy = k8s.networking.v1.NetworkPolicy(
                f"{name}-network-policy",
                metadata={**manifest["metadata"], "namespace": namespace},
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self),
            )

        # Where the load balancer answers: point the address's name at it (or let the record below).
        self.api_load_balancer_hostname = None
        if api.load_balancer:
            self.api_load_balancer_hostname = self.api_service.status.apply(load_balancer_host)
        self.api_dns_record = None
        if api.route53 is not None:
            if aws_provider is None or self.api_load_balancer_hostname is None:
                raise InvalidInput("plan.api.route53", "VaultCluster: a route53 record (api.dns.record) needs an AWS "
                                                       "provider and a LoadBalancer")
            self.api_dns_record = aws.route53.Record(
                f"{name}-api-dns",
                zone_id=api.route53.zone_id,
                name=api.route53.name,
                type="CNAME",
                ttl=api.route53.ttl,
                records=[self.api_load_balancer_hostname],
                # Several stacks may share a zone; never take over a name someone else made.
                allow_overwrite=False,
                opts=pulumi.ResourceOptions(parent=self, provider=aws_provider),
            )

        self.namespace = namespace
        self.ca_cert_pem = self.tls.ca_cert_pem
        self.tls_secret_name = self.tls.secret_name
        self.api_address = pulumi.Output.from_input(api.address)
        self.release_status = self.release.status
        self.unseal_kms_key_arn = self.unseal.kms_key_arn
        outputs: dict[str, Any] = {"namespace": namespace, "ca_cert_pem": self.ca_cert_pem,
                                   "release_status": self.release_status, "api_address": self.api_address,
                                   "tls_secret_name": self.tls_secret_name}
        if self.unseal_kms_key_arn is not None:
            outputs["unseal_kms_key_arn"] = self.unseal_kms_key_arn
        if self.api_load_balancer_hostname is not None:
            outputs["api_load_balancer_hostname"] = self.api_load_balancer_hostname
        self.register_outputs(outputs)


def _field(value: Any, snake: str, camel: str) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(camel, value.get(snake))
    return getattr(value, snake, None)


def load_balancer_host(status: Any) -> str:
    """The hostname (AWS) or IP the cloud gave the LoadBalancer Service; empty until it has one."""
    ingress = _field(_field(status, "load_balancer", "loadBalancer"), "ingress", "ingress") or []
    if not ingress:
        return ""
    return _field(ingress[0], "hostname", "hostname") or _field(ingress[0], "ip", "ip") or ""
