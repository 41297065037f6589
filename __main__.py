"""vault-platform: a production Vault on Kubernetes from one `pulumi up` per stack."""

import os

import pulumi

from components.model import load_from_pulumi
from components.resources.platform import VaultPlatform, teardown_options

config = load_from_pulumi()
platform = VaultPlatform("vault", config, opts=teardown_options(config, os.environ))

for name, value in platform.exports.items():
    pulumi.export(name, value)
