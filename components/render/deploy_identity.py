"""Who deploys once Vault is set up: a JWT auth method for CI (GitHub Actions OIDC) with a
`deployer` and a `previewer` role, an optional OIDC method for operators, and the two policies,
derived from exactly what the stack manages. Pure: no Pulumi, no I/O.

`deployer` can apply the whole configuration and nothing more: it never reads secret data, cannot
generate a root token, read raw storage or seal Vault, and cannot change the deploy identity (its own
policy, `previewer`'s, `admin`, the CI and operator logins) nor give a Kubernetes auth role any
policy but the ones the stack gives roles. `previewer` reads the configuration (what `pulumi preview`
and `pulumi refresh` need) and changes nothing. What the deployer still can do, write the content of
the applications' policies, is what the review of the change and the deploy environment guard
(docs/deploy-identity.md, "What a deployer can and cannot do").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.model import PlatformConfig, Secret
from components.model.checks import duration_seconds
from components.render.policies import ADMIN_POLICY, MIGRATION_POLICY, RESTORE_POLICY, Policy, Rule

DEPLOYER_POLICY = "deployer"
PREVIEWER_POLICY = "previewer"
# The CI role of the scheduled drift check (.github/workflows/drift.yml): previewer's policy.
DRIFT_ROLE = "drift"
# The CI roles of the reviewed restore and migration workflows (restore.yml, migrate.yml).
RESTORE_ROLE = "restore"
MIGRATION_ROLE = "migration"
# Written by DeployIdentity with the root token on the first run, and after that only with a break-glass
# token: the deployer may not change them.
IDENTITY_POLICIES = (DEPLOYER_POLICY, PREVIEWER_POLICY, ADMIN_POLICY, RESTORE_POLICY, MIGRATION_POLICY)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

WRITE = ("create", "read", "update", "delete", "list")
READ = ("read", "list")


@dataclass(frozen=True)
class JwtRole:
    """``auth/<path>/role/<name>`` of a jwt or oidc auth method."""

    name: str
    role_type: str
    user_claim: str
    bound_claims: Mapping[str, str | tuple[str, ...]]
    token_policies: tuple[str, ...]
    token_ttl_seconds: int
    token_max_ttl_seconds: int
    bound_audiences: tuple[str, ...] = ()
    allowed_redirect_uris: tuple[str, ...] = ()
    groups_claim: str = ""


@dataclass(frozen=True)
class JwtAuth:
    """``sys/auth/<path>`` of type jwt or oidc, its config and its roles."""

    path: str
    type: str
    description: str
    discovery_url: str
    bound_issuer: str
    roles: tuple[JwtRole, ...]
    client_id: str = ""
    client_secret: Secret | None = None
    # Where the client secret is read from when the identity is written (AWS Secrets Manager ARN).
    client_secret_arn: str = ""
    default_role: str = ""


@dataclass(frozen=True)
class Managed:
    """What the stack manages in Vault, as paths: the deployer policy grants exactly these."""

    mounts: tuple[tuple[str, str], ...]  # (path, type)
    # Auth methods the provider manages (Kubernetes); the deploy identity's own (CI, operators).
    auth_paths: tuple[str, ...]
    policy_names: tuple[str, ...]
    audit_paths: tuple[str, ...]
    kv_secret_paths: tuple[str, ...]  # <mount>/data/<name>
    pki_root: str = ""
    pki_intermediate: str = ""
    # Where the PKI roles are: the intermediate when there is one.
    pki_issuing: str = ""
    identity_auth_paths: tuple[str, ...] = ()
    database_mount: str = ""
    transit_mount: str = ""
    kv_mount: str = ""
    # The stack configures Raft autopilot (cluster.raft.autopilot).
    autopilot: bool = False
    # The policies (Vault globs) the deployer may give Kubernetes auth roles; empty: any (deploy.limitRolePolicies).
    role_policies: tuple[str, ...] = ()
    extra: tuple[Rule, ...] = field(default_factory=tuple)


def _seconds(value: str) -> int:
    return int(duration_seconds(value))


def role_rule(path: str, m: Managed) -> Rule:
    """Writing Kubernetes auth roles: with ``m.role_policies``, a role may carry those policies only.

    Vault (1.21 and later) checks every element of a list parameter against the allowed values, and a
    comma-separated string as the list it stands for; a string is also matched whole first, so one with
    a comma in it ("app-x,admin" matches "app-*") is refused outright. `policies`, the deprecated alias
    of token_policies, is refused whatever it holds.
    """
    if not m.role_policies:
        return Rule(path, WRITE, denied_parameters=("policies",))
    return Rule(path, WRITE, denied_parameters=("policies",),
                allowed_parameters=(("token_policies", m.role_policies), ("*", ())),
                denied_values=(("token_policies", ("*,*",)),))


def deployer_policy(m: Managed) -> Policy:
    """What `pulumi up` and a dev `destroy` do as the deployer, path by path as the real provider asks
    (tests/integration/test_vault_side.py holds every grant against Vault's audit log)."""
    rules: list[Rule] = [
        Rule("sys/audit", ("read", "sudo")),
        # A run after one that could not finish checks the Raft voters again (VaultReady).
        Rule("sys/storage/raft/configuration", ("read",)),
    ]
    for path, _ in m.mounts:
        # Tune: a mount's lease lifetimes changed in the config.
        rules += [Rule(f"sys/mounts/{path}", (*WRITE, "sudo")), Rule(f"sys/mounts/{path}/tune", ("read", "update"))]
    for path in m.auth_paths:
        # Enabled and disabled at sys/auth/<path>; read and tuned at sys/mounts/auth/<path>, where the
        # provider reads the accessor and the token lifetimes (a refused tune it ignores, and records
        # the mount without its accessor).
        rules += [Rule(f"sys/auth/{path}", (*WRITE, "sudo")),
                  Rule(f"sys/mounts/auth/{path}", ("read",)), Rule(f"sys/mounts/auth/{path}/tune", ("read", "update")),
                  Rule(f"auth/{path}/config", ("create", "read", "update")), role_rule(f"auth/{path}/role/*", m)]
    # Every policy, not only today's: a run that drops a policy from the config deletes it after the
    # deploy identity was rewritten without it (the identity comes first in every run).
    rules.append(Rule("sys/policies/acl/*", ("create", "read", "update", "delete")))
    rules += [Rule(f"sys/audit/{path}", (*WRITE, "sudo")) for path in m.audit_paths]
    if m.kv_mount:
        rules.append(Rule(f"{m.kv_mount}/config", ("create", "read", "update")))
    # Initial secrets: created once (cas=0), never read and never overwritten.
    rules += [Rule(path, ("create",)) for path in m.kv_secret_paths]
    if m.database_mount:
        db = m.database_mount
        rules += [Rule(f"{db}/config/*", WRITE), Rule(f"{db}/roles/*", WRITE),
                  # A role or connection leaves the config: its credentials are revoked first.
                  Rule(f"sys/leases/revoke-prefix/{db}/creds/*", ("update", "sudo")),
                  # Right after a connection is written, Vault takes over its admin password.
                  Rule(f"{db}/rotate-root/*", ("update",))]
    for pki in (m.pki_root, m.pki_intermediate):
        if not pki:
            continue
        rules += [Rule(f"{pki}/config/urls", ("create", "read", "update")),
                  Rule(f"{pki}/config/auto-tidy", ("create", "read", "update")), Rule(f"{pki}/config/*", ("read",)),
                  # A CA that leaves the config (dev; prod protects its keys): its issuer goes.
                  Rule(f"{pki}/issuer/*", ("delete",))]
        if pki == m.pki_root:
            rules += [Rule(f"{pki}/issuers/generate/root/internal", ("create", "update")),
                      Rule(f"{pki}/root/sign-intermediate", ("create", "update")),
                      Rule(f"{pki}/root", ("delete",))]
        else:
            rules += [Rule(f"{pki}/issuers/generate/intermediate/internal", ("create", "update")),
                      Rule(f"{pki}/intermediate/set-signed", ("create", "update"))]
    if m.pki_issuing:
        rules.append(Rule(f"{m.pki_issuing}/roles/*", WRITE))
    if m.transit_mount:
        # Delete: a dev stack's destroy (prod protects its keys, and the keys forbid deletion anyway).
        rules += [Rule(f"{m.transit_mount}/keys/*", ("create", "read", "update", "delete", "list"))]
    if m.autopilot:
        rules.append(Rule("sys/storage/raft/autopilot/configuration", ("read", "update")))
    rules += list(m.extra)
    # Said out loud, though nothing above grants them: deny wins over any later grant. The deploy
    # identity (its policies, the CI and operator logins) is written by DeployIdentity with the root token
    # on the first run, and after that only with a break-glass token: a deployer cannot widen what it
    # may do, nor who may deploy. It may read them (an exact path wins over sys/policies/acl/*, a longer
    # prefix over a shorter one), so that its refresh shows a change made by hand.
    rules += [Rule("sys/generate-root/*", ("deny",)), Rule("sys/raw/*", ("deny",)), Rule("sys/seal", ("deny",)),
              *(Rule(f"sys/policies/acl/{name}", ("read",)) for name in IDENTITY_POLICIES)]
    for path in m.identity_auth_paths:
        rules += [Rule(f"sys/auth/{path}", ("deny",)), Rule(f"auth/{path}/*", ("deny",)),
                  Rule(f"auth/{path}/role/*", ("read",))]
    return Policy(DEPLOYER_POLICY, tuple(rules))


def previewer_policy(m: Managed) -> Policy:
    """What `pulumi preview` and `pulumi refresh` read, and nothing else."""
    rules: list[Rule] = [Rule("sys/audit", ("read", "sudo"))]
    for path, _ in m.mounts:
        rules.append(Rule(f"sys/mounts/{path}", ("read",)))
    for path in m.auth_paths:
        rules += [Rule(f"sys/mounts/auth/{path}", ("read",)), Rule(f"sys/mounts/auth/{path}/tune", ("read",)),
                  Rule(f"auth/{path}/config", ("read",)), Rule(f"auth/{path}/role/*", READ)]
    rules.append(Rule("sys/policies/acl/*", ("read",)))
    # The deploy identity's logins, so that a refresh shows a hand-made change to them (DeployIdentity.read).
    rules += [Rule(f"auth/{path}/role/*", ("read",)) for path in m.identity_auth_paths]
    if m.kv_mount:
        rules.append(Rule(f"{m.kv_mount}/config", ("read",)))
    if m.database_mount:
        rules += [Rule(f"{m.database_mount}/config/*", READ), Rule(f"{m.database_mount}/roles/*", READ)]
    for pki in (m.pki_root, m.pki_intermediate):
        if pki:
            rules += [Rule(f"{pki}/config/urls", ("read",)), Rule(f"{pki}/config/auto-tidy", ("read",))]
    if m.pki_issuing:
        rules.append(Rule(f"{m.pki_issuing}/roles/*", READ))
    if m.transit_mount:
        rules.append(Rule(f"{m.transit_mount}/keys/*", READ))
    if m.autopilot:
        rules.append(Rule("sys/storage/raft/autopilot/configuration", ("read",)))
    return Policy(PREVIEWER_POLICY, tuple(rules))


def jwt_auths(config: PlatformConfig) -> tuple[JwtAuth, ...]:
    d = config.deploy
    found: list[JwtAuth] = []
    if d.jwt.enabled and d.jwt.github is not None:
        gh = d.jwt.github
        ttl, max_ttl = _seconds(d.jwt.token_ttl), _seconds(d.jwt.token_max_ttl)
        common = {"role_type": "jwt", "user_claim": "sub", "bound_audiences": (d.jwt.audience,),
                  "token_ttl_seconds": ttl, "token_max_ttl_seconds": max_ttl}
        found.append(JwtAuth(
            path=d.jwt.path, type="jwt", description="CI logins (GitHub Actions OIDC), managed by vault-platform",
            discovery_url=d.jwt.discovery_url, bound_issuer=GITHUB_ISSUER if "githubusercontent" in
            d.jwt.discovery_url else d.jwt.discovery_url.rstrip("/"),
            roles=(
                JwtRole(name=DEPLOYER_POLICY, token_policies=(DEPLOYER_POLICY,), bound_claims={
                    "repository": gh.repository, "ref": gh.deploy_ref, "environment": gh.deploy_environment},
                    **common),
                JwtRole(name=PREVIEWER_POLICY, token_policies=(PREVIEWER_POLICY,), bound_claims={
                    "repository": gh.repository, "environment": gh.preview_environment}, **common),
                # The scheduled drift check: reads like a preview, from the deploy ref's reviewed code only.
                JwtRole(name=DRIFT_ROLE, token_policies=(PREVIEWER_POLICY,), bound_claims={
                    "repository": gh.repository, "ref": gh.deploy_ref, "environment": gh.drift_environment},
                    **common),
                # A restore and a migration: each its one narrow policy, from main's reviewed workflow in an
                # environment of its own with required reviewers. Never the deployer, never root.
                JwtRole(name=RESTORE_ROLE, token_policies=(RESTORE_POLICY,), bound_claims={
                    "repository": gh.repository, "ref": gh.deploy_ref, "environment": gh.restore_environment},
                    **common),
                JwtRole(name=MIGRATION_ROLE, token_policies=(MIGRATION_POLICY,), bound_claims={
                    "repository": gh.repository, "ref": gh.deploy_ref, "environment": gh.migration_environment},
                    **common),
            )))
    o = d.operator_oidc
    if o.enabled and o.discovery_url:
        found.append(JwtAuth(
            path=o.path, type="oidc", description="Operator logins (OIDC), managed by vault-platform",
            discovery_url=o.discovery_url, bound_issuer="", client_id=o.client_id,
            client_secret=config.secrets.oidc_client_secret, client_secret_arn=o.client_secret_arn,
            default_role="operator",
            roles=(JwtRole(name="operator", role_type="oidc", user_claim="sub", groups_claim=o.groups_claim,
                           bound_claims={o.groups_claim: (o.admin_group,)}, token_policies=(DEPLOYER_POLICY,),
                           token_ttl_seconds=3600, token_max_ttl_seconds=8 * 3600,
                           allowed_redirect_uris=tuple(o.allowed_redirect_uris)),)))
    return tuple(found)


def role_payload(role: JwtRole) -> dict[str, Any]:
    """``auth/<path>/role/<name>`` as Vault's API takes it."""
    payload: dict[str, Any] = {
        "role_type": role.role_type,
        "user_claim": role.user_claim,
        "bound_claims": {k: v if isinstance(v, str) else list(v) for k, v in role.bound_claims.items()},
        "token_policies": list(role.token_policies),
        # Durations with their unit: a bare number reaches Vault through the engine as "2700.0", which
        # Vault refuses.
        "token_ttl": f"{role.token_ttl_seconds}s",
        "token_max_ttl": f"{role.token_max_ttl_seconds}s",
    }
    if role.bound_audiences:
        payload["bound_audiences"] = list(role.bound_audiences)
    if role.groups_claim:
        payload["groups_claim"] = role.groups_claim
    if role.allowed_redirect_uris:
        payload["allowed_redirect_uris"] = list(role.allowed_redirect_uris)
    return payload


def config_payload(auth: JwtAuth) -> dict[str, Any]:
    """``auth/<path>/config`` without the OIDC client secret (a secret input of its own)."""
    payload: dict[str, Any] = {"oidc_discovery_url": auth.discovery_url}
    if auth.bound_issuer:
        payload["bound_issuer"] = auth.bound_issuer
    if auth.default_role:
        payload["default_role"] = auth.default_role
    if auth.client_id:
        payload["oidc_client_id"] = auth.client_id
    return payload


def auth_payload(auth: JwtAuth) -> dict[str, Any]:
    """One auth method as the DeployIdentity resource writes it."""
    return {"path": auth.path, "type": auth.type, "description": auth.description, "config": config_payload(auth),
            "roles": [{"name": r.name, "payload": role_payload(r)} for r in auth.roles]}


def identity_policies(managed: Managed, auths: Sequence[JwtAuth]) -> tuple[Policy, ...]:
    """The deployer and previewer policies, when some deploy identity uses them (with `admin`, built
    with the other platform policies, the identity writes them: IDENTITY_POLICIES)."""
    if not auths:
        return ()
    return deployer_policy(managed), previewer_policy(managed)
