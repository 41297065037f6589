"""Placeholder until VaultInit lands: the in-stack Vault provider from a configured token."""
import pulumi
import pulumi_vault as vault


class VaultBootstrap(pulumi.ComponentResource):
    def __init__(self, name, config, cluster, opts=None):
        super().__init__("vault-platform:bootstrap:VaultBootstrap", name, None, opts)
        self.root_token = pulumi.Output.secret("placeholder")
        self.unseal_keys = pulumi.Output.secret([])
        self.provider = vault.Provider(f"{name}-vault", address=config.api.address,
                                       token=self.root_token, ca_cert_file=None,
                                       opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
