"""The stack config model: every setting the program reads, typed, described and defaulted.

Each top-level field of ``PlatformConfig`` is one ``vault-platform:<key>`` in a stack file. The
descriptions are the documentation: docs/config-reference.md and the published JSON Schema
(schema/stack-config.schema.json) are generated from them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Strict

from components.model import checks
from components.model.limits import BOOTSTRAP_MARGIN_SECONDS, BOOTSTRAP_TOKEN_MAX_SECONDS, SCRAPE_TIMEOUT
from components.model.types import (
    Between,
    Bool,
    Cron,
    DnsLabel,
    DnsName,
    Duration,
    HttpsUrl,
    Int,
    JsonSchema,
    MountPath,
    Pem,
    Quantity,
    Secret,
    Section,
    Str,
    VaultName,
    VaultPath,
    each,
    rule,
    setting,
)

# --- cluster -------------------------------------------------------------------------------------


class ResourceAmounts(Section):
    memory: Quantity = setting("Memory, a Kubernetes quantity.", "256Mi")
    cpu: Quantity = setting("CPU, a Kubernetes quantity.", "250m")


class Resources(Section):
    requests: ResourceAmounts = setting("What the scheduler reserves for each pod.", factory=ResourceAmounts)
    limits: ResourceAmounts = setting("The most each pod may use.",
                                      factory=lambda: ResourceAmounts(memory="512Mi", cpu="500m"))


HttpsOrLocalhost = Annotated[str, Strict(), rule(checks.redirect_uri)]
StorageClassName = Annotated[str, Strict(), rule(lambda v: None if v == "" else checks.dns_name(v))]


class Storage(Section):
    size: Quantity = setting("Volume size per pod, a Kubernetes quantity.", "10Gi")
    storage_class: StorageClassName | None = setting("StorageClass; empty uses the cluster default.", None)


# One exact chart version, for every chart the stack installs: Helm installs whatever a range or a
# tag like 'latest' resolves to on the day.
ChartVersion = Annotated[str, Strict(), rule(checks.pinned_chart_version),
                         JsonSchema(pattern=checks.SEMVER_PATTERN)]
ChartRepository = Annotated[str, Strict(), rule(checks.chart_repository)]
ChartPath = Annotated[str, Strict(), rule(lambda v: None if v.strip() == v else "has spaces around it")]


# The hashicorp/vault chart every stack installs unless it says otherwise: the one place it is pinned
# (the Makefile reads it; tools/helm/go.mod names the same version, checked by the tests).
VAULT_CHART_VERSION = "0.34.1"


class Chart(Section):
    version: ChartVersion = setting(
        "Version of the hashicorp/vault Helm chart (one exact version).", VAULT_CHART_VERSION)
    repository: ChartRepository = setting(
        "Where Helm gets the chart: a chart repository (https://) or an OCI registry holding the chart as "
        "<registry path>/vault (oci://registry.example.com/charts).", "https://helm.releases.hashicorp.com")
    path: ChartPath = setting(
        "A copy of the chart on disk, for installs without internet: its folder (holding Chart.yaml) or the "
        ".tgz `helm pull` writes, relative to the project folder. Set, the chart comes from it and repository "
        "must be left out; its version must be chart.version.", "")


class Image(Section):
    repository: Annotated[str, Strict(), rule(checks.image_repository)] = setting(
        "Vault server image repository (no tag).", "hashicorp/vault")
    tag: Annotated[str, Strict(), rule(checks.image_tag)] = setting(
        "Vault server image tag; pin it, never 'latest'.", "2.0.4")


class InjectorImage(Section):
    repository: Annotated[str, Strict(), rule(checks.image_repository)] = setting(
        "Agent Injector image repository (no tag).", "hashicorp/vault-k8s")
    tag: Annotated[str, Strict(), rule(checks.image_tag)] = setting(
        "Agent Injector image tag; pin it. The default is the one the chart version above ships with.", "1.7.6")


class Injector(Section):
    enabled: Bool = setting("Run the Vault Agent Injector (sidecars that render secrets into pods).", True)
    image: InjectorImage = setting("Which Agent Injector image to run (the injected agents run cluster.image).",
                                   factory=InjectorImage)
    resources: Resources = setting("Injector pod resources.", factory=lambda: Resources(
        requests=ResourceAmounts(memory="64Mi", cpu="50m"), limits=ResourceAmounts(memory="128Mi", cpu="100m")))
    replicas: Annotated[int, Strict(), rule(checks.between(1, 10)), JsonSchema(minimum=1, maximum=10)] | None = \
        setting("Injector pods (1-10; to run none, set enabled: false). With failurePolicy Fail no pod starts in an "
                "opted-in namespace while none answers, so prod runs at least 2 (one per node) with a disruption "
                "budget. Defaults to 2 in prod and 1 in dev.", None)
    failure_policy: Literal["Fail", "Ignore"] | None = setting(
        "What the API server does with a new pod in an opted-in namespace when the injector does not answer: "
        "'Fail' refuses the pod (it would start without its secrets otherwise; prod requires it), 'Ignore' admits "
        "it without agents. Defaults to Fail in prod and Ignore in dev.", None)
    certificate_validity: Duration = setting(
        "Lifetime of the webhook's serving certificate (made by the stack; `pulumi up` renews it in the last "
        "third of its life, at most a month ahead).", "8760h")


class ApiClients(Section):
    namespaces: Annotated[tuple[Str, ...], rule(each(checks.dns_label))] = setting(
        "Namespaces whose pods may call the API (applications, their injected agents, the External Secrets "
        "Operator, cert-manager). The Vault namespace itself always may.", ())
    cidrs: Annotated[tuple[Str, ...], rule(each(checks.cidr))] = setting(
        "Address ranges outside the cluster that may call the API (your VPN; with api.loadBalancer.preserveClientIp, "
        "the clients behind the load balancer). Never a range that holds pods (cluster.networkPolicy.podCidrs).", ())


Cidrs = Annotated[tuple[Str, ...], rule(each(checks.cidr))]


class NetworkPolicyConfig(Section):
    enabled: Bool = setting("Put a NetworkPolicy on the Vault pods (it only has effect where the cluster's network "
                            "plugin enforces NetworkPolicies).", True)
    api_from: ApiClients = setting("Who may call the API port (8200). Both lists empty (and no load balancer subnets "
                                   "in api.loadBalancer.subnetCidrs): everyone. The cluster port (8201) is always "
                                   "open to the Vault pods only.", factory=lambda: ApiClients())
    pod_cidrs: Cidrs = setting(
        "The address ranges pods get their addresses from (EKS with the VPC CNI: the nodes' subnets, or the "
        "ENIConfig subnets with custom networking). No admitted range (apiFrom.cidrs, api.loadBalancer.subnetCidrs) "
        "may overlap them: an ipBlock matches pod addresses too, so it would admit every pod there, whatever its "
        "namespace. Required in prod when a range is admitted.", ())


class Autopilot(Section):
    cleanup_dead_servers: Bool = setting(
        "Let autopilot remove a server that has been out of contact with the leader for "
        "deadServerLastContactThreshold (a replaced pod, a pod gone after a scale-down), so dead voters do not "
        "count against the quorum. Only with 3 or more replicas (autopilot never shrinks the cluster below "
        "cluster.replicas).", True)
    dead_server_last_contact_threshold: Duration = setting(
        "How long a server may go without contact with the leader before autopilot removes it; at least 1m "
        "(Vault refuses less). Keep it well above the time a pod takes to restart.", "10m")
    last_contact_threshold: Duration = setting("Contact gap after which autopilot reports a server unhealthy.",
                                               "10s")
    server_stabilization_time: Duration = setting(
        "How long a new server must stay healthy before autopilot promotes it to voter.", "10s")
    max_trailing_logs: Between(1, 1_000_000) = setting(
        "Raft log entries a server may lag behind the leader and still count as healthy.", 1000)


class RaftConfig(Section):
    performance_multiplier: Between(1, 10) | None = setting(
        "Scales Raft's election and heartbeat timing: 1 fails over fastest (what Vault recommends for "
        "production), 5 is Vault's own default and tolerates slow, overcommitted machines. Defaults to 1 in prod "
        "and 5 in dev.", None)
    autopilot: Autopilot = setting("Autopilot: dead server cleanup and server stabilization (configured through "
                                   "Vault's API by the stack).", factory=Autopilot)


class Rollout(Section):
    enabled: Bool = setting(
        "When `pulumi up` changes the server pods (image tag, server config, TLS certificate or any other pod "
        "setting), restart them in the cluster one at a time: standbys first, each only once the previous one "
        "is back unsealed, healthy and a voter, then the active node after a step-down. It stops at the first "
        "failure with the quorum intact, and resumes where it stopped. Off: restart them yourself "
        "(docs/day-2.md).", True)
    image: Annotated[str, Strict(), rule(checks.pinned_image)] = setting(
        "Image that runs the restart (the Python standard library is all it needs); pin its tag.",
        "python:3.14.0-alpine3.22")
    pod_timeout: Duration = setting("How long the restart waits for one restarted pod to be back unsealed, "
                                    "healthy and a voter before it stops and reports.", "10m")


class ClusterConfig(Section):
    release_name: DnsLabel = setting("Helm release name; prefixes every pod and Service.", "vault")
    chart: Chart = setting("Which chart to install.", factory=Chart)
    image: Image = setting("Which Vault server image to run.", factory=Image)
    replicas: Int | None = setting("Vault server pods in the Raft cluster; odd, so a quorum survives a loss. "
                                   "Defaults to 5 in prod and 3 in dev.", None)
    resources: Resources = setting("Server pod resources.", factory=Resources)
    data_storage: Storage = setting("Raft data volume per pod.", factory=Storage)
    audit_storage: Storage = setting("Audit log volume per pod.", factory=Storage)
    zone_spread: Bool | None = setting("Spread pods across zones (topologySpreadConstraints). Defaults to true in "
                                       "prod, false in dev.", None)
    injector: Injector = setting("Vault Agent Injector.", factory=Injector)
    ui: Bool = setting("Serve the web UI.", True)
    service_monitor: Bool = setting("Create a Prometheus Operator ServiceMonitor (needs its CRDs). It scrapes with "
                                    "the token in monitoring.metricsTokenSecret (required in prod); without one "
                                    "(dev) the metrics endpoint is read without a token.", False)
    network_policy: NetworkPolicyConfig = setting("NetworkPolicy for the Vault server pods.",
                                                  factory=lambda: NetworkPolicyConfig())
    raft: RaftConfig = setting("Raft storage timing and autopilot.", factory=RaftConfig)
    rollout: Rollout = setting("Leader-aware rolling restarts after a change to the server pods.", factory=Rollout)
    log_level: Literal["trace", "debug", "info", "warn", "error"] = setting("Server log level.", "info")
    await_timeout: Duration = setting("How long `pulumi up` waits for the release to be ready.", "10m")


# --- API reachability ----------------------------------------------------------------------------


class ApiDns(Section):
    record: Literal["none", "externalDns", "route53"] = setting(
        "'none' (you point the address's name at the load balancer yourself; the stack exports "
        "apiLoadBalancerHostname), 'externalDns' (an ExternalDNS hostname annotation on the API Service; needs "
        "ExternalDNS in the cluster) or 'route53' (a CNAME the stack creates in route53ZoneId).", "none")
    route53_zone_id: Annotated[str, Strict(), rule(lambda v: None if v == "" else checks.route53_zone_id(v))] = \
        setting("Hosted zone id for record 'route53' (the zone of the address's host name).", "")
    ttl: Between(10, 86400) = setting("TTL of the record, in seconds.", 60)


class LoadBalancer(Section):
    subnets: Annotated[tuple[Str, ...], rule(each(checks.subnet_id))] = setting(
        "Subnet ids to place the load balancer in (the AWS Load Balancer Controller's aws-load-balancer-subnets): "
        "subnets of its own, in which no pod gets an address. Empty: the controller picks subnets by their tags.", ())
    subnet_cidrs: Cidrs = setting(
        "The address ranges of the load balancer's subnets. Without client IP preservation the load balancer "
        "connects to the pods (and checks their health) from its addresses there, so the NetworkPolicy admits "
        "these ranges, which must hold no pod. Required in prod with a NetworkPolicy that names clients, unless "
        "preserveClientIp.", ())
    preserve_client_ip: Bool = setting(
        "Keep each client's address as the source of its connections (the target group attribute "
        "preserve_client_ip.enabled). false (the default for IP targets): pods see the load balancer's addresses "
        "and the NetworkPolicy admits subnetCidrs; true: pods see the clients' addresses, so "
        "cluster.networkPolicy.apiFrom.cidrs must name the clients (CI runners, your VPN).", False)


class ApiConfig(Section):
    address: HttpsUrl = setting("HTTPS address at which the machine running `pulumi up` reaches the Vault API "
                                "(dev: the NodePort on localhost; prod: an internal load balancer or ingress).")
    service_type: Literal["NodePort", "LoadBalancer", "ClusterIP"] = setting(
        "How the API Service (in front of every server pod) is exposed: NodePort (dev kind cluster), LoadBalancer "
        "(internal NLB in prod) or ClusterIP (you bring an ingress).", "ClusterIP")
    node_port: Between(30000, 32767) | None = setting(
        "NodePort of the API Service (30000-32767); pod i gets nodePort+1+i. Must match kind/dev-cluster.yaml.", None)
    internal_load_balancer: Bool = setting("Annotate the LoadBalancer as internal (AWS), never internet-facing.", True)
    public_exposure_intended: Bool = setting(
        "Set true, with internalLoadBalancer false, only if the Vault API is meant to be reachable from the "
        "internet; prod refuses an internet-facing load balancer otherwise.", False)
    dns: ApiDns = setting("A DNS record for the address's host name, pointing at the load balancer.",
                          factory=lambda: ApiDns())
    load_balancer: LoadBalancer = setting("The AWS load balancer in front of the API (api.serviceType LoadBalancer): "
                                          "where it sits and whose address the pods see.",
                                          factory=lambda: LoadBalancer())


# --- TLS -----------------------------------------------------------------------------------------


class CertManagerIssuerRef(Section):
    kind: Literal["Issuer", "ClusterIssuer"] = setting(
        "Kind of the cert-manager issuer that signs the server certificate (an Issuer in the Vault namespace, "
        "or a ClusterIssuer).", "ClusterIssuer")
    name: DnsName | None = setting("Its name.", None)


class TlsConfig(Section):
    source: Literal["generated", "certManager", "existingSecret"] = setting(
        "'generated' (dev only): an internal CA and server certificate made by `pulumi up`, their keys kept in "
        "the stack's state; 'certManager': the same made by cert-manager in the cluster, so no private key is "
        "ever in the state (cert-manager must be installed); 'existingSecret': a kubernetes.io/tls Secret you "
        "manage (with ca.crt).", "generated")
    issuer: CertManagerIssuerRef | None = setting(
        "With source certManager: an issuer of yours (your organisation's CA) to sign the server certificate. "
        "Left out, the stack makes its own internal CA with cert-manager, in the Vault namespace.", None)
    existing_secret: DnsName | None = setting("Name of that Secret in the Vault namespace.", None)
    existing_ca_cert: Pem = setting("PEM of the CA that signed the existing Secret's certificate.", "")
    extra_dns_names: Annotated[tuple[Str, ...], rule(each(checks.dns_name))] = setting(
        "More DNS names for the server certificate (e.g. the prod load balancer's name).", ())
    extra_ip_addresses: Annotated[tuple[Str, ...], rule(each(checks.ip_address))] = setting(
        "More IP addresses for the server certificate (127.0.0.1 is always in it).", ())
    validity: Duration = setting("Server certificate lifetime.", "8760h")
    ca_validity: Duration = setting("Internal CA lifetime.", "87600h")
    organization: Str = setting("Organization in the certificate subjects.", "vault-platform")


# --- unseal --------------------------------------------------------------------------------------


class AwsKmsUnseal(Section):
    deletion_window_days: Between(7, 30) = setting("Days AWS waits before deleting the key once scheduled.", 30)
    alias: Annotated[str, Strict(), rule(checks.kms_alias)] = setting(
        "KMS alias name (without 'alias/'); empty derives one from the stack.", "")


class TransitUnseal(Section):
    address: HttpsUrl = setting("HTTPS address of the Vault that holds the transit key.")
    key_name: DnsName = setting("Transit key name.")
    mount_path: MountPath = setting("Transit mount on that Vault.", "transit")
    ca_cert: Pem = setting("PEM of the CA for that Vault's certificate; empty trusts the system roots.", "")
    tls_server_name: Str = setting("Server name to verify on that Vault's certificate.", "")
    token_secret: DnsName | None = setting(
        "A Secret of yours in the Vault namespace holding the token that may use the key, under VAULT_TOKEN: the "
        "token then never passes through the stack or its state (prod's way). Without it, "
        "secrets.transitUnsealToken (dev).", None)


class UnsealConfig(Section):
    type: Literal["awskms", "transit", "shamir"] = setting(
        "'awskms' (AWS KMS key made by the stack), 'transit' (another Vault) or 'shamir' (key shares; dev only).")
    awskms: AwsKmsUnseal = setting("Settings for type awskms.", factory=AwsKmsUnseal)
    transit: TransitUnseal | None = setting("Settings for type transit (required for it).", None)

    @property
    def mode(self) -> Literal["shamir", "auto"]:
        """How pods get unsealed, the one decision every layer follows: ``shamir``, by key shares the
        stack (dev) or operators submit; ``auto``, by the seal itself (awskms or transit)."""
        return "shamir" if self.type == "shamir" else "auto"


# --- initialization ------------------------------------------------------------------------------


class InitConfig(Section):
    shares: Between(1, 10) = setting("Key shares (Shamir) or recovery shares (auto-unseal).", 5)
    threshold: Between(1, 10) = setting("Shares needed to unseal or to recover.", 3)
    pgp_keys: Annotated[tuple[Str, ...], rule(each(checks.pgp_public_key))] = setting(
        "Base64 PGP public keys (`gpg --export <id> | base64 -w0`), one per share: each share is encrypted to one.",
        ())
    root_token_pgp_key: Annotated[str, Strict(), rule(lambda v: None if v == "" else checks.pgp_public_key(v))] = \
        setting("Base64 PGP public key to encrypt the root token to.", "")
    timeout: Duration = setting("How long init waits for the pods to answer and join.", "10m")
    accept_plaintext_shares: Bool = setting(
        "prod only: accept key shares stored unencrypted in the stack's state (no init.pgpKeys). Leave false: "
        "then prod refuses to initialize without one PGP public key per share.", False)


# --- AWS -----------------------------------------------------------------------------------------


TagKey = Annotated[str, Strict(), rule(checks.aws_tag_key)]
TagValue = Annotated[str, Strict(), rule(checks.aws_tag_value)]


class AwsConfig(Section):
    region: Annotated[str, Strict(), rule(checks.aws_region)] = setting("AWS region of the cluster, key and bucket.")
    oidc_provider_arn: Annotated[str, Strict(), rule(checks.oidc_provider_arn)] = setting(
        "ARN of the EKS cluster's IAM OIDC provider (IRSA trusts it).")
    oidc_issuer: Annotated[str, Strict(), rule(checks.oidc_issuer)] = setting(
        "The cluster's OIDC issuer without https:// (oidc.eks.<region>.amazonaws.com/id/<ID>).")
    tags: dict[TagKey, TagValue] = setting("Tags on every AWS resource.", factory=dict)
    key_administrators: Annotated[tuple[Str, ...], rule(each(checks.iam_principal_arn))] = setting(
        "IAM role (or user) ARNs that administer the stack's KMS keys (rotation, tags, aliases, deletion); nobody "
        "else may, and these may neither use the keys, grant them, nor replace their policy. Include the role that "
        "runs `pulumi up`. Required when the stack creates a KMS key.",
        ())
    key_policy_administrators: Annotated[tuple[Str, ...], rule(each(checks.iam_principal_arn))] = setting(
        "IAM role ARNs that may replace the stack's KMS key policies (kms:PutKeyPolicy), and nothing else: "
        "break-glass roles, never one in keyAdministrators (a new key policy can give its author the key). "
        "Required when the stack creates a KMS key; a change to a key policy (a new snapshot reader, a new unseal "
        "role) is then applied by one of them (docs/break-glass.md).", ())
    snapshot_readers: Annotated[tuple[Str, ...], rule(each(checks.iam_principal_arn))] = setting(
        "IAM role ARNs that may decrypt snapshots in the backup bucket, through S3 only (for restores). "
        "Empty: only the backup job's own role.", ())
    permissions_boundary: Annotated[str, Strict(), rule(lambda v: None if v == "" else checks.iam_policy_arn(v))] = \
        setting("Managed policy ARN set as the permissions boundary of every IAM role the stack creates, which "
                "the deploying role may create only with it (scripts/deployer_policy.py prints both); required in "
                "prod when the stack creates IAM roles.", "")


# --- secrets engines -----------------------------------------------------------------------------


class KvConfig(Section):
    path: MountPath = setting("KV v2 mount path.", "secret")
    max_versions: Between(1, 1000) = setting("Versions kept per secret.", 10)
    cas_required: Bool = setting("Require check-and-set on every write.", False)


class DatabaseConnection(Section):
    name: VaultName = setting("Connection name.")
    connection_url: Annotated[str, Strict(), rule(checks.postgres_url)] = setting(
        "PostgreSQL URL template with {{username}} and {{password}} placeholders.")
    username: Annotated[str, Strict(), rule(lambda v: None if v.strip() else "is empty; name the admin user")] = \
        setting("Admin user Vault connects as.")
    allowed_roles: Annotated[tuple[Str, ...], rule(each(lambda v: None if v == "*" else checks.vault_name(v)))] = \
        setting("Database roles that may use this connection ('*': all of them).", ())
    verify_connection: Bool = setting("Check the connection when it is written.", True)
    max_open_connections: Between(1, 1000) = setting("Connection pool size.", 4)
    password_authentication: Literal["scram-sha-256", "password"] = setting(
        "'scram-sha-256' or 'password'.", "scram-sha-256")
    tls_ca: Pem = setting("PEM of the CA that signed the database server's certificate (for RDS, the region's RDS "
                          "CA bundle), so Vault verifies it with sslmode=verify-full.", "")
    rotate_root: Bool = setting(
        "Right after the connection is written, have Vault rotate the admin user's password "
        "(database/rotate-root): from then on only Vault knows it, and the password in "
        "secrets.databasePasswords no longer works in PostgreSQL. The stack never sends that password again "
        "(see docs/day-2.md to give Vault a new one).", True)


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


class DatabaseRole(Section):
    name: VaultName = setting("Role name (what applications request creds for).")
    connection: Str = setting("Connection this role uses.")
    default_ttl: Duration = setting("Default credential lifetime.", "1h")
    max_ttl: Duration = setting("Longest credential lifetime.", "24h")
    creation_statements: tuple[Str, ...] = setting("SQL run to create a user.", DEFAULT_CREATION)
    revocation_statements: tuple[Str, ...] = setting("SQL run to drop a user.", DEFAULT_REVOCATION)


class DatabaseConfig(Section):
    enabled: Bool = setting("Mount the database secrets engine.", True)
    path: MountPath = setting("Mount path.", "database")
    dev_postgres: Bool = setting("Run a throwaway PostgreSQL in the Vault namespace and connect to it (dev only).",
                                 False)
    dev_postgres_image: Annotated[str, Strict(), rule(checks.pinned_image)] = setting(
        "Image of that PostgreSQL; pin it. Another image must take the official one's POSTGRES_USER, "
        "POSTGRES_PASSWORD, POSTGRES_DB and PGDATA, run as uid 70 and have pg_isready.", "postgres:16.6-alpine")
    connections: tuple[DatabaseConnection, ...] = setting("PostgreSQL connections.", ())
    roles: tuple[DatabaseRole, ...] = setting("Dynamic credential roles.", ())


class PkiRole(Section):
    name: VaultName = setting("Role name.")
    namespace: Annotated[str, Strict(), rule(lambda v: None if v == "" else checks.dns_label(v))] = setting(
        "Bind the role to one Kubernetes namespace: it signs only that namespace's Service names "
        "(*.<namespace>.svc, *.<namespace>.svc.cluster.local) and the names in allowedDomains, which that namespace "
        "owns (exact names, or *.<domain> for the names below one), never an IP address or localhost. "
        "Applications (pkiRole) and cert-manager's Issuers (certManager.issuers) may only use a role bound to their "
        "own namespace. Empty: a role for names of your choosing, which neither may use.", "")
    allowed_domains: Annotated[tuple[Str, ...], rule(each(checks.dns_name))] = setting(
        "Domains certificates may be issued for (required unless namespace is set); with namespace, the names "
        "beyond its Services that the namespace owns.", ())
    allow_subdomains: Bool = setting("Allow names below the allowed domains (not with namespace, whose names say it "
                                     "themselves).", True)
    allow_bare_domains: Bool = setting("Allow the allowed domains themselves (not with namespace).", False)
    max_ttl: Duration = setting("Longest certificate lifetime.", "72h")
    ttl: Duration = setting("Default certificate lifetime.", "24h")


class PkiIntermediate(Section):
    enabled: Bool = setting("Issue from an intermediate CA signed by the root.", False)
    path: MountPath = setting("Intermediate mount path.", "pki_int")
    common_name: Str = setting("Intermediate CA common name.", "vault-platform Intermediate CA")
    ttl: Duration = setting("Intermediate CA lifetime.", "43800h")


class PkiTidy(Section):
    enabled: Bool = setting("Let Vault tidy the PKI mounts by itself: remove expired certificates and "
                            "revocation entries from storage and the CRL.", True)
    interval: Duration = setting("Time between two tidy runs.", "12h")
    safety_buffer: Duration = setting("How long past expiry a certificate is kept before tidy removes it.", "72h")


class PkiConfig(Section):
    enabled: Bool = setting("Mount a PKI engine with an internal root CA.", True)
    path: MountPath = setting("Root CA mount path.", "pki")
    common_name: Str = setting("Root CA common name.", "vault-platform Root CA")
    ttl: Duration = setting("Root CA lifetime; the mount's max lease is tuned to match.", "87600h")
    urls_base: Annotated[str, Strict(), rule(checks.pki_urls_base)] = setting(
        "Base URL (https, scheme, host and port only: the stack appends /v1/<mount>/ca and /crl) written into "
        "issued certificates for the issuer and CRL: an address every client that checks a certificate can reach, "
        "never a loopback address. Empty: api.address, unless that is a loopback address (dev), then the "
        "in-cluster active Service.", "")
    intermediate: PkiIntermediate = setting("Optional intermediate CA.", factory=PkiIntermediate)
    tidy: PkiTidy = setting("Automatic tidy of every PKI mount.", factory=PkiTidy)
    roles: tuple[PkiRole, ...] = setting("Certificate roles.", ())


class TransitEngineConfig(Section):
    enabled: Bool = setting("Mount the transit engine (encryption as a service).", False)
    path: MountPath = setting("Mount path.", "transit")
    keys: Annotated[tuple[Str, ...], rule(each(checks.vault_name))] = setting("Named keys to create.", ())
    auto_rotate_period: Duration | None = setting(
        "How often Vault rotates every key to a new version by itself (older versions still decrypt); at least "
        "1h. Empty turns automatic rotation off.", "2160h")


class KubernetesAuthConfig(Section):
    path: MountPath = setting("Auth mount path (not 'token', nor one of deploy.*.path).", "kubernetes")
    templated_policy: Bool = setting("One policy giving every application its own folder "
                                     "secret/data/<namespace>/<service account>/* through identity templating "
                                     "(read only, unless the application asks for write).", True)
    token_ttl: Duration = setting("Default token lifetime for roles.", "1h")
    token_max_ttl: Duration = setting("Longest a role's token may be renewed to, unless the application sets its "
                                      "own.", "24h")
    audience: Str = setting(
        "Audience every application's service account token must be issued for (the role's `audience`): a "
        "token minted for another service cannot be replayed to Vault. Pods present a projected token with this "
        "audience (the External Secrets Operator and cert-manager request one; see docs/configuration.md). Empty "
        "accepts any audience (dev only).", "vault")


class PolicyRule(Section):
    path: VaultPath = setting("Vault path; '*' allowed at the end, '+' as a segment.")
    capabilities: Annotated[tuple[Str, ...], rule(checks.capabilities)] = setting(
        "Capabilities from Vault's fixed set.")
    required_parameters: tuple[Str, ...] = setting("Parameters a request must carry.", ())
    denied_parameters: tuple[Str, ...] = setting("Parameters a request must not carry.", ())


class Policy(Section):
    name: Annotated[str, Strict(), rule(checks.policy_name)] = setting("Policy name.")
    rules: tuple[PolicyRule, ...] = setting("Its rules.")


class AuditConfig(Section):
    file_path: Annotated[str, Strict(), rule(checks.audit_file_path)] = setting(
        "Where the file device writes (on the audit volume).", "/vault/audit/audit.log")
    secondary: Literal["stdout", "none"] = setting(
        "A second device so Vault keeps serving if one cannot write: 'stdout' (file device to the pod log), 'none'.",
        "stdout")


class KvGrant(Section):
    path: VaultPath = setting("KV API path, e.g. secret/data/myapp/*.")
    access: Literal["read", "list", "write"] = setting("'read' or 'list' (or 'write' for read, create, update "
                                                      "and patch).")


class DeliveredSecret(Section):
    name: DnsLabel = setting("Its name: the file /vault/secrets/<name> the injector renders (and the suffix of its "
                             "annotations); unique per application.")
    path: Annotated[str, Strict(), rule(checks.kv_secret_path)] = setting(
        "Secret path under the KV mount, e.g. myapp/config (read from <kv>/data/<path>).")
    keys: dict[Annotated[str, Strict(), rule(checks.env_name)], Annotated[str, Strict(), rule(checks.kv_property)]] \
        = setting("Variable name -> KV property, e.g. {DATABASE_URL: database_url}: the injector writes `export "
                  "DATABASE_URL='...'`; the External Secrets Operator writes the key DATABASE_URL of the Secret.")


class Application(Section):
    name: DnsLabel = setting("Application name (its Vault role, and its policy app-<name>); not one the platform "
                             "uses (raft-backup, raft-rollout, templated, templated-write).")
    namespace: DnsLabel = setting("Kubernetes namespace it runs in. With the injector failing closed (prod), not a "
                                  "system namespace (kube-*) nor the platform's own (Vault's, cert-manager's, the "
                                  "operator's).")
    service_account: Annotated[str, Strict(), rule(checks.service_account_name)] = setting(
        "Its Kubernetes service account; in prod not 'default' (every pod of the namespace runs as it).")
    kv: tuple[KvGrant, ...] = setting("KV paths it may use.", ())
    database_role: Str = setting("Database role it may get credentials from.", "")
    pki_role: Str = setting("PKI role it may issue certificates from: one bound to its namespace "
                            "(pki.roles[].namespace), so it gets certificates for its own names only.", "")
    token_ttl: Duration | None = setting("Its Vault token lifetime; empty uses kubernetesAuth.tokenTtl.", None)
    token_max_ttl: Duration | None = setting("Its token's longest renewable lifetime; empty uses "
                                             "kubernetesAuth.tokenMaxTtl.", None)
    own_folder: Literal["read", "write", "none"] = setting(
        "What it may do in its own folder <kv>/data/<namespace>/<service account>/: 'read' (read and list), "
        "'write' (also create and update; never delete versions or metadata) or 'none'.", "read")
    audience: Str | None = setting("The audience its service account token must have; unset uses "
                                   "kubernetesAuth.audience. An empty string accepts any audience (dev only).", None)
    delivery: Literal["injector", "externalSecrets", "both", "none"] = setting(
        "How its secrets reach its pods: 'injector' (a Vault Agent in the pod renders them into files; nothing "
        "else to install, nothing stored in Kubernetes, database credentials renewed and revoked with the pod), "
        "'externalSecrets' (the External Secrets Operator copies them into a Kubernetes Secret), 'both', or "
        "'none' (the application logs in to Vault itself).", "injector")
    create_namespace: Bool = setting("Create its namespace (kept in the cluster when the application is removed "
                                     "from the stack).", False)
    create_service_account: Bool = setting("Create its service account in its namespace.", False)
    secrets: tuple[DeliveredSecret, ...] = setting(
        "KV secrets to deliver (read through its own grants: its folder or kv). With a databaseRole the injector "
        "also renders its database credentials into the file 'db'.", ())
    refresh_interval: Duration | None = setting("How often the External Secrets Operator re-reads its secrets; "
                                                "empty uses externalSecrets.refreshInterval.", None)

    @property
    def uses_injector(self) -> bool:
        return self.delivery in ("injector", "both")

    @property
    def uses_external_secrets(self) -> bool:
        return self.delivery in ("externalSecrets", "both")


class ExternalSecretsChart(Section):
    version: ChartVersion = setting("Version of the external-secrets Helm chart (one exact version).", "2.9.0")
    repository: ChartRepository = setting(
        "Where Helm gets the chart: a chart repository (https://) or an OCI registry holding the chart as "
        "<registry path>/external-secrets (oci://registry.example.com/charts).", "https://charts.external-secrets.io")
    path: ChartPath = setting(
        "A copy of the chart on disk (its folder or .tgz), relative to the project folder; set, repository must "
        "be left out and its version must be externalSecrets.chart.version.", "")


class ExternalSecretsConfig(Section):
    install: Bool = setting("Install the External Secrets Operator chart when an application's delivery uses it; "
                            "false uses an operator already running in the cluster.", True)
    namespace: DnsLabel = setting("Namespace the operator runs in (installed there, or already running there).",
                                  "external-secrets")
    service_account: Annotated[str, Strict(), rule(checks.service_account_name)] = setting(
        "The operator controller's service account: the only one allowed to request the tokens each store logs in "
        "with.", "external-secrets")
    chart: ExternalSecretsChart = setting("Which chart to install.", factory=ExternalSecretsChart)
    refresh_interval: Duration = setting("How often each ExternalSecret re-reads Vault, unless its application "
                                         "sets refreshInterval.", "1h")
    cluster_wide_token_requests: Bool = setting(
        "Let the installed operator request tokens for every service account in the cluster (the chart's own "
        "default). The Vault stores do not need it: each store's service account lets only the operator request "
        "its tokens. Turn it on only for other stores that authenticate as another service account.", False)


class CertManagerIssuerConfig(Section):
    namespace: DnsLabel = setting("Namespace of the Issuer: only Certificates in it can use it.")
    pki_role: Str = setting("PKI role it signs with: a role bound to this namespace (pki.roles[].namespace), so the "
                            "Issuer signs this namespace's names only; its policy allows only "
                            "<issuing mount>/sign/<role>.")


class CertManagerConfig(Section):
    enabled: Bool = setting("Create an Issuer in each namespace of issuers that signs certificates with the PKI "
                            "engine (cert-manager must be installed: its CRDs and controller).", False)
    namespace: DnsLabel = setting("Namespace cert-manager runs in (its cluster resource namespace).", "cert-manager")
    controller_service_account: Annotated[str, Strict(), rule(checks.service_account_name)] = setting(
        "cert-manager's controller service account, which requests the issuer's tokens.", "cert-manager")
    issuer_name: DnsLabel = setting("Name of the Issuer in each namespace (and of the service account it logs in "
                                    "as there).", "vault-pki")
    issuers: tuple[CertManagerIssuerConfig, ...] = setting(
        "One Issuer per namespace that requests certificates (required when enabled), each with a Vault role "
        "and policy of its own (cert-manager-<namespace>). No ClusterIssuer: one would let any namespace get a "
        "certificate for another's Services.", ())


BucketName = Annotated[str, Strict(), rule(checks.s3_bucket_name),
                       JsonSchema(pattern=r"^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]


class ObjectLock(Section):
    mode: Literal["none", "governance", "compliance"] = setting(
        "S3 Object Lock on every snapshot: 'governance' (nobody deletes or overwrites a snapshot before it is "
        "days old, except a principal allowed s3:BypassGovernanceRetention), 'compliance' (nobody at all, not "
        "even the account root) or 'none'.", "governance")
    days: Between(1, 36500) | None = setting("How long each snapshot is locked, at most backup.retentionDays (S3 "
                                             "cannot delete a locked snapshot); empty uses backup.retentionDays.",
                                             None)


class S3Replication(Section):
    enabled: Bool = setting("Replicate every snapshot to a bucket in another region (S3 Cross-Region "
                            "Replication), encrypted with a key of that region.", False)
    region: Annotated[str, Strict(), rule(lambda v: None if v == "" else checks.aws_region(v))] = setting(
        "Region of the replica bucket; must differ from aws.region.", "")
    bucket_name: BucketName = setting("Replica bucket name (S3's naming rules; not the snapshot bucket's); empty "
                                      "derives a unique one.", "")
    storage_class: Literal["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"] = setting(
        "Storage class of the replicas.", "STANDARD_IA")


class S3Backup(Section):
    bucket_name: BucketName = setting(
        "Bucket name (S3's naming rules); empty derives a unique one.", "")
    prefix: Annotated[str, Strict(), rule(checks.s3_prefix)] = setting("Key prefix for snapshots.", "raft-snapshots/")
    object_lock: ObjectLock = setting("S3 Object Lock on the snapshots.", factory=ObjectLock)
    replication: S3Replication = setting("Cross-region replication of the snapshots.", factory=S3Replication)


class VolumeBackup(Section):
    size: Quantity = setting("Backup volume size.", "5Gi")
    storage_class: StorageClassName | None = setting("StorageClass; empty uses the default.", None)


class BackupConfig(Section):
    enabled: Bool = setting("Schedule Raft snapshots.", True)
    schedule: Cron = setting("Cron schedule (UTC), as a Kubernetes CronJob takes it.", "0 */6 * * *")
    target: Literal["s3", "volume"] = setting("'s3' (prod) or 'volume' (a PersistentVolumeClaim; dev).", "s3")
    retention_days: Between(1, 3650) = setting(
        "Snapshots older than this are pruned (and expire in S3); for s3, longer than the longest gap between two "
        "runs of the schedule.", 14)
    starting_deadline_seconds: Annotated[int, Strict(), rule(checks.at_least(10))] = setting(
        "How late a missed run may still start.", 600)
    backoff_limit: Between(0, 10) = setting("Retries of a failed run.", 2)
    s3: S3Backup = setting("S3 target settings.", factory=S3Backup)
    volume: VolumeBackup = setting("Volume target settings.", factory=VolumeBackup)


# --- migration from a cloud secret store ---------------------------------------------------------


class EsoServiceAccount(Section):
    namespace: DnsLabel = setting("Namespace the External Secrets Operator runs in.", "external-secrets")
    name: Annotated[str, Strict(), rule(checks.service_account_name)] = setting(
        "The operator's service account: the IRSA role trusts exactly it, and the store authenticates as it "
        "(the stack annotates the operator it installs; otherwise annotate it with the role ARN the stack exports). "
        "Must be externalSecrets.namespace/serviceAccount when the stack installs the operator.", "external-secrets")


class AwsSecretsManagerStoreConfig(Section):
    enabled: Bool = setting("Create a ClusterSecretStore for AWS Secrets Manager and the IRSA role it reads with, so "
                            "applications can read from either store while they move to Vault.", False)
    region: Annotated[str, Strict(), rule(checks.aws_region)] | None = setting(
        "Region of the secrets; empty uses aws.region.", None)
    name_prefix: Annotated[str, Strict(), rule(checks.secrets_manager_prefix)] | None = setting(
        "Only secrets whose names start with this may be read (required when enabled).", None)
    store_name: DnsName = setting("Name of the ClusterSecretStore.", "aws-secrets-manager")
    service_account: EsoServiceAccount = setting("The External Secrets Operator's service account.",
                                                 factory=EsoServiceAccount)
    namespaces: Annotated[tuple[Str, ...], rule(each(checks.dns_label))] = setting(
        "Namespaces whose ExternalSecrets may use the store (required in prod): empty lets an ExternalSecret in any "
        "namespace copy every secret under namePrefix, which dev accepts with a warning.", ())
    kms_key_arns: Annotated[tuple[Str, ...], rule(each(checks.kms_key_arn))] = setting(
        "Customer-managed KMS keys that encrypt those secrets (kms:Decrypt, only through Secrets Manager); empty "
        "when they use the AWS-managed key.", ())


class MigrationConfig(Section):
    aws_secrets_manager: AwsSecretsManagerStoreConfig = setting(
        "The transition store: AWS Secrets Manager beside Vault while applications move.",
        factory=AwsSecretsManagerStoreConfig)
    kv_prefix: Annotated[str, Strict(), rule(checks.kv_prefix)] = setting(
        "Where `python -m migration` writes in the KV mount (the KV side of its --map): the `migration` CI login "
        "may create, read and update secrets below it and nothing else.", "imported/")

class AlertThresholds(Section):
    request_latency_ms: Between(1, 600_000) = setting(
        "Alert when a pod's 99th percentile request time stays above this many milliseconds for 10 minutes.", 500)
    leadership_changes_per_hour: Between(1, 100) = setting(
        "Alert when the active node changes more often than this within an hour.", 3)
    certificate_expiry_days: Between(1, 365) = setting(
        "Alert when the server certificate expires within this many days. With a generated certificate, at most "
        "the days before expiry in which `pulumi up` renews it (a third of tls.validity, at most 30).", 14)


LabelKey = Annotated[str, Strict(), rule(checks.label_key)]
LabelValue = Annotated[str, Strict(), rule(checks.label_value)]
Labels = Annotated[dict[LabelKey, LabelValue], JsonSchema(
    propertyNames={"pattern": r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"},
    additionalProperties={"type": "string", "pattern": r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"})]


class MonitoringConfig(Section):
    prometheus_rule: Bool = setting(
        "Create a PrometheusRule with the platform's alerts (sealed pod, no active node, voters, autopilot, "
        "leadership changes, backups, certificates, audit devices, latency, failed restarts). Needs "
        "cluster.serviceMonitor and kube-state-metrics.", False)
    grafana_dashboard: Bool = setting("Create a ConfigMap holding a Grafana dashboard, labelled for the Grafana "
                                      "sidecar to load.", False)
    labels: Labels = setting(
        "Labels on the ServiceMonitor and PrometheusRule, so your Prometheus selects them (kube-prometheus-stack: "
        "release: <its Helm release name>).", factory=dict)
    dashboard_labels: Labels = setting("Labels the Grafana sidecar looks for on dashboard ConfigMaps.",
                                               factory=lambda: {"grafana_dashboard": "1"})
    prometheus_namespace: DnsLabel = setting(
        "Namespace Prometheus runs in: with cluster.serviceMonitor, the NetworkPolicy lets it reach the metrics "
        "endpoint.", "monitoring")
    scrape_interval: Annotated[str, Strict(), rule(checks.duration), rule(checks.prometheus_duration),
                               JsonSchema(pattern=checks.PROMETHEUS_DURATION)] = setting(
        f"How often Prometheus scrapes each Vault pod, as Prometheus writes durations (e.g. 30s, 1m); at least "
        f"the scrape timeout ({SCRAPE_TIMEOUT}).", "30s")
    metrics_token_secret: DnsName | None = setting(
        "A Secret of yours in the Vault namespace holding, under the key 'token', a Vault token with only the "
        "'metrics' policy (read on sys/metrics): the ServiceMonitor presents it, so the metrics endpoint needs a "
        "token and the token never passes through the stack or its state. Required in prod with "
        "cluster.serviceMonitor; without it (dev) the listener serves metrics to anyone who reaches it.", None)
    alerts: AlertThresholds = setting("Alert thresholds.", factory=AlertThresholds)


class KubernetesConfig(Section):
    context: Str = setting("kubeconfig context to deploy to; empty uses the current context.", "")
    namespace: DnsLabel = setting("Namespace for Vault.", "vault")


# A value a login's token must carry, compared exactly: an empty one or a wildcard matches no token.
Claim = Annotated[str, Strict(), rule(lambda v: "is empty; name the value the token carries" if not v.strip()
                                      else checks.no_wildcard(v)), JsonSchema(minLength=1)]


class GithubActions(Section):
    repository: Annotated[str, Strict(), rule(checks.github_repository)] = setting(
        "The repository whose workflows deploy and preview this stack (owner/name).")
    deploy_ref: Annotated[str, Strict(), rule(checks.git_ref), JsonSchema(pattern=r"^refs/(heads|tags)/[^*?\[]+$")] = \
        setting("The one ref the deploy workflow runs on, in full (the token's `ref` claim, compared exactly): "
                "refs/heads/<branch> or refs/tags/<tag>.", "refs/heads/main")
    deploy_environment: Claim = setting(
        "The GitHub environment of the deploy job (the token's `environment` claim); give it required reviewers. "
        "Never empty: the environment is what makes a deploy wait for a review.", "production")
    preview_environment: Claim = setting("The GitHub environment of the prod preview job; give it required "
                                         "reviewers. Never empty.", "production-preview")
    drift_environment: Claim = setting(
        "The GitHub environment of the scheduled drift check (.github/workflows/drift.yml), which logs in as `drift` "
        "(the previewer's policy) from deployRef only: allow only that branch to deploy to it (it has no reviewers, "
        "so that the schedule runs unattended). Never empty.", "production-drift")
    restore_environment: Claim = setting(
        "The GitHub environment of the restore workflow (.github/workflows/restore.yml), which logs in as `restore` "
        "(raft-restore: restore a snapshot of this cluster, nothing else) from deployRef only; give it required "
        "reviewers. Never empty.", "production-restore")
    migration_environment: Claim = setting(
        "The GitHub environment of the migration workflow (.github/workflows/migrate.yml), which logs in as "
        "`migration` (secrets-manager-migration: create, read and update below migration.kvPrefix, nothing else) "
        "from deployRef only; give it required reviewers. Never empty.", "production-migration")


IssuerUrl = Annotated[str, Strict(), rule(checks.issuer_url)]


class CiLogin(Section):
    enabled: Bool = setting("A JWT auth method for CI: workflows log in with their GitHub OIDC token as `deployer` "
                            "(applies the configuration) or `previewer` (reads it), instead of a stored token.", False)
    path: MountPath = setting("Auth mount path (not 'token', nor another auth method's).", "jwt-ci")
    discovery_url: IssuerUrl = setting("The token issuer's URL, without /.well-known/... (Vault reads its "
                                       "discovery document from there).", "https://token.actions.githubusercontent.com")
    audience: Claim = setting("The audience the workflow requests its token for (bound_audiences); never empty (a "
                              "GitHub token always carries one).", "vault")
    github: GithubActions | None = setting("Which repository, ref and environments may log in.", None)
    token_ttl: Duration = setting("Lifetime of a CI login's Vault token.", "20m")
    token_max_ttl: Duration = setting("Longest a CI login's token may be renewed to.", "45m")


class OperatorLogin(Section):
    enabled: Bool = setting("An OIDC auth method for people who run `pulumi up` from a laptop (`vault login "
                            "-method=oidc`, then VAULT_TOKEN).", False)
    path: MountPath = setting("Auth mount path (not 'token', nor another auth method's).", "oidc")
    discovery_url: IssuerUrl | None = setting("Your identity provider's issuer URL, without /.well-known/... "
                                              "(Vault reads its discovery document from there).", None)
    client_id: Str = setting("The OIDC client id registered for Vault (its secret: clientSecretArn, or "
                             "secrets.oidcClientSecret in dev).", "")
    client_secret_arn: Annotated[str, Strict(), rule(checks.secrets_manager_arn)] = setting(
        "ARN of an AWS Secrets Manager secret holding the OIDC client secret (its whole SecretString). It is read "
        "when the deploy identity is written (the first run, or a break-glass run), with the runner's AWS "
        "credentials, and sent to Vault only: it is never in the stack's state, so the role that previews pull "
        "requests needs no access to it. prod's way; dev may use secrets.oidcClientSecret.", "")
    groups_claim: Annotated[str, Strict(), rule(lambda v: None if v.strip() else
                                                "is empty; name the token claim that holds the groups")] = \
        setting("The token claim holding the user's groups.", "groups")
    admin_group: Annotated[str, Strict(), rule(checks.no_wildcard)] = setting(
        "Members of this group get the `deployer` policy (and nothing else); one group, no wildcard.", "")
    allowed_redirect_uris: tuple[HttpsOrLocalhost, ...] = setting(
        "Where the identity provider may send the browser back (the CLI listens on localhost:8250).",
        ("http://localhost:8250/oidc/callback",))


class DeployConfig(Section):
    jwt: CiLogin = setting("CI logins (GitHub Actions OIDC).", factory=lambda: CiLogin())
    operator_oidc: OperatorLogin = setting("Operator logins (OIDC).", factory=lambda: OperatorLogin())
    revoke_root_token: Bool | None = setting(
        "Revoke the root token in the first `pulumi up`, as soon as the deploy identity exists: the rest of that run "
        "uses a short-lived `deployer` token, later runs log in (CI login, or VAULT_TOKEN). Emergencies use "
        "`vault operator generate-root` with the shares (docs/break-glass.md). Defaults to true in prod, false "
        "in dev.", None)
    bootstrap_token_ttl: Duration = setting(
        "When the root token is revoked: lifetime of the `deployer` token that finishes the first run in its place "
        f"(it is not renewable; later runs log in). Longer than {BOOTSTRAP_MARGIN_SECONDS // 60}m (the run stops "
        f"using it that long before it expires) and at most {BOOTSTRAP_TOKEN_MAX_SECONDS // 3600}h.", "1h")
    limit_role_policies: Bool = setting(
        "Let the deployer give Kubernetes auth roles only the policies the stack gives roles (app-*, "
        "external-secrets-*, cert-manager-*, raft-backup, raft-rollout), never admin, deployer, previewer or a "
        "stack's own policies. Vault 1.21 and later check each policy of a role's list against these; a server that "
        "compares only whole lists (OpenBao; Vault before 1.21 without VAULT_NEW_PER_ELEMENT_MATCHING_ON_LIST) "
        "would refuse every role the deployer writes: set false there, and the deployer may give a role any policy.",
        True)


class ImagesConfig(Section):
    registry: Annotated[str, Strict(), rule(lambda v: None if v == "" else checks.image_registry(v))] = setting(
        "Pull every image the stack runs from this registry instead of the public ones, for installs without "
        "internet: a host with an optional port and path (registry.example.com/mirror). Each image keeps its "
        "path and tag under it: hashicorp/vault:1.21.4 (Docker Hub) becomes <registry>/hashicorp/vault:1.21.4, "
        "postgres:16.6-alpine <registry>/library/postgres:16.6-alpine, ghcr.io/external-secrets/external-secrets "
        "<registry>/external-secrets/external-secrets. The nodes must be able to pull from it. Empty: the public "
        "registries.", "")


class SecretsConfig(Section):
    """Everything secret, in one key that must be set with `pulumi config set --secret --path`."""

    transit_unseal_token: Secret | None = setting("Token for the transit unseal Vault.", None)
    vault_token: Secret | None = setting("Token the stack configures Vault with, for teams that revoked the root "
                                         "token after bootstrap.", None)
    database_passwords: dict[Str, Secret] = setting("Admin password per database connection name.", factory=dict)
    kv: dict[Str, dict[Str, Secret]] = setting("Initial KV secrets: path under the KV mount -> key -> value.",
                                               factory=dict)
    oidc_client_secret: Secret | None = setting("The OIDC client secret for deploy.operatorOidc.", None)


class PlatformConfig(Section):
    environment: Literal["dev", "prod"] = setting(
        "dev (a local cluster; dev-only settings allowed) or prod (strict rules).")
    api: ApiConfig = setting("How `pulumi up` reaches the Vault API.")
    unseal: UnsealConfig = setting("How Vault unseals.")
    kubernetes: KubernetesConfig = setting("Where to deploy.", factory=KubernetesConfig)
    cluster: ClusterConfig = setting("The Vault servers and the chart.", factory=ClusterConfig)
    tls: TlsConfig = setting("TLS for the API and cluster traffic.", factory=TlsConfig)
    init: InitConfig = setting("Initialization.", factory=InitConfig)
    aws: AwsConfig | None = setting("AWS account settings (needed for awskms unseal and S3 backups).", None)
    kv: KvConfig = setting("KV v2 engine.", factory=KvConfig)
    database: DatabaseConfig = setting("Database engine.", factory=DatabaseConfig)
    pki: PkiConfig = setting("PKI engine.", factory=PkiConfig)
    transit: TransitEngineConfig = setting("Transit engine.", factory=TransitEngineConfig)
    kubernetes_auth: KubernetesAuthConfig = setting("Kubernetes auth.", factory=KubernetesAuthConfig)
    policies: tuple[Policy, ...] = setting("Extra policies as code.", ())
    audit: AuditConfig = setting("Audit devices.", factory=AuditConfig)
    applications: tuple[Application, ...] = setting("Applications to onboard.", ())
    external_secrets: ExternalSecretsConfig = setting("The External Secrets Operator (for applications that use "
                                                      "it).", factory=ExternalSecretsConfig)
    cert_manager: CertManagerConfig = setting("cert-manager on the PKI engine.", factory=CertManagerConfig)
    backup: BackupConfig = setting("Raft snapshots.", factory=BackupConfig)
    deploy: DeployConfig = setting("How deploys authenticate to Vault once it is set up: no standing root token.",
                                   factory=DeployConfig)
    migration: MigrationConfig = setting("Moving secrets in from AWS Secrets Manager.", factory=MigrationConfig)
    monitoring: MonitoringConfig = setting("Prometheus alerts and a Grafana dashboard.", factory=MonitoringConfig)
    images: ImagesConfig = setting("Where the pods' images come from (a private registry for installs without "
                                   "internet).", factory=ImagesConfig)
    secrets: SecretsConfig = setting("Secret values (secure only).", factory=SecretsConfig)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"


# Keys whose whole value holds secrets and must be `secure:` in the stack file.
SECRET_KEYS = ("secrets",)
TOP_LEVEL_KEYS = tuple(f.alias or n for n, f in PlatformConfig.model_fields.items())
