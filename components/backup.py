"""Placeholder: replaced by the RaftBackup component."""
import pulumi


class RaftBackup(pulumi.ComponentResource):
    def __init__(self, name, config, namespace, vault_provider, kubernetes_auth_path, aws_provider=None, opts=None):
        super().__init__("vault-platform:backup:RaftBackup", name, None, opts)
        self.exports = {}
        self.register_outputs({})
