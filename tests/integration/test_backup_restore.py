"""scripts/backup.sh and scripts/restore.sh for real: a Raft node, the vault and aws CLIs, an S3
endpoint (moto), and a fresh node to restore into. Nothing is mocked; every address is 127.0.0.1.

The snapshot and volume steps also run under busybox sh with only busybox tools on PATH, which is
what the hashicorp/vault image gives the CronJob.
"""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from components.model import load_config
from components.render.backup_job import BackupJob
from components.render.policies import BACKUP_POLICY, backup_policy, render
from components.render.vault_objects import BACKUP_TOKEN_MAX_TTL_SECONDS as TOKEN_MAX_TTL_SECONDS
from components.render.vault_objects import BACKUP_TOKEN_TTL_SECONDS as TOKEN_TTL_SECONDS
from tests.harness import stack_config
from tests.integration import servers

ROOT = pathlib.Path(__file__).resolve().parents[2]
BACKUP = ROOT / "scripts" / "backup.sh"
RESTORE = ROOT / "scripts" / "restore.sh"
SECRETS = 120
PREFIX = "raft-snapshots/"
BUSYBOX_TOOLS = ("sh", "tar", "date", "od", "head", "tr", "wc", "sed", "tail", "awk", "grep", "sha256sum",
                 "mktemp", "basename", "dirname", "mkdir", "mv", "cp", "rm", "cat", "sleep", "sort", "ls")
# What the upload step may count on in the AWS CLI image: a shell and coreutils, no awk/sed/grep/tar.
COREUTILS_TOOLS = ("sh", "date", "od", "head", "tr", "wc", "basename", "mkdir", "mv", "cp", "rm", "cat", "ls")


# --- helpers -------------------------------------------------------------------------------------

def _aws_cli() -> pathlib.Path:
    aws = pathlib.Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.fail("no aws CLI next to the test interpreter: pip install -r requirements-dev.txt (awscli)")
    return aws


@dataclass(frozen=True)
class Shell:
    argv: tuple[str, ...]
    path: str
    upload_path: str  # PATH for the upload step, which runs in the AWS CLI image

    @property
    def for_upload(self) -> Shell:
        return Shell(self.argv, self.upload_path, self.upload_path)


SYSTEM_PATH = f"{pathlib.Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
SH = Shell(("sh",), SYSTEM_PATH, SYSTEM_PATH)


@pytest.fixture(params=["sh", "busybox"])
def shell(request, tmp_path) -> Shell:
    """How the scripts run: the system sh, or busybox sh with nothing but busybox tools on PATH (and
    for the upload step, only what coreutils would give)."""
    if request.param == "sh":
        return SH
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox is not installed (apt-get install busybox); it emulates the Vault image's shell")
    paths = []
    for name, tools in (("busybox-bin", BUSYBOX_TOOLS), ("coreutils-bin", COREUTILS_TOOLS)):
        bindir = tmp_path / name
        bindir.mkdir()
        for tool in tools:
            (bindir / tool).symlink_to(busybox)
        paths.append(str(bindir))
    return Shell((busybox, "sh"), *paths)


def run(shell: Shell, script: pathlib.Path, *args: str, env: dict[str, str],
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run a script with exactly ``env`` (no host AWS or Vault settings leak in). The vault and aws
    CLIs are given by full path (VAULT_BIN, AWS_BIN), so PATH can hold busybox tools only."""
    env = {"PATH": shell.path, **env}
    return subprocess.run([*shell.argv, str(script), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def base_env(vault_bin: pathlib.Path, home: pathlib.Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C",
        "VAULT_BIN": str(vault_bin),
        "AWS_BIN": str(_aws_cli()),
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "2",
    }
    env.update(extra)
    return env


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc


def failed(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The one 'ERROR:' line of a failed run, after checking it names every needle."""
    assert proc.returncode != 0, f"expected a failure\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    errors = [line for line in proc.stderr.splitlines() if ": ERROR: " in line]
    assert errors, f"no ERROR line in stderr:\n{proc.stderr}"
    for needle in needles:
        assert needle.lower() in errors[-1].lower(), f"{needle!r} not in {errors[-1]!r}"
    return errors[-1]


def new_bucket(s3_endpoint) -> str:
    """A bucket of this test's own: moto keeps its state per process, not per server."""
    name = f"vault-backups-{secrets.token_hex(4)}"
    s3_endpoint.client().create_bucket(Bucket=name)
    return name


def stamp(ago: dt.timedelta) -> str:
    return (dt.datetime.now(dt.UTC) - ago).strftime("%Y%m%dT%H%M%SZ")


def prepare_source(node: servers.VaultProcess, count: int = SECRETS) -> dict[str, str]:
    """Init and unseal, mount KV v2, write ``count`` secrets; returns path -> value."""
    node.init_and_unseal()
    servers.mount_kv_v2(node.api)
    written = {f"app/s{i:05d}": f"value-{i}-{secrets.token_hex(8)}" for i in range(count)}

    def put(item: tuple[str, str]) -> None:
        node.api("POST", f"secret/data/{item[0]}", json={"data": {"value": item[1]}})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, written.items()))
    node.api("PUT", f"sys/policies/acl/{BACKUP_POLICY}", json={"policy": render(backup_policy())})
    return written


def backup_token(node: servers.VaultProcess) -> str:
    """A token exactly like the backup job's: only raft-backup, not even the default policy."""
    resp = node.api("POST", "auth/token/create", json={
        "policies": [BACKUP_POLICY], "no_default_policy": True, "ttl": f"{TOKEN_TTL_SECONDS}s"})
    return resp["auth"]["client_token"]


def read_all(node: servers.VaultProcess, token: str, paths: list[str]) -> dict[str, str | None]:
    def get(path: str) -> tuple[str, str | None]:
        try:
            data = servers.api("GET", node.api_addr, f"secret/data/{path}", token=token)
        except servers.VaultAPIError as exc:
            if exc.status == 404:
                return path, None
            raise
        return path, data["data"]["data"]["value"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(get, paths))


def snapshot_files(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(directory.glob("vault-*.snap"))


# --- the whole path: snapshot -> volume and S3 -> restore into a fresh cluster ----------------------

def test_backup_to_volume_and_s3_then_restore_into_a_fresh_cluster(shell, vault_bin, workdir, raft_node,
                                                                     s3_endpoint):
    written = prepare_source(raft_node)
    source_root = raft_node.root_token
    token = backup_token(raft_node)
    # The backup token cannot read a single secret.
    with pytest.raises(servers.VaultAPIError) as denied:
        servers.api("GET", raft_node.api_addr, "secret/data/app/s00000", token=token)
    assert denied.value.status == 403

    snapdir, volume = workdir / "snapshot", workdir / "volume"
    volume.mkdir()
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr, VAULT_TOKEN=token,
                   SNAPSHOT_DIR=str(snapdir))

    # 1. snapshot
    proc = ok(run(shell, BACKUP, "snapshot", env=env))
    [snap] = snapshot_files(snapdir)
    assert snap.stat().st_size > 0
    assert f"snapshot {snap} is good" in proc.stderr
    assert not list(snapdir.glob("*.partial"))
    ok(run(shell, BACKUP, "check", str(snap), env=env))

    # A secret written after the snapshot must not survive the restore (point in time).
    raft_node.api("POST", "secret/data/after-snapshot", json={"data": {"value": "later"}})

    # 2. to the volume, pruning only expired snapshots
    expired = volume / f"vault-{stamp(dt.timedelta(days=4))}.snap"
    recent = volume / f"vault-{stamp(dt.timedelta(days=2))}.snap"
    unrelated = volume / "notes.txt"
    for f in (expired, recent, unrelated):
        f.write_bytes(b"old")
    ok(run(shell, BACKUP, "store-volume", env={**env, "BACKUP_DIR": str(volume), "RETENTION_DAYS": "3"}))
    stored = volume / snap.name
    assert stored.read_bytes() == snap.read_bytes()
    assert not expired.exists()
    assert recent.exists() and unrelated.exists()
    assert not list(volume.glob("*.partial"))

    # 3. to S3, pruning only expired snapshots under the prefix
    s3 = s3_endpoint.client()
    bucket = new_bucket(s3_endpoint)
    old_key = f"{PREFIX}vault-{stamp(dt.timedelta(days=20))}.snap"
    keep_key = f"{PREFIX}vault-{stamp(dt.timedelta(days=1))}.snap"
    outside_key = f"elsewhere/vault-{stamp(dt.timedelta(days=400))}.snap"
    for key in (old_key, keep_key, outside_key):
        s3.put_object(Bucket=bucket, Key=key, Body=b"old")
    s3_env = {**env, **s3_endpoint.env(), "S3_BUCKET": bucket, "S3_PREFIX": PREFIX, "RETENTION_DAYS": "14"}
    taken = snap.read_bytes()
    proc = ok(run(shell.for_upload, BACKUP, "upload-s3", env=s3_env))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"{PREFIX}{snap.name}", keep_key, outside_key}
    body = s3.get_object(Bucket=bucket, Key=f"{PREFIX}{snap.name}")["Body"].read()
    assert body == taken
    assert "1 pruned" in proc.stderr and "1 uploaded" in proc.stderr
    # Once S3 has it whole, it leaves the spool.
    assert snapshot_files(snapdir) == []

    if shell != SH:
        return  # restore.sh runs on an operator's machine, not in the Vault image: once is enough

    # 4. a fresh cluster (new keys, new root token), restored from the newest snapshot in S3
    fresh = servers.start_raft_node(vault_bin, workdir, node_id="fresh")
    try:
        fresh_root, _ = fresh.init_and_unseal()
        restore_env = base_env(vault_bin, workdir / "home", **s3_endpoint.env(), VAULT_ADDR=fresh.api_addr,
                               VAULT_TOKEN=fresh_root, RESTORE_VERIFY_TOKEN=source_root)
        # Without --force Vault refuses a snapshot sealed by other keys, and restore.sh says what to do.
        failed(run(SH, RESTORE, "--yes", f"s3://{bucket}/{PREFIX}{snap.name}", env=restore_env),
               "restore: ERROR:", "another seal", "--force")
        proc = run(SH, RESTORE, "--force", "--yes", "--wait", "60", "--verify-kv", "secret/app/s00000",
                   f"s3://{bucket}/{PREFIX}", env=restore_env)
        # The newest snapshot under the prefix is the one just taken (the seeded newer-looking
        # one is older by name), and it is checked before anything changes.
        assert f"downloading s3://{bucket}/{PREFIX}{snap.name}" in proc.stderr
        # Shamir: the restored data is sealed by the SOURCE cluster's keys; restore.sh says so (exit 3).
        assert proc.returncode == 3, proc.stderr
        assert "SEALED" in proc.stderr and "unseal keys" in proc.stderr
        fresh.unseal(raft_node.unseal_keys)
        proc = ok(run(SH, RESTORE, "--verify-only", "--wait", "60", "--verify-kv", "secret/app/s00000",
                      env=restore_env))
        assert "read secret/app/s00000 from the restored data" in proc.stderr
        fresh.wait_until_active(timeout=60)

        # Zero lost: every secret comes back with the source cluster's root token; the fresh
        # cluster's token is gone with the data it belonged to; the later write is absent.
        back = read_all(fresh, source_root, sorted(written))
        assert back == written
        assert read_all(fresh, source_root, ["after-snapshot"]) == {"after-snapshot": None}
        with pytest.raises(servers.VaultAPIError):
            servers.api("GET", fresh.api_addr, "auth/token/lookup-self", token=fresh_root)
    finally:
        fresh.stop()
        fresh.remove_data_dir()


def test_a_forced_restore_under_other_key_numbers_takes_the_old_keys_after_a_restart(vault_bin, workdir, raft_node):
    """A fresh cluster initialized with other numbers than the old one (the CLI's default 3 of 5, the
    old dev stack's 1 of 1) keeps asking for its own count after the forced restore, so the old keys
    never add up; restore.sh says so, and a restart makes the server read the restored seal."""
    written = prepare_source(raft_node, count=5)
    source_root = raft_node.root_token
    snap = _real_snapshot_of(vault_bin, workdir, raft_node)
    fresh = servers.start_raft_node(vault_bin, workdir, node_id="fresh-other-numbers")
    try:
        fresh_root, _ = fresh.init_and_unseal(shares=3, threshold=2)
        restore_env = base_env(vault_bin, workdir / "home", VAULT_ADDR=fresh.api_addr, VAULT_TOKEN=fresh_root,
                               RESTORE_VERIFY_TOKEN=source_root)
        proc = run(SH, RESTORE, "--force", "--yes", "--wait", "60", str(snap), env=restore_env)
        assert proc.returncode == 3, proc.stderr
        assert "asks for 2 of 3 key shares" in proc.stderr and "restart this server" in proc.stderr, proc.stderr
        # The old cluster's one key alone does not unseal it: Vault still counts to 2.
        status = servers.api("PUT", fresh.api_addr, "sys/unseal", json={"key": raft_node.unseal_keys[0]})
        assert status["sealed"] and status["t"] == 2, status
        fresh.restart()
        assert servers.api("GET", fresh.api_addr, "sys/seal-status")["t"] == 1
        fresh.unseal(raft_node.unseal_keys)
        ok(run(SH, RESTORE, "--verify-only", "--wait", "60", "--verify-kv", "secret/app/s00000", env=restore_env))
        assert read_all(fresh, source_root, sorted(written)) == written
    finally:
        fresh.stop()
        fresh.remove_data_dir()


def _real_snapshot_of(vault_bin: pathlib.Path, workdir: pathlib.Path, node: servers.VaultProcess) -> pathlib.Path:
    """A snapshot of ``node`` as it is, taken by backup.sh with the backup job's token."""
    snapdir = workdir / "snapshot"
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=node.api_addr, VAULT_TOKEN=backup_token(node),
                   SNAPSHOT_DIR=str(snapdir))
    ok(run(SH, BACKUP, "snapshot", env=env))
    [snap] = snapshot_files(snapdir)
    return snap


def test_restore_a_local_snapshot_into_the_running_cluster(vault_bin, workdir, raft_node):
    written = prepare_source(raft_node, count=40)
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr,
                   VAULT_TOKEN=backup_token(raft_node), SNAPSHOT_DIR=str(workdir / "snapshot"))
    ok(run(SH, BACKUP, "snapshot", env=env))
    [snap] = snapshot_files(workdir / "snapshot")

    # Damage after the backup: one secret deleted for good, one overwritten, one added.
    raft_node.api("DELETE", "secret/metadata/app/s00001")
    raft_node.api("POST", "secret/data/app/s00002", json={"data": {"value": "overwritten"}})
    raft_node.api("POST", "secret/data/app/new", json={"data": {"value": "new"}})

    restore_env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr,
                           VAULT_TOKEN=raft_node.root_token)
    proc = ok(run(SH, RESTORE, "--yes", "--verify-kv", "secret/app/s00001", str(snap), env=restore_env))
    assert "restore: verified" in proc.stderr
    raft_node.wait_until_active(timeout=60)
    assert read_all(raft_node, raft_node.root_token, sorted(written)) == written
    assert read_all(raft_node, raft_node.root_token, ["app/new"]) == {"app/new": None}


# --- failures: non-zero, one clear line ---------------------------------------------------------

def test_vault_down(shell, vault_bin, workdir):
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=f"http://127.0.0.1:{servers.free_port()}",
                   VAULT_TOKEN="hvs.unused", SNAPSHOT_DIR=str(workdir / "snapshot"), VAULT_MAX_RETRIES="0")
    proc = run(shell, BACKUP, "snapshot", env=env, timeout=60)
    failed(proc, "backup: ERROR:", "unreachable")
    assert snapshot_files(workdir / "snapshot") == []


def test_sealed_vault(vault_bin, workdir, raft_node):
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr, VAULT_TOKEN="hvs.unused",
                   SNAPSHOT_DIR=str(workdir / "snapshot"))
    failed(run(SH, BACKUP, "snapshot", env=env), "sealed")


def test_token_without_the_snapshot_capability(shell, vault_bin, workdir, raft_node):
    prepare_source(raft_node, count=1)
    # The default policy only: everything but the snapshot.
    token = raft_node.api("POST", "auth/token/create", json={"policies": ["default"]})["auth"]["client_token"]
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr, VAULT_TOKEN=token,
                   SNAPSHOT_DIR=str(workdir / "snapshot"))
    failed(run(shell, BACKUP, "snapshot", env=env), "backup: ERROR:", "permission denied", "raft-backup")
    assert list((workdir / "snapshot").iterdir()) == []


def test_no_token_and_no_service_account_token(vault_bin, workdir, raft_node):
    prepare_source(raft_node, count=1)
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr,
                   VAULT_K8S_JWT_PATH=str(workdir / "missing-token"), SNAPSHOT_DIR=str(workdir / "snapshot"))
    failed(run(SH, BACKUP, "snapshot", env=env), "no service account token")


def _real_snapshot(vault_bin: pathlib.Path, workdir: pathlib.Path, node: servers.VaultProcess) -> pathlib.Path:
    prepare_source(node, count=5)
    return _real_snapshot_of(vault_bin, workdir, node)


def test_s3_unreachable(shell, vault_bin, workdir, raft_node, s3_endpoint):
    snap = _real_snapshot(vault_bin, workdir, raft_node)
    closed = f"http://127.0.0.1:{servers.free_port()}"
    bucket = new_bucket(s3_endpoint)
    env = base_env(vault_bin, workdir / "home", SNAPSHOT_DIR=str(snap.parent), S3_BUCKET=bucket, S3_PREFIX=PREFIX,
                   RETENTION_DAYS="14", **{**s3_endpoint.env(), "AWS_ENDPOINT_URL": closed,
                                           "AWS_ENDPOINT_URL_S3": closed})
    failed(run(shell.for_upload, BACKUP, "upload-s3", env=env, timeout=120), "backup: ERROR:",
           f"upload to s3://{bucket}/")


def test_a_failed_upload_keeps_the_snapshot_and_the_next_run_uploads_it(shell, vault_bin, workdir, raft_node,
                                                                        s3_endpoint):
    first = _real_snapshot(vault_bin, workdir, raft_node)
    taken = first.read_bytes()
    bucket = new_bucket(s3_endpoint)
    closed = f"http://127.0.0.1:{servers.free_port()}"
    upload_env = base_env(vault_bin, workdir / "home", SNAPSHOT_DIR=str(first.parent), S3_BUCKET=bucket,
                          S3_PREFIX=PREFIX, RETENTION_DAYS="14", **s3_endpoint.env())
    error = failed(run(shell.for_upload, BACKUP, "upload-s3", timeout=120,
                       env={**upload_env, "AWS_ENDPOINT_URL": closed, "AWS_ENDPOINT_URL_S3": closed}),
                   f"upload to s3://{bucket}/", "stays in")
    assert first.name in error
    assert first.read_bytes() == taken  # the snapshot is still there, whole

    # The next run takes its own snapshot next to it, and S3 is back: both go up, the spool empties.
    snapshot_env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr,
                            VAULT_TOKEN=backup_token(raft_node), SNAPSHOT_DIR=str(first.parent))
    ok(run(SH, BACKUP, "snapshot", env=snapshot_env))
    pending = snapshot_files(first.parent)
    assert len(pending) == 2 and first in pending
    proc = ok(run(shell.for_upload, BACKUP, "upload-s3", env=upload_env))
    assert "2 uploaded" in proc.stderr
    assert snapshot_files(first.parent) == []
    s3 = s3_endpoint.client()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(f"{PREFIX}{p.name}" for p in pending)
    assert s3.get_object(Bucket=bucket, Key=f"{PREFIX}{first.name}")["Body"].read() == taken


def test_upload_and_prune_on_a_bucket_with_object_lock(vault_bin, workdir, raft_node, s3_endpoint):
    """The prod bucket locks every snapshot (governance, backup.s3.objectLock): uploading still works,
    pruning an expired snapshot only hides it behind a delete marker, and its locked version cannot be
    deleted."""
    snap = _real_snapshot(vault_bin, workdir, raft_node)
    s3 = s3_endpoint.client()
    bucket = f"vault-backups-locked-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
    expired = f"{PREFIX}vault-{stamp(dt.timedelta(days=20))}.snap"
    s3.put_object(Bucket=bucket, Key=expired, Body=b"old", ContentMD5=_md5(b"old"))
    env = base_env(vault_bin, workdir / "home", **s3_endpoint.env(), SNAPSHOT_DIR=str(snap.parent),
                   S3_BUCKET=bucket, S3_PREFIX=PREFIX, RETENTION_DAYS="14")
    proc = ok(run(SH, BACKUP, "upload-s3", env=env))
    assert "1 uploaded" in proc.stderr and "1 pruned" in proc.stderr
    head = s3.head_object(Bucket=bucket, Key=f"{PREFIX}{snap.name}")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    # Pruned: no longer listed, but its locked version is still there and cannot be deleted.
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]} == {f"{PREFIX}{snap.name}"}
    versions = s3.list_object_versions(Bucket=bucket, Prefix=expired).get("Versions", [])
    assert len(versions) == 1
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=expired, VersionId=versions[0]["VersionId"])


def _md5(body: bytes) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - S3's Content-MD5, not security


def test_s3_bucket_missing(vault_bin, workdir, raft_node, s3_endpoint):
    snap = _real_snapshot(vault_bin, workdir, raft_node)
    env = base_env(vault_bin, workdir / "home", **s3_endpoint.env(), SNAPSHOT_DIR=str(snap.parent),
                   S3_BUCKET="no-such-bucket", S3_PREFIX=PREFIX, RETENTION_DAYS="14")
    failed(run(SH, BACKUP, "upload-s3", env=env), "upload to s3://no-such-bucket/", "NoSuchBucket")


@pytest.mark.parametrize("content,needle", [(b"", "is empty"), (b"not a snapshot", "not a gzip archive")])
def test_a_bad_snapshot_is_never_stored(shell, vault_bin, workdir, s3_endpoint, content, needle):
    snapdir = workdir / "snapshot"
    snapdir.mkdir()
    (snapdir / f"vault-{stamp(dt.timedelta())}.snap").write_bytes(content)
    volume = workdir / "volume"
    volume.mkdir()
    bucket = new_bucket(s3_endpoint)
    env = base_env(vault_bin, workdir / "home", **s3_endpoint.env(), SNAPSHOT_DIR=str(snapdir), BACKUP_DIR=str(volume),
                   S3_BUCKET=bucket, S3_PREFIX=PREFIX, RETENTION_DAYS="3")
    failed(run(shell, BACKUP, "store-volume", env=env), needle)
    failed(run(shell.for_upload, BACKUP, "upload-s3", env=env), needle)
    assert list(volume.iterdir()) == []
    assert "Contents" not in s3_endpoint.client().list_objects_v2(Bucket=bucket)


def test_a_corrupt_snapshot_fails_the_check_and_the_restore(vault_bin, workdir, raft_node):
    snap = _real_snapshot(vault_bin, workdir, raft_node)
    data = bytearray(snap.read_bytes())
    truncated = workdir / "truncated.snap"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr, VAULT_TOKEN=raft_node.root_token)
    failed(run(SH, BACKUP, "check", str(truncated), env=env), "backup: ERROR:", "snapshot")
    proc = run(SH, RESTORE, "--yes", str(truncated), env=env)
    failed(proc, "restore: ERROR:", "not a usable snapshot")
    assert "nothing changed" in proc.stderr


def test_restore_needs_confirmation_or_yes(vault_bin, workdir, raft_node):
    snap = _real_snapshot(vault_bin, workdir, raft_node)
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr, VAULT_TOKEN=raft_node.root_token)
    failed(run(SH, RESTORE, str(snap), env=env), "confirmation")
    usage = run(SH, RESTORE, env=env)
    assert usage.returncode == 2 and "usage: restore.sh" in usage.stderr


def test_usage(vault_bin, workdir):
    env = base_env(vault_bin, workdir / "home")
    proc = run(SH, BACKUP, env=env)
    assert proc.returncode == 2 and "usage: backup.sh" in proc.stderr
    failed(run(SH, BACKUP, "frobnicate", env=env), "unknown step")
    failed(run(SH, BACKUP, "store-volume", env={**env, "BACKUP_DIR": str(workdir),
                                                     "RETENTION_DAYS": "two"}), "RETENTION_DAYS")


# --- the Kubernetes login the CronJob uses, against the fake Kubernetes API ----------------------------

def test_kubernetes_login_as_the_backup_service_account(vault_bin, workdir, raft_node, fake_kube):
    prepare_source(raft_node, count=3)
    # The role exactly as components/backup.py declares it.
    raw, secret_keys = stack_config("dev")
    job = BackupJob.of(load_config(raw, set(secret_keys)))
    bn = job.object_names
    raft_node.api("POST", "sys/auth/kubernetes", json={"type": "kubernetes"})
    raft_node.api("POST", "auth/kubernetes/config", json=fake_kube.auth_config())
    raft_node.api("POST", f"auth/kubernetes/role/{bn.vault_role}", json={
        "bound_service_account_names": [bn.service_account], "bound_service_account_namespaces": ["vault"],
        "token_policies": [BACKUP_POLICY], "token_no_default_policy": True, "audience": job.token_audience,
        "token_ttl": TOKEN_TTL_SECONDS, "token_max_ttl": TOKEN_MAX_TTL_SECONDS})
    assert job.token_audience == "vault"

    def attempt(namespace: str, name: str, audience: str = job.token_audience) -> subprocess.CompletedProcess[str]:
        jwt = workdir / f"{namespace}-{name}-{len(audience)}.jwt"
        # What the job's projected token volume asks the kubelet for.
        jwt.write_text(fake_kube.token(namespace, name, audiences=[audience]))
        snapdir = workdir / f"snapshot-{namespace}-{name}"
        env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr, VAULT_K8S_JWT_PATH=str(jwt),
                       VAULT_K8S_AUTH_PATH="kubernetes", VAULT_K8S_ROLE=bn.vault_role, SNAPSHOT_DIR=str(snapdir))
        return run(SH, BACKUP, "snapshot", env=env)

    proc = ok(attempt("vault", bn.service_account))
    assert "logging in to" in proc.stderr
    assert len(snapshot_files(workdir / f"snapshot-vault-{bn.service_account}")) == 1
    # Any other service account, or the right name in another namespace, is refused.
    failed(attempt("vault", "myapp"), "Kubernetes login failed")
    failed(attempt("default", bn.service_account), "Kubernetes login failed")
    # A token minted for the API server (a pod's default token) is not one for Vault.
    failed(attempt("vault", bn.service_account, "https://kubernetes.default.svc.cluster.local"),
           "Kubernetes login failed")


@pytest.mark.parametrize("to", ["group", "script"])
@pytest.mark.parametrize(("sig", "code"), [("INT", 130), ("TERM", 143)])
def test_an_interrupted_restore_stops_and_cleans_up(shell, vault_bin, workdir, sig, code, to):
    """Ctrl-C (the terminal signals the whole process group) or a job runner's SIGTERM (often to the
    script alone) while the snapshot downloads: the script must stop there at once, stop the
    download, remove its temporary files, and exit with the signal's code, not carry on to the next
    step. The signal comes as soon as the temporary folder exists, which on a busy machine can be
    before the download has started: the script must not wait for a download it then starts."""
    import signal
    import time

    slow_aws = workdir / "slow-aws"
    slow_aws.write_text("#!/bin/sh\nexec sleep 30\n")
    slow_aws.chmod(0o755)
    tmp = workdir / "tmp"
    tmp.mkdir()
    env = {**base_env(vault_bin, workdir / "home", VAULT_ADDR="http://127.0.0.1:9", VAULT_TOKEN="unused"),
           "AWS_BIN": str(slow_aws), "TMPDIR": str(tmp), "PATH": shell.path}
    proc = subprocess.Popen([*shell.argv, str(RESTORE), "--yes", "s3://bucket/raft-snapshots/"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_signals)
    try:
        deadline = time.monotonic() + 20
        while not any(tmp.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(tmp.iterdir()), "restore.sh never got to the download"
        if to == "group":
            os.killpg(proc.pid, getattr(signal, f"SIG{sig}"))
        else:
            os.kill(proc.pid, getattr(signal, f"SIG{sig}"))
        _, stderr = proc.communicate(timeout=20)
        # Nothing of the run is left behind: the download was stopped with the script.
        deadline = time.monotonic() + 5
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _group_alive(proc.pid), "the download outlived the interrupted script"
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=10)
    assert proc.returncode == code, stderr
    assert "nothing more is done" in stderr
    assert list(tmp.iterdir()) == []


def _default_signals() -> None:
    """The script starts with INT and TERM at their defaults, as from a terminal or a job runner.
    A test run started in the background (`make test &`, nohup, some CI agents) inherits INT
    ignored, and a shell cannot trap a signal that was ignored when it started."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
