"""VaultPlatform: the whole stack, wired in the order Vault needs it.

cluster (namespace, TLS, unseal, chart) -> bootstrap (init, unseal in dev, the Vault provider)
-> configuration (engines, auth, policies, audit, applications) -> backups.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.backup import RaftBackup
from components.bootstrap import VaultBootstrap
from components.cluster import VaultCluster
from components.config import PlatformConfig
from components.configuration import VaultConfiguration
from components.dev_postgres import DevPostgres


class VaultPlatform(pulumi.ComponentResource):
    exports: dict[str, pulumi.Input]

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:index:VaultPlatform", name, None, opts)
        self.k8s_provider = k8s.Provider(
            "k8s",
            context=config.kubernetes.context or None,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.aws_provider: aws.Provider | None = None
        if config.aws is not None:
            self.aws_provider = aws.Provider(
                "aws", region=config.aws.region,
                default_tags=aws.ProviderDefaultTagsArgs(tags={**dict(config.aws.tags), "managed-by": "pulumi"}),
                opts=pulumi.ResourceOptions(parent=self))
        providers = [p for p in (self.k8s_provider, self.aws_provider) if p is not None]
        child = pulumi.ResourceOptions(parent=self, providers=providers)

        self.cluster = VaultCluster(f"{name}-cluster", config, self.aws_provider, opts=child)
        self.bootstrap = VaultBootstrap(f"{name}-bootstrap", config, self.cluster, opts=child)

        self.dev_postgres: DevPostgres | None = None
        if config.database.dev_postgres:
            self.dev_postgres = DevPostgres(f"{name}-dev-postgres", config, self.cluster.namespace,
                                            opts=pulumi.ResourceOptions.merge(
                                                child, pulumi.ResourceOptions(depends_on=[self.cluster])))

        # A PGP-encrypted root token cannot configure anything: stop after init until the team
        # gives the stack a token of its own (docs/bootstrap-and-recovery.md).
        self.configure_vault = not (config.init.root_token_pgp_key and config.secrets.vault_token is None)
        if not self.configure_vault:
            pulumi.log.warn("init.rootTokenPgpKey is set and secrets.vaultToken is not: Vault is initialized but "
                            "not configured. Decrypt the root token, create an admin token, set it with `pulumi "
                            "config set --secret --path secrets.vaultToken` and run `pulumi up` again.", self)
            self._finish(config)
            return

        # Every Vault resource goes through the in-stack provider, and only after init.
        vault_child = pulumi.ResourceOptions(parent=self, providers=[*providers, self.bootstrap.provider],
                                             depends_on=[self.bootstrap])
        self.configuration = VaultConfiguration(f"{name}-config", config, self.bootstrap.provider,
                                                self.dev_postgres, opts=vault_child)
        self.backup: RaftBackup | None = None
        if config.backup.enabled:
            self.backup = RaftBackup(
                f"{name}-backup", config, self.cluster.namespace, self.bootstrap.provider,
                self.configuration.kubernetes_auth_path, self.aws_provider,
                opts=pulumi.ResourceOptions.merge(vault_child,
                                                  pulumi.ResourceOptions(depends_on=[self.configuration])))

        self._finish(config)

    def _finish(self, config: PlatformConfig) -> None:
        self.exports = {
            "namespace": self.cluster.namespace,
            "apiAddress": self.cluster.api_address,
            "caCertificate": self.cluster.ca_cert_pem,
            "rootToken": self.bootstrap.root_token,
            "unsealKeys": self.bootstrap.unseal_keys,
        }
        if self.cluster.unseal.kms_key is not None:
            self.exports["unsealKmsKeyArn"] = self.cluster.unseal.kms_key.arn
        if getattr(self, "backup", None) is not None:
            self.exports.update(self.backup.exports)
        self.register_outputs({})
