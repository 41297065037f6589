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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_vault as vault

from components.model import InitConfig, Secret
from components.model.checks import duration_seconds
from components.providers.vault_init import VaultInit, VaultReady

# Next to the program by default; VAULT_PLATFORM_CA_DIR moves it (the tests use a temporary one).
CA_DIR = Path(os.environ.get("VAULT_PLATFORM_CA_DIR") or Path(__file__).resolve().parents[2] / ".vault-ca")


def write_ca_file(stack: str, pem: str, directory: Path = CA_DIR) -> str:
    """The Vault provider reads its CA from a file; keep one per stack next to the program (git-ignored).

    The CA certificate is public, so writing it to disk exposes nothing.
    """
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

        # Teams that revoked the root token configure Vault with their own token instead.
        token = existing.output() if existing else self.root_token
        self.token = pulumi.Output.secret(token)
        # A root token encrypted to an operator's PGP key is ciphertext, not a token: without a token of
        # the stack's own there is nothing to configure Vault with, so there is no provider either.
        self.provider: vault.Provider | None = None
        if existing or not args.init.root_token_pgp_key:
            stack = pulumi.get_stack()
            ca_file = pulumi.Output.from_input(args.ca_cert_pem).apply(lambda pem: write_ca_file(stack, pem))
            self.provider = vault.Provider(
                f"{name}-vault",
                address=args.address,
                token=token,
                ca_cert_file=ca_file,
                # Each run works with a short-lived child token, not the stored one itself.
                max_lease_ttl_seconds=1800,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ready]),
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
