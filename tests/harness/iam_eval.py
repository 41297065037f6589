"""AWS's policy evaluation for the parts of the language our IAM documents use, to prove what a
principal can and cannot do with them.

Why not a real evaluator: AWS's own (iam:SimulatePrincipalPolicy) needs an account, and moto (the
AWS stand-in the tests use for S3 and Secrets Manager) has no policy simulation; its request
authorizer ignores every condition operator but StringEquals, and counts a condition on a missing
key as met. This module follows AWS's documented logic instead, and its own tests
(tests/unit/test_iam_least_privilege.py) pin each rule it relies on:

- an explicit Deny in any policy wins; otherwise some Allow is needed, in the identity policies and,
  when a permissions boundary is set, in the boundary too;
- a KMS key policy without a statement for the account root is the only authority over its key:
  IAM policies neither add nor take away access to it;
- Action and Resource match with '*' and '?' wildcards (actions case-insensitively), NotAction and
  NotResource invert them;
- condition operators StringEquals, StringNotEquals, StringLike, StringNotLike, ArnEquals, ArnLike,
  ArnNotEquals, ArnNotLike and Bool, each with IfExists, and several values of one key (ORed); a key
  missing from the request matches no positive operator and every negated one (without IfExists);
  every operator and key of one statement must match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

ALLOW, DENY, IMPLICIT_DENY = "allow", "explicit deny", "implicit deny"


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


_POSITIVE = {
    "StringEquals": lambda want, have: want == have,
    "StringLike": lambda want, have: _wildcard(want, have),
    "ArnEquals": lambda want, have: want == have,
    "ArnLike": lambda want, have: _wildcard(want, have),
    "Bool": lambda want, have: str(want).lower() == str(have).lower(),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals",
            "ArnNotLike": "ArnLike"}


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    present = key in context
    if not present:
        # Absent: IfExists makes the condition true; otherwise only a negated operator holds.
        return if_exists or base in _NEGATED
    values = [str(v) for v in _list(context[key])]
    if base in _NEGATED:
        test = _POSITIVE[_NEGATED[base]]
        return not any(test(str(w), v) for w in _list(wanted) for v in values)
    if base not in _POSITIVE:
        raise ValueError(f"condition operator {operator} is not modelled")
    return any(_POSITIVE[base](str(w), v) for w in _list(wanted) for v in values)


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any]) -> bool:
    return all(_condition_holds(operator, key, wanted, context)
               for operator, keys in conditions.items() for key, wanted in keys.items())


def _matches(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, Any],
             principal: str | None) -> bool:
    if "Action" in statement:
        if not any(_wildcard(a, action, ignore_case=True) for a in _list(statement["Action"])):
            return False
    elif any(_wildcard(a, action, ignore_case=True) for a in _list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(_wildcard(r, resource) for r in _list(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(_wildcard(r, resource) for r in _list(statement["NotResource"])):
        return False
    if principal is not None:
        wanted = statement.get("Principal", {})
        wanted = _list(wanted.get("AWS", [])) if isinstance(wanted, Mapping) else _list(wanted)
        if "*" not in wanted and principal not in wanted:
            return False
    return _conditions_hold(statement.get("Condition", {}), context)


def decide(policies: Sequence[Mapping[str, Any]], action: str, resource: str,
           context: Mapping[str, Any] | None = None, principal: str | None = None) -> str:
    """What a set of policies (identity policies, or one resource policy with ``principal``) says."""
    found = IMPLICIT_DENY
    for policy in policies:
        for statement in _list(policy["Statement"]):
            if _matches(statement, action, resource, context or {}, principal):
                if statement["Effect"] == "Deny":
                    return DENY
                found = ALLOW
    return found


def identity_decision(identity: Sequence[Mapping[str, Any]], action: str, resource: str,
                      context: Mapping[str, Any] | None = None,
                      boundary: Mapping[str, Any] | None = None) -> str:
    """A principal of the account calling a service other than KMS keys: its identity policies,
    within its permissions boundary when it has one."""
    decision = decide(identity, action, resource, context)
    if decision != ALLOW or boundary is None:
        return decision
    within = decide([boundary], action, resource, context)
    return ALLOW if within == ALLOW else within


def key_decision(key_policy: Mapping[str, Any], principal: str, action: str,
                 context: Mapping[str, Any] | None = None) -> str:
    """A call on a KMS key whose policy has no statement for the account root: the key policy alone."""
    assert not any(str(p).endswith(":root") for s in _list(key_policy["Statement"])
                   for p in _list((s.get("Principal") or {}).get("AWS", []))), "the key policy delegates to IAM"
    return decide([key_policy], action, "*", context, principal)
