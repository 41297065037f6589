#!/usr/bin/env python3
"""Print the IAM policy the role that runs `pulumi up` needs for a stack, from the AWS resources the
program declares for it (the program runs under Pulumi's mocks; nothing is deployed), scoped to the
stack's own roles, keys, aliases, buckets and zone; or, with --boundary, the permissions boundary
every role the stack creates carries (create it as the managed policy aws.permissionsBoundary names).

    venv/bin/python scripts/deployer_policy.py prod > deployer-policy.json
    venv/bin/python scripts/deployer_policy.py prod --boundary > boundary-policy.json

KMS key administration is granted by the key policies, by naming the role in aws.keyAdministrators.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.render.iam import deployer_policy_for, permissions_boundary_policy  # noqa: E402
from tests.harness import load_stack, run_stack  # noqa: E402


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    stack = args[0] if args else "prod"
    if "--boundary" in argv:
        print(json.dumps(permissions_boundary_policy(), indent=2))
        return 0
    rec = run_stack(stack)
    declared = [(r.type, r.name, r.inputs) for r in rec.resources if r.custom]
    print(json.dumps(deployer_policy_for(load_stack(stack), declared), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
