"""The rules of the migration, as pure functions: which KV path a secret goes to, what KV data its
value becomes, the custom metadata that records where it came from, and what to do given what
Vault already holds. No I/O; values never appear in a repr or a message."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# How a value was turned into KV data (custom metadata "aws-encoding").
ENCODING_JSON = "json"          # a JSON object: its keys became the KV keys, values as they were
ENCODING_STRING = "string"      # any other SecretString: one key, the text unchanged
ENCODING_BINARY = "base64"      # SecretBinary: one key, standard base64 with padding (RFC 4648)

# Custom metadata the migration writes. Keys it does not own are kept as they are.
META_ARN = "aws-arn"
META_VERSION = "aws-version-id"
META_ENCODING = "aws-encoding"
META_TAGS_OMITTED = "aws-tags-omitted"
META_MIGRATED_AT = "migrated-at"
META_KV_VERSION = "migrated-kv-version"
TAG_PREFIX = "aws-tag:"
OWN_KEYS = (META_ARN, META_VERSION, META_ENCODING, META_TAGS_OMITTED, META_MIGRATED_AT, META_KV_VERSION)
# Written on every copy, so they are not part of what "unchanged" compares.
VOLATILE_KEYS = (META_MIGRATED_AT, META_KV_VERSION)

# Vault's limits on KV v2 custom metadata.
MAX_METADATA_KEYS = 64
MAX_METADATA_KEY_LENGTH = 128
MAX_METADATA_VALUE_LENGTH = 512

# What Secrets Manager allows in a name, which is also what the migration writes into KV paths.
_PATH_CHARS = re.compile(r"^[A-Za-z0-9/_+=.@-]*$")

# Actions.
CREATE = "create"
UPDATE = "update"
OVERWRITE = "overwrite"
UNCHANGED = "unchanged"
CONFLICT = "conflict"
BLOCKED = "blocked"
FAILED = "failed"
WRITES = (CREATE, UPDATE, OVERWRITE)


def owned(key: str) -> bool:
    return key in OWN_KEYS or key.startswith(TAG_PREFIX)


# --- names to paths --------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapRule:
    """Secrets whose names start with ``source_prefix`` go to ``target_prefix`` + the rest of the name."""

    source_prefix: str
    target_prefix: str

    @classmethod
    def parse(cls, text: str) -> MapRule:
        if text.count("=") != 1:
            raise ValueError(f"--map {text!r}: write it as <aws-name-prefix>=<kv-path-prefix>, e.g. prod/=imported/ "
                             "(exactly one '=')")
        source, target = text.split("=")
        rule = cls(source, target)
        problem = rule.problem()
        if problem:
            raise ValueError(f"--map {text!r}: {problem}")
        return rule

    def problem(self) -> str | None:
        if not _PATH_CHARS.match(self.source_prefix):
            return "the AWS prefix may hold only letters, digits and / _ + = . @ -"
        if not _PATH_CHARS.match(self.target_prefix):
            return "the KV prefix may hold only letters, digits and / _ + . @ -"
        if self.target_prefix.startswith("/") or "//" in self.target_prefix:
            return "the KV prefix must not start with '/' or hold '//'"
        if any(seg in (".", "..") for seg in self.target_prefix.split("/")):
            return "the KV prefix must not hold '.' or '..' segments"
        return None

    def __str__(self) -> str:
        return f"{self.source_prefix}={self.target_prefix}"


def check_rules(rules: Iterable[MapRule]) -> list[MapRule]:
    rules = list(rules)
    if not rules:
        raise ValueError("no --map rule: say which secrets to copy where, e.g. --map prod/=imported/")
    sources = [r.source_prefix for r in rules]
    repeated = sorted({s for s in sources if sources.count(s) > 1})
    if repeated:
        raise ValueError(f"--map: AWS prefix(es) {repeated} appear in more than one rule")
    return rules


def rule_for(name: str, rules: Iterable[MapRule]) -> MapRule | None:
    """The rule with the longest AWS prefix the name starts with (case-sensitive, as names are)."""
    matching = [r for r in rules if name.startswith(r.source_prefix)]
    return max(matching, key=lambda r: len(r.source_prefix)) if matching else None


def target_path(name: str, rule: MapRule) -> str:
    return rule.target_prefix + name[len(rule.source_prefix):]


def path_problem(path: str) -> str | None:
    """Why a KV path cannot hold a secret, or None."""
    if not path:
        return "maps to an empty KV path"
    if not _PATH_CHARS.match(path):
        return "maps to a KV path with characters outside letters, digits and / _ + = . @ -"
    segments = path.split("/")
    if any(seg == "" for seg in segments):
        return "maps to a KV path with an empty segment (a leading, trailing or doubled '/')"
    if any(seg in (".", "..") for seg in segments):
        return "maps to a KV path with a '.' or '..' segment"
    return None


def duplicate_paths(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """KV path -> the names mapped onto it, for paths more than one name maps onto."""
    by_path: dict[str, list[str]] = {}
    for name, path in pairs:
        by_path.setdefault(path, []).append(name)
    return {p: sorted(ns) for p, ns in by_path.items() if len(ns) > 1}


# --- values to KV data ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ValueKeys:
    """The KV key a value that is not a JSON object goes to."""

    string_key: str = "value"
    binary_key: str = "value"


@dataclass(frozen=True)
class KvValue:
    """What a secret's value becomes in KV. ``data`` never shows in a repr."""

    data: dict[str, Any] = field(repr=False)
    encoding: str

    @property
    def keys(self) -> int:
        return len(self.data)


def kv_value(secret_string: str | None, secret_binary: bytes | None, keys: ValueKeys = ValueKeys()) -> KvValue:
    """A JSON object becomes KV keys with their values unchanged (nested ones too); any other
    string becomes one key holding the text as it is; binary becomes one key in base64."""
    if secret_binary is not None:
        return KvValue({keys.binary_key: base64.b64encode(secret_binary).decode("ascii")}, ENCODING_BINARY)
    if secret_string is None:
        raise ValueError("the secret version has neither a string nor a binary value")
    try:
        parsed = json.loads(secret_string)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return KvValue(parsed, ENCODING_JSON)
    return KvValue({keys.string_key: secret_string}, ENCODING_STRING)


# --- provenance metadata ------------------------------------------------------------------------------

def source_metadata(arn: str, version_id: str, encoding: str,
                    tags: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The custom metadata that says where a KV secret came from: the part a re-run compares.

    Each tag becomes ``aws-tag:<key>``; a tag that cannot fit Vault's limits (keys up to 128
    characters, values up to 512) is left out and counted in ``aws-tags-omitted``, never cut short.
    """
    md = {META_ARN: arn, META_VERSION: version_id, META_ENCODING: encoding}
    omitted = 0
    for key, value in sorted(tags):
        meta_key = TAG_PREFIX + key
        if len(meta_key) > MAX_METADATA_KEY_LENGTH or len(value) > MAX_METADATA_VALUE_LENGTH:
            omitted += 1
            continue
        md[meta_key] = value
    if omitted:
        md[META_TAGS_OMITTED] = str(omitted)
    return md


def metadata_problem(md: Mapping[str, str]) -> str | None:
    if len(md) > MAX_METADATA_KEYS:
        return (f"needs {len(md)} custom metadata keys (tags and keys already on the KV secret); Vault allows "
                f"{MAX_METADATA_KEYS}")
    for key, value in md.items():
        if len(key) > MAX_METADATA_KEY_LENGTH:
            return f"custom metadata key {key[:40]!r}... is longer than Vault's {MAX_METADATA_KEY_LENGTH} characters"
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            return f"custom metadata {key!r} is longer than Vault's {MAX_METADATA_VALUE_LENGTH} characters"
    return None


def written_metadata(source_md: Mapping[str, str], existing: Mapping[str, str], kv_version: int,
                     now: dt.datetime) -> dict[str, str]:
    """What to store after a copy: the provenance, when, which KV version holds the copy, and every
    key someone else put there."""
    kept = {k: v for k, v in existing.items() if not owned(k)}
    return {**kept, **source_md, META_MIGRATED_AT: now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            META_KV_VERSION: str(kv_version)}


def provenance(existing: Mapping[str, str]) -> dict[str, str]:
    """The comparable part of what the migration once wrote."""
    return {k: v for k, v in existing.items() if owned(k) and k not in VOLATILE_KEYS}


# --- what Vault holds, and what to do ------------------------------------------------------------------

@dataclass(frozen=True)
class KvState:
    """A KV v2 secret as read: its latest version, that version's data (None when deleted or
    destroyed) and the secret's custom metadata."""

    version: int
    data: dict[str, Any] | None = field(repr=False)
    custom_metadata: dict[str, str] = field(default_factory=dict)

    def written_by_copy_of(self, arn: str) -> bool:
        return self.custom_metadata.get(META_ARN) == arn

    def untouched_since_copy(self) -> bool:
        return self.custom_metadata.get(META_KV_VERSION) == str(self.version)


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str
    # Check-and-set for the data write: 0 = only if absent, n = only if version n is the latest.
    cas: int | None = None
    write_data: bool = False
    write_metadata: bool = False


def decide(arn: str, version_id: str, value: KvValue, source_md: Mapping[str, str], kv: KvState | None,
           overwrite: bool = False) -> Decision:
    """What to do with one secret given what Vault holds at its path.

    Nothing is ever written without check-and-set, so a secret that changes in Vault during the run
    fails instead of being overwritten.
    """
    if kv is None:
        return Decision(CREATE, "not in Vault", cas=0, write_data=True, write_metadata=True)
    if kv.data is None:
        if overwrite:
            return Decision(OVERWRITE, f"its latest KV version ({kv.version}) is deleted; --overwrite writes a new "
                                       "one", cas=kv.version, write_data=True, write_metadata=True)
        return Decision(CONFLICT, f"its latest KV version ({kv.version}) is deleted in Vault; --overwrite "
                                  "writes a new one")
    if kv.data == value.data:
        if provenance(kv.custom_metadata) == dict(source_md):
            if kv.untouched_since_copy():
                return Decision(UNCHANGED, "already copied")
            return Decision(UPDATE, "same data in a later KV version; records that version", write_metadata=True)
        if kv.written_by_copy_of(arn):
            return Decision(UPDATE, "same data; tags or version recorded differ", write_metadata=True)
        return Decision(UPDATE, "same data already in Vault; records where it came from", write_metadata=True)
    ours = kv.written_by_copy_of(arn)
    if ours and kv.untouched_since_copy() and kv.custom_metadata.get(META_VERSION) != version_id:
        return Decision(UPDATE, "a newer AWS version since the last copy", cas=kv.version, write_data=True,
                        write_metadata=True)
    if ours and not kv.untouched_since_copy():
        why = f"changed in Vault after the copy (latest version {kv.version})"
    elif ours:
        why = "differs from the copy"
    else:
        why = f"Vault already holds different data (version {kv.version}) not copied from this secret"
    if overwrite:
        return Decision(OVERWRITE, why + "; --overwrite replaces it", cas=kv.version, write_data=True,
                        write_metadata=True)
    return Decision(CONFLICT, why + "; left alone (--overwrite replaces it)")


# --- verification and decommission ------------------------------------------------------------------------

def compare(arn: str, version_id: str, value: KvValue, kv: KvState | None) -> str | None:
    """None when Vault holds exactly the AWS value, else what differs (never the values)."""
    if kv is None:
        return "missing in Vault"
    if kv.data is None:
        return f"deleted in Vault (latest version {kv.version})"
    if kv.data == value.data:
        return None
    sides = []
    if kv.written_by_copy_of(arn):
        copied = kv.custom_metadata.get(META_VERSION)
        if copied != version_id:
            sides.append(f"changed in AWS (current version {version_id}, copied {copied})")
        if not kv.untouched_since_copy():
            sides.append(f"changed in Vault (latest version {kv.version}, copied as version "
                         f"{kv.custom_metadata.get(META_KV_VERSION, '?')})")
    else:
        sides.append("the KV secret was not copied from this AWS secret")
    return "differs: " + ("; ".join(sides) if sides else "values differ")


def key_differences(aws: Mapping[str, Any], vault: Mapping[str, Any]) -> str:
    """Counts of keys only in AWS, only in Vault, and in both with different values."""
    only_aws = len(set(aws) - set(vault))
    only_vault = len(set(vault) - set(aws))
    changed = sum(1 for k in set(aws) & set(vault) if aws[k] != vault[k])
    return f"{only_aws} key(s) only in AWS, {only_vault} only in Vault, {changed} with different values"


READY = "unused"
STILL_READ = "still read"
NOT_MIGRATED = "not migrated"
OUTDATED = "outdated"


def usage(arn: str, current_version: str | None, last_accessed: dt.date | None,
          kv_metadata: Mapping[str, str] | None, since: dt.date | None = None) -> tuple[str, str]:
    """(state, why) of one AWS secret for the decommission check.

    Secrets Manager reports the day a secret was last read (LastAccessedDate, a date without a
    time). Reads on the day of the copy cannot be told apart from the migration's own, so a secret
    counts as still read only when read on a later day (or after ``since``, for teams that ran plan
    or verify again later: those read every value too).
    """
    if kv_metadata is None or kv_metadata.get(META_ARN) != arn:
        return NOT_MIGRATED, "no copy in Vault"
    copied = kv_metadata.get(META_VERSION)
    if current_version is not None and copied != current_version:
        return OUTDATED, f"AWS has a newer version than the copy ({current_version}, copied {copied}); run apply"
    migrated_at = _date(kv_metadata.get(META_MIGRATED_AT))
    quiet_from = max(d for d in (migrated_at, since) if d is not None) if (migrated_at or since) else None
    if last_accessed is not None and (quiet_from is None or last_accessed > quiet_from):
        return STILL_READ, f"read on {last_accessed.isoformat()}, after {quiet_from.isoformat() if quiet_from else '?'}"
    when = last_accessed.isoformat() if last_accessed else "never"
    return READY, f"copied; last read {when}"


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.datetime.strptime(text[:10], "%Y-%m-%d").date()
    except ValueError:
        return None
