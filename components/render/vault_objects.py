"""What Vault should contain, as a declarative model computed from the typed config. Pure: no Pulumi, no I/O.

This is the "functional core" of Vault configuration. Two shells consume it:

* ``components/resources/vault_configuration.py`` declares one pulumi_vault resource per item (``pulumi up``);
* ``tests/integration/vault_apply.py`` turns the same items into Vault HTTP API calls, so the
  integration tests exercise exactly what the stack would write, against a real server.

Everything a manual setup does by hand maps to one item here:

=====================================================  =========================================
manual step                                            model item
=====================================================  =========================================
``vault secrets enable -path=secret kv-v2``            ``VaultObjects.kv`` (``KvEngine``)
``vault secrets enable database`` + ``write config/``  ``DatabaseEngine`` connections and roles
``vault secrets enable pki`` + ``root/generate``       ``PkiEngine.root`` (+ ``intermediate``)
``vault write pki/roles/...``                          ``PkiEngine.roles``
``vault secrets enable transit`` + ``transit/keys``    ``TransitEngine``
``vault auth enable kubernetes`` + ``write config``    ``KubernetesAuth``
``vault write auth/kubernetes/role/<app>``             ``KubernetesRole`` (one per application)
``vault write auth/kubernetes/role/<operator>``        ``VaultObjects.service_roles`` (External Secrets, cert-manager)
``vault policy write``                                 ``VaultObjects.policies`` (+ templated)
``vault audit enable file``                            ``AuditDevice`` (two of them)
``vault kv put``                                       ``KvSecret`` (initial values, secret)
``vault operator raft autopilot set-config``           ``RaftAutopilot``
``vault write pki/config/auto-tidy``                   ``PkiTidy`` (one per PKI mount)
``vault write -f database/rotate-root/<name>``         ``DatabaseConnection.rotate_root``
=====================================================  =========================================

Durations are whole seconds here (Vault accepts integer seconds everywhere), so no consumer has
to parse the config's duration strings again.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from components.model import PlatformConfig, Secret
from components.model.checks import duration_seconds, url_host
from components.model.names import SECRET_STORE, Names, cert_manager_role, external_secrets_role
from components.render import deploy_identity as ident
from components.render import policies as pol
from components.render.durations import go_duration_string

# Vault runs in the cluster: it reaches the API server by its in-cluster Service name, and (with the
# chart's authDelegator ClusterRoleBinding) reviews tokens with its own service account's token and CA.
KUBERNETES_HOST = "https://kubernetes.default.svc"
POSTGRES_PLUGIN = "postgresql-database-plugin"

# The throwaway PostgreSQL of dev stacks (components/resources/dev_postgres.py creates it with these names).
DEV_POSTGRES_NAME = "dev-postgres"
DEV_POSTGRES_USER = "vault_admin"
DEV_POSTGRES_DB = "app"
DEV_POSTGRES_PORT = 5432

ROOT_CA_KEY = ("rsa", 4096)
INTERMEDIATE_CA_KEY = ("rsa", 2048)
LEAF_KEY = ("rsa", 2048)
TRANSIT_KEY_TYPE = "aes256-gcm96"
STDOUT_AUDIT_PATH = "stdout"


def seconds(value: str) -> int:
    return int(duration_seconds(value))


def _frozen(mapping: Mapping) -> Mapping:
    return types.MappingProxyType(dict(mapping))


# --- model ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mount:
    """A secrets engine mount (``sys/mounts/<path>``)."""

    path: str
    type: str
    description: str
    options: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    default_lease_ttl_seconds: int | None = None
    max_lease_ttl_seconds: int | None = None


@dataclass(frozen=True)
class KvEngine:
    mount: Mount
    max_versions: int
    cas_required: bool


@dataclass(frozen=True)
class DatabaseConnection:
    """``<database>/config/<name>``. ``password`` is None only for the dev PostgreSQL, whose
    generated password comes from the DevPostgres component at deploy time."""

    name: str
    connection_url: str
    username: str
    password: Secret | None
    allowed_roles: tuple[str, ...]
    verify_connection: bool
    max_open_connections: int
    password_authentication: str
    # PEM of the database server's CA; empty trusts the system roots (and sslmode decides).
    tls_ca: str = ""
    plugin_name: str = POSTGRES_PLUGIN
    dev_postgres: bool = False
    # Rotate the admin password right after the connection is written, so only Vault knows it.
    rotate_root: bool = False


@dataclass(frozen=True)
class DatabaseRole:
    """``<database>/roles/<name>``: dynamic credentials on one connection."""

    name: str
    db_name: str
    creation_statements: tuple[str, ...]
    revocation_statements: tuple[str, ...]
    default_ttl_seconds: int
    max_ttl_seconds: int


@dataclass(frozen=True)
class DatabaseEngine:
    mount: Mount
    connections: tuple[DatabaseConnection, ...]
    roles: tuple[DatabaseRole, ...]


@dataclass(frozen=True)
class CertificateAuthority:
    """A PKI mount holding one CA (root: self-signed; intermediate: signed by the root)."""

    mount: Mount
    common_name: str
    ttl_seconds: int
    key_type: str
    key_bits: int
    issuing_certificates: tuple[str, ...]
    crl_distribution_points: tuple[str, ...]


@dataclass(frozen=True)
class PkiRole:
    """``<issuing mount>/roles/<name>``."""

    backend: str
    name: str
    allowed_domains: tuple[str, ...]
    allow_subdomains: bool
    allow_bare_domains: bool
    ttl_seconds: int
    max_ttl_seconds: int
    key_type: str = LEAF_KEY[0]
    key_bits: int = LEAF_KEY[1]
    # A role bound to a namespace matches its names as globs (*.<ns>.svc) or exactly, and never
    # signs an address or localhost, which no namespace owns.
    allow_glob_domains: bool = False
    allow_ip_sans: bool = True
    allow_localhost: bool = True


def namespace_domains(namespace: str, owned: tuple[str, ...] = ()) -> tuple[str, ...]:
    """What a role bound to ``namespace`` signs: its Services' names, and the names it owns."""
    return (f"*.{namespace}.svc", f"*.{namespace}.svc.cluster.local", *owned)


@dataclass(frozen=True)
class PkiTidy:
    """``<mount>/config/auto-tidy``: Vault removes expired certificates and revocation entries itself."""

    enabled: bool
    interval_seconds: int
    safety_buffer_seconds: int
    tidy_cert_store: bool = True
    tidy_revoked_certs: bool = True
    tidy_revoked_cert_issuer_associations: bool = True
    tidy_expired_issuers: bool = True


@dataclass(frozen=True)
class PkiEngine:
    root: CertificateAuthority
    intermediate: CertificateAuthority | None
    roles: tuple[PkiRole, ...]
    tidy: PkiTidy | None = None

    @property
    def issuing(self) -> CertificateAuthority:
        """The CA that issues leaf certificates (the intermediate when there is one)."""
        return self.intermediate or self.root


@dataclass(frozen=True)
class TransitKey:
    name: str
    type: str = TRANSIT_KEY_TYPE
    # Vault makes a new key version this often (0: never); older versions still decrypt.
    auto_rotate_period_seconds: int = 0


@dataclass(frozen=True)
class TransitEngine:
    mount: Mount
    keys: tuple[TransitKey, ...]


@dataclass(frozen=True)
class KubernetesAuth:
    """``sys/auth/<path>`` (type kubernetes) and its ``config``.

    No token reviewer JWT and no CA are written: with ``disable_local_ca_jwt`` false, Vault reads its
    own pod's service account token and CA, so nothing long-lived is stored in Vault or in state.
    """

    path: str
    kubernetes_host: str
    description: str
    # kubernetesAuth.tokenTtl: the mount's default token lifetime, for roles that set none of their own.
    default_lease_ttl_seconds: int = 3600
    disable_local_ca_jwt: bool = False


@dataclass(frozen=True)
class KubernetesRole:
    """``auth/<path>/role/<name>``: bound to exactly one service account in exactly one namespace."""

    name: str
    service_account: str
    namespace: str
    token_policies: tuple[str, ...]
    token_ttl_seconds: int
    token_max_ttl_seconds: int
    # The audience the service account token must have; empty accepts any.
    audience: str = ""
    # Jobs get their one policy and not even ``default``: they need no token lookups or cubbyhole.
    no_default_policy: bool = False

    @property
    def bound_service_account_names(self) -> tuple[str, ...]:
        return (self.service_account,)

    @property
    def bound_service_account_namespaces(self) -> tuple[str, ...]:
        return (self.namespace,)


# The External Secrets Operator and cert-manager log in for each read or signing: their tokens need
# not outlive one reconcile.
SERVICE_TOKEN_TTL_SECONDS = 600
SERVICE_TOKEN_MAX_TTL_SECONDS = 1200
# The backup token lives for one run; the restart token for a roll (a long roll logs in again).
BACKUP_TOKEN_TTL_SECONDS, BACKUP_TOKEN_MAX_TTL_SECONDS = 900, 1800
ROLLOUT_TOKEN_TTL_SECONDS, ROLLOUT_TOKEN_MAX_TTL_SECONDS = 3600, 4 * 3600


@dataclass(frozen=True)
class AuditDevice:
    """``sys/audit/<path>``."""

    path: str
    type: str
    options: Mapping[str, str]
    description: str


@dataclass(frozen=True)
class KvSecret:
    """An initial KV v2 secret: ``<mount>/data/<name>`` with every value a Secret.

    Written once, with check-and-set 0 ("only if it does not exist"): a secret that already exists
    (rotated, restored, or made by hand) is never overwritten, and later config changes to it are
    not applied. The application team owns the value after the first write.
    """

    mount: str
    name: str
    data: Mapping[str, Secret]
    cas: int = 0


@dataclass(frozen=True)
class RaftAutopilot:
    """``sys/storage/raft/autopilot/configuration``. ``min_quorum`` is the replica count: autopilot never
    removes a dead server when fewer than that many would be left."""

    cleanup_dead_servers: bool
    dead_server_last_contact_threshold: str
    last_contact_threshold: str
    server_stabilization_time: str
    max_trailing_logs: int
    min_quorum: int


@dataclass(frozen=True)
class VaultObjects:
    kv: KvEngine
    database: DatabaseEngine | None
    pki: PkiEngine | None
    transit: TransitEngine | None
    kubernetes_auth: KubernetesAuth
    kubernetes_roles: tuple[KubernetesRole, ...]
    # Every policy except the templated one, which needs the Kubernetes auth mount's accessor.
    policies: tuple[pol.Policy, ...]
    templated_policy: bool
    audit_devices: tuple[AuditDevice, ...]
    kv_secrets: tuple[KvSecret, ...]
    # Kept to render the templated policy once the accessor is known.
    kv_path: str = "secret"
    # Whether some application writes its own folder (then app-templated-write exists too).
    templated_write: bool = False
    # How deploys log in once the root token is gone (deploy.jwt, deploy.operatorOidc).
    deploy_auths: tuple[ident.JwtAuth, ...] = ()
    # Roles of the operators that deliver secrets for applications (External Secrets, cert-manager).
    service_roles: tuple[KubernetesRole, ...] = ()
    # Roles of the stack's own Jobs in the Vault namespace (Raft snapshots, rolling restarts).
    job_roles: tuple[KubernetesRole, ...] = ()
    autopilot: RaftAutopilot | None = None

    @property
    def identity_policy_names(self) -> tuple[str, ...]:
        """The policies DeployIdentity writes (root on the first run, break-glass after), when there is one."""
        if not self.deploy_auths:
            return ()
        names = {p.name for p in self.policies}
        return tuple(n for n in ident.IDENTITY_POLICIES if n in names)

    @property
    def all_roles(self) -> tuple[KubernetesRole, ...]:
        return self.kubernetes_roles + self.service_roles + self.job_roles

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """Every secrets engine mount, in the order they are enabled."""
        found = [self.kv.mount]
        if self.database:
            found.append(self.database.mount)
        if self.pki:
            found.append(self.pki.root.mount)
            if self.pki.intermediate:
                found.append(self.pki.intermediate.mount)
        if self.transit:
            found.append(self.transit.mount)
        return tuple(found)

    def templated(self, kubernetes_accessor: str) -> tuple[pol.Policy, ...]:
        """The templated policies (read, and write when an application writes its own folder)."""
        if not self.templated_policy:
            return ()
        found = [pol.templated_policy_for(self.kv_path, kubernetes_accessor)]
        if self.templated_write:
            found.append(pol.templated_policy_for(self.kv_path, kubernetes_accessor, "write"))
        return tuple(found)

    def all_policies(self, kubernetes_accessor: str) -> tuple[pol.Policy, ...]:
        """Every policy the stack writes, the templated ones included, in a stable order."""
        return self.policies + self.templated(kubernetes_accessor)


# --- builders ------------------------------------------------------------------------------------

def _kv(config: PlatformConfig) -> KvEngine:
    kv = config.kv
    return KvEngine(
        mount=Mount(kv.path, "kv", "Key/value secrets (KV v2), managed by vault-platform",
                    options=_frozen({"version": "2"})),
        max_versions=kv.max_versions,
        cas_required=kv.cas_required,
    )


def dev_postgres_connection_url(namespace: str) -> str:
    """The connection URL template Vault uses for the dev stack's in-cluster PostgreSQL."""
    return (f"postgresql://{{{{username}}}}:{{{{password}}}}@{DEV_POSTGRES_NAME}.{namespace}.svc:"
            f"{DEV_POSTGRES_PORT}/{DEV_POSTGRES_DB}?sslmode=disable")


def _database(config: PlatformConfig) -> DatabaseEngine | None:
    db = config.database
    if not db.enabled:
        return None
    passwords = config.secrets.database_passwords
    connections = [
        DatabaseConnection(
            name=c.name,
            connection_url=c.connection_url,
            username=c.username,
            password=passwords.get(c.name),
            allowed_roles=tuple(c.allowed_roles),
            verify_connection=c.verify_connection,
            max_open_connections=c.max_open_connections,
            password_authentication=c.password_authentication,
            tls_ca=c.tls_ca,
            rotate_root=c.rotate_root,
        )
        for c in db.connections
    ]
    if db.dev_postgres:
        connections.append(DatabaseConnection(
            name=DEV_POSTGRES_NAME,
            connection_url=dev_postgres_connection_url(config.kubernetes.namespace),
            username=DEV_POSTGRES_USER,
            password=None,
            allowed_roles=tuple(r.name for r in db.roles if r.connection == DEV_POSTGRES_NAME),
            verify_connection=True,
            max_open_connections=4,
            password_authentication="scram-sha-256",  # noqa: S106 - a method name, not a password
            dev_postgres=True,
        ))
    roles = tuple(
        DatabaseRole(
            name=r.name,
            db_name=r.connection,
            creation_statements=tuple(r.creation_statements),
            revocation_statements=tuple(r.revocation_statements),
            default_ttl_seconds=seconds(r.default_ttl),
            max_ttl_seconds=seconds(r.max_ttl),
        )
        for r in db.roles
    )
    mount = Mount(db.path, "database", "Dynamic database credentials, managed by vault-platform")
    return DatabaseEngine(mount, tuple(connections), roles)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def pki_urls_base(config: PlatformConfig) -> str:
    """Where clients fetch the issuer certificate and CRL: pki.urlsBase; else api.address, which
    clients in and around the cluster reach (prod: the internal load balancer); else, when that is
    only this machine's loopback (dev), the in-cluster active Service."""
    if config.pki.urls_base:
        return config.pki.urls_base.rstrip("/")
    if url_host(config.api.address) not in LOOPBACK_HOSTS:
        return config.api.address.rstrip("/")
    return Names.of(config).in_cluster_addr.rstrip("/")


def _ca(config: PlatformConfig, path: str, common_name: str, ttl: str, key: tuple[str, int],
        description: str) -> CertificateAuthority:
    base = pki_urls_base(config)
    ttl_seconds = seconds(ttl)
    return CertificateAuthority(
        # The mount's max lease is the CA's lifetime: Vault caps every certificate it issues there.
        mount=Mount(path, "pki", description, max_lease_ttl_seconds=ttl_seconds),
        common_name=common_name,
        ttl_seconds=ttl_seconds,
        key_type=key[0],
        key_bits=key[1],
        issuing_certificates=(f"{base}/v1/{path}/ca",),
        crl_distribution_points=(f"{base}/v1/{path}/crl",),
    )


def _pki(config: PlatformConfig) -> PkiEngine | None:
    pki = config.pki
    if not pki.enabled:
        return None
    root = _ca(config, pki.path, pki.common_name, pki.ttl, ROOT_CA_KEY,
               "Internal root CA, managed by vault-platform")
    intermediate = None
    if pki.intermediate.enabled:
        i = pki.intermediate
        intermediate = _ca(config, i.path, i.common_name, i.ttl, INTERMEDIATE_CA_KEY,
                           "Issuing intermediate CA, managed by vault-platform")
    issuing = (intermediate or root).mount.path
    roles = tuple(
        PkiRole(
            backend=issuing,
            name=r.name,
            allowed_domains=namespace_domains(r.namespace, tuple(r.allowed_domains)) if r.namespace
            else tuple(r.allowed_domains),
            allow_subdomains=r.allow_subdomains and not r.namespace,
            # Bound: the names it owns are exact (bare) names, or globs for the names below one.
            allow_bare_domains=r.allow_bare_domains or bool(r.namespace),
            ttl_seconds=seconds(r.ttl),
            max_ttl_seconds=seconds(r.max_ttl),
            allow_glob_domains=bool(r.namespace),
            allow_ip_sans=not r.namespace,
            allow_localhost=not r.namespace,
        )
        for r in pki.roles
    )
    tidy = None
    if pki.tidy.enabled:
        tidy = PkiTidy(enabled=True, interval_seconds=seconds(pki.tidy.interval),
                       safety_buffer_seconds=seconds(pki.tidy.safety_buffer))
    return PkiEngine(root, intermediate, roles, tidy)


def _transit(config: PlatformConfig) -> TransitEngine | None:
    t = config.transit
    if not t.enabled:
        return None
    period = seconds(t.auto_rotate_period) if t.auto_rotate_period else 0
    return TransitEngine(Mount(t.path, "transit", "Encryption as a service, managed by vault-platform"),
                         tuple(TransitKey(k, auto_rotate_period_seconds=period) for k in t.keys))


def raft_autopilot(config: PlatformConfig) -> RaftAutopilot:
    a = config.cluster.raft.autopilot
    replicas = config.cluster.replicas or 1
    # Vault refuses cleanup below a minimum quorum of 3; a smaller cluster keeps every server.
    cleanup = a.cleanup_dead_servers and replicas >= 3
    # In the form Vault answers with, so that reading them back shows no change.
    return RaftAutopilot(cleanup_dead_servers=cleanup,
                         dead_server_last_contact_threshold=go_duration_string(a.dead_server_last_contact_threshold),
                         last_contact_threshold=go_duration_string(a.last_contact_threshold),
                         server_stabilization_time=go_duration_string(a.server_stabilization_time),
                         max_trailing_logs=a.max_trailing_logs,
                         min_quorum=max(3, replicas) if cleanup else 0)


def _kubernetes_roles(config: PlatformConfig) -> tuple[KubernetesRole, ...]:
    roles = []
    for app in config.applications:
        token_policies: list[str] = []
        own = pol.own_folder_policy(app)
        if config.kubernetes_auth.templated_policy and own:
            token_policies.append(own)
        if pol.app_policy(config, app) is not None:
            token_policies.append(pol.app_policy_name(app))
        roles.append(KubernetesRole(
            name=app.name,
            service_account=app.service_account,
            namespace=app.namespace,
            token_policies=tuple(token_policies),
            token_ttl_seconds=seconds(app.token_ttl or config.kubernetes_auth.token_ttl),
            token_max_ttl_seconds=seconds(app.token_max_ttl or config.kubernetes_auth.token_max_ttl),
            audience=config.kubernetes_auth.audience if app.audience is None else app.audience,
        ))
    return tuple(roles)


def _service_roles(config: PlatformConfig) -> tuple[KubernetesRole, ...]:
    """One role per External Secrets namespace, bound to that namespace's store service account, and one
    per cert-manager Issuer, bound to its service account in its namespace and the audience cert-manager
    requests for it."""
    roles = [KubernetesRole(
        name=external_secrets_role(namespace),
        service_account=SECRET_STORE,
        namespace=namespace,
        token_policies=(external_secrets_role(namespace),),
        token_ttl_seconds=SERVICE_TOKEN_TTL_SECONDS,
        token_max_ttl_seconds=SERVICE_TOKEN_MAX_TTL_SECONDS,
        audience=config.kubernetes_auth.audience,
    ) for namespace in pol.external_secrets_namespaces(config)]
    cm = config.cert_manager
    if cm.enabled:
        roles += [KubernetesRole(
            name=cert_manager_role(issuer.namespace),
            service_account=cm.issuer_name,
            namespace=issuer.namespace,
            token_policies=(cert_manager_role(issuer.namespace),),
            token_ttl_seconds=SERVICE_TOKEN_TTL_SECONDS,
            token_max_ttl_seconds=SERVICE_TOKEN_MAX_TTL_SECONDS,
            audience=cert_manager_audience(issuer.namespace, cm.issuer_name),
        ) for issuer in cm.issuers]
    return tuple(roles)


def _job_roles(config: PlatformConfig) -> tuple[KubernetesRole, ...]:
    """The backup and rolling-restart Jobs' roles: each bound to its Job's service account in the Vault
    namespace, with exactly its one policy."""
    release = config.cluster.release_name
    roles = []
    if config.backup.enabled:
        roles.append(KubernetesRole(
            name=pol.BACKUP_POLICY, service_account=f"{release}-backup", namespace=config.kubernetes.namespace,
            token_policies=(pol.BACKUP_POLICY,), token_ttl_seconds=BACKUP_TOKEN_TTL_SECONDS,
            token_max_ttl_seconds=BACKUP_TOKEN_MAX_TTL_SECONDS, audience=config.kubernetes_auth.audience,
            no_default_policy=True))
    if config.cluster.rollout.enabled:
        roles.append(KubernetesRole(
            name=pol.ROLLOUT_POLICY, service_account=f"{release}-rollout", namespace=config.kubernetes.namespace,
            token_policies=(pol.ROLLOUT_POLICY,), token_ttl_seconds=ROLLOUT_TOKEN_TTL_SECONDS,
            token_max_ttl_seconds=ROLLOUT_TOKEN_MAX_TTL_SECONDS, audience=config.kubernetes_auth.audience,
            no_default_policy=True))
    return tuple(roles)


def cert_manager_audience(namespace: str, issuer: str) -> str:
    """The audience cert-manager puts on the tokens it requests for an Issuer (besides the server's
    address): unique to the Issuer and its namespace, so a token minted for another is refused."""
    return f"vault://{namespace}/{issuer}"


def _audit(config: PlatformConfig) -> tuple[AuditDevice, ...]:
    # Vault refuses every request it cannot audit: with two devices, one full or broken device
    # does not take Vault down, and the pod log keeps a copy when the volume is lost.
    devices = [AuditDevice("file", "file", _frozen({"file_path": config.audit.file_path}),
                           "Audit log on the audit volume, managed by vault-platform")]
    if config.audit.secondary == "stdout":
        devices.append(AuditDevice(STDOUT_AUDIT_PATH, "file", _frozen({"file_path": "stdout"}),
                                   "Audit log to the pod log (second device), managed by vault-platform"))
    return tuple(devices)


def _kv_secrets(config: PlatformConfig) -> tuple[KvSecret, ...]:
    return tuple(KvSecret(config.kv.path, path.strip("/"), _frozen(values))
                 for path, values in sorted(config.secrets.kv.items()))


def templated_policy_names(objects: VaultObjects) -> tuple[str, ...]:
    if not objects.templated_policy:
        return ()
    return (pol.TEMPLATED_POLICY, pol.TEMPLATED_WRITE_POLICY) if objects.templated_write else (pol.TEMPLATED_POLICY,)


def managed(objects: VaultObjects, role_policies: tuple[str, ...] = pol.ROLE_POLICY_FAMILIES) -> ident.Managed:
    """What the stack manages, as the paths the deployer policy grants."""
    pki = objects.pki
    return ident.Managed(
        mounts=tuple((m.path, m.type) for m in objects.mounts),
        auth_paths=(objects.kubernetes_auth.path,),
        identity_auth_paths=tuple(a.path for a in objects.deploy_auths),
        policy_names=tuple(sorted({*(p.name for p in objects.policies), *templated_policy_names(objects),
                                   ident.DEPLOYER_POLICY, ident.PREVIEWER_POLICY})),
        audit_paths=tuple(d.path for d in objects.audit_devices),
        kv_secret_paths=tuple(f"{s.mount}/data/{s.name}" for s in objects.kv_secrets),
        kv_mount=objects.kv.mount.path,
        database_mount=objects.database.mount.path if objects.database else "",
        pki_root=pki.root.mount.path if pki else "",
        pki_intermediate=pki.intermediate.mount.path if pki and pki.intermediate else "",
        pki_issuing=pki.issuing.mount.path if pki else "",
        transit_mount=objects.transit.mount.path if objects.transit else "",
        autopilot=objects.autopilot is not None,
        role_policies=role_policies,
    )


def build(config: PlatformConfig) -> VaultObjects:
    """Everything Vault should contain for this stack."""
    objects = _build(config)
    auths = ident.jwt_auths(config)
    if not auths:
        return objects
    with_auths = replace(objects, deploy_auths=auths)
    # The deploy identity's policies come first: the first run creates them before anything else.
    role_policies = pol.ROLE_POLICY_FAMILIES if config.deploy.limit_role_policies else ()
    # The policies of the restore and migration logins, where the CI login has those roles.
    logins = {r.name for a in auths for r in a.roles}
    tasks = [p for role, p in ((ident.RESTORE_ROLE, pol.restore_policy()),
                               (ident.MIGRATION_ROLE, pol.migration_policy(config))) if role in logins]
    return replace(with_auths, policies=(*ident.identity_policies(managed(with_auths, role_policies), auths),
                                         *objects.policies, *tasks))


def _build(config: PlatformConfig) -> VaultObjects:
    return VaultObjects(
        kv=_kv(config),
        database=_database(config),
        pki=_pki(config),
        transit=_transit(config),
        kubernetes_auth=KubernetesAuth(config.kubernetes_auth.path, KUBERNETES_HOST,
                                       "Kubernetes service account logins, managed by vault-platform",
                                       default_lease_ttl_seconds=seconds(config.kubernetes_auth.token_ttl)),
        kubernetes_roles=_kubernetes_roles(config),
        service_roles=_service_roles(config),
        job_roles=_job_roles(config),
        policies=tuple(pol.static_policies(config)),
        templated_policy=config.kubernetes_auth.templated_policy,
        templated_write=config.kubernetes_auth.templated_policy and any(
            a.own_folder == "write" for a in config.applications),
        audit_devices=_audit(config),
        kv_secrets=_kv_secrets(config),
        kv_path=config.kv.path,
        autopilot=raft_autopilot(config),
    )
