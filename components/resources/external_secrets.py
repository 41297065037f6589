"""ExternalSecrets: the External Secrets Operator (installed from its chart, or one already running),
a Vault SecretStore per application namespace with its service account, and one ExternalSecret per
application. Built by components.render.external_secrets; the Vault roles and policies the stores
log in with are part of VaultConfiguration.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.model.checks import duration, duration_seconds
from components.render.charts import chart_source
from components.render.external_secrets import CHART, RELEASE, ExternalSecretsDelivery
from components.resources.errors import InvalidInput
from components.resources.manifests import custom_resource, declare


@dataclass(frozen=True)
class ExternalSecretsArgs:
    # The operator, the stores and the ExternalSecrets (components.render.external_secrets).
    delivery: ExternalSecretsDelivery
    # Our CA (public), which each store verifies Vault's certificate with.
    ca_cert_pem: pulumi.Input[str]
    # How long `pulumi up` waits for the operator's release.
    timeout: str = "10m"
    # The IRSA role the operator's own service account reads AWS Secrets Manager with (the transition
    # store of migration.awsSecretsManager), when the stack installs the operator and that store.
    aws_role_arn: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        problem = duration(self.timeout)
        if problem:
            raise InvalidInput("timeout", f"ExternalSecretsArgs: {self.timeout!r} {problem}")


class ExternalSecrets(pulumi.ComponentResource):
    """The External Secrets Operator, a Vault SecretStore per namespace, an ExternalSecret per application."""

    release: k8s.helm.v3.Release | None
    """The operator's release (None: an operator already running)."""
    stores: dict[str, str]
    """Namespace -> its SecretStore's name."""
    external_secrets: dict[str, str]
    """Application -> its ExternalSecret's name."""

    def __init__(self, name: str, args: ExternalSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:delivery:ExternalSecrets", name, None, opts)
        d = args.delivery
        self.release = None
        values: pulumi.Input[dict] = dict(d.values)
        if d.install and args.aws_role_arn is not None:
            values = pulumi.Output.from_input(args.aws_role_arn).apply(lambda arn: d.values_with_aws_role(arn))
        if d.install:
            source = chart_source(CHART, d.chart_repository, d.chart_path)
            self.release = k8s.helm.v3.Release(
                f"{name}-release",
                name=RELEASE,
                chart=source.chart,
                version=d.chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=source.repository) if source.repository else None,
                namespace=d.operator_namespace,
                create_namespace=True,
                values=values,
                timeout=int(duration_seconds(args.timeout)),
                max_history=10,
                # Awaited: the operator's webhook must answer before a SecretStore can be created.
                skip_await=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
        if self.release is not None and args.aws_role_arn is not None:
            # The transition store logs in as the operator's own service account: the operator may request
            # that account's tokens (and, unless clusterWideTokenRequests, no other's but the stores').
            declare(d.operator_self_token_access(), f"{name}-operator",
                    pulumi.ResourceOptions(parent=self, depends_on=[self.release]))
        ca_bundle = pulumi.Output.from_input(args.ca_cert_pem).apply(
            lambda pem: base64.b64encode(pem.encode()).decode())
        operator = [self.release] if self.release is not None else []
        stores: dict[str, str] = {}
        external_secrets: dict[str, str] = {}
        for namespace, manifests in d.external_secrets.items():
            access = declare(d.store_access(namespace), f"{name}-{namespace}",
                             pulumi.ResourceOptions(parent=self))
            store = custom_resource(f"{name}-{namespace}-store", d.secret_store(namespace, ca_bundle),
                                    pulumi.ResourceOptions(parent=self, depends_on=[*operator, *access]))
            stores[namespace] = d.secret_store(namespace, "")["metadata"]["name"]
            for manifest in manifests:
                app = manifest["metadata"]["name"]
                custom_resource(f"{name}-{namespace}-{app}", manifest,
                                pulumi.ResourceOptions(parent=self, depends_on=[store]))
                external_secrets[app] = app
        self.stores = stores
        self.external_secrets = external_secrets
        self.register_outputs({"stores": stores, "external_secrets": external_secrets})
