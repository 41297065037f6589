"""Monitoring as manifests: the ServiceMonitor, the PrometheusRule with the platform's alerts, and a
Grafana dashboard ConfigMap. Pure: plain dicts from the typed config.

Where each alert's data comes from (every name is one a real server or exporter publishes; the
integration tests scrape real Vault and OpenBao servers for the ``vault_*`` ones):

- Vault's own telemetry, scraped from every pod (standbys and sealed pods included) through the
  headless Service: ``vault_core_unsealed``, ``vault_core_active``, ``vault_autopilot_healthy``,
  ``vault_autopilot_failure_tolerance`` (both published by the active node), ``vault_core_handle_request``
  (a summary, milliseconds), ``vault_audit_log_request_failure`` and ``..._response_failure``.
- kube-state-metrics: pod readiness, and the backup CronJob's and the Jobs' success and failure
  (``kube_cronjob_status_last_successful_time``, ``kube_job_status_*``): Kubernetes records when each
  backup run succeeded, so the job has nothing to push.
- the x509-certificate-exporter (``x509_cert_not_after``), which reads the TLS Secret the pods mount.

The telemetry's retention is short (30s), so a gauge from a node that lost leadership goes stale
quickly; the rules still read the autopilot gauges only from the node that is active now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from components.model import PlatformConfig
from components.model.checks import cron_longest_gap_seconds
from components.model.limits import SCRAPE_TIMEOUT
from components.model.names import Names
from components.render.backup_job import BackupNames
from components.render.durations import prometheus_duration
from components.render.rollout_job import restart_job_name, scale_down_job_name

GROUP = "vault-platform"
METRICS_PATH = "/v1/sys/metrics"
DASHBOARD_KEY = "vault-platform.json"


@dataclass(frozen=True)
class Monitoring:
    """Everything the monitoring objects are made from."""

    names: Names
    tls_secret: str
    labels: dict[str, str] = field(default_factory=dict)
    dashboard_labels: dict[str, str] = field(default_factory=dict)
    scrape_interval: str = "30s"
    latency_ms: int = 500
    leadership_changes_per_hour: int = 3
    certificate_expiry_days: int = 14
    # The backup CronJob's name and the longest gap between two of its runs; None without backups.
    backup_cron_job: str | None = None
    backup_interval_seconds: int | None = None
    rollout: bool = True

    @classmethod
    def of(cls, config: PlatformConfig) -> Monitoring:
        names = Names.of(config)
        m = config.monitoring
        tls_secret = config.tls.existing_secret if config.tls.source == "existingSecret" else names.tls_secret
        assert tls_secret
        backup = config.backup
        return cls(names=names, tls_secret=tls_secret, labels=dict(m.labels), dashboard_labels=dict(m.dashboard_labels),
                   scrape_interval=m.scrape_interval, latency_ms=m.alerts.request_latency_ms,
                   leadership_changes_per_hour=m.alerts.leadership_changes_per_hour,
                   certificate_expiry_days=m.alerts.certificate_expiry_days,
                   backup_cron_job=BackupNames.of(names.release).cron_job if backup.enabled else None,
                   backup_interval_seconds=cron_longest_gap_seconds(backup.schedule) if backup.enabled else None,
                   rollout=config.cluster.rollout.enabled)

    @property
    def job(self) -> str:
        """The job label Prometheus gives the scraped pods: the Service's name."""
        return self.names.internal_service


def _labels(m: Monitoring, extra: dict[str, str]) -> dict[str, str]:
    return {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": m.names.release,
            "app.kubernetes.io/part-of": "vault-platform", "app.kubernetes.io/managed-by": "pulumi", **extra}


def service_monitor(m: Monitoring) -> dict[str, Any]:
    """Every server pod, through the headless Service (which lists pods that are not Ready, so a
    sealed pod is still scraped), over TLS verified against the stack's CA. No token: the listener
    allows unauthenticated metrics only when this is deployed (cluster.serviceMonitor)."""
    n = m.names
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": n.release, "namespace": n.namespace, "labels": _labels(m, m.labels)},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": n.release,
                                         "vault-internal": "true"}},
            "namespaceSelector": {"matchNames": [n.namespace]},
            "endpoints": [{
                "port": "https",
                "scheme": "https",
                "path": METRICS_PATH,
                "params": {"format": ["prometheus"]},
                "interval": m.scrape_interval,
                "scrapeTimeout": SCRAPE_TIMEOUT,
                "tlsConfig": {
                    "ca": {"secret": {"name": m.tls_secret, "key": "ca.crt"}},
                    # Every pod's certificate names the Vault Service; the scrape goes to the pod's IP.
                    "serverName": f"{n.release}.{n.namespace}.svc",
                },
            }],
        },
    }


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str

    def rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ != "0m":
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity}
        rule["annotations"] = {"summary": self.summary, "description": self.description,
                               "runbook": f"docs/day-2.md#{self.name.lower()}"}
        return rule


def alerts(m: Monitoring) -> list[Alert]:
    n = m.names
    ns = n.namespace
    vault = f'namespace="{ns}",job="{m.job}"'
    pods = f'namespace="{ns}",pod=~"{n.release}-[0-9]+"'
    per_pod = f"max by (namespace, pod) (vault_core_active{{{vault}}})"
    on_active = f"and on (namespace, pod) ({per_pod} == 1)"
    found = [
        Alert("VaultSealed",
              f"(max by (namespace, pod) (vault_core_unsealed{{{vault}}}) == 0) "
              f'or on (namespace, pod) (kube_pod_status_ready{{{pods},condition="true"}} == 0)',
              "5m", "critical", "Vault pod {{ $labels.pod }} is sealed or not ready",
              "{{ $labels.pod }} in {{ $labels.namespace }} has been sealed (or not Ready) for 5 minutes: it serves "
              "no client and does not count for the quorum."),
        Alert("VaultNoActiveNode",
              f"(sum by (namespace) ({per_pod}) < 1) or absent(vault_core_active{{{vault}}})",
              "2m", "critical", "Vault has no active node",
              "No Vault pod in {{ $labels.namespace }} has been the active node for 2 minutes: every request fails."),
        Alert("VaultAutopilotUnhealthy",
              f"max by (namespace) (vault_autopilot_healthy{{{vault}}} {on_active}) == 0",
              "5m", "warning", "Vault autopilot reports the Raft cluster unhealthy",
              "The active node's autopilot has reported an unhealthy server for 5 minutes (lagging, out of "
              "contact, or dead)."),
        Alert("VaultLeadershipFlapping",
              f"sum by (namespace) (changes(({per_pod})[1h:1m])) / 2 > {m.leadership_changes_per_hour}",
              "0m", "warning", "Vault's active node changes too often",
              f"The active node changed more than {m.leadership_changes_per_hour} times in the last hour in "
              "{{ $labels.namespace }}: the cluster is unstable (resources, network, or a pod restarting)."),
        Alert("VaultAuditDeviceFailing",
              f"(sum by (namespace, pod) (increase(vault_audit_log_request_failure{{{vault}}}[5m])) > 0) "
              f"or (sum by (namespace, pod) (increase(vault_audit_log_response_failure{{{vault}}}[5m])) > 0)",
              "0m", "critical", "Vault audit device failing on {{ $labels.pod }}",
              "{{ $labels.pod }} failed to write audit entries in the last 5 minutes. Vault refuses requests it "
              "cannot audit on any device: check the audit volume and the pod log."),
        Alert("VaultRequestLatencyHigh",
              f'max by (namespace, pod) (vault_core_handle_request{{{vault},quantile="0.99"}}) > {m.latency_ms}',
              "10m", "warning", "Vault requests are slow on {{ $labels.pod }}",
              f"The 99th percentile request time on {{{{ $labels.pod }}}} has been above {m.latency_ms} ms for 10 "
              "minutes ({{ $value | humanize }} ms)."),
        Alert("VaultMetricsUnavailable",
              f"up{{{vault}}} == 0",
              "10m", "warning", "Prometheus cannot scrape Vault pod {{ $labels.pod }}",
              "Scraping {{ $labels.pod }} has failed for 10 minutes: the other alerts cannot see it."),
        Alert("VaultCertificateExpiresSoon",
              f'min by (secret_namespace, secret_name) (x509_cert_not_after{{secret_namespace="{ns}",'
              f'secret_name="{m.tls_secret}"}}) - time() < {m.certificate_expiry_days} * 86400',
              "0m", "warning", "Vault's server certificate expires soon",
              f"The certificate in Secret {m.tls_secret} expires within {m.certificate_expiry_days} days "
              "({{ $value | humanizeDuration }}). Run `pulumi up`: it renews the certificate and restarts the pods."),
        Alert("VaultCertificateExpiryUnknown",
              f'absent(x509_cert_not_after{{secret_namespace="{ns}",secret_name="{m.tls_secret}"}})',
              "1h", "info", "Nothing reports when Vault's server certificate expires",
              f"No x509_cert_not_after series for Secret {ns}/{m.tls_secret}: install the x509-certificate-exporter "
              "(or point it at this Secret) so an expiring certificate alerts."),
    ]
    if n.replicas >= 3:
        tolerance = (n.replicas - 1) // 2
        found.insert(2, Alert(
            "VaultRaftVotersBelowReplicas",
            f"max by (namespace) (vault_autopilot_failure_tolerance{{{vault}}} {on_active}) < {tolerance}",
            "10m", "critical", "Fewer healthy Raft voters than replicas",
            f"The cluster tolerates fewer than {tolerance} failed server(s): fewer than {n.replicas} healthy voters "
            "(a pod down or not promoted, or a dead voter still in the configuration)."))
    if m.backup_cron_job and m.backup_interval_seconds:
        cron = f'namespace="{ns}",cronjob="{m.backup_cron_job}"'
        jobs = f'namespace="{ns}",job_name=~"{m.backup_cron_job}-.+"'
        limit = prometheus_duration(2 * m.backup_interval_seconds)
        found.append(Alert(
            "VaultBackupTooOld",
            f"(time() - kube_cronjob_status_last_successful_time{{{cron}}} > {2 * m.backup_interval_seconds}) "
            f"or ((time() - kube_cronjob_created{{{cron}}} > {2 * m.backup_interval_seconds}) "
            f"unless on (namespace, cronjob) kube_cronjob_status_last_successful_time{{{cron}}})",
            "0m", "critical", "No successful Vault backup for twice the schedule",
            f"The last successful run of CronJob {m.backup_cron_job} is older than {limit} (twice the longest gap "
            "of its schedule), or it never succeeded."))
        found.append(Alert(
            "VaultBackupFailed",
            f"max by (namespace) (kube_job_status_start_time{{{jobs}}} "
            f"and on (namespace, job_name) kube_job_status_failed{{{jobs}}} > 0) "
            f"> (max by (namespace) (kube_job_status_start_time{{{jobs}}} "
            f"and on (namespace, job_name) kube_job_status_succeeded{{{jobs}}} > 0) "
            f"or on (namespace) (0 * max by (namespace) (kube_job_status_start_time{{{jobs}}})))",
            "0m", "critical", "The last Vault backup run failed",
            f"The newest {m.backup_cron_job} Job failed (snapshot, check or upload). A snapshot it took but could not "
            "upload stays on the spool volume and the next run uploads it: read the Job's log (`backup: ERROR:`)."))
    if m.rollout:
        restart = restart_job_name(n, "")
        scale = scale_down_job_name(n).rsplit("-", 1)[0]
        found.append(Alert(
            "VaultRolloutFailed",
            f'kube_job_status_failed{{namespace="{ns}",job_name=~"({restart}|{scale}-).+"}} > 0',
            "0m", "critical", "A Vault rolling restart or scale-down stopped",
            "Job {{ $labels.job_name }} failed: it stopped with at most one pod down and the quorum intact. Its "
            "log names the reason; the next `pulumi up` replaces the Job and resumes."))
    return found


def prometheus_rule(m: Monitoring) -> dict[str, Any]:
    n = m.names
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": n.release, "namespace": n.namespace, "labels": _labels(m, m.labels)},
        "spec": {"groups": [{"name": GROUP, "rules": [a.rule() for a in alerts(m)]}]},
    }


def rule_file(m: Monitoring) -> dict[str, Any]:
    """The same rules as Prometheus' own rule file (what `promtool check rules` reads)."""
    return prometheus_rule(m)["spec"]


# --- the dashboard ---------------------------------------------------------------------------------

def _panel(pid: int, title: str, exprs: list[tuple[str, str]], x: int, y: int, unit: str = "short",
           kind: str = "timeseries") -> dict[str, Any]:
    return {
        "id": pid, "type": kind, "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(exprs)],
    }


def dashboard_queries(m: Monitoring) -> list[str]:
    """Every PromQL expression the dashboard runs (the tests have promtool parse them)."""
    return [t["expr"] for p in dashboard(m)["panels"] for t in p["targets"]]


def dashboard(m: Monitoring) -> dict[str, Any]:
    n = m.names
    vault = f'namespace="{n.namespace}",job="{m.job}"'
    active = f"max by (namespace, pod) (vault_core_active{{{vault}}})"
    panels = [
        _panel(1, "Active node", [(active, "{{pod}}")], 0, 0),
        _panel(2, "Unsealed", [(f"max by (pod) (vault_core_unsealed{{{vault}}})", "{{pod}}")], 12, 0),
        _panel(3, "Autopilot (active node)", [
            (f"max(vault_autopilot_healthy{{{vault}}} and on (namespace, pod) ({active} == 1))", "healthy"),
            (f"max(vault_autopilot_failure_tolerance{{{vault}}} and on (namespace, pod) ({active} == 1))",
             "failure tolerance")], 0, 8),
        _panel(4, "Raft peers", [(f"max by (pod) (vault_raft_peers{{{vault}}})", "{{pod}}")], 12, 8),
        _panel(5, "Request time (ms)", [
            (f'max by (pod) (vault_core_handle_request{{{vault},quantile="0.5"}})', "p50 {{pod}}"),
            (f'max by (pod) (vault_core_handle_request{{{vault},quantile="0.99"}})', "p99 {{pod}}")], 0, 16, "ms"),
        _panel(6, "Requests per second", [
            (f"sum by (pod) (rate(vault_core_handle_request_count{{{vault}}}[5m]))", "{{pod}}")], 12, 16, "reqps"),
        _panel(7, "Audit failures (5m)", [
            (f"sum by (pod) (increase(vault_audit_log_request_failure{{{vault}}}[5m]))", "requests {{pod}}"),
            (f"sum by (pod) (increase(vault_audit_log_response_failure{{{vault}}}[5m]))", "responses {{pod}}")],
            0, 24),
        _panel(8, "Leadership changes (1h)", [
            (f"sum(changes(({active})[1h:1m])) / 2", "changes")], 12, 24),
    ]
    if m.backup_cron_job:
        cron = f'namespace="{n.namespace}",cronjob="{m.backup_cron_job}"'
        panels.append(_panel(9, "Time since the last successful backup", [
            (f"time() - kube_cronjob_status_last_successful_time{{{cron}}}", "age")], 0, 32, "s"))
    panels.append(_panel(10, "Server certificate expires in", [
        (f'min(x509_cert_not_after{{secret_namespace="{n.namespace}",secret_name="{m.tls_secret}"}}) - time()',
         "remaining")], 12, 32, "s"))
    return {
        "title": f"Vault ({n.namespace}/{n.release})",
        "uid": f"vault-platform-{n.namespace}-{n.release}"[:40],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "tags": ["vault", "vault-platform"],
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus", "current": {}}]},
        "panels": panels,
    }


def dashboard_config_map(m: Monitoring) -> dict[str, Any]:
    n = m.names
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{n.release}-dashboard", "namespace": n.namespace,
                     "labels": _labels(m, m.dashboard_labels)},
        "data": {DASHBOARD_KEY: json.dumps(dashboard(m), indent=1, sort_keys=True)},
    }

