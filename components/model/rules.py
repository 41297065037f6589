"""Rules that involve more than one setting, or the environment. They run once every setting has
its type and value rules satisfied, and report every problem at once."""

from __future__ import annotations

from components.model.checks import duplicates, duration_seconds, name_covers, quantity_value, url_host
from components.model.names import server_dns_names
from components.model.platform import PlatformConfig
from components.model.problems import Problems

# Policy names the platform writes itself; a stack's own policy must not replace them.
PLATFORM_POLICIES = ("root", "default", "admin", "raft-backup", "raft-rollout", "app-templated",
                     "app-templated-write")
# Vault refuses a shorter dead-server threshold, and automatic transit rotation more often than hourly.
MIN_DEAD_SERVER_SECONDS = 60
MIN_TRANSIT_ROTATION_SECONDS = 3600


def apply_environment_defaults(config: PlatformConfig) -> PlatformConfig:
    """Defaults that depend on the environment: 5 replicas spread over zones in prod, 3 in dev."""
    cluster = config.cluster
    changes = {}
    if cluster.replicas is None:
        changes["replicas"] = 5 if config.is_prod else 3
    if cluster.zone_spread is None:
        changes["zone_spread"] = config.is_prod
    if cluster.raft.performance_multiplier is None:
        # Production failover in ~2.5 s instead of ~8 s; dev keeps Vault's default, which tolerates a
        # laptop that pauses the kind nodes.
        changes["raft"] = cluster.raft.model_copy(update={"performance_multiplier": 1 if config.is_prod else 5})
    if changes:
        config = config.model_copy(update={"cluster": cluster.model_copy(update=changes)})
    return config


def check(c: PlatformConfig, problems: Problems) -> None:
    _check_cluster(c, problems)
    _check_dev_only(c, problems)
    _check_api_tls_unseal(c, problems)
    _check_init(c, problems)
    _check_database(c, problems)
    _check_pki(c, problems)
    _check_applications(c, problems)
    _check_policies(c, problems)
    _check_day2(c, problems)


def _check_cluster(c: PlatformConfig, problems: Problems) -> None:
    replicas = c.cluster.replicas
    assert replicas is not None
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


def _check_dev_only(c: PlatformConfig, problems: Problems) -> None:
    if not c.is_prod:
        return
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


def _check_api_tls_unseal(c: PlatformConfig, problems: Problems) -> None:
    replicas = c.cluster.replicas or 0
    if c.api.service_type == "NodePort" and c.api.node_port is None:
        problems.add("api.nodePort", "is required when api.serviceType is NodePort (30000-32767, matching the kind "
                                     "cluster's extraPortMappings)")
    if c.api.service_type != "NodePort" and c.api.node_port is not None:
        problems.add("api.nodePort", f"{c.api.node_port} is only used with api.serviceType NodePort")
    if c.unseal.type == "shamir" and c.api.service_type == "NodePort" and replicas > 5:
        problems.add("cluster.replicas", f"{replicas} is more pods than kind/dev-cluster.yaml maps unseal ports for "
                                         "(5); a shamir dev stack unseals each pod through its own port")
    if c.api.service_type == "LoadBalancer" and not c.api.internal_load_balancer and c.is_prod \
            and not c.api.public_exposure_intended:
        problems.add("api.internalLoadBalancer", "false would put Vault's API on an internet-facing load balancer; "
                                                 "prod refuses that unless api.publicExposureIntended is true")
    if c.api.public_exposure_intended and (c.api.internal_load_balancer or c.api.service_type != "LoadBalancer"):
        problems.add("api.publicExposureIntended", "is only used with api.serviceType LoadBalancer and "
                                                   "api.internalLoadBalancer false")
    dns = c.api.dns
    if dns.record != "none" and c.api.service_type != "LoadBalancer":
        problems.add("api.dns.record", f"{dns.record!r} points the name at a load balancer; it needs "
                                       "api.serviceType LoadBalancer")
    if dns.record == "route53":
        if not dns.route53_zone_id:
            problems.add("api.dns.route53ZoneId", "is required when api.dns.record is route53")
        if c.aws is None:
            problems.add("aws", "is required when api.dns.record is route53")
    elif dns.route53_zone_id:
        problems.add("api.dns.route53ZoneId", f"is only used with api.dns.record route53, not {dns.record!r}")
    host = url_host(c.api.address)
    if c.tls.source == "generated" and not _certificate_covers(c, host):
        problems.add("api.address", f"{c.api.address!r}: the host {host!r} is not in the server certificate, so "
                                    "`pulumi up` could not verify Vault there; add it to tls.extraDnsNames (or "
                                    "tls.extraIpAddresses)")
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
                            "oidcIssuer, keyAdministrators)")
    if needs_aws and c.aws is not None and not c.aws.key_administrators:
        problems.add("aws.keyAdministrators", "is required: the stack creates KMS keys (auto-unseal, snapshot bucket) "
                                              "with an explicit key policy, and only these roles may administer them. "
                                              "Name at least the role that runs `pulumi up` (`aws sts "
                                              "get-caller-identity` shows it; use the role ARN, not the session)")


def _check_init(c: PlatformConfig, problems: Problems) -> None:
    if c.init.threshold > c.init.shares:
        problems.add("init.threshold", f"{c.init.threshold} is more than init.shares {c.init.shares}")
    if c.is_prod and c.init.threshold < 2 and c.init.shares > 1:
        problems.add("init.threshold",
                     f"{c.init.threshold} lets one person unseal or recover prod alone; use 2 or more")
    if c.init.pgp_keys and len(c.init.pgp_keys) != c.init.shares:
        problems.add("init.pgpKeys", f"has {len(c.init.pgp_keys)} keys but init.shares is {c.init.shares}: give "
                                     "exactly one key per share")


def _unique(problems: Problems, key: str, what: str, names: list[str]) -> None:
    for dup in duplicates(names):
        problems.add(key, f"{what} {dup!r} appears more than once")


def _check_database(c: PlatformConfig, problems: Problems) -> None:
    db = c.database
    names = [conn.name for conn in db.connections]
    _unique(problems, "database.connections", "connection name", names)
    connections = set(names)
    if db.dev_postgres and "dev-postgres" in connections:
        problems.add("database.connections", "'dev-postgres' is the connection database.devPostgres creates; "
                                             "do not declare it")
    if db.dev_postgres:
        connections.add("dev-postgres")
    role_names = [r.name for r in db.roles]
    _unique(problems, "database.roles", "role name", role_names)
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
        for role_name in conn.allowed_roles:
            if role_name not in role_names:
                problems.add(f"database.connections[{i}].allowedRoles",
                             f"{role_name!r} is not a role in database.roles")
        if conn.name not in c.secrets.database_passwords:
            problems.add(f"secrets.databasePasswords.{conn.name}",
                         f"is required for database connection {conn.name!r}; set it with `pulumi config set "
                         f"--secret --path 'secrets.databasePasswords.{conn.name}'`")
    for name in c.secrets.database_passwords:
        if name not in names:
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
    _unique(problems, "pki.roles", "role name", [r.name for r in pki.roles])
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
    bindings = [f"{a.namespace}/{a.service_account}" for a in c.applications]
    for binding in duplicates(bindings):
        problems.add("applications", f"service account {binding} is bound to more than one application")
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
        ttl = app.token_ttl or c.kubernetes_auth.token_ttl
        max_ttl = app.token_max_ttl or c.kubernetes_auth.token_max_ttl
        if duration_seconds(ttl) > duration_seconds(max_ttl):
            problems.add(f"{key}.tokenMaxTtl" if app.token_max_ttl else f"{key}.tokenTtl",
                         f"{ttl!r} (token lifetime) is longer than its maximum {max_ttl!r}")
        if app.own_folder != "read" and not c.kubernetes_auth.templated_policy:
            problems.add(f"{key}.ownFolder", f"{app.own_folder!r} needs kubernetesAuth.templatedPolicy (the own "
                                             "folder is granted through it)")
        if c.is_prod and not (app.audience or c.kubernetes_auth.audience):
            problems.add(f"{key}.audience", "is empty, and so is kubernetesAuth.audience: prod binds every role to "
                                            "a token audience")
    if duration_seconds(c.kubernetes_auth.token_ttl) > duration_seconds(c.kubernetes_auth.token_max_ttl):
        problems.add("kubernetesAuth.tokenTtl", f"{c.kubernetes_auth.token_ttl!r} is longer than "
                                                f"kubernetesAuth.tokenMaxTtl {c.kubernetes_auth.token_max_ttl!r}")
    if c.is_prod and not c.kubernetes_auth.audience:
        problems.add("kubernetesAuth.audience", "is empty: prod binds every Kubernetes auth role to a token audience")


def _check_policies(c: PlatformConfig, problems: Problems) -> None:
    names = [p.name for p in c.policies]
    _unique(problems, "policies", "policy name", names)
    reserved = set(PLATFORM_POLICIES) | {f"app-{a.name}" for a in c.applications}
    for name in names:
        if name in reserved:
            problems.add("policies", f"policy name {name!r} is reserved by the platform; choose another")
    for i, policy in enumerate(c.policies):
        for path in duplicates([r.path for r in policy.rules]):
            # Vault would silently merge them; say so instead.
            problems.add(f"policies[{i}].rules", f"path {path!r} appears in more than one rule")


def certificate_names(c: PlatformConfig) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the generated server certificate carries."""
    assert c.cluster.replicas is not None
    dns = server_dns_names(c.cluster.release_name, c.kubernetes.namespace, c.cluster.replicas,
                           tuple(c.tls.extra_dns_names))
    return dns, ["127.0.0.1", *c.tls.extra_ip_addresses]


def _certificate_covers(c: PlatformConfig, host: str) -> bool:
    dns, ips = certificate_names(c)
    return host in ips or any(name_covers(name, host) for name in dns)


def _check_day2(c: PlatformConfig, problems: Problems) -> None:
    autopilot = c.cluster.raft.autopilot
    if duration_seconds(autopilot.dead_server_last_contact_threshold) < MIN_DEAD_SERVER_SECONDS:
        problems.add("cluster.raft.autopilot.deadServerLastContactThreshold",
                     f"{autopilot.dead_server_last_contact_threshold!r} is below 1m, which Vault refuses")
    if duration_seconds(autopilot.dead_server_last_contact_threshold) <= duration_seconds(
            autopilot.last_contact_threshold):
        problems.add("cluster.raft.autopilot.deadServerLastContactThreshold",
                     f"{autopilot.dead_server_last_contact_threshold!r} must be longer than lastContactThreshold "
                     f"{autopilot.last_contact_threshold!r}: a server is unhealthy before it is dead")
    period = c.transit.auto_rotate_period
    if period is not None and duration_seconds(period) < MIN_TRANSIT_ROTATION_SECONDS:
        problems.add("transit.autoRotatePeriod", f"{period!r} is below 1h, which Vault refuses")
    if c.monitoring.prometheus_rule and not c.cluster.service_monitor:
        problems.add("monitoring.prometheusRule", "true needs cluster.serviceMonitor true: the alerts read the "
                                                  "metrics the ServiceMonitor scrapes")
    if c.cluster.rollout.enabled and c.unseal.type == "shamir" and c.init.pgp_keys:
        problems.add("cluster.rollout.enabled", "true cannot work with PGP-encrypted shamir key shares: a restarted "
                                                "pod stays sealed until an operator unseals it. Set it to false "
                                                "and restart pods by hand (docs/day-2.md)")
    s3 = c.backup.s3
    uses_s3 = c.backup.enabled and c.backup.target == "s3"
    if s3.replication.enabled:
        if not uses_s3:
            problems.add("backup.s3.replication.enabled", "true is only used with backup.target s3")
        if not s3.replication.region:
            problems.add("backup.s3.replication.region", "is required when replication is enabled")
        elif c.aws is not None and s3.replication.region == c.aws.region:
            problems.add("backup.s3.replication.region", f"{s3.replication.region!r} is aws.region; replicate to "
                                                         "another region")
    if s3.object_lock.days is not None and s3.object_lock.mode == "none":
        problems.add("backup.s3.objectLock.days", "is only used when backup.s3.objectLock.mode is governance or "
                                                  "compliance")
