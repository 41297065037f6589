"""The restore and migration logins on real servers: each workflow's job (restore.yml, migrate.yml) logs
in with the GitHub OIDC token it mints (scripts/ci_vault_login.py) and gets one narrow policy that
does its task and nothing else. No root token, no admin token, no break-glass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from components.providers.deploy_identity import DeployIdentityProvider
from tests.integration import servers
from tests.integration.github_oidc import GithubActions
from tests.integration.test_backup_restore import (
    BACKUP,
    RESTORE,
    SH,
    backup_token,
    base_env,
    failed,
    ok,
    prepare_source,
    read_all,
    run,
    snapshot_files,
)
from tests.integration.test_deploy_identity import REPO, identity_props, load, prod_objects, status_of
from tests.integration.test_migration import EXPECTED, MAP, Migration, kv, seed

ROOT = servers.REPO_ROOT
LOGIN = ROOT / "scripts" / "ci_vault_login.py"


@pytest.fixture
def github(workdir) -> Iterator[GithubActions]:
    actions = GithubActions(workdir, REPO)
    try:
        yield actions
    finally:
        actions.close()


def write_identity(node: servers.VaultProcess, github: GithubActions, objects=None) -> None:
    """What the first run writes with the root token, trusting this GitHub's runner tokens."""
    props = identity_props(node, objects or prod_objects(), github.issuer, node.root_token)
    for auth in props["auths"]:
        auth["config"]["bound_issuer"] = github.url
    DeployIdentityProvider().create({**props, "revoke_root_token": False})


def ci_login(node: servers.VaultProcess, github: GithubActions, role: str, environment: str,
             ref: str = "refs/heads/main") -> subprocess.CompletedProcess[str]:
    """scripts/ci_vault_login.py in a job of ``environment`` that may mint tokens, as ``role``."""
    github.environment, github.ref = environment, ref
    ca = github.tls.ca_cert
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **github.runner_env(),
           "VAULT_PLATFORM_VAULT_ROLE": role, "SSL_CERT_FILE": str(ca)}
    return subprocess.run([sys.executable, str(LOGIN), node.api_addr, str(ca)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def token_of(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_restore_login_restores_this_clusters_snapshot_and_nothing_else(raft_node, vault_bin, workdir, github):
    written = prepare_source(raft_node, count=30)
    write_identity(raft_node, github)
    env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr,
                   VAULT_TOKEN=backup_token(raft_node), SNAPSHOT_DIR=str(workdir / "snapshot"))
    ok(run(SH, BACKUP, "snapshot", env=env))
    [snap] = snapshot_files(workdir / "snapshot")
    raft_node.api("DELETE", "secret/metadata/app/s00001")
    raft_node.api("POST", "secret/data/app/s00002", json={"data": {"value": "overwritten"}})

    # Only the restore workflow's environment, from main, logs in as restore.
    for environment, ref in (("production", "refs/heads/main"), ("production-preview", "refs/heads/main"),
                             ("production-restore", "refs/heads/feature")):
        refused = ci_login(raft_node, github, "restore", environment, ref)
        assert refused.returncode == 1 and "a CI login to auth/jwt-ci as restore" in refused.stderr
        assert refused.stdout == ""
    restore = token_of(ci_login(raft_node, github, "restore", "production-restore"))
    # It reads no secret, changes no policy, makes no token, and restores no other cluster's snapshot.
    for method, path, body in (("GET", "secret/data/app/s00000", None), ("PUT", "sys/policies/acl/x",
                               {"policy": 'path "*" { capabilities = ["sudo"] }'}),
                               ("POST", "auth/token/create", {}), ("GET", "sys/storage/raft/snapshot", None),
                               ("POST", "auth/jwt-ci/role/restore", {"token_policies": ["admin"]})):
        assert status_of(raft_node, method, path, restore, body) == 403, (method, path)
    restore_env = base_env(vault_bin, workdir / "home", VAULT_ADDR=raft_node.api_addr, VAULT_TOKEN=restore)
    failed(run(SH, RESTORE, "--yes", "--force", str(snap), env=restore_env), "permission denied",
           "sys/storage/raft/snapshot-force")

    proc = ok(run(SH, RESTORE, "--yes", str(snap), env=restore_env))
    assert "restore: verified" in proc.stderr
    raft_node.wait_until_active(timeout=60)
    assert read_all(raft_node, raft_node.root_token, sorted(written)) == written


def test_the_migration_login_copies_into_its_prefix_and_nothing_else(dev_vault, secretsmanager_endpoint, workdir,
                                                                      github):
    dev_vault.api("DELETE", "sys/mounts/secret")
    servers.mount_kv_v2(dev_vault.api)
    write_identity(dev_vault, github)
    seed(secretsmanager_endpoint.client())
    refused = ci_login(dev_vault, github, "migration", "production")
    assert refused.returncode == 1 and "as migration" in refused.stderr
    token = token_of(ci_login(dev_vault, github, "migration", "production-migration"))

    migration = Migration(dev_vault.api_addr, token, secretsmanager_endpoint.env(), workdir)
    for command in ("plan", "apply", "verify"):
        result = migration.run(command, "--map", MAP)
        assert result.code == 0, f"{command}: {result.stdout}{result.stderr}"
    assert kv(dev_vault, "imported/db/credentials")["data"] == EXPECTED["imported/db/credentials"]
    # Nowhere but migration.kvPrefix, and nothing but the copy.
    outside = migration.run("apply", "--map", "app/=elsewhere/")
    assert outside.code == 2 and "permission denied" in outside.stderr
    assert kv(dev_vault, "elsewhere/api-token") is None
    dev_vault.api("POST", "secret/data/other/x", json={"data": {"k": "v"}})
    for method, path in (("GET", "secret/data/other/x"), ("DELETE", "secret/data/imported/api-token"),
                         ("LIST", "secret/metadata/imported"), ("PUT", "sys/policies/acl/x"),
                         ("POST", "sys/storage/raft/snapshot")):
        assert status_of(dev_vault, method, path, token, {"policy": "x"} if method == "PUT" else None) == 403, path
    migration.assert_reports_hold_no_value()


def test_a_stack_that_moves_the_migration_prefix_moves_the_login_with_it(dev_vault, secretsmanager_endpoint, workdir,
                                                                         github):
    from components.render import vault_objects as vs

    dev_vault.api("DELETE", "sys/mounts/secret")
    servers.mount_kv_v2(dev_vault.api)
    objects = vs.build(load("prod", {"migration": {"kvPrefix": "from-aws/"}}))
    write_identity(dev_vault, github, objects)
    seed(secretsmanager_endpoint.client())
    token = token_of(ci_login(dev_vault, github, "migration", "production-migration"))
    migration = Migration(dev_vault.api_addr, token, secretsmanager_endpoint.env(), workdir)
    assert migration.run("apply", "--map", "app/=imported/").code == 2
    moved = migration.run("apply", "--map", "app/=from-aws/")
    assert moved.code == 0, moved.stderr
    assert kv(dev_vault, "from-aws/api-token") is not None
