#!/usr/bin/env python3
"""Print the IAM policy the role that runs `pulumi up` needs for a stack, from the AWS resources the
program declares for it (the program runs under Pulumi's mocks; nothing is deployed).

    venv/bin/python scripts/deployer_policy.py prod > deployer-policy.json

Narrow its `Resource: "*"` to your account's ARNs if your organisation requires it; KMS key
administration is granted separately, by naming the role in aws.keyAdministrators.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.render.iam import deployer_policy  # noqa: E402
from tests.harness import run_stack  # noqa: E402


def main(argv: list[str]) -> int:
    stack = argv[0] if argv else "prod"
    rec = run_stack(stack)
    types = sorted({r.type for r in rec.resources if r.type.startswith("aws:") and r.custom})
    print(json.dumps(deployer_policy(types), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
