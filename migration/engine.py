"""The four commands over one loop: list the AWS secrets the rules select, map each to its KV path,
then, 20 secrets per AWS call and several calls at once, decide and (for apply) act on each one.

Every outcome goes to the journal the moment it is final, so what a killed run did is on disk, and
re-running is how a run is resumed: each secret is compared with what Vault holds again, so what
was copied is left alone and what was not is copied.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from migration import mapping as m
from migration.report import Item, Journal, Progress, tally
from migration.source import BATCH, AwsError, SecretsManager, SourceSecret, SourceValue
from migration.vault import CasMismatchError, PermissionDeniedError, UnreachableError, Vault, VaultError

# Outcomes of verify.
MATCH = "match"
DIFFERS = "differs"
MISSING = "missing"
# apply --plan: a secret whose planned action no longer holds.
SKIPPED = "skipped"

PLAN_ORDER = (m.CREATE, m.UPDATE, m.OVERWRITE, m.UNCHANGED, m.CONFLICT, m.BLOCKED, SKIPPED, m.FAILED)
VERIFY_ORDER = (MATCH, DIFFERS, MISSING, m.BLOCKED, m.FAILED)
STATUS_ORDER = (m.READY, m.STILL_READ, m.OUTDATED, m.NOT_MIGRATED, m.BLOCKED, m.FAILED)

# AWS errors that will not go away by trying the next secret: stop the run.
FATAL_AWS_CODES = ("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
                   "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "NoCredentialsError",
                   "Unable to locate credentials")


@dataclass(frozen=True)
class Settings:
    rules: list[m.MapRule]
    mount: str = "secret"
    keys: m.ValueKeys = field(default_factory=m.ValueKeys)
    overwrite: bool = False
    workers: int = 8
    since: dt.date | None = None


@dataclass(frozen=True)
class Planned:
    """One secret's line of a reviewed plan."""

    action: str
    aws_version: str | None


@dataclass
class Outcome:
    command: str
    items: list[Item]
    seconds: float
    fatal: str | None = None
    interrupted: bool = False
    left_out: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return tally(self.items)


class Optimism:
    """Whether writing first (and reading only if the path turns out to be taken) pays off: on a
    first copy nearly every path is empty; on a re-run nearly none is, and reading first is
    cheaper. A reviewed plan says which it is for each secret."""

    TRIAL = 20

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def worth_trying(self, planned: Planned | None) -> bool:
        if planned is not None:
            return planned.action == m.CREATE
        with self._lock:
            return self.misses < self.TRIAL or self.hits >= self.misses

    def hit(self) -> None:
        with self._lock:
            self.hits += 1

    def missed(self) -> None:
        with self._lock:
            self.misses += 1


class Engine:
    def __init__(self, source: SecretsManager, vault: Vault, settings: Settings, progress: bool = True,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)):
        self.source, self.vault, self.settings = source, vault, settings
        self.progress_enabled = progress
        self.clock = clock
        self._stop = threading.Event()
        self._fatal: str | None = None
        self._lock = threading.Lock()
        self._optimism = Optimism()

    # --- selection ---------------------------------------------------------------------------------

    def targets(self) -> tuple[list[tuple[SourceSecret, str]], list[Item]]:
        """(secret, KV path) for each secret the rules select, and the ones no path can hold."""
        rules = self.settings.rules
        secrets = self.source.list(r.source_prefix for r in rules)
        mapped: list[tuple[SourceSecret, str]] = []
        blocked: list[Item] = []
        for secret in secrets:
            rule = m.rule_for(secret.name, rules)
            if rule is None:
                continue
            path = m.target_path(secret.name, rule)
            problem = m.path_problem(path)
            if problem:
                blocked.append(Item(secret.name, path or None, m.BLOCKED, problem, aws_version=secret.current_version))
            else:
                mapped.append((secret, path))
        clashes = m.duplicate_paths((s.name, p) for s, p in mapped)
        if clashes:
            for secret, path in [(s, p) for s, p in mapped if p in clashes]:
                others = [n for n in clashes[path] if n != secret.name]
                blocked.append(Item(secret.name, path, m.BLOCKED, f"{', '.join(others)} maps to the same KV path",
                                    aws_version=secret.current_version))
            mapped = [(s, p) for s, p in mapped if p not in clashes]
        return mapped, blocked

    # --- the loop ----------------------------------------------------------------------------------

    def run(self, command: str, journal: Journal | None = None,
            plan: Mapping[str, Planned] | None = None) -> Outcome:
        start = time.monotonic()
        items: list[Item] = []
        left_out = 0
        try:
            self.vault.check()
            self.vault.check_kv_v2(self.settings.mount)
            mapped, blocked = self.targets()
        except (AwsError, UnreachableError, PermissionDeniedError) as exc:
            return Outcome(command, [], time.monotonic() - start, fatal=str(exc))
        if plan is not None:
            in_plan = [(s, p) for s, p in mapped if s.name in plan]
            left_out = len(mapped) - len(in_plan)
            mapped = in_plan
            blocked = [b for b in blocked if b.name in plan]
        progress = Progress(command, len(mapped) + len(blocked), enabled=self.progress_enabled)

        def done(item: Item) -> None:
            with self._lock:
                items.append(item)
            if journal is not None:
                journal.record(item)
            progress.tick()

        for item in blocked:
            done(item)
        batches = [mapped[i:i + BATCH] for i in range(0, len(mapped), BATCH)]
        interrupted = False
        pool = ThreadPoolExecutor(max_workers=max(1, self.settings.workers), thread_name_prefix="migrate")
        try:
            futures = [pool.submit(self._batch, command, batch, done, plan) for batch in batches]
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                for future in finished:
                    error = future.exception()
                    if error is not None:
                        self._stop.set()
                        raise error
                if self._stop.is_set():
                    break
        except KeyboardInterrupt:
            interrupted = True
            self._stop.set()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return Outcome(command, sorted(items, key=lambda i: i.name), time.monotonic() - start, fatal=self._fatal,
                       interrupted=interrupted, left_out=left_out)

    def _halt(self, why: str) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = why
        self._stop.set()

    def _batch(self, command: str, batch: list[tuple[SourceSecret, str]], done: Callable[[Item], None],
               plan: Mapping[str, Planned] | None) -> None:
        if self._stop.is_set():
            return
        if command == "status":
            for secret, path in batch:
                if self._stop.is_set():
                    return
                done(self._guarded(secret, path, lambda s=secret, p=path: self._status(s, p)))
            return
        try:
            values = self.source.values([s.arn for s, _ in batch])
        except AwsError as exc:
            if any(code in str(exc) for code in FATAL_AWS_CODES):
                self._halt(str(exc))
                return
            values = {s.arn: f"cannot read the value: {exc}" for s, _ in batch}
        for secret, path in batch:
            if self._stop.is_set():
                return
            value = values.get(secret.arn)
            if not isinstance(value, SourceValue):
                done(Item(secret.name, path, m.FAILED, f"cannot read the value from AWS: {value}",
                          aws_version=secret.current_version))
                continue
            handler = {"plan": self._plan, "apply": self._apply, "verify": self._verify}[command]
            planned = plan.get(secret.name) if plan is not None else None
            done(self._guarded(secret, path, lambda s=secret, p=path, v=value, pl=planned, h=handler: h(s, p, v, pl)))

    def _guarded(self, secret: SourceSecret, path: str, work: Callable[[], Item]) -> Item:
        try:
            return work()
        except (PermissionDeniedError, UnreachableError) as exc:
            self._halt(str(exc))
            return Item(secret.name, path, m.FAILED, str(exc), aws_version=secret.current_version)
        except (VaultError, AwsError, ValueError) as exc:
            return Item(secret.name, path, m.FAILED, str(exc), aws_version=secret.current_version)

    # --- per secret --------------------------------------------------------------------------------

    def _prepare(self, secret: SourceSecret, path: str, value: SourceValue):
        kv_value = m.kv_value(value.string, value.binary, self.settings.keys)
        source_md = m.source_metadata(secret.arn, value.version_id, kv_value.encoding, secret.tags)
        kv = self.vault.read(self.settings.mount, path)
        decision = m.decide(secret.arn, value.version_id, kv_value, source_md, kv, self.settings.overwrite)
        problem = None
        if decision.write_data or decision.write_metadata:
            # The longest version number Vault could give, so the check holds for the real one.
            problem = m.metadata_problem(m.written_metadata(source_md, kv.custom_metadata if kv else {}, 10**12,
                                                            self.clock()))
        return kv_value, source_md, kv, decision, problem

    def _plan(self, secret: SourceSecret, path: str, value: SourceValue, planned: Planned | None) -> Item:
        kv_value, _, kv, decision, problem = self._prepare(secret, path, value)
        if problem:
            return Item(secret.name, path, m.BLOCKED, problem, kv_value.keys, value.version_id)
        return Item(secret.name, path, decision.action, decision.reason, kv_value.keys, value.version_id,
                    kv.version if kv else None)

    def _apply(self, secret: SourceSecret, path: str, value: SourceValue, planned: Planned | None) -> Item:
        if self._optimism.worth_trying(planned):
            created = self._create(secret, path, value, planned)
            if created is not None:
                return created
        kv_value, source_md, kv, decision, problem = self._prepare(secret, path, value)
        keys = kv_value.keys
        if problem:
            return Item(secret.name, path, m.BLOCKED, problem, keys, value.version_id)
        if planned is not None and (planned.action != decision.action or planned.aws_version != value.version_id):
            return Item(secret.name, path, SKIPPED,
                        f"changed since the plan (planned {planned.action} of AWS version {planned.aws_version}, now "
                        f"{decision.action} of {value.version_id}); plan again", keys, value.version_id)
        if not (decision.write_data or decision.write_metadata):
            return Item(secret.name, path, decision.action, decision.reason, keys, value.version_id,
                        kv.version if kv else None)
        mount = self.settings.mount
        if decision.write_data:
            assert decision.cas is not None
            try:
                # The custom metadata as Vault had it at the write (a metadata entry without versions
                # reads as no secret at all, yet may hold keys someone set).
                version, existing = self.vault.write(mount, path, kv_value.data, decision.cas)
            except VaultError as exc:
                return Item(secret.name, path, m.FAILED, str(exc), keys, value.version_id)
        else:
            assert kv is not None
            version, existing = kv.version, kv.custom_metadata
        metadata = m.written_metadata(source_md, existing, version, self.clock())
        try:
            self.vault.write_metadata(mount, path, metadata)
        except VaultError as exc:
            # The data is in; a re-run records where it came from.
            return Item(secret.name, path, m.FAILED, f"data written as version {version}, metadata not: {exc}",
                        keys, value.version_id, version)
        return Item(secret.name, path, decision.action, decision.reason, keys, value.version_id, version)

    def _create(self, secret: SourceSecret, path: str, value: SourceValue, planned: Planned | None) -> Item | None:
        """Write a secret as if its path were empty (check-and-set 0), without reading first: two
        requests instead of three for each secret of a first copy. None when the path holds a secret
        (Vault refused the write; nothing changed), so the caller reads it and decides."""
        kv_value = m.kv_value(value.string, value.binary, self.settings.keys)
        source_md = m.source_metadata(secret.arn, value.version_id, kv_value.encoding, secret.tags)
        if planned is not None and planned.aws_version != value.version_id:
            return None
        if m.metadata_problem(m.written_metadata(source_md, {}, 10**12, self.clock())):
            return None
        mount = self.settings.mount
        try:
            version, existing = self.vault.write(mount, path, kv_value.data, 0)
        except CasMismatchError:
            self._optimism.missed()
            return None
        self._optimism.hit()
        # Only a metadata entry without versions can have been there: keep what it held.
        metadata = m.written_metadata(source_md, existing, version, self.clock())
        try:
            problem = m.metadata_problem(metadata)
            if problem:
                raise VaultError(problem)
            self.vault.write_metadata(mount, path, metadata)
        except VaultError as exc:
            return Item(secret.name, path, m.FAILED, f"data written as version {version}, metadata not: {exc}",
                        kv_value.keys, value.version_id, version)
        return Item(secret.name, path, m.CREATE, "not in Vault", kv_value.keys, value.version_id, version)

    def _verify(self, secret: SourceSecret, path: str, value: SourceValue, planned: Planned | None) -> Item:
        kv_value = m.kv_value(value.string, value.binary, self.settings.keys)
        kv = self.vault.read(self.settings.mount, path)
        difference = m.compare(secret.arn, value.version_id, kv_value, kv)
        version = kv.version if kv else None
        if difference is None:
            return Item(secret.name, path, MATCH, "same value", kv_value.keys, value.version_id, version)
        if kv is None:
            return Item(secret.name, path, MISSING, difference, kv_value.keys, value.version_id)
        if kv.data is not None:
            difference += f" ({m.key_differences(kv_value.data, kv.data)})"
        return Item(secret.name, path, DIFFERS, difference, kv_value.keys, value.version_id, version)

    def _status(self, secret: SourceSecret, path: str) -> Item:
        meta = self.vault.read_metadata(self.settings.mount, path)
        state, why = m.usage(secret.arn, secret.current_version, secret.last_accessed, meta[1] if meta else None,
                             self.settings.since)
        return Item(secret.name, path, state, why, aws_version=secret.current_version,
                    kv_version=meta[0] if meta else None)


def plan_from_items(items: Iterable[dict]) -> dict[str, Planned]:
    return {i["name"]: Planned(i["action"], i.get("aws_version")) for i in items}
