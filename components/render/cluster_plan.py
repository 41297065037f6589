"""What a Vault cluster is made of, as VaultCluster declares it. Pure: no Pulumi, no I/O.

``cluster_plan`` builds it from config sections (a program that writes them in code), ``ClusterPlan.of``
from a stack's PlatformConfig. Everything is decided here: names, manifests, the TLS and unseal
plans, the rolling restart's Job; only the chart values wait for what the cluster's own resources
make (the seal's key, the TLS Secret and certificate, the webhook's CA): ``ServerValues.values``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.model import ApiConfig, AwsConfig, ClusterConfig, PlatformConfig, TlsConfig, UnsealConfig
from components.model.checks import duration_seconds, url_host
from components.model.names import Names, pod_unseal_ports
from components.render import delivery
from components.render.charts import ChartSource, chart_source
from components.render.helm_values import InjectorWebhook, UnsealWiring, build_values
from components.render.images import pulled_from
from components.render.monitoring import unauthenticated_metrics
from components.render.network_policy import network_policy
from components.render.rollout_job import RolloutJob
from components.render.server_hcl import SealStanza, render_server_hcl
from components.render.services import api_service_annotations, api_service_spec, pod_unseal_service_spec
from components.render.tls_objects import PairSpec, ServerTls, injector_pair
from components.render.unseal import UnsealPlan

CHART = "vault"


@dataclass(frozen=True)
class Route53Record:
    """The CNAME for the API address's host name (``name``) in hosted zone ``zone_id``, with ``ttl``."""

    zone_id: str
    name: str
    ttl: int


@dataclass(frozen=True)
class PodUnsealService:
    """A dev shamir stack's NodePort to one pod (``ordinal``): the Service ``name`` and ``spec``."""

    ordinal: int
    name: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class ApiExposure:
    """How `pulumi up` and clients reach the API (api.*): its ``address``; the Service in front of every
    pod (``service_annotations``, ``service_spec``); whether that is a ``load_balancer``; a dev shamir
    stack's per-pod Services (``pod_unseal_services``) and the addresses `pulumi up` unseals each pod
    through (``unseal_addresses``); and the ``route53`` record the stack makes (None: none)."""

    address: str
    service_annotations: dict[str, str]
    service_spec: dict[str, Any]
    load_balancer: bool = False
    pod_unseal_services: tuple[PodUnsealService, ...] = ()
    unseal_addresses: tuple[str, ...] = ()
    route53: Route53Record | None = None

    @classmethod
    def of(cls, api: ApiConfig, names: Names, unseal_mode: str) -> ApiExposure:
        ports = pod_unseal_ports(unseal_mode, api, names.replicas)
        return cls(address=api.address, service_annotations=api_service_annotations(api),
                   service_spec=api_service_spec(api, names), load_balancer=api.service_type == "LoadBalancer",
                   pod_unseal_services=tuple(
                       PodUnsealService(ordinal, f"{names.pod(ordinal)}-unseal",
                                        pod_unseal_service_spec(names, ordinal, node_port))
                       for ordinal, node_port, _ in ports),
                   unseal_addresses=tuple(address for _, _, address in ports),
                   route53=Route53Record(api.dns.route53_zone_id, url_host(api.address), api.dns.ttl)
                   if api.dns.record == "route53" else None)


@dataclass(frozen=True)
class ServerValues:
    """What the chart values are made from, besides what only the cluster's resources know: the
    ``cluster`` settings, the ``names``, ``production`` placement (one pod per node a hard rule, two
    injector replicas), ``unauthenticated_metrics`` (sys/metrics without a token, for a ServiceMonitor
    that has none), the Kubernetes auth mount injected agents log in through (``auth_path``) and the
    private ``registry`` every image is pulled from (empty: the public ones)."""

    cluster: ClusterConfig
    names: Names
    production: bool = False
    unauthenticated_metrics: bool = False
    auth_path: str = "kubernetes"
    registry: str = ""

    def values(self, *, seal: SealStanza | None, wiring: UnsealWiring, tls_secret: str, cert_pem: str | None,
               webhook: InjectorWebhook | None) -> dict[str, Any]:
        """The chart values, once the seal stanza, the unseal wiring, the TLS Secret and server
        certificate and (when the stack makes it) the injector's webhook certificate are known."""
        c = self.cluster
        hcl = render_server_hcl(self.names, seal, ui=c.ui, unauthenticated_metrics=self.unauthenticated_metrics,
                                performance_multiplier=c.raft.performance_multiplier)
        return build_values(c, self.names, production=self.production, server_hcl=hcl, unseal=wiring,
                            tls_secret=tls_secret, injector_webhook=webhook, auth_path=self.auth_path,
                            tls_cert_pem=cert_pem, registry=self.registry)


@dataclass(frozen=True)
class ClusterPlan:
    """Everything VaultCluster is made from.

    ``names``: the release, its namespace and the number of server pods. ``chart``,
    ``chart_version``: where the chart comes from and which version; ``timeout_seconds``: how long
    `pulumi up` waits for the release; ``server``: what its values are made from. ``api``: how the
    API is reached. ``tls``: the servers' certificate; ``injector_tls``: the Agent Injector webhook's
    (None: the injector makes its own, or there is no injector). ``unseal``: how the pods unseal.
    ``rollout``: the scale-down and restart Jobs (None: no rolling restarts). ``network_policy``: the
    server pods' NetworkPolicy manifest (None: none).
    """

    names: Names
    chart: ChartSource
    chart_version: str
    timeout_seconds: int
    server: ServerValues
    api: ApiExposure
    tls: ServerTls
    unseal: UnsealPlan
    injector_tls: PairSpec | None = None
    rollout: RolloutJob | None = None
    network_policy: dict[str, Any] | None = None

    @classmethod
    def of(cls, config: PlatformConfig) -> ClusterPlan:
        return cluster_plan(
            config.kubernetes.namespace, config.api, config.unseal, config.cluster, tls=config.tls,
            production=config.is_prod, aws=config.aws, api_client_namespaces=delivery.api_client_namespaces(config),
            kubernetes_auth_path=config.kubernetes_auth.path, token_audience=config.kubernetes_auth.audience,
            metrics_from=(config.monitoring.prometheus_namespace,) if config.cluster.service_monitor else (),
            unauthenticated_metrics=unauthenticated_metrics(config), image_registry=config.images.registry)


def cluster_plan(namespace: str, api: ApiConfig, unseal: UnsealConfig, cluster: ClusterConfig | None = None, *,
                 tls: TlsConfig | None = None, production: bool = False, aws: AwsConfig | None = None,
                 api_client_namespaces: tuple[str, ...] = (), kubernetes_auth_path: str = "kubernetes",
                 token_audience: str = "", metrics_from: tuple[str, ...] = (), unauthenticated_metrics: bool = False,
                 image_registry: str = "") -> ClusterPlan:
    """A cluster in ``namespace`` from its settings: ``cluster.replicas`` must be set (odd; VaultClusterArgs
    refuses any other count), ``aws`` is needed for awskms unseal.

    ``api_client_namespaces``: namespaces whose pods must reach the API whatever
    cluster.networkPolicy lists (the applications'). ``kubernetes_auth_path``: the Kubernetes auth
    mount injected agents and the rolling restart's Job log in through; ``token_audience``: the
    audience of the Job's token. ``metrics_from``: namespaces beyond apiFrom that reach the API port
    (where Prometheus runs, with the ServiceMonitor). ``image_registry``: the private registry every
    image is pulled from (images.registry; empty: the public ones).
    """
    c = cluster if cluster is not None else ClusterConfig(replicas=3)
    t = tls if tls is not None else TlsConfig()
    # No pods rather than a failure here: VaultClusterArgs refuses the count, naming the setting.
    names = Names(c.release_name, namespace, c.replicas or 0)
    server_tls = ServerTls.of(names, t)
    policy = None
    if c.network_policy.enabled:
        lb = api.load_balancer
        lb_cidrs = tuple(lb.subnet_cidrs) if api.service_type == "LoadBalancer" and not lb.preserve_client_ip else ()
        policy = network_policy(names, c.network_policy, api_client_namespaces, extra_namespaces=metrics_from,
                                load_balancer_cidrs=lb_cidrs)
    rollout = None
    if c.rollout.enabled:
        rollout = RolloutJob(names=names, image=pulled_from(c.rollout.image, image_registry),
                             tls_secret=server_tls.secret_name, kubernetes_auth_path=kubernetes_auth_path,
                             pod_timeout_seconds=int(duration_seconds(c.rollout.pod_timeout)),
                             token_audience=token_audience, unseal_keys=unseal.mode == "shamir")
    return ClusterPlan(
        names=names, chart=chart_source(CHART, c.chart.repository, c.chart.path), chart_version=c.chart.version,
        timeout_seconds=int(duration_seconds(c.await_timeout)),
        server=ServerValues(c, names, production=production, unauthenticated_metrics=unauthenticated_metrics,
                            auth_path=kubernetes_auth_path, registry=image_registry),
        api=ApiExposure.of(api, names, unseal.mode), tls=server_tls, unseal=UnsealPlan.of(unseal, aws),
        # With a TLS Secret of the operator's, the injector makes its own serving certificate (the
        # chart's way: no key passes through the stack, and none needs cert-manager).
        injector_tls=injector_pair(names, t, c.injector.certificate_validity)
        if c.injector.enabled and t.source != "existingSecret" else None,
        rollout=rollout, network_policy=policy)
