"""The migration's rules as pure functions: names to KV paths, values to KV data, provenance
metadata, what to do with each secret, verification, the decommission check, retries, the journal,
the policy and the exit codes. (tests/integration/test_migration.py runs the command itself.)"""

from __future__ import annotations

import base64
import datetime as dt
import json

import hcl
import pytest
from botocore.exceptions import ClientError

from migration import cli
from migration import mapping as m
from migration.engine import DIFFERS, MATCH, SKIPPED, Optimism, Outcome, Planned
from migration.policy import migration_policy, migration_policy_hcl
from migration.report import Item, Journal, Progress, read_journal
from migration.retry import Backoff, Counter
from migration.source import MAX_ATTEMPTS, AwsError, SecretsManager, SourceValue
from migration.vault import Vault, VaultError

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf"
SECRET = "s3cr3t-value-never-shown"


# --- names to paths -------------------------------------------------------------------------------

def test_a_map_rule_strips_or_replaces_a_prefix_and_the_longest_one_wins():
    rules = [m.MapRule.parse("prod/=imported/"), m.MapRule.parse("prod/payments/=payments/"),
             m.MapRule.parse("legacy-=legacy/")]
    assert m.target_path("prod/db/main", m.rule_for("prod/db/main", rules)) == "imported/db/main"
    assert m.target_path("prod/payments/stripe", m.rule_for("prod/payments/stripe", rules)) == "payments/stripe"
    assert m.target_path("legacy-token", m.rule_for("legacy-token", rules)) == "legacy/token"
    assert m.rule_for("Prod/db", rules) is None, "names are case-sensitive"
    assert m.target_path("app/x", m.MapRule.parse("app/=")) == "x"


@pytest.mark.parametrize(("text", "fragment"), [
    ("prod/", "exactly one '='"),
    ("a=b=c", "exactly one '='"),
    ("prod/=/imported", "must not start with '/'"),
    ("prod/=a//b", "'//'"),
    ("prod/=a/../b/", "'..'"),
    ("pro d/=x/", "AWS prefix"),
    ("prod/=x y/", "KV prefix"),
])
def test_a_bad_map_rule_is_refused_with_the_reason(text, fragment):
    with pytest.raises(ValueError, match="--map") as err:
        m.MapRule.parse(text)
    assert fragment in str(err.value)


def test_rules_must_exist_and_not_repeat_a_prefix():
    with pytest.raises(ValueError, match="no --map rule"):
        m.check_rules([])
    with pytest.raises(ValueError, match="more than one rule"):
        m.check_rules([m.MapRule("a/", "x/"), m.MapRule("a/", "y/")])


@pytest.mark.parametrize(("path", "problem"), [
    ("imported/db", None), ("a/b+c=d@e.f_g-h", None),
    ("", "empty KV path"), ("imported/", "empty segment"), ("/x", "empty segment"), ("a//b", "empty segment"),
    ("a/../b", "'..' segment"), ("a/./b", "'.' or '..' segment"), ("a b", "characters outside"),
])
def test_path_problems(path, problem):
    found = m.path_problem(path)
    assert (found is None) if problem is None else (problem in found)


def test_two_names_on_one_path_are_found():
    assert m.duplicate_paths([("a/x", "k/x"), ("b/x", "k/x"), ("c", "k/c")]) == {"k/x": ["a/x", "b/x"]}


# --- values to KV data ----------------------------------------------------------------------------

def test_a_json_object_becomes_kv_keys_with_its_values_unchanged():
    value = m.kv_value(json.dumps({"user": "u", "password": SECRET, "port": 5432, "opts": {"tls": True}}), None)
    assert value.encoding == m.ENCODING_JSON and value.keys == 4
    assert value.data == {"user": "u", "password": SECRET, "port": 5432, "opts": {"tls": True}}


@pytest.mark.parametrize("text", [SECRET, "42", '"quoted"', "[1, 2]", "null", "{not json", ""])
def test_any_other_string_becomes_one_key_holding_the_text_as_it_is(text):
    value = m.kv_value(text, None, m.ValueKeys(string_key="token"))
    assert value.encoding == m.ENCODING_STRING and value.data == {"token": text}


def test_binary_becomes_one_key_in_padded_standard_base64():
    raw = b"\x00\xff\xfe" + SECRET.encode()
    value = m.kv_value(None, raw, m.ValueKeys(binary_key="blob"))
    assert value.encoding == m.ENCODING_BINARY and set(value.data) == {"blob"}
    assert base64.b64decode(value.data["blob"], validate=True) == raw
    with pytest.raises(ValueError, match="neither"):
        m.kv_value(None, None)


def test_no_value_ever_shows_in_a_repr():
    assert SECRET not in repr(m.kv_value(SECRET, None))
    assert SECRET not in repr(m.KvState(1, {"v": SECRET}, {}))
    assert SECRET not in repr(SourceValue(ARN, "v1", SECRET, None))
    assert SECRET.encode().hex() not in repr(SourceValue(ARN, "v1", None, SECRET.encode()))


# --- provenance metadata --------------------------------------------------------------------------

def test_provenance_records_the_arn_version_encoding_and_tags():
    md = m.source_metadata(ARN, "v1", m.ENCODING_JSON, [("team", "payments"), ("env", "prod")])
    assert md == {"aws-arn": ARN, "aws-version-id": "v1", "aws-encoding": "json", "aws-tag:env": "prod",
                  "aws-tag:team": "payments"}


def test_a_tag_too_long_for_vault_is_left_out_and_counted_never_cut_short():
    md = m.source_metadata(ARN, "v1", m.ENCODING_STRING, [("k" * 125, "v"), ("ok", "v" * 513), ("fine", "x")])
    assert md["aws-tag:fine"] == "x" and md["aws-tags-omitted"] == "2"
    assert not any(k.startswith("aws-tag:k") or v.startswith("vvv") for k, v in md.items())
    assert m.metadata_problem(md) is None


def test_metadata_beyond_vaults_limits_is_a_problem():
    many = {f"k{i}": "v" for i in range(65)}
    assert "Vault allows 64" in m.metadata_problem(many)
    assert "longer than Vault's 512" in m.metadata_problem({"aws-arn": "a" * 513})


def test_what_is_written_keeps_keys_someone_else_set_and_records_the_kv_version():
    existing = {"owner": "team-a", "aws-tag:old": "gone", "migrated-kv-version": "1"}
    source = m.source_metadata(ARN, "v2", m.ENCODING_JSON, [("new", "tag")])
    written = m.written_metadata(source, existing, 3, dt.datetime(2026, 5, 4, 3, 2, 1, tzinfo=dt.UTC))
    assert written == {**source, "owner": "team-a", "migrated-at": "2026-05-04T03:02:01Z",
                       "migrated-kv-version": "3"}
    assert m.provenance(written) == source


# --- what to do -----------------------------------------------------------------------------------

VALUE = m.kv_value(json.dumps({"password": SECRET}), None)
SOURCE_MD = m.source_metadata(ARN, "v2", VALUE.encoding, [("team", "a")])


def copied(version: int = 1, aws_version: str = "v2", data: dict | None = None, **extra: str) -> m.KvState:
    md = {**m.source_metadata(ARN, aws_version, VALUE.encoding, [("team", "a")]),
          "migrated-at": "2026-01-01T00:00:00Z", "migrated-kv-version": "1", **extra}
    return m.KvState(version, dict(VALUE.data) if data is None else data, md)


@pytest.mark.parametrize(("kv", "overwrite", "action", "cas", "writes_data"), [
    (None, False, m.CREATE, 0, True),
    (copied(), False, m.UNCHANGED, None, False),
    (copied(tags="x"), False, m.UNCHANGED, None, False),                        # a key someone else added
    (m.KvState(1, dict(VALUE.data), {}), False, m.UPDATE, None, False),         # same data, no provenance yet
    (copied(aws_version="v1"), False, m.UPDATE, None, False),                   # same data, new AWS version id
    (copied(version=2), False, m.UPDATE, None, False),                          # same data in a later KV version
    (copied(aws_version="v1", data={"password": "old"}), False, m.UPDATE, 1, True),  # AWS changed since the copy
    (copied(version=2, data={"password": "edited"}), False, m.CONFLICT, None, False),  # Vault changed since
    (copied(version=2, data={"password": "edited"}), True, m.OVERWRITE, 2, True),
    (m.KvState(4, {"other": "data"}, {}), False, m.CONFLICT, None, False),      # not ours, different
    (m.KvState(4, {"other": "data"}, {}), True, m.OVERWRITE, 4, True),
    (m.KvState(3, None, {}), False, m.CONFLICT, None, False),                   # latest version deleted
    (m.KvState(3, None, {}), True, m.OVERWRITE, 3, True),
])
def test_what_to_do_with_each_secret(kv, overwrite, action, cas, writes_data):
    decision = m.decide(ARN, "v2", VALUE, SOURCE_MD, kv, overwrite)
    assert (decision.action, decision.cas, decision.write_data) == (action, cas, writes_data), decision.reason
    if decision.write_data:
        assert decision.cas is not None, "no write without check-and-set"
    assert decision.write_metadata == (action != m.UNCHANGED and action != m.CONFLICT)


def test_a_conflict_says_why_and_how_to_resolve_it():
    reason = m.decide(ARN, "v2", VALUE, SOURCE_MD, m.KvState(4, {"other": "data"}, {})).reason
    assert "not copied from this secret" in reason and "--overwrite" in reason
    reason = m.decide(ARN, "v2", VALUE, SOURCE_MD, copied(version=5, data={"x": "y"})).reason
    assert "changed in Vault after the copy" in reason


def test_writing_first_is_tried_on_a_first_copy_and_given_up_when_paths_are_taken():
    optimism = Optimism()
    assert optimism.worth_trying(None)
    for _ in range(Optimism.TRIAL):
        optimism.missed()
    assert not optimism.worth_trying(None), "a re-run reads first"
    mostly_new = Optimism()
    for _ in range(Optimism.TRIAL):
        mostly_new.missed()
        mostly_new.hit()
    assert mostly_new.worth_trying(None)
    # A reviewed plan knows: only its creates are written without reading first.
    assert optimism.worth_trying(Planned(m.CREATE, "v1"))
    assert not Optimism().worth_trying(Planned(m.UPDATE, "v1"))


# --- verification and decommission ----------------------------------------------------------------

def test_verify_names_the_side_that_changed_never_the_values():
    assert m.compare(ARN, "v2", VALUE, copied()) is None
    assert m.compare(ARN, "v2", VALUE, None) == "missing in Vault"
    assert "deleted in Vault" in m.compare(ARN, "v2", VALUE, m.KvState(2, None, {}))
    aws_side = m.compare(ARN, "v3", VALUE, copied(data={"password": "old"}))
    assert "changed in AWS (current version v3, copied v2)" in aws_side
    vault_side = m.compare(ARN, "v2", VALUE, copied(version=2, data={"password": "edited"}))
    assert "changed in Vault (latest version 2, copied as version 1)" in vault_side
    foreign = m.compare(ARN, "v2", VALUE, m.KvState(1, {"x": "y"}, {}))
    assert "not copied from this AWS secret" in foreign
    for text in (aws_side, vault_side, foreign):
        assert SECRET not in text and "edited" not in text
    assert m.key_differences({"a": 1, "b": 2, "c": 3}, {"b": 2, "c": 4, "d": 5}) == \
        "1 key(s) only in AWS, 1 only in Vault, 1 with different values"


DAY = dt.date(2026, 3, 10)


@pytest.mark.parametrize(("last_accessed", "metadata", "current", "since", "state"), [
    (None, None, "v2", None, m.NOT_MIGRATED),
    (None, {"aws-arn": "arn:other"}, "v2", None, m.NOT_MIGRATED),
    (None, {"aws-arn": ARN, "aws-version-id": "v1", "migrated-at": "2026-03-10T09:00:00Z"}, "v2", None, m.OUTDATED),
    (None, {"aws-arn": ARN, "aws-version-id": "v2", "migrated-at": "2026-03-10T09:00:00Z"}, "v2", None, m.READY),
    # Read on the day of the copy: the migration's own reads look the same.
    (DAY, {"aws-arn": ARN, "aws-version-id": "v2", "migrated-at": "2026-03-10T09:00:00Z"}, "v2", None, m.READY),
    (DAY + dt.timedelta(days=1), {"aws-arn": ARN, "aws-version-id": "v2", "migrated-at": "2026-03-10T09:00:00Z"},
     "v2", None, m.STILL_READ),
    # Reads up to --since (the last verify) do not count either.
    (DAY + dt.timedelta(days=3), {"aws-arn": ARN, "aws-version-id": "v2", "migrated-at": "2026-03-10T09:00:00Z"},
     "v2", DAY + dt.timedelta(days=3), m.READY),
    (DAY + dt.timedelta(days=4), {"aws-arn": ARN, "aws-version-id": "v2", "migrated-at": "2026-03-10T09:00:00Z"},
     "v2", DAY + dt.timedelta(days=3), m.STILL_READ),
])
def test_the_decommission_state_of_a_secret(last_accessed, metadata, current, since, state):
    assert m.usage(ARN, current, last_accessed, metadata, since)[0] == state


# --- retries --------------------------------------------------------------------------------------

def test_backoff_retries_only_what_is_retryable_and_is_bounded_in_attempts_and_sleep():
    backoff = Backoff(attempts=5, base=0.1, cap=0.3)
    sleeps: list[float] = []
    calls = Counter()
    retries = Counter()

    def always_throttled():
        calls.add()
        raise TimeoutError("throttled")
    with pytest.raises(TimeoutError):
        backoff.call(always_throttled, lambda e: isinstance(e, TimeoutError), retries, sleep=sleeps.append)
    assert calls.value == 5 and retries.value == 4 and len(sleeps) == 4
    assert all(0 <= s <= 0.3 for s in sleeps) and sum(sleeps) <= backoff.max_total_sleep() == 0.1 + 0.2 + 0.3 + 0.3

    calls = Counter()

    def refused():
        calls.add()
        raise PermissionError("no")
    with pytest.raises(PermissionError):
        backoff.call(refused, lambda e: isinstance(e, TimeoutError), sleep=sleeps.append)
    assert calls.value == 1

    answers = iter([TimeoutError(), TimeoutError(), "done"])

    def flaky():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer
    assert backoff.call(flaky, lambda e: isinstance(e, TimeoutError), sleep=lambda s: None) == "done"


def test_full_jitter_grows_exponentially_up_to_the_cap():
    backoff = Backoff(base=0.2, cap=5.0)
    highest = [backoff.delay(a, rng=lambda low, high: high) for a in range(8)]
    assert highest == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert backoff.delay(3, rng=lambda low, high: low) == 0.0


class RetryingClient:
    """Answers as a botocore client does after its own retries: RetryAttempts in the metadata."""

    def __init__(self, answers):
        self.answers = iter(answers)

    def list_secrets(self, **kwargs):
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_aws_retries_are_botocores_and_every_attempt_is_counted():
    throttled_twice = {"SecretList": [], "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 2}}
    gave_up = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                           "ResponseMetadata": {"HTTPStatusCode": 400, "RetryAttempts": MAX_ATTEMPTS - 1}},
                          "ListSecrets")
    source = SecretsManager(RetryingClient([throttled_twice, gave_up]))
    assert source.list(["app/"]) == []
    assert (source.requests.value, source.retries.value) == (3, 2)
    with pytest.raises(AwsError, match="Secrets Manager list_secrets: ThrottlingException: Rate exceeded"):
        source.list(["app/"])
    assert (source.requests.value, source.retries.value) == (3 + MAX_ATTEMPTS, 2 + MAX_ATTEMPTS - 1)
    # A refusal is not retried by botocore and reaches the operator as one line.
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"},
                          "ResponseMetadata": {"HTTPStatusCode": 400}}, "ListSecrets")
    with pytest.raises(AwsError, match="AccessDeniedException: no"):
        SecretsManager(RetryingClient([denied])).list([""])


def test_the_client_uses_botocores_standard_retry_mode_bounded_in_attempts():
    client = SecretsManager.from_environment(region="eu-west-1").client
    # What botocore does with it against a throttling endpoint: tests/integration/test_migration.py.
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}


class StubClient:
    """Answers ListSecrets in pages, as the service does."""

    def __init__(self, pages):
        self.pages = pages
        self.seen: list[dict] = []

    def list_secrets(self, **kwargs):
        self.seen.append(kwargs)
        index = int(kwargs.get("NextToken", "0"))
        page = {"SecretList": self.pages[index]}
        if index + 1 < len(self.pages):
            page["NextToken"] = str(index + 1)
        return page


def _entry(name: str, tags=(), **extra):
    return {"Name": name, "ARN": f"arn:aws:secretsmanager:r:1:secret:{name}-x",
            "SecretVersionsToStages": {"old": ["AWSPREVIOUS"], "cur": ["AWSCURRENT"]},
            "Tags": [{"Key": k, "Value": v} for k, v in tags], **extra}


def test_listing_follows_pages_filters_names_case_sensitively_and_reads_the_current_version():
    client = StubClient([[_entry("app/b", [("t", "1")]), _entry("App/upper")],
                         [_entry("app/a", LastAccessedDate=dt.datetime(2026, 3, 9, tzinfo=dt.UTC))]])
    secrets = SecretsManager(client).list(["app/"])
    assert [s.name for s in secrets] == ["app/a", "app/b"]
    assert secrets[1].current_version == "cur" and secrets[1].tags == (("t", "1"),)
    assert secrets[0].last_accessed == dt.date(2026, 3, 9) and secrets[1].last_accessed is None
    assert client.seen[0]["Filters"] == [{"Key": "name", "Values": ["app/"]}] and client.seen[1]["NextToken"] == "1"


# --- the journal and progress ---------------------------------------------------------------------

def test_the_journal_is_whole_lines_and_a_run_without_a_summary_did_not_finish(tmp_path):
    path = tmp_path / "r" / "apply.jsonl"
    journal = Journal(path, {"command": "apply"})
    journal.record(Item("app/a", "imported/a", m.CREATE, "not in Vault", 2, "v1", 1))
    header, items, summary = read_journal(path)
    assert header["command"] == "apply" and summary is None
    assert items == [{"name": "app/a", "path": "imported/a", "action": "create", "reason": "not in Vault", "keys": 2,
                      "aws_version": "v1", "kv_version": 1}]
    journal.finish({"counts": {"create": 1}})
    assert read_journal(path)[2] == {"counts": {"create": 1}}
    assert oct(path.stat().st_mode & 0o777) == "0o600"

    killed = tmp_path / "killed.jsonl"
    journal = Journal(killed, {"command": "apply"})
    journal.record(Item("app/a", "imported/a", m.CREATE))
    with open(killed, "a") as f:
        f.write('{"item": {"name": "app/b", "pa')  # a line cut short by a kill
    _, items, summary = read_journal(killed)
    assert [i["name"] for i in items] == ["app/a"] and summary is None


def test_progress_reports_at_most_every_interval(capsys):
    import io

    stream = io.StringIO()
    progress = Progress("apply", 1000, stream=stream, interval=3600)
    for _ in range(10):
        progress.tick()
    assert stream.getvalue() == ""
    assert progress.line().startswith("apply: 10/1000 secrets (1%)")
    eager = Progress("apply", 3, stream=stream, interval=0)
    eager.tick()
    assert "apply: 1/3 secrets" in stream.getvalue()


# --- the policy -----------------------------------------------------------------------------------

def test_the_policy_allows_create_read_update_on_the_targets_data_and_metadata_only():
    rules = [m.MapRule("prod/", "imported/"), m.MapRule("prod/payments/", "imported/payments/"),
             m.MapRule("legacy-", "legacy/")]
    policy = migration_policy("kv", rules)
    assert [(r.path, r.capabilities) for r in policy.rules] == [
        ("kv/data/imported/*", ("create", "read", "update")), ("kv/metadata/imported/*", ("create", "read", "update")),
        ("kv/data/legacy/*", ("create", "read", "update")), ("kv/metadata/legacy/*", ("create", "read", "update"))]
    parsed = hcl.loads(migration_policy_hcl("kv", rules))
    assert parsed["path"] == {p.path: {"capabilities": list(p.capabilities)} for p in policy.rules}


# --- the command line -----------------------------------------------------------------------------

def test_the_policy_command_prints_the_policy(capsys):
    assert cli.main(["policy", "--map", "prod/=imported/", "--mount", "kv", "--name", "migrate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# migrate:") and 'path "kv/data/imported/*"' in out


@pytest.mark.parametrize(("argv", "fragment"), [
    (["plan", "--map", "prod/"], "exactly one '='"),
    (["plan", "--map", "a/=b/", "--map", "a/=c/"], "more than one rule"),
    (["plan", "--map", "a/=b/", "--mount", "/secret"], "--mount '/secret'"),
    (["plan", "--map", "a/=b/", "--workers", "0"], "--workers 0"),
])
def test_bad_arguments_exit_2_naming_them(argv, fragment, capsys, monkeypatch):
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    assert cli.main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_vault_is_reached_over_https_only_unless_on_loopback(tmp_path):
    for address in ("http://vault.example.com:8200", "http://10.0.0.5:8200"):
        with pytest.raises(VaultError, match="plain http"):
            Vault(address, "t")
    Vault("http://127.0.0.1:8200", "t")
    Vault("https://vault.example.com:8200", "t")
    with pytest.raises(VaultError, match="VAULT_CACERT"):
        Vault("https://vault.example.com:8200", "t", ca_cert=str(tmp_path / "missing.pem"))
    with pytest.raises(VaultError, match="VAULT_TOKEN is not set"):
        Vault.from_environment({"VAULT_ADDR": "https://v:8200", "HOME": str(tmp_path)})
    (tmp_path / ".vault-token").write_text("from-file\n")
    assert repr(Vault.from_environment({"VAULT_ADDR": "https://v:8200", "HOME": str(tmp_path)})) == \
        "Vault('https://v:8200')"


def _outcome(command: str, *actions: str, **kw) -> Outcome:
    return Outcome(command, [Item(f"n{i}", f"p{i}", a) for i, a in enumerate(actions)], 0.0, **kw)


@pytest.mark.parametrize(("outcome", "code"), [
    (_outcome("plan", m.CREATE, m.UNCHANGED), 0),
    (_outcome("apply", m.CREATE, m.CONFLICT), 3),
    (_outcome("apply", m.CREATE, m.BLOCKED), 3),
    (_outcome("apply", m.CONFLICT, m.FAILED), 1),
    (_outcome("apply", m.CREATE, SKIPPED), 1),
    (_outcome("apply", m.CREATE, interrupted=True), 1),
    (_outcome("apply", m.CREATE, fatal="permission denied"), 2),
    (_outcome("apply"), 2),
    (_outcome("verify", MATCH, MATCH), 0),
    (_outcome("verify", MATCH, DIFFERS), 1),
    (_outcome("status", m.READY), 0),
    (_outcome("status"), 0),
    (_outcome("status", m.READY, m.STILL_READ), 4),
    (_outcome("status", m.READY, m.NOT_MIGRATED), 4),
])
def test_exit_codes(outcome, code):
    assert cli._exit_code(outcome.command, outcome) == code


# --- the engine over in-memory stand-ins -----------------------------------------------------------

class FakeVault:
    """KV v2 semantics the engine relies on: versions, check-and-set, custom metadata."""

    def __init__(self):
        self.secrets: dict[str, dict] = {}   # path -> {"versions": [data...], "custom_metadata": {...}}
        self.calls: list[str] = []

    def check(self):
        pass

    def check_kv_v2(self, mount):
        pass

    def read(self, mount, path):
        self.calls.append(f"GET {path}")
        entry = self.secrets.get(path)
        if entry is None or not entry["versions"]:
            return None
        return m.KvState(len(entry["versions"]), dict(entry["versions"][-1]), dict(entry["custom_metadata"]))

    def read_metadata(self, mount, path):
        entry = self.secrets.get(path)
        return None if entry is None else (len(entry["versions"]), dict(entry["custom_metadata"]))

    def write(self, mount, path, data, cas):
        from migration.vault import CasMismatchError

        self.calls.append(f"POST {path} cas={cas}")
        entry = self.secrets.setdefault(path, {"versions": [], "custom_metadata": {}})
        if cas != len(entry["versions"]):
            raise CasMismatchError("changed in Vault during the run")
        entry["versions"].append(dict(data))
        return len(entry["versions"]), dict(entry["custom_metadata"])

    def write_metadata(self, mount, path, custom_metadata):
        self.calls.append(f"POST metadata {path}")
        entry = self.secrets.setdefault(path, {"versions": [], "custom_metadata": {}})
        entry["custom_metadata"] = dict(custom_metadata)


class FakeSource:
    def __init__(self, values: dict[str, str]):
        self.values_by_name = values

    def _arn(self, name):
        return f"arn:aws:secretsmanager:r:1:secret:{name}-x"

    def list(self, prefixes):
        from migration.source import SourceSecret

        prefixes = list(prefixes)
        return [SourceSecret(n, self._arn(n), "v1") for n in sorted(self.values_by_name)
                if any(n.startswith(p) for p in prefixes)]

    def values(self, arns):
        by_arn = {self._arn(n): v for n, v in self.values_by_name.items()}
        return {a: SourceValue(a, "v1", by_arn[a]) for a in arns}


def _engine(source, vault, rules=None, **settings):
    from migration.engine import Engine, Settings

    rules = list(rules or [m.MapRule("app/", "kv/")])
    return Engine(source, vault, Settings(rules, **settings), progress=False)


def test_a_first_copy_writes_without_reading_and_a_rerun_reads_without_writing():
    source = FakeSource({f"app/s{i:02d}": f"v{i}" for i in range(30)})
    vault = FakeVault()
    first = _engine(source, vault).run("apply")
    assert first.counts == {m.CREATE: 30}
    assert not any(c.startswith("GET") for c in vault.calls), "a first copy needs no reads"
    vault.calls.clear()
    again = _engine(source, vault, workers=1).run("apply")
    assert again.counts == {m.UNCHANGED: 30}
    writes = [c for c in vault.calls if c.startswith("POST")]
    # Refused by check-and-set until the engine stops trying: then it only reads.
    assert len(writes) == Optimism.TRIAL and all("cas=0" in w for w in writes)
    assert all(len(e["versions"]) == 1 for e in vault.secrets.values())


def test_keys_someone_set_on_an_empty_path_survive_the_copy_either_way():
    for optimistic in (True, False):
        vault = FakeVault()
        vault.write_metadata("secret", "kv/a", {"owner": "team-a"})
        engine = _engine(FakeSource({"app/a": "x"}), vault)
        if not optimistic:
            engine._optimism.misses = Optimism.TRIAL
        assert engine.run("apply").counts == {m.CREATE: 1}
        meta = vault.secrets["kv/a"]["custom_metadata"]
        assert meta["owner"] == "team-a" and meta["aws-arn"].endswith("app/a-x"), optimistic


def test_a_path_taken_in_vault_is_a_conflict_whether_written_first_or_read_first():
    vault = FakeVault()
    vault.write("secret", "kv/a", {"mine": "keep"}, 0)
    outcome = _engine(FakeSource({"app/a": "x", "app/b": "y"}), vault).run("apply")
    assert outcome.counts == {m.CONFLICT: 1, m.CREATE: 1}
    assert vault.secrets["kv/a"]["versions"] == [{"mine": "keep"}]


def test_secrets_no_kv_path_can_hold_are_blocked_and_nothing_is_written_for_them():
    vault = FakeVault()
    rules = (m.MapRule("a/", "k/"), m.MapRule("b/", "k/"))
    outcome = _engine(FakeSource({"a/x": "1", "b/x": "2", "a/y": "3", "a/z/": "4", "a/..": "5"}), vault,
                      rules).run("apply")
    blocked = {i.name: i.reason for i in outcome.items if i.action == m.BLOCKED}
    assert set(blocked) == {"a/x", "b/x", "a/z/", "a/.."}
    assert "b/x maps to the same KV path" in blocked["a/x"] and "empty segment" in blocked["a/z/"]
    assert set(vault.secrets) == {"k/y"}
    assert cli._exit_code("apply", outcome) == 3
