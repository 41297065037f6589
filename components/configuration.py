"""Placeholder: replaced by the VaultConfiguration component."""
import pulumi


class VaultConfiguration(pulumi.ComponentResource):
    def __init__(self, name, config, provider, dev_postgres=None, opts=None):
        super().__init__("vault-platform:configuration:VaultConfiguration", name, None, opts)
        self.kubernetes_auth_path = pulumi.Output.from_input(config.kubernetes_auth.path)
        self.register_outputs({})
