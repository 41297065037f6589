"""RaftBackup: scheduled Raft snapshots to S3 (prod) or a volume (dev), with retention.

Vault's automatic snapshots are Enterprise-only and the chart ships no backups, so this component
declares them: the service account that VaultConfiguration's ``raft-backup`` role is bound to, the
CronJob that runs scripts/backup.sh (built by components.render.backup_job), and where snapshots go: a
PersistentVolumeClaim, or an encrypted, versioned, TLS-only S3 bucket with its own KMS key and an
IRSA role that may touch only the snapshot prefix. The bucket and its key hold the only copy of
past data: both are protected and retained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.render import backup_job
from components.render.backup_job import BackupJob
from components.render.iam import (
    SNAPSHOT_KEY_USE,
    AwsAccount,
    backup_bucket_policy,
    kms_key_policy,
    replication_policy,
    replication_trust_policy,
    s3_backup_policy,
)
from components.resources.aws import inline_policy, irsa_role, protected_kms_key
from components.resources.errors import InvalidInput
from components.resources.manifests import job_identity, object_name

# The script the Job runs, carried by a ConfigMap: read here, at the edge, so the builders stay pure.
SCRIPT_PATH = Path(__file__).resolve().parent / "jobs" / "backup.sh"


def read_script() -> str:
    """scripts/backup.sh, as the ConfigMap carries it."""
    return SCRIPT_PATH.read_text()


def _body(manifest: dict) -> dict:
    """A manifest without apiVersion/kind (the typed resource sets them)."""
    return {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}


@dataclass(frozen=True)
class RaftBackupArgs:
    # What the job's objects are made from (components.render.backup_job.BackupJob.of).
    job: BackupJob
    # The Vault namespace (the resource, so the job's objects wait for it).
    namespace: pulumi.Input[str]
    # S3 target: the account of the bucket, its keys and the job's IRSA role, the cluster's OIDC
    # provider that role trusts, and tags (components.render.iam.AwsAccount.of).
    aws: AwsAccount | None = None


class RaftBackup(pulumi.ComponentResource):
    """Scheduled Raft snapshots and where they go: a volume claim, or hardened S3 buckets."""

    exports: dict[str, pulumi.Input]
    """Stack exports (registered as its outputs): schedule, target, retention, CronJob, and the bucket
    (with its prefix, key, role, Object Lock and replica) or the volume claim."""
    service_account: k8s.core.v1.ServiceAccount
    """The job's service account (Vault's raft-backup role binds exactly it)."""
    config_map: k8s.core.v1.ConfigMap
    """The script the job runs."""
    cron_job: k8s.batch.v1.CronJob
    """The scheduled job."""
    volume_claim: k8s.core.v1.PersistentVolumeClaim | None
    """Volume target: where snapshots are kept."""
    spool_claim: k8s.core.v1.PersistentVolumeClaim | None
    """S3 target: where a snapshot waits until S3 has it (retained)."""
    bucket: aws.s3.Bucket | None
    """S3 target: the snapshot bucket (protected, retained)."""
    kms_key: aws.kms.Key | None
    """S3 target: the bucket's key (protected, retained)."""
    irsa_role: aws.iam.Role | None
    """S3 target: the job's role, which may touch only the snapshot prefix."""
    object_lock: aws.s3.BucketObjectLockConfiguration | None
    """S3 target with Object Lock: the bucket's default retention."""
    replication_role: aws.iam.Role | None
    """S3 replication: the role S3 copies snapshots with."""
    replica_bucket: aws.s3.Bucket | None
    """S3 replication: the bucket in the other region (protected, retained)."""
    replica_key: aws.kms.Key | None
    """S3 replication: the replica bucket's key (protected, retained)."""

    def __init__(self, name: str, args: RaftBackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:backup:RaftBackup", name, None, opts)
        # The AWS provider comes through opts (providers=[...]), as every provider does.
        aws_provider = self.get_provider("aws:index:Provider")
        job = args.job
        b = job.backup
        bn = job.object_names
        namespace = args.namespace
        script = read_script()
        k8s_opts = pulumi.ResourceOptions(parent=self)

        # --- where snapshots go --------------------------------------------------------------------
        self.bucket = None
        self.kms_key = None
        self.irsa_role = None
        self.volume_claim = None
        self.spool_claim = None
        self.object_lock = None
        self.replication_role = None
        self.replica_bucket = None
        self.replica_key = None
        bucket_name: pulumi.Input[str | None] = None
        role_arn: pulumi.Input[str | None] = None
        if b.target == "s3":
            if args.aws is None or aws_provider is None:
                raise InvalidInput("aws", "RaftBackup: an s3 target (backup.target) needs aws settings and an "
                                          "AWS provider")
            self._s3(name, job, args.aws, aws_provider)
            assert self.bucket is not None and self.irsa_role is not None
            bucket_name, role_arn = self.bucket.bucket, self.irsa_role.arn
            spool = backup_job.spool_claim(job)
            assert spool is not None
            # Holds a snapshot until S3 has it: never deleted with data still waiting in it by accident.
            self.spool_claim = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-spool", **_body(_in_namespace(spool, namespace)),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))
        else:
            pvc = backup_job.volume_claim(job)
            assert pvc is not None
            self.volume_claim = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-volume", **_body(_in_namespace(pvc, namespace)), opts=k8s_opts)

        # --- the job ---------------------------------------------------------------------------------
        self.service_account, self.config_map = job_identity(
            name, namespace, pulumi.Output.from_input(role_arn).apply(lambda arn: backup_job.service_account(job, arn)),
            backup_job.config_map(job, script), k8s_opts)
        cron_job = pulumi.Output.from_input(bucket_name).apply(lambda bucket: backup_job.cron_job(job, script, bucket))
        waits_for = [self.service_account, self.config_map]
        for claim in (self.volume_claim, self.spool_claim):
            if claim is not None:
                waits_for.append(claim)
        self.cron_job = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            # The name is known before the bucket is (preview); the spec waits for it.
            metadata={**backup_job.metadata(job, bn.cron_job), "namespace": namespace},
            spec=cron_job.apply(lambda m: m["spec"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=waits_for),
        )

        self.exports = {
            "backupSchedule": b.schedule,
            "backupTarget": b.target,
            "backupRetentionDays": b.retention_days,
            "backupCronJob": object_name(self.cron_job),
        }
        if self.bucket is not None and self.kms_key is not None and self.irsa_role is not None:
            self.exports.update({
                "backupBucket": self.bucket.bucket,
                "backupPrefix": b.s3.prefix,
                "backupKmsKeyArn": self.kms_key.arn,
                "backupRoleArn": self.irsa_role.arn,
            })
        if self.volume_claim is not None:
            self.exports["backupVolumeClaim"] = object_name(self.volume_claim)
        if self.object_lock is not None:
            self.exports["backupObjectLock"] = f"{b.s3.object_lock.mode} {self._lock_days(b)}d"
        if self.replica_bucket is not None:
            self.exports["backupReplicaBucket"] = self.replica_bucket.bucket
        self.register_outputs(dict(self.exports))

    @staticmethod
    def _lock_days(b) -> int:
        return b.s3.object_lock.days or b.retention_days

    def _s3(self, name: str, job: BackupJob, account: AwsAccount, aws_provider: aws.Provider) -> None:
        b = job.backup
        names = job.names
        stack = pulumi.get_stack()
        tags = {**dict(account.tags), "vault-platform/stack": stack}
        aws_opts = pulumi.ResourceOptions(parent=self, provider=aws_provider)

        # S3 replicates with a role of its own, which must decrypt what it copies.
        if b.s3.replication.enabled:
            self.replication_role = aws.iam.Role(
                f"{name}-replication-role", name=f"{names.release}-backup-replication-{stack}"[:64],
                description="S3 replication of the Vault snapshot bucket",
                assume_role_policy=json.dumps(replication_trust_policy()),
                permissions_boundary=account.permissions_boundary or None, tags=tags, opts=aws_opts)
        replicator = [self.replication_role.arn] if self.replication_role is not None else []

        # The job's role exists first: the key policy names it as the key's user.
        self.irsa_role = irsa_role(
            name, account=account, namespace=names.namespace, service_account=job.object_names.service_account,
            role_name=f"{names.release}-backup-{stack}",
            description="Vault backup job: write and prune Raft snapshots in S3 (IRSA)", tags=tags, opts=aws_opts)
        self.kms_key = protected_kms_key(
            f"{name}-key", alias_resource=f"{name}-key-alias", alias=f"vault-backup-{pulumi.get_project()}-{stack}",
            description=f"Vault Raft snapshot bucket ({pulumi.get_project()}/{stack})", deletion_window_days=30,
            # Only through S3: nobody decrypts a snapshot object's data key directly.
            policy=pulumi.Output.all(self.irsa_role.arn, *replicator).apply(lambda users: kms_key_policy(
                list(account.key_administrators), [*users, *account.snapshot_readers], SNAPSHOT_KEY_USE,
                via_service=f"s3.{account.region}.amazonaws.com",
                policy_administrators=account.key_policy_administrators)),
            tags=tags, opts=aws_opts)

        # The job prunes by the time in each name; the lifecycle is the backstop, and also ends the
        # noncurrent versions that versioning keeps after a prune (or an overwrite by mistake).
        days = b.retention_days
        only_snapshots = aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=b.s3.prefix)
        self.bucket, versioning = self._hardened_bucket(
            name, "", bucket_name=b.s3.bucket_name, region=None, key_arn=self.kms_key.arn, tags=tags,
            aws_provider=aws_provider, lock_mode=b.s3.object_lock.mode, lock_days=self._lock_days(b), lifecycle=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-snapshots", status="Enabled", filter=only_snapshots,
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                    noncurrent_version_expiration=aws.s3.
                    BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(noncurrent_days=days),
                    abort_incomplete_multipart_upload=aws.s3.
                    BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(days_after_initiation=1)),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="remove-expired-delete-markers", status="Enabled", filter=only_snapshots,
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        expired_object_delete_marker=True)),
            ])

        inline_policy(f"{name}-s3", self.irsa_role,
                      pulumi.Output.all(bucket=self.bucket.arn, key=self.kms_key.arn).apply(
                          lambda a: s3_backup_policy(a["bucket"], b.s3.prefix, a["key"])), aws_opts)

        if self.replication_role is not None:
            self._replica(name, job, account, aws_provider, tags, versioning, self.replication_role)

    def _replica(self, name: str, job: BackupJob, account: AwsAccount, aws_provider: aws.Provider,
                 tags: dict[str, str], source_versioning: aws.s3.BucketVersioning, role: aws.iam.Role) -> None:
        """A second bucket in another region that S3 copies every snapshot to, with its own key; an
        outage of the whole source region keeps the snapshots readable."""
        b = job.backup
        rep = b.s3.replication
        region = rep.region
        stack = pulumi.get_stack()
        assert self.bucket is not None and self.kms_key is not None
        aws_opts = pulumi.ResourceOptions(parent=self, provider=aws_provider)

        self.replica_key = protected_kms_key(
            f"{name}-replica-key", alias_resource=f"{name}-replica-key-alias",
            alias=f"vault-backup-replica-{pulumi.get_project()}-{stack}",
            description=f"Vault Raft snapshot replica bucket ({pulumi.get_project()}/{stack})", deletion_window_days=30,
            policy=role.arn.apply(lambda arn: kms_key_policy(
                list(account.key_administrators), [arn, *account.snapshot_readers], SNAPSHOT_KEY_USE,
                via_service=f"s3.{region}.amazonaws.com", policy_administrators=account.key_policy_administrators)),
            tags=tags, opts=aws_opts, region=region)
        # Delete markers are not replicated, so the replica expires its copies by itself.
        self.replica_bucket, replica_versioning = self._hardened_bucket(
            name, "replica-", bucket_name=rep.bucket_name, region=region, key_arn=self.replica_key.arn, tags=tags,
            aws_provider=aws_provider, lock_mode=b.s3.object_lock.mode, lock_days=self._lock_days(b),
            lifecycle=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-snapshots", status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=b.s3.prefix),
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=b.retention_days),
                noncurrent_version_expiration=aws.s3.
                BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(noncurrent_days=b.retention_days))])
        inline_policy(f"{name}-replication", role, pulumi.Output.all(
            source=self.bucket.arn, source_key=self.kms_key.arn, replica=self.replica_bucket.arn,
            replica_key=self.replica_key.arn).apply(
            lambda a: replication_policy(a["source"], b.s3.prefix, a["source_key"], account.region, a["replica"],
                                         a["replica_key"], region)), aws_opts)
        aws.s3.BucketReplicationConfig(
            f"{name}-replication", bucket=self.bucket.bucket, role=role.arn,
            rules=[aws.s3.BucketReplicationConfigRuleArgs(
                id="snapshots-to-replica", status="Enabled",
                filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=b.s3.prefix),
                delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                    status="Disabled"),
                source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                    sse_kms_encrypted_objects=aws.s3.
                    BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(status="Enabled")),
                destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                    bucket=self.replica_bucket.arn, storage_class=rep.storage_class,
                    encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                        replica_kms_key_id=self.replica_key.arn)))],
            opts=pulumi.ResourceOptions(parent=self, provider=aws_provider,
                                        depends_on=[source_versioning, replica_versioning]))

    def _hardened_bucket(self, name: str, part: str, *, bucket_name: str | None, region: str | None,
                         key_arn: pulumi.Input[str], tags: dict[str, str], aws_provider: aws.Provider,
                         lifecycle: list, lock_mode: str,
                         lock_days: int) -> tuple[aws.s3.Bucket, aws.s3.BucketVersioning]:
        """A snapshot bucket as both copies need it: owner-enforced, no public access, versioned,
        SSE-KMS with its own key, TLS-only, its lifecycle, and Object Lock when asked. Kept from
        `pulumi destroy` and from removal (protect, retain): a snapshot is a copy of every secret."""
        keep = pulumi.ResourceOptions(parent=self, provider=aws_provider, protect=True, retain_on_delete=True)
        bucket = aws.s3.Bucket(f"{name}-{part}bucket", bucket=bucket_name or None, region=region, force_destroy=False,
                               tags=tags, opts=keep)
        bucket_id = bucket.bucket
        opts = pulumi.ResourceOptions(parent=self, provider=aws_provider, depends_on=[bucket])
        aws.s3.BucketOwnershipControls(
            f"{name}-{part}ownership", bucket=bucket_id, region=region,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=opts)
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-{part}public-access", bucket=bucket_id, region=region, block_public_acls=True,
            block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True, opts=opts)
        versioning = aws.s3.BucketVersioning(
            f"{name}-{part}versioning", bucket=bucket_id, region=region,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"), opts=opts)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-{part}encryption", bucket=bucket_id, region=region,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=key_arn),
                bucket_key_enabled=True)],
            opts=opts)
        after_versioning = pulumi.ResourceOptions(parent=self, provider=aws_provider, depends_on=[versioning])
        aws.s3.BucketLifecycleConfiguration(f"{name}-{part}lifecycle", bucket=bucket_id, region=region, rules=lifecycle,
                                            opts=after_versioning)
        aws.s3.BucketPolicy(
            f"{name}-{part}bucket-policy", bucket=bucket_id, region=region,
            policy=bucket.arn.apply(lambda arn: json.dumps(backup_bucket_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, provider=aws_provider, depends_on=[public_access]))
        if lock_mode != "none":
            # Enabling Object Lock on a bucket cannot be undone; on an existing bucket it needs
            # versioning first. Every new snapshot version is then locked for the days given.
            lock = aws.s3.BucketObjectLockConfiguration(
                f"{name}-{part}object-lock", bucket=bucket_id, region=region, object_lock_enabled="Enabled",
                rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
                    default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                        mode=lock_mode.upper(), days=lock_days)),
                opts=after_versioning)
            if not part:
                self.object_lock = lock
        return bucket, versioning



def _in_namespace(manifest: dict, namespace: pulumi.Input[str]) -> dict:
    """The manifest with metadata.namespace taken from the namespace resource (so it waits for it)."""
    return {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}
