"""Policies as code: a typed model rendered to Vault's policy HCL. Pure: no Pulumi, no I/O.

The platform's own policies (operators' admin, the backup job, one per application and the
templated one) are built here from the typed config, so the stack and the tests render exactly the
same text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from components.config import CAPABILITIES, Application, PlatformConfig
from components.config import Policy as PolicyConfig

ADMIN_POLICY = "admin"
BACKUP_POLICY = "raft-backup"
TEMPLATED_POLICY = "app-templated"

KV_ACCESS = {
    "read": ("read",),
    "list": ("list",),
    "write": ("create", "read", "update", "patch"),
}


@dataclass(frozen=True)
class Rule:
    path: str
    capabilities: tuple[str, ...]
    required_parameters: tuple[str, ...] = ()
    denied_parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [c for c in self.capabilities if c not in CAPABILITIES]
        if unknown:
            raise ValueError(f"policy path {self.path!r}: unknown capabilities {unknown}")
        if not self.capabilities:
            raise ValueError(f"policy path {self.path!r}: no capabilities")


@dataclass(frozen=True)
class Policy:
    name: str
    rules: tuple[Rule, ...] = field(default_factory=tuple)


def render(policy: Policy) -> str:
    """Vault policy HCL. Strings are JSON-quoted, which HCL accepts as-is."""
    blocks = [f"# {policy.name}: managed by vault-platform; edit the stack config, not Vault."]
    for rule in policy.rules:
        lines = [f"path {json.dumps(rule.path)} {{",
                 f"  capabilities = {json.dumps(list(rule.capabilities))}"]
        if rule.required_parameters:
            lines.append(f"  required_parameters = {json.dumps(list(rule.required_parameters))}")
        if rule.denied_parameters:
            denied = ", ".join(f"{json.dumps(p)} = []" for p in rule.denied_parameters)
            lines.append(f"  denied_parameters = {{ {denied} }}")
        lines.append("}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def from_config(p: PolicyConfig) -> Policy:
    return Policy(p.name, tuple(Rule(r.path, tuple(r.capabilities), tuple(r.required_parameters),
                                     tuple(r.denied_parameters)) for r in p.rules))


def admin_policy(config: PlatformConfig) -> Policy:
    """What operators need day to day, without root: manage mounts, auth, policies, Raft and audit."""
    manage = ("create", "read", "update", "patch", "delete", "list", "sudo")
    rules = [
        Rule("sys/health", ("read", "sudo")),
        Rule("sys/capabilities*", ("create", "update")),
        Rule("sys/policies/acl", ("list",)),
        Rule("sys/policies/acl/*", manage),
        Rule("sys/mounts", ("read",)),
        Rule("sys/mounts/*", manage),
        Rule("sys/auth", ("read",)),
        Rule("sys/auth/*", manage),
        Rule("auth/*", manage),
        Rule("sys/audit", ("read", "sudo")),
        Rule("sys/audit/*", manage),
        Rule("sys/leases/*", manage),
        Rule("sys/storage/raft/*", manage),
        Rule("sys/seal-status", ("read",)),
        Rule("identity/*", manage),
        Rule(f"{config.kv.path}/*", manage),
    ]
    if config.database.enabled:
        rules.append(Rule(f"{config.database.path}/*", manage))
    if config.pki.enabled:
        rules.append(Rule(f"{config.pki.path}/*", manage))
        if config.pki.intermediate.enabled:
            rules.append(Rule(f"{config.pki.intermediate.path}/*", manage))
    if config.transit.enabled:
        rules.append(Rule(f"{config.transit.path}/*", manage))
    return Policy(ADMIN_POLICY, tuple(rules))


def backup_policy() -> Policy:
    """The backup job may take a snapshot, and nothing else."""
    return Policy(BACKUP_POLICY, (Rule("sys/storage/raft/snapshot", ("read",)),))


def app_policy_name(app: Application) -> str:
    return f"app-{app.name}"


def issuing_pki_path(config: PlatformConfig) -> str:
    return config.pki.intermediate.path if config.pki.intermediate.enabled else config.pki.path


def app_policy(config: PlatformConfig, app: Application) -> Policy:
    rules = [Rule(grant.path, KV_ACCESS[grant.access]) for grant in app.kv]
    if app.database_role:
        rules.append(Rule(f"{config.database.path}/creds/{app.database_role}", ("read",)))
    if app.pki_role:
        rules.append(Rule(f"{issuing_pki_path(config)}/issue/{app.pki_role}", ("create", "update")))
    return Policy(app_policy_name(app), tuple(rules))


def templated_policy(config: PlatformConfig, kubernetes_accessor: str) -> Policy:
    """secret/data/<namespace>/<service account>/* for whoever logs in through Kubernetes auth.

    The entity alias metadata that the Kubernetes auth method records on login names the caller's
    namespace and service account, so one policy serves every application.
    """
    alias = f"identity.entity.aliases.{kubernetes_accessor}.metadata"
    own = f"{{{{{alias}.service_account_namespace}}}}/{{{{{alias}.service_account_name}}}}"
    kv = config.kv.path
    return Policy(TEMPLATED_POLICY, (
        Rule(f"{kv}/data/{own}/*", ("create", "read", "update", "patch", "delete")),
        Rule(f"{kv}/metadata/{own}/*", ("read", "list", "delete")),
    ))


def all_policies(config: PlatformConfig, kubernetes_accessor: str | None) -> list[Policy]:
    """Every policy the stack writes, in a stable order."""
    policies = [admin_policy(config), backup_policy()]
    policies += [app_policy(config, app) for app in config.applications]
    if config.kubernetes_auth.templated_policy and kubernetes_accessor:
        policies.append(templated_policy(config, kubernetes_accessor))
    policies += [from_config(p) for p in config.policies]
    return policies
