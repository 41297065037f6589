"""The backup component in the real program, per stack, under Pulumi mocks."""

from __future__ import annotations

import json

import pytest

from components.render.backup_job import AWS_CLI_IMAGE
from components.render.policies import BACKUP_POLICY, backup_policy, render
from tests.harness import Recording, Resource, canary_leaks, run_stack

COMPONENT = "vault-platform:backup:RaftBackup"
CRON_JOB = "kubernetes:batch/v1:CronJob"
BUCKET = "aws:s3/bucket:Bucket"
BACKUP_SA = "vault-backup"
NAMESPACE = "vault"


@pytest.fixture(scope="module")
def dev() -> Recording:
    return run_stack("dev")


@pytest.fixture(scope="module")
def prod() -> Recording:
    return run_stack("prod")


def _component(rec: Recording) -> Resource:
    return rec.one(COMPONENT)


def _children(rec: Recording) -> list[Resource]:
    component = _component(rec)
    return [r for r in rec.resources if r.parent == component.urn]


def _child(rec: Recording, typ: str) -> Resource:
    found = [r for r in _children(rec) if r.type == typ]
    assert len(found) == 1, f"expected one {typ} in the backup component, found {[r.name for r in found]}"
    return found[0]


def _backup_role(rec: Recording) -> Resource:
    role = rec.one("vault:kubernetes/authBackendRole:AuthBackendRole", "vault-config-role-raft-backup")
    assert rec.by_urn(role.parent).type == "vault-platform:configuration:VaultConfiguration"
    return role


def _pod(job: Resource) -> dict:
    return job.get("spec.jobTemplate.spec.template.spec")


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def _doc(resource: Resource, path: str) -> dict:
    return json.loads(resource.get(path))


# --- both stacks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_backup_component_parents_everything_it_declares(stack, request):
    rec: Recording = request.getfixturevalue(stack)
    component = _component(rec)
    assert any(a.type == "vault-platform:index:VaultPlatform" for a in rec.ancestors(component))
    kinds = {r.type for r in _children(rec)}
    assert {CRON_JOB, "kubernetes:core/v1:ServiceAccount", "kubernetes:core/v1:ConfigMap"} <= kinds
    # Its Vault role belongs to the configuration, which owns every Vault object.
    assert "vault:kubernetes/authBackendRole:AuthBackendRole" not in kinds
    # Nothing of the backup's lives outside the component.
    for r in rec.resources:
        if r.name.startswith("vault-backup-"):
            assert r.parent == component.urn, r.name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_vault_role_binds_exactly_the_backup_service_account_to_only_the_backup_policy(stack, request):
    rec: Recording = request.getfixturevalue(stack)
    role = _backup_role(rec)
    assert role.get("roleName") == BACKUP_POLICY
    assert role.get("boundServiceAccountNames") == [BACKUP_SA]
    assert role.get("boundServiceAccountNamespaces") == [NAMESPACE]
    assert role.get("tokenPolicies") == [BACKUP_POLICY]
    assert role.get("tokenNoDefaultPolicy") is True
    assert role.get("backend") == "kubernetes"
    assert rec.provider_of(role).type == "pulumi:providers:vault"
    sa = _child(rec, "kubernetes:core/v1:ServiceAccount")
    assert sa.get("metadata.name") == BACKUP_SA
    assert sa.get("metadata.namespace") == NAMESPACE
    # The policy the role grants exists exactly once in the stack, and is the snapshot-only one.
    [policy] = [r for r in rec.of_type("vault:index/policy:Policy") if r.get("name") == BACKUP_POLICY]
    assert policy.get("policy") == render(backup_policy())
    assert 'path "sys/storage/raft/snapshot"' in policy.get("policy")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_cron_job_runs_the_configured_schedule_after_vault_is_configured(stack, request):
    rec: Recording = request.getfixturevalue(stack)
    job = _child(rec, CRON_JOB)
    assert job.get("spec.schedule") == "0 */6 * * *"
    assert job.get("spec.concurrencyPolicy") == "Forbid"
    assert job.get("metadata.namespace") == NAMESPACE
    assert _pod(job)["serviceAccountName"] == BACKUP_SA
    role = _backup_role(rec)
    assert rec.depends_on(job, role)
    # ... the role is written into the Kubernetes auth method, and the CronJob waits for all of
    # Vault's configuration (its policy, the auth method's config).
    assert rec.depends_on(role, rec.one("vault:index/authBackend:AuthBackend", "vault-config-auth-kubernetes"))
    assert rec.depends_on(job, rec.one("vault:kubernetes/authBackendConfig:AuthBackendConfig",
                                       "vault-config-auth-kubernetes-config"))
    assert rec.depends_on(job, rec.one("vault:index/policy:Policy", "vault-config-policy-raft-backup"))
    assert rec.exports["backupCronJob"] == "vault-backup"
    assert rec.exports["backupSchedule"] == "0 */6 * * *"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_secret_leaks(stack, request):
    rec: Recording = request.getfixturevalue(stack)
    assert canary_leaks(rec) == []


# --- dev: a volume, no cloud -----------------------------------------------------------------------

def test_dev_keeps_snapshots_on_a_volume(dev):
    pvc = _child(dev, "kubernetes:core/v1:PersistentVolumeClaim")
    assert pvc.get("metadata.name") == "vault-backup"
    assert pvc.get("spec.resources.requests.storage") == "1Gi"
    assert pvc.get("spec.storageClassName") == "standard"
    job = _child(dev, CRON_JOB)
    [store] = _pod(job)["containers"]
    assert store["command"][-1] == "store-volume"
    assert _env(store)["RETENTION_DAYS"] == "3"
    claims = [v["persistentVolumeClaim"]["claimName"] for v in _pod(job)["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["vault-backup"]
    assert dev.exports["backupVolumeClaim"] == "vault-backup"
    assert dev.exports["backupTarget"] == "volume"


def test_dev_has_no_bucket_and_no_aws(dev):
    assert dev.of_type(BUCKET) == []
    assert [r for r in _children(dev) if r.type.startswith("aws:")] == []
    sa = _child(dev, "kubernetes:core/v1:ServiceAccount")
    assert "eks.amazonaws.com/role-arn" not in (sa.get("metadata.annotations", None) or {})
    assert "backupBucket" not in dev.exports


# --- prod: S3 -------------------------------------------------------------------------------------

def test_prod_bucket_is_protected_and_retained(prod):
    bucket = _child(prod, BUCKET)
    assert bucket.protect is True
    assert bucket.retain_on_delete is True
    assert bucket.get("forceDestroy") is False
    key = _child(prod, "aws:kms/key:Key")
    assert key.protect is True and key.retain_on_delete is True
    assert key.get("enableKeyRotation") is True
    assert prod.exports["backupBucket"]
    assert prod.exports["backupTarget"] == "s3"


def _bucket_name(prod: Recording) -> str:
    return prod.exports["backupBucket"]


def test_prod_bucket_is_versioned_encrypted_with_its_own_key_and_private(prod):
    name = _bucket_name(prod)
    versioning = _child(prod, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.get("bucket") == name
    assert versioning.get("versioningConfiguration.status") == "Enabled"

    sse = _child(prod, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.get("bucket") == name
    [rule] = sse.get("rules")
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    backup_key_arn = prod.exports["backupKmsKeyArn"]
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == backup_key_arn
    assert backup_key_arn != prod.exports.get("unsealKmsKeyArn")

    pab = _child(prod, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert pab.get("bucket") == name
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert pab.get(flag) is True, flag
    ownership = _child(prod, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.get("rule.objectOwnership") == "BucketOwnerEnforced"


def test_prod_bucket_refuses_plain_http(prod):
    policy = _child(prod, "aws:s3/bucketPolicy:BucketPolicy")
    doc = _doc(policy, "policy")
    arn = f"arn:aws:s3:::{_bucket_name(prod)}"
    [deny] = [s for s in doc["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert sorted(deny["Resource"]) == sorted([arn, f"{arn}/*"])
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert [s for s in doc["Statement"] if s["Effect"] == "Allow"] == []


@pytest.mark.parametrize("days", [30, 7])
def test_prod_lifecycle_expires_snapshots_after_the_retention(days):
    # The lock follows the retention (a lock longer than it would keep snapshots past it).
    rec = run_stack("prod", overrides={"backup": {"retentionDays": days, "s3": {"objectLock": {"days": None}}}})
    lifecycle = _child(rec, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rules = {r["id"]: r for r in lifecycle.get("rules")}
    expire = rules["expire-snapshots"]
    assert expire["status"] == "Enabled"
    assert expire["filter"] == {"prefix": "raft-snapshots/"}
    assert expire["expiration"]["days"] == days
    assert expire["noncurrentVersionExpiration"]["noncurrentDays"] == days
    [upload] = _pod(_child(rec, CRON_JOB))["containers"]
    assert _env(upload)["RETENTION_DAYS"] == str(days)


def test_prod_irsa_role_trusts_exactly_the_backup_service_account(prod):
    role = _child(prod, "aws:iam/role:Role")
    trust = _doc(role, "assumeRolePolicy")
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].startswith("arn:aws:iam::")
    conditions = statement["Condition"]["StringEquals"]
    subs = {k: v for k, v in conditions.items() if k.endswith(":sub")}
    assert list(subs.values()) == [f"system:serviceaccount:{NAMESPACE}:{BACKUP_SA}"]
    assert [v for k, v in conditions.items() if k.endswith(":aud")] == ["sts.amazonaws.com"]
    assert "StringLike" not in statement["Condition"]  # no wildcards
    # The service account the job runs as carries exactly this role.
    sa = _child(prod, "kubernetes:core/v1:ServiceAccount")
    assert sa.get("metadata.annotations")["eks.amazonaws.com/role-arn"] == prod.exports["backupRoleArn"]
    assert prod.exports["backupRoleArn"].endswith(f"/{role.get('name')}")


def test_prod_s3_permissions_are_scoped_to_the_prefix(prod):
    policy = _child(prod, "aws:iam/rolePolicy:RolePolicy")
    doc = _doc(policy, "policy")
    arn = f"arn:aws:s3:::{_bucket_name(prod)}"
    statements = {s["Sid"]: s for s in doc["Statement"]}
    assert all(s["Effect"] == "Allow" for s in doc["Statement"])
    objects = statements["SnapshotObjects"]
    assert sorted(objects["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert objects["Resource"] == f"{arn}/raft-snapshots/*"
    listing = statements["ListSnapshotPrefix"]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Resource"] == arn
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["raft-snapshots/*"]}}
    kms = statements["SnapshotEncryption"]
    assert sorted(kms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms["Resource"] == prod.exports["backupKmsKeyArn"]
    # Nothing else: no s3:*, no other bucket, no other key.
    for s in doc["Statement"]:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        assert not any(a.endswith("*") for a in actions)


def test_prod_job_uploads_to_the_bucket(prod):
    job = _child(prod, CRON_JOB)
    [upload] = _pod(job)["containers"]
    assert upload["image"] == AWS_CLI_IMAGE
    env = _env(upload)
    assert env["S3_BUCKET"] == _bucket_name(prod)
    assert env["S3_PREFIX"] == "raft-snapshots/"
    assert env["AWS_REGION"] == "eu-west-1"
    assert prod.exports["backupPrefix"] == "raft-snapshots/"


def test_a_named_bucket_is_used_as_given():
    rec = run_stack("prod", overrides={"backup": {"s3": {"bucketName": "acme-vault-snapshots"}}})
    assert _child(rec, BUCKET).get("bucket") == "acme-vault-snapshots"
    assert rec.exports["backupBucket"] == "acme-vault-snapshots"


def test_backups_can_be_turned_off():
    # `enabled: false` is a switch: the rest of the section stays as it was, ready to switch back on.
    rec = run_stack("dev", overrides={"backup": {"enabled": False}})
    assert rec.of_type(COMPONENT) == []
    assert rec.of_type(CRON_JOB) == []
    assert not any(k.startswith("backup") for k in rec.exports)
    assert not [r for r in rec.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")
                if r.get("roleName") == BACKUP_POLICY]


EXISTING_CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("tls", [{}, {"source": "existingSecret", "existingSecret": "corp-vault-tls", "validity": None,
                                      "existingCaCert": EXISTING_CA}])
def test_the_job_trusts_the_ca_of_the_secret_the_servers_mount(tls):
    rec = run_stack("dev", {"tls": tls} if tls else None)
    release = rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release")
    servers = {v["name"]: v for v in release.get("values.server.volumes")}
    job = rec.one("kubernetes:batch/v1:CronJob")
    volumes = {v["name"]: v for v in job.get("spec.jobTemplate.spec.template.spec.volumes")}
    server_secret = servers["vault-tls"]["secret"]["secretName"]
    assert volumes["vault-ca"]["secret"]["secretName"] == server_secret
    assert server_secret == ("corp-vault-tls" if tls else "vault-tls")
