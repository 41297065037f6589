"""The backup job's Kubernetes objects: valid for the API server, and carrying every safeguard."""

from __future__ import annotations

import dataclasses
import hashlib

import kubernetes_validate
import pytest

from components.model import load_config
from components.render import backup_job
from components.render.backup_job import BackupJob
from tests.harness import ROOT, stack_config

# The oldest Kubernetes we support (CronJob timeZone is GA since 1.27) and the newest schema we have.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
BUCKET = "vault-backup-bucket-test"
ROLE_ARN = "arn:aws:iam::123456789012:role/vault-backup-prod"


def _config(stack: str, **backup_changes) -> BackupJob:
    raw, secret_keys = stack_config(stack)
    job = BackupJob.of(load_config(raw, set(secret_keys)))
    if backup_changes:
        job = dataclasses.replace(job, backup=job.backup.model_copy(update=backup_changes))
    return job


@pytest.fixture(scope="module")
def dev() -> BackupJob:
    return _config("dev")


@pytest.fixture(scope="module")
def prod() -> BackupJob:
    return _config("prod")


@pytest.fixture(scope="module")
def script() -> str:
    from components.resources.backup import read_script

    return read_script()


def _manifests(job: BackupJob, script: str) -> list[dict]:
    """Every Kubernetes object of the backup job, in apply order."""
    s3 = job.backup.target == "s3"
    found = [backup_job.service_account(job, ROLE_ARN if s3 else None), backup_job.config_map(job, script)]
    for pvc in (backup_job.volume_claim(job), backup_job.spool_claim(job)):
        if pvc is not None:
            found.append(pvc)
    found.append(backup_job.cron_job(job, script, BUCKET if s3 else None))
    return found


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def _pod(job: dict) -> dict:
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _containers(job: dict) -> list[dict]:
    pod = _pod(job)
    return pod["initContainers"] + pod["containers"]


# --- schema --------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_is_valid_for_the_api_server(stack, version, script):
    found = _manifests(_config(stack), script)
    kinds = [m["kind"] for m in found]
    # dev: the backup volume; prod: the spool that holds a snapshot until S3 has it.
    assert kinds == ["ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "CronJob"]
    for manifest in found:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_schema_check_is_strict(dev, script):
    job = backup_job.cron_job(dev, script)
    _pod(job)["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSIONS[0], strict=True)


# --- the CronJob ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_schedule_and_job_limits_come_from_the_config(stack, script):
    config = _config(stack, schedule="15 3 * * *", starting_deadline_seconds=120, backoff_limit=4)
    job = backup_job.cron_job(config, script, bucket=BUCKET)
    spec = job["spec"]
    assert spec["schedule"] == "15 3 * * *"
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 120
    assert spec["successfulJobsHistoryLimit"] == backup_job.SUCCESSFUL_JOBS_HISTORY
    assert spec["failedJobsHistoryLimit"] == backup_job.FAILED_JOBS_HISTORY
    job_spec = spec["jobTemplate"]["spec"]
    assert job_spec["backoffLimit"] == 4
    assert job_spec["activeDeadlineSeconds"] == backup_job.ACTIVE_DEADLINE_SECONDS
    assert _pod(job)["restartPolicy"] == "Never"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pod_and_containers_are_locked_down(stack, script):
    job = backup_job.cron_job(_config(stack), script, bucket=BUCKET)
    pod = _pod(job)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 100
    assert pod["securityContext"]["fsGroup"] == backup_job.RUN_AS_GROUP
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for c in _containers(job):
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert sc["runAsNonRoot"] is True, c["name"]
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
        assert set(c["resources"]) == {"requests", "limits"}, c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["limits"]), c["name"]
        # A read-only root needs somewhere to write: /tmp is an emptyDir, and HOME points there.
        assert {"name": "tmp", "mountPath": "/tmp", "readOnly": False} in c["volumeMounts"]
        assert _env(c)["HOME"] == "/tmp"
        image = c["image"]
        assert ":" in image and not image.endswith(":latest"), image


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_snapshot_step_talks_to_the_active_node_over_verified_tls(stack, script):
    config = _config(stack)
    names = config.names
    job = backup_job.cron_job(config, script, bucket=BUCKET)
    pod = _pod(job)
    [snapshot] = pod["initContainers"]
    assert snapshot["image"] == config.vault_image
    assert snapshot["command"] == ["/bin/sh", "/scripts/backup.sh", "snapshot"]
    env = _env(snapshot)
    assert env["VAULT_ADDR"] == names.in_cluster_addr == f"https://{names.active_service}.{names.namespace}.svc:8200"
    assert env["VAULT_CACERT"] == f"{backup_job.CA_MOUNT}/ca.crt"
    assert env["VAULT_K8S_AUTH_PATH"] == config.kubernetes_auth_path
    assert env["VAULT_K8S_ROLE"] == "raft-backup"
    assert "VAULT_TOKEN" not in env
    assert "VAULT_SKIP_VERIFY" not in env
    # The CA comes from the TLS Secret, and only ca.crt: the server key never enters this pod.
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["vault-ca"]["secret"] == {"secretName": names.tls_secret, "defaultMode": 0o444,
                                             "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert {"name": "vault-ca", "mountPath": backup_job.CA_MOUNT, "readOnly": True} in snapshot["volumeMounts"]
    # The service account token is projected, short-lived, into the snapshot step only.
    token = volumes["vault-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["expirationSeconds"] == 600
    # Minted for Vault only, as the job's Vault role requires.
    assert token["audience"] == config.token_audience == "vault"
    assert env["VAULT_K8S_JWT_PATH"] == f"{backup_job.JWT_MOUNT}/{token['path']}"
    for c in pod["containers"]:
        assert all(m["name"] not in ("vault-token", "vault-ca") for m in c["volumeMounts"]), c["name"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_script_comes_from_the_config_map(stack, script):
    config = _config(stack)
    bn = config.object_names
    cm = backup_job.config_map(config, script)
    assert cm["metadata"]["name"] == bn.config_map
    assert cm["data"] == {"backup.sh": (ROOT / "scripts" / "backup.sh").read_text()}
    job = backup_job.cron_job(config, script, bucket=BUCKET)
    volumes = {v["name"]: v for v in _pod(job)["volumes"]}
    assert volumes["script"]["configMap"]["name"] == bn.config_map
    for c in _containers(job):
        assert c["command"][:2] == ["/bin/sh", "/scripts/backup.sh"]
        assert {"name": "script", "mountPath": "/scripts", "readOnly": True} in c["volumeMounts"]
    annotations = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["vault-platform/backup-script-sha256"] == hashlib.sha256(script.encode()).hexdigest()


def test_prod_uploads_to_s3_with_the_irsa_service_account(prod, script):
    bn = prod.object_names
    job = backup_job.cron_job(prod, script, bucket=BUCKET)
    pod = _pod(job)
    assert pod["serviceAccountName"] == bn.service_account
    [upload] = pod["containers"]
    assert upload["image"] == backup_job.AWS_CLI_IMAGE
    assert upload["command"][-1] == "upload-s3"
    env = _env(upload)
    assert env["S3_BUCKET"] == BUCKET
    assert env["S3_PREFIX"] == prod.backup.s3.prefix == "raft-snapshots/"
    assert env["RETENTION_DAYS"] == str(prod.backup.retention_days) == "30"
    assert env["AWS_REGION"] == prod.aws_region
    # No static credentials: IRSA provides them.
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
    # It removes each snapshot from the spool once S3 has it.
    assert {"name": "snapshot", "mountPath": "/snapshot", "readOnly": False} in upload["volumeMounts"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v] == [
        bn.spool_claim]
    assert env["AWS_RETRY_MODE"] == "standard" and int(env["AWS_MAX_ATTEMPTS"]) > 1

    sa = backup_job.service_account(prod, ROLE_ARN)
    assert sa["metadata"]["name"] == bn.service_account
    assert sa["metadata"]["namespace"] == prod.names.namespace
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE_ARN}
    assert sa["automountServiceAccountToken"] is False
    assert backup_job.volume_claim(prod) is None


def test_s3_target_needs_a_bucket(prod, script):
    with pytest.raises(ValueError, match="no bucket"):
        backup_job.cron_job(prod, script)


def test_dev_stores_on_a_volume(dev, script):
    bn = dev.object_names
    pvc = backup_job.volume_claim(dev)
    assert pvc is not None
    assert pvc["metadata"]["name"] == bn.volume_claim
    assert pvc["spec"]["resources"]["requests"]["storage"] == dev.backup.volume.size == "1Gi"
    assert pvc["spec"]["storageClassName"] == "standard"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]

    job = backup_job.cron_job(dev, script)
    pod = _pod(job)
    [store] = pod["containers"]
    assert store["image"] == dev.vault_image
    assert store["command"][-1] == "store-volume"
    env = _env(store)
    assert env["BACKUP_DIR"] == backup_job.BACKUP_MOUNT
    assert env["RETENTION_DAYS"] == "3"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["backups"] == {"name": "backups", "persistentVolumeClaim": {"claimName": bn.volume_claim}}
    assert {"name": "backups", "mountPath": backup_job.BACKUP_MOUNT, "readOnly": False} in store["volumeMounts"]

    sa = backup_job.service_account(dev)
    assert "annotations" not in sa["metadata"]


def test_volume_without_storage_class_uses_the_cluster_default(script):
    config = _config("dev")
    config = dataclasses.replace(config, backup=config.backup.model_copy(update={
        "volume": config.backup.volume.model_copy(update={"storage_class": None, "size": "3Gi"})}))
    pvc = backup_job.volume_claim(config)
    assert pvc is not None
    assert "storageClassName" not in pvc["spec"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "3Gi"
    kubernetes_validate.validate(pvc, K8S_VERSIONS[0], strict=True)


def test_snapshot_scratch_space_fits_the_raft_store(dev, prod, script):
    volumes = {v["name"]: v for v in _pod(backup_job.cron_job(dev, script))["volumes"]}
    assert volumes["snapshot"]["emptyDir"]["sizeLimit"] == dev.snapshot_size_limit
    # S3: a volume that outlives the run, so a snapshot whose upload failed is still there next time.
    volumes = {v["name"]: v for v in _pod(backup_job.cron_job(prod, script, bucket=BUCKET))["volumes"]}
    spool = backup_job.spool_claim(prod)
    assert spool is not None and backup_job.spool_claim(dev) is None
    assert volumes["snapshot"] == {"name": "snapshot",
                                   "persistentVolumeClaim": {"claimName": spool["metadata"]["name"]}}
    assert spool["spec"]["resources"]["requests"]["storage"] == prod.snapshot_size_limit
    assert spool["spec"]["accessModes"] == ["ReadWriteOnce"]
    kubernetes_validate.validate(spool, K8S_VERSIONS[0], strict=True)


def test_every_object_is_in_the_vault_namespace_with_platform_labels(prod, script):
    for m in _manifests(prod, script):
        assert m["metadata"]["namespace"] == prod.names.namespace
        assert m["metadata"]["labels"]["app.kubernetes.io/part-of"] == "vault-platform"
        assert m["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"
