"""Where VaultInit's provider lived before the code was split into layers.

Stacks deployed before then store the provider in their state by reference to
``components.vault_init.VaultInitProvider``; `pulumi refresh` and `pulumi destroy` load it from
that path without running the program. Keep this module as long as such states may exist.
"""

from components.providers.vault_init import SECRET_OUTPUTS, VaultInit, VaultInitError, VaultInitProvider

__all__ = ["SECRET_OUTPUTS", "VaultInit", "VaultInitError", "VaultInitProvider"]
