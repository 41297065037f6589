"""ComponentResources: each declares resources from its own Args and nothing else, parents its
children and registers its outputs. ``VaultPlatform`` maps the stack config onto them."""
