"""Rules that involve more than one setting, or the environment. They run once every setting has
its type and value rules satisfied, and report every problem at once."""

from __future__ import annotations

from collections.abc import Callable

from components.model import unused
from components.model.checks import (
    cidrs_overlap,
    cron_longest_gap_seconds,
    duplicates,
    duration_seconds,
    name_covers,
    policy_path_allows,
    quantity_cmp,
    quantity_value,
    url_host,
)
from components.model.limits import (
    BOOTSTRAP_MARGIN_SECONDS,
    BOOTSTRAP_TOKEN_MAX_SECONDS,
    SCRAPE_TIMEOUT,
    SCRAPE_TIMEOUT_SECONDS,
    early_renewal_hours,
)
from components.model.names import (
    DATABASE_SECRET_FILE,
    RESERVED_NAMESPACES,
    SECRET_STORE,
    cert_manager_role,
    external_secrets_role,
    server_dns_names,
)
from components.model.platform import Application, PlatformConfig
from components.model.problems import Problems

# Policy names the platform writes itself; a stack's own policy must not replace them.
PLATFORM_POLICIES = ("root", "default", "admin", "raft-backup", "raft-rollout", "app-templated",
                     "app-templated-write", "deployer", "previewer", "metrics", "raft-restore",
                     "secrets-manager-migration")
# The names of the policies the stack gives Kubernetes auth roles (render.policies.ROLE_POLICY_FAMILIES).
ROLE_POLICY_PREFIXES = ("app-", "external-secrets-", "cert-manager-")
# Vault refuses a shorter dead-server threshold, and automatic transit rotation more often than hourly.
MIN_DEAD_SERVER_SECONDS = 60
# Raft clusters larger than this slow writes down.
MAX_REPLICAS = 9
MIN_TRANSIT_ROTATION_SECONDS = 3600


def apply_environment_defaults(config: PlatformConfig) -> PlatformConfig:
    """Defaults that depend on the environment: 5 replicas spread over zones in prod, 3 in dev; the
    root token revoked after the first deploy in prod, kept in dev; two injector pods that refuse pods
    they cannot serve in prod, one that admits them in dev."""
    cluster = config.cluster
    changes = {}
    if cluster.replicas is None:
        changes["replicas"] = 5 if config.is_prod else 3
    if cluster.zone_spread is None:
        changes["zone_spread"] = config.is_prod
    injector = {}
    if cluster.injector.replicas is None:
        injector["replicas"] = 2 if config.is_prod else 1
    if cluster.injector.failure_policy is None:
        injector["failure_policy"] = "Fail" if config.is_prod else "Ignore"
    if injector:
        changes["injector"] = cluster.injector.model_copy(update=injector)
    if cluster.raft.performance_multiplier is None:
        # Production failover in ~2.5 s instead of ~8 s; dev keeps Vault's default, which tolerates a
        # laptop that pauses the kind nodes.
        changes["raft"] = cluster.raft.model_copy(update={"performance_multiplier": 1 if config.is_prod else 5})
    if changes:
        config = config.model_copy(update={"cluster": cluster.model_copy(update=changes)})
    if config.deploy.revoke_root_token is None:
        config = config.model_copy(update={"deploy": config.deploy.model_copy(
            update={"revoke_root_token": config.is_prod})})
    return config


# Reads a chart on disk: (name, version) from its Chart.yaml, or why it cannot. Passed in, so the
# rules stay free of file access (components/resources/stack_config.py reads the file).
ChartReader = Callable[[str], "tuple[str, str] | str"]


def check(c: PlatformConfig, problems: Problems, given: set[str] | frozenset[str] = frozenset(),
          read_chart: ChartReader | None = None) -> None:
    """Every rule across settings. ``given``: the key paths the user wrote (``a.b``, list items
    ``a[].b``), to refuse settings that would be silently ignored. ``read_chart``: see ChartReader;
    without it a chart path is not opened."""
    _check_cluster(c, problems)
    _check_network_ranges(c, problems)
    _check_dev_only(c, problems)
    _check_api_tls_unseal(c, problems)
    _check_init(c, problems)
    _check_database(c, problems)
    _check_pki(c, problems)
    _check_mounts(c, problems)
    _check_auth_paths(c, problems)
    _check_applications(c, problems)
    _check_delivery(c, problems)
    _check_policies(c, problems)
    _check_deploy(c, problems)
    _check_migration(c, problems)
    _check_day2(c, problems)
    unused.check(c, problems, given)
    _check_air_gap(c, problems, given, read_chart)


def _check_cluster(c: PlatformConfig, problems: Problems) -> None:
    replicas = c.cluster.replicas
    assert replicas is not None
    if replicas < 1 or replicas % 2 == 0:
        problems.add("cluster.replicas", f"{replicas} is not allowed; use an odd number (1, 3, 5, 7) so a Raft "
                                         "quorum survives losing a minority of pods")
    if c.is_prod and replicas < 3:
        problems.add("cluster.replicas", f"{replicas} is too few for prod; use 3, 5 or 7 (a quorum must "
                                         "survive one pod down)")
    if replicas > MAX_REPLICAS:
        problems.add("cluster.replicas", f"{replicas} is too many; Raft clusters larger than 9 voters slow writes "
                                         "down; use 3, 5 or 7")
    for key, storage in (("cluster.dataStorage.size", c.cluster.data_storage),
                         ("cluster.auditStorage.size", c.cluster.audit_storage)):
        if quantity_value(storage.size) < 2**20:
            problems.add(key, f"{storage.size!r} is too small; use at least 1Mi (e.g. 10Gi)")
    # The API server refuses a pod whose request is above its limit: the StatefulSet would never
    # create one, long after `pulumi up` said it was done.
    for key, resources in (("cluster.resources", c.cluster.resources),
                           ("cluster.injector.resources", c.cluster.injector.resources)):
        for amount in ("memory", "cpu"):
            request, limit = getattr(resources.requests, amount), getattr(resources.limits, amount)
            if quantity_cmp(request, limit):
                problems.add(f"{key}.requests.{amount}", f"{request!r} is more than {key}.limits.{amount} {limit!r}; "
                                                         "Kubernetes refuses a request above its limit")


def admitted_ranges(c: PlatformConfig) -> list[tuple[str, str]]:
    """(config key, range) of every address range the NetworkPolicy admits to the API: the clients'
    ranges, and the load balancer's subnets when it connects from its own addresses."""
    np, api = c.cluster.network_policy, c.api
    found = [("cluster.networkPolicy.apiFrom.cidrs", cidr) for cidr in np.api_from.cidrs]
    if api.service_type == "LoadBalancer" and not api.load_balancer.preserve_client_ip:
        found += [("api.loadBalancer.subnetCidrs", cidr) for cidr in api.load_balancer.subnet_cidrs]
    return found


def _check_network_ranges(c: PlatformConfig, problems: Problems) -> None:
    np, api, lb = c.cluster.network_policy, c.api, c.api.load_balancer
    if not np.enabled:
        return
    admitted = admitted_ranges(c)
    restricted = bool(np.api_from.namespaces or admitted)
    if c.is_prod and restricted and api.service_type == "LoadBalancer":
        if not lb.preserve_client_ip and not lb.subnet_cidrs:
            problems.add("api.loadBalancer.subnetCidrs",
                         "is required: the load balancer connects to the pods from its own addresses in its subnets, "
                         "and the NetworkPolicy admits it only by these ranges (or set api.loadBalancer."
                         "preserveClientIp: true and name the clients in cluster.networkPolicy.apiFrom.cidrs)")
        if lb.preserve_client_ip and not np.api_from.cidrs:
            problems.add("cluster.networkPolicy.apiFrom.cidrs",
                         "is empty, but api.loadBalancer.preserveClientIp is true: the pods see each client's own "
                         "address, so the NetworkPolicy admits nobody through the load balancer; name the clients' "
                         "ranges (CI runners, your VPN)")
    if c.is_prod and admitted and not np.pod_cidrs:
        problems.add("cluster.networkPolicy.podCidrs",
                     "is required in prod when the NetworkPolicy admits address ranges: the ranges pods get their "
                     "addresses from (on EKS with the VPC CNI, the nodes' subnets), so that no admitted range "
                     "covers pods of every namespace")
    for key, cidr in admitted:
        for pods in np.pod_cidrs:
            if cidrs_overlap(cidr, pods):
                problems.add(key, f"{cidr!r} overlaps the pod range {pods!r} (cluster.networkPolicy.podCidrs): an "
                                  "ipBlock matches pod addresses too, so it would admit every pod there, whatever its "
                                  "namespace; admit only ranges that hold no pod (the load balancer's own subnets, "
                                  "your VPN)")
                break


def _check_dev_only(c: PlatformConfig, problems: Problems) -> None:
    if not c.is_prod:
        return
    if c.unseal.mode == "shamir":
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
    if c.unseal.mode == "shamir" and c.api.service_type == "NodePort" and replicas > 5:
        problems.add("cluster.replicas", f"{replicas} is more pods than kind/dev-cluster.yaml maps unseal ports for "
                                         "(5); a shamir dev stack unseals each pod through its own port")
    if c.api.service_type == "LoadBalancer" and not c.api.internal_load_balancer and c.is_prod \
            and not c.api.public_exposure_intended:
        problems.add("api.internalLoadBalancer", "false would put Vault's API on an internet-facing load balancer; "
                                                 "prod refuses that unless api.publicExposureIntended is true")
    dns = c.api.dns
    if dns.record != "none" and c.api.service_type != "LoadBalancer":
        problems.add("api.dns.record", f"{dns.record!r} points the name at a load balancer; it needs "
                                       "api.serviceType LoadBalancer")
    if dns.record == "route53":
        if not dns.route53_zone_id:
            problems.add("api.dns.route53ZoneId", "is required when api.dns.record is route53")
        if c.aws is None:
            problems.add("aws", "is required when api.dns.record is route53")
    host = url_host(c.api.address)
    # (With a replica count refused above, the certificate's names are not worth listing.)
    if c.is_prod and c.tls.source == "generated":
        problems.add("tls.source", "'generated' keeps the private keys of the CA and of the server certificate in "
                                   "the stack's state, where whoever can decrypt the state (a pull request's "
                                   "preview) could read them and impersonate Vault; in prod use certManager (keys "
                                   "made and kept in the cluster) or existingSecret")
    if c.tls.source == "certManager" and c.tls.issuer is not None and not c.tls.issuer.name:
        problems.add("tls.issuer.name", "is required when tls.issuer is set (or leave tls.issuer out for the "
                                        "stack's own CA)")
    if c.tls.source in ("generated", "certManager") and replicas <= MAX_REPLICAS and not _certificate_covers(c, host):
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
        token_secret = c.unseal.transit.token_secret if c.unseal.transit else None
        if c.secrets.transit_unseal_token is None and not token_secret:
            problems.add("secrets.transitUnsealToken", "is required when unseal.type is transit (or "
                                                       "unseal.transit.tokenSecret); set it with `pulumi config set "
                                                       "--secret --path secrets.transitUnsealToken`")
        if c.secrets.transit_unseal_token is not None and token_secret:
            problems.add("secrets.transitUnsealToken", "and unseal.transit.tokenSecret both give the transit token; "
                                                       "keep one")
    needs_aws = c.unseal.type == "awskms" or (c.backup.enabled and c.backup.target == "s3")
    if needs_aws and c.aws is None:
        problems.add("aws", "is required for unseal.type awskms and for backups to s3 (region, oidcProviderArn, "
                            "oidcIssuer, keyAdministrators)")
    if needs_aws and c.aws is not None and not c.aws.key_policy_administrators:
        problems.add("aws.keyPolicyAdministrators", "is required: the stack's KMS keys let their administrators "
                                                    "manage but not replace their key policy; name the break-glass "
                                                    "role that may (it must not be in aws.keyAdministrators)")
    if c.aws is not None:
        for arn in sorted(set(c.aws.key_policy_administrators) & set(c.aws.key_administrators)):
            problems.add("aws.keyPolicyAdministrators", f"{arn!r} is also in aws.keyAdministrators: whoever may "
                                                        "replace a key policy can give itself the key; keep the "
                                                        "deploying role out of it and use a break-glass role")
    makes_roles = needs_aws or c.migration.aws_secrets_manager.enabled
    if c.is_prod and makes_roles and c.aws is not None and not c.aws.permissions_boundary:
        problems.add("aws.permissionsBoundary", "is required in prod: the deploying role rewrites the stack's IAM "
                                                "roles, and only a boundary it cannot change keeps them from "
                                                "becoming more; create it from `scripts/deployer_policy.py prod "
                                                "--boundary` and give its ARN")
    if needs_aws and c.aws is not None and not c.aws.key_administrators:
        problems.add("aws.keyAdministrators", "is required: the stack creates KMS keys (auto-unseal, snapshot bucket) "
                                              "with an explicit key policy, and only these roles may administer them. "
                                              "Name at least the role that runs `pulumi up` (`aws sts "
                                              "get-caller-identity` shows it; use the role ARN, not the session)")


def _check_init(c: PlatformConfig, problems: Problems) -> None:
    if c.init.threshold > c.init.shares:
        problems.add("init.threshold", f"{c.init.threshold} is more than init.shares {c.init.shares}")
    elif c.init.shares > 1 and c.init.threshold < 2:
        # Vault's own rule for sys/init: one share may unseal alone only when it is the only one.
        problems.add("init.threshold", f"{c.init.threshold} with {c.init.shares} shares is refused by Vault: the "
                                       "threshold must be at least 2 when there is more than one share")
    for dup in duplicates(list(c.init.pgp_keys)):
        problems.add("init.pgpKeys", f"has the key {dup[:16]}... twice: two shares would go to one person")
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
    allowed = {conn.name: set(conn.allowed_roles) for conn in db.connections}
    for i, role in enumerate(db.roles):
        key = f"database.roles[{i}]"
        if role.connection not in connections:
            problems.add(f"{key}.connection", f"{role.connection!r} is not a defined connection; defined: "
                                              f"{', '.join(sorted(connections)) or 'none'}")
        elif role.connection in allowed and not allowed[role.connection] & {role.name, "*"}:
            j = names.index(role.connection)
            problems.add(f"database.connections[{j}].allowedRoles",
                         f"does not list {role.name!r}, whose connection it is (database.roles[{i}]); Vault would "
                         "refuse every credential request for it: add it (or '*')")
        if duration_seconds(role.max_ttl) < duration_seconds(role.default_ttl):
            problems.add(f"{key}.maxTtl", f"{role.max_ttl!r} is below defaultTtl {role.default_ttl!r}")
        if not role.creation_statements:
            problems.add(f"{key}.creationStatements", "must not be empty")
    for i, conn in enumerate(db.connections):
        for dup in duplicates(list(conn.allowed_roles)):
            problems.add(f"database.connections[{i}].allowedRoles", f"lists {dup!r} more than once")
        sslmode = _sslmode(conn.connection_url)
        if c.is_prod and sslmode != "verify-full":
            problems.add(f"database.connections[{i}].connectionUrl",
                         f"uses sslmode={sslmode or '(none: prefer)'}, which does not check the server's certificate; "
                         "prod connects with sslmode=verify-full and the server's CA in tlsCa")
        if sslmode in ("verify-full", "verify-ca") and not conn.tls_ca:
            problems.add(f"database.connections[{i}].tlsCa", f"is required with sslmode={sslmode}: the CA that "
                                                             "signed the database's certificate (for RDS, the region's "
                                                             "RDS CA bundle)")
        for role_name in conn.allowed_roles:
            if role_name != "*" and role_name not in role_names:
                problems.add(f"database.connections[{i}].allowedRoles",
                             f"{role_name!r} is not a role in database.roles")
        if db.enabled and conn.name not in c.secrets.database_passwords:
            problems.add(f"secrets.databasePasswords.{conn.name}",
                         f"is required for database connection {conn.name!r}; set it with `pulumi config set "
                         f"--secret --path 'secrets.databasePasswords.{conn.name}'`")
    for name in c.secrets.database_passwords if db.enabled else ():
        if name not in names:
            problems.add(f"secrets.databasePasswords.{name}", "names no connection in database.connections")


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
        if not role.allowed_domains and not role.namespace:
            problems.add(f"pki.roles[{i}].allowedDomains", "must name at least one domain (or set namespace: the "
                                                             "role then signs that namespace's Service names)")
        if role.namespace:
            _check_namespace_role(problems, i, role.namespace, role.allowed_domains)
    for i, role in enumerate(pki.roles):
        for dup in duplicates(list(role.allowed_domains)):
            problems.add(f"pki.roles[{i}].allowedDomains", f"lists {dup!r} more than once")
    for dup in duplicates(list(c.transit.keys)):
        problems.add("transit.keys", f"lists {dup!r} more than once; each becomes one transit key")


# Paths Vault itself owns: a secrets engine cannot be mounted there.
RESERVED_MOUNTS = ("sys", "auth", "identity", "cubbyhole")


def mounts(c: PlatformConfig) -> list[tuple[str, str]]:
    """(config key, path) of every secrets engine the stack mounts."""
    found = [("kv.path", c.kv.path)]
    if c.database.enabled:
        found.append(("database.path", c.database.path))
    if c.pki.enabled:
        found.append(("pki.path", c.pki.path))
        if c.pki.intermediate.enabled:
            found.append(("pki.intermediate.path", c.pki.intermediate.path))
    if c.transit.enabled:
        found.append(("transit.path", c.transit.path))
    return found


def _check_mounts(c: PlatformConfig, problems: Problems) -> None:
    _check_paths(problems, mounts(c), RESERVED_MOUNTS,
                 f"is a path Vault reserves for itself ({', '.join(RESERVED_MOUNTS)})", "secrets engines")


def _check_paths(problems: Problems, places: list[tuple[str, str]], reserved: tuple[str, ...], reserved_why: str,
                 what: str) -> None:
    """Mount paths of one kind: none where Vault itself lives, no two the same or one inside the other."""
    seen: list[tuple[str, str]] = []
    for key, path in places:
        if path.split("/")[0] in reserved:
            problems.add(key, f"{path!r} {reserved_why}; choose another path")
        for other_key, other in seen:
            if path == other or path.startswith(other + "/") or other.startswith(path + "/"):
                problems.add(key, f"{path!r} collides with {other_key} {other!r}: two {what} cannot share a "
                                  "path, nor be mounted one inside the other; choose another path")
        seen.append((key, path))


# Vault's own auth method lives at auth/token; nothing else may be mounted there.
RESERVED_AUTH_PATHS = ("token",)


def auth_mounts(c: PlatformConfig) -> list[tuple[str, str]]:
    """(config key, path) of every auth method the stack enables."""
    found = [("kubernetesAuth.path", c.kubernetes_auth.path)]
    if c.deploy.jwt.enabled:
        found.append(("deploy.jwt.path", c.deploy.jwt.path))
    if c.deploy.operator_oidc.enabled:
        found.append(("deploy.operatorOidc.path", c.deploy.operator_oidc.path))
    return found


def _check_auth_paths(c: PlatformConfig, problems: Problems) -> None:
    _check_paths(problems, auth_mounts(c), RESERVED_AUTH_PATHS, "is Vault's own token auth method", "auth methods")


# Application names whose Vault role (the name) or policy (app-<name>) the platform already uses.
RESERVED_APPLICATION_NAMES = {
    "raft-backup": "backup job's role",
    "raft-rollout": "rolling restart job's role",
    "templated": "templated policy every application shares (app-templated)",
    "templated-write": "templated write policy (app-templated-write)",
}


def system_namespaces(c: PlatformConfig) -> dict[str, str]:
    """Namespaces whose pods keep the cluster or the platform running, and what runs there."""
    found = {ns: "is a Kubernetes system namespace" for ns in RESERVED_NAMESPACES if ns != "default"}
    found[c.kubernetes.namespace] = "is Vault's namespace (kubernetes.namespace), where the injector itself runs"
    if c.cert_manager.enabled:
        found.setdefault(c.cert_manager.namespace, "is cert-manager's namespace (certManager.namespace)")
    if c.external_secrets.install and any(a.uses_external_secrets for a in c.applications):
        found.setdefault(c.external_secrets.namespace,
                         "is the External Secrets Operator's namespace (externalSecrets.namespace)")
    return found


# Single-label domains reserved for private use (RFC 6761, RFC 6762, ICANN's .internal): anything else
# with subdomains allowed is a whole top-level domain.
PRIVATE_TLDS = ("internal", "local", "localhost", "test", "example", "invalid", "home.arpa")


# Service names of the cluster: each namespace's are its own, and no namespace may name another's.
CLUSTER_SUFFIXES = ("svc", "cluster.local")


def _check_namespace_role(problems: Problems, i: int, namespace: str, owned: tuple[str, ...]) -> None:
    for domain in owned:
        bare = domain[2:] if domain.startswith("*.") else domain
        if (problem := _any_domain(domain, domain.startswith("*."))) is not None:
            problems.add(f"pki.roles[{i}].allowedDomains", f"{domain!r} {problem}; give only names the namespace owns "
                                                           "(e.g. myapp.internal.example.com)")
        elif "*" in bare:
            problems.add(f"pki.roles[{i}].allowedDomains", f"{domain!r} has a wildcard inside it; with namespace, "
                                                           "give exact names or *.<domain> for the names below one")
        elif any(bare == s or bare.endswith("." + s) for s in CLUSTER_SUFFIXES):
            problems.add(f"pki.roles[{i}].allowedDomains",
                         f"{domain!r} is a cluster Service name: the role already signs {namespace!r}'s own "
                         f"(*.{namespace}.svc, *.{namespace}.svc.cluster.local), and another namespace's are not "
                         "its to sign; remove it")


def _any_domain(domain: str, subdomains: bool) -> str | None:
    """Why a PKI role's allowed domain lets it sign for (nearly) any name, or None."""
    if domain.strip("*.") == "":
        return "is a wildcard for every name"
    bare = domain[2:] if domain.startswith("*.") else domain
    if subdomains and "." not in bare and bare not in PRIVATE_TLDS:
        return "with allowSubdomains covers a whole top-level domain"
    return None


def _role_namespace(c: PlatformConfig, role: str) -> str:
    return next((r.namespace for r in c.pki.roles if r.name == role), "")


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
        elif app.pki_role and (bound := _role_namespace(c, app.pki_role)) != app.namespace:
            problems.add(f"{key}.pkiRole", f"{app.pki_role!r} is " + (f"bound to namespace {bound!r}" if bound else
                                                                   "bound to no namespace") +
                         f": the application could get certificates for names that are not {app.namespace!r}'s "
                         "(another namespace's Services); use a role with pki.roles[].namespace "
                         f"{app.namespace!r}")
        elif app.pki_role and not c.pki.enabled:
            problems.add(f"{key}.pkiRole", f"{app.pki_role!r} needs the PKI engine, and pki.enabled is false")
        if app.database_role and app.database_role in db_roles and not c.database.enabled:
            problems.add(f"{key}.databaseRole", f"{app.database_role!r} needs the database engine, and "
                                                "database.enabled is false")
        if app.name in RESERVED_APPLICATION_NAMES:
            problems.add(f"{key}.name", f"{app.name!r} is reserved: its Vault role or policy would replace the "
                                        f"{RESERVED_APPLICATION_NAMES[app.name]}; choose another name")
        if app.service_account == "default" and app.create_service_account:
            problems.add(f"{key}.createServiceAccount", "true cannot create the service account 'default': Kubernetes "
                                                        "makes it in every namespace; give the application a service "
                                                        "account of its own")
        elif app.service_account == "default" and c.is_prod:
            problems.add(f"{key}.serviceAccount", "'default' is what every pod in the namespace runs as unless it "
                                                  "names another, so all of them could log in as this application; "
                                                  "give it a service account of its own (prod requires one)")
        if c.is_prod and app.audience == "":
            problems.add(f"{key}.audience", "is empty, so its role would accept a token minted for any audience: "
                                            "prod binds every role to one; remove it to use kubernetesAuth.audience, "
                                            "or name one")
        for dup in duplicates([g.path for g in app.kv]):
            problems.add(f"{key}.kv", f"grants {dup!r} more than once; give each path one access")
        for j, grant in enumerate(app.kv):
            problem = kv_grant_problem(c, grant.path, kv_only=True)
            if problem:
                problems.add(f"{key}.kv[{j}].path", f"{grant.path!r} {problem}")
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


def _readable(c: PlatformConfig, app: Application, path: str) -> bool:
    """Whether the application's own role may read ``<kv>/data/<path>``: its folder or one of its kv grants."""
    data_path = f"{c.kv.path}/data/{path}"
    if c.kubernetes_auth.templated_policy and app.own_folder != "none" \
            and path.startswith(f"{app.namespace}/{app.service_account}/"):
        return True
    return any(g.access in ("read", "write") and policy_path_allows(g.path, data_path) for g in app.kv)


def _check_delivery(c: PlatformConfig, problems: Problems) -> None:
    injector = c.cluster.injector
    if c.is_prod and injector.enabled and (injector.replicas or 0) < 2:
        problems.add("cluster.injector.replicas", f"{injector.replicas} is too few for prod: with failurePolicy Fail "
                                                  "no pod starts in an opted-in namespace while the injector is "
                                                  "down; use 2 or more")
    if c.is_prod and injector.enabled and injector.failure_policy != "Fail":
        problems.add("cluster.injector.failurePolicy", f"{injector.failure_policy!r} is dev only: prod refuses a pod "
                                                       "the injector could not give its secrets (use 'Fail')")
    if injector.enabled and duration_seconds(injector.certificate_validity) > duration_seconds(c.tls.ca_validity):
        problems.add("cluster.injector.certificateValidity", f"{injector.certificate_validity!r} outlives its CA "
                                                             f"(tls.caValidity {c.tls.ca_validity!r})")
    reserved = {*RESERVED_NAMESPACES, c.kubernetes.namespace}
    if c.external_secrets.install and any(a.uses_external_secrets for a in c.applications):
        reserved.add(c.external_secrets.namespace)  # the operator's release creates it
    if c.cert_manager.enabled:
        reserved.add(c.cert_manager.namespace)  # cert-manager's own
    service_roles = {external_secrets_role(a.namespace) for a in c.applications if a.uses_external_secrets}
    if c.cert_manager.enabled:
        service_roles |= {cert_manager_role(i.namespace) for i in c.cert_manager.issuers}
    fails_closed = injector.enabled and injector.failure_policy == "Fail"
    system = system_namespaces(c)
    for i, app in enumerate(c.applications):
        key = f"applications[{i}]"
        if fails_closed and app.uses_injector and app.namespace in system:
            problems.add(f"{key}.namespace", f"{app.namespace!r} {system[app.namespace]}: its delivery "
                                             f"{app.delivery!r} opts the whole namespace in to the injector's webhook, "
                                             "which fails closed (cluster.injector.failurePolicy Fail), so no pod "
                                             "could start there while the injector is down, not even the ones that "
                                             "bring it back; run the application in a namespace of its own")
        if app.uses_injector and not injector.enabled:
            problems.add(f"{key}.delivery", f"{app.delivery!r} needs the injector, but cluster.injector.enabled is "
                                            "false")
        if app.name in service_roles:
            problems.add(f"{key}.name", f"{app.name!r} is the name of a role the platform makes for the External "
                                        "Secrets Operator or cert-manager; choose another")
        if app.service_account == SECRET_STORE and app.namespace in {
                a.namespace for a in c.applications if a.uses_external_secrets}:
            problems.add(f"{key}.serviceAccount", f"{SECRET_STORE!r} is the service account of the namespace's "
                                                  "External Secrets store; choose another")
        if app.create_namespace and app.namespace in reserved:
            problems.add(f"{key}.createNamespace", f"true would create namespace {app.namespace!r}, which always "
                                                   "exists or belongs to the platform; set it to false")
        if app.uses_external_secrets and not app.secrets:
            problems.add(f"{key}.secrets", f"is empty, so delivery {app.delivery!r} gives the External Secrets "
                                           "Operator nothing to copy; list the KV secrets to deliver")
        for dup in duplicates([s.name for s in app.secrets]):
            problems.add(f"{key}.secrets", f"name {dup!r} appears more than once (each is one file)")
        for dup in duplicates([k for s in app.secrets for k in s.keys]):
            problems.add(f"{key}.secrets", f"variable {dup!r} appears in more than one secret (they share one "
                                           "environment and one Kubernetes Secret)")
        for j, secret in enumerate(app.secrets):
            where = f"{key}.secrets[{j}]"
            if app.database_role and app.uses_injector and secret.name == DATABASE_SECRET_FILE:
                problems.add(f"{where}.name", f"{DATABASE_SECRET_FILE!r} is the file of its database credentials; "
                                              "choose another name")
            if not secret.keys:
                problems.add(f"{where}.keys", "is empty; map at least one variable to a KV property")
            if secret.path.startswith(f"{c.kv.path}/"):
                problems.add(f"{where}.path", f"{secret.path!r} starts with the KV mount {c.kv.path!r}: give the "
                                              "path under the mount (the operator would drop that first segment)")
            elif not _readable(c, app, secret.path):
                problems.add(f"{where}.path", f"{secret.path!r}: the application may not read "
                                              f"{c.kv.path}/data/{secret.path}; grant it in {key}.kv or use its own "
                                              f"folder {app.namespace}/{app.service_account}/")
    cm = c.cert_manager
    if cm.enabled:
        pki_roles = {r.name for r in c.pki.roles}
        if not c.pki.enabled:
            problems.add("certManager.enabled", "true needs the PKI engine (pki.enabled)")
        if not cm.issuers:
            problems.add("certManager.issuers", "is empty: name each namespace that requests certificates and the "
                                                "PKI role bound to it (certManager.enabled is true)")
        _unique(problems, "certManager.issuers", "namespace", [i.namespace for i in cm.issuers])
        for i, issuer in enumerate(cm.issuers):
            key = f"certManager.issuers[{i}].pkiRole"
            if not c.pki.enabled:
                pass
            elif issuer.pki_role not in pki_roles:
                problems.add(key, f"{issuer.pki_role!r} is not a role in pki.roles; one of: "
                                  f"{', '.join(sorted(pki_roles)) or 'none defined'}")
            elif (bound := _role_namespace(c, issuer.pki_role)) != issuer.namespace:
                problems.add(key, f"{issuer.pki_role!r} is " + (f"bound to namespace {bound!r}" if bound else
                                                               "bound to no namespace") +
                             f": the Issuer in {issuer.namespace!r} would sign names that are not that namespace's "
                             "(another namespace's Services); use a role with pki.roles[].namespace "
                             f"{issuer.namespace!r}")
            if issuer.namespace == c.kubernetes.namespace:
                problems.add(f"certManager.issuers[{i}].namespace", f"{issuer.namespace!r} is Vault's own "
                                                                    "namespace; its certificate comes from the stack")


def _check_policies(c: PlatformConfig, problems: Problems) -> None:
    names = [p.name for p in c.policies]
    _unique(problems, "policies", "policy name", names)
    reserved = set(PLATFORM_POLICIES) | {f"app-{a.name}" for a in c.applications}
    reserved |= {external_secrets_role(a.namespace) for a in c.applications if a.uses_external_secrets}
    if c.cert_manager.enabled:
        reserved |= {cert_manager_role(i.namespace) for i in c.cert_manager.issuers}
    for name in names:
        if name in reserved:
            problems.add("policies", f"policy name {name!r} is reserved by the platform; choose another")
        elif any(name.startswith(prefix) for prefix in ROLE_POLICY_PREFIXES):
            # Kubernetes auth roles may carry only policies of these names (deploy.limitRolePolicies).
            problems.add("policies", f"policy name {name!r}: names starting with {', '.join(ROLE_POLICY_PREFIXES)} "
                                     "are the policies of the stack's Kubernetes auth roles; choose another")
    for i, policy in enumerate(c.policies):
        for path in duplicates([r.path for r in policy.rules]):
            # Vault would silently merge them; say so instead.
            problems.add(f"policies[{i}].rules", f"path {path!r} appears in more than one rule")
        for j, rule in enumerate(policy.rules):
            problem = kv_grant_problem(c, rule.path, kv_only=False)
            if problem:
                problems.add(f"policies[{i}].rules[{j}].path", f"{rule.path!r} {problem}")


# What a KV v2 mount answers under its path; anything else matches no request.
KV_V2_PREFIXES = ("data", "metadata", "delete", "undelete", "destroy", "subkeys", "config")


def kv_grant_problem(c: PlatformConfig, path: str, *, kv_only: bool) -> str | None:
    """Why a policy path can never match a request on the KV v2 mount, or None."""
    mount = c.kv.path
    if not path.startswith(mount + "/"):
        if kv_only:
            return f"is not under the KV mount {mount!r}; an application's kv grants are KV paths"
        return None
    rest = path[len(mount) + 1:]
    head = rest.split("/", 1)[0]
    if head in KV_V2_PREFIXES or head == "+" or head.endswith("*") or head == "":
        return None
    return (f"matches nothing on the KV v2 mount {mount!r}: its API paths are {mount}/data/..., "
            f"{mount}/metadata/... (and delete, undelete, destroy, subkeys); did you mean "
            f"'{mount}/data/{rest}'?")


def certificate_names(c: PlatformConfig) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the generated server certificate carries."""
    assert c.cluster.replicas is not None
    dns = server_dns_names(c.cluster.release_name, c.kubernetes.namespace, c.cluster.replicas,
                           tuple(c.tls.extra_dns_names))
    return dns, ["127.0.0.1", *c.tls.extra_ip_addresses]


def _certificate_covers(c: PlatformConfig, host: str) -> bool:
    dns, ips = certificate_names(c)
    return host in ips or any(name_covers(name, host) for name in dns)


def _sslmode(url: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return (parse_qs(urlsplit(url).query).get("sslmode") or [""])[-1]


def _check_deploy(c: PlatformConfig, problems: Problems) -> None:
    d = c.deploy
    if d.jwt.enabled and d.jwt.github is None:
        problems.add("deploy.jwt.github", "is required when deploy.jwt.enabled is true (repository, and the ref and "
                                          "environments that may log in)")
    if d.jwt.enabled and duration_seconds(d.jwt.token_ttl) > duration_seconds(d.jwt.token_max_ttl):
        problems.add("deploy.jwt.tokenTtl", f"{d.jwt.token_ttl!r} is longer than deploy.jwt.tokenMaxTtl "
                                            f"{d.jwt.token_max_ttl!r}; Vault would cut every CI token to the "
                                            "maximum: make it at most tokenMaxTtl")
    if d.operator_oidc.enabled:
        for key, value in (("discoveryUrl", d.operator_oidc.discovery_url), ("clientId", d.operator_oidc.client_id),
                           ("adminGroup", d.operator_oidc.admin_group)):
            if not value:
                problems.add(f"deploy.operatorOidc.{key}", "is required when deploy.operatorOidc.enabled is true")
        if not d.operator_oidc.allowed_redirect_uris:
            problems.add("deploy.operatorOidc.allowedRedirectUris",
                         "is empty: Vault would refuse every login's redirect; keep the CLI's "
                         "http://localhost:8250/oidc/callback (and add the UI's, if people log in there)")
        if c.secrets.oidc_client_secret is None and not d.operator_oidc.client_secret_arn:
            problems.add("deploy.operatorOidc.clientSecretArn",
                         "is required when deploy.operatorOidc.enabled is true (or, in dev, secrets.oidcClientSecret, "
                         "set with `pulumi config set --secret --path secrets.oidcClientSecret`)")
        if c.secrets.oidc_client_secret is not None and d.operator_oidc.client_secret_arn:
            problems.add("secrets.oidcClientSecret", "and deploy.operatorOidc.clientSecretArn both give the client "
                                                     "secret; keep one")
        if d.operator_oidc.client_secret_arn and c.aws is None:
            problems.add("deploy.operatorOidc.clientSecretArn", "needs the aws section (its region) to read the "
                                                                "secret")
    if d.revoke_root_token and not (d.jwt.enabled or d.operator_oidc.enabled):
        problems.add("deploy.revokeRootToken", "is true, but no deploy identity replaces the root token: enable "
                                               "deploy.jwt (CI) or deploy.operatorOidc (people), or set it to false")
    if d.revoke_root_token:
        ttl = duration_seconds(d.bootstrap_token_ttl)
        if ttl <= BOOTSTRAP_MARGIN_SECONDS:
            problems.add("deploy.bootstrapTokenTtl",
                         f"{d.bootstrap_token_ttl!r} is not longer than {BOOTSTRAP_MARGIN_SECONDS // 60}m: the first "
                         "run stops using that token when it has "
                         f"{BOOTSTRAP_MARGIN_SECONDS // 60} minutes left, so right after revoking the root token it "
                         f"would have no token to finish with; use more than {BOOTSTRAP_MARGIN_SECONDS // 60}m (the "
                         "default is 1h)")
        elif ttl > BOOTSTRAP_TOKEN_MAX_SECONDS:
            problems.add("deploy.bootstrapTokenTtl",
                         f"{d.bootstrap_token_ttl!r} is longer than {BOOTSTRAP_TOKEN_MAX_SECONDS // 3600}h: the token "
                         "only finishes the first run, and a deployer token that outlives it is a standing admin "
                         "credential; use at most "
                         f"{BOOTSTRAP_TOKEN_MAX_SECONDS // 3600}h (the default is 1h)")
    if d.revoke_root_token and c.init.root_token_pgp_key:
        problems.add("deploy.revokeRootToken", "has nothing to revoke: init.rootTokenPgpKey encrypts the root token "
                                               "for an operator; use one or the other")
    _check_prod_state(c, problems)


def _check_prod_state(c: PlatformConfig, problems: Problems) -> None:
    """prod's state holds nothing that logs in to Vault or impersonates it: whoever can decrypt it (the
    role a pull request's preview runs with) gains nothing. tests/unit/test_state_secrets.py lists what
    it does hold and why each grants nothing."""
    if not c.is_prod:
        return
    why = "in prod the stack's state must hold nothing that logs in to Vault (whoever decrypts it, a pull " \
          "request's preview included, could read it)"
    # Key shares only as PGP ciphertext: whoever reads the state must not hold the keys.
    if not c.init.pgp_keys:
        problems.add("init.pgpKeys", f"is required in prod: {c.init.shares} PGP public keys, one per share, so the "
                                     "shares exist only encrypted to the people who hold them. Export each with "
                                     "`gpg --export <key id> | base64 -w0`")
    if c.init.accept_plaintext_shares:
        problems.add("init.acceptPlaintextShares", f"is refused: plaintext shares can make a root token, and {why}")
    if c.deploy.revoke_root_token is False:
        problems.add("deploy.revokeRootToken", f"false keeps a working root token in the state; {why}. Leave it "
                                               "true (prod's default): the deploy identity takes over in the first run")
    if c.init.root_token_pgp_key:
        problems.add("init.rootTokenPgpKey", "is refused in prod: the first run hands the root token over to the "
                                             "deploy identity and revokes it (deploy.revokeRootToken)")
    s = c.secrets
    if s.kv:
        problems.add("secrets.kv", f"values set in the config are in the state; {why}. Put initial secrets in Vault "
                                   "with `python -m migration` or `vault kv put`")
    if s.vault_token is not None:
        problems.add("secrets.vaultToken", f"is refused; {why}. Give an operator's token at run time instead: "
                                           "`VAULT_TOKEN=<token> make up` (the stack logs in with it, keeps nothing)")
    if s.transit_unseal_token is not None and c.unseal.type == "transit":
        problems.add("secrets.transitUnsealToken", f"can unseal Vault; {why}. Put the token in a Secret of your own "
                                                   "and name it in unseal.transit.tokenSecret")
    if s.oidc_client_secret is not None and c.deploy.operator_oidc.enabled:
        problems.add("secrets.oidcClientSecret", f"is refused; {why}. Store it in AWS Secrets Manager and name it "
                                                 "in deploy.operatorOidc.clientSecretArn (read only when the identity "
                                                 "is written)")
    for i, conn in enumerate(c.database.connections):
        if conn.name in s.database_passwords and not conn.rotate_root:
            problems.add(f"database.connections[{i}].rotateRoot",
                         f"must be true in prod while secrets.databasePasswords holds {conn.name!r}'s admin password: "
                         "Vault then replaces the password right after the first run, so the one in the state "
                         "opens nothing")


def _check_migration(c: PlatformConfig, problems: Problems) -> None:
    store = c.migration.aws_secrets_manager
    key = "migration.awsSecretsManager"
    if not store.enabled:
        return
    if c.aws is None:
        problems.add(f"{key}.enabled", "true needs the aws section (region, oidcProviderArn, oidcIssuer): the store "
                                       "reads through an IRSA role trusted by the cluster's OIDC provider")
    if not store.name_prefix:
        problems.add(f"{key}.namePrefix", "is required when the store is enabled: its role may read only the "
                                          "secrets whose names start with it (e.g. 'prod/')")
    if c.is_prod and not store.namespaces:
        problems.add(f"{key}.namespaces", OPEN_STORE + "; prod refuses that: list the namespaces whose applications "
                                                       "still read from AWS while they move")
    _unique(problems, f"{key}.namespaces", "namespace", list(store.namespaces))
    _unique(problems, f"{key}.kmsKeyArns", "key", list(store.kms_key_arns))
    eso, sa = c.external_secrets, store.service_account
    if eso.install and (sa.namespace, sa.name) != (eso.namespace, eso.service_account):
        # The stack annotates the operator it installs for IRSA; a store that logs in as another
        # account would be trusted by a role that account never carries.
        problems.add(f"{key}.serviceAccount", f"is {sa.namespace}/{sa.name}, but the operator the stack installs "
                                              f"runs as {eso.namespace}/{eso.service_account} "
                                              "(externalSecrets.namespace, externalSecrets.serviceAccount); make "
                                              "them the same")


# The transition store without namespaces: what it would hand out, and to whom.
OPEN_STORE = ("is empty: the ClusterSecretStore would serve ExternalSecrets in every namespace, so anyone who may "
              "create an ExternalSecret anywhere could copy every AWS secret under namePrefix")


def warnings(c: PlatformConfig) -> list[str]:
    """What a stack may do but should not, said at every run (prod refuses each of them)."""
    found = Problems()
    store = c.migration.aws_secrets_manager
    if store.enabled and not store.namespaces and not c.is_prod:
        found.add("migration.awsSecretsManager.namespaces", OPEN_STORE + " (prod refuses this)")
    if c.cluster.service_monitor and not c.monitoring.metrics_token_secret and not c.is_prod:
        found.add("monitoring.metricsTokenSecret", OPEN_METRICS + " (prod refuses this)")
    return found.items


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
    if c.cluster.rollout.enabled and c.unseal.mode == "shamir" and c.init.pgp_keys:
        problems.add("cluster.rollout.enabled", "true cannot work with PGP-encrypted shamir key shares: a restarted "
                                                "pod stays sealed until an operator unseals it. Set it to false "
                                                "and restart pods by hand (docs/day-2.md)")
    _check_backup_bucket(c, problems)
    _check_monitoring(c, problems)


def _check_backup_bucket(c: PlatformConfig, problems: Problems) -> None:
    b, s3 = c.backup, c.backup.s3
    if not (b.enabled and b.target == "s3"):
        return
    # The bucket's lifecycle expires a snapshot retentionDays after it was written, whether or not a newer
    # one exists: a schedule with longer gaps leaves stretches with no snapshot at all.
    gap = cron_longest_gap_seconds(b.schedule)
    if b.retention_days * 86400 <= gap:
        problems.add("backup.retentionDays", f"{b.retention_days} day(s) is not longer than the longest gap between "
                                             f"two runs of backup.schedule {b.schedule!r} ({_days(gap)}): S3 would "
                                             "expire the last snapshot before the next one is taken; keep snapshots "
                                             "longer, or back up more often")
    lock = s3.object_lock
    if lock.mode != "none" and lock.days is not None and lock.days > b.retention_days:
        problems.add("backup.s3.objectLock.days", f"{lock.days} is longer than backup.retentionDays "
                                                  f"{b.retention_days}: S3 cannot delete a locked snapshot, so pruning "
                                                  f"would keep every snapshot {lock.days} days, not "
                                                  f"{b.retention_days}" + (" (and a compliance lock can never be "
                                                                            "shortened)" if lock.mode == "compliance"
                                                                           else "")
                                                  + "; lock for at most retentionDays, or raise retentionDays")
    rep = s3.replication
    if rep.enabled:
        if not rep.region:
            problems.add("backup.s3.replication.region", "is required when replication is enabled")
        elif c.aws is not None and rep.region == c.aws.region:
            problems.add("backup.s3.replication.region", f"{rep.region!r} is aws.region; replicate to "
                                                         "another region")
        if rep.bucket_name and rep.bucket_name == s3.bucket_name:
            problems.add("backup.s3.replication.bucketName", f"{rep.bucket_name!r} is the snapshot bucket itself "
                                                             "(backup.s3.bucketName); name another bucket, or leave it "
                                                             "empty to derive one")


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g} day(s)" if seconds >= 86400 else f"{seconds / 3600:g} hour(s)"


# The ServiceMonitor without a token: what the listener then hands out, and to whom.
OPEN_METRICS = ("is not set, so Vault serves its metrics without a token (unauthenticated_metrics_access) to anything "
                "that reaches the API port: request rates, mounts, leadership and audit failures")


def _check_monitoring(c: PlatformConfig, problems: Problems) -> None:
    m = c.monitoring
    if c.is_prod and c.cluster.service_monitor and not m.metrics_token_secret:
        problems.add("monitoring.metricsTokenSecret", OPEN_METRICS + "; prod refuses that with cluster.serviceMonitor: "
                                                     "put a token with the 'metrics' policy in a Secret of yours "
                                                     "(key 'token') and name it here (README \"Metrics\")")
    if c.cluster.service_monitor and duration_seconds(m.scrape_interval) < SCRAPE_TIMEOUT_SECONDS:
        problems.add("monitoring.scrapeInterval", f"{m.scrape_interval!r} is shorter than the scrape timeout "
                                                  f"({SCRAPE_TIMEOUT}), which Prometheus refuses; scrape every "
                                                  f"{SCRAPE_TIMEOUT} or less often")
    if m.prometheus_rule and c.tls.source in ("generated", "certManager"):
        days = m.alerts.certificate_expiry_days
        validity_hours = int(duration_seconds(c.tls.validity) // 3600)
        renewal_days = early_renewal_hours(validity_hours) / 24
        key = "monitoring.alerts.certificateExpiryDays"
        most = int(renewal_days)
        fix = f"use at most {most}" if most >= 1 else "lengthen tls.validity (the alert counts whole days)"
        if days * 24 >= validity_hours:
            problems.add(key, f"{days} is not shorter than the server certificate's whole lifetime (tls.validity "
                              f"{c.tls.validity!r}): the alert would always fire; {fix}")
        elif days > renewal_days:
            problems.add(key, f"{days} is more than the {renewal_days:.3g} day(s) before expiry in which `pulumi up` "
                              f"renews the server certificate (a third of tls.validity {c.tls.validity!r}, at most "
                              f"30): the alert would fire while `pulumi up` cannot renew it yet; {fix}"
                              + (", or lengthen tls.validity" if most >= 1 else ""))


# --- installs without internet: charts on disk, images from a private registry -------------------


def _check_air_gap(c: PlatformConfig, problems: Problems, given: set[str] | frozenset[str],
                   read_chart: ChartReader | None) -> None:
    charts = (("cluster.chart", c.cluster.chart.path, "vault", c.cluster.chart.version),
              ("externalSecrets.chart", c.external_secrets.chart.path, "external-secrets",
               c.external_secrets.chart.version))
    for key, path, name, version in charts:
        if not path:
            continue
        if f"{key}.repository" in given:
            problems.add(f"{key}.repository", f"has no effect: {key}.path is set (the chart comes from it); "
                                              "remove one of the two")
        if read_chart is None:
            continue
        found = read_chart(path)
        if isinstance(found, str):
            problems.add(f"{key}.path", f"{path!r} {found}")
        elif found != (name, version):
            problems.add(f"{key}.path", f"{path!r} holds chart {found[0]} {found[1]}, not {name} {version} "
                                        f"({key}.version)")
