"""The Vault policy the migration token needs, as one rule set built with the platform's policy
model (components.render.policies): create, read and update on the target paths' data and metadata,
nothing else. No list (each path is read directly), no delete, no destroy, nothing outside them."""

from __future__ import annotations

from collections.abc import Iterable

from components.render.policies import MIGRATION_POLICY, Policy, kv_copy_policy, render
from migration.mapping import MapRule

DEFAULT_NAME = MIGRATION_POLICY


def migration_policy(mount: str, rules: Iterable[MapRule], name: str = DEFAULT_NAME) -> Policy:
    return kv_copy_policy(name, mount, [r.target_prefix for r in rules])


def migration_policy_hcl(mount: str, rules: Iterable[MapRule], name: str = DEFAULT_NAME) -> str:
    rules = list(rules)
    text = render(migration_policy(mount, rules, name))
    maps = " ".join(f"--map {r}" for r in rules)
    header = (f"# {name}: what `python -m migration` needs to copy secrets into {mount}/ "
              f"(python -m migration policy --mount {mount} {maps}).")
    return header + "\n" + text.split("\n", 1)[1]
