"""VaultBootstrap: initialize Vault in the same `pulumi up`, and build the in-stack Vault provider.

Initialization is two resources (components/providers/vault_init.py says why): VaultInit records
the root token and shares as soon as `sys/init` answers, then VaultReady unseals and waits for the
Raft voters. Every Vault configuration resource uses the provider made here, never a default one,
and the provider waits for VaultReady: on a first `pulumi preview` its address, CA and token are
still unknown, so Pulumi previews those resources without calling Vault; on `pulumi up` they wait
for an initialized, unsealed Vault.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_vault as vault

from components.model import InitConfig, Secret
from components.model.checks import duration_seconds
from components.model.limits import BOOTSTRAP_MARGIN_SECONDS
from components.providers.deploy_identity import DeployIdentity
from components.providers.vault_init import VaultInit, VaultReady

# Vault's CI login in the deploy workflows: the GitHub OIDC token, read by the Vault provider itself
# (it never enters the state), and which role it logs in as (deployer, or previewer for previews).
JWT_ENV = "TERRAFORM_VAULT_AUTH_JWT"
ROLE_ENV = "VAULT_PLATFORM_VAULT_ROLE"

# The Vault provider reads its CA from this folder of the project (git-ignored). Pulumi runs the
# program and its providers in the project folder, so the path is relative: the provider's state
# names no checkout, and `pulumi refresh`/`destroy` work on any runner once the file is there.
CA_DIR_NAME = ".vault-ca"


def ca_file_path(stack: str) -> str:
    return f"{CA_DIR_NAME}/{stack}-ca.pem"


def write_ca_file(stack: str, pem: str, directory: Path | None = None) -> str:
    """Write the stack's CA where the provider reads it (VAULT_PLATFORM_CA_DIR moves it; the tests use a
    temporary one). The CA certificate is public, so writing it to disk exposes nothing."""
    directory = directory or Path(os.environ.get("VAULT_PLATFORM_CA_DIR") or Path.cwd() / CA_DIR_NAME)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stack}-ca.pem"
    if not path.exists() or path.read_text() != pem:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(pem)
        os.replace(tmp, path)
    return str(path)


@dataclass(frozen=True)
class VaultBootstrapArgs:
    """What initialization needs: where Vault answers, the CA its certificate chains to, the init
    settings, and how the pods unseal."""

    address: pulumi.Input[str]
    ca_cert_pem: pulumi.Input[str]
    # shamir: the stack unseals every pod (through ``unseal_addresses`` when given); auto: the seal does.
    mode: Literal["shamir", "auto"]
    expected_peers: int
    init: InitConfig = field(default_factory=InitConfig)
    unseal_addresses: Sequence[str] = ()
    # A token of your own for a Vault initialized before (or after revoking the root token).
    existing_token: Secret | None = None
    # Resources that must exist before Vault can answer at ``address`` (the cluster).
    wait_for: Sequence[pulumi.Resource] = ()
    # Who deploys once Vault is set up (deploy.*): None when the stack configures no deploy identity.
    identity: DeployIdentityArgs | None = None


@dataclass(frozen=True)
class DeployIdentityArgs:
    """The deploy identity's policies (name -> HCL), auth methods (render.deploy_identity.auth_payload),
    the OIDC client secrets per auth path, and whether the root token goes once they exist."""

    policies: Mapping[str, str]
    auths: Sequence[dict[str, Any]]
    deployer_policy: str
    revoke_root_token: bool
    bootstrap_ttl_seconds: int
    # The CI (jwt) login's path, "" without one.
    ci_login_path: str = ""
    client_secrets: Mapping[str, Secret] = field(default_factory=dict)


def provider_login(bootstrap_token: str | None, expires_at: int | None, ci_login_path: str, now: float,
                   env: Mapping[str, str]) -> dict[str, Any]:
    """How the Vault provider logs in once the root token is revoked: ``{"token", "jwt"}``.

    The first run finishes with its short-lived deployer token. Later runs: in CI, the workflow's
    OIDC token (JWT_ENV) through the CI login; elsewhere VAULT_TOKEN, which the provider reads by
    itself (`vault login -method=oidc`). Neither in the state: refresh and destroy re-run the
    program (`--run-program`) to log in the same way.
    """
    if bootstrap_token and (expires_at or 0) - now > BOOTSTRAP_MARGIN_SECONDS:
        return {"token": bootstrap_token, "jwt": None}
    if env.get(JWT_ENV) and ci_login_path:
        return {"token": None, "jwt": {"mount": ci_login_path, "role": env.get(ROLE_ENV) or "deployer"}}
    if env.get("VAULT_TOKEN"):
        return {"token": None, "jwt": None}
    raise RuntimeError(
        "the root token was revoked after the first deploy, and nothing here can log in to Vault: in CI the "
        f"deploy workflow sets {JWT_ENV} (its GitHub OIDC token); from a laptop run `vault login -method=oidc` "
        "and export VAULT_TOKEN. Emergencies: docs/break-glass.md.")


class VaultBootstrap(pulumi.ComponentResource):
    """Outputs: ``root_token`` and ``unseal_keys`` (secret), ``status``; attribute ``provider`` (the
    Vault provider every configuration resource must use)."""

    def __init__(self, name: str, args: VaultBootstrapArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:bootstrap:VaultBootstrap", name, None, opts)
        existing = args.existing_token
        self.init, self.ready = initialize(name, args, self)
        self.root_token = pulumi.Output.secret(self.init.root_token)
        self.unseal_keys = pulumi.Output.secret(self.init.keys_base64)
        self.status = self.ready.status
        self.status.apply(lambda s: pulumi.log.warn(
            f"Vault bootstrap is not finished: {s}. Run `pulumi up` again once the cause is fixed.", self)
            if s and s != "ready" and not s.startswith("initialized") else None)

        # Teams that revoked the root token themselves configure Vault with their own token instead.
        token = existing.output() if existing else self.root_token
        self.token = pulumi.Output.secret(token)
        # A root token encrypted to an operator's PGP key is ciphertext, not a token: without a token of
        # the stack's own there is nothing to configure Vault with, so there is no provider either.
        self.provider: vault.Provider | None = None
        self.identity: DeployIdentity | None = None
        self.revokes_root_token = False
        if not existing and args.init.root_token_pgp_key:
            self.register_outputs({"root_token": self.root_token, "unseal_keys": self.unseal_keys,
                                   "status": self.status})
            return
        identity = args.identity
        ready: list[pulumi.Resource] = [self.ready]
        login: dict[str, Any] = {"token": token, "jwt": None, "skip_child_token": False}
        if identity is not None:
            self.revokes_root_token = identity.revoke_root_token and existing is None
            self.identity = DeployIdentity(
                f"{name}-identity", address=args.address, ca_cert_pem=args.ca_cert_pem, token=token,
                policies=dict(identity.policies), auths=list(identity.auths),
                client_secrets={path: secret.output() for path, secret in identity.client_secrets.items()},
                deployer_policy=identity.deployer_policy, revoke_root_token=self.revokes_root_token,
                bootstrap_ttl_seconds=identity.bootstrap_ttl_seconds, login_path=identity.ci_login_path,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ready]))
            ready.append(self.identity)
            if self.revokes_root_token:
                path = identity.ci_login_path
                choice = pulumi.Output.all(self.identity.bootstrap_token, self.identity.bootstrap_expires_at).apply(
                    lambda v: provider_login(v[0], v[1], path, time.time(), os.environ))
                # Short-lived tokens of their own: no child token (the deployer may not create one).
                login = {"token": pulumi.Output.secret(choice.apply(lambda c: c["token"])),
                         "jwt": choice.apply(lambda c: c["jwt"]), "skip_child_token": True}
                # What the stack's own dynamic resources (database leases) reach Vault with.
                self.token = pulumi.Output.secret(self.identity.bootstrap_token)
        stack = pulumi.get_stack()
        # The file is written before the provider starts: the provider waits for this output.
        ca_file = pulumi.Output.from_input(args.ca_cert_pem).apply(
            lambda pem: (write_ca_file(stack, pem), ca_file_path(stack))[1])
        self.provider = vault.Provider(
            f"{name}-vault",
            address=args.address,
            token=login["token"],
            auth_login_jwt=login["jwt"],
            skip_child_token=login["skip_child_token"],
            # Relative to the project folder, where Pulumi runs the provider: the same on every
            # checkout and runner (`make ca-file` writes it from the stack output before a refresh).
            ca_cert_file=ca_file,
            # Each run works with a short-lived child token, not the stored one itself.
            max_lease_ttl_seconds=1800,
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )
        self.register_outputs({"root_token": self.root_token, "unseal_keys": self.unseal_keys,
                               "status": self.status})


def initialize(name: str, args: VaultBootstrapArgs, parent: pulumi.Resource) -> tuple[VaultInit, VaultReady]:
    """VaultInit then VaultReady, children of ``parent``: what VaultBootstrap declares before the provider.

    Separate so that a program without the Vault provider plugin (the engine tests) declares
    exactly the same two resources.
    """
    init = args.init
    existing = args.existing_token
    timeout_seconds = int(duration_seconds(init.timeout))
    vault_init = VaultInit(
        f"{name}-init",
        address=args.address,
        ca_cert_pem=args.ca_cert_pem,
        mode=args.mode,
        shares=init.shares,
        threshold=init.threshold,
        pgp_keys=list(init.pgp_keys),
        root_token_pgp_key=init.root_token_pgp_key,
        unseal_addresses=list(args.unseal_addresses),
        expected_peers=args.expected_peers,
        timeout_seconds=timeout_seconds,
        existing_token=existing.output() if existing else None,
        # The release and the Services must exist (and pods be Ready) before init can reach them.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(args.wait_for)),
    )
    ready = VaultReady(
        f"{name}-ready",
        address=args.address,
        ca_cert_pem=args.ca_cert_pem,
        mode=args.mode,
        threshold=init.threshold,
        unseal_addresses=list(args.unseal_addresses),
        expected_peers=args.expected_peers,
        timeout_seconds=timeout_seconds,
        # Teams that revoked the root token read the Raft configuration with their own token.
        token=existing.output() if existing else vault_init.root_token,
        keys=vault_init.keys,
        token_encrypted=bool(init.root_token_pgp_key) and existing is None,
        keys_encrypted=bool(init.pgp_keys),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[vault_init]),
    )
    return vault_init, ready
