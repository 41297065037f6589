"""VaultConfiguration: secrets engines, Kubernetes auth, policies, audit and applications as resources.

A resource shell around ``components.render.vault_objects``: every item of that model becomes one
pulumi_vault resource here, and nothing is computed here that the model does not already say.
Every resource is a child of this component and uses the in-stack Vault provider (passed in, and
set explicitly on each resource), never a default provider reading VAULT_ADDR.

Database engine: one ``vault.Mount`` (type database) plus one ``database.SecretBackendConnection``
per connection and one ``database.SecretBackendRole`` per role, rather than ``database.SecretsMount``.
A SecretsMount holds every connection as a nested block of one resource, so editing one connection
diffs (and on some changes replaces) all of them, and one connection's unreachable database fails
the whole mount. Separate resources give per-connection diffs and errors, one secret input per
password, and the same shape as the other engines (mount + children).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_vault as vault

from components.providers.database_leases import DatabaseLeases
from components.providers.database_root import DatabaseRootRotation
from components.render import policies as pol
from components.render import vault_objects as vs
from components.resources.errors import InvalidInput
from components.resources.stack_config import secret_output


def _slug(text: str) -> str:
    return text.strip("/").replace("/", "-").replace("_", "-").replace(".", "-")


@dataclass(frozen=True)
class DevPostgresConnection:
    """The in-cluster dev PostgreSQL's connection URL and admin password, known at deploy time."""

    connection_url: pulumi.Input[str]
    password: pulumi.Input[str]
    # The database's resources: Vault verifies the connection on write, so it waits for them.
    wait_for: tuple[pulumi.Resource, ...] = ()


@dataclass(frozen=True)
class VaultAccess:
    """How the stack's own dynamic resources reach Vault: the Vault provider's address and CA, the run's
    token file (VaultBootstrap.token_file) and the CI login (see VaultHttp's login order)."""

    address: pulumi.Input[str]
    ca_cert_pem: pulumi.Input[str]
    token_file: pulumi.Input[str]
    login_path: str = ""
    login_audience: str = ""

    def props(self) -> dict[str, pulumi.Input[Any]]:
        return {"address": self.address, "ca_cert_pem": self.ca_cert_pem, "token_file": self.token_file,
                "login_path": self.login_path, "login_audience": self.login_audience}


@dataclass(frozen=True)
class VaultConfigurationArgs:
    # Every Vault object to declare (components.render.vault_objects.build).
    objects: vs.VaultObjects
    # Replacing the root CA or a transit key cannot be undone (issued certificates stop chaining,
    # ciphertexts stop decrypting): prod protects them; dev stacks stay disposable.
    protect_keys: bool = False
    # The dev stack's in-cluster PostgreSQL, when the database engine connects to it.
    dev_postgres: DevPostgresConnection | None = None
    # Lets the stack revoke a database connection's credentials before the connection is deleted.
    vault_access: VaultAccess | None = None
    # Where a role was declared before it moved here (role name -> aliases), so that moving it is not a
    # delete of the Vault role the new resource has just written.
    role_aliases: Mapping[str, Sequence[pulumi.Alias]] = field(default_factory=dict)


class VaultConfiguration(pulumi.ComponentResource):
    """Every secrets engine, auth method, role, policy and audit device the stack declares in Vault."""

    kubernetes_auth_path: pulumi.Output[str]
    """The Kubernetes auth mount's path."""
    kubernetes_accessor: pulumi.Output[str]
    """The Kubernetes auth mount's accessor (templated policies name it)."""
    settings: vs.VaultObjects
    """What it was made from."""
    audit_devices: list[vault.Audit]
    """The audit devices: every other change waits for them."""
    mounts: dict[str, vault.Mount]
    """Secrets engine mounts by path."""
    autopilot: vault.RaftAutopilot | None
    """Raft autopilot's settings, when the stack sets them."""
    roles: list[vault.kubernetes.AuthBackendRole]
    """The applications' Kubernetes auth roles."""
    service_roles: list[vault.kubernetes.AuthBackendRole]
    """The roles of the services that deliver secrets (External Secrets stores, cert-manager Issuers)."""
    job_roles: list[vault.kubernetes.AuthBackendRole]
    """The roles of the platform's own Jobs (backup, rolling restart)."""
    kv_secrets: list[vault.kv.SecretV2]
    """The initial KV secrets (dev)."""

    def __init__(self, name: str, args: VaultConfigurationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:configuration:VaultConfiguration", name, None, opts)
        # The Vault provider (VaultBootstrap.provider) comes through opts, as every provider does.
        provider = self.get_provider("vault:index:Provider")
        if provider is None:
            raise InvalidInput("opts.providers", "VaultConfiguration needs the Vault provider "
                                                 "(VaultBootstrap.provider)")
        self._name = name
        self._provider = provider
        self._protect_keys = args.protect_keys
        self._vault_access = args.vault_access
        settings = args.objects
        dev_postgres = args.dev_postgres
        self.settings = settings

        self._audited_after: list[pulumi.Resource] = []
        self.audit_devices = [self._audit(d) for d in settings.audit_devices]
        self._audited_after = list(self.audit_devices)
        self.mounts = {}
        kv_mount = self._kv(settings.kv)
        if settings.database is not None:
            self._database(settings.database, dev_postgres)
        if settings.pki is not None:
            self._pki(settings.pki)
        if settings.transit is not None:
            self._transit(settings.transit)
        self.autopilot = self._autopilot(settings.autopilot) if settings.autopilot is not None else None
        auth = self._kubernetes_auth(settings)
        self._policies(settings, auth)
        self.roles = [self._role(role, auth) for role in settings.kubernetes_roles]
        self.service_roles = [self._role(role, auth, f"{self._name}-role-{role.name}")
                              for role in settings.service_roles]
        self.job_roles = [self._role(role, auth, f"{self._name}-role-{role.name}",
                                     aliases=list(args.role_aliases.get(role.name, ())))
                          for role in settings.job_roles]
        self.kv_secrets = [self._kv_secret(secret, kv_mount) for secret in settings.kv_secrets]

        self.kubernetes_auth_path = auth.path
        self.kubernetes_accessor = auth.accessor
        self.register_outputs({"kubernetes_auth_path": self.kubernetes_auth_path,
                               "kubernetes_accessor": self.kubernetes_accessor})

    # -- helpers ------------------------------------------------------------------------------

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        # Everything waits for the audit devices: no change to Vault goes unaudited, the first run's
        # included.
        depends_on = [*self._audited_after, *kwargs.pop("depends_on", [])]
        return pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=depends_on, **kwargs)

    def _mount(self, mount: vs.Mount, **kwargs: Any) -> vault.Mount:
        resource = vault.Mount(
            f"{self._name}-mount-{_slug(mount.path)}",
            path=mount.path,
            type=mount.type,
            description=mount.description,
            options=dict(mount.options) or None,
            default_lease_ttl_seconds=mount.default_lease_ttl_seconds,
            max_lease_ttl_seconds=mount.max_lease_ttl_seconds,
            # Unmounting destroys everything stored below the mount (secrets, CA keys, leases):
            # `pulumi destroy` must not do it by the way (docs/bootstrap-and-recovery.md, teardown).
            opts=self._opts(protect=True, **kwargs),
        )
        self.mounts[mount.path] = resource
        return resource

    # -- audit --------------------------------------------------------------------------------

    def _audit(self, device: vs.AuditDevice) -> vault.Audit:
        return vault.Audit(
            f"{self._name}-audit-{_slug(device.path)}",
            path=device.path,
            type=device.type,
            options=dict(device.options),
            description=device.description,
            opts=self._opts(),
        )

    # -- secrets engines ----------------------------------------------------------------------

    def _kv(self, kv: vs.KvEngine) -> vault.Mount:
        mount = self._mount(kv.mount)
        vault.kv.SecretBackendV2(
            f"{self._name}-kv-config",
            mount=mount.path,
            max_versions=kv.max_versions,
            cas_required=kv.cas_required,
            opts=self._opts(),
        )
        return mount

    def _database(self, db: vs.DatabaseEngine, dev_postgres: DevPostgresConnection | None) -> None:
        mount = self._mount(db.mount)
        connections: dict[str, vault.database.SecretBackendConnection] = {}
        for conn in db.connections:
            depends: list[pulumi.Resource] = []
            if conn.dev_postgres:
                if dev_postgres is None:
                    raise InvalidInput("database.devPostgres",
                                                    "is true but no DevPostgres connection was given")
                url, username = dev_postgres.connection_url, conn.username
                password = pulumi.Output.secret(dev_postgres.password)
                # verify_connection needs the database up: wait for its Deployment to be ready.
                depends += list(dev_postgres.wait_for)
            else:
                if conn.password is None:
                    raise InvalidInput("database.connections",
                                                    f"no password for database connection {conn.name!r}")
                url, username, password = conn.connection_url, conn.username, secret_output(conn.password)
            # After a root rotation the password in config is no longer valid in the database: it must
            # never be sent again (the provider sends it only when it changes, so a change is ignored).
            ignore = ["postgresql.password"] if conn.rotate_root else []
            connections[conn.name] = vault.database.SecretBackendConnection(
                f"{self._name}-db-{conn.name}",
                backend=mount.path,
                name=conn.name,
                plugin_name=conn.plugin_name,
                allowed_roles=list(conn.allowed_roles),
                verify_connection=conn.verify_connection,
                postgresql=vault.database.SecretBackendConnectionPostgresqlArgs(
                    connection_url=url,
                    username=username,
                    password=password,
                    max_open_connections=conn.max_open_connections,
                    password_authentication=conn.password_authentication,
                    tls_ca=conn.tls_ca or None,
                ),
                opts=self._opts(depends_on=depends, additional_secret_outputs=["postgresql"], ignore_changes=ignore),
            )
        roles: dict[str, list[pulumi.Resource]] = {name: [] for name in connections}
        for role in db.roles:
            roles[role.db_name].append(vault.database.SecretBackendRole(
                f"{self._name}-db-role-{role.name}",
                backend=mount.path,
                name=role.name,
                db_name=connections[role.db_name].name,
                creation_statements=list(role.creation_statements),
                revocation_statements=list(role.revocation_statements),
                default_ttl=role.default_ttl_seconds,
                max_ttl=role.max_ttl_seconds,
                opts=self._opts(),
            ))
        if self._vault_access is not None:
            access = self._vault_access
            for conn in db.connections:
                # Deleted before the connection and its roles (it depends on them): revokes the
                # credentials they issued while the connection can still drop the users.
                DatabaseLeases(
                    f"{self._name}-db-leases-{conn.name}", access=access.props(), mount=mount.path,
                    connection=conn.name,
                    roles=[r.name for r in db.roles if r.db_name == conn.name],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[connections[conn.name], *roles[conn.name]]))
                if conn.rotate_root:
                    DatabaseRootRotation(
                        f"{self._name}-db-rotate-root-{conn.name}", access=access.props(), mount=mount.path,
                        connection=conn.name,
                        connection_url=conn.connection_url, username=conn.username,
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[connections[conn.name]]))

    def _ca_urls(self, ca: vs.CertificateAuthority, mount: vault.Mount, label: str) -> None:
        vault.pkisecret.SecretBackendConfigUrls(
            f"{self._name}-pki-{label}-urls",
            backend=mount.path,
            issuing_certificates=list(ca.issuing_certificates),
            crl_distribution_points=list(ca.crl_distribution_points),
            opts=self._opts(),
        )

    def _tidy(self, tidy: vs.PkiTidy, mount: vault.Mount, label: str) -> None:
        vault.pkisecret.BackendConfigAutoTidy(
            f"{self._name}-pki-{label}-auto-tidy",
            backend=mount.path,
            enabled=tidy.enabled,
            interval_duration=f"{tidy.interval_seconds}s",
            safety_buffer=f"{tidy.safety_buffer_seconds}s",
            tidy_cert_store=tidy.tidy_cert_store,
            tidy_revoked_certs=tidy.tidy_revoked_certs,
            tidy_revoked_cert_issuer_associations=tidy.tidy_revoked_cert_issuer_associations,
            tidy_expired_issuers=tidy.tidy_expired_issuers,
            opts=self._opts(),
        )

    def _pki(self, pki: vs.PkiEngine) -> None:
        root_mount = self._mount(pki.root.mount)
        root = vault.pkisecret.SecretBackendRootCert(
            f"{self._name}-pki-root",
            backend=root_mount.path,
            type="internal",
            common_name=pki.root.common_name,
            ttl=str(pki.root.ttl_seconds),
            key_type=pki.root.key_type,
            key_bits=pki.root.key_bits,
            # A new root CA invalidates every certificate issued so far: never replace it by accident.
            opts=self._opts(protect=self._protect_keys),
        )
        self._ca_urls(pki.root, root_mount, "root")
        if pki.tidy is not None:
            self._tidy(pki.tidy, root_mount, "root")
        issuer_ready: pulumi.Resource = root
        issuing_mount = root_mount
        if pki.intermediate is not None:
            inter = pki.intermediate
            issuing_mount = self._mount(inter.mount)
            csr = vault.pkisecret.SecretBackendIntermediateCertRequest(
                f"{self._name}-pki-intermediate-csr",
                backend=issuing_mount.path,
                type="internal",
                common_name=inter.common_name,
                key_type=inter.key_type,
                key_bits=inter.key_bits,
                opts=self._opts(),
            )
            signed = vault.pkisecret.SecretBackendRootSignIntermediate(
                f"{self._name}-pki-intermediate-signed",
                backend=root_mount.path,
                csr=csr.csr,
                common_name=inter.common_name,
                ttl=str(inter.ttl_seconds),
                format="pem_bundle",
                opts=self._opts(depends_on=[root]),
            )
            issuer_ready = vault.pkisecret.SecretBackendIntermediateSetSigned(
                f"{self._name}-pki-intermediate",
                backend=issuing_mount.path,
                certificate=signed.certificate,
                opts=self._opts(),
            )
            self._ca_urls(inter, issuing_mount, "intermediate")
            if pki.tidy is not None:
                self._tidy(pki.tidy, issuing_mount, "intermediate")
        for role in pki.roles:
            vault.pkisecret.SecretBackendRole(
                f"{self._name}-pki-role-{role.name}",
                backend=issuing_mount.path,
                name=role.name,
                allowed_domains=list(role.allowed_domains),
                allow_subdomains=role.allow_subdomains,
                allow_bare_domains=role.allow_bare_domains,
                allow_glob_domains=role.allow_glob_domains,
                allow_ip_sans=role.allow_ip_sans,
                allow_localhost=role.allow_localhost,
                ttl=str(role.ttl_seconds),
                max_ttl=str(role.max_ttl_seconds),
                key_type=role.key_type,
                key_bits=role.key_bits,
                opts=self._opts(depends_on=[issuer_ready]),
            )

    def _transit(self, transit: vs.TransitEngine) -> None:
        mount = self._mount(transit.mount)
        for key in transit.keys:
            vault.transit.SecretBackendKey(
                f"{self._name}-transit-{key.name}",
                backend=mount.path,
                name=key.name,
                type=key.type,
                auto_rotate_period=key.auto_rotate_period_seconds,
                # Deleting a key destroys every ciphertext made with it.
                deletion_allowed=False,
                opts=self._opts(protect=self._protect_keys),
            )

    # -- Raft ---------------------------------------------------------------------------------

    def _autopilot(self, a: vs.RaftAutopilot) -> vault.RaftAutopilot:
        return vault.RaftAutopilot(
            f"{self._name}-raft-autopilot",
            cleanup_dead_servers=a.cleanup_dead_servers,
            dead_server_last_contact_threshold=a.dead_server_last_contact_threshold,
            last_contact_threshold=a.last_contact_threshold,
            server_stabilization_time=a.server_stabilization_time,
            max_trailing_logs=a.max_trailing_logs,
            min_quorum=a.min_quorum,
            opts=self._opts(),
        )

    # -- auth, policies, applications ---------------------------------------------------------

    def _kubernetes_auth(self, settings: vs.VaultObjects) -> vault.AuthBackend:
        k = settings.kubernetes_auth
        auth = vault.AuthBackend(
            f"{self._name}-auth-kubernetes",
            type="kubernetes",
            path=k.path,
            description=k.description,
            tune=vault.AuthBackendTuneArgs(default_lease_ttl=f"{k.default_lease_ttl_seconds}s"),
            opts=self._opts(),
        )
        vault.kubernetes.AuthBackendConfig(
            f"{self._name}-auth-kubernetes-config",
            backend=auth.path,
            kubernetes_host=k.kubernetes_host,
            disable_local_ca_jwt=k.disable_local_ca_jwt,
            opts=self._opts(),
        )
        return auth

    def _policy(self, policy: pol.Policy) -> vault.Policy:
        return vault.Policy(f"{self._name}-policy-{policy.name}", name=policy.name, policy=pol.render(policy),
                            opts=self._opts())

    def _policies(self, settings: vs.VaultObjects, auth: vault.AuthBackend) -> None:
        # The deploy identity's policies are written by DeployIdentity (components/providers/deploy_identity.py),
        # before this component's provider can log in at all, and a deployer may not write them.
        for policy in settings.policies:
            if policy.name not in settings.identity_policy_names:
                self._policy(policy)
        if settings.templated_policy:
            vault.Policy(
                f"{self._name}-policy-{pol.TEMPLATED_POLICY}",
                name=pol.TEMPLATED_POLICY,
                policy=auth.accessor.apply(lambda accessor: pol.render(settings.templated(accessor)[0])),
                opts=self._opts(),
            )
        if settings.templated_write:
            vault.Policy(
                f"{self._name}-policy-{pol.TEMPLATED_WRITE_POLICY}",
                name=pol.TEMPLATED_WRITE_POLICY,
                policy=auth.accessor.apply(lambda accessor: pol.render(settings.templated(accessor)[1])),
                opts=self._opts(),
            )

    def _role(self, role: vs.KubernetesRole, auth: vault.AuthBackend, resource_name: str | None = None,
              aliases: list[pulumi.Alias] | None = None) -> vault.kubernetes.AuthBackendRole:
        return vault.kubernetes.AuthBackendRole(
            resource_name or f"{self._name}-app-{role.name}",
            backend=auth.path,
            role_name=role.name,
            bound_service_account_names=list(role.bound_service_account_names),
            bound_service_account_namespaces=list(role.bound_service_account_namespaces),
            token_policies=list(role.token_policies),
            token_ttl=role.token_ttl_seconds,
            token_max_ttl=role.token_max_ttl_seconds,
            audience=role.audience or None,
            token_no_default_policy=role.no_default_policy or None,
            opts=self._opts(aliases=aliases or None),
        )

    def _kv_secret(self, secret: vs.KvSecret, kv_mount: vault.Mount) -> vault.kv.SecretV2:
        data_json = pulumi.Output.secret(
            # dict(): with no keys at all, Output.all gives a list.
            pulumi.Output.all(**{key: secret_output(value) for key, value in secret.data.items()}).apply(
                lambda values: json.dumps(dict(values), sort_keys=True)))
        return vault.kv.SecretV2(
            f"{self._name}-kv-{_slug(secret.name)}",
            mount=kv_mount.path,
            name=secret.name,
            data_json=data_json,
            # Initial values: written once, then owned by the application team. cas=0 makes Vault
            # refuse the write if the secret exists; later config edits are ignored (the plan shows
            # none), so a value rotated in Vault is never overwritten by a stale one from config.
            cas=0,
            disable_read=True,
            # Removing it from the config forgets it: the value belongs to the application now, and
            # the deployer may not delete secret data anyway.
            opts=self._opts(ignore_changes=["dataJson"], retain_on_delete=True),
        )
