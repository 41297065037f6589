#!/usr/bin/env python3
"""Fill in the ids of the Vault objects in an import file that `pulumi preview --import-file` wrote,
so `pulumi import --file` can adopt what already exists in Vault after a lost state.

    pulumi preview --stack prod --import-file vault-import.json
    venv/bin/python scripts/fill_import_ids.py prod vault-import.json
    pulumi import --stack prod --file vault-import.json --yes

Each id comes from the resource's inputs as the program declares them for the stack (the program
runs under Pulumi's mocks; nothing is deployed). Resources the provider cannot import are listed
and left out (docs/bootstrap-and-recovery.md says what to do about them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.render.imports import NOT_IMPORTABLE, import_id  # noqa: E402
from tests.harness import run_stack  # noqa: E402


def fill(stack: str, document: dict) -> tuple[dict, list[str]]:
    """The import document with Vault ids filled in, and what was left out (with why)."""
    declared = {(r.type, r.name): r for r in run_stack(stack).resources}
    kept, left_out = [], []
    for entry in document.get("resources", []):
        if not entry.get("type", "").startswith("vault:") or entry.get("id"):
            kept.append(entry)
            continue
        if entry["type"] in NOT_IMPORTABLE:
            left_out.append(f"{entry['name']}: {NOT_IMPORTABLE[entry['type']]}")
            continue
        resource = declared.get((entry["type"], entry["name"]))
        if resource is None:
            left_out.append(f"{entry['name']}: the program declares no {entry['type']} of that name for {stack}")
            continue
        kept.append({**entry, "id": import_id(entry["type"], resource.inputs)})
    return {**document, "resources": kept}, left_out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    stack, path = argv
    filled, left_out = fill(stack, json.loads(Path(path).read_text()))
    Path(path).write_text(json.dumps(filled, indent=2) + "\n")
    for line in left_out:
        print(f"left out: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
