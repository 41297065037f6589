"""The day-2 settings: Raft timing and autopilot, rolling restarts, monitoring, Object Lock and
replication, PKI tidy, transit rotation, database root rotation. Each rule names the key, the value
and what is allowed; the defaults are what prod and dev need."""

from __future__ import annotations

import json

import pytest

from components.model import ConfigError, load_config
from components.model.checks import cron_longest_gap_seconds
from components.render import vault_objects as vs
from tests.harness import stack_config
from tests.harness.fakes import fake_pgp_key


def load(stack: str, overrides: dict | None = None):
    config, keys = stack_config(stack, overrides)
    return load_config(config, set(keys))


def problems(stack: str, overrides: dict) -> str:
    with pytest.raises(ConfigError) as err:
        load(stack, overrides)
    return str(err.value)


def test_prod_fails_over_fast_and_dev_keeps_vault_timing():
    assert load("prod", {"cluster": {"raft": None}}).cluster.raft.performance_multiplier == 1
    assert load("dev", {"cluster": {"raft": None}}).cluster.raft.performance_multiplier == 5
    assert load("dev", {"cluster": {"raft": {"performanceMultiplier": 2}}}).cluster.raft.performance_multiplier == 2
    assert "vault-platform:cluster.raft.performanceMultiplier: 11 is out of range; allowed: 1 to 10" in problems(
        "prod", {"cluster": {"raft": {"performanceMultiplier": 11}}})


def test_autopilot_follows_the_replica_count():
    five = vs.build(load("prod")).autopilot
    # Durations as Vault answers with them (Go's form), so reading them back shows no change.
    assert five == vs.RaftAutopilot(cleanup_dead_servers=True, dead_server_last_contact_threshold="10m0s",
                                    last_contact_threshold="10s", server_stabilization_time="10s",
                                    max_trailing_logs=1000, min_quorum=5)
    assert vs.build(load("dev")).autopilot.min_quorum == 3  # type: ignore[union-attr]
    # Vault refuses dead-server cleanup below a quorum of three: a single server keeps everything.
    one = vs.build(load("dev", {"cluster": {"replicas": 1}})).autopilot
    assert one is not None and one.cleanup_dead_servers is False and one.min_quorum == 0
    off = vs.build(load("prod", {"cluster": {"raft": {"autopilot": {
        "cleanupDeadServers": False, "deadServerLastContactThreshold": None}}}})).autopilot
    assert off is not None and off.cleanup_dead_servers is False


@pytest.mark.parametrize(("autopilot", "fragment"), [
    ({"deadServerLastContactThreshold": "30s"}, "'30s' is below 1m, which Vault refuses"),
    ({"deadServerLastContactThreshold": "2m", "lastContactThreshold": "5m"},
     "must be longer than lastContactThreshold"),
    ({"maxTrailingLogs": 0}, "vault-platform:cluster.raft.autopilot.maxTrailingLogs: 0"),
])
def test_autopilot_settings_vault_would_refuse(autopilot, fragment):
    assert fragment in problems("prod", {"cluster": {"raft": {"autopilot": autopilot}}})


def test_rollout_defaults_and_a_pinned_image():
    rollout = load("prod").cluster.rollout
    assert rollout.enabled is True and rollout.image == "python:3.14.0-alpine3.22" and rollout.pod_timeout == "10m"
    for image in ("python", "python:latest", "python:"):
        assert "vault-platform:cluster.rollout.image" in problems("prod", {"cluster": {"rollout": {"image": image}}})
    assert load("prod", {"cluster": {"rollout": {"image": "registry.example.com/py@sha256:" + "a" * 64}}})


def test_a_roll_cannot_unseal_with_pgp_encrypted_shares():
    text = problems("dev", {"init": {"shares": 1, "threshold": 1, "pgpKeys": [fake_pgp_key()]}})
    assert "vault-platform:cluster.rollout.enabled: true cannot work with PGP-encrypted shamir key shares" in text
    assert load("dev", {"init": {"shares": 1, "threshold": 1, "pgpKeys": [fake_pgp_key()]},
                        "cluster": {"rollout": {"enabled": False}}})


def test_alert_rules_need_the_service_monitor():
    text = problems("prod", {"cluster": {"serviceMonitor": False}})
    assert "vault-platform:monitoring.prometheusRule: true needs cluster.serviceMonitor true" in text


@pytest.mark.parametrize(("s3", "fragment"), [
    ({"replication": {"enabled": True, "region": ""}}, "vault-platform:backup.s3.replication.region: is required"),
    ({"replication": {"enabled": True, "region": "eu-west-1"}}, "'eu-west-1' is aws.region"),
    ({"replication": {"enabled": True, "region": "mars-1"}}, "vault-platform:backup.s3.replication.region"),
    ({"objectLock": {"mode": "none", "days": 3}},
     "vault-platform:backup.s3.objectLock.days: has no effect: backup.s3.objectLock.mode is 'none'"),
    ({"objectLock": {"mode": "legal-hold"}}, "'legal-hold' is not allowed; use one of: none, governance, compliance"),
])
def test_backup_bucket_settings(s3, fragment):
    assert fragment in problems("prod", {"backup": {"s3": s3}})


def test_replication_only_applies_to_s3():
    assert "vault-platform:backup.s3.replication: has no effect: backup.target is 'volume'" in problems(
        "dev", {"backup": {"s3": {"replication": {"enabled": True, "region": "eu-central-1"}}}})


def test_transit_rotation_at_least_hourly_and_can_be_off():
    assert "vault-platform:transit.autoRotatePeriod: '30m' is below 1h" in problems(
        "prod", {"transit": {"autoRotatePeriod": "30m"}})
    # `autoRotatePeriod: null` in the stack file turns it off.
    config, keys = stack_config("prod")
    transit = json.loads(config["vault-platform:transit"])
    config["vault-platform:transit"] = json.dumps({**transit, "autoRotatePeriod": None})
    off = vs.build(load_config(config, set(keys))).transit
    assert off is not None and off.keys[0].auto_rotate_period_seconds == 0


def test_pki_urls_base_must_be_https():
    assert "vault-platform:pki.urlsBase: 'http://vault.example.com' is not an https:// URL" in problems(
        "prod", {"pki": {"urlsBase": "http://vault.example.com"}})
    tidy = vs.build(load("prod")).pki.tidy  # type: ignore[union-attr]
    assert tidy == vs.PkiTidy(enabled=True, interval_seconds=12 * 3600, safety_buffer_seconds=72 * 3600)
    assert vs.build(load("prod", {"pki": {"tidy": {"enabled": False}}})).pki.tidy is None  # type: ignore[union-attr]


def test_declared_connections_rotate_their_root_and_the_dev_database_does_not():
    prod = vs.build(load("prod")).database
    assert prod is not None and [c.rotate_root for c in prod.connections] == [True]
    # The dev PostgreSQL starts empty from its Secret's password whenever its pod restarts: a rotated
    # password would lock Vault out of it.
    dev = vs.build(load("dev")).database
    assert dev is not None and [c.rotate_root for c in dev.connections] == [False]


@pytest.mark.parametrize(("schedule", "hours"), [
    ("0 */6 * * *", 6), ("*/15 * * * *", 0.25), ("0 2 * * 1-5", 72), ("@daily", 24), ("@every 6h", 6),
    ("0 0 1 * *", 31 * 24), ("30 1 * * 0", 168), ("0 0 1 1 *", 365 * 24),
    # Day of month and day of week both given: either matches (the CronJob controller's rule).
    ("0 12 1 * 1", 7 * 24),
])
def test_the_longest_gap_between_two_runs(schedule, hours):
    assert cron_longest_gap_seconds(schedule) == hours * 3600
