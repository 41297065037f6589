"""python -m migration: copy AWS Secrets Manager secrets into Vault KV v2.

Exit codes (the same for every command):
  0  done: plan or apply with nothing left alone, every value verified, or (status) the AWS store
     is unused and can be decommissioned
  1  something failed or differs: a secret that could not be read or written, a value that
     differs, an apply whose reviewed plan no longer holds, or a run interrupted
  2  the command could not run: arguments, credentials, Vault or AWS refused the token, or no
     secret matches the --map prefixes
  3  plan/apply left secrets alone: conflicts (--overwrite replaces them) or secrets no KV path
     can hold
  4  status: some secrets are still read, not copied, or changed in AWS since the copy
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
from pathlib import Path
from typing import Any

from migration import mapping as m
from migration.engine import (
    DIFFERS,
    MATCH,
    MISSING,
    PLAN_ORDER,
    SKIPPED,
    STATUS_ORDER,
    VERIFY_ORDER,
    Engine,
    Outcome,
    Settings,
    plan_from_items,
)
from migration.report import Journal, item_table, now, summary_table
from migration.source import AwsError, SecretsManager
from migration.vault import Vault, VaultError

OK, FAILED, CANNOT_RUN, LEFT_ALONE, IN_USE = 0, 1, 2, 3, 4
COMMANDS = ("plan", "apply", "verify", "status")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m migration", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Copy AWS Secrets Manager secrets into Vault KV v2 (never prints a value).",
        epilog=__doc__.split("\n\n", 1)[1])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--map", action="append", default=[], metavar="AWS_PREFIX=KV_PREFIX", required=True,
                        help="secrets whose names start with AWS_PREFIX go to KV_PREFIX + the rest of the name "
                             "(repeatable; the longest matching prefix wins), e.g. --map prod/=imported/")
    common.add_argument("--mount", default="secret", help="the KV v2 mount (default: secret)")
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument("--region", help="AWS region (default: AWS_REGION or the profile's)")
    run.add_argument("--profile", help="AWS shared-config profile (default: the standard credential chain)")
    run.add_argument("--string-key", default="value",
                     help="KV key for a value that is not a JSON object (default: value)")
    run.add_argument("--binary-key", default="value",
                     help="KV key for a binary value, stored as base64 (default: value)")
    run.add_argument("--workers", type=int, default=8, help="secrets processed at once, 20 per AWS call (default: 8)")
    run.add_argument("--report", type=Path, help="journal of the run, JSON Lines (apply and verify write one to "
                                                 "migration-reports/ by default)")
    run.add_argument("--all", action="store_true", help="list every secret, not only those needing attention")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan = sub.add_parser("plan", parents=[common, run], help="what apply would create, update or leave alone")
    plan.add_argument("--out", type=Path, help="write the plan as JSON, for review and for apply --plan")
    apply = sub.add_parser("apply", parents=[common, run], help="copy the secrets")
    apply.add_argument("--overwrite", action="store_true",
                       help="replace KV secrets that hold different data (with check-and-set)")
    apply.add_argument("--plan", type=Path, dest="plan_file",
                       help="apply only this reviewed plan (from plan --out); a secret whose action changed since "
                            "is skipped")
    sub.add_parser("verify", parents=[common, run], help="compare every selected AWS value with Vault's")
    status = sub.add_parser("status", parents=[common, run],
                            help="which AWS secrets are still read, and whether the store can be decommissioned")
    status.add_argument("--since", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="count only reads after this day (the last day plan, apply or verify ran)")
    policy = sub.add_parser("policy", parents=[common], help="print the Vault policy the migration token needs")
    policy.add_argument("--name", default="secrets-manager-migration", help="policy name")
    return parser


def _error(message: str) -> None:
    print(f"migration: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from components.model.checks import mount_path

    try:
        rules = m.check_rules(m.MapRule.parse(text) for text in args.map)
        if mount_path(args.mount):
            raise ValueError(f"--mount {args.mount!r} {mount_path(args.mount)}")
    except ValueError as exc:
        _error(str(exc))
        return CANNOT_RUN
    if args.command == "policy":
        from migration.policy import migration_policy_hcl

        try:
            print(migration_policy_hcl(args.mount, rules, args.name), end="")
        except ValueError as exc:
            _error(str(exc))
            return CANNOT_RUN
        return OK
    if args.workers < 1 or args.workers > 64:
        _error(f"--workers {args.workers}: use 1 to 64")
        return CANNOT_RUN
    plan = None
    if getattr(args, "plan_file", None) is not None:
        try:
            plan = plan_from_items(json.loads(args.plan_file.read_text())["items"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _error(f"--plan {args.plan_file}: not a plan written by `plan --out` ({type(exc).__name__})")
            return CANNOT_RUN
    try:
        vault = Vault.from_environment()
        source = SecretsManager.from_environment(args.region, args.profile, args.workers)
    except (VaultError, AwsError) as exc:
        _error(str(exc))
        return CANNOT_RUN
    except Exception as exc:  # botocore's profile and configuration errors
        if type(exc).__module__.startswith(("botocore", "boto3")):
            _error(f"AWS configuration: {exc}")
            return CANNOT_RUN
        raise

    settings = Settings(rules, args.mount, m.ValueKeys(args.string_key, args.binary_key),
                        overwrite=getattr(args, "overwrite", False), workers=args.workers,
                        since=getattr(args, "since", None))
    started = now()
    report_path = args.report
    if report_path is None and args.command in ("apply", "verify"):
        report_path = Path("migration-reports") / f"{args.command}-{started.strftime('%Y%m%dT%H%M%SZ')}.jsonl"
    header: dict[str, Any] = {"command": args.command, "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "vault": vault.address, "mount": args.mount, "maps": [str(r) for r in rules],
                              "overwrite": settings.overwrite, "plan": str(args.plan_file) if plan else None}
    journal = Journal(report_path, header) if report_path is not None else None

    # SIGTERM (a CI job cancelled, a pod stopped) ends the run the way Ctrl-C does: the secrets in
    # flight finish, the journal gets its summary.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        outcome = Engine(source, vault, settings, progress=not args.quiet).run(args.command, journal, plan)
    except KeyboardInterrupt:
        if journal is not None:
            journal.finish({"interrupted": True, "exit": FAILED})
        _error("interrupted before any secret was processed")
        return FAILED
    except BaseException as exc:
        if journal is not None:
            journal.finish({"error": f"{type(exc).__name__}: {exc}", "interrupted": True})
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    code = _exit_code(args.command, outcome)
    summary = {"counts": outcome.counts, "seconds": round(outcome.seconds, 3), "exit": code,
               "interrupted": outcome.interrupted, "fatal": outcome.fatal, "left_out_of_plan": outcome.left_out,
               "aws_requests": source.requests.value, "aws_retries": source.retries.value,
               "vault_requests": vault.requests.value, "vault_retries": vault.retries.value}
    if journal is not None:
        journal.finish(summary)
    if args.command == "plan" and args.out is not None:
        args.out.write_text(json.dumps({"plan": 1, **header, "items": [i.row() for i in outcome.items],
                                        "summary": summary}, indent=1, sort_keys=True) + "\n")
    _print(args, rules, outcome, source, vault, report_path)
    return code


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _exit_code(command: str, outcome: Outcome) -> int:
    counts = outcome.counts
    if outcome.fatal:
        return CANNOT_RUN
    if outcome.interrupted:
        return FAILED
    if not outcome.items and command != "status":
        return CANNOT_RUN
    if counts.get(m.FAILED):
        return FAILED
    if command == "verify":
        return OK if set(counts) <= {MATCH} else FAILED
    if command == "status":
        return OK if set(counts) <= {m.READY} else IN_USE
    if counts.get(SKIPPED):
        return FAILED
    if counts.get(m.CONFLICT) or counts.get(m.BLOCKED):
        return LEFT_ALONE
    return OK


def _print(args: argparse.Namespace, rules: list[m.MapRule], outcome: Outcome, source: SecretsManager, vault: Vault,
           report_path: Path | None) -> None:
    command = outcome.command
    quiet_actions = {"plan": {m.UNCHANGED}, "apply": {m.UNCHANGED}, "verify": {MATCH}, "status": {m.READY}}
    maps = ", ".join(f"{r.source_prefix or '(every name)'} -> {args.mount}/{r.target_prefix}" for r in rules)
    print(f"{command}: {len(outcome.items)} AWS secret(s) selected by {maps}")
    shown = [i for i in outcome.items if args.all or i.action not in quiet_actions[command]]
    if shown:
        print()
        print(item_table(shown, status=command == "status"))
    print()
    order = {"plan": PLAN_ORDER, "apply": PLAN_ORDER, "verify": VERIFY_ORDER, "status": STATUS_ORDER}[command]
    print(summary_table(outcome.counts, order))
    print()
    print(f"AWS: {source.requests.value} request(s), {source.retries.value} retried after throttling or errors. "
          f"Vault: {vault.requests.value} request(s), {vault.retries.value} retried. {outcome.seconds:.1f} s.")
    counts = outcome.counts
    if outcome.left_out:
        print(f"{outcome.left_out} selected secret(s) are not in the plan and were left alone.")
    if outcome.fatal:
        _error(f"stopped: {outcome.fatal}")
    if outcome.interrupted:
        _error("interrupted: the secrets in flight finished; run the same command again to carry on")
    if command == "plan":
        writes = sum(counts.get(a, 0) for a in m.WRITES)
        print(f"apply would write {writes} secret(s); {counts.get(m.CONFLICT, 0)} conflict(s) left alone without "
              "--overwrite.")
    if command == "verify" and not outcome.fatal:
        bad = counts.get(DIFFERS, 0) + counts.get(MISSING, 0)
        print("every value matches" if set(counts) <= {MATCH} and counts else f"{bad} secret(s) differ or are missing")
    if command == "status" and not outcome.fatal:
        if not outcome.items:
            print("no secret left under these prefixes: the store is empty")
        elif set(counts) <= {m.READY}:
            print("every secret is copied and unread since: the AWS secrets can be deleted")
        else:
            print("not ready to decommission: see the secrets above")
    if report_path is not None:
        print(f"report: {report_path}", file=sys.stderr)
    if not outcome.items and command != "status" and not outcome.fatal:
        _error("no AWS secret matches the --map prefixes (names are case-sensitive)")
