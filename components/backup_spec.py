"""The backup job as Kubernetes manifests: CronJob, ServiceAccount, ConfigMap and (dev) a volume.

Pure: plain dicts from the typed config, plus the values only AWS knows (bucket name, role ARN)
passed in as plain strings. The component wires them into resources; the tests validate them
against the Kubernetes schemas.

How a run works (one Job pod, no shell tools needed beyond what each image ships):
  initContainer `snapshot` (the pinned Vault image): `backup.sh snapshot` logs in with the pod's
      projected service account token (Kubernetes auth, role raft-backup), takes a Raft snapshot
      from the active Service and checks it, into a shared emptyDir;
  container `upload` (a pinned AWS CLI image; prod): `backup.sh upload-s3` uploads it with the
      IRSA role and prunes old snapshots, or
  container `store` (the Vault image; dev): `backup.sh store-volume` copies it to a PVC and prunes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import PlatformConfig
from components.names import Names
from components.policies import BACKUP_POLICY

SCRIPT_PATH = Path(__file__).resolve().parents[1] / "scripts" / "backup.sh"
SCRIPT_KEY = "backup.sh"

# The official AWS CLI v2 image, pinned like every other image; its /bin/sh runs backup.sh.
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.31.23"

# The hashicorp/vault image's `vault` user and group; the AWS CLI image runs fine as any user.
RUN_AS_USER = 100
RUN_AS_GROUP = 1000

SCRIPTS_MOUNT = "/scripts"
SNAPSHOT_MOUNT = "/snapshot"
BACKUP_MOUNT = "/backups"
CA_MOUNT = "/vault/userconfig/vault-ca"
JWT_MOUNT = "/var/run/secrets/vault-backup"
TMP_MOUNT = "/tmp"  # noqa: S108 - an emptyDir: the root filesystem is read-only

# A snapshot of even a large Raft store takes minutes. A hung run must not hold the schedule
# (concurrencyPolicy Forbid) for longer than this.
ACTIVE_DEADLINE_SECONDS = 1800
SUCCESSFUL_JOBS_HISTORY = 3
FAILED_JOBS_HISTORY = 5
# Shortest lifetime Kubernetes allows for a projected token; the login happens in seconds.
TOKEN_EXPIRATION_SECONDS = 600

SNAPSHOT_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}}
UPLOAD_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "512Mi"}}


@dataclass(frozen=True)
class BackupNames:
    cron_job: str
    service_account: str
    config_map: str
    volume_claim: str
    vault_role: str

    @classmethod
    def of(cls, config: PlatformConfig) -> BackupNames:
        base = f"{config.cluster.release_name}-backup"
        return cls(cron_job=base, service_account=base, config_map=f"{base}-script", volume_claim=base,
                   vault_role=BACKUP_POLICY)


def read_script() -> str:
    """scripts/backup.sh, as the ConfigMap carries it."""
    return SCRIPT_PATH.read_text()


def labels(config: PlatformConfig) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vault-backup",
        "app.kubernetes.io/instance": config.cluster.release_name,
        "app.kubernetes.io/component": "backup",
        "app.kubernetes.io/part-of": "vault-platform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def metadata(config: PlatformConfig, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": Names.of(config).namespace, "labels": labels(config)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def service_account(config: PlatformConfig, role_arn: str | None = None) -> dict[str, Any]:
    """The job's identity: Vault's Kubernetes auth role and (prod) the IRSA role trust exactly it."""
    annotations = {"eks.amazonaws.com/role-arn": role_arn} if role_arn else None
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(config, BackupNames.of(config).service_account, annotations),
        # The token is projected into the snapshot container only.
        "automountServiceAccountToken": False,
    }


def config_map(config: PlatformConfig, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(config, BackupNames.of(config).config_map),
        "data": {SCRIPT_KEY: script},
    }


def volume_claim(config: PlatformConfig) -> dict[str, Any] | None:
    """The dev backup volume; None when snapshots go to S3."""
    if config.backup.target != "volume":
        return None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": config.backup.volume.size}},
    }
    if config.backup.volume.storage_class:
        spec["storageClassName"] = config.backup.volume.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(config, BackupNames.of(config).volume_claim),
        "spec": spec,
    }


def _security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in pairs.items()]


def _mount(name: str, path: str, read_only: bool = False) -> dict[str, Any]:
    return {"name": name, "mountPath": path, "readOnly": read_only}


def cron_job(config: PlatformConfig, script: str, bucket: str | None = None) -> dict[str, Any]:
    """The CronJob. ``bucket`` is the S3 bucket's name (required for target s3)."""
    names = Names.of(config)
    bn = BackupNames.of(config)
    b = config.backup
    vault_image = f"{config.cluster.image.repository}:{config.cluster.image.tag}"
    common_env = {"HOME": TMP_MOUNT, "SNAPSHOT_DIR": SNAPSHOT_MOUNT}

    snapshot = {
        "name": "snapshot",
        "image": vault_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", f"{SCRIPTS_MOUNT}/{SCRIPT_KEY}", "snapshot"],
        "env": _env({
            **common_env,
            "VAULT_ADDR": names.in_cluster_addr,
            "VAULT_CACERT": f"{CA_MOUNT}/ca.crt",
            "VAULT_K8S_AUTH_PATH": config.kubernetes_auth.path,
            "VAULT_K8S_ROLE": bn.vault_role,
            "VAULT_K8S_JWT_PATH": f"{JWT_MOUNT}/token",
        }),
        "volumeMounts": [
            _mount("script", SCRIPTS_MOUNT, read_only=True),
            _mount("snapshot", SNAPSHOT_MOUNT),
            _mount("vault-ca", CA_MOUNT, read_only=True),
            _mount("vault-token", JWT_MOUNT, read_only=True),
            _mount("tmp", TMP_MOUNT),
        ],
        "resources": SNAPSHOT_RESOURCES,
        "securityContext": _security_context(),
    }

    volumes: list[dict[str, Any]] = [
        {"name": "script", "configMap": {"name": bn.config_map, "defaultMode": 0o555,
                                         "items": [{"key": SCRIPT_KEY, "path": SCRIPT_KEY}]}},
        # Large enough for a snapshot of the whole Raft store.
        {"name": "snapshot", "emptyDir": {"sizeLimit": config.cluster.data_storage.size}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        # The CA only: the server's private key stays out of this pod.
        {"name": "vault-ca", "secret": {"secretName": names.tls_secret, "defaultMode": 0o444,
                                        "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"name": "vault-token", "projected": {"sources": [{"serviceAccountToken": {
            "path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}}]}},
    ]

    if b.target == "s3":
        if not bucket:
            raise ValueError("backup.target is s3 but no bucket name was given")
        assert config.aws is not None
        finisher = {
            "name": "upload",
            "image": AWS_CLI_IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/sh", f"{SCRIPTS_MOUNT}/{SCRIPT_KEY}", "upload-s3"],
            "env": _env({
                **common_env,
                "S3_BUCKET": bucket,
                "S3_PREFIX": b.s3.prefix,
                "RETENTION_DAYS": str(b.retention_days),
                "AWS_REGION": config.aws.region,
                "AWS_DEFAULT_REGION": config.aws.region,
                "AWS_STS_REGIONAL_ENDPOINTS": "regional",
            }),
            "volumeMounts": [
                _mount("script", SCRIPTS_MOUNT, read_only=True),
                _mount("snapshot", SNAPSHOT_MOUNT, read_only=True),
                _mount("tmp", TMP_MOUNT),
            ],
            "resources": UPLOAD_RESOURCES,
            "securityContext": _security_context(),
        }
    else:
        finisher = {
            "name": "store",
            "image": vault_image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/sh", f"{SCRIPTS_MOUNT}/{SCRIPT_KEY}", "store-volume"],
            "env": _env({**common_env, "BACKUP_DIR": BACKUP_MOUNT, "RETENTION_DAYS": str(b.retention_days)}),
            "volumeMounts": [
                _mount("script", SCRIPTS_MOUNT, read_only=True),
                _mount("snapshot", SNAPSHOT_MOUNT, read_only=True),
                _mount("backups", BACKUP_MOUNT),
                _mount("tmp", TMP_MOUNT),
            ],
            "resources": SNAPSHOT_RESOURCES,
            "securityContext": _security_context(),
        }
        volumes.append({"name": "backups", "persistentVolumeClaim": {"claimName": bn.volume_claim}})

    pod_labels = labels(config)
    pod_spec: dict[str, Any] = {
        "serviceAccountName": bn.service_account,
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_GROUP,
            "fsGroup": RUN_AS_GROUP,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [snapshot],
        "containers": [finisher],
        "volumes": volumes,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(config, bn.cron_job),
        "spec": {
            "schedule": b.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": b.starting_deadline_seconds,
            "successfulJobsHistoryLimit": SUCCESSFUL_JOBS_HISTORY,
            "failedJobsHistoryLimit": FAILED_JOBS_HISTORY,
            "suspend": False,
            "jobTemplate": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "backoffLimit": b.backoff_limit,
                    "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
                    "template": {
                        "metadata": {
                            "labels": pod_labels,
                            # Shows which script version a run used.
                            "annotations": {"vault-platform/backup-script-sha256":
                                            hashlib.sha256(script.encode()).hexdigest()},
                        },
                        "spec": pod_spec,
                    },
                },
            },
        },
    }


def manifests(config: PlatformConfig, script: str, bucket: str | None = None,
              role_arn: str | None = None) -> list[dict[str, Any]]:
    """Every Kubernetes object of the backup job, in apply order."""
    found = [service_account(config, role_arn), config_map(config, script)]
    pvc = volume_claim(config)
    if pvc is not None:
        found.append(pvc)
    found.append(cron_job(config, script, bucket))
    return found

