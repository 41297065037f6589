"""Placeholder: replaced by the DevPostgres component."""
import pulumi


class DevPostgres(pulumi.ComponentResource):
    def __init__(self, name, config, namespace, opts=None):
        super().__init__("vault-platform:devpostgres:DevPostgres", name, None, opts)
        self.register_outputs({})
