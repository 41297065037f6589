"""The stack config: the product's interface, typed, described, validated once at start.

    config = load_config(raw, secret_keys)  # plain data in, a validated PlatformConfig out
    # the program reads the runtime's config with components.resources.stack_config.load_from_pulumi

Layers: ``checks`` (value rules) -> ``types`` (Section, Secret, annotated field types) ->
``platform`` (every section and PlatformConfig) -> ``rules`` (rules across settings) -> ``load``.
"""

from components.model.load import load_config
from components.model.platform import (
    SECRET_KEYS,
    TOP_LEVEL_KEYS,
    ApiConfig,
    Application,
    AuditConfig,
    AwsConfig,
    AwsSecretsManagerStoreConfig,
    BackupConfig,
    CertManagerConfig,
    ClusterConfig,
    DatabaseConfig,
    DeliveredSecret,
    ExternalSecretsConfig,
    InitConfig,
    Injector,
    KubernetesAuthConfig,
    KvConfig,
    MigrationConfig,
    PkiConfig,
    PlatformConfig,
    Resources,
    TlsConfig,
    TransitEngineConfig,
    UnsealConfig,
)
from components.model.problems import ConfigError, Problems
from components.model.types import Secret

__all__ = [
    "SECRET_KEYS",
    "TOP_LEVEL_KEYS",
    "ApiConfig",
    "Application",
    "AuditConfig",
    "AwsConfig",
    "AwsSecretsManagerStoreConfig",
    "BackupConfig",
    "CertManagerConfig",
    "ClusterConfig",
    "ConfigError",
    "DatabaseConfig",
    "DeliveredSecret",
    "ExternalSecretsConfig",
    "InitConfig",
    "Injector",
    "KubernetesAuthConfig",
    "KvConfig",
    "MigrationConfig",
    "PkiConfig",
    "PlatformConfig",
    "Problems",
    "Resources",
    "Secret",
    "TlsConfig",
    "TransitEngineConfig",
    "UnsealConfig",
    "load_config",
]
