"""Build the hashicorp/vault chart values from the typed config. Pure: no Pulumi, no I/O.

Every path set here must be one the chart knows (tests check it against the chart's value list and
schema), because Helm silently ignores a misspelled key and the default would quietly ship.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from components.model import ClusterConfig, Resources
from components.model.names import (
    API_PORT,
    INJECTION_LABEL,
    INJECTION_LABEL_VALUE,
    TLS_MOUNT,
    UNSEAL_MOUNT,
    Names,
)
from components.model.platform import ResourceAmounts
from components.render.images import pulled_from

# Ready: the active node and unsealed standbys, and (only so the very first init can reach a pod
# through the API Service) a node that was never initialized. A sealed, initialized pod answers 503
# and is not Ready: the PodDisruptionBudget does not count it, and no Service sends clients to it.
# The release is not held up by this: the chart's StatefulSet uses OnDelete, and Helm's readiness
# check skips StatefulSets that do not roll.
READINESS_PATH = "/v1/sys/health?standbyok=true&perfstandbyok=true&uninitcode=204"
# Liveness must not kill a pod that is merely sealed or a standby: only a hung process.
LIVENESS_PATH = "/v1/sys/health?standbyok=true&sealedcode=204&uninitcode=204&perfstandbyok=true"


@dataclass(frozen=True)
class InjectorWebhook:
    """The injector's serving certificate, made by the stack: the Secret holding it and its CA bundle
    (base64 of the CA's PEM) for the MutatingWebhookConfiguration."""

    secret_name: str
    ca_bundle: str


@dataclass(frozen=True)
class UnsealWiring:
    """What the unseal mode adds to the pods: service account annotations and secret env vars."""

    service_account_annotations: dict[str, str] = field(default_factory=dict)
    secret_env: list[dict[str, str]] = field(default_factory=list)
    secret_volume: str | None = None


def _amounts(a: ResourceAmounts) -> dict[str, str]:
    return {"memory": a.memory, "cpu": a.cpu}


def resources(r: Resources) -> dict[str, Any]:
    return {"requests": _amounts(r.requests), "limits": _amounts(r.limits)}


def server_labels(names: Names) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": names.release, "component": "server"}


def affinity(names: Names, required: bool) -> dict[str, Any]:
    """One server pod per node. Required in prod; preferred in dev so a one-node cluster still works."""
    term = {"labelSelector": {"matchLabels": server_labels(names)}, "topologyKey": "kubernetes.io/hostname"}
    if required:
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": term}]}}


def zone_spread(names: Names) -> list[dict[str, Any]]:
    return [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": server_labels(names)}}]


def injector_values(cluster: ClusterConfig, *, production: bool, webhook: InjectorWebhook | None,
                    auth_path: str = "kubernetes", registry: str = "") -> dict[str, Any]:
    """The Agent Injector: its pods, its webhook (only namespaces labelled for it; in prod a pod it cannot
    serve is refused) and, when the stack made one, its serving certificate."""
    c = cluster
    replicas = c.injector.replicas or (2 if production else 1)
    values: dict[str, Any] = {
        "enabled": c.injector.enabled,
        "replicas": replicas,
        "resources": resources(c.injector.resources),
        "image": {"repository": pulled_from(c.injector.image.repository, registry), "tag": c.injector.image.tag},
        # Injected agents run the same Vault as the servers.
        "agentImage": {"repository": pulled_from(c.image.repository, registry), "tag": c.image.tag},
        "authPath": f"auth/{auth_path}",
        "webhook": {
            "failurePolicy": c.injector.failure_policy or ("Fail" if production else "Ignore"),
            # Only opted-in namespaces: with Fail, a webhook that matched every namespace would also
            # block the pods that bring the injector itself back.
            "namespaceSelector": {"matchLabels": {INJECTION_LABEL: INJECTION_LABEL_VALUE}},
        },
    }
    if replicas > 1:
        values["podDisruptionBudget"] = {"maxUnavailable": 1}
    if webhook is not None:
        values["certs"] = {"secretName": webhook.secret_name, "caBundle": webhook.ca_bundle,
                           "certName": "tls.crt", "keyName": "tls.key"}
        # The leader elector only decides which replica generates certificates; ours come from the stack.
        values["leaderElector"] = {"enabled": False}
    return values
# Pod annotations that change the pod template, and so the StatefulSet's update revision, when what
# they hash changes: the rolling restart then knows which pods still run the old one.
TLS_CERT_ANNOTATION = "vault-platform/tls-certificate-sha256"


def pod_annotations(tls_cert_pem: str | None) -> dict[str, str]:
    """The server certificate is mounted from a Secret, which the pod template does not otherwise
    reflect: its hash makes a renewed (or re-issued) certificate a new revision to roll out."""
    if not tls_cert_pem:
        return {}
    return {TLS_CERT_ANNOTATION: hashlib.sha256(tls_cert_pem.encode()).hexdigest()}


def build_values(cluster: ClusterConfig, names: Names, *, production: bool, server_hcl: str,
                 unseal: UnsealWiring = UnsealWiring(), tls_secret: str | None = None,
                 injector_webhook: InjectorWebhook | None = None, auth_path: str = "kubernetes",
                 tls_cert_pem: str | None = None, registry: str = "") -> dict[str, Any]:
    """The chart values for ``names.replicas`` server pods. ``production`` makes one pod per node a
    hard rule and runs two injector replicas that refuse pods they cannot serve. ``tls_cert_pem``: the
    server certificate the pods mount (its hash goes into the pod template). ``registry``: the private
    registry every image is pulled from (images.registry; empty: the public ones)."""
    c = cluster
    replicas = names.replicas
    volumes: list[dict[str, Any]] = [
        {"name": "vault-tls", "secret": {"secretName": tls_secret or names.tls_secret, "defaultMode": 0o440}},
    ]
    mounts: list[dict[str, Any]] = [{"name": "vault-tls", "mountPath": TLS_MOUNT, "readOnly": True}]
    if unseal.secret_volume:
        volumes.append({"name": "vault-unseal", "secret": {"secretName": unseal.secret_volume, "defaultMode": 0o440,
                                                           "items": [{"key": "transit-ca.crt",
                                                                      "path": "transit-ca.crt"}]}})
        mounts.append({"name": "vault-unseal", "mountPath": UNSEAL_MOUNT, "readOnly": True})

    server: dict[str, Any] = {
        "image": {"repository": pulled_from(c.image.repository, registry), "tag": c.image.tag},
        "logLevel": c.log_level,
        "resources": resources(c.resources),
        "readinessProbe": {"enabled": True, "path": READINESS_PATH},
        "livenessProbe": {"enabled": True, "path": LIVENESS_PATH, "initialDelaySeconds": 60},
        "extraEnvironmentVars": {
            # The CLI inside the pods (and the backup job) verifies the server with the stack's CA.
            "VAULT_CACERT": f"{TLS_MOUNT}/ca.crt",
        },
        "extraSecretEnvironmentVars": list(unseal.secret_env),
        "volumes": volumes,
        "volumeMounts": mounts,
        "affinity": affinity(names, required=production),
        "dataStorage": {"enabled": True, "size": c.data_storage.size, "storageClass": c.data_storage.storage_class,
                        "mountPath": "/vault/data", "accessMode": "ReadWriteOnce"},
        "auditStorage": {"enabled": True, "size": c.audit_storage.size,
                         "storageClass": c.audit_storage.storage_class, "mountPath": "/vault/audit",
                         "accessMode": "ReadWriteOnce"},
        "serviceAccount": {"create": True, "annotations": dict(unseal.service_account_annotations)},
        # Lets Vault's own service account review application tokens for Kubernetes auth.
        "authDelegator": {"enabled": True},
        "standalone": {"enabled": False},
        "ha": {
            "enabled": True,
            "replicas": replicas,
            "disruptionBudget": {"enabled": True, "maxUnavailable": max(1, (replicas - 1) // 2)},
            "raft": {"enabled": True, "setNodeId": True, "config": server_hcl},
        },
        "service": {"enabled": True, "port": API_PORT, "targetPort": API_PORT},
        # The chart hashes the server config into the pod template, so a config change is a new
        # revision; the certificate's hash does the same for a renewal.
        "includeConfigAnnotation": True,
        "annotations": pod_annotations(tls_cert_pem),
    }
    if c.zone_spread:
        server["topologySpreadConstraints"] = zone_spread(names)

    values: dict[str, Any] = {
        "fullnameOverride": names.release,
        # The stack declares its own ServiceMonitor (every pod, the CA verified) and PrometheusRule;
        # the chart's would scrape the active node only, skipping TLS verification.
        "global": {"enabled": True, "tlsDisable": False,
                   "serverTelemetry": {"prometheusOperator": False}},
        "injector": injector_values(c, production=production, webhook=injector_webhook, auth_path=auth_path,
                                    registry=registry),
        "server": server,
        "ui": {"enabled": c.ui},
        "serverTelemetry": {"serviceMonitor": {"enabled": False}, "prometheusRules": {"enabled": False}},
    }
    return values

