"""vault-platform's program, one folder per layer; a module imports only from its own layer or below:

model      the typed stack config and its rules (the product's interface)
render     pure builders: Helm values, server HCL, policies, Vault objects, manifests, IAM documents
providers  dynamic providers (VaultInit), stored in Pulumi state
resources  ComponentResources that only declare resources, each with its own Args

The package's public names are importable from here (``from components import VaultCluster``);
each is loaded on first use, so a tool that needs only the config model does not import the
providers' SDKs.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.9.0"

# public name -> the module that defines it
_PUBLIC = {
    # the stack config
    "PlatformConfig": "components.model", "ConfigError": "components.model", "load_config": "components.model",
    "ApiConfig": "components.model", "UnsealConfig": "components.model", "ClusterConfig": "components.model",
    "InitConfig": "components.model", "TlsConfig": "components.model", "AwsConfig": "components.model",
    "Resources": "components.model.platform", "ResourceAmounts": "components.model.platform",
    "Rollout": "components.model.platform",
    # the whole platform from a stack config
    "VaultPlatform": "components.resources.platform",
    "load_from_pulumi": "components.resources.stack_config", "StackConfigError": "components.resources.stack_config",
    # the plans the components are made from, built from config sections by the pure builders
    "ClusterPlan": "components.render.cluster_plan", "cluster_plan": "components.render.cluster_plan",
    "AwsAccount": "components.render.iam",
    # components with their own Args, for programs that compose them in code
    "VaultCluster": "components.resources.cluster", "VaultClusterArgs": "components.resources.cluster",
    "VaultBootstrap": "components.resources.bootstrap", "VaultBootstrapArgs": "components.resources.bootstrap",
    "DeployIdentityArgs": "components.resources.bootstrap",
    "VaultConfiguration": "components.resources.vault_configuration",
    "VaultConfigurationArgs": "components.resources.vault_configuration",
    "RaftBackup": "components.resources.backup", "RaftBackupArgs": "components.resources.backup",
    "VaultMonitoring": "components.resources.monitoring", "VaultMonitoringArgs": "components.resources.monitoring",
    "ExternalSecrets": "components.resources.external_secrets",
    "ExternalSecretsArgs": "components.resources.external_secrets",
    "CertManagerIssuer": "components.resources.cert_manager",
    "CertManagerIssuerArgs": "components.resources.cert_manager",
    "AwsSecretsManagerStore": "components.resources.aws_secret_store",
    "AwsSecretsManagerStoreArgs": "components.resources.aws_secret_store",
    "ApplicationNamespaces": "components.resources.applications",
    "ApplicationNamespacesArgs": "components.resources.applications",
    "InvalidInput": "components.resources.errors",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
