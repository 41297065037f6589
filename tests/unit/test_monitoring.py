"""Monitoring: the ServiceMonitor and PrometheusRule against the Prometheus Operator's CRD schemas,
the rules through Prometheus' own promtool (`check rules`, and `test rules` scenarios that make each
alert fire, and some that must stay silent), the dashboard's queries, and both stacks' graphs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components.render import monitoring
from components.render.monitoring import Monitoring, alerts
from tests import facts
from tests.harness import load_stack, run_stack
from tests.promtool import promtool_binary

PROD = Monitoring.of(load_stack("prod"))
# dev's 720h certificate is renewed in its last 10 days: the expiry alert may only fire within them.
DEV = Monitoring.of(load_stack("dev", {"cluster": {"serviceMonitor": True},
                                       "monitoring": {"prometheusRule": True, "grafanaDashboard": True,
                                                      "alerts": {"certificateExpiryDays": 7}}}))
CUSTOM_RESOURCE = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


@pytest.fixture(scope="module")
def promtool() -> Path:
    try:
        return promtool_binary()
    except RuntimeError as exc:
        pytest.fail(f"promtool is not available: {exc}\n(`bash tools/promtool/build.sh` builds it with Go)")


def _run(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# --- the custom resources against their CRDs --------------------------------------------------------

@pytest.mark.parametrize("m", [PROD, DEV], ids=["prod", "dev"])
def test_service_monitor_and_rule_are_what_the_api_server_accepts(m):
    for manifest in (monitoring.service_monitor(m), monitoring.prometheus_rule(m)):
        assert facts.custom_resource_problems(manifest) == [], manifest["kind"]


def test_a_field_the_crd_does_not_know_is_caught():
    manifest = monitoring.service_monitor(PROD)
    manifest["spec"]["endpoints"][0]["tlsConfig"]["caSecret"] = "vault-tls"
    assert facts.custom_resource_problems(manifest) == [
        "ServiceMonitor spec.endpoints.0.tlsConfig: Additional properties are not allowed ('caSecret' was unexpected)"]


def test_every_pod_is_scraped_over_tls_verified_against_the_stack_ca():
    spec = monitoring.service_monitor(PROD)["spec"]
    # The headless Service lists pods that are not Ready too: a sealed pod is still scraped.
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": "vault",
                                               "vault-internal": "true"}
    assert spec["namespaceSelector"] == {"matchNames": ["vault"]}
    (endpoint,) = spec["endpoints"]
    assert endpoint["scheme"] == "https" and endpoint["path"] == "/v1/sys/metrics"
    assert endpoint["params"] == {"format": ["prometheus"]}
    assert endpoint["tlsConfig"] == {"ca": {"secret": {"name": "vault-tls", "key": "ca.crt"}},
                                     "serverName": "vault.vault.svc"}
    assert "insecureSkipVerify" not in json.dumps(spec)
    # No token: the listener lets the scrape in only because the ServiceMonitor exists.
    assert not {"authorization", "bearerTokenSecret", "basicAuth"} & set(endpoint)


# --- promtool ----------------------------------------------------------------------------------------

def _rules_dir(tmp_path: Path, m: Monitoring) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(monitoring.rule_file(m), sort_keys=False))
    return tmp_path


@pytest.mark.promtool
@pytest.mark.parametrize("m", [PROD, DEV], ids=["prod", "dev"])
def test_promtool_accepts_the_rules(promtool, tmp_path, m):
    proc = _run(promtool, "check", "rules", "rules.yaml", cwd=_rules_dir(tmp_path, m))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alerts(m))} rules found" in proc.stdout


@pytest.mark.promtool
def test_promtool_refuses_a_broken_expression(promtool, tmp_path):
    """The check above can fail: a rule with a typo in its PromQL is refused."""
    rules = monitoring.rule_file(PROD)
    rules["groups"][0]["rules"][0]["expr"] = "max by (pod (vault_core_unsealed)"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    proc = _run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert proc.returncode != 0 and "rules.yaml" in proc.stdout + proc.stderr


V = 'namespace="vault",job="vault-internal"'
CRON = 'namespace="vault",cronjob="vault-backup"'


def _active(pod: str, values: str, cluster: str = "vault-cluster-1") -> tuple[str, str]:
    return f'vault_core_active{{{V},pod="{pod}",cluster="{cluster}"}}', values


# Each scenario: (alert, input series, evaluation time, alerts expected: (labels, text of $value or None)).
# One firing scenario per alert at least; the silent ones show a rule cannot fire on healthy data.
SCENARIOS: list[tuple[str, str, list[tuple[str, str]], str, list[tuple[dict[str, str], str | None]]]] = [
    ("VaultSealed", "a pod reports itself sealed",
     [(f'vault_core_unsealed{{{V},pod="vault-1",cluster="c"}}', "1 1 0x10"),
      (f'vault_core_unsealed{{{V},pod="vault-0",cluster="c"}}', "1x12")],
     "10m", [({"namespace": "vault", "pod": "vault-1"}, None)]),
    ("VaultSealed", "kube-state-metrics sees a pod not Ready",
     [('kube_pod_status_ready{namespace="vault",pod="vault-2",condition="true",uid="u2",job="kube-state-metrics"}',
       "0x10")],
     "10m", [({"namespace": "vault", "pod": "vault-2", "condition": "true", "uid": "u2", "job": "kube-state-metrics"},
              None)]),
    ("VaultSealed", "every pod unsealed and Ready",
     [(f'vault_core_unsealed{{{V},pod="vault-1",cluster="c"}}', "1x10"),
      ('kube_pod_status_ready{namespace="vault",pod="vault-1",condition="true",uid="u1"}', "1x10")],
     "10m", []),
    ("VaultNoActiveNode", "no pod active",
     [_active("vault-0", "1 0x10"), _active("vault-1", "0x11")], "6m", [({"namespace": "vault"}, None)]),
    ("VaultNoActiveNode", "no Vault metrics at all", [], "5m",
     [({"namespace": "vault", "job": "vault-internal"}, None)]),
    ("VaultNoActiveNode", "one active node", [_active("vault-0", "1x10"), _active("vault-1", "0x10")], "6m", []),
    ("VaultRaftVotersBelowReplicas", "the active node tolerates one failure of five voters' two",
     [_active("vault-0", "1x20"), _active("vault-1", "0x20"),
      (f'vault_autopilot_failure_tolerance{{{V},pod="vault-0"}}', "1x20"),
      # A former leader's stale value does not count.
      (f'vault_autopilot_failure_tolerance{{{V},pod="vault-1"}}', "2x20")],
     "15m", [({"namespace": "vault"}, None)]),
    ("VaultRaftVotersBelowReplicas", "five healthy voters",
     [_active("vault-0", "1x20"), (f'vault_autopilot_failure_tolerance{{{V},pod="vault-0"}}', "2x20")], "15m", []),
    ("VaultAutopilotUnhealthy", "the active node's autopilot reports unhealthy",
     [_active("vault-0", "1x10"), _active("vault-1", "0x10"),
      (f'vault_autopilot_healthy{{{V},pod="vault-0"}}', "0x10"),
      (f'vault_autopilot_healthy{{{V},pod="vault-1"}}', "1x10")],
     "8m", [({"namespace": "vault"}, None)]),
    ("VaultAutopilotUnhealthy", "only a former leader's stale value is unhealthy",
     [_active("vault-0", "1x10"), _active("vault-1", "0x10"),
      (f'vault_autopilot_healthy{{{V},pod="vault-0"}}', "1x10"),
      (f'vault_autopilot_healthy{{{V},pod="vault-1"}}', "0x10")],
     "8m", []),
    ("VaultLeadershipFlapping", "the active node changes every five minutes",
     [_active("vault-0", " ".join(["1 1 1 1 1 0 0 0 0 0"] * 7)),
      _active("vault-1", " ".join(["0 0 0 0 0 1 1 1 1 1"] * 7))],
     "65m", [({"namespace": "vault"}, None)]),
    ("VaultLeadershipFlapping", "one step-down in an hour (a rolling restart)",
     [_active("vault-0", "1x30 0x35"), _active("vault-1", "0x30 1x35")], "65m", []),
    ("VaultAuditDeviceFailing", "audit writes fail",
     [(f'vault_audit_log_request_failure{{{V},pod="vault-0"}}', "0 0 0 1 3 7 10 12")],
     "7m", [({"namespace": "vault", "pod": "vault-0"}, None)]),
    ("VaultAuditDeviceFailing", "responses fail to be audited",
     [(f'vault_audit_log_response_failure{{{V},pod="vault-2"}}', "0 0 0 0 2 2 2 2")],
     "7m", [({"namespace": "vault", "pod": "vault-2"}, None)]),
    ("VaultAuditDeviceFailing", "audit devices write", [
        (f'vault_audit_log_request_failure{{{V},pod="vault-0"}}', "0x8")], "7m", []),
    ("VaultRequestLatencyHigh", "the 99th percentile stays at 800 ms",
     [(f'vault_core_handle_request{{{V},pod="vault-0",quantile="0.99"}}', "800x20"),
      (f'vault_core_handle_request{{{V},pod="vault-0",quantile="0.5"}}', "3x20")],
     "15m", [({"namespace": "vault", "pod": "vault-0"}, "800")]),
    ("VaultRequestLatencyHigh", "fast requests",
     [(f'vault_core_handle_request{{{V},pod="vault-0",quantile="0.99"}}', "40x20")], "15m", []),
    ("VaultMetricsUnavailable", "a pod cannot be scraped",
     [(f'up{{{V},pod="vault-3",instance="10.0.0.3:8200"}}', "0x15")], "12m",
     [({"namespace": "vault", "job": "vault-internal", "pod": "vault-3", "instance": "10.0.0.3:8200"}, None)]),
    ("VaultCertificateExpiresSoon", "the certificate expires in ten days",
     [('x509_cert_not_after{secret_namespace="vault",secret_name="vault-tls",secret_key="tls.crt"}', "864000x5")],
     "1m", [({"secret_namespace": "vault", "secret_name": "vault-tls"}, "9d 23h 59m 0s")]),
    ("VaultCertificateExpiresSoon", "thirty days left",
     [('x509_cert_not_after{secret_namespace="vault",secret_name="vault-tls",secret_key="tls.crt"}', "2592000x5")],
     "1m", []),
    ("VaultCertificateExpiryUnknown", "nothing reports the certificate", [], "61m",
     [({"secret_namespace": "vault", "secret_name": "vault-tls"}, None)]),
    # Thirteen hours of samples, one a minute.
    ("VaultBackupTooOld", "the last success is 13 hours old (schedule: every 6 hours)",
     [(f"kube_cronjob_status_last_successful_time{{{CRON}}}", "0x800"),
      (f"kube_cronjob_created{{{CRON}}}", "0x800")],
     "13h", [({"namespace": "vault", "cronjob": "vault-backup"}, None)]),
    ("VaultBackupTooOld", "never succeeded, created 13 hours ago",
     [(f"kube_cronjob_created{{{CRON}}}", "0x800")], "13h",
     [({"namespace": "vault", "cronjob": "vault-backup"}, None)]),
    ("VaultBackupTooOld", "succeeding all along",
     [(f"kube_cronjob_status_last_successful_time{{{CRON}}}", "0+60x800"),
      (f"kube_cronjob_created{{{CRON}}}", "0x800")], "13h", []),
    ("VaultBackupFailed", "the newest run failed (its upload, say)",
     [('kube_job_status_start_time{namespace="vault",job_name="vault-backup-100"}', "100x5"),
      ('kube_job_status_succeeded{namespace="vault",job_name="vault-backup-100"}', "1x5"),
      ('kube_job_status_start_time{namespace="vault",job_name="vault-backup-200"}', "200x5"),
      ('kube_job_status_failed{namespace="vault",job_name="vault-backup-200",reason="BackoffLimitExceeded"}', "1x5")],
     "3m", [({"namespace": "vault"}, None)]),
    ("VaultBackupFailed", "the only run so far failed",
     [('kube_job_status_start_time{namespace="vault",job_name="vault-backup-200"}', "200x5"),
      ('kube_job_status_failed{namespace="vault",job_name="vault-backup-200",reason="BackoffLimitExceeded"}', "1x5")],
     "3m", [({"namespace": "vault"}, None)]),
    ("VaultBackupFailed", "a failed run, then a good one",
     [('kube_job_status_start_time{namespace="vault",job_name="vault-backup-200"}', "200x5"),
      ('kube_job_status_failed{namespace="vault",job_name="vault-backup-200",reason="BackoffLimitExceeded"}', "1x5"),
      ('kube_job_status_start_time{namespace="vault",job_name="vault-backup-300"}', "300x5"),
      ('kube_job_status_succeeded{namespace="vault",job_name="vault-backup-300"}', "1x5")], "3m", []),
    ("VaultRolloutFailed", "a rolling restart stopped",
     [('kube_job_status_failed{namespace="vault",job_name="vault-rollout-0123456789",reason="BackoffLimitExceeded"}',
       "1x5")],
     "2m", [({"namespace": "vault", "job_name": "vault-rollout-0123456789", "reason": "BackoffLimitExceeded"},
             None)]),
    ("VaultRolloutFailed", "a scale-down stopped",
     [('kube_job_status_failed{namespace="vault",job_name="vault-scale-down-to-3"}', "1x5")],
     "2m", [({"namespace": "vault", "job_name": "vault-scale-down-to-3"}, None)]),
    ("VaultRolloutFailed", "another Job failed",
     [('kube_job_status_failed{namespace="vault",job_name="vault-backup-999"}', "1x5")], "2m", []),
]


def _annotations(rule: dict, labels: dict[str, str], value: str | None) -> dict[str, str]:
    """The rule's annotations as Prometheus renders them for these labels and this $value text."""
    out = {}
    for key, template in rule["annotations"].items():
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)
        if "$value" in text:
            assert value is not None, f"{rule['alert']}: give the rendered $value"
            text = re.sub(r"\{\{ \$value[^}]*\}\}", value, text)
        out[key] = text
    return out


def _test_file(alert: str, scenarios: list) -> dict:
    rule = next(r for r in monitoring.rule_file(PROD)["groups"][0]["rules"] if r["alert"] == alert)
    tests = []
    for _, _, series, at, expected in scenarios:
        tests.append({
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series],
            "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": [
                {"exp_labels": {**labels, "severity": rule["labels"]["severity"]},
                 "exp_annotations": _annotations(rule, labels, value)} for labels, value in expected]}],
        })
    return {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}


ALERTS = sorted({a.name for a in alerts(PROD)})


def test_every_alert_has_a_scenario_that_makes_it_fire():
    firing = {s[0] for s in SCENARIOS if s[4]}
    assert firing == set(ALERTS)


@pytest.mark.promtool
@pytest.mark.parametrize("alert", ALERTS)
def test_promtool_makes_the_alert_fire_and_keeps_it_silent_when_healthy(promtool, tmp_path, alert):
    scenarios = [s for s in SCENARIOS if s[0] == alert]
    (_rules_dir(tmp_path, PROD) / "tests.yaml").write_text(yaml.safe_dump(_test_file(alert, scenarios),
                                                                          sort_keys=False))
    proc = _run(promtool, "test", "rules", "tests.yaml", cwd=tmp_path)
    assert proc.returncode == 0, f"{[s[1] for s in scenarios]}\n{proc.stdout}{proc.stderr}"
    assert "SUCCESS" in proc.stdout


@pytest.mark.promtool
def test_a_scenario_that_expects_the_wrong_thing_fails(promtool, tmp_path):
    """promtool really compares: a healthy cluster expected to alert is a failed test."""
    wrong = [("VaultNoActiveNode", "one active node", [_active("vault-0", "1x10")], "6m",
              [({"namespace": "vault"}, None)])]
    (_rules_dir(tmp_path, PROD) / "tests.yaml").write_text(yaml.safe_dump(_test_file("VaultNoActiveNode", wrong)))
    proc = _run(promtool, "test", "rules", "tests.yaml", cwd=tmp_path)
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr


@pytest.mark.promtool
@pytest.mark.parametrize("m", [PROD, DEV], ids=["prod", "dev"])
def test_the_dashboard_queries_are_valid_promql(promtool, tmp_path, m):
    queries = monitoring.dashboard_queries(m)
    assert len(queries) >= 10
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]}]}
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump(rules))
    proc = _run(promtool, "check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_thresholds_come_from_the_config():
    m = Monitoring.of(load_stack("prod", {"monitoring": {"alerts": {
        "requestLatencyMs": 250, "leadershipChangesPerHour": 5, "certificateExpiryDays": 30}},
        "backup": {"schedule": "0 3 * * *"}}))
    by_name = {a.name: a.expr for a in alerts(m)}
    assert by_name["VaultRequestLatencyHigh"].endswith("> 250")
    assert by_name["VaultLeadershipFlapping"].endswith("> 5")
    assert "< 30 * 86400" in by_name["VaultCertificateExpiresSoon"]
    # A daily backup may be 48 hours old before it alerts.
    assert "> 172800" in by_name["VaultBackupTooOld"]
    # Three replicas tolerate one failure; five, two.
    three = Monitoring.of(load_stack("prod", {"cluster": {"replicas": 3}}))
    assert next(a.expr for a in alerts(three) if a.name == "VaultRaftVotersBelowReplicas").endswith("< 1")


# --- the stacks ---------------------------------------------------------------------------------------

def test_prod_declares_the_service_monitor_the_rule_and_the_dashboard():
    rec = run_stack("prod")
    sm = rec.one(CUSTOM_RESOURCE)
    rule = rec.one(RULE)
    for resource in (sm, rule):
        manifest = {"apiVersion": resource.get("apiVersion"), "kind": resource.get("kind"),
                    "metadata": resource.get("metadata"), "spec": resource.get("spec")}
        assert facts.custom_resource_problems(manifest) == []
        assert resource.get("metadata.labels")["release"] == "kube-prometheus-stack"
        assert resource.get("metadata.namespace") == "vault"
        assert rec.depends_on(resource, rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release"))
    assert sorted(r["alert"] for r in rule.get("spec.groups")[0]["rules"]) == ALERTS
    dashboard = rec.one("kubernetes:core/v1:ConfigMap", "vault-monitoring-dashboard")
    assert dashboard.get("metadata.labels")["grafana_dashboard"] == "1"
    board = json.loads(dashboard.get("data")[monitoring.DASHBOARD_KEY])
    assert board["panels"] and all(p["targets"] for p in board["panels"])


def test_dev_declares_no_monitoring_objects():
    rec = run_stack("dev")
    assert rec.of_type(CUSTOM_RESOURCE) == [] and rec.of_type(RULE) == []
    assert [r for r in rec.resources if r.name == "vault-monitoring"] == []
