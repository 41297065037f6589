"""VaultBootstrap: initialize Vault in the same `pulumi up`, and build the in-stack Vault provider.

Initialization is two resources (components/providers/vault_init.py says why): VaultInit records
the root token and shares as soon as `sys/init` answers, then VaultReady unseals and waits for the
Raft voters. Every Vault configuration resource uses the provider made here, never a default one,
and the provider waits for VaultReady: on a first `pulumi preview` its address, CA and token are
still unknown, so Pulumi previews those resources without calling Vault; on `pulumi up` they wait
for an initialized, unsealed Vault.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_vault as vault

from components.model.checks import duration, duration_seconds
from components.model.limits import BOOTSTRAP_MARGIN_SECONDS
from components.providers.deploy_identity import DeployIdentity
from components.providers.vault_http import VaultHttp
from components.providers.vault_init import VaultInit, VaultReady
from components.resources.errors import InvalidInput

# Vault's CI login in the deploy workflows: the job's GitHub OIDC token (minted when needed, never in
# the state) and the role it logs in as (deployer, or previewer for previews).
JWT_ENV = "TERRAFORM_VAULT_AUTH_JWT"
ROLE_ENV = "VAULT_PLATFORM_VAULT_ROLE"

# Files the program writes for the Vault provider, relative to the project folder, where Pulumi runs
# the program and its providers: the provider's state names no checkout, and `pulumi refresh` or
# `destroy` work on any runner once they are there. Both folders are git-ignored.
#   .vault-ca/<stack>-ca.pem         the stack's CA (public)
#   .vault-login/<stack>.token       the token this run logs in with (mode 0600)
#   .vault-login/<stack>.first-run   the first run's deployer token, written by DeployIdentity
CA_DIR_NAME = ".vault-ca"
LOGIN_DIR_NAME = ".vault-login"
# Where those folders are when the program does not run in the project folder (the engine tests).
WORKDIR_ENV = "VAULT_PLATFORM_WORKDIR"


def ca_file_path(stack: str) -> str:
    return f"{CA_DIR_NAME}/{stack}-ca.pem"


def token_file_path(stack: str) -> str:
    return f"{LOGIN_DIR_NAME}/{stack}.token"


def first_run_file_path(stack: str) -> str:
    return f"{LOGIN_DIR_NAME}/{stack}.first-run"


def local_path(relative: str) -> Path:
    return Path(os.environ.get(WORKDIR_ENV) or Path.cwd()) / relative


def write_ca_file(stack: str, pem: str, directory: Path | None = None) -> str:
    """Write the stack's CA where the provider reads it. The CA certificate is public, so writing it to
    disk exposes nothing."""
    path = (directory / f"{stack}-ca.pem") if directory else local_path(ca_file_path(stack))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != pem:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(pem)
        os.replace(tmp, path)
    return str(path)


def write_token_file(path: Path, token: str) -> None:
    """Only this user may read it (the Vault provider refuses a token file others can read)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.replace(tmp, path)


@dataclass(frozen=True)
class LoginState:
    """What the stack knows when the Vault provider needs a token: its own token (the root token, or
    secrets.vaultToken), whether the root token was revoked, and until when the first run's deployer
    token lives."""

    address: str
    ca_cert_pem: str
    stack_token: str | None
    root_token_revoked: bool
    first_run_expires_at: int
    login_path: str
    login_audience: str


def provider_token(stack: str, state: LoginState, now: float) -> str:
    """Choose the Vault provider's token in the one login order (VaultHttp), write it to the run's token
    file and return the file's path (relative to the project folder, as the provider reads it).

    Candidates are checked with Vault only when there is a choice to make: a token Vault refuses is
    passed over; when Vault cannot be asked, the first is used and the provider reports what it says.
    """
    first_run = local_path(first_run_file_path(stack))
    props: dict[str, Any] = {"address": state.address, "ca_cert_pem": state.ca_cert_pem,
                             "login_path": state.login_path, "login_audience": state.login_audience}
    if state.first_run_expires_at - now > BOOTSTRAP_MARGIN_SECONDS and first_run.exists():
        props["token_file"] = str(first_run)
    if state.stack_token and not state.root_token_revoked:
        props["token"] = state.stack_token
    client = VaultHttp()
    candidates = client._login_candidates(props)
    if not candidates:
        raise RuntimeError(NO_LOGIN)
    tried: list[str] = []
    chosen = ""
    for what, get in candidates:
        client._login_problem = ""
        token = get()
        if not token:
            tried.append(f"{what} ({client._login_problem or 'empty'})")
            continue
        if len(candidates) == 1 or what.startswith("a CI login"):
            chosen = token
            break
        try:
            status, _ = client._call(props, "GET", "auth/token/lookup-self", token=token, timeout=10)
        except OSError:
            chosen = token  # Vault cannot be asked now: the provider will say what it answers
            break
        if status == 200:
            chosen = token
            break
        tried.append(f"{what} (refused: HTTP {status})")
    if not chosen:
        raise RuntimeError(f"{NO_LOGIN} Tried: {', '.join(tried)}.")
    write_token_file(local_path(token_file_path(stack)), chosen)
    return token_file_path(stack)


NO_LOGIN = (
    "the root token was revoked after the first deploy, and nothing here can log in to Vault: in CI the deploy "
    "workflow logs in with its GitHub OIDC token (permissions: id-token: write); from a laptop run `vault login "
    "-method=oidc` and export VAULT_TOKEN. Emergencies: docs/break-glass.md.")


@dataclass(frozen=True)
class VaultBootstrapArgs:
    """What initialization needs: where Vault answers (``address``), the CA its certificate chains to
    (``ca_cert_pem``), how the pods unseal, how many Raft voters to wait for (``expected_peers``) and
    the init settings (init.*)."""

    address: pulumi.Input[str]
    ca_cert_pem: pulumi.Input[str]
    # shamir: the stack unseals every pod (through ``unseal_addresses`` when given); auto: the seal does.
    mode: Literal["shamir", "auto"]
    expected_peers: int
    # Key shares (Shamir) or recovery shares (auto-unseal).
    shares: int = 5
    # Shares needed to unseal or to recover.
    threshold: int = 3
    # OpenPGP public keys (base64), one per share: the shares come back encrypted to them.
    pgp_keys: Sequence[str] = ()
    # An OpenPGP public key (base64) the root token comes back encrypted to; empty: in the clear.
    root_token_pgp_key: str = ""
    # How long init waits for the pods to answer and join (a duration: 10m, 1h).
    init_timeout: str = "10m"
    # The pods' own addresses, through which a shamir stack unseals each one (dev).
    unseal_addresses: Sequence[str] = ()
    # A token of your own (a secret) for a Vault initialized before, or after revoking the root token.
    existing_token: pulumi.Input[str] | None = None
    # Resources that must exist before Vault can answer at ``address`` (the cluster).
    wait_for: Sequence[pulumi.Resource] = ()
    # Who deploys once Vault is set up (deploy.*): None when the stack configures no deploy identity.
    identity: DeployIdentityArgs | None = None

    def __post_init__(self) -> None:
        problem = duration(self.init_timeout)
        if problem:
            raise InvalidInput("init_timeout", f"VaultBootstrapArgs: {self.init_timeout!r} {problem}")


@dataclass(frozen=True)
class DeployIdentityArgs:
    """The deploy identity's ``policies`` (name -> HCL), ``auths`` (auth methods,
    render.deploy_identity.auth_payload), the policy of the first run's token (``deployer_policy``),
    whether the root token goes once they exist (``revoke_root_token``), and how long the first run's
    deployer token lives (``bootstrap_ttl_seconds``)."""

    policies: Mapping[str, str]
    auths: Sequence[dict[str, Any]]
    deployer_policy: str
    revoke_root_token: bool
    bootstrap_ttl_seconds: int
    # The CI (jwt) login's path, "" without one, and the audience its tokens are minted for.
    ci_login_path: str = ""
    login_audience: str = ""
    # OIDC client secrets (secrets) per auth path.
    client_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # OIDC client secrets read when the identity is written, never held: auth path -> Secrets Manager ARN.
    client_secret_arns: Mapping[str, str] = field(default_factory=dict)


class VaultBootstrap(pulumi.ComponentResource):
    """Vault initialized, unsealed and ready in the same `pulumi up`, the deploy identity, and the Vault
    provider every configuration resource must use."""

    root_token: pulumi.Output[str]
    """The initial root token (secret; PGP-encrypted with init.rootTokenPgpKey)."""
    unseal_keys: pulumi.Output[list[str]]
    """The key shares, base64 (secret; PGP-encrypted with init.pgpKeys)."""
    status: pulumi.Output[str]
    """How far bootstrap got: ``ready`` once Vault is initialized, unsealed and every voter joined."""
    init: VaultInit
    """Runs sys/init once and records the root token and shares."""
    ready: VaultReady
    """Unseals (shamir) and waits for the Raft voters."""
    provider: vault.Provider | None
    """The in-stack Vault provider; None while there is no token to configure Vault with (a
    PGP-encrypted root token and no token of the stack's own)."""
    identity: DeployIdentity | None
    """The deploy identity (deploy.*): CI and operator logins, the first run's token, the root token's end."""
    revokes_root_token: bool
    """Whether this stack revokes the root token once the deploy identity exists."""
    login_path: str
    """The CI (jwt) login's auth path; empty without one."""
    login_audience: str
    """The audience the CI login's tokens are minted for."""
    token_file: pulumi.Output[str] | None
    """The file, relative to the project folder, holding the token this run's provider logs in with."""

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
        token = pulumi.Output.secret(existing) if existing is not None else self.root_token
        # A root token encrypted to an operator's PGP key is ciphertext, not a token: without a token of
        # the stack's own there is nothing to configure Vault with, so there is no provider either.
        self.provider = None
        self.identity = None
        self.revokes_root_token = False
        self.login_path = ""
        self.login_audience = ""
        self.token_file = None
        if existing is None and args.root_token_pgp_key:
            self.register_outputs({"root_token": self.root_token, "unseal_keys": self.unseal_keys,
                                   "status": self.status})
            return
        stack = pulumi.get_stack()
        identity = args.identity
        ready: list[pulumi.Resource] = [self.ready]
        revoked: pulumi.Input[bool] = False
        expires_at: pulumi.Input[int] = 0
        if identity is not None:
            self.revokes_root_token = identity.revoke_root_token and existing is None
            self.login_path, self.login_audience = identity.ci_login_path, identity.login_audience
            self.identity = DeployIdentity(
                f"{name}-identity", address=args.address, ca_cert_pem=args.ca_cert_pem, token=token,
                policies=dict(identity.policies), auths=list(identity.auths),
                client_secrets={path: pulumi.Output.secret(secret) for path, secret in identity.client_secrets.items()},
                client_secret_arns=dict(identity.client_secret_arns),
                deployer_policy=identity.deployer_policy, revoke_root_token=self.revokes_root_token,
                bootstrap_ttl_seconds=identity.bootstrap_ttl_seconds, login_path=identity.ci_login_path,
                login_audience=identity.login_audience, first_run_file=first_run_file_path(stack),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ready]))
            ready.append(self.identity)
            revoked, expires_at = self.identity.root_token_revoked, self.identity.bootstrap_expires_at
        # The files are written before the provider starts: the provider waits for these outputs.
        ca_file = pulumi.Output.from_input(args.ca_cert_pem).apply(
            lambda pem: (write_ca_file(stack, pem), ca_file_path(stack))[1])
        login_path, audience = self.login_path, self.login_audience
        # A file name: not secret, though it is made from the token (which makes Pulumi mark it).
        self.token_file = pulumi.Output.unsecret(pulumi.Output.all(
            address=args.address, ca_cert_pem=args.ca_cert_pem, token=token, revoked=revoked,
            expires_at=expires_at).apply(
            lambda v: provider_token(stack, LoginState(
                address=v["address"], ca_cert_pem=v["ca_cert_pem"], stack_token=v["token"],
                root_token_revoked=bool(v["revoked"]), first_run_expires_at=int(v["expires_at"] or 0),
                login_path=login_path, login_audience=audience),
                time.time())))
        self.provider = vault.Provider(
            f"{name}-vault",
            address=args.address,
            # A file, not a token: whichever way this run logged in (CI, VAULT_TOKEN, the first run's
            # token), the provider's inputs and the state stay the same and hold no credential.
            auth_login_token_file=vault.ProviderAuthLoginTokenFileArgs(filename=self.token_file),
            # The deployer may not create child tokens, and the tokens used here are short-lived anyway.
            skip_child_token=True,
            # Relative to the project folder, where Pulumi runs the provider: the same on every
            # checkout and runner (`make ca-file` writes it from the stack output before a refresh).
            ca_cert_file=ca_file,
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )
        self.register_outputs({"root_token": self.root_token, "unseal_keys": self.unseal_keys,
                               "status": self.status})


def initialize(name: str, args: VaultBootstrapArgs, parent: pulumi.Resource) -> tuple[VaultInit, VaultReady]:
    """VaultInit then VaultReady, children of ``parent``: what VaultBootstrap declares before the provider.

    Separate so that a program without the Vault provider plugin (the engine tests) declares
    exactly the same two resources.
    """
    existing = args.existing_token
    timeout_seconds = int(duration_seconds(args.init_timeout))
    vault_init = VaultInit(
        f"{name}-init",
        address=args.address,
        ca_cert_pem=args.ca_cert_pem,
        mode=args.mode,
        shares=args.shares,
        threshold=args.threshold,
        pgp_keys=list(args.pgp_keys),
        root_token_pgp_key=args.root_token_pgp_key,
        unseal_addresses=list(args.unseal_addresses),
        expected_peers=args.expected_peers,
        timeout_seconds=timeout_seconds,
        existing_token=pulumi.Output.secret(existing) if existing is not None else None,
        # The release and the Services must exist (and pods be Ready) before init can reach them.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(args.wait_for)),
    )
    ready = VaultReady(
        f"{name}-ready",
        address=args.address,
        ca_cert_pem=args.ca_cert_pem,
        mode=args.mode,
        threshold=args.threshold,
        unseal_addresses=list(args.unseal_addresses),
        expected_peers=args.expected_peers,
        timeout_seconds=timeout_seconds,
        # Teams that revoked the root token read the Raft configuration with their own token.
        token=pulumi.Output.secret(existing) if existing is not None else vault_init.root_token,
        keys=vault_init.keys,
        token_encrypted=bool(args.root_token_pgp_key) and existing is None,
        keys_encrypted=bool(args.pgp_keys),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[vault_init]),
    )
    return vault_init, ready
