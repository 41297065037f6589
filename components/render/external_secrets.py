"""The External Secrets Operator for Vault KV v2, as plain manifests: the chart values (when the stack
installs it), one SecretStore per application namespace, one ExternalSecret per application. Pure: no
Pulumi, no I/O.

Why a SecretStore per namespace, not one ClusterSecretStore: a ClusterSecretStore reads with one role
for the whole cluster, so any namespace allowed to use it could copy any other application's secrets.
Here the store of namespace ``payments`` logs in as the service account ``vault-kv`` of ``payments``,
whose Vault role (``external-secrets-payments``) reads exactly the secrets delivered to the
applications of ``payments``. The operator may request tokens for those service accounts only (a Role
per namespace), not for every service account in the cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.model import Application, PlatformConfig
from components.model.names import SECRET_STORE, Names, external_secrets_role
from components.render import delivery
from components.render.durations import go_duration
from components.render.images import pulled_from

API_VERSION = "external-secrets.io/v1"
CHART = "external-secrets"
RELEASE = "external-secrets"
# The image the chart runs (controller, webhook and certificate controller), without its tag.
OPERATOR_IMAGE = "ghcr.io/external-secrets/external-secrets"
# The controller caches the Secrets it writes, so it grows with them; the webhook and the certificate
# controller stay small.
CONTROLLER_RESOURCES = {"requests": {"memory": "128Mi", "cpu": "50m"}, "limits": {"memory": "512Mi", "cpu": "500m"}}
SMALL_RESOURCES = {"requests": {"memory": "32Mi", "cpu": "10m"}, "limits": {"memory": "128Mi", "cpu": "100m"}}


@dataclass(frozen=True)
class ExternalSecretsDelivery:
    """Everything the operator's objects are made from."""

    install: bool
    # The operator's controller: its namespace and service account (it requests the stores' tokens).
    operator_namespace: str
    operator_service_account: str
    chart_version: str
    chart_repository: str
    values: Mapping[str, Any]
    server: str
    kv_path: str
    auth_path: str
    # The audience of the tokens the stores log in with (empty: the role accepts any).
    audience: str
    # Namespace -> the ExternalSecrets of its applications.
    external_secrets: Mapping[str, tuple[dict[str, Any], ...]]
    # A copy of the chart on disk (externalSecrets.chart.path), instead of the repository.
    chart_path: str = ""

    @classmethod
    def of(cls, config: PlatformConfig) -> ExternalSecretsDelivery:
        eso = config.external_secrets
        found: dict[str, list[dict[str, Any]]] = {}
        for app in config.applications:
            if app.uses_external_secrets:
                found.setdefault(app.namespace, []).append(external_secret(config, app))
        return cls(install=eso.install, operator_namespace=eso.namespace, operator_service_account=eso.service_account,
                   chart_version=eso.chart.version, chart_repository=eso.chart.repository,
                   values=chart_values(config), server=Names.of(config).in_cluster_addr, kv_path=config.kv.path,
                   auth_path=config.kubernetes_auth.path, audience=config.kubernetes_auth.audience,
                   external_secrets={ns: tuple(found[ns]) for ns in sorted(found)}, chart_path=eso.chart.path)

    @property
    def namespaces(self) -> list[str]:
        return list(self.external_secrets)

    def values_with_aws_role(self, role_arn: str) -> dict[str, Any]:
        """The chart values with the operator's service account annotated for IRSA."""
        values = copy.deepcopy(dict(self.values))
        account = values.setdefault("serviceAccount", {})
        account["annotations"] = {**account.get("annotations", {}), "eks.amazonaws.com/role-arn": role_arn}
        return values

    def operator_self_token_access(self) -> list[dict[str, Any]]:
        """What lets the operator request tokens for its own service account, and no other."""
        return delivery.token_request_rbac(self.operator_namespace, self.operator_service_account,
                                           (self.operator_namespace, self.operator_service_account))

    def store_access(self, namespace: str) -> list[dict[str, Any]]:
        """The store's service account, and the Role that lets the operator (only) request its tokens."""
        return [delivery.service_account_manifest(namespace, SECRET_STORE),
                *delivery.token_request_rbac(namespace, SECRET_STORE,
                                             (self.operator_namespace, self.operator_service_account))]

    def secret_store(self, namespace: str, ca_bundle: Any) -> dict[str, Any]:
        """The namespace's store: Vault KV v2 through Kubernetes auth, verified against our CA.

        ``ca_bundle`` is the base64 of our CA's PEM (the CRD field is bytes)."""
        service_account: dict[str, Any] = {"name": SECRET_STORE}
        if self.audience:
            # The token the operator requests is minted for Vault only, as the role requires.
            service_account["audiences"] = [self.audience]
        return {
            "apiVersion": API_VERSION,
            "kind": "SecretStore",
            "metadata": {"name": SECRET_STORE, "namespace": namespace, "labels": dict(delivery.LABELS)},
            "spec": {"provider": {"vault": {
                "server": self.server,
                "path": self.kv_path,
                "version": "v2",
                "caBundle": ca_bundle,
                "auth": {"kubernetes": {
                    "mountPath": self.auth_path,
                    "role": external_secrets_role(namespace),
                    "serviceAccountRef": service_account,
                }},
            }}},
        }


def chart_values(config: PlatformConfig) -> dict[str, Any]:
    """Values of the external-secrets chart. Every path is checked against the chart's own list in the tests."""
    eso = config.external_secrets
    replicas = 2 if config.is_prod else 1
    values: dict[str, Any] = {
        "installCRDs": True,
        "replicaCount": replicas,
        # Two controllers must not reconcile the same ExternalSecret at once.
        "leaderElect": replicas > 1,
        "serviceAccount": {"create": True, "name": eso.service_account},
        "rbac": {"serviceAccountTokenCreate": eso.cluster_wide_token_requests},
        "resources": copy.deepcopy(CONTROLLER_RESOURCES),
        "webhook": {"replicaCount": replicas, "resources": copy.deepcopy(SMALL_RESOURCES)},
        "certController": {"resources": copy.deepcopy(SMALL_RESOURCES)},
    }
    if replicas > 1:
        values["podDisruptionBudget"] = {"enabled": True, "minAvailable": 1}
        values["webhook"]["podDisruptionBudget"] = {"enabled": True, "minAvailable": 1}
    if config.images.registry:
        # The controller, webhook and certificate controller are one image; the chart pins its tag.
        repository = pulled_from(OPERATOR_IMAGE, config.images.registry)
        values["image"] = {"repository": repository}
        values["webhook"]["image"] = {"repository": repository}
        values["certController"]["image"] = {"repository": repository}
    return values


def external_secret(config: PlatformConfig, app: Application) -> dict[str, Any]:
    """The application's Secret, one key per variable, each read from a property of a KV secret."""
    interval = app.refresh_interval or config.external_secrets.refresh_interval
    return {
        "apiVersion": API_VERSION,
        "kind": "ExternalSecret",
        "metadata": {"name": app.name, "namespace": app.namespace, "labels": dict(delivery.LABELS)},
        "spec": {
            "refreshInterval": go_duration(interval),
            "secretStoreRef": {"kind": "SecretStore", "name": SECRET_STORE},
            "target": {"name": delivery.target_secret(app), "creationPolicy": "Owner"},
            "data": [{"secretKey": variable, "remoteRef": {"key": secret.path, "property": prop}}
                     for secret in app.secrets for variable, prop in secret.keys.items()],
        },
    }
