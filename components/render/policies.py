"""Policies as code: a typed model rendered to Vault's policy HCL. Pure: no Pulumi, no I/O.

The platform's own policies (operators' admin, the backup job, one per application and the
templated one) are built here from the typed config, so the stack and the tests render exactly the
same text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from components.model import Application, PlatformConfig
from components.model.checks import capabilities as capabilities_problem
from components.model.names import cert_manager_role, external_secrets_role
from components.model.platform import Policy as PolicyConfig

ADMIN_POLICY = "admin"
BACKUP_POLICY = "raft-backup"
ROLLOUT_POLICY = "raft-rollout"
METRICS_POLICY = "metrics"
TEMPLATED_POLICY = "app-templated"
TEMPLATED_WRITE_POLICY = "app-templated-write"
# The policies of the CI logins for a restore and a migration (written with the deploy identity).
RESTORE_POLICY = "raft-restore"
MIGRATION_POLICY = "secrets-manager-migration"
KV_COPY = ("create", "read", "update")
# Every policy a Kubernetes auth role of the stack carries, as Vault globs: the applications' (app-<name>,
# app-templated, app-templated-write), the External Secrets Operator's and cert-manager's, the Jobs'.
# Nothing else may be given to a role, and a stack's own policies may not take these names.
ROLE_POLICY_FAMILIES = ("app-*", "external-secrets-*", "cert-manager-*", BACKUP_POLICY, ROLLOUT_POLICY)

KV_ACCESS = {
    "read": ("read",),
    "list": ("list",),
    "write": ("create", "read", "update", "patch"),
}
# An application's own folder. Nobody gets delete on metadata (it destroys every version) or
# destroy; writing is an application's explicit choice (applications[].ownFolder: write).
TEMPLATED_DATA = ("read",)
TEMPLATED_METADATA = ("read", "list")
TEMPLATED_WRITE_DATA = ("create", "read", "update", "patch")
OWN_FOLDER = {"read": (TEMPLATED_DATA, TEMPLATED_METADATA), "write": (TEMPLATED_WRITE_DATA, TEMPLATED_METADATA)}
POLICY_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$")


@dataclass(frozen=True)
class Rule:
    path: str
    capabilities: tuple[str, ...]
    required_parameters: tuple[str, ...] = ()
    denied_parameters: tuple[str, ...] = ()
    # (parameter, values it may take): with any, a request may carry only the parameters named here
    # ("*" = () admits the rest); values are Vault globs ("*" at either end).
    allowed_parameters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (parameter, values it may not take), beside denied_parameters (refused whatever the value).
    denied_values: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        if not self.path or self.path.startswith("/") or any(c in self.path for c in ' "\\\n'):
            raise ValueError(f"policy path {self.path!r}: not a Vault API path (no leading '/', quotes or spaces)")
        problem = capabilities_problem(self.capabilities)
        if problem:
            raise ValueError(f"policy path {self.path!r}: {problem}")


@dataclass(frozen=True)
class Policy:
    name: str
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not POLICY_NAME.match(self.name) or self.name in ("root",):
            raise ValueError(f"policy name {self.name!r}: use lower-case letters, digits, '-', '_' and '.' "
                             "(and not 'root')")
        paths = [r.path for r in self.rules]
        repeated = sorted({p for p in paths if paths.count(p) > 1})
        if repeated:
            # Vault would silently merge or override them; say so instead.
            raise ValueError(f"policy {self.name!r}: path(s) {repeated} appear in more than one rule")


def render(policy: Policy) -> str:
    """Vault policy HCL. Strings are JSON-quoted, which HCL accepts as-is."""
    blocks = [f"# {policy.name}: managed by vault-platform; edit the stack config, not Vault."]
    for rule in policy.rules:
        lines = [f"path {json.dumps(rule.path)} {{",
                 f"  capabilities = {json.dumps(list(rule.capabilities))}"]
        if rule.required_parameters:
            lines.append(f"  required_parameters = {json.dumps(list(rule.required_parameters))}")
        if rule.allowed_parameters:
            allowed = ", ".join(f"{json.dumps(p)} = {json.dumps(list(v))}" for p, v in rule.allowed_parameters)
            lines.append(f"  allowed_parameters = {{ {allowed} }}")
        denied = [(p, ()) for p in rule.denied_parameters] + list(rule.denied_values)
        if denied:
            text = ", ".join(f"{json.dumps(p)} = {json.dumps(list(v))}" for p, v in denied)
            lines.append(f"  denied_parameters = {{ {text} }}")
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


def restore_policy() -> Policy:
    """Restore a snapshot of this cluster (scripts/restore.sh), and nothing else. Not
    snapshot-force: a snapshot another cluster sealed (whose tokens and policies it brings along) is
    refused; restoring into a fresh cluster uses that cluster's own root token."""
    return Policy(RESTORE_POLICY, (Rule("sys/storage/raft/snapshot", ("update", "sudo")),))


def kv_copy_policy(name: str, mount: str, prefixes: list[str]) -> Policy:
    """What `python -m migration` needs to copy into ``prefixes`` of a KV v2 mount: create, read and update
    on their data and metadata; no list, no delete, no destroy, nothing outside them."""
    prefixes = sorted(set(prefixes))
    # A prefix inside another's space adds nothing (and Vault would merge the two rules).
    needed = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
    return Policy(name, tuple(Rule(f"{mount}/{kind}/{prefix}*", KV_COPY) for prefix in needed
                              for kind in ("data", "metadata")))


def migration_policy(config: PlatformConfig) -> Policy:
    return kv_copy_policy(MIGRATION_POLICY, config.kv.path, [config.migration.kv_prefix])


def rollout_policy() -> Policy:
    """The rolling restart may read the Raft membership and autopilot's view of it, step the active
    node down (Vault wants sudo for that) and remove a departing server; nothing else."""
    return Policy(ROLLOUT_POLICY, (
        Rule("sys/storage/raft/configuration", ("read",)),
        Rule("sys/storage/raft/autopilot/state", ("read",)),
        Rule("sys/storage/raft/remove-peer", ("update",)),
        Rule("sys/step-down", ("update", "sudo")),
    ))


def metrics_policy() -> Policy:
    """Prometheus' scrape token (monitoring.metricsTokenSecret) may read the metrics, and nothing else."""
    return Policy(METRICS_POLICY, (Rule("sys/metrics", ("read",)),))


def app_policy_name(app: Application) -> str:
    return f"app-{app.name}"


def issuing_pki_path(config: PlatformConfig) -> str:
    return config.pki.intermediate.path if config.pki.intermediate.enabled else config.pki.path


def templated_prefixes(kv_path: str, namespace: str, service_account: str,
                       access: str = "read") -> dict[str, tuple[str, ...]]:
    """What the templated policy gives one service account: path prefix -> capabilities."""
    if access == "none":
        return {}
    own = f"{namespace}/{service_account}/"
    data, metadata = OWN_FOLDER[access]
    return {f"{kv_path}/data/{own}": data, f"{kv_path}/metadata/{own}": metadata}


def own_folder_policy(app: Application) -> str | None:
    """The templated policy an application's role carries for its own folder, if any."""
    return {"read": TEMPLATED_POLICY, "write": TEMPLATED_WRITE_POLICY}.get(app.own_folder)


def covered_by_templated(config: PlatformConfig, app: Application, rule: Rule) -> bool:
    """True when the application's templated policy already allows everything ``rule`` allows.

    Only paths strictly below ``<kv>/data/<namespace>/<service account>/`` (or ``metadata/``) can be:
    the templated rules end in ``/*``, which matches that prefix and anything below it.
    """
    if not config.kubernetes_auth.templated_policy:
        return False
    for prefix, caps in templated_prefixes(config.kv.path, app.namespace, app.service_account,
                                           app.own_folder).items():
        if rule.path.startswith(prefix) and set(rule.capabilities) <= set(caps):
            return True
    return False


def app_policy(config: PlatformConfig, app: Application) -> Policy | None:
    """``app-<name>``: what the application needs beyond the templated policy, or None if nothing.

    An application that only uses ``<kv>/data/<namespace>/<service account>/*`` needs no policy of
    its own when the templated policy is on: one Kubernetes role is all it costs.
    """
    rules = [Rule(grant.path, KV_ACCESS[grant.access]) for grant in app.kv]
    rules = [r for r in rules if not covered_by_templated(config, app, r)]
    if app.database_role:
        rules.append(Rule(f"{config.database.path}/creds/{app.database_role}", ("read",)))
    if app.pki_role:
        rules.append(Rule(f"{issuing_pki_path(config)}/issue/{app.pki_role}", ("create", "update")))
    if not rules:
        return None
    return Policy(app_policy_name(app), tuple(rules))


def templated_policy_for(kv_path: str, kubernetes_accessor: str, access: str = "read") -> Policy:
    """<kv>/data/<namespace>/<service account>/* for whoever logs in through Kubernetes auth.

    On login the Kubernetes auth method records the caller's namespace and service account name in
    its entity alias metadata (``service_account_namespace``, ``service_account_name``); Vault fills
    them into the path at request time, so one policy serves every application. ``access`` 'read'
    makes ``app-templated``, 'write' ``app-templated-write``.
    """
    if not kubernetes_accessor:
        raise ValueError("the templated policy needs the Kubernetes auth mount's accessor")
    alias = f"identity.entity.aliases.{kubernetes_accessor}.metadata"
    own = f"{{{{{alias}.service_account_namespace}}}}/{{{{{alias}.service_account_name}}}}"
    data, metadata = OWN_FOLDER[access]
    return Policy(TEMPLATED_WRITE_POLICY if access == "write" else TEMPLATED_POLICY, (
        Rule(f"{kv_path}/data/{own}/*", data),
        Rule(f"{kv_path}/metadata/{own}/*", metadata),
    ))


def external_secrets_namespaces(config: PlatformConfig) -> list[str]:
    """Namespaces with an application whose secrets the External Secrets Operator delivers."""
    return sorted({a.namespace for a in config.applications if a.uses_external_secrets})


def external_secrets_policy(config: PlatformConfig, namespace: str) -> Policy:
    """Read of exactly the secrets delivered to one namespace's applications: nothing else, no listing."""
    paths = sorted({f"{config.kv.path}/data/{s.path}" for a in config.applications
                    if a.namespace == namespace and a.uses_external_secrets for s in a.secrets})
    return Policy(external_secrets_role(namespace), tuple(Rule(path, ("read",)) for path in paths))


def cert_manager_policy(config: PlatformConfig, namespace: str, pki_role: str) -> Policy:
    """Sign a CSR with the PKI role of one namespace: cert-manager keeps the key; nothing can be issued,
    revoked or read."""
    return Policy(cert_manager_role(namespace),
                  (Rule(f"{issuing_pki_path(config)}/sign/{pki_role}", ("create", "update")),))


def static_policies(config: PlatformConfig) -> list[Policy]:
    """Every policy the stack writes except the templated one (which needs the auth accessor)."""
    policies = [admin_policy(config), backup_policy()]
    if config.cluster.rollout.enabled:
        policies.append(rollout_policy())
    if config.cluster.service_monitor:
        policies.append(metrics_policy())
    for app in config.applications:
        policy = app_policy(config, app)
        if policy is not None:
            policies.append(policy)
    policies += [external_secrets_policy(config, ns) for ns in external_secrets_namespaces(config)]
    if config.cert_manager.enabled:
        policies += [cert_manager_policy(config, i.namespace, i.pki_role) for i in config.cert_manager.issuers]
    policies += [from_config(p) for p in config.policies]
    return policies

