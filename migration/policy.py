"""The Vault policy the migration token needs, as one rule set built with the platform's policy
model (components.render.policies): create, read and update on the target paths' data and metadata,
nothing else. No list (each path is read directly), no delete, no destroy, nothing outside them."""

from __future__ import annotations

from collections.abc import Iterable

from components.render.policies import Policy, Rule, render
from migration.mapping import MapRule

CAPABILITIES = ("create", "read", "update")
DEFAULT_NAME = "secrets-manager-migration"


def migration_policy(mount: str, rules: Iterable[MapRule], name: str = DEFAULT_NAME) -> Policy:
    prefixes = sorted({r.target_prefix for r in rules})
    # A prefix inside another's space adds nothing (and Vault would merge the two rules).
    needed = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
    policy_rules: list[Rule] = []
    for prefix in needed:
        policy_rules.append(Rule(f"{mount}/data/{prefix}*", CAPABILITIES))
        policy_rules.append(Rule(f"{mount}/metadata/{prefix}*", CAPABILITIES))
    return Policy(name, tuple(policy_rules))


def migration_policy_hcl(mount: str, rules: Iterable[MapRule], name: str = DEFAULT_NAME) -> str:
    rules = list(rules)
    text = render(migration_policy(mount, rules, name))
    maps = " ".join(f"--map {r}" for r in rules)
    header = (f"# {name}: what `python -m migration` needs to copy secrets into {mount}/ "
              f"(python -m migration policy --mount {mount} {maps}).")
    return header + "\n" + text.split("\n", 1)[1]
