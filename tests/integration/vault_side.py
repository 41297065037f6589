"""The platform's whole Vault side through the real Pulumi engine and the real pulumi-vault provider.

``declare_vault_side`` (what VaultPlatform declares after the cluster: VaultBootstrap, then
VaultConfiguration) runs as an inline program under the same parent type and name as in the
platform, so every URN is the platform's. It runs against a Raft cluster started from the server
HCL the chart would run, over TLS on loopback; only what cannot exist outside a cluster is moved:

- the API address is the first node's, and the dev stack unseals each node at its own address;
- the file audit device writes to a file of the test, and the database is a local PostgreSQL;
- GitHub is ``GithubActions`` on loopback (its discovery document and the runner's token service),
  which the servers and the program trust through SSL_CERT_FILE, as behind a corporate CA;
- the cluster has three nodes (prod runs five).

Everything else comes from the stack files, as `pulumi up` would read them.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from components.model import PlatformConfig, load_config
from tests.harness import merge, stack_config
from tests.integration import servers
from tests.integration.engine import Engine, install_vault_plugin
from tests.integration.github_oidc import GithubActions
from tests.integration.raft_cluster import RaftCluster, start_cluster
from tests.pulumi_pickling import undo_dynamic_provider_pickling_patch

PLATFORM = "vault"
PLATFORM_TYPE = "vault-platform:index:VaultPlatform"
REPOSITORY = "example-org/vault-platform"
REPLICAS = 3
# What a login may leave in the environment of the test process: every run starts from none of it.
LOGIN_ENV = ("VAULT_TOKEN", "TERRAFORM_VAULT_AUTH_JWT", "ACTIONS_ID_TOKEN_REQUEST_URL",
             "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "VAULT_PLATFORM_VAULT_ROLE")


@dataclass
class Database:
    """Where the stack's database connection points: a local PostgreSQL and an admin role of its own
    (the prod stack rotates the admin password: no other test may share it)."""

    host: str
    port: int
    dbname: str
    admin: str
    password: str
    tls_ca: str = ""
    tls_ca_file: str = ""


def config_for(stack: str, cluster: RaftCluster, github: GithubActions, audit_log: pathlib.Path,
               database: Database, pgp_keys: list[str] | None = None, flavor: str = "vault",
               changes: dict[str, Any] | None = None) -> tuple[PlatformConfig, dict[str, Any]]:
    """The stack file's config with only the loopback differences (module docstring), plus ``changes``
    (what a team edits in its stack file); returns the typed config and the raw overrides."""
    leader = cluster.nodes[0]
    overrides: dict[str, Any] = {
        "api": {"address": leader.api_addr},
        "cluster": {"replicas": REPLICAS},
    }
    secrets: dict[str, Any] = {}
    if stack == "prod":
        overrides["deploy"] = {"jwt": {"discoveryUrl": github.url, "github": {"repository": REPOSITORY}},
                               # OpenBao compares a list parameter only as a whole (README, where the servers
                               # differ): with the limit, the deployer could write no Kubernetes role there.
                               "limitRolePolicies": flavor != "openbao"}
        url = (f"postgresql://{{{{username}}}}:{{{{password}}}}@{database.host}:{database.port}/{database.dbname}"
               "?sslmode=verify-full")
        if flavor == "openbao":
            # OpenBao 2.7's PostgreSQL plugin ignores tls_ca: it gets the CA as a file of the URL too.
            url += f"&sslrootcert={database.tls_ca_file}"
        overrides["database"] = {"connections": [{
            "name": "app-postgres", "connectionUrl": url, "username": database.admin, "allowedRoles": ["myapp-db"],
            "verifyConnection": True, "tlsCa": database.tls_ca, "rotateRoot": True}]}
        secrets["databasePasswords"] = {"app-postgres": database.password}
        if pgp_keys is not None:
            overrides["init"] = {"shares": len(pgp_keys), "threshold": 2, "pgpKeys": pgp_keys}
    if changes:
        overrides = merge(overrides, changes)
        roles = (changes.get("database") or {}).get("roles")
        if roles and stack == "prod":
            # The team lists a new role on its connection too, as the config insists.
            overrides["database"]["connections"][0]["allowedRoles"] = [r["name"] for r in roles]
    raw, secret_keys = stack_config(stack, overrides, secrets or None)
    config = load_config(raw, set(secret_keys))
    # The audit volume's path (/vault/audit/, which the config insists on) becomes a file of the test.
    config = config.model_copy(update={"audit": config.audit.model_copy(update={"file_path": str(audit_log)})})
    return config, overrides


def program_for(config: PlatformConfig, cluster: RaftCluster, database: Database, bootstrap_only: bool = False):
    """The inline program: declare_vault_side under a VaultPlatform-typed parent named like the platform
    (``bootstrap_only``: what a first run has recorded when it dies right after the hand-over)."""
    leader = cluster.nodes[0]
    ca_pem = pathlib.Path(cluster.tls.ca_cert).read_text()
    unseal = [n.api_addr for n in cluster.nodes] if config.unseal.type == "shamir" else []

    def program() -> None:
        import pulumi

        undo_dynamic_provider_pickling_patch()
        from components.resources.platform import (
            VaultEndpoint,
            declare_vault_bootstrap,
            declare_vault_side,
            guard_against_destroy,
            teardown_options,
        )
        from components.resources.vault_configuration import DevPostgresConnection

        class Platform(pulumi.ComponentResource):
            def __init__(self, name: str):
                super().__init__(PLATFORM_TYPE, name, None, teardown_options(config, os.environ))

        parent = Platform(PLATFORM)
        if bootstrap_only:
            declare_vault_bootstrap(PLATFORM, config, VaultEndpoint(leader.api_addr, ca_pem, unseal), parent=parent)
            return
        dev_postgres = None
        if config.database.dev_postgres:
            dev_postgres = DevPostgresConnection(
                f"postgresql://{{{{username}}}}:{{{{password}}}}@{database.host}:{database.port}/{database.dbname}"
                "?sslmode=disable", pulumi.Output.secret(database.password))
        side = declare_vault_side(PLATFORM, config, VaultEndpoint(leader.api_addr, ca_pem, unseal), parent=parent,
                                  dev_postgres=dev_postgres)
        # As VaultPlatform does over everything it declares.
        guard_against_destroy(PLATFORM, parent, [c for c in (side.bootstrap, side.configuration) if c])
        pulumi.export("status", side.bootstrap.status)
        pulumi.export("rootToken", side.bootstrap.root_token)
        pulumi.export("unsealKeys", side.bootstrap.unseal_keys)
        if side.bootstrap.identity is not None:
            pulumi.export("rootTokenRevoked", side.bootstrap.identity.root_token_revoked)

    return program


@dataclass
class VaultSide:
    """One stack's Vault side under the engine: its project folder, cluster, GitHub and config."""

    name: str
    engine: Engine
    cluster: RaftCluster
    github: GithubActions
    config: PlatformConfig
    project: pathlib.Path
    audit_log: pathlib.Path
    database: Database
    stack: Any = None
    env: dict[str, str] = field(default_factory=dict)
    # The operators who hold the key shares (gpg, public keys), where the stack encrypts them.
    operators: Any = None
    pgp_keys: list[str] | None = None
    flavor: str = "vault"

    # --- how a run logs in ------------------------------------------------------------------------

    @contextlib.contextmanager
    def login(self, *, ci: str | None = None, vault_token: str | None = None, fresh_runner: bool = False,
              **claims: Any) -> Iterator[None]:
        """Run with this login environment: ``ci`` the role CI logs in as (deployer, previewer) with the job
        claims of that workflow unless ``claims`` change them; ``vault_token`` an operator's token;
        ``fresh_runner`` a checkout without the files of earlier runs (a new CI runner)."""
        saved = {k: os.environ.get(k) for k in LOGIN_ENV}
        job = (self.github.repository, self.github.ref, self.github.environment)
        try:
            for k in LOGIN_ENV:
                os.environ.pop(k, None)
            if fresh_runner:
                shutil.rmtree(self.project / ".vault-login", ignore_errors=True)
            if ci is not None:
                os.environ.update(self.github.runner_env())
                os.environ["VAULT_PLATFORM_VAULT_ROLE"] = ci
                environment = "production" if ci == "deployer" else "production-preview"
                ref = "refs/heads/main" if ci == "deployer" else "refs/pull/7/merge"
                self.github.repository = claims.get("repository", REPOSITORY)
                self.github.ref = claims.get("ref", ref)
                self.github.environment = claims.get("environment", environment)
            if vault_token is not None:
                os.environ["VAULT_TOKEN"] = vault_token
            yield
        finally:
            self.github.repository, self.github.ref, self.github.environment = job
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def program(self, bootstrap_only: bool = False):
        return program_for(self.config, self.cluster, self.database, bootstrap_only)

    def edited(self, changes: dict[str, Any]) -> Any:
        """The stack with its config edited by ``changes`` (select it, run, then use ``stack`` again)."""
        config, _ = config_for(self.name, self.cluster, self.github, self.audit_log, self.database,
                               self.pgp_keys, self.flavor, changes)
        return self.engine.stack(program_for(config, self.cluster, self.database), folder=self.name,
                                 stack_name=self.name)

    # --- what the engine stored -----------------------------------------------------------------

    def state(self, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "export", "--stack", f"organization/vault-platform/{self.name}"]
        if show_secrets:
            args.append("--show-secrets")
        return json.loads(self.engine.cli(*args, cwd=self.project).stdout)

    def denied(self) -> list[str]:
        """Every request Vault refused for lack of permission: "<policies> <operation> <path>"."""
        found = []
        for entry in self.audit_entries():
            if entry.get("type") == "response" and "permission denied" in str(entry.get("error", "")):
                request, auth = entry.get("request") or {}, entry.get("auth") or {}
                found.append(f"{','.join(auth.get('policies') or [])} {request.get('operation')} {request.get('path')}")
        return sorted(set(found))

    def requests_by(self, policy: str) -> list[tuple[str, str]]:
        """(operation, path) of every request made with a token holding ``policy``, as Vault audited it."""
        found = []
        for entry in self.audit_entries():
            if entry.get("type") == "request" and policy in ((entry.get("auth") or {}).get("policies") or []):
                request = entry.get("request") or {}
                found.append((str(request.get("operation")), str(request.get("path"))))
        return found

    def audit_entries(self) -> list[dict[str, Any]]:
        """Every request the servers audited (the file device the stack enabled)."""
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]


def start_vault_side(name: str, engine: Engine, plugin: pathlib.Path, vault_bin: pathlib.Path,
                     workdir: pathlib.Path, database: Database, *, pgp_keys: list[str] | None = None) -> VaultSide:
    """The cluster (three nodes; prod auto-unsealed through transit like KMS, dev Shamir), GitHub, the
    config, a project folder and a stack with the Vault plugin installed."""
    github = GithubActions(workdir, REPOSITORY)
    bundle = workdir / "trusted-cas.pem"
    bundle.write_text(pathlib.Path(github.tls.ca_cert).read_text())
    cluster = None
    try:
        # The pods' service account, as the chart mounts it: Vault reviews logins with these.
        service_account = workdir / "serviceaccount"
        service_account.mkdir()
        (service_account / "ca.crt").write_text(pathlib.Path(github.tls.ca_cert).read_text())
        (service_account / "token").write_text("service-account-token-of-the-vault-pods")
        (service_account / "namespace").write_text("vault")
        cluster = start_cluster(vault_bin, workdir / "cluster", replicas=REPLICAS, auto_unseal=name == "prod",
                                node_env={"SSL_CERT_FILE": str(bundle)}, service_account=service_account)
        audit_log = workdir / "audit" / "audit.log"
        audit_log.parent.mkdir(parents=True, exist_ok=True)
        config, _ = config_for(name, cluster, github, audit_log, database, pgp_keys, servers.flavor_of(vault_bin))
        # The engine's workspace: Pulumi runs the providers in it, and the program writes there.
        project = engine.root / name
        project.mkdir(parents=True, exist_ok=True)
        install_vault_plugin(engine, plugin)
        side = VaultSide(name, engine, cluster, github, config, project, audit_log, database, pgp_keys=pgp_keys,
                         flavor=servers.flavor_of(vault_bin))
        side.env = {"SSL_CERT_FILE": str(bundle), "VAULT_PLATFORM_WORKDIR": str(project)}
        os.environ.update(side.env)
        side.stack = engine.stack(side.program(), folder=name, stack_name=name)
        return side
    except Exception:
        if cluster is not None:
            cluster.stop()
        github.close()
        raise


def stop_vault_side(side: VaultSide) -> None:
    for k in side.env:
        os.environ.pop(k, None)
    side.cluster.stop()
    side.github.close()


def rule_matches(rule_path: str, path: str) -> bool:
    """Whether an ACL rule's path covers a request path (``*`` a trailing prefix, ``+`` one segment)."""
    prefix = rule_path.endswith("*")
    pattern = rule_path[:-1] if prefix else rule_path
    parts, given = pattern.split("/"), path.split("/")
    if prefix:
        given = given[:len(parts)]
        if len(given) < len(parts):
            return False
        head, last = parts[:-1], parts[-1]
        return all(p in ("+", g) for p, g in zip(head, given[:-1], strict=True)) and given[-1].startswith(last)
    return len(parts) == len(given) and all(p in ("+", g) for p, g in zip(parts, given, strict=True))


def unused_rules(rules: Iterable[Any], requests: Iterable[tuple[str, str]]) -> list[str]:
    """The rules of a policy that no request matched: granted, and never needed."""
    requests = list(requests)
    return [r.path for r in rules if "deny" not in r.capabilities
            and not any(rule_matches(r.path, path) for _op, path in requests)]
