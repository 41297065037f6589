"""Settings that would have no effect, refused by one rule over one table.

A setting is refused when what it configures is off in this config (a feature not enabled, another
type or target chosen, nothing that reads it), naming the setting that makes it so: a value the
program ignores is a mistake the user has not seen yet.

One exception, everywhere: a feature switched off with an explicit ``enabled: false`` keeps the
settings beside it in its section (and the few elsewhere that only it reads), so it can be switched
off and on again without deleting them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from components.model.platform import PlatformConfig
from components.model.problems import Problems


@dataclass(frozen=True)
class Unused:
    """``keys`` have no effect while ``off`` holds. A key ending in ``.*`` stands for every key set
    directly under that section. ``switches``: ``enabled`` keys elsewhere whose explicit false also
    excuses these keys (the feature that reads them was switched off on purpose). ``switch``: the one
    boolean whose false value is the whole cause, when there is one."""

    keys: tuple[str, ...]
    off: bool
    why: str
    fix: str
    switches: tuple[str, ...] = ()
    switch: str | None = None


def value_at(config: BaseModel, path: str) -> Any:
    """The loaded value at a dotted key path (camelCase keys, as in the stack file), or None."""
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, BaseModel):
            return None
        by_alias = {(f.alias or n): n for n, f in type(node).model_fields.items()}
        if part not in by_alias:
            return None
        node = getattr(node, by_alias[part])
    return node


def switched_off(config: PlatformConfig, given: set[str] | frozenset[str], switch: str) -> bool:
    """Whether the user wrote ``<switch>: false`` (not merely left it at a false default)."""
    return switch in given and value_at(config, switch) is False


def switch(config: PlatformConfig, given: set[str] | frozenset[str], key: str, *keys: str,
           switches: tuple[str, ...] = ()) -> Unused:
    """The keys a boolean ``key`` turns on (its section's other keys: ``<section>.*``)."""
    default = "" if key in given else " (its default)"
    return Unused(keys, not value_at(config, key), f"{key} is false{default}",
                  f"set {key}: true to use it, or remove it (a {key}: false written in the stack keeps it)",
                  switches=(key, *switches), switch=key)


def table(c: PlatformConfig, given: set[str] | frozenset[str]) -> list[Unused]:
    """Every setting that some other setting can make ineffective, and when."""
    on = lambda key, *keys, switches=(): switch(c, given, key, *keys, switches=switches)  # noqa: E731
    api, b, m = c.api, c.backup, c.monitoring
    replicas = c.cluster.replicas or 0
    uses_s3 = b.enabled and b.target == "s3"
    awskms = c.unseal.type == "awskms"
    migration = c.migration.aws_secrets_manager.enabled
    eso_apps = any(a.uses_external_secrets for a in c.applications)
    public_lb = api.service_type == "LoadBalancer" and not api.internal_load_balancer
    found = [
        # --- cluster
        on("cluster.injector.enabled", "cluster.injector.*"),
        on("cluster.networkPolicy.enabled", "cluster.networkPolicy.*"),
        on("cluster.rollout.enabled", "cluster.rollout.*"),
        Unused(("cluster.raft.autopilot.cleanupDeadServers", "cluster.raft.autopilot.deadServerLastContactThreshold"),
               replicas < 3, f"autopilot removes dead servers only from a cluster of 3 or more, and cluster.replicas "
                             f"is {replicas}", "remove it"),
        Unused(("cluster.raft.autopilot.deadServerLastContactThreshold",),
               not c.cluster.raft.autopilot.cleanup_dead_servers,
               "cluster.raft.autopilot.cleanupDeadServers is false", "remove it, or set cleanupDeadServers: true"),
        # --- api
        Unused(("api.nodePort",), api.service_type != "NodePort", f"api.serviceType is {api.service_type!r}",
               "remove it, or set api.serviceType: NodePort"),
        Unused(("api.internalLoadBalancer",), api.service_type != "LoadBalancer",
               f"api.serviceType is {api.service_type!r} (it marks a LoadBalancer internal)", "remove it"),
        Unused(("api.publicExposureIntended",), not public_lb,
               "it only confirms an internet-facing load balancer (api.serviceType LoadBalancer with "
               "api.internalLoadBalancer false)", "remove it"),
        Unused(("api.dns.route53ZoneId",), api.dns.record != "route53", f"api.dns.record is {api.dns.record!r}",
               "remove it, or set api.dns.record: route53"),
        Unused(("api.dns.ttl",), api.dns.record == "none", "api.dns.record is 'none' (no record is made)",
               "remove it, or choose a record (externalDns or route53)"),
        # --- tls
        Unused(("tls.existingSecret", "tls.existingCaCert"), c.tls.source != "existingSecret",
               f"tls.source is {c.tls.source!r}", "remove it, or set tls.source: existingSecret"),
        Unused(("tls.issuer",), c.tls.source != "certManager", f"tls.source is {c.tls.source!r}",
               "remove it, or set tls.source: certManager"),
        Unused(("tls.caValidity",), c.tls.source == "certManager" and c.tls.issuer is not None,
               "tls.issuer signs the certificate (the stack makes no CA)", "remove it"),
        Unused(("tls.extraDnsNames", "tls.extraIpAddresses", "tls.validity", "tls.caValidity", "tls.organization"),
               c.tls.source == "existingSecret", "tls.source is 'existingSecret' (your Secret's certificate is used)",
               "remove it"),
        # --- unseal
        Unused(("unseal.awskms.*",), not awskms, f"unseal.type is {c.unseal.type!r}",
               "remove it, or set unseal.type: awskms"),
        Unused(("unseal.transit", "secrets.transitUnsealToken"), c.unseal.type != "transit",
               f"unseal.type is {c.unseal.type!r}", "remove it, or set unseal.type: transit"),
        # --- init
        Unused(("init.acceptPlaintextShares",), not c.is_prod, "only prod requires PGP-encrypted key shares",
               "remove it"),
        Unused(("init.acceptPlaintextShares",), c.is_prod and bool(c.init.pgp_keys),
               "init.pgpKeys encrypts every share", "remove it"),
        # --- aws: what reads each of its settings
        Unused(("aws",), not (awskms or uses_s3 or api.dns.record == "route53" or migration),
               "nothing in this stack uses AWS (unseal.type awskms, backups to s3, api.dns.record route53 or "
               "migration.awsSecretsManager)", "remove it", switches=("backup.enabled",
                                                                       "migration.awsSecretsManager.enabled")),
        Unused(("aws.keyAdministrators",), not (awskms or uses_s3),
               "the stack makes no KMS key (it makes one for unseal.type awskms and one for backups to s3)",
               "remove it", switches=("backup.enabled",)),
        Unused(("aws.snapshotReaders",), not uses_s3, "the stack makes no snapshot bucket (backups are off or do "
                                                      "not go to s3)", "remove it", switches=("backup.enabled",)),
        Unused(("aws.permissionsBoundary",), not (awskms or uses_s3 or migration),
               "the stack makes no IAM role (it makes them for awskms unseal, backups to s3 and the migration store)",
               "remove it", switches=("backup.enabled", "migration.awsSecretsManager.enabled")),
        # --- secrets engines
        on("database.enabled", "database.*", "secrets.databasePasswords"),
        Unused(("database.devPostgresImage",), not c.database.dev_postgres, "database.devPostgres is false",
               "remove it, or set database.devPostgres: true", switches=("database.enabled",)),
        on("pki.enabled", "pki.*"),
        on("pki.intermediate.enabled", "pki.intermediate.*"),
        on("pki.tidy.enabled", "pki.tidy.*"),
        on("transit.enabled", "transit.*"),
        # --- delivery
        Unused(("externalSecrets.*",), not (eso_apps or migration),
               "no application's delivery uses the External Secrets Operator and migration.awsSecretsManager is off",
               "remove it (it applies once an application's delivery is externalSecrets or both)",
               switches=("migration.awsSecretsManager.enabled",)),
        Unused(("externalSecrets.refreshInterval",), not eso_apps,
               "no application's delivery uses the External Secrets Operator (the migration store has none)",
               "remove it"),
        Unused(("externalSecrets.chart", "externalSecrets.clusterWideTokenRequests"), not c.external_secrets.install,
               "externalSecrets.install is false (the operator already running is used)",
               "remove it, or set externalSecrets.install: true"),
        on("certManager.enabled", "certManager.*"),
        # --- backups
        on("backup.enabled", "backup.*", "aws.snapshotReaders"),
        Unused(("backup.s3.*",), b.target != "s3", f"backup.target is {b.target!r}",
               "remove it, or set backup.target: s3"),
        Unused(("backup.volume.*",), b.target != "volume", f"backup.target is {b.target!r}",
               "remove it, or set backup.target: volume"),
        Unused(("backup.s3.objectLock.days",), b.s3.object_lock.mode == "none", "backup.s3.objectLock.mode is 'none'",
               "remove it, or set the mode to governance or compliance"),
        on("backup.s3.replication.enabled", "backup.s3.replication.*"),
        # --- deploy identity
        on("deploy.jwt.enabled", "deploy.jwt.*"),
        on("deploy.operatorOidc.enabled", "deploy.operatorOidc.*", "secrets.oidcClientSecret"),
        Unused(("deploy.bootstrapTokenTtl",), not c.deploy.revoke_root_token,
               "deploy.revokeRootToken is false" + ("" if "deploy.revokeRootToken" in given else
                                                    f" (its default in {c.environment})")
               + ": no bootstrap token replaces the root token", "remove it, or set deploy.revokeRootToken: true"),
        # --- migration
        on("migration.awsSecretsManager.enabled", "migration.awsSecretsManager.*"),
        # --- monitoring
        Unused(("monitoring.alerts",), not m.prometheus_rule, "monitoring.prometheusRule is false (no alert is made)",
               "set monitoring.prometheusRule: true to use it, or remove it"),
        Unused(("monitoring.dashboardLabels",), not m.grafana_dashboard,
               "monitoring.grafanaDashboard is false (no dashboard is made)",
               "set monitoring.grafanaDashboard: true to use it, or remove it"),
        Unused(("monitoring.scrapeInterval",), not c.cluster.service_monitor,
               "cluster.serviceMonitor is false (nothing scrapes the pods)",
               "set cluster.serviceMonitor: true to use it, or remove it"),
        Unused(("monitoring.prometheusNamespace",),
               not (c.cluster.service_monitor and c.cluster.network_policy.enabled),
               "it only lets Prometheus through the NetworkPolicy, with cluster.serviceMonitor and "
               "cluster.networkPolicy.enabled true", "remove it", switches=("cluster.networkPolicy.enabled",)),
        Unused(("monitoring.labels",), not (c.cluster.service_monitor or m.prometheus_rule),
               "there is no ServiceMonitor or PrometheusRule to label (cluster.serviceMonitor and "
               "monitoring.prometheusRule are false)", "remove it"),
    ]
    for i, app in enumerate(c.applications):
        key = f"applications[{i}]"
        found += [
            Unused((f"{key}.refreshInterval",), not app.uses_external_secrets, f"its delivery is {app.delivery!r}",
                   "remove it, or deliver through the External Secrets Operator (externalSecrets or both)"),
            Unused((f"{key}.secrets",), app.delivery == "none",
                   "its delivery is 'none' (the injector or the External Secrets Operator delivers them)",
                   "choose a delivery, or remove them"),
        ]
    return found


def _set_keys(key: str, given: set[str] | frozenset[str]) -> Iterator[str]:
    if key.endswith(".*"):
        section = key[:-2]
        depth = section.count(".") + 1
        yield from sorted(p for p in given if p.startswith(section + ".") and p.count(".") == depth
                          and p != f"{section}.enabled")
    elif key in given:
        yield key


def _excused(c: PlatformConfig, given: set[str] | frozenset[str], key: str, entry: Unused) -> bool:
    """Switched off on purpose: an explicit ``enabled: false`` in a section holding the key, or one of
    the entry's switches."""
    parts = key.split(".")
    sections = [".".join(parts[:n]) for n in range(1, len(parts))]
    return any(switched_off(c, given, f"{s}.enabled") for s in sections) or \
        any(switched_off(c, given, s) for s in entry.switches)


def check(c: PlatformConfig, problems: Problems, given: set[str] | frozenset[str]) -> None:
    reported: dict[str, str] = {}
    for entry in table(c, given):
        if not entry.off:
            continue
        for key in entry.keys:
            for path in _set_keys(key, given):
                if path not in reported and not _excused(c, given, path, entry):
                    reported[path] = f"has no effect: {entry.why}; {entry.fix}"
    for path, message in reported.items():
        # A section refused as a whole says it for everything in it.
        if not any(path.startswith(other + ".") for other in reported):
            problems.add(path, message)
