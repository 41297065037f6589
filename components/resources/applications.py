"""ApplicationNamespaces: what each application namespace needs before secrets can reach its pods.

Per namespace (components.render.delivery plans it): the namespace itself when an application asks
for it, or else only the label that opts it in to the injector's webhook; the applications' service
accounts when they ask for them; and, where pods run injected agents, our CA certificate in a Secret
the injector mounts into the agents.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.model.names import Names
from components.render.delivery import (
    NamespacePlan,
    ca_secret_manifest,
    namespace_manifest,
    service_account_manifest,
)
from components.resources.manifests import object_name


@dataclass(frozen=True)
class ApplicationNamespacesArgs:
    # What each application namespace needs (components.render.delivery.namespace_plans).
    namespaces: tuple[NamespacePlan, ...]
    # The Vault release's names: the CA Secret's name.
    names: Names
    # Our CA (public): what injected agents verify Vault's certificate with.
    ca_cert_pem: pulumi.Input[str]


class ApplicationNamespaces(pulumi.ComponentResource):
    """The application namespaces, opted in to the injector, with their service accounts and our CA."""

    namespaces: list[str]
    """The application namespaces."""
    ca_secrets: dict[str, pulumi.Output[str]]
    """Namespace -> the Secret holding our CA, where pods run injected agents."""

    def __init__(self, name: str, args: ApplicationNamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:delivery:ApplicationNamespaces", name, None, opts)
        self.ca_secrets = {}
        for plan in args.namespaces:
            ready: list[pulumi.Resource] = []
            if plan.create:
                manifest = namespace_manifest(plan)
                ready.append(k8s.core.v1.Namespace(
                    f"{name}-{plan.name}",
                    metadata=manifest["metadata"],
                    # Removing the application from the stack must not delete everything it runs.
                    opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True)))
            elif plan.labels:
                # Server-side apply owns only this label; the namespace and its other labels stay the team's.
                ready.append(k8s.core.v1.NamespacePatch(
                    f"{name}-{plan.name}-label",
                    metadata={"name": plan.name, "labels": plan.labels},
                    opts=pulumi.ResourceOptions(parent=self)))
            after = pulumi.ResourceOptions(parent=self, depends_on=ready)
            for account in plan.service_accounts:
                manifest = service_account_manifest(plan.name, account)
                k8s.core.v1.ServiceAccount(f"{name}-{plan.name}-sa-{account}", metadata=manifest["metadata"],
                                           opts=after)
            if plan.injector:
                manifest = ca_secret_manifest(args.names, plan.name, args.ca_cert_pem)
                secret = k8s.core.v1.Secret(f"{name}-{plan.name}-ca", metadata=manifest["metadata"],
                                            type=manifest["type"], string_data=manifest["stringData"], opts=after)
                self.ca_secrets[plan.name] = object_name(secret)
        self.namespaces = [plan.name for plan in args.namespaces]
        self.register_outputs({"namespaces": self.namespaces, "ca_secrets": self.ca_secrets})
