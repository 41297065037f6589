"""vault-platform's program, one folder per layer; a module imports only from its own layer or below:

model      the typed stack config and its rules (the product's interface)
render     pure builders: Helm values, server HCL, policies, Vault objects, manifests, IAM documents
providers  dynamic providers (VaultInit), stored in Pulumi state
resources  ComponentResources that only declare resources, each with its own Args
"""
