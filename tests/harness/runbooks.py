"""The fenced blocks of the README and docs/, and which test runs each command block.

A command block (```sh) either runs in tests/integration/test_runbooks.py, named here by the test that
runs it, or says why it cannot run here in its info string: ```sh not-run: <why>. Every other block
names its language (yaml, json, hcl, python, mermaid, text). tests/unit/test_runbooks.py holds every
block to that, so a new block is never skipped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMAND_LANGUAGES = ("sh",)
OTHER_LANGUAGES = ("yaml", "json", "hcl", "python", "mermaid", "text")
NOT_RUN = "not-run:"
FENCE = re.compile(r"^(\s*)```(.*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    note: str  # what follows the language in the info string
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def first(self) -> str:
        """Its first command line: how the registry names it."""
        return next(line.strip() for line in self.code.splitlines() if line.strip() and not line.startswith("#"))

    @property
    def not_run(self) -> str:
        """Why it cannot run here ('' when it runs)."""
        return self.note[len(NOT_RUN):].strip() if self.note.startswith(NOT_RUN) else ""


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "policy" / "README.md",
            *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    found = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, info = opening.group(1), opening.group(2).strip()
        body = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        if j == len(lines):
            raise ValueError(f"{path.name}:{i + 1}: a fence that is never closed")
        language, _, note = info.partition(" ")
        found.append(Block(path, i + 1, language, note.strip(), "\n".join(body) + "\n"))
        i = j + 1
    return found


def every_block() -> list[Block]:
    return [b for path in documents() for b in blocks(path)]


# Which test of tests/integration/test_runbooks.py runs each command block, in the order it runs them:
# (document, first command line).
RUNS: dict[str, tuple[tuple[str, str], ...]] = {
    "test_break_glass_drill": (
        ("docs/break-glass.md", "pulumi stack output unsealKeys --stack prod --show-secrets --json | jq -r "
                                "'.[<your index>]' \\"),
        ("docs/break-glass.md", "vault operator generate-root -init"),
        ("docs/break-glass.md", "vault operator generate-root -nonce=<nonce>"),
        ("docs/break-glass.md", "vault operator generate-root -decode=<encoded token> -otp=<otp>"),
        ("docs/break-glass.md", "VAULT_TOKEN=<root> vault token revoke -self"),
        ("docs/break-glass.md", "curl --fail --silent --show-error --cacert \"$VAULT_CACERT\" -X PUT --data '{}' \\"),
        ("docs/break-glass.md", "curl --fail --silent --show-error --cacert \"$VAULT_CACERT\" -X PUT \\"),
        ("docs/break-glass.md", "python3 -c 'import base64, sys; e, otp = sys.argv[1:]; raw = "
                                "base64.b64decode(e + \"=\" * (-len(e) % 4))"),
    ),
    "test_an_admin_token_from_a_pgp_encrypted_root_token": (
        ("docs/bootstrap-and-recovery.md", "export VAULT_ADDR=$(pulumi stack output apiAddress)"),
    ),
    "test_backup_and_restore_by_hand_with_a_narrowed_break_glass_token": (
        ("docs/backup-and-restore.md", "export VAULT_ADDR=https://127.0.0.1:8210"),
        ("docs/backup-and-restore.md", "export VAULT_TOKEN=$(VAULT_TOKEN=<root> vault token create "
                                       "-policy=raft-restore -no-default-policy -orphan \\"),
        ("docs/backup-and-restore.md", "VAULT_TOKEN=<raft-backup token> SNAPSHOT_DIR=./snapshots sh scripts/backup.sh "
                                       "snapshot"),
        ("docs/backup-and-restore.md", 'aws s3 ls "s3://$(pulumi stack output backupBucket)/raft-snapshots/"'),
        ("docs/backup-and-restore.md", 'sh scripts/restore.sh --yes "s3://$(pulumi stack output '
                                       'backupBucket)/raft-snapshots/"'),
        ("docs/backup-and-restore.md", "vault status                                                      # Sealed "
                                       "false, HA Mode active"),
        ("docs/backup-and-restore.md", "export VAULT_TOKEN=<the NEW cluster's root token>"),
    ),
    "test_migration_runbook_with_a_narrowed_break_glass_token": (
        ("docs/migrating-from-aws-secrets-manager.md", "export VAULT_ADDR=$(pulumi stack output apiAddress)"),
        ("docs/migrating-from-aws-secrets-manager.md", 'make -s migrate ARGS="policy --map prod/=imported/" > '
                                                       "migration.hcl   # -s: only the policy, not make's echo"),
        ("docs/migrating-from-aws-secrets-manager.md", 'make migrate ARGS="plan --map prod/=imported/ --out '
                                                       'plan.json"'),
        ("docs/migrating-from-aws-secrets-manager.md", 'make migrate ARGS="apply --map prod/=imported/ --plan '
                                                       'plan.json"'),
        ("docs/migrating-from-aws-secrets-manager.md", 'make migrate ARGS="verify --map prod/=imported/"'),
        ("docs/migrating-from-aws-secrets-manager.md", 'make migrate ARGS="status --map prod/=imported/"'),
        ("README.md", 'make migrate ARGS="plan --map prod/=imported/ --out plan.json"'),
    ),
    "test_secrets_set_as_the_docs_say_reach_the_program": (
        ("README.md", "pulumi config set --stack prod --secret --path 'secrets.databasePasswords.app-postgres' "
                      "'<password>'"),
        ("docs/configuration.md", "pulumi config set --secret --path 'secrets.kv.payments/billing/config.api_key' "
                                  "'<key>'"),
    ),
    "test_the_first_login_after_make_up": (
        ("README.md", "export VAULT_ADDR=$(pulumi stack output apiAddress --stack dev)"),
    ),
    "test_restore_usage": (
        ("README.md", "scripts/restore.sh --help"),
    ),
}


def find(document: str, first: str) -> Block:
    matches = [b for b in blocks(ROOT / document) if b.language in COMMAND_LANGUAGES and b.first == first]
    if len(matches) != 1:
        raise LookupError(f"{document}: {len(matches)} command blocks start with {first!r}")
    return matches[0]
