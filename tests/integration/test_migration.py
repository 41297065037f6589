"""The Secrets Manager migration, run as people run it (`python -m migration ...` in a subprocess)
against moto's Secrets Manager and a real Vault or OpenBao on 127.0.0.1.

Every secret value in these tests carries the canary marker (binary ones in their base64 form too);
every run's stdout, stderr and report files are scanned for them, so a value printed anywhere fails
the test that printed it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from migration.report import read_journal
from migration.vault import CasMismatchError, Vault
from tests.harness.fakes import CANARY
from tests.integration import servers
from tests.integration.aws_proxy import SecretsManagerProxy

ROOT = Path(__file__).resolve().parents[2]
MAP = "app/=imported/"
BINARY = b"\x00\x01\xfe\xff" + CANARY.encode() + b"-keystore"

# name -> (SecretString, SecretBinary, tags)
SECRETS = {
    "app/db/credentials": (json.dumps({"username": f"{CANARY}-db-user", "password": f"{CANARY}-db-password"}), None,
                           [{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "prod"}]),
    "app/api-token": (f"{CANARY}-plain-api-token", None, []),
    "app/certs/keystore": (None, BINARY, [{"Key": "format", "Value": "pkcs12"}]),
    "app/teams/payments/stripe": (json.dumps({"key": f"{CANARY}-stripe", "nested": {"webhook": f"{CANARY}-hook"},
                                              "retries": 3}), None, []),
    "other/not-selected": (f"{CANARY}-other", None, []),
    "App/wrong-case": (f"{CANARY}-case", None, []),
}
EXPECTED = {
    "imported/db/credentials": {"username": f"{CANARY}-db-user", "password": f"{CANARY}-db-password"},
    "imported/api-token": {"value": f"{CANARY}-plain-api-token"},
    "imported/certs/keystore": {"value": base64.b64encode(BINARY).decode()},
    "imported/teams/payments/stripe": {"key": f"{CANARY}-stripe", "nested": {"webhook": f"{CANARY}-hook"},
                                       "retries": 3},
}
FORBIDDEN = (CANARY, base64.b64encode(BINARY).decode())


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@dataclass
class Migration:
    """`python -m migration` against one Vault and one Secrets Manager endpoint."""

    vault_addr: str
    token: str
    aws_env: dict[str, str]
    workdir: Path
    ca_cert: str | None = None
    runs: list[Result] = field(default_factory=list)

    def env(self, token: str | None = None, **extra: str) -> dict[str, str]:
        # Nothing from the developer's environment: no AWS profile or credentials, no Vault token.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir), "PYTHONPATH": str(ROOT),
               "LANG": "C.UTF-8", **self.aws_env, "VAULT_ADDR": self.vault_addr, "VAULT_TOKEN": token or self.token}
        if self.ca_cert:
            env["VAULT_CACERT"] = self.ca_cert
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def run(self, *args: str, token: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 180) -> Result:
        proc = subprocess.run([sys.executable, "-m", "migration", *args], cwd=self.workdir,
                              env=env or self.env(token), capture_output=True, text=True, timeout=timeout, check=False)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(result)
        self.assert_no_value_leaked(result.stdout + result.stderr)
        return result

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "migration", *args], cwd=self.workdir, env=env or self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def assert_no_value_leaked(self, text: str) -> None:
        for value in FORBIDDEN:
            assert value not in text, f"a secret value was printed:\n{text[-3000:]}"

    def assert_reports_hold_no_value(self) -> None:
        for path in self.workdir.rglob("*"):
            if path.is_file() and path.suffix in (".json", ".jsonl"):
                self.assert_no_value_leaked(path.read_text())


def seed(client, names: dict[str, tuple[str | None, bytes | None, list]] = SECRETS) -> dict[str, str]:
    """Create the secrets; their ARNs by name."""
    arns = {}
    for name, (string, binary, tags) in names.items():
        kwargs: dict = {"Name": name, "Tags": tags}
        if binary is not None:
            kwargs["SecretBinary"] = binary
        else:
            kwargs["SecretString"] = string
        arns[name] = client.create_secret(**kwargs)["ARN"]
    return arns


def kv(vault: servers.VaultProcess, path: str, token: str | None = None) -> dict | None:
    try:
        return vault.api("GET", f"secret/data/{path}", token=token)["data"]
    except servers.VaultAPIError as exc:
        if exc.status == 404:
            return None
        raise


def current_version(client, name: str) -> str:
    versions = client.describe_secret(SecretId=name)["VersionIdsToStages"]
    return next(v for v, stages in versions.items() if "AWSCURRENT" in stages)


def table_rows(stdout: str) -> list[list[str]]:
    """The item table's rows, as columns (ACTION KEYS NAME PATH WHY, or STATE NAME PATH WHY)."""
    found = []
    for line in stdout.splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) >= 3 and any(p.startswith(("app/", "App/")) for p in parts[1:3]):
            found.append(parts)
    return found


def rows(stdout: str, action: str) -> list[str]:
    """The AWS names of the item-table rows with this action."""
    return [r[2] for r in table_rows(stdout) if r[0] == action]


def states(stdout: str) -> dict[str, tuple[str, str]]:
    """AWS name -> (state, why) from the status table."""
    return {r[1]: (r[0], r[3] if len(r) > 3 else "") for r in table_rows(stdout)}


@pytest.fixture
def migration(dev_vault, secretsmanager_endpoint, workdir) -> Iterator[Migration]:
    mig = Migration(dev_vault.api_addr, dev_vault.root_token or "", secretsmanager_endpoint.env(), workdir)
    yield mig
    mig.assert_reports_hold_no_value()


@pytest.fixture
def proxy(secretsmanager_endpoint) -> Iterator[SecretsManagerProxy]:
    p = SecretsManagerProxy(secretsmanager_endpoint.url)
    try:
        yield p
    finally:
        p.close()


# --- copy, re-run, verify ------------------------------------------------------------------------------

def test_plan_apply_and_verify_copy_json_plain_and_binary_secrets_with_their_provenance(
        migration, dev_vault, secretsmanager_endpoint, workdir):
    client = secretsmanager_endpoint.client()
    arns = seed(client)
    # Someone already set up the path's metadata (no version yet): the copy keeps what they put there.
    dev_vault.api("POST", "secret/metadata/imported/api-token", json={"custom_metadata": {"owner": "team-a"}})

    plan = migration.run("plan", "--map", MAP, "--out", str(workdir / "plan.json"))
    assert plan.code == 0, plan.stderr
    assert sorted(rows(plan.stdout, "create")) == sorted(n for n in SECRETS if n.startswith("app/"))
    assert "apply would write 4 secret(s)" in plan.stdout
    planned = {i["name"]: i for i in json.loads((workdir / "plan.json").read_text())["items"]}
    assert {n: i["keys"] for n, i in planned.items()} == {
        "app/db/credentials": 2, "app/api-token": 1, "app/certs/keystore": 1, "app/teams/payments/stripe": 3}
    assert all((kv(dev_vault, path) or {}).get("data") is None for path in EXPECTED), "plan wrote to Vault"

    apply = migration.run("apply", "--map", MAP, "--report", str(workdir / "apply.jsonl"))
    assert apply.code == 0, apply.stdout + apply.stderr
    for path, data in EXPECTED.items():
        got = kv(dev_vault, path)
        assert got is not None and got["data"] == data, path
        assert got["metadata"]["version"] == 1
    assert base64.b64decode(kv(dev_vault, "imported/certs/keystore")["data"]["value"]) == BINARY
    meta = kv(dev_vault, "imported/db/credentials")["metadata"]["custom_metadata"]
    assert meta["aws-arn"] == arns["app/db/credentials"]
    assert meta["aws-version-id"] == current_version(client, "app/db/credentials")
    assert meta["aws-encoding"] == "json" and meta["migrated-kv-version"] == "1"
    assert meta["aws-tag:team"] == "payments" and meta["aws-tag:env"] == "prod"
    assert dt.datetime.strptime(meta["migrated-at"], "%Y-%m-%dT%H:%M:%SZ")
    assert kv(dev_vault, "imported/api-token")["metadata"]["custom_metadata"]["owner"] == "team-a"
    encodings = {p: kv(dev_vault, p)["metadata"]["custom_metadata"]["aws-encoding"] for p in EXPECTED}
    assert encodings == {"imported/db/credentials": "json", "imported/api-token": "string",
                         "imported/certs/keystore": "base64", "imported/teams/payments/stripe": "json"}
    # Only the selected prefix, matched case-sensitively.
    assert kv(dev_vault, "imported/wrong-case") is None and kv(dev_vault, "other/not-selected") is None
    header, items, summary = read_journal(workdir / "apply.jsonl")
    assert header["command"] == "apply" and summary is not None and summary["counts"] == {"create": 4}
    assert sorted(i["name"] for i in items) == sorted(planned)

    again = migration.run("apply", "--map", MAP, "--report", str(workdir / "again.jsonl"))
    assert again.code == 0
    assert read_journal(workdir / "again.jsonl")[2]["counts"] == {"unchanged": 4}
    assert all(kv(dev_vault, p)["metadata"]["version"] == 1 for p in EXPECTED), "a re-run wrote a new version"

    verify = migration.run("verify", "--map", MAP)
    assert verify.code == 0 and "every value matches" in verify.stdout
    assert list((workdir / "migration-reports").glob("verify-*.jsonl")), "verify keeps a report by default"


def test_a_conflicting_kv_secret_is_left_alone_unless_overwrite_and_then_only_with_check_and_set(
        migration, dev_vault, secretsmanager_endpoint):
    seed(secretsmanager_endpoint.client())
    dev_vault.api("POST", "secret/data/imported/db/credentials", json={"data": {"password": "set-in-vault"}})

    plan = migration.run("plan", "--map", MAP)
    assert plan.code == 3 and rows(plan.stdout, "conflict") == ["app/db/credentials"]
    apply = migration.run("apply", "--map", MAP)
    assert apply.code == 3 and rows(apply.stdout, "conflict") == ["app/db/credentials"]
    kept = kv(dev_vault, "imported/db/credentials")
    assert kept["data"] == {"password": "set-in-vault"} and kept["metadata"]["version"] == 1
    assert kv(dev_vault, "imported/api-token")["data"] == EXPECTED["imported/api-token"]

    overwrite = migration.run("apply", "--map", MAP, "--overwrite")
    assert overwrite.code == 0 and rows(overwrite.stdout, "overwrite") == ["app/db/credentials"]
    replaced = kv(dev_vault, "imported/db/credentials")
    assert replaced["data"] == EXPECTED["imported/db/credentials"] and replaced["metadata"]["version"] == 2
    assert migration.run("apply", "--map", MAP).code == 0

    # Every write carries check-and-set: one based on a version that is no longer the latest fails.
    client = Vault(dev_vault.api_addr, dev_vault.root_token or "")
    with pytest.raises(CasMismatchError):
        client.write("secret", "imported/db/credentials", {"password": "stale"}, cas=1)
    with pytest.raises(CasMismatchError):
        client.write("secret", "imported/db/credentials", {"password": "stale"}, cas=0)
    assert kv(dev_vault, "imported/db/credentials")["metadata"]["version"] == 2


def test_apply_of_a_reviewed_plan_does_only_what_was_reviewed(migration, dev_vault, secretsmanager_endpoint,
                                                              workdir):
    client = secretsmanager_endpoint.client()
    seed(client)
    plan = migration.run("plan", "--map", MAP, "--out", str(workdir / "plan.json"))
    assert plan.code == 0
    # After the review: one secret changes, one appears.
    client.put_secret_value(SecretId="app/api-token", SecretString=f"{CANARY}-rotated-after-review")
    seed(client, {"app/late-arrival": (f"{CANARY}-late", None, [])})

    apply = migration.run("apply", "--map", MAP, "--plan", str(workdir / "plan.json"))
    assert apply.code == 1, apply.stdout + apply.stderr
    assert rows(apply.stdout, "skipped") == ["app/api-token"]
    assert "changed since the plan" in apply.stdout and "plan again" in apply.stdout
    assert "1 selected secret(s) are not in the plan" in apply.stdout
    assert sorted(rows(apply.stdout, "create")) == ["app/certs/keystore", "app/db/credentials",
                                                    "app/teams/payments/stripe"]
    assert kv(dev_vault, "imported/api-token") is None and kv(dev_vault, "imported/late-arrival") is None

    not_a_plan = workdir / "other.json"
    not_a_plan.write_text("{}")
    refused = migration.run("apply", "--map", MAP, "--plan", str(not_a_plan))
    assert refused.code == 2 and "not a plan written by `plan --out`" in refused.stderr


# --- stopped half-way ------------------------------------------------------------------------------------

def _wait_for_items(journal: Path, count: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 10):
        if journal.exists() and len(read_journal(journal)[1]) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {count} secrets were done")
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} secrets done within {timeout:.0f} s")


def test_a_run_stopped_half_way_leaves_a_report_of_what_it_did_and_a_rerun_finishes_the_copy(
        migration, dev_vault, secretsmanager_endpoint, proxy, workdir):
    total = 120
    bulk = {f"app/bulk/s-{i:03d}": (json.dumps({"n": f"{CANARY}-{i}"}) if i % 3 else f"{CANARY}-{i}", None, [])
            for i in range(total)}
    seed(secretsmanager_endpoint.client(), bulk)
    proxy.delay = 0.25  # every AWS call: the runs below take seconds, long enough to stop half-way
    env = migration.env(**secretsmanager_endpoint.env(proxy.url))
    args = ("apply", "--map", MAP, "--workers", "1", "--quiet")

    # SIGTERM (a cancelled job): the secrets in flight finish and the report gets its summary.
    first = workdir / "first.jsonl"
    proc = migration.popen(*args, "--report", str(first), env=env)
    _wait_for_items(first, 21, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    migration.assert_no_value_leaked(out + err)
    assert proc.returncode == 1, err
    _, items, summary = read_journal(first)
    assert summary is not None and summary["interrupted"] is True and 21 <= len(items) < total

    # SIGKILL: no chance to finish anything; the lines written so far are the record.
    second = workdir / "second.jsonl"
    proc = migration.popen(*args, "--report", str(second), env=env)
    _wait_for_items(second, 61, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    migration.assert_no_value_leaked(out + err)
    assert proc.returncode == -signal.SIGKILL
    _, items, summary = read_journal(second)
    assert summary is None, "a killed run cannot have written its summary"
    assert 61 <= len(items) < total
    for item in items:
        assert item["action"] in ("create", "unchanged", "update"), item
        got = kv(dev_vault, item["path"])
        assert got is not None and got["metadata"]["version"] == 1, item["path"]

    resumed = migration.run("apply", "--map", MAP, "--report", str(workdir / "resumed.jsonl"), env=env)
    assert resumed.code == 0, resumed.stdout + resumed.stderr
    counts = read_journal(workdir / "resumed.jsonl")[2]["counts"]
    assert sum(counts.values()) == total and set(counts) <= {"create", "update", "unchanged"}
    assert counts.get("unchanged", 0) >= 61
    # Each secret was written exactly once across the three runs.
    for i in range(total):
        got = kv(dev_vault, f"imported/bulk/s-{i:03d}")
        assert got is not None and got["metadata"]["version"] == 1, i
    assert migration.run("verify", "--map", MAP, env=env).code == 0


# --- verify -----------------------------------------------------------------------------------------------

def test_verify_catches_a_value_changed_on_either_side(migration, dev_vault, secretsmanager_endpoint):
    client = secretsmanager_endpoint.client()
    seed(client)
    assert migration.run("apply", "--map", MAP).code == 0

    client.put_secret_value(SecretId="app/api-token", SecretString=f"{CANARY}-rotated-in-aws")
    dev_vault.api("POST", "secret/data/imported/db/credentials",
                  json={"data": {"username": f"{CANARY}-db-user", "password": f"{CANARY}-edited-in-vault"}})
    dev_vault.api("DELETE", "secret/data/imported/certs/keystore")

    verify = migration.run("verify", "--map", MAP)
    assert verify.code == 1
    lines = {r[2]: r[-1] for r in table_rows(verify.stdout) if r[0] == "differs"}
    assert set(lines) == {"app/api-token", "app/db/credentials", "app/certs/keystore"}
    assert "changed in AWS" in lines["app/api-token"]
    assert "changed in Vault" in lines["app/db/credentials"] and "1 with different values" in lines[
        "app/db/credentials"]
    assert "deleted in Vault" in lines["app/certs/keystore"]
    assert "3 secret(s) differ or are missing" in verify.stdout

    # apply brings the AWS-side change over and leaves the Vault-side ones to a person.
    apply = migration.run("apply", "--map", MAP)
    assert apply.code == 3
    assert rows(apply.stdout, "update") == ["app/api-token"]
    assert sorted(rows(apply.stdout, "conflict")) == ["app/certs/keystore", "app/db/credentials"]
    assert kv(dev_vault, "imported/api-token")["data"] == {"value": f"{CANARY}-rotated-in-aws"}
    assert migration.run("verify", "--map", MAP).code == 1


# --- throttling ---------------------------------------------------------------------------------------------

def test_throttling_from_aws_is_retried_with_backoff(migration, dev_vault, secretsmanager_endpoint, proxy, workdir):
    seed(secretsmanager_endpoint.client())
    proxy.throttle.update({"ListSecrets": 2, "BatchGetSecretValue": 3})
    env = migration.env(**secretsmanager_endpoint.env(proxy.url))

    apply = migration.run("apply", "--map", MAP, "--report", str(workdir / "apply.jsonl"), env=env)
    assert apply.code == 0, apply.stdout + apply.stderr
    assert proxy.throttled == {"ListSecrets": 2, "BatchGetSecretValue": 3}
    assert proxy.calls["BatchGetSecretValue"] == 4 and proxy.calls["ListSecrets"] == 3
    assert "5 retried after throttling" in apply.stdout
    assert read_journal(workdir / "apply.jsonl")[2]["aws_retries"] == 5
    assert all(kv(dev_vault, p)["data"] == data for p, data in EXPECTED.items())


# --- the policy ---------------------------------------------------------------------------------------------

def test_the_migration_policy_is_enough_for_every_command_and_refuses_everything_outside_its_paths(
        migration, dev_vault, secretsmanager_endpoint):
    seed(secretsmanager_endpoint.client())
    policy = migration.run("policy", "--map", MAP)
    assert policy.code == 0
    dev_vault.api("PUT", "sys/policies/acl/secrets-manager-migration", json={"policy": policy.stdout})
    token = dev_vault.api("POST", "auth/token/create", json={
        "policies": ["secrets-manager-migration"], "no_default_policy": True, "ttl": "15m"})["auth"]["client_token"]

    for command in ("plan", "apply", "verify", "status"):
        result = migration.run(command, "--map", MAP, token=token)
        assert result.code == 0, f"{command}: {result.stdout}{result.stderr}"
    assert kv(dev_vault, "imported/db/credentials", token=token)["data"] == EXPECTED["imported/db/credentials"]

    dev_vault.api("POST", "secret/data/other/x", json={"data": {"k": "v"}})
    refused = [
        ("GET", "secret/data/other/x"), ("POST", "secret/data/other/x"), ("GET", "secret/metadata/other/x"),
        ("POST", "secret/data/importedX"), ("POST", "secret/data/imported"),
        ("LIST", "secret/metadata/imported"), ("DELETE", "secret/data/imported/api-token"),
        ("POST", "secret/delete/imported/api-token"), ("POST", "secret/undelete/imported/api-token"),
        ("POST", "secret/destroy/imported/api-token"), ("DELETE", "secret/metadata/imported/api-token"),
        ("PATCH", "secret/data/imported/api-token"), ("GET", "secret/config"),
        ("GET", "sys/mounts"), ("POST", "sys/mounts/other"), ("GET", "sys/policies/acl/secrets-manager-migration"),
        ("PUT", "sys/policies/acl/more"), ("POST", "auth/token/create"), ("GET", "auth/token/lookup-self"),
    ]
    allowed = []
    for method, path in refused:
        headers = {"X-Vault-Token": token}
        if method == "PATCH":  # Vault takes a patch only as a JSON merge patch
            headers["Content-Type"] = "application/merge-patch+json"
        body = json.dumps({"data": {"k": "v"}}) if method in ("POST", "PUT", "PATCH") else None
        status = requests.request(method, f"{dev_vault.api_addr}/v1/{path}", headers=headers, data=body,
                                  timeout=30).status_code
        if status != 403:
            allowed.append(f"{method} {path} -> {status}")
    assert allowed == []
    assert kv(dev_vault, "other/x")["data"] == {"k": "v"}

    # A map outside the policy stops at the first refusal, naming the policy, and writes nothing.
    outside = migration.run("apply", "--map", "app/=elsewhere/", token=token)
    assert outside.code == 2 and "permission denied" in outside.stderr and "policy" in outside.stderr
    assert kv(dev_vault, "elsewhere/api-token") is None


# --- decommission check ---------------------------------------------------------------------------------

def test_status_tells_which_aws_secrets_are_still_read_and_when_the_store_can_go(
        migration, dev_vault, secretsmanager_endpoint, proxy):
    client = secretsmanager_endpoint.client()
    first = {n: SECRETS[n] for n in ("app/db/credentials", "app/api-token", "app/certs/keystore")}
    seed(client, first)
    env = migration.env(**secretsmanager_endpoint.env(proxy.url))
    assert migration.run("apply", "--map", MAP, env=env).code == 0
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    # As if the copy ran yesterday: re-date it.
    for path in ("imported/db/credentials", "imported/api-token", "imported/certs/keystore"):
        meta = kv(dev_vault, path)["metadata"]["custom_metadata"]
        dev_vault.api("POST", f"secret/metadata/{path}",
                      json={"custom_metadata": {**meta, "migrated-at": f"{yesterday.isoformat()}T10:00:00Z"}})
    seed(client, {"app/teams/payments/stripe": SECRETS["app/teams/payments/stripe"]})
    # Secrets Manager's LastAccessedDate: one read today (after the copy), one only on the day of the copy.
    proxy.last_accessed.update({"app/db/credentials": today, "app/api-token": yesterday})

    status = migration.run("status", "--map", MAP, "--all", env=env)
    assert status.code == 4, status.stdout + status.stderr
    found = states(status.stdout)
    assert {n: s for n, (s, _) in found.items()} == {
        "app/db/credentials": "still read", "app/api-token": "unused", "app/certs/keystore": "unused",
        "app/teams/payments/stripe": "not migrated"}
    assert today.isoformat() in found["app/db/credentials"][1]
    assert "not ready to decommission" in status.stdout
    table = status.stdout.split("RESULT")[1]
    assert all(f"{state}  " in table for state in ("unused", "still read", "not migrated"))
    assert proxy.calls["BatchGetSecretValue"] == 1, "status must not read values (that counts as an access)"

    # Reads up to a given day (say, the last verify) do not count.
    assert "still read" not in migration.run("status", "--map", MAP, "--since", today.isoformat(), env=env).stdout

    assert migration.run("apply", "--map", MAP, env=env).code == 0
    ready = migration.run("status", "--map", MAP, "--since", today.isoformat(), env=env)
    assert ready.code == 0 and "can be deleted" in ready.stdout

    client.put_secret_value(SecretId="app/api-token", SecretString=f"{CANARY}-rotated")
    outdated = migration.run("status", "--map", MAP, "--since", today.isoformat(), env=env)
    assert outdated.code == 4 and "outdated" in outdated.stdout and "run apply" in outdated.stdout

    for name in [*first, "app/teams/payments/stripe"]:
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    empty = migration.run("status", "--map", MAP, env=env)
    assert empty.code == 0 and "the store is empty" in empty.stdout


# --- what the command refuses ---------------------------------------------------------------------------

def test_the_cli_refuses_what_it_cannot_do_safely_with_exit_code_2(migration, dev_vault, secretsmanager_endpoint):
    seed(secretsmanager_endpoint.client())
    cases = {
        "VAULT_ADDR is not set": migration.env(VAULT_ADDR=""),
        "plain http": migration.env(VAULT_ADDR="http://10.255.255.1:8200"),
        "VAULT_TOKEN is not set": migration.env(VAULT_TOKEN=""),
        "no AWS region": migration.env(AWS_DEFAULT_REGION="", AWS_REGION=""),
    }
    for message, env in cases.items():
        result = migration.run("plan", "--map", MAP, env={k: v for k, v in env.items() if v})
        assert result.code == 2 and message in result.stderr, (message, result.stderr)
    bad_map = migration.run("plan", "--map", "app/")
    assert bad_map.code == 2 and "<aws-name-prefix>=<kv-path-prefix>" in bad_map.stderr
    nothing = migration.run("apply", "--map", "nothing-here/=x/")
    assert nothing.code == 2 and "no AWS secret matches" in nothing.stderr
    wrong_token = migration.run("apply", "--map", MAP, token="not-a-token")
    assert wrong_token.code == 2 and "permission denied" in wrong_token.stderr
    assert kv(dev_vault, "imported/api-token") is None
    usage = migration.run("verify")
    assert usage.code == 2 and "--map" in usage.stderr
    # Only into a KV v2 mount, and exactly at it.
    dev_vault.api("POST", "sys/mounts/kv1", json={"type": "kv", "options": {"version": "1"}})
    for mount, found in (("kv1", "kv v1 at kv1/"), ("secret/inner", "kv v2 at secret/"),
                         ("sys", "system at sys/")):
        result = migration.run("apply", "--map", MAP, "--mount", mount)
        assert result.code == 2 and f"not a KV v2 mount ({found})" in result.stderr, (mount, result.stderr)
    assert dev_vault.api("LIST", "kv1/", expect=(404,)) == {"errors": []}


def test_it_reaches_vault_over_https_with_the_stack_ca(tls_raft_node, secretsmanager_endpoint, workdir):
    node, tls = tls_raft_node
    node.init_and_unseal()
    servers.mount_kv_v2(node.api)
    seed(secretsmanager_endpoint.client())
    mig = Migration(node.api_addr, node.root_token or "", secretsmanager_endpoint.env(), workdir, ca_cert=tls.ca_cert)

    untrusted = mig.run("apply", "--map", MAP, env={k: v for k, v in mig.env().items() if k != "VAULT_CACERT"})
    assert untrusted.code == 2 and "VAULT_CACERT" in untrusted.stderr
    assert mig.run("apply", "--map", MAP).code == 0
    assert mig.run("verify", "--map", MAP).code == 0
    assert node.api("GET", "secret/data/imported/api-token")["data"]["data"] == EXPECTED["imported/api-token"]
    mig.assert_reports_hold_no_value()
