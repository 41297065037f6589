"""Whether a stack's state (`pulumi stack export` on stdin) holds any resource.

    pulumi stack export --stack dev | python scripts/stack_holds.py --nothing

exits 0 when it holds none, 1 when it holds some or the export cannot be read (so a caller goes on
to the command that reports the real problem).
"""

from __future__ import annotations

import json
import sys


def holds_nothing(export: str) -> bool:
    try:
        state = json.loads(export)
    except ValueError:
        return False
    if not isinstance(state, dict):
        return False
    return not ((state.get("deployment") or {}).get("resources") or [])


def main(argv: list[str]) -> int:
    if argv != ["--nothing"]:
        print("usage: pulumi stack export | python scripts/stack_holds.py --nothing", file=sys.stderr)
        return 2
    return 0 if holds_nothing(sys.stdin.read()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
