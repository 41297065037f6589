"""Bad delivery settings (applications' delivery and secrets, the injector, the External Secrets Operator,
cert-manager) stop the program with a message naming the key, the value and what is allowed."""

from __future__ import annotations

import pytest

from components.model import ConfigError, load_config
from components.model.checks import policy_path_allows
from tests.harness import load_stack, run_stack, stack_config

MYAPP = {"name": "myapp", "namespace": "default", "serviceAccount": "myapp",
         "kv": [{"path": "secret/data/myapp/*", "access": "read"}]}
CONFIG = {"name": "config", "path": "myapp/config", "keys": {"API_KEY": "api_key"}}
# The stack files' externalSecrets section has no effect once no application delivers through the operator.
NO_OPERATOR = {"externalSecrets": None}


def problems(stack: str, overrides: dict) -> list[str]:
    config, secret_keys = stack_config(stack, {**NO_OPERATOR, **overrides})
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys))
    return err.value.problems


def only(found: list[str], key: str) -> str:
    assert len(found) == 1, found
    assert found[0].startswith(f"vault-platform:{key}: "), found
    return found[0]


def app(**changes) -> dict:
    return {**MYAPP, "secrets": [CONFIG], **changes}


def test_defaults_and_what_the_stack_files_choose():
    bare = load_stack("prod", {"applications": [MYAPP], **NO_OPERATOR}).applications[0]
    # The injector by default: the chart runs it already, and secrets stay out of Kubernetes.
    assert bare.delivery == "injector" and bare.uses_injector and not bare.uses_external_secrets
    assert (bare.create_namespace, bare.create_service_account, bare.secrets, bare.refresh_interval) == \
        (False, False, (), None)
    for stack in ("dev", "prod"):
        (myapp,) = load_stack(stack).applications
        assert myapp.delivery == "both" and myapp.create_service_account is True
        assert myapp.secrets[0].keys == {"DATABASE_URL": "database_url", "API_KEY": "api_key"}
    prod, dev = load_stack("prod"), load_stack("dev")
    assert (prod.cluster.injector.replicas, prod.cluster.injector.failure_policy) == (2, "Fail")
    assert (dev.cluster.injector.replicas, dev.cluster.injector.failure_policy) == (1, "Ignore")
    assert prod.cert_manager.enabled and prod.cert_manager.pki_role == "internal-certs"
    assert not dev.cert_manager.enabled
    assert prod.external_secrets.chart.version == "2.9.0" and prod.external_secrets.install is True
    assert prod.external_secrets.cluster_wide_token_requests is False


def test_injector_defaults_per_environment_when_not_set():
    unset = {"cluster": {"injector": {"replicas": None, "failurePolicy": None}}}
    assert load_stack("prod", unset).cluster.injector.replicas == 2
    assert load_stack("prod", unset).cluster.injector.failure_policy == "Fail"
    assert load_stack("dev", unset).cluster.injector.failure_policy == "Ignore"


@pytest.mark.parametrize(("injector", "key", "needle"), [
    ({"replicas": 1}, "cluster.injector.replicas", "1 is too few for prod"),
    ({"failurePolicy": "Ignore"}, "cluster.injector.failurePolicy", "'Ignore' is dev only"),
])
def test_prod_injector_must_stay_available_and_refuse_unserved_pods(injector, key, needle):
    assert needle in only(problems("prod", {"cluster": {"injector": injector}}), key)
    load_stack("dev", {"cluster": {"injector": injector}})


def test_the_webhook_certificate_cannot_outlive_its_ca():
    message = only(problems("dev", {"cluster": {"injector": {"certificateValidity": "100000h"}}}),
                   "cluster.injector.certificateValidity")
    assert "'100000h' outlives its CA (tls.caValidity '87600h')" in message


def test_the_operator_chart_version_is_the_one_the_facts_describe():
    import re

    from components.model.platform import ExternalSecretsChart
    from tests import facts
    from tests.harness import ROOT

    pinned = re.search(r"^ESO_CHART_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert ExternalSecretsChart().version == pinned == load_stack("prod").external_secrets.chart.version
    assert facts.chart("external-secrets", pinned)["version"] == pinned


def test_unknown_delivery_is_refused_with_the_choices():
    message = only(problems("prod", {"applications": [app(delivery="vault-agent")]}), "applications[0].delivery")
    assert "'vault-agent' is not allowed; use one of: injector, externalSecrets, both, none" in message


def test_the_injector_must_run_for_applications_that_use_it():
    off = {"enabled": False, "replicas": None, "failurePolicy": None}
    message = only(problems("dev", {"applications": [app()], "cluster": {"injector": off}}), "applications[0].delivery")
    assert "cluster.injector.enabled is false" in message


@pytest.mark.parametrize(("secret", "key", "needle"), [
    ({**CONFIG, "path": "/myapp/config"}, "applications[0].secrets[0].path", "is not a KV secret path"),
    ({**CONFIG, "path": "myapp/*"}, "applications[0].secrets[0].path", "no wildcards"),
    ({**CONFIG, "keys": {"API-KEY": "api_key"}}, "applications[0].secrets[0].keys.API-KEY",
     "is not an environment variable name"),
    ({**CONFIG, "keys": {"API_KEY": "api-key"}}, "applications[0].secrets[0].keys.API_KEY",
     "is not a KV property name"),
    ({**CONFIG, "name": "Config"}, "applications[0].secrets[0].name", "is not a DNS label"),
    ({**CONFIG, "keys": {}}, "applications[0].secrets[0].keys", "is empty"),
])
def test_malformed_secrets_name_the_key(secret, key, needle):
    assert needle in only(problems("prod", {"applications": [app(secrets=[secret])]}), key)


def test_a_secret_the_application_may_not_read_is_refused():
    message = only(problems("prod", {"applications": [app(secrets=[{**CONFIG, "path": "billing/config"}])]}),
                   "applications[0].secrets[0].path")
    assert "may not read secret/data/billing/config" in message and "default/myapp/" in message
    # Its own folder needs no grant (unless it gave it up); a list grant does not allow reading.
    load_stack("prod", {"applications": [app(kv=[], secrets=[{**CONFIG, "path": "default/myapp/config"}])],
                        **NO_OPERATOR})
    assert only(problems("prod", {"applications": [app(kv=[], ownFolder="none", secrets=[
        {**CONFIG, "path": "default/myapp/config"}])]}), "applications[0].secrets[0].path")
    assert only(problems("prod", {"applications": [app(kv=[{"path": "secret/data/myapp/*", "access": "list"}])]}),
                "applications[0].secrets[0].path")


def test_a_path_that_repeats_the_mount_is_refused():
    message = only(problems("prod", {"applications": [app(kv=[{"path": "secret/data/secret/*", "access": "read"}],
                                                          secrets=[{**CONFIG, "path": "secret/x"}])]}),
                   "applications[0].secrets[0].path")
    assert "starts with the KV mount 'secret'" in message


def test_repeated_names_and_variables_and_the_database_file():
    found = problems("prod", {"applications": [app(databaseRole="myapp-db", secrets=[
        CONFIG, {**CONFIG, "path": "myapp/other"}, {**CONFIG, "name": "db", "keys": {"X": "x"}}])]})
    assert any("applications[0].secrets: name 'config' appears more than once" in p for p in found)
    assert any("applications[0].secrets: variable 'API_KEY' appears in more than one secret" in p for p in found)
    assert any("applications[0].secrets[2].name: 'db' is the file of its database credentials" in p for p in found)


@pytest.mark.parametrize(("changes", "key", "needle"), [
    ({"delivery": "externalSecrets", "secrets": []}, "applications[0].secrets", "nothing to copy"),
    ({"delivery": "none"}, "applications[0].secrets", "has no effect: its delivery is 'none'"),
    ({"refreshInterval": "5m"}, "applications[0].refreshInterval", "has no effect: its delivery is 'injector'"),
    ({"createNamespace": True}, "applications[0].createNamespace", "'default', which always exists"),
    ({"namespace": "vault", "createNamespace": True, "delivery": "none", "secrets": []},
     "applications[0].createNamespace",
     "'vault', which always exists or belongs to the platform"),
    ({"namespace": "cert-manager", "createNamespace": True, "delivery": "none", "secrets": []},
     "applications[0].createNamespace",
     "'cert-manager', which always exists or belongs to the platform"),
    ({"namespace": "external-secrets", "createNamespace": True, "delivery": "externalSecrets",
      "kv": [{"path": "secret/data/myapp/*", "access": "read"}]}, "applications[0].createNamespace",
     "'external-secrets', which always exists or belongs to the platform"),
    ({"refreshInterval": "soon", "delivery": "both"}, "applications[0].refreshInterval", "is not a positive duration"),
])
def test_application_delivery_rules(changes, key, needle):
    assert needle in only(problems("prod", {"applications": [app(**changes)]}), key)


def test_an_application_cannot_take_the_stores_service_account_or_an_operators_role():
    found = problems("prod", {"applications": [
        app(delivery="both"),
        {"name": "other", "namespace": "default", "serviceAccount": "vault-kv"},
        {"name": "external-secrets-default", "namespace": "x", "serviceAccount": "y"},
        {"name": "cert-manager-vault-pki", "namespace": "x", "serviceAccount": "z"}]})
    assert len(found) == 3, found
    assert "applications[1].serviceAccount: 'vault-kv' is the service account of the namespace's External Secrets" \
        in found[0]
    assert "applications[2].name: 'external-secrets-default' is the name of a role the platform makes" in found[1]
    assert "applications[3].name: 'cert-manager-vault-pki'" in found[2]


def test_policies_cannot_take_the_operators_names():
    found = problems("prod", {"policies": [{"name": "external-secrets-default", "rules": [
        {"path": "x", "capabilities": ["read"]}]}, {"name": "cert-manager-vault-pki", "rules": [
            {"path": "x", "capabilities": ["read"]}]}]})
    assert found == ["vault-platform:policies: policy name 'external-secrets-default' is reserved by the platform; "
                     "choose another",
                     "vault-platform:policies: policy name 'cert-manager-vault-pki' is reserved by the platform; "
                     "choose another"]


@pytest.mark.parametrize(("cert_manager", "overrides", "key", "needle"), [
    ({"pkiRole": ""}, {}, "certManager.pkiRole", "is required when certManager.enabled is true; one of: "
                                                 "internal-certs"),
    ({"pkiRole": "nope"}, {}, "certManager.pkiRole", "'nope' is not a role in pki.roles"),
    ({}, {"pki": {"enabled": False, "roles": None, "intermediate": None}}, "certManager.enabled",
     "needs the PKI engine"),
    ({"issuerName": "Vault PKI"}, {}, "certManager.issuerName", "is not a DNS label"),
])
def test_cert_manager_rules(cert_manager, overrides, key, needle):
    overrides = {"certManager": cert_manager, **overrides}
    if "pki" in overrides:
        overrides["applications"] = [{**MYAPP}]
    assert needle in only(problems("prod", overrides), key)


def test_external_secrets_settings_are_checked():
    assert "is not a DNS label" in only(problems("prod", {"externalSecrets": {"namespace": "External"}}),
                                        "externalSecrets.namespace")
    assert "unknown setting" in only(problems("prod", {"externalSecrets": {"instal": False}}),
                                     "externalSecrets.instal")


def test_errors_stop_the_program_before_any_resource():
    rec = run_stack("prod", {"applications": [app(secrets=[{**CONFIG, "path": "billing/config"}])]},
                    expect_error=True)
    assert "applications[0].secrets[0].path" in (rec.error or "")
    assert [r for r in rec.resources if r.custom] == []


@pytest.mark.parametrize(("pattern", "path", "allowed"), [
    ("secret/data/myapp/*", "secret/data/myapp/config", True),
    ("secret/data/myapp/*", "secret/data/myapp", False),
    ("secret/data/myapp*", "secret/data/myapp2/x", True),
    ("secret/data/+/config", "secret/data/a/config", True),
    ("secret/data/+/config", "secret/data/a/b/config", False),
    ("secret/data/+/*", "secret/data/a/b/c", True),
    ("secret/data/x", "secret/data/x", True),
    ("secret/data/x", "secret/data/xy", False),
    ("secret/metadata/myapp/*", "secret/data/myapp/config", False),
])
def test_policy_paths_match_as_vault_matches_them(pattern, path, allowed):
    assert policy_path_allows(pattern, path) is allowed
