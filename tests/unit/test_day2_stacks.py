"""The day-2 resources in each stack's graph, under the mocks: autopilot, PKI auto-tidy, transit
rotation, the database root rotation (and that the stack never sends the rotated password again),
the backup spool, S3 Object Lock and cross-region replication."""

from __future__ import annotations

import json

import pytest

from components.providers.database_root import DatabaseRootRotationProvider
from components.render.iam import DEPLOYER_ACTIONS
from tests.harness import canary_leaks, run_stack

CONNECTION = "vault:database/secretBackendConnection:SecretBackendConnection"
REPLICATION = {"backup": {"s3": {"replication": {"enabled": True, "region": "eu-central-1"}}}}


@pytest.mark.parametrize(("stack", "min_quorum"), [("dev", 3), ("prod", 5)])
def test_autopilot_is_configured_through_the_stack_provider(stack, min_quorum):
    rec = run_stack(stack)
    autopilot = rec.one("vault:index/raftAutopilot:RaftAutopilot")
    assert autopilot.get("cleanupDeadServers") is True and autopilot.get("minQuorum") == min_quorum
    assert autopilot.get("deadServerLastContactThreshold") == "10m0s"  # as Vault reads it back
    assert rec.provider_of(autopilot).type == "pulumi:providers:vault"


def test_every_pki_mount_tidies_itself():
    rec = run_stack("prod")
    tidy = {r.get("backend"): r for r in rec.of_type("vault:pkiSecret/backendConfigAutoTidy:BackendConfigAutoTidy")}
    assert set(tidy) == {"pki", "pki_int"}
    for r in tidy.values():
        assert r.get("enabled") is True and r.get("tidyCertStore") is True and r.get("tidyRevokedCerts") is True
        assert r.get("intervalDuration") == f"{12 * 3600}s" and r.get("safetyBuffer") == f"{72 * 3600}s"


def test_transit_keys_rotate_every_90_days():
    key = run_stack("prod").one("vault:transit/secretBackendKey:SecretBackendKey")
    assert key.get("autoRotatePeriod") == 90 * 86400


def test_the_admin_password_is_rotated_after_the_connection_and_never_sent_again():
    rec = run_stack("prod")
    connection = rec.one(CONNECTION)
    rotation = rec.one("pulumi-python:dynamic:Resource", "vault-config-db-rotate-root-app-postgres")
    assert rec.depends_on(rotation, connection)
    assert rotation.get("mount") == "database" and rotation.get("connection") == "app-postgres"
    assert rotation.get("username") == "vault_admin" and rotation.get("token", None) is None
    assert rotation.get("token_file") == ".vault-login/prod.token"
    # The provider sends the password only when it changes: ignoring changes to it means never again.
    assert connection.ignore_changes == ["postgresql.password"]
    # The dev database is re-initialized from its Secret whenever its pod restarts: never rotated.
    dev = run_stack("dev")
    assert dev.one(CONNECTION).ignore_changes == []
    assert [r for r in dev.resources if "rotate-root" in r.name] == []
    assert canary_leaks(rec) == []


def test_the_rotation_replaces_itself_for_another_database_but_not_for_another_address():
    provider = DatabaseRootRotationProvider()
    olds = {"address": "https://a", "ca_cert_pem": "", "token_file": "t", "mount": "database", "connection": "c",
            "connection_url": "postgresql://{{username}}:{{password}}@db1/app", "username": "admin"}
    same_db = provider.diff("id", olds, {**olds, "address": "https://b"})
    assert same_db.changes and same_db.replaces == []
    assert provider.update("id", olds, {**olds, "address": "https://b"}).outs["address"] == "https://b"
    # How this checkout logs in is no change at all.
    assert not provider.diff("id", olds, {**olds, "token_file": "elsewhere", "login_path": "jwt-ci"}).changes
    other_db = provider.diff("id", olds, {**olds, "connection_url": "postgresql://{{username}}:{{password}}@db2/app"})
    assert other_db.replaces == ["connection_url"]
    assert not provider.diff("id", olds, dict(olds)).changes


def test_prod_snapshots_wait_on_a_retained_spool_volume():
    rec = run_stack("prod")
    spool = rec.one("kubernetes:core/v1:PersistentVolumeClaim", "vault-backup-spool")
    assert spool.get("metadata.name") == "vault-backup-spool" and spool.retain_on_delete is True
    cron = rec.one("kubernetes:batch/v1:CronJob")
    volumes = {v["name"]: v for v in cron.get("spec.jobTemplate.spec.template.spec.volumes")}
    assert volumes["snapshot"] == {"name": "snapshot", "persistentVolumeClaim": {"claimName": "vault-backup-spool"}}
    assert rec.depends_on(cron, spool)


@pytest.mark.parametrize(("mode", "days"), [("governance", 30), ("compliance", 21)])
def test_prod_snapshots_are_locked(mode, days):
    rec = run_stack("prod", {"backup": {"s3": {"objectLock": {"mode": mode, "days": days}}}})
    lock = rec.one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert lock.get("objectLockEnabled") == "Enabled"
    assert lock.get("rule.defaultRetention") == {"mode": mode.upper(), "days": days}
    # The bucket's name as the (mocked) provider made it.
    assert lock.get("bucket") == "vault-backup-bucket-fake123"
    # Object Lock on an existing bucket needs versioning first.
    assert rec.depends_on(lock, rec.one("aws:s3/bucketVersioning:BucketVersioning"))
    assert rec.exports["backupObjectLock"] == f"{mode} {days}d"


def test_lock_days_default_to_the_retention_and_none_means_no_lock():
    rec = run_stack("prod", {"backup": {"retentionDays": 21,
                                        "s3": {"objectLock": {"mode": "governance", "days": None}}}})
    assert rec.one("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration").get(
        "rule.defaultRetention.days") == 21
    off = run_stack("prod", {"backup": {"s3": {"objectLock": {"mode": "none", "days": None}}}})
    assert off.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration") == []


def test_replication_copies_every_snapshot_to_another_region_with_its_own_key():
    rec = run_stack("prod", REPLICATION)
    replica = rec.one("aws:s3/bucket:Bucket", "vault-backup-replica-bucket")
    assert replica.get("region") == "eu-central-1" and replica.protect and replica.retain_on_delete
    replica_key = rec.one("aws:kms/key:Key", "vault-backup-replica-key")
    assert replica_key.get("region") == "eu-central-1" and replica_key.protect and replica_key.retain_on_delete
    config = rec.one("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    (rule,) = config.get("rules")
    assert rule["filter"] == {"prefix": "raft-snapshots/"} and rule["status"] == "Enabled"
    assert rule["destination"]["bucket"] == "arn:aws:s3:::vault-backup-replica-bucket-fake123"
    assert rule["destination"]["encryptionConfiguration"]["replicaKmsKeyId"].endswith("vault-backup-replica-key-key-id")
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}
    assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"
    assert config.get("bucket") == "vault-backup-bucket-fake123"
    role = rec.one("aws:iam/role:Role", "vault-backup-replication-role")
    assert json.loads(role.get("assumeRolePolicy"))["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    policy = json.loads(rec.one("aws:iam/rolePolicy:RolePolicy", "vault-backup-replication").get("policy"))
    sids = {s["Sid"]: s for s in policy["Statement"]}
    assert sids["DecryptSource"]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    assert sids["EncryptReplica"]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-central-1.amazonaws.com"}}
    # The source key lets the replication role decrypt what it copies.
    source_key = json.loads(rec.one("aws:kms/key:Key", "vault-backup-key").get("policy"))
    users = next(s for s in source_key["Statement"] if s["Sid"] == "KeyUse")["Principal"]["AWS"]
    assert any("vault-backup-replication-prod" in u for u in users)
    # Locked like the source.
    locks = rec.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")
    assert sorted(r.name for r in locks) == ["vault-backup-object-lock", "vault-backup-replica-object-lock"]
    assert rec.exports["backupReplicaBucket"]
    # The deploying role may create all of it.
    assert {r.type for r in rec.resources if r.type.startswith("aws:")} <= set(DEPLOYER_ACTIONS)


def test_the_rotation_provider_is_stored_by_value_and_loads_without_this_repository(tmp_path):
    """`pulumi refresh` and `destroy` load it from the state, in any folder: one where this
    repository cannot be imported (the subprocess has no path to it)."""
    from pulumi.dynamic.dynamic import serialize_provider

    from components.providers import database_root
    from tests.unit.test_layout import _load_in_subprocess

    encoded = serialize_provider(database_root._STORED_PROVIDER())
    proc = _load_in_subprocess(encoded, cwd=tmp_path, pythonpath=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["DatabaseRootRotationProvider", "x"]
