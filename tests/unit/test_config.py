"""Every config rule: bad input stops the program with one message naming the key, the value and
what is allowed."""

from __future__ import annotations

import json
import sys

import pulumi
import pytest
from pydantic import ValidationError

from components.model import TOP_LEVEL_KEYS, ConfigError, PlatformConfig, load_config
from components.model.checks import cron, duration, duration_seconds, quantity
from tests.harness import run_stack, stack_config
from tests.harness.fakes import fake_pgp_key


def load(stack: str = "dev", overrides: dict | None = None, secrets: dict | None = None, **kw):
    return load_config(*_raw(stack, overrides, secrets, **kw))


def _raw(stack, overrides=None, secrets=None, **kw):
    config, secret_keys = stack_config(stack, overrides, secrets, **kw)
    return config, set(secret_keys)


def problems(stack: str = "dev", overrides: dict | None = None, secrets: dict | None = None, **kw) -> str:
    with pytest.raises(ConfigError) as err:
        load(stack, overrides, secrets, **kw)
    return str(err.value)


def test_both_stack_files_are_valid():
    dev, prod = load("dev"), load("prod")
    assert dev.environment == "dev" and prod.environment == "prod"
    assert dev.cluster.replicas == 3 and prod.cluster.replicas == 5
    assert prod.unseal.type == "awskms" and dev.unseal.type == "shamir"


def test_the_program_raises_config_errors_as_run_errors_so_users_see_no_traceback():
    from components.resources.stack_config import StackConfigError

    # The model stays free of Pulumi; the program's edge turns its error into a RunError.
    assert not issubclass(ConfigError, pulumi.RunError)
    assert issubclass(StackConfigError, pulumi.RunError) and issubclass(StackConfigError, ConfigError)
    rec = run_stack("dev", {"clustr": {}}, expect_error=True)
    assert "invalid stack configuration (1 problem(s))" in rec.error and "vault-platform:clustr" in rec.error
    assert "Traceback" not in rec.error


def test_defaults_per_environment():
    prod = load("prod", {"cluster": {"replicas": None, "zoneSpread": None}})
    dev = load("dev", {"cluster": {"replicas": None, "zoneSpread": None}})
    assert prod.cluster.replicas == 5 and prod.cluster.zone_spread is True
    assert dev.cluster.replicas == 3 and dev.cluster.zone_spread is False
    assert prod.cluster.chart.version == "0.34.1" and prod.cluster.image.tag == "2.0.4"
    assert prod.backup.schedule == "0 */6 * * *"


def test_config_is_frozen():
    c = load("dev")
    with pytest.raises(ValidationError, match="frozen"):
        c.cluster.replicas = 7  # type: ignore[misc]


@pytest.mark.parametrize(("overrides", "key", "fragment"), [
    ({"cluster": {"replicas": "three"}}, "vault-platform:cluster.replicas", "is not an integer"),
    ({"cluster": {"ui": "yes"}}, "vault-platform:cluster.ui", "is not a boolean"),
    ({"cluster": {"resources": {"limits": {"memory": 512}}}}, "vault-platform:cluster.resources.limits.memory",
     "is not a string"),
    ({"applications": {"name": "x"}}, "vault-platform:applications", "expected a list"),
    ({"kv": ["secret"]}, "vault-platform:kv", "expected a map"),
])
def test_wrong_types(overrides, key, fragment):
    message = problems("dev", overrides)
    assert key in message and fragment in message


def test_unknown_top_level_key_suggests_the_right_one():
    message = problems("dev", {"clustr": {"replicas": 3}})
    assert "vault-platform:clustr: unknown setting (did you mean 'cluster'?)" in message


def test_unknown_nested_key_is_an_error_not_a_silent_default():
    message = problems("dev", {"cluster": {"replica": 5}})
    assert "vault-platform:cluster.replica: unknown setting (did you mean 'replicas'?)" in message


def test_unknown_key_inside_a_list_item():
    message = problems("dev", {"applications": [{"name": "a", "namespace": "ns", "serviceAccount": "sa",
                                                 "tokenTTL": "1h"}]})
    assert "vault-platform:applications[0].tokenTTL: unknown setting (did you mean 'tokenTtl'?)" in message


@pytest.mark.parametrize("replicas", [0, 2, 4, -1])
def test_even_zero_or_negative_replicas(replicas):
    message = problems("dev", {"cluster": {"replicas": replicas}})
    assert f"vault-platform:cluster.replicas: {replicas} is not allowed; use an odd number" in message


def test_prod_needs_at_least_three_replicas():
    message = problems("prod", {"cluster": {"replicas": 1}})
    assert "vault-platform:cluster.replicas: 1 is too few for prod" in message


def test_too_many_replicas():
    assert "is too many" in problems("dev", {"cluster": {"replicas": 11}})


def test_unknown_unseal_type():
    message = problems("dev", {"unseal": {"type": "gcpckms"}})
    assert "vault-platform:unseal.type: 'gcpckms' is not allowed; use one of: awskms, transit, shamir" in message


@pytest.mark.parametrize(("overrides", "key"), [
    ({"tls": {"validity": "1 year"}}, "vault-platform:tls.validity"),
    ({"init": {"timeout": "10"}}, "vault-platform:init.timeout"),
    ({"kubernetesAuth": {"tokenTtl": "0h"}}, "vault-platform:kubernetesAuth.tokenTtl"),
])
def test_malformed_durations(overrides, key):
    message = problems("dev", overrides)
    assert key in message and "is not a positive duration" in message


@pytest.mark.parametrize("size", ["10GB", "ten", "-1Gi", "1.5.2Gi"])
def test_malformed_sizes(size):
    message = problems("dev", {"cluster": {"dataStorage": {"size": size}}})
    assert f"vault-platform:cluster.dataStorage.size: {size!r} is not a Kubernetes quantity" in message


def test_storage_size_too_small():
    assert "vault-platform:cluster.auditStorage.size: '10' is too small" in problems(
        "dev", {"cluster": {"auditStorage": {"size": "10"}}})


@pytest.mark.parametrize("schedule", ["every 6 hours", "61 * * * *", "* * * *", "0 */0 * * *", "0 0 * 13 *",
                                      "0 5-2 * * *"])
def test_malformed_cron_schedules(schedule):
    message = problems("dev", {"backup": {"schedule": schedule}})
    assert f"vault-platform:backup.schedule: {schedule!r} is not a cron schedule" in message


@pytest.mark.parametrize("schedule", ["0 */6 * * *", "@daily", "15 2 * * mon-fri", "0,30 1-5 1 jan *"])
def test_valid_cron_schedules(schedule):
    assert cron(schedule) is None


@pytest.mark.parametrize(("overrides", "key", "value"), [
    ({"kubernetes": {"namespace": "Vault_NS"}}, "vault-platform:kubernetes.namespace", "Vault_NS"),
    ({"cluster": {"releaseName": "vault."}}, "vault-platform:cluster.releaseName", "vault."),
    ({"cluster": {"releaseName": "-vault"}}, "vault-platform:cluster.releaseName", "-vault"),
])
def test_names_that_are_not_dns_labels(overrides, key, value):
    message = problems("dev", overrides)
    assert f"{key}: {value!r} is not a DNS label" in message


@pytest.mark.parametrize(("overrides", "key"), [
    ({"unseal": {"type": "shamir"}}, "vault-platform:unseal.type"),
    ({"database": {"devPostgres": True}}, "vault-platform:database.devPostgres"),
    ({"backup": {"target": "volume"}}, "vault-platform:backup.target"),
    ({"api": {"serviceType": "NodePort", "nodePort": 30820}}, "vault-platform:api.serviceType"),
    ({"cluster": {"logLevel": "trace"}}, "vault-platform:cluster.logLevel"),
])
def test_prod_refuses_dev_only_settings(overrides, key):
    message = problems("prod", overrides)
    assert key in message and "dev only" in message


def test_dev_allows_dev_only_settings():
    c = load("dev", {"cluster": {"logLevel": "trace"}})
    assert c.unseal.type == "shamir" and c.database.dev_postgres and c.backup.target == "volume"


def test_secrets_in_plain_text_are_refused():
    config, secret_keys = _raw("prod")
    secret_keys.discard("vault-platform:secrets")
    with pytest.raises(ConfigError) as err:
        load_config(config, secret_keys)
    assert "vault-platform:secrets: holds secrets but is stored in plain text" in str(err.value)


def test_secret_values_never_show_in_messages():
    config, secret_keys = _raw("prod", {"secrets": None}, with_test_secrets=False)
    config["vault-platform:secrets"] = json.dumps({"vaultToken": "s.VERYSECRET", "bogus": "s.VERYSECRET"})
    with pytest.raises(ConfigError) as err:
        load_config(config, secret_keys | {"vault-platform:secrets"})
    assert "VERYSECRET" not in str(err.value)
    assert "vault-platform:secrets.bogus: unknown setting" in str(err.value)
    assert repr(load("prod").secrets.database_passwords["app-postgres"]) == "Secret(***)"


@pytest.mark.parametrize("key", ["environment", "api", "unseal"])
def test_required_keys(key):
    config, secret_keys = _raw("dev")
    del config[f"vault-platform:{key}"]
    with pytest.raises(ConfigError) as err:
        load_config(config, secret_keys)
    assert f"vault-platform:{key}: is required" in str(err.value)


def test_environment_must_be_dev_or_prod():
    assert "vault-platform:environment: 'staging' is not allowed; use one of: dev, prod" in problems(
        "dev", {"environment": "staging"})


def test_transit_unseal_needs_its_settings_and_token():
    message = problems("prod", {"unseal": {"type": "transit"}})
    assert "vault-platform:unseal.transit: is required when unseal.type is transit" in message
    assert "vault-platform:secrets.transitUnsealToken: is required" in message


def test_transit_unseal_with_missing_key_name():
    message = problems("prod", {"unseal": {"type": "transit", "transit": {"address": "https://vault.example:8200"}}},
                       secrets={"transitUnsealToken": "CANARY-t"})
    assert "vault-platform:unseal.transit.keyName: is required" in message


def test_transit_unseal_address_must_be_https():
    message = problems("prod", {"unseal": {"type": "transit", "transit": {"address": "http://vault:8200",
                                                                          "keyName": "unseal"}}},
                       secrets={"transitUnsealToken": "CANARY-t"})
    assert "vault-platform:unseal.transit.address: 'http://vault:8200' is not an https:// URL" in message


def test_awskms_needs_aws_settings():
    assert "vault-platform:aws: is required for unseal.type awskms" in problems("prod", {"aws": None})


def test_aws_settings_are_checked():
    message = problems("prod", {"aws": {"region": "europe", "oidcIssuer": "https://oidc.example/id/1"}})
    assert "vault-platform:aws.region: 'europe' is not an AWS region" in message
    assert "vault-platform:aws.oidcIssuer" in message


def test_init_threshold_and_pgp_keys():
    assert "vault-platform:init.threshold: 4 is more than init.shares 3" in problems(
        "prod", {"init": {"shares": 3, "threshold": 4}})
    assert "vault-platform:init.pgpKeys: has 1 keys but init.shares is 5" in problems(
        "prod", {"init": {"pgpKeys": [fake_pgp_key()]}})
    # Vault's own rule, in every environment: one share unseals alone only when it is the only one.
    for stack in ("dev", "prod"):
        assert "vault-platform:init.threshold: 1 with 3 shares is refused by Vault" in problems(
            stack, {"init": {"shares": 3, "threshold": 1}})


def test_node_port_rules():
    assert "vault-platform:api.nodePort: is required when api.serviceType is NodePort" in problems(
        "dev", {"api": {"nodePort": None}})
    assert "vault-platform:api.nodePort: 80 is out of range; allowed: 30000 to 32767" in problems(
        "dev", {"api": {"nodePort": 80}})


def test_existing_tls_secret_needs_name_and_ca():
    message = problems("dev", {"tls": {"source": "existingSecret"}})
    assert "vault-platform:tls.existingSecret: is required" in message
    assert "vault-platform:tls.existingCaCert: is required" in message


def test_certificate_cannot_outlive_its_ca():
    assert "vault-platform:tls.validity: '876000h' outlives tls.caValidity" in problems(
        "dev", {"tls": {"validity": "876000h"}})


def test_every_problem_is_reported_at_once():
    message = problems("dev", {"clustr": {"replicas": 3}, "kv": {"maxVersions": "ten"}, "backup": {"schedule": "x"}})
    assert message.count("\n  - ") == 3


def test_top_level_keys_are_all_declared_in_pulumi_yaml():
    import yaml

    from tests.harness import ROOT

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    declared = set(project["config"])
    assert declared == set(TOP_LEVEL_KEYS)
    for key, spec in project["config"].items():
        assert spec.get("description"), f"Pulumi.yaml config {key} has no description"
    # The block is generated from the model, not a third hand-kept copy of its descriptions.
    sys.path.insert(0, str(ROOT / "scripts"))
    import stack_schema

    text = (ROOT / "Pulumi.yaml").read_text()
    assert stack_schema.render_project(text) == text, "run `python scripts/stack_schema.py --write`"
    assert project["config"]["environment"]["description"] == PlatformConfig.model_fields["environment"].description


def test_value_helpers():
    assert duration_seconds("1h30m") == 5400 and duration_seconds("7d") == 7 * 86400
    assert duration("1y") is not None and quantity("512Mi") is None


def test_bad_config_stops_before_any_resource_is_registered():
    rec = run_stack("prod", {"cluster": {"replicas": 4}}, expect_error=True)
    assert "vault-platform:cluster.replicas: 4 is not allowed" in rec.error
    assert [r.type for r in rec.resources if r.type != "pulumi:pulumi:Stack"] == []


# --- cron, as the Kubernetes API server checks it ------------------------------------------------------

@pytest.mark.parametrize("schedule", ["0 0 * * 7", "0 0 * * 0-7", "0 0 31 2 8", "0 0 * * * *", "TZ=UTC 0 0 * * *",
                                      "CRON_TZ=Europe/Paris 0 * * * *", "@every", "@every 0s", "@every 1d",
                                      "@reboot", "0 0 ? * mon-fry"])
def test_cron_refuses_what_the_api_server_refuses(schedule):
    assert cron(schedule) is not None


@pytest.mark.parametrize("schedule", ["@every 1h", "@every 90m", "@every 1h30m", "@hourly", "@annually",
                                      "0 0 * * 6", "0 0 * * sun", "0 0 ? * MON-FRI", "*/15 * * * *", "5/10 * * * *",
                                      "0 0 1,15 * *", "0 0 * jan-mar,dec *"])
def test_cron_accepts_what_the_api_server_accepts(schedule):
    assert cron(schedule) is None


# --- a partly given map keeps the defaults it leaves out --------------------------------------------------

def _leaves(model, prefix=()):
    from pydantic import BaseModel

    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        path = (*prefix, field.alias or name)
        if isinstance(value, BaseModel):
            yield from _leaves(value, path)
        else:
            yield path, value


def _nest(path, value):
    for key in reversed(path):
        value = {key: value}
    return value


MINIMAL = {"environment": "dev", "api": {"address": "https://127.0.0.1:8200"}, "unseal": {"type": "shamir"},
           "aws": {"region": "eu-west-1", "oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/x",
                   "oidcIssuer": "oidc.eks.eu-west-1.amazonaws.com/id/X",
                   "keyAdministrators": ["arn:aws:iam::123456789012:role/deployer"],
                   "keyPolicyAdministrators": ["arn:aws:iam::123456789012:role/break-glass"]}}
SECTIONS = ("cluster", "tls", "init", "kv", "pki", "kubernetesAuth", "audit", "backup", "kubernetes", "database",
            "transit", "api", "unseal")


def minimal(**sections):
    """Only the required settings (and AWS, for the default S3 backups), plus ``sections``."""
    values = {**MINIMAL, **sections}
    return load_config({f"vault-platform:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})


def _get(model, path):
    for part in path:
        model = getattr(model, next(n for n, f in type(model).model_fields.items() if (f.alias or n) == part))
    return model


def _section_defaults():
    """Every leaf of every section, with the value the program fills in when nothing is set."""
    base = minimal()
    for key in SECTIONS:
        for path, value in _leaves(_get(base, (key,))):
            yield (key, *path), value


def test_setting_one_nested_key_keeps_every_sibling_default():
    # Each leaf, given alone (a partial map) with the value it already had, must leave the whole
    # config unchanged: a partial map that lost its parent's defaults would change its siblings.
    base = minimal()
    checked = 0
    # Sections that are off in this config: a key set there is refused as having no effect.
    inactive = (("transit",), ("pki", "intermediate"), ("backup", "volume"), ("tls", "existingSecret"),
                ("tls", "existingCaCert"), ("init", "acceptPlaintextShares"), ("backup", "s3", "replication"),
                ("database", "devPostgresImage"))
    for path, value in _section_defaults():
        if value is None or path[0] in ("api", "unseal") or path[1:] in (("replicas",), ("zoneSpread",)):
            continue
        if any(path[:len(prefix)] == prefix and path != (*prefix, "enabled") for prefix in inactive):
            continue
        plain = list(value) if isinstance(value, tuple) else value
        given = _nest(path[1:], plain)
        assert minimal(**{path[0]: given}) == base, ".".join(path)
        checked += 1
    assert checked > 60


def test_the_injector_keeps_its_own_defaults_when_one_is_set():
    c = load("dev", {"cluster": {"injector": {"resources": {"requests": {"memory": "96Mi"}}},
                                 "resources": {"limits": {"memory": "1Gi"}}}})
    assert c.cluster.injector.resources.requests.memory == "96Mi"
    assert c.cluster.injector.resources.requests.cpu == "50m"
    assert c.cluster.injector.resources.limits.memory == "128Mi" and c.cluster.injector.resources.limits.cpu == "100m"
    assert c.cluster.resources.limits.memory == "1Gi" and c.cluster.resources.limits.cpu == "250m"  # dev's own


def test_server_limits_default_to_512mi_and_500m_when_only_one_is_set():
    c = load("prod", {"cluster": {"resources": {"limits": {"memory": "1Gi"}}}})
    assert c.cluster.resources.limits.cpu == "500m"
    assert c.cluster.resources.requests.memory == "256Mi" and c.cluster.resources.requests.cpu == "250m"


def test_the_config_reference_shows_the_defaults_the_program_uses():
    import re

    from tests.harness import ROOT

    readme = (ROOT / "docs" / "config-reference.md").read_text()
    shown = dict(re.findall(r"^\| `([^`]+)` \| [^|]+ \| `([^`]*)` \|", readme, re.M))
    compared = 0
    for path, value in _section_defaults():
        key = ".".join(path)
        if key not in shown or value is None or isinstance(value, (tuple, dict)):
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        assert shown[key] == (text or '""'), key
        compared += 1
    assert compared > 60


# --- the published JSON Schema --------------------------------------------------------------------

def _schema():
    from tests.harness import ROOT

    return json.loads((ROOT / "schema" / "stack-config.schema.json").read_text())


def test_stack_files_point_at_the_published_schema_and_pass_it():
    import jsonschema
    import yaml

    from tests.harness import ROOT

    for stack in ("dev", "prod"):
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        assert text.splitlines()[0] == "# yaml-language-server: $schema=./schema/stack-config.schema.json"
        jsonschema.Draft202012Validator(_schema()).validate(yaml.safe_load(text))


def test_the_published_schema_is_generated_from_the_model():
    import subprocess
    import sys

    from tests.harness import ROOT

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "stack_schema.py")], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert json.loads(out) == _schema(), "run `python scripts/stack_schema.py --write`"


@pytest.mark.parametrize(("config", "needle"), [
    ({"vault-platform:clustr": {}}, "does not match any of the regexes"),
    ({"vault-platform:cluster": {"replica": 3}}, "Additional properties are not allowed"),
    ({"vault-platform:cluster": {"replicas": "3"}}, "is not valid"),
    ({"vault-platform:unseal": {"type": "gcpckms"}}, "is not one of"),
    ({"vault-platform:secrets": {"vaultToken": "hvs.plain"}}, "is not valid"),
])
def test_the_schema_catches_mistakes_in_an_editor(config, needle):
    import jsonschema

    base = {"vault-platform:environment": "dev", "vault-platform:api": {"address": "https://127.0.0.1:8200"},
            "vault-platform:unseal": {"type": "shamir"}, "aws:region": "eu-west-1"}
    errors = list(jsonschema.Draft202012Validator(_schema()).iter_errors({"config": {**base, **config}}))
    assert any(needle in e.message for e in errors), [e.message for e in errors]
    ok = {"config": {**base, "vault-platform:secrets": {"vaultToken": {"secure": "v1:abc"}}}}
    assert list(jsonschema.Draft202012Validator(_schema()).iter_errors(ok)) == []


@pytest.mark.parametrize(("seal", "mode"), [("shamir", "shamir"), ("awskms", "auto"), ("transit", "auto")])
def test_the_unseal_mode_is_decided_once_by_the_model(seal, mode):
    from components.model import UnsealConfig

    assert UnsealConfig(type=seal).mode == mode
