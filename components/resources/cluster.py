"""VaultCluster: the namespace, TLS, unseal wiring, the official chart in HA Raft mode, and the
Services through which `pulumi up` reaches the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.model import ApiConfig, AwsConfig, ClusterConfig, Secret, TlsConfig, UnsealConfig
from components.model.checks import duration_seconds, url_host
from components.model.names import Names, pod_unseal_ports
from components.render.charts import chart_source
from components.render.helm_values import InjectorWebhook, UnsealWiring, build_values
from components.render.images import pulled_from
from components.render.labels import platform_labels
from components.render.network_policy import network_policy
from components.render.rollout_job import RolloutJob
from components.render.server_hcl import SealStanza, render_server_hcl
from components.render.services import api_service_annotations, api_service_spec, pod_unseal_service_spec
from components.resources.errors import InvalidInput
from components.resources.injector_tls import InjectorTls, InjectorTlsArgs
from components.resources.rollout import RolloutAccess, RolloutAccessArgs, values_trigger
from components.resources.tls import VaultTls, VaultTlsArgs
from components.resources.unseal import AutoUnseal, AutoUnsealArgs

CHART = "vault"


@dataclass(frozen=True)
class VaultClusterArgs:
    """What a Vault cluster needs: where it runs, the chart and pods, how the API is reached, TLS and
    unseal. ``cluster.replicas`` must be set (odd)."""

    namespace: str
    api: ApiConfig
    unseal: UnsealConfig
    cluster: ClusterConfig = field(default_factory=lambda: ClusterConfig(replicas=3))
    tls: TlsConfig = field(default_factory=TlsConfig)
    # Production placement: one pod per node is a hard rule, two injector replicas.
    production: bool = False
    aws: AwsConfig | None = None
    transit_unseal_token: Secret | None = None
    # Namespaces whose pods must reach the API whatever cluster.networkPolicy lists (the applications').
    api_client_namespaces: tuple[str, ...] = ()
    # The Kubernetes auth mount injected agents and the rolling restart's Job log in through, and the
    # audience of the Job's token.
    kubernetes_auth_path: str = "kubernetes"
    token_audience: str = ""
    # Namespaces beyond apiFrom that reach the API port: where Prometheus runs, with the ServiceMonitor.
    metrics_from: tuple[str, ...] = ()
    # sys/metrics without a token: only for a ServiceMonitor that has no token to present (dev).
    unauthenticated_metrics: bool = False
    # The private registry every image is pulled from (images.registry); empty: the public ones.
    image_registry: str = ""

    def __post_init__(self) -> None:
        if self.cluster.replicas is None or self.cluster.replicas < 1 or self.cluster.replicas % 2 == 0:
            raise InvalidInput("cluster.replicas", f"VaultClusterArgs: must be an odd number, not "
                                                                 f"{self.cluster.replicas}")

    @property
    def names(self) -> Names:
        assert self.cluster.replicas is not None
        return Names(self.cluster.release_name, self.namespace, self.cluster.replicas)

    @property
    def tls_secret(self) -> str:
        return (self.tls.existing_secret or "") if self.tls.source == "existingSecret" else self.names.tls_secret

    def rollout_job(self) -> RolloutJob:
        """What the scale-down and restart Jobs run with."""
        return RolloutJob(names=self.names, image=pulled_from(self.cluster.rollout.image, self.image_registry),
                          tls_secret=self.tls_secret,
                          kubernetes_auth_path=self.kubernetes_auth_path,
                          pod_timeout_seconds=int(duration_seconds(self.cluster.rollout.pod_timeout)),
                          token_audience=self.token_audience,
                          unseal_keys=self.unseal.mode == "shamir")

    @property
    def pod_unseal_addresses(self) -> list[str]:
        """Where `pulumi up` unseals each pod of a shamir dev stack (empty otherwise)."""
        return [address for _, _, address in pod_unseal_ports(self.unseal.mode, self.api, self.names.replicas)]


class VaultCluster(pulumi.ComponentResource):
    """Outputs: ``namespace``, ``ca_cert_pem``, ``api_address``, ``release_status``, ``tls_secret_name``,
    and ``unseal_kms_key_arn`` with awskms."""

    def __init__(self, name: str, args: VaultClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:cluster:VaultCluster", name, None, opts)
        # The AWS provider comes through opts (providers=[...]), as every provider does.
        aws_provider = self.get_provider("aws:index:Provider")
        names = args.names
        c = args.cluster

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
        namespace = self.namespace_resource.metadata.name
        self.tls = VaultTls(f"{name}-tls", VaultTlsArgs(namespace, names, args.tls),
                            opts=pulumi.ResourceOptions(parent=self))
        self.unseal = AutoUnseal(
            f"{name}-unseal",
            AutoUnsealArgs(namespace, names, args.unseal, aws=args.aws, transit_token=args.transit_unseal_token,
                           tags=dict(args.aws.tags) if args.aws else {}),
            opts=pulumi.ResourceOptions(parent=self))

        self.injector_tls: InjectorTls | None = None
        # With a TLS Secret of the operator's, the injector makes its own serving certificate (the
        # chart's way: no key passes through the stack, and none needs cert-manager).
        if c.injector.enabled and args.tls.source != "existingSecret":
            self.injector_tls = InjectorTls(
                f"{name}-injector-tls",
                InjectorTlsArgs(namespace, names, args.tls, validity=c.injector.certificate_validity),
                opts=pulumi.ResourceOptions(parent=self))
        webhook_inputs: dict[str, Any] = {} if self.injector_tls is None else {
            "webhook_secret": self.injector_tls.secret_name, "webhook_ca_bundle": self.injector_tls.ca_bundle}

        def values(inputs: dict[str, Any]) -> dict[str, Any]:
            seal: SealStanza | None = inputs["seal"]
            wiring: UnsealWiring = inputs["wiring"]
            webhook = (InjectorWebhook(inputs["webhook_secret"], inputs["webhook_ca_bundle"])
                       if webhook_inputs else None)
            hcl = render_server_hcl(names, seal, ui=c.ui, unauthenticated_metrics=args.unauthenticated_metrics,
                                    performance_multiplier=c.raft.performance_multiplier)
            return build_values(c, names, production=args.production, server_hcl=hcl, unseal=wiring,
                                tls_secret=inputs["tls_secret"], injector_webhook=webhook,
                                auth_path=args.kubernetes_auth_path, tls_cert_pem=inputs["cert_pem"],
                                registry=args.image_registry)

        chart_values = pulumi.Output.all(seal=self.unseal.seal, wiring=self.unseal.wiring,
                                         tls_secret=self.tls.secret_name, cert_pem=self.tls.cert_pem,
                                         **webhook_inputs).apply(values)
        # Any change to what the pod template is made from runs the rolling restart again; the
        # restart itself finds out which pods really run an old revision.
        self.pod_template_trigger = chart_values.apply(lambda v: values_trigger(v, c.chart.version))
        release_waits: list[pulumi.Resource] = [self.tls, self.unseal,
                                                *([self.injector_tls] if self.injector_tls else [])]
        self.rollout_access: RolloutAccess | None = None
        if c.rollout.enabled:
            # Before the release: a lower replica count first leaves Raft, then the StatefulSet.
            self.rollout_access = RolloutAccess(
                f"{name}-rollout", RolloutAccessArgs(args.rollout_job(), namespace, wait_for=(self.tls,)),
                opts=pulumi.ResourceOptions(parent=self))
            release_waits.append(self.rollout_access.scale_down)
        source = chart_source(CHART, c.chart.repository, c.chart.path)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=names.release,
            chart=source.chart,
            version=c.chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=source.repository) if source.repository else None,
            namespace=namespace,
            values=chart_values,
            timeout=int(duration_seconds(c.await_timeout)),
            max_history=10,
            # Awaited: the injector and the release's objects. It does not wait for the server pods
            # to be Ready (they cannot be before init): the StatefulSet's OnDelete strategy makes
            # Helm's readiness check skip it.
            skip_await=False,
            cleanup_on_fail=False,
            # Uninstalling the release removes the StatefulSet that owns the data volumes.
            opts=pulumi.ResourceOptions(parent=self, depends_on=release_waits, protect=True),
        )

        self.api_service = k8s.core.v1.Service(
            f"{name}-api",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=names.api_service, namespace=namespace,
                                                annotations=api_service_annotations(args.api)),
            spec=api_service_spec(args.api, names),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        self.pod_services = [
            k8s.core.v1.Service(
                f"{name}-pod-{ordinal}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{names.pod(ordinal)}-unseal", namespace=namespace),
                spec=pod_unseal_service_spec(names, ordinal, node_port),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
            )
            for ordinal, node_port, _ in pod_unseal_ports(args.unseal.mode, args.api, names.replicas)
        ]

        self.network_policy: k8s.networking.v1.NetworkPolicy | None = None
        if c.network_policy.enabled:
            lb = args.api.load_balancer
            lb_cidrs = tuple(lb.subnet_cidrs) if args.api.service_type == "LoadBalancer" and \
                not lb.preserve_client_ip else ()
            manifest = network_policy(names, c.network_policy, args.api_client_namespaces,
                                      extra_namespaces=args.metrics_from, load_balancer_cidrs=lb_cidrs)
            self.network_policy = k8s.networking.v1.NetworkPolicy(
                f"{name}-network-policy",
                metadata={**manifest["metadata"], "namespace": namespace},
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self),
            )

        # Where the load balancer answers: point the address's name at it (or let the record below).
        self.api_load_balancer_hostname: pulumi.Output[str] | None = None
        if args.api.service_type == "LoadBalancer":
            self.api_load_balancer_hostname = self.api_service.status.apply(load_balancer_host)
        self.api_dns_record: aws.route53.Record | None = None
        if args.api.dns.record == "route53":
            if aws_provider is None or self.api_load_balancer_hostname is None:
                raise InvalidInput("api.dns.record", "VaultCluster: route53 needs an AWS provider and a "
                                                                   "LoadBalancer")
            self.api_dns_record = aws.route53.Record(
                f"{name}-api-dns",
                zone_id=args.api.dns.route53_zone_id,
                name=url_host(args.api.address),
                type="CNAME",
                ttl=args.api.dns.ttl,
                records=[self.api_load_balancer_hostname],
                # Several stacks may share a zone; never take over a name someone else made.
                allow_overwrite=False,
                opts=pulumi.ResourceOptions(parent=self, provider=aws_provider),
            )

        self.namespace = namespace
        self.ca_cert_pem = self.tls.ca_cert_pem
        self.tls_secret_name = self.tls.secret_name
        self.api_address = pulumi.Output.from_input(args.api.address)
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
