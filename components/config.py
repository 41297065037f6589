"""The stack config model: every setting the program reads, typed, defaulted and validated once.

The stack YAML is the product's interface. Each top-level key below is one ``vault-platform:<key>``
in a stack file; ``load_config`` turns the raw strings Pulumi hands us into a frozen
``PlatformConfig`` or raises one ``ConfigError`` that lists every problem. Nothing downstream reads
raw config.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.validation import (
    PROJECT,
    Problems,
    Secret,
    at_least,
    between,
    cron,
    dns_label,
    dns_name,
    doc,
    duration,
    duration_seconds,
    each,
    https_url,
    one_of,
    parse,
    quantity,
    quantity_value,
    stack_key,
)

# Vault's fixed capability set; anything else in a policy is a typo that Vault would silently keep.
CAPABILITIES = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover")


def _pem_or_empty(value: str) -> str | None:
    if value == "" or "-----BEGIN CERTIFICATE-----" in value:
        return None
    return "is not a PEM certificate (it must contain -----BEGIN CERTIFICATE-----)"


def _vault_path(value: str) -> str | None:
    # Mount and policy paths: segments of letters, digits, - _ . + and {{...}} templates; an optional
    # trailing * or a + wildcard segment. No leading slash, no empty segments, no spaces.
    if re.match(r"^(?!/)([A-Za-z0-9_.\-+*]|\{\{[^}]+\}\})+(/([A-Za-z0-9_.\-+*]|\{\{[^}]+\}\})*)*$", value) \
            and "//" not in value and "*" not in value[:-1]:
        return None
    return ("is not a valid Vault path (segments of letters, digits, '-', '_', '.', '+' or {{identity "
            "templates}} separated by '/', no leading '/', '*' only at the end)")


def _mount(value: str) -> str | None:
    if re.match(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$", value):
        return None
    return "is not a valid mount path (letters, digits, '-' and '_' segments, no leading or trailing '/')"


def _k8s_sa_name(value: str) -> str | None:
    return dns_name(value) if "*" not in value else "must name one service account, not a wildcard"


# --- cluster -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResourceAmounts:
    memory: str = doc("Memory, a Kubernetes quantity.", check=quantity, default="256Mi")
    cpu: str = doc("CPU, a Kubernetes quantity.", check=quantity, default="250m")


@dataclass(frozen=True)
class Resources:
    requests: ResourceAmounts = doc("What the scheduler reserves for each pod.", factory=ResourceAmounts)
    limits: ResourceAmounts = doc("The most each pod may use.",
                                  factory=lambda: ResourceAmounts(memory="512Mi", cpu="500m"))


@dataclass(frozen=True)
class Storage:
    size: str = doc("Volume size per pod, a Kubernetes quantity.", check=quantity, default="10Gi")
    storage_class: str | None = doc("StorageClass; empty uses the cluster default.", default=None)


@dataclass(frozen=True)
class Chart:
    version: str = doc("Version of the hashicorp/vault Helm chart.", default="0.34.1")
    repository: str = doc("Helm repository holding the chart.", check=https_url,
                          default="https://helm.releases.hashicorp.com")


@dataclass(frozen=True)
class Image:
    repository: str = doc("Vault server image.", default="hashicorp/vault")
    tag: str = doc("Vault server image tag; pin it, never 'latest'.", default="2.0.4",
                   check=lambda v: "is not a pinned tag" if v in ("", "latest") else None)


@dataclass(frozen=True)
class Injector:
    enabled: bool = doc("Run the Vault Agent Injector (sidecars that render secrets into pods).", default=True)
    resources: Resources = doc("Injector pod resources.", factory=lambda: Resources(
        requests=ResourceAmounts(memory="64Mi", cpu="50m"), limits=ResourceAmounts(memory="128Mi", cpu="100m")))


@dataclass(frozen=True)
class ClusterConfig:
    release_name: str = doc("Helm release name; prefixes every pod and Service.", check=dns_label,
                            default="vault")
    chart: Chart = doc("Which chart to install.", factory=Chart)
    image: Image = doc("Which Vault server image to run.", factory=Image)
    replicas: int | None = doc("Vault server pods in the Raft cluster; odd, so a quorum survives a loss. "
                                  "Defaults to 5 in prod and 3 in dev.", default=None)
    resources: Resources = doc("Server pod resources.", factory=Resources)
    data_storage: Storage = doc("Raft data volume per pod.", factory=Storage)
    audit_storage: Storage = doc("Audit log volume per pod.", factory=Storage)
    zone_spread: bool | None = doc("Spread pods across zones (topologySpreadConstraints). "
                                      "Defaults to true in prod, false in dev.", default=None)
    injector: Injector = doc("Vault Agent Injector.", factory=Injector)
    ui: bool = doc("Serve the web UI.", default=True)
    service_monitor: bool = doc("Create a Prometheus Operator ServiceMonitor (needs its CRDs).", default=False)
    log_level: str = doc("Server log level.", check=one_of("trace", "debug", "info", "warn", "error"),
                         default="info")
    await_timeout: str = doc("How long `pulumi up` waits for the release to be ready.", check=duration,
                             default="10m")


# --- API reachability ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ApiConfig:
    address: str = doc("HTTPS address at which the machine running `pulumi up` reaches the Vault API "
                       "(dev: the NodePort on localhost; prod: an internal load balancer or ingress).",
                       check=https_url)
    service_type: str = doc("How the API Service (in front of every server pod) is exposed: NodePort (dev "
                            "kind cluster), LoadBalancer (internal NLB in prod) or ClusterIP (you bring an ingress).",
                            check=one_of("NodePort", "LoadBalancer", "ClusterIP"), default="ClusterIP")
    node_port: int | None = doc("NodePort of the API Service (30000-32767); pod i gets nodePort+1+i. "
                                   "Must match kind/dev-cluster.yaml.", check=between(30000, 32767), default=None)
    internal_load_balancer: bool = doc("Annotate the LoadBalancer as internal (AWS), never internet-facing.",
                                       default=True)


# --- TLS -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TlsConfig:
    source: str = doc("'generated': an internal CA and server certificate made by the stack; "
                      "'existingSecret': a kubernetes.io/tls Secret you manage (with ca.crt).",
                      check=one_of("generated", "existingSecret"), default="generated")
    existing_secret: str | None = doc("Name of that Secret in the Vault namespace.", check=dns_name,
                                         default=None)
    existing_ca_cert: str = doc("PEM of the CA that signed the existing Secret's certificate.",
                                check=_pem_or_empty, default="")
    extra_dns_names: list[str] = doc("More DNS names for the server certificate (e.g. the prod load "
                                     "balancer's name).", check=each(dns_name), factory=tuple)
    validity: str = doc("Server certificate lifetime.", check=duration, default="8760h")
    ca_validity: str = doc("Internal CA lifetime.", check=duration, default="87600h")
    organization: str = doc("Organization in the certificate subjects.", default="vault-platform")


# --- unseal --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AwsKmsUnseal:
    deletion_window_days: int = doc("Days AWS waits before deleting the key once scheduled.",
                                    check=between(7, 30), default=30)
    alias: str = doc("KMS alias name (without 'alias/'); empty derives one from the stack.", default="")


@dataclass(frozen=True)
class TransitUnseal:
    address: str = doc("HTTPS address of the Vault that holds the transit key.", check=https_url)
    key_name: str = doc("Transit key name.", check=dns_name)
    mount_path: str = doc("Transit mount on that Vault.", check=_mount, default="transit")
    ca_cert: str = doc("PEM of the CA for that Vault's certificate; empty trusts the system roots.",
                       check=_pem_or_empty, default="")
    tls_server_name: str = doc("Server name to verify on that Vault's certificate.", default="")


@dataclass(frozen=True)
class UnsealConfig:
    type: str = doc("'awskms' (AWS KMS key made by the stack), 'transit' (another Vault) or "
                    "'shamir' (key shares; dev only).", check=one_of("awskms", "transit", "shamir"))
    awskms: AwsKmsUnseal = doc("Settings for type awskms.", factory=AwsKmsUnseal)
    transit: TransitUnseal | None = doc("Settings for type transit (required for it).", default=None)


# --- initialization ------------------------------------------------------------------------------

@dataclass(frozen=True)
class InitConfig:
    shares: int = doc("Key shares (Shamir) or recovery shares (auto-unseal).", check=between(1, 10), default=5)
    threshold: int = doc("Shares needed to unseal or to recover.", check=between(1, 10), default=3)
    pgp_keys: list[str] = doc("Base64 PGP public keys, one per share: each share is encrypted to one.",
                              factory=tuple)
    root_token_pgp_key: str = doc("Base64 PGP public key to encrypt the root token to.", default="")
    timeout: str = doc("How long init waits for the pods to answer and join.", check=duration, default="10m")


# --- AWS -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AwsConfig:
    region: str = doc("AWS region of the cluster, key and bucket.",
                      check=lambda v: None if re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", v)
                      else "is not an AWS region (e.g. eu-west-1)")
    oidc_provider_arn: str = doc("ARN of the EKS cluster's IAM OIDC provider (IRSA trusts it).",
                                 check=lambda v: None if re.match(r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/.+", v)
                                 else "is not an IAM OIDC provider ARN")
    oidc_issuer: str = doc("The cluster's OIDC issuer without https:// "
                           "(oidc.eks.<region>.amazonaws.com/id/<ID>).",
                           check=lambda v: None if re.match(r"^[a-z0-9.-]+(/[A-Za-z0-9]+)*$", v)
                           and not v.startswith("https://") else "is not an issuer host/path without https://")
    tags: dict[str, str] = doc("Tags on every AWS resource.", factory=dict)


# --- secrets engines -----------------------------------------------------------------------------

@dataclass(frozen=True)
class KvConfig:
    path: str = doc("KV v2 mount path.", check=_mount, default="secret")
    max_versions: int = doc("Versions kept per secret.", check=between(1, 1000), default=10)
    cas_required: bool = doc("Require check-and-set on every write.", default=False)


@dataclass(frozen=True)
class DatabaseConnection:
    name: str = doc("Connection name.", check=dns_label)
    connection_url: str = doc("PostgreSQL URL template with {{username}} and {{password}} placeholders.",
                              check=lambda v: None if v.startswith(("postgresql://", "postgres://"))
                              and "{{username}}" in v and "{{password}}" in v
                              else "is not a postgresql:// URL with {{username}} and {{password}}")
    username: str = doc("Admin user Vault connects as.")
    allowed_roles: list[str] = doc("Database roles that may use this connection.", factory=tuple)
    verify_connection: bool = doc("Check the connection when it is written.", default=True)
    max_open_connections: int = doc("Connection pool size.", check=between(1, 1000), default=4)
    password_authentication: str = doc("'scram-sha-256' or 'password'.",
                                       check=one_of("scram-sha-256", "password"), default="scram-sha-256")


DEFAULT_CREATION = (
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
)
# Ending the role's sessions first lets DROP ROLE succeed while a client is still connected.
DEFAULT_REVOCATION = (
    "REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA public FROM \"{{name}}\";",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';",
    "DROP ROLE IF EXISTS \"{{name}}\";",
)


@dataclass(frozen=True)
class DatabaseRole:
    name: str = doc("Role name (what applications request creds for).", check=dns_label)
    connection: str = doc("Connection this role uses.")
    default_ttl: str = doc("Default credential lifetime.", check=duration, default="1h")
    max_ttl: str = doc("Longest credential lifetime.", check=duration, default="24h")
    creation_statements: list[str] = doc("SQL run to create a user.", factory=lambda: DEFAULT_CREATION)
    revocation_statements: list[str] = doc("SQL run to drop a user.", factory=lambda: DEFAULT_REVOCATION)


@dataclass(frozen=True)
class DatabaseConfig:
    enabled: bool = doc("Mount the database secrets engine.", default=True)
    path: str = doc("Mount path.", check=_mount, default="database")
    dev_postgres: bool = doc("Run a throwaway PostgreSQL in the Vault namespace and connect to it "
                             "(dev only).", default=False)
    connections: list[DatabaseConnection] = doc("PostgreSQL connections.", factory=tuple)
    roles: list[DatabaseRole] = doc("Dynamic credential roles.", factory=tuple)


@dataclass(frozen=True)
class PkiRole:
    name: str = doc("Role name.", check=dns_label)
    allowed_domains: list[str] = doc("Domains certificates may be issued for.", check=each(dns_name))
    allow_subdomains: bool = doc("Allow names below the allowed domains.", default=True)
    allow_bare_domains: bool = doc("Allow the allowed domains themselves.", default=False)
    max_ttl: str = doc("Longest certificate lifetime.", check=duration, default="72h")
    ttl: str = doc("Default certificate lifetime.", check=duration, default="24h")


@dataclass(frozen=True)
class PkiIntermediate:
    enabled: bool = doc("Issue from an intermediate CA signed by the root.", default=False)
    path: str = doc("Intermediate mount path.", check=_mount, default="pki_int")
    common_name: str = doc("Intermediate CA common name.", default="vault-platform Intermediate CA")
    ttl: str = doc("Intermediate CA lifetime.", check=duration, default="43800h")


@dataclass(frozen=True)
class PkiConfig:
    enabled: bool = doc("Mount a PKI engine with an internal root CA.", default=True)
    path: str = doc("Root CA mount path.", check=_mount, default="pki")
    common_name: str = doc("Root CA common name.", default="vault-platform Root CA")
    ttl: str = doc("Root CA lifetime; the mount's max lease is tuned to match.", check=duration,
                   default="87600h")
    urls_base: str = doc("Base URL written into issued certificates for the issuer and CRL; empty "
                         "uses the in-cluster active Service.", default="")
    intermediate: PkiIntermediate = doc("Optional intermediate CA.", factory=PkiIntermediate)
    roles: list[PkiRole] = doc("Certificate roles.", factory=tuple)


@dataclass(frozen=True)
class TransitEngineConfig:
    enabled: bool = doc("Mount the transit engine (encryption as a service).", default=False)
    path: str = doc("Mount path.", check=_mount, default="transit")
    keys: list[str] = doc("Named keys to create.", check=each(dns_name), factory=tuple)


@dataclass(frozen=True)
class KubernetesAuthConfig:
    path: str = doc("Auth mount path.", check=_mount, default="kubernetes")
    templated_policy: bool = doc("One policy giving every application secret/data/<namespace>/<service "
                                 "account>/* through identity templating.", default=True)
    token_ttl: str = doc("Default token lifetime for roles.", check=duration, default="1h")


@dataclass(frozen=True)
class PolicyRule:
    path: str = doc("Vault path; '*' allowed at the end, '+' as a segment.", check=_vault_path)
    capabilities: list[str] = doc("Capabilities from Vault's fixed set.",
                                  check=each(lambda c: None if c in CAPABILITIES
                                             else f"is not a capability; use: {', '.join(CAPABILITIES)}"))
    required_parameters: list[str] = doc("Parameters a request must carry.", factory=tuple)
    denied_parameters: list[str] = doc("Parameters a request must not carry.", factory=tuple)


@dataclass(frozen=True)
class Policy:
    name: str = doc("Policy name.", check=dns_name)
    rules: list[PolicyRule] = doc("Its rules.")


@dataclass(frozen=True)
class AuditConfig:
    file_path: str = doc("Where the file device writes (on the audit volume).", default="/vault/audit/audit.log",
                         check=lambda v: None if v.startswith("/vault/audit/") else "must be under /vault/audit/")
    secondary: str = doc("A second device so Vault keeps serving if one cannot write: 'stdout' "
                         "(file device to the pod log), 'none'.", check=one_of("stdout", "none"), default="stdout")


@dataclass(frozen=True)
class KvGrant:
    path: str = doc("KV API path, e.g. secret/data/myapp/*.", check=_vault_path)
    access: str = doc("'read' or 'list' (or 'write' for read+create+update).", check=one_of("read", "list", "write"))


@dataclass(frozen=True)
class Application:
    name: str = doc("Application name (its Vault role and policy).", check=dns_label)
    namespace: str = doc("Kubernetes namespace it runs in.", check=dns_label)
    service_account: str = doc("Its Kubernetes service account.", check=_k8s_sa_name)
    kv: list[KvGrant] = doc("KV paths it may use.", factory=tuple)
    database_role: str = doc("Database role it may get credentials from.", default="")
    pki_role: str = doc("PKI role it may issue certificates from.", default="")
    token_ttl: str | None = doc("Its Vault token lifetime; empty uses kubernetesAuth.tokenTtl.",
                                check=duration, default=None)


@dataclass(frozen=True)
class S3Backup:
    bucket_name: str = doc("Bucket name; empty derives a unique one.", default="")
    prefix: str = doc("Key prefix for snapshots.", check=lambda v: None if re.match(r"^[A-Za-z0-9_\-/]+/$", v)
                      else "must be a key prefix ending in '/'", default="raft-snapshots/")
    force_destroy: bool = doc("Reserved: the bucket is always protected.", default=False)


@dataclass(frozen=True)
class VolumeBackup:
    size: str = doc("Backup volume size.", check=quantity, default="5Gi")
    storage_class: str | None = doc("StorageClass; empty uses the default.", default=None)


@dataclass(frozen=True)
class BackupConfig:
    enabled: bool = doc("Schedule Raft snapshots.", default=True)
    schedule: str = doc("Cron schedule (UTC).", check=cron, default="0 */6 * * *")
    target: str = doc("'s3' (prod) or 'volume' (a PersistentVolumeClaim; dev).", check=one_of("s3", "volume"),
                      default="s3")
    retention_days: int = doc("Snapshots older than this are pruned (and expire in S3).", check=between(1, 3650),
                              default=14)
    starting_deadline_seconds: int = doc("How late a missed run may still start.", check=at_least(10), default=600)
    backoff_limit: int = doc("Retries of a failed run.", check=between(0, 10), default=2)
    s3: S3Backup = doc("S3 target settings.", factory=S3Backup)
    volume: VolumeBackup = doc("Volume target settings.", factory=VolumeBackup)


@dataclass(frozen=True)
class KubernetesConfig:
    context: str = doc("kubeconfig context to deploy to; empty uses the current context.", default="")
    namespace: str = doc("Namespace for Vault.", check=dns_label, default="vault")


@dataclass(frozen=True)
class SecretsConfig:
    """Everything secret, in one key that must be set with `pulumi config set --secret --path`."""

    transit_unseal_token: Secret | None = doc("Token for the transit unseal Vault.", default=None)
    vault_token: Secret | None = doc("Token the stack configures Vault with, for teams that revoked "
                                        "the root token after bootstrap.", default=None)
    database_passwords: dict[str, Secret] = doc("Admin password per database connection name.", factory=dict)
    kv: dict[str, dict[str, Secret]] = doc("Initial KV secrets: path under the KV mount -> key -> value.",
                                           factory=dict)


@dataclass(frozen=True)
class PlatformConfig:
    environment: str = doc("'dev' (local cluster, dev-only settings allowed) or 'prod' (strict rules).",
                           check=one_of("dev", "prod"))
    api: ApiConfig = doc("How `pulumi up` reaches the Vault API.")
    unseal: UnsealConfig = doc("How Vault unseals.")
    kubernetes: KubernetesConfig = doc("Where to deploy.", factory=KubernetesConfig)
    cluster: ClusterConfig = doc("The Vault servers and the chart.", factory=ClusterConfig)
    tls: TlsConfig = doc("TLS for the API and cluster traffic.", factory=TlsConfig)
    init: InitConfig = doc("Initialization.", factory=InitConfig)
    aws: AwsConfig | None = doc("AWS account settings (needed for awskms unseal and S3 backups).",
                                   default=None)
    kv: KvConfig = doc("KV v2 engine.", factory=KvConfig)
    database: DatabaseConfig = doc("Database engine.", factory=DatabaseConfig)
    pki: PkiConfig = doc("PKI engine.", factory=PkiConfig)
    transit: TransitEngineConfig = doc("Transit engine.", factory=TransitEngineConfig)
    kubernetes_auth: KubernetesAuthConfig = doc("Kubernetes auth.", factory=KubernetesAuthConfig)
    policies: list[Policy] = doc("Extra policies as code.", factory=tuple)
    audit: AuditConfig = doc("Audit devices.", factory=AuditConfig)
    applications: list[Application] = doc("Applications to onboard.", factory=tuple)
    backup: BackupConfig = doc("Raft snapshots.", factory=BackupConfig)
    secrets: SecretsConfig = doc("Secret values (secure only).", factory=SecretsConfig)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"


# Keys whose value holds secrets; their whole value must be `secure:` in the stack file.
SECRET_KEYS = ("secrets",)
TOP_LEVEL_KEYS = tuple(stack_key(f) for f in dataclasses.fields(PlatformConfig))


def _decode(raw: Any) -> Any:
    """Pulumi hands structured values over as JSON text and scalars as plain strings."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def load_config(raw: Mapping[str, Any], secret_keys: set[str] | frozenset[str] = frozenset()) -> PlatformConfig:
    """Parse ``{"vault-platform:<key>": value}`` into a validated PlatformConfig or raise ConfigError."""
    problems = Problems()
    prefix = PROJECT + ":"
    values: dict[str, Any] = {}
    for full_key, value in raw.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        decoded = _decode(value)
        # Pulumi.yaml declares {} or [] as the project default of optional maps and lists: that
        # means "not set", so the program's own defaults apply.
        if decoded in ({}, []):
            continue
        # Scalars arrive as text; a value meant as text that looks like JSON is still text.
        if key in ("environment",) and not isinstance(decoded, str):
            decoded = value
        values[key] = decoded
    for key in SECRET_KEYS:
        if key in values and prefix + key not in secret_keys:
            problems.add(key, "holds secrets but is stored in plain text; set every value in it with "
                              "`pulumi config set --secret --path 'secrets.<name>' <value>`")
            values.pop(key)
    hints = {stack_key(f): f for f in dataclasses.fields(PlatformConfig)}
    for key in sorted(set(values) - set(hints)):
        import difflib

        near = difflib.get_close_matches(key, list(hints), n=1, cutoff=0.6)
        problems.add(key, "unknown setting" + (f" (did you mean '{near[0]}'?)" if near else "")
                     + f"; known settings: {', '.join(TOP_LEVEL_KEYS)}")
        values.pop(key)
    secret_fields = {k for k in values if prefix + k in secret_keys}
    parsed: dict[str, Any] = {}
    import typing

    types_ = typing.get_type_hints(PlatformConfig)
    for skey, f in hints.items():
        if skey not in values:
            continue
        before = len(problems.items)
        value = parse(types_[f.name], values[skey], skey, problems, secret=skey in secret_fields)
        check = f.metadata.get("check")
        if len(problems.items) == before and check and value is not None:
            message = check(value)
            if message:
                problems.add(skey, f"{value!r} {message}")
        parsed[skey] = value
    problems.raise_if_any()
    config = _build(parsed, problems)
    problems.raise_if_any()
    config = _apply_environment_defaults(config)
    _cross_checks(config, problems)
    problems.raise_if_any()
    return config


def _build(parsed: dict[str, Any], problems: Problems) -> PlatformConfig | None:
    kwargs = {}
    for f in dataclasses.fields(PlatformConfig):
        skey = stack_key(f)
        if skey in parsed:
            kwargs[f.name] = parsed[skey]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.add(skey, f"is required: {f.metadata['doc']}")
    if problems.items:
        return None
    return PlatformConfig(**kwargs)


def _apply_environment_defaults(config: PlatformConfig) -> PlatformConfig:
    cluster = config.cluster
    changes: dict[str, Any] = {}
    if cluster.replicas is None:
        changes["replicas"] = 5 if config.is_prod else 3
    if cluster.zone_spread is None:
        changes["zone_spread"] = config.is_prod
    if changes:
        config = dataclasses.replace(config, cluster=dataclasses.replace(cluster, **changes))
    return config


def _cross_checks(c: PlatformConfig, problems: Problems) -> None:
    """Rules that involve more than one setting, or the environment."""
    replicas = c.cluster.replicas
    if replicas < 1 or replicas % 2 == 0:
        problems.add("cluster.replicas", f"{replicas} is not allowed; use an odd number (1, 3, 5, 7) so a Raft "
                                         "quorum survives losing a minority of pods")
    if c.is_prod and replicas < 3:
        problems.add("cluster.replicas", f"{replicas} is too few for prod; use 3, 5 or 7 (a quorum must "
                                         "survive one pod down)")
    if replicas > 9:
        problems.add("cluster.replicas", f"{replicas} is too many; Raft clusters larger than 9 voters slow writes "
                                         "down; use 3, 5 or 7")
    for key, storage in (("cluster.dataStorage.size", c.cluster.data_storage),
                         ("cluster.auditStorage.size", c.cluster.audit_storage)):
        if quantity_value(storage.size) < 2**20:
            problems.add(key, f"{storage.size!r} is too small; use at least 1Mi (e.g. 10Gi)")

    # dev-only settings
    if c.is_prod:
        if c.unseal.type == "shamir":
            problems.add("unseal.type", "'shamir' is dev only: prod must auto-unseal with 'awskms' or "
                                        "'transit' so pods restart without a human holding key shares")
        if c.database.dev_postgres:
            problems.add("database.devPostgres", "true is dev only: prod connects to a PostgreSQL you run")
        if c.backup.enabled and c.backup.target == "volume":
            problems.add("backup.target", "'volume' is dev only: prod snapshots must leave the cluster (use 's3')")
        if c.api.service_type == "NodePort":
            problems.add("api.serviceType", "'NodePort' is dev only: prod exposes the API through an internal "
                                            "LoadBalancer or your ingress (LoadBalancer or ClusterIP)")
        if c.cluster.log_level == "trace":
            problems.add("cluster.logLevel", "'trace' is dev only: it logs request details in prod")

    if c.api.service_type == "NodePort" and c.api.node_port is None:
        problems.add("api.nodePort", "is required when api.serviceType is NodePort (30000-32767, matching the kind "
                                     "cluster's extraPortMappings)")
    if c.api.service_type != "NodePort" and c.api.node_port is not None:
        problems.add("api.nodePort", f"{c.api.node_port} is only used with api.serviceType NodePort")

    if c.unseal.type == "shamir" and c.api.service_type == "NodePort" and replicas > 5:
        problems.add("cluster.replicas", f"{replicas} is more pods than kind/dev-cluster.yaml maps unseal ports for "
                                         "(5); a shamir dev stack unseals each pod through its own port")
    if c.tls.source == "existingSecret" and not c.tls.existing_secret:
        problems.add("tls.existingSecret", "is required when tls.source is existingSecret")
    if c.tls.source == "existingSecret" and not c.tls.existing_ca_cert:
        problems.add("tls.existingCaCert", "is required when tls.source is existingSecret (the stack must "
                                           "trust the Vault it configures)")
    if duration_seconds(c.tls.validity) > duration_seconds(c.tls.ca_validity):
        problems.add("tls.validity", f"{c.tls.validity!r} outlives tls.caValidity {c.tls.ca_validity!r}")

    if c.unseal.type == "transit":
        if c.unseal.transit is None:
            problems.add("unseal.transit", "is required when unseal.type is transit (address and keyName)")
        if c.secrets.transit_unseal_token is None:
            problems.add("secrets.transitUnsealToken", "is required when unseal.type is transit; set it with "
                                                       "`pulumi config set --secret --path secrets.transitUnsealToken`")
    elif c.unseal.transit is not None:
        problems.add("unseal.transit", f"is only used with unseal.type transit, not {c.unseal.type!r}")
    needs_aws = c.unseal.type == "awskms" or (c.backup.enabled and c.backup.target == "s3")
    if needs_aws and c.aws is None:
        problems.add("aws", "is required for unseal.type awskms and for backups to s3 (region, oidcProviderArn, "
                            "oidcIssuer)")

    if c.init.threshold > c.init.shares:
        problems.add("init.threshold", f"{c.init.threshold} is more than init.shares {c.init.shares}")
    if c.is_prod and c.init.threshold < 2 and c.init.shares > 1:
        problems.add("init.threshold",
                     f"{c.init.threshold} lets one person unseal or recover prod alone; use 2 or more")
    if c.init.pgp_keys and len(c.init.pgp_keys) != c.init.shares:
        problems.add("init.pgpKeys", f"has {len(c.init.pgp_keys)} keys but init.shares is {c.init.shares}: give "
                                     "exactly one key per share")

    _check_database(c, problems)
    _check_pki(c, problems)
    _check_applications(c, problems)

    names = [p.name for p in c.policies]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.add("policies", f"policy name {dup!r} appears more than once")
    reserved = {"root", "default", "admin", "raft-backup", "app-templated"} | {f"app-{a.name}" for a in c.applications}
    for name in names:
        if name in reserved:
            problems.add("policies", f"policy name {name!r} is reserved by the platform; choose another")


def _check_database(c: PlatformConfig, problems: Problems) -> None:
    db = c.database
    connections = {conn.name for conn in db.connections}
    names = [conn.name for conn in db.connections]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.add("database.connections", f"connection name {dup!r} appears more than once")
    if db.dev_postgres and "dev-postgres" in connections:
        problems.add("database.connections", "'dev-postgres' is the connection database.devPostgres creates; "
                                             "do not declare it")
    if db.dev_postgres:
        connections.add("dev-postgres")
    role_names = [r.name for r in db.roles]
    for dup in sorted({n for n in role_names if role_names.count(n) > 1}):
        problems.add("database.roles", f"role name {dup!r} appears more than once")
    for i, role in enumerate(db.roles):
        key = f"database.roles[{i}]"
        if role.connection not in connections:
            problems.add(f"{key}.connection", f"{role.connection!r} is not a defined connection; defined: "
                                              f"{', '.join(sorted(connections)) or 'none'}")
        if duration_seconds(role.max_ttl) < duration_seconds(role.default_ttl):
            problems.add(f"{key}.maxTtl", f"{role.max_ttl!r} is below defaultTtl {role.default_ttl!r}")
        if not role.creation_statements:
            problems.add(f"{key}.creationStatements", "must not be empty")
    for i, conn in enumerate(db.connections):
        for role in conn.allowed_roles:
            if role not in role_names:
                problems.add(f"database.connections[{i}].allowedRoles", f"{role!r} is not a role in database.roles")
        if conn.name not in c.secrets.database_passwords:
            problems.add(f"secrets.databasePasswords.{conn.name}",
                         f"is required for database connection {conn.name!r}; set it with `pulumi config set "
                         f"--secret --path 'secrets.databasePasswords.{conn.name}'`")
    for name in c.secrets.database_passwords:
        if name not in {conn.name for conn in db.connections}:
            problems.add(f"secrets.databasePasswords.{name}", "names no connection in database.connections")
    if (db.connections or db.roles or db.dev_postgres) and not db.enabled:
        problems.add("database.enabled", "is false but database connections or roles are declared")


def _check_pki(c: PlatformConfig, problems: Problems) -> None:
    pki = c.pki
    root_ttl = duration_seconds(pki.ttl)
    if pki.intermediate.enabled:
        if duration_seconds(pki.intermediate.ttl) > root_ttl:
            problems.add("pki.intermediate.ttl", f"{pki.intermediate.ttl!r} outlives the root CA's pki.ttl {pki.ttl!r}")
        if pki.intermediate.path == pki.path:
            problems.add("pki.intermediate.path", f"{pki.intermediate.path!r} is the root CA's mount")
    names = [r.name for r in pki.roles]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.add("pki.roles", f"role name {dup!r} appears more than once")
    for i, role in enumerate(pki.roles):
        if duration_seconds(role.max_ttl) < duration_seconds(role.ttl):
            problems.add(f"pki.roles[{i}].maxTtl", f"{role.max_ttl!r} is below ttl {role.ttl!r}")
        if not role.allowed_domains:
            problems.add(f"pki.roles[{i}].allowedDomains", "must name at least one domain")
    if pki.roles and not pki.enabled:
        problems.add("pki.enabled", "is false but pki.roles are declared")


def _check_applications(c: PlatformConfig, problems: Problems) -> None:
    names = [a.name for a in c.applications]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.add(f"applications[{i}].name", f"{name!r} is already the name of applications"
                                                    f"[{names.index(name)}]; application names must be unique")
    bindings = [(a.namespace, a.service_account) for a in c.applications]
    for ns, sa in sorted({b for b in bindings if bindings.count(b) > 1}):
        problems.add("applications", f"service account {ns}/{sa} is bound to more than one application")
    db_roles = {r.name for r in c.database.roles}
    pki_roles = {r.name for r in c.pki.roles}
    for i, app in enumerate(c.applications):
        key = f"applications[{i}]"
        if app.database_role and app.database_role not in db_roles:
            problems.add(f"{key}.databaseRole", f"{app.database_role!r} is not a role in database.roles")
        if app.pki_role and app.pki_role not in pki_roles:
            problems.add(f"{key}.pkiRole", f"{app.pki_role!r} is not a role in pki.roles")
        if app.name == "raft-backup":
            problems.add(f"{key}.name", "'raft-backup' is reserved for the backup job")


def load_from_pulumi() -> PlatformConfig:
    """Read this stack's config from the Pulumi runtime (as the CLI passes it) and validate it."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return load_config(raw, secret_keys)
