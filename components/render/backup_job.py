"""The backup job as Kubernetes manifests: CronJob, ServiceAccount, ConfigMap and (dev) a volume.

Pure: plain dicts from the typed config, plus the values only AWS knows (bucket name, role ARN)
passed in as plain strings. The component wires them into resources; the tests validate them
against the Kubernetes schemas.

How a run works (one Job pod, no shell tools needed beyond what each image ships):
  initContainer `snapshot` (the pinned Vault image): `backup.sh snapshot` logs in with the pod's
      projected service account token (Kubernetes auth, role raft-backup), takes a Raft snapshot
      from the active Service and checks it, into a shared emptyDir;
  container `upload` (a pinned AWS CLI image; prod): `backup.sh upload-s3` uploads it with the
      IRSA role and prunes old snapshots. In prod the snapshot lands on a small volume of its own
      (the spool), not in the pod: a run whose upload fails leaves it there, and the next run
      uploads it with its own; or
  container `store` (the Vault image; dev): `backup.sh store-volume` copies it to a PVC and prunes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.model import BackupConfig, PlatformConfig
from components.model.names import Names
from components.render.images import pulled_from
from components.render.policies import BACKUP_POLICY

SCRIPT_PATH = Path(__file__).resolve().parents[2] / "scripts" / "backup.sh"
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
    spool_claim: str = ""

    @classmethod
    def of(cls, release: str) -> BackupNames:
        base = f"{release}-backup"
        return cls(cron_job=base, service_account=base, config_map=f"{base}-script", volume_claim=base,
                   vault_role=BACKUP_POLICY, spool_claim=f"{base}-spool")


@dataclass(frozen=True)
class BackupJob:
    """Everything the backup job's objects are made from."""

    backup: BackupConfig
    names: Names
    # The Vault server image: its CLI takes the snapshot (and stores it on the volume in dev).
    vault_image: str
    kubernetes_auth_path: str
    # The Secret holding the CA the servers' certificate chains to (the job mounts only ca.crt).
    tls_secret: str
    # An emptyDir large enough for a snapshot of the whole Raft store.
    snapshot_size_limit: str
    aws_region: str | None = None
    # The audience of the job's projected token, which its Vault role requires (empty: none).
    token_audience: str = ""
    # The uploader's image (prod), from the private registry when the stack names one.
    aws_cli_image: str = AWS_CLI_IMAGE

    @classmethod
    def of(cls, config: PlatformConfig) -> BackupJob:
        names = Names.of(config)
        tls_secret = config.tls.existing_secret if config.tls.source == "existingSecret" else names.tls_secret
        assert tls_secret
        return cls(backup=config.backup, names=names,
                   vault_image=pulled_from(f"{config.cluster.image.repository}:{config.cluster.image.tag}",
                                           config.images.registry),
                   aws_cli_image=pulled_from(AWS_CLI_IMAGE, config.images.registry),
                   kubernetes_auth_path=config.kubernetes_auth.path, tls_secret=tls_secret,
                   snapshot_size_limit=config.cluster.data_storage.size,
                   aws_region=config.aws.region if config.aws else None,
                   token_audience=config.kubernetes_auth.audience)

    @property
    def object_names(self) -> BackupNames:
        return BackupNames.of(self.names.release)


def read_script() -> str:
    """scripts/backup.sh, as the ConfigMap carries it."""
    return SCRIPT_PATH.read_text()


def labels(job: BackupJob) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "vault-backup",
        "app.kubernetes.io/instance": job.names.release,
        "app.kubernetes.io/component": "backup",
        "app.kubernetes.io/part-of": "vault-platform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def metadata(job: BackupJob, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": job.names.namespace, "labels": labels(job)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def service_account(job: BackupJob, role_arn: str | None = None) -> dict[str, Any]:
    """The job's identity: Vault's Kubernetes auth role and (prod) the IRSA role trust exactly it."""
    annotations = {"eks.amazonaws.com/role-arn": role_arn} if role_arn else None
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(job, job.object_names.service_account, annotations),
        # The token is projected into the snapshot container only.
        "automountServiceAccountToken": False,
    }


def config_map(job: BackupJob, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(job, job.object_names.config_map),
        "data": {SCRIPT_KEY: script},
    }


def volume_claim(job: BackupJob) -> dict[str, Any] | None:
    """The dev backup volume; None when snapshots go to S3."""
    if job.backup.target != "volume":
        return None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": job.backup.volume.size}},
    }
    if job.backup.volume.storage_class:
        spec["storageClassName"] = job.backup.volume.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(job, job.object_names.volume_claim),
        "spec": spec,
    }


def spool_claim(job: BackupJob) -> dict[str, Any] | None:
    """Where an S3 run keeps its snapshot until the upload is confirmed; None for the volume target
    (its snapshot goes straight to the backup volume)."""
    if job.backup.target != "s3":
        return None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(job, job.object_names.spool_claim),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": job.snapshot_size_limit}}},
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


def cron_job(job: BackupJob, script: str, bucket: str | None = None) -> dict[str, Any]:
    """The CronJob. ``bucket`` is the S3 bucket's name (required for target s3)."""
    names = job.names
    bn = job.object_names
    b = job.backup
    vault_image = job.vault_image
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
            "VAULT_K8S_AUTH_PATH": job.kubernetes_auth_path,
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

    # Large enough for a snapshot of the whole Raft store. S3 runs keep it on the spool volume so a
    # failed upload loses nothing.
    snapshot_volume: dict[str, Any] = (
        {"name": "snapshot", "persistentVolumeClaim": {"claimName": bn.spool_claim}} if b.target == "s3"
        else {"name": "snapshot", "emptyDir": {"sizeLimit": job.snapshot_size_limit}})
    volumes: list[dict[str, Any]] = [
        {"name": "script", "configMap": {"name": bn.config_map, "defaultMode": 0o555,
                                         "items": [{"key": SCRIPT_KEY, "path": SCRIPT_KEY}]}},
        snapshot_volume,
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        # The CA only: the server's private key stays out of this pod.
        {"name": "vault-ca", "secret": {"secretName": job.tls_secret, "defaultMode": 0o444,
                                        "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"name": "vault-token", "projected": {"sources": [{"serviceAccountToken": {
            "path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
            **({"audience": job.token_audience} if job.token_audience else {})}}]}},
    ]

    if b.target == "s3":
        if not bucket:
            raise ValueError("backup.target is s3 but no bucket name was given")
        if not job.aws_region:
            raise ValueError("backup.target is s3 but no AWS region was given")
        finisher = {
            "name": "upload",
            "image": job.aws_cli_image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/sh", f"{SCRIPTS_MOUNT}/{SCRIPT_KEY}", "upload-s3"],
            "env": _env({
                **common_env,
                "S3_BUCKET": bucket,
                "S3_PREFIX": b.s3.prefix,
                "RETENTION_DAYS": str(b.retention_days),
                "AWS_REGION": job.aws_region,
                "AWS_DEFAULT_REGION": job.aws_region,
                "AWS_STS_REGIONAL_ENDPOINTS": "regional",
                # A brief S3 hiccup is retried inside the run; a longer one fails it loudly.
                "AWS_RETRY_MODE": "standard",
                "AWS_MAX_ATTEMPTS": "5",
            }),
            "volumeMounts": [
                _mount("script", SCRIPTS_MOUNT, read_only=True),
                # Writable: each snapshot leaves the spool only once S3 has it.
                _mount("snapshot", SNAPSHOT_MOUNT),
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

    pod_labels = labels(job)
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
        "metadata": metadata(job, bn.cron_job),
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

