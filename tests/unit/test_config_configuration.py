"""Bad Vault-configuration input stops the program with a message naming the key, the value and the fix."""

from __future__ import annotations

import pytest

from components.model import ConfigError, load_config
from tests.harness import run_stack, stack_config

MYAPP = {"name": "myapp", "namespace": "default", "serviceAccount": "myapp"}
PG_URL = "postgresql://{{username}}:{{password}}@db.example.com:5432/app?sslmode=verify-full"
DB_CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
# The stack files' externalSecrets section has no effect once no application delivers through the operator.
NO_OPERATOR = {"externalSecrets": None}


def problems(stack: str, overrides: dict, secrets: dict | None = None) -> list[str]:
    config, secret_keys = stack_config(stack, overrides, secrets)
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys))
    return err.value.problems


def only(found: list[str], key: str) -> str:
    """The single problem reported for ``key`` (and no other problem at all)."""
    assert len(found) == 1, found
    assert found[0].startswith(f"vault-platform:{key}: "), found
    return found[0]


def test_unknown_capability_names_the_rule():
    message = only(problems("prod", {"policies": [{"name": "ops", "rules": [
        {"path": "sys/metrics", "capabilities": ["read"]},
        {"path": "secret/data/ops/*", "capabilities": ["read", "wrte"]}]}]}),
        "policies[0].rules[1].capabilities")
    assert "has unknown capabilities ['wrte']" in message and "create, read, update" in message


@pytest.mark.parametrize("path", ["/secret/data/x", "secret//data", "secret/*/x", "secret/data x", ""])
def test_invalid_policy_path_names_the_rule(path):
    message = only(problems("dev", {"policies": [{"name": "ops", "rules": [
        {"path": path, "capabilities": ["read"]}]}]}), "policies[0].rules[0].path")
    assert repr(path) in message and "is not a valid Vault path" in message


def test_invalid_application_kv_path_names_the_grant():
    message = only(problems("dev", {"applications": [{**MYAPP, "kv": [
        {"path": "secret/data/myapp/*", "access": "read"},
        {"path": "secret/*/myapp", "access": "read"}]}]}), "applications[0].kv[1].path")
    assert "'*' only at the end" in message


def test_unknown_kv_access_names_the_grant():
    message = only(problems("dev", {"applications": [{**MYAPP, "kv": [
        {"path": "secret/data/myapp/*", "access": "admin"}]}]}), "applications[0].kv[0].access")
    assert "'admin'" in message and "read, list, write" in message


@pytest.mark.parametrize("namespace", ["Team_A", "team.a", "-team", "a" * 64])
def test_application_namespace_must_be_a_dns_label(namespace):
    message = only(problems("prod", {"applications": [MYAPP, {**MYAPP, "name": "other", "namespace": namespace}]}),
                   "applications[1].namespace")
    assert repr(namespace) in message and "is not a DNS label" in message


def test_service_account_must_be_one_name_not_a_wildcard():
    message = only(problems("prod", {"applications": [{**MYAPP, "serviceAccount": "*"}]}),
                   "applications[0].serviceAccount")
    assert "must name one service account" in message


def test_duplicate_application_names():
    message = only(problems("prod", {"applications": [MYAPP, {**MYAPP, "namespace": "other"}], **NO_OPERATOR}),
                   "applications[1].name")
    assert "'myapp' is already the name of applications[0]; application names must be unique" in message


def test_application_token_ttl_falls_back_to_the_kubernetes_auth_default():
    from components.render import vault_objects as vs
    from tests.harness import load_stack

    app = {k: v for k, v in MYAPP.items() if k != "tokenTtl"}
    config = load_stack("prod", {"applications": [app], "kubernetesAuth": {"tokenTtl": "20m"}, **NO_OPERATOR})
    (role,) = vs.build(config).kubernetes_roles
    assert role.token_ttl_seconds == 1200


def test_one_service_account_cannot_be_two_applications():
    message = only(problems("prod", {"applications": [MYAPP, {**MYAPP, "name": "other"}], **NO_OPERATOR}),
                   "applications")
    assert "service account default/myapp is bound to more than one application" in message


def test_database_role_naming_an_undefined_connection():
    message = only(problems("prod", {"database": {"roles": [{"name": "myapp-db", "connection": "app-pg"}]}}),
                   "database.roles[0].connection")
    assert "'app-pg' is not a defined connection; defined: app-postgres" in message


def test_dev_postgres_counts_as_a_defined_connection_only_when_enabled():
    only(problems("dev", {"database": {"devPostgres": False}}), "database.roles[0].connection")


@pytest.mark.parametrize(("section", "role", "key", "text"), [
    ("database", {"name": "myapp-db", "connection": "app-postgres", "defaultTtl": "2h", "maxTtl": "90m"},
     "database.roles[0].maxTtl", "'90m' is below defaultTtl '2h'"),
    ("pki", {"name": "internal-certs", "allowedDomains": ["internal"], "ttl": "48h", "maxTtl": "24h"},
     "pki.roles[0].maxTtl", "'24h' is below ttl '48h'"),
])
def test_max_ttl_below_default(section, role, key, text):
    assert text in only(problems("prod", {section: {"roles": [role]}}), key)


def test_application_database_role_must_exist():
    message = only(problems("prod", {"applications": [{**MYAPP, "databaseRole": "nope"}], **NO_OPERATOR}),
                   "applications[0].databaseRole")
    assert "'nope' is not a role in database.roles" in message


def test_connection_needs_its_password_as_a_secret():
    found = problems("prod", {"database": {"connections": [
        {"name": "app-postgres", "connectionUrl": PG_URL, "username": "u", "allowedRoles": ["myapp-db"],
         "tlsCa": DB_CA},
        {"name": "reports", "connectionUrl": PG_URL, "username": "u", "tlsCa": DB_CA}]}})
    message = only(found, "secrets.databasePasswords.reports")
    assert "pulumi config set --secret --path 'secrets.databasePasswords.reports'" in message


def test_connection_url_must_be_a_postgres_template():
    message = only(problems("prod", {"database": {"connections": [
        {"name": "app-postgres", "connectionUrl": "postgresql://vault:pw@db:5432/app", "username": "vault",
         "allowedRoles": ["myapp-db"]}]}}), "database.connections[0].connectionUrl")
    assert "{{username}} and {{password}}" in message


def test_platform_policy_names_are_reserved():
    message = only(problems("prod", {"policies": [{"name": "app-templated", "rules": [
        {"path": "secret/data/x", "capabilities": ["read"]}]}]}), "policies")
    assert "'app-templated' is reserved by the platform" in message


def test_the_program_stops_with_the_message_before_creating_anything():
    rec = run_stack("prod", {"applications": [MYAPP, {**MYAPP, "name": "b", "namespace": "Bad_NS"}]},
                    expect_error=True)
    assert "vault-platform:applications[1].namespace: 'Bad_NS' is not a DNS label" in (rec.error or "")
    assert not [r for r in rec.resources if r.type.startswith("vault:")]


@pytest.mark.parametrize(("url", "ca", "key", "needle"), [
    ("postgresql://{{username}}:{{password}}@db:5432/app?sslmode=require", DB_CA, "connectionUrl",
     "sslmode=require, which does not check the server's certificate"),
    ("postgresql://{{username}}:{{password}}@db:5432/app", DB_CA, "connectionUrl", "sslmode=(none: prefer)"),
    ("postgresql://{{username}}:{{password}}@db:5432/app?sslmode=verify-full", "", "tlsCa", "is required with"),
])
def test_prod_database_connections_verify_the_server(url, ca, key, needle):
    found = problems("prod", {"database": {"connections": [
        {"name": "app-postgres", "connectionUrl": url, "username": "u", "allowedRoles": ["myapp-db"], "tlsCa": ca}]}})
    message = only(found, f"database.connections[0].{key}")
    assert needle in message
