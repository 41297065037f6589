"""The rolling restart and the scale-down step as Kubernetes manifests. Pure: plain dicts.

scripts/vault_rollout.py does the work (see its docstring); the stack runs it in the cluster as a
Job, because only there can it reach each pod directly and delete it:

  ``<release>-scale-down-to-<N>``  before the release update, when ``cluster.replicas`` goes down:
      removes the departing servers from Raft one at a time, so the StatefulSet shrinking never
      leaves dead voters behind (on a first deploy, or a scale-up, it finds nothing to do);
  ``<release>-rollout-<hash>``     after the release update and Vault's configuration: restarts the
      pods the new pod template left behind, standbys first, the active node last. Its name carries
      a hash of the chart values, so any change that may alter the pod template runs it again.

Both are awaited by `pulumi up`, which fails when they fail, and are replaced (so they resume) on the
next `pulumi up` if they did not finish.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from components.model.names import Names
from components.render.labels import platform_labels
from components.render.policies import ROLLOUT_POLICY

SCRIPT_KEY = "vault_rollout.py"
SCRIPTS_MOUNT = "/scripts"
CA_MOUNT = "/vault/userconfig/vault-ca"
JWT_MOUNT = "/var/run/secrets/vault-rollout"
UNSEAL_MOUNT = "/var/run/secrets/vault-unseal"
UNSEAL_KEY = "keys"
# The image's nobody user: the script needs no file system of its own.
RUN_AS_USER = 65534
RESOURCES = {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}
# Pods the Role may read and delete: every ordinal the model allows (cluster.replicas <= 9), so a
# scale-down from any size reaches the departing pods.
MAX_REPLICAS = 9
TOKEN_EXPIRATION_SECONDS = 3600
# A Job pod that is killed (node drained, evicted) is replaced this many times; each new one
# resumes where the last one stopped.
BACKOFF_LIMIT = 2


@dataclass(frozen=True)
class RolloutNames:
    service_account: str
    role: str
    config_map: str
    unseal_secret: str
    vault_role: str

    @classmethod
    def of(cls, release: str) -> RolloutNames:
        base = f"{release}-rollout"
        return cls(service_account=base, role=base, config_map=f"{base}-script", unseal_secret=f"{base}-unseal",
                   vault_role=ROLLOUT_POLICY)


@dataclass(frozen=True)
class RolloutJob:
    names: Names
    image: str
    # The Secret whose ca.crt the server certificates chain to (only ca.crt is mounted).
    tls_secret: str
    kubernetes_auth_path: str
    pod_timeout_seconds: int
    token_audience: str = ""
    # shamir (dev): the Job unseals the pods it restarts with keys from this Secret.
    unseal_keys: bool = False

    @property
    def object_names(self) -> RolloutNames:
        return RolloutNames.of(self.names.release)

    @property
    def deadline_seconds(self) -> int:
        """Every pod restarted once plus one more wait, with room for the step-down."""
        return (self.names.replicas + 2) * self.pod_timeout_seconds + 300



def labels(names: Names) -> dict[str, str]:
    return platform_labels(name="vault-rollout", instance=names.release, component="rollout")


def _meta(names: Names, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": names.namespace, "labels": labels(names)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def service_account(names: Names) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": _meta(names, RolloutNames.of(names.release).service_account),
            "automountServiceAccountToken": False}


def role(names: Names) -> dict[str, Any]:
    """Read the one StatefulSet, read and delete its pods by name: nothing else in the namespace."""
    pods = [names.pod(i) for i in range(MAX_REPLICAS)]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": _meta(names, RolloutNames.of(names.release).role),
            "rules": [
                {"apiGroups": ["apps"], "resources": ["statefulsets"], "resourceNames": [names.release],
                 "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods"], "resourceNames": pods, "verbs": ["get", "delete"]},
            ]}


def role_binding(names: Names) -> dict[str, Any]:
    rn = RolloutNames.of(names.release)
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": _meta(names, rn.role),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": rn.role},
            "subjects": [{"kind": "ServiceAccount", "name": rn.service_account, "namespace": names.namespace}]}


def config_map(names: Names, script: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(names, RolloutNames.of(names.release).config_map), "data": {SCRIPT_KEY: script}}


def unseal_secret(names: Names, keys: list[str]) -> dict[str, Any]:
    """shamir (dev): the unseal key shares the restart needs, only in a Secret."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta(names, RolloutNames.of(names.release).unseal_secret),
            "stringData": {UNSEAL_KEY: "\n".join(keys) + "\n"}}


def trigger(values_json: str, chart_version: str) -> str:
    """A short hash of what the pod template is made from (the chart and its values)."""
    return hashlib.sha256(f"{chart_version}\n{values_json}".encode()).hexdigest()[:10]


def restart_job_name(names: Names, trigger_hash: str) -> str:
    return f"{names.release}-rollout-{trigger_hash}"


def scale_down_job_name(names: Names) -> str:
    return f"{names.release}-scale-down-to-{names.replicas}"


def _security_context() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER,
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def job(spec: RolloutJob, command: str, name: str, script: str) -> dict[str, Any]:
    """``command``: 'restart' or 'scale-down'."""
    if command not in ("restart", "scale-down"):
        raise ValueError(f"unknown rollout command {command!r}")
    names = spec.names
    rn = spec.object_names
    env = {
        "ROLLOUT_NAMESPACE": names.namespace,
        "ROLLOUT_RELEASE": names.release,
        "ROLLOUT_REPLICAS": str(names.replicas),
        "ROLLOUT_POD_TIMEOUT": str(spec.pod_timeout_seconds),
        "VAULT_CACERT": f"{CA_MOUNT}/ca.crt",
        "VAULT_TLS_SERVER_NAME": "{pod}." + names.internal_service,
        "VAULT_K8S_AUTH_PATH": spec.kubernetes_auth_path,
        "VAULT_K8S_ROLE": rn.vault_role,
        "VAULT_K8S_JWT_PATH": f"{JWT_MOUNT}/token",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    mounts = [
        {"name": "script", "mountPath": SCRIPTS_MOUNT, "readOnly": True},
        {"name": "vault-ca", "mountPath": CA_MOUNT, "readOnly": True},
        {"name": "vault-token", "mountPath": JWT_MOUNT, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "script", "configMap": {"name": rn.config_map, "defaultMode": 0o444,
                                         "items": [{"key": SCRIPT_KEY, "path": SCRIPT_KEY}]}},
        # The CA only: the servers' private key stays out of this pod.
        {"name": "vault-ca", "secret": {"secretName": spec.tls_secret, "defaultMode": 0o444,
                                        "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"name": "vault-token", "projected": {"sources": [{"serviceAccountToken": {
            "path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
            **({"audience": spec.token_audience} if spec.token_audience else {})}}]}},
    ]
    if spec.unseal_keys:
        env["VAULT_UNSEAL_KEYS_PATH"] = f"{UNSEAL_MOUNT}/{UNSEAL_KEY}"
        mounts.append({"name": "unseal-keys", "mountPath": UNSEAL_MOUNT, "readOnly": True})
        # Secret files belong to root; the pod's fsGroup owns them with this mode, so the
        # unprivileged user reads them through its group and nobody else can.
        volumes.append({"name": "unseal-keys", "secret": {"secretName": rn.unseal_secret, "defaultMode": 0o440}})
    container = {
        "name": command,
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python3", f"{SCRIPTS_MOUNT}/{SCRIPT_KEY}", command],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "volumeMounts": mounts,
        "resources": RESOURCES,
        "securityContext": _security_context(),
    }
    pod_labels = labels(names)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(names, name, {
            # A Job that did not finish is replaced on the next `pulumi up`, and the new one resumes.
            "pulumi.com/replaceUnready": "true",
        }),
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            "activeDeadlineSeconds": spec.deadline_seconds,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {
                    "vault-platform/rollout-script-sha256": hashlib.sha256(script.encode()).hexdigest()}},
                "spec": {
                    "serviceAccountName": rn.service_account,
                    # The Kubernetes API token (for the pods) comes from the usual mount; the Vault login
                    # uses its own projected token with Vault's audience.
                    "automountServiceAccountToken": True,
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER,
                                        "fsGroup": RUN_AS_USER, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def restart_job(spec: RolloutJob, trigger_hash: str, script: str) -> dict[str, Any]:
    return job(spec, "restart", restart_job_name(spec.names, trigger_hash), script)


def scale_down_job(spec: RolloutJob, script: str) -> dict[str, Any]:
    # It restarts nothing, so it never unseals (and runs before the keys' Secret exists).
    return job(dataclasses.replace(spec, unseal_keys=False), "scale-down", scale_down_job_name(spec.names), script)


