"""vault-platform: a production Vault on Kubernetes from one `pulumi up` per stack."""

import pulumi

from components.model import load_from_pulumi
from components.resources.platform import VaultPlatform

config = load_from_pulumi()
platform = VaultPlatform("vault", config)

for name, value in platform.exports.items():
    pulumi.export(name, value)
