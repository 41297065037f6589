"""vault-platform: a production Vault on Kubernetes from one `pulumi up` per stack."""

import os

import pulumi

from components.resources.platform import VaultPlatform, teardown_options
from components.resources.stack_config import load_from_pulumi

config = load_from_pulumi()
platform = VaultPlatform("vault", config, opts=teardown_options(config, os.environ))

for name, value in platform.exports.items():
    pulumi.export(name, value)
