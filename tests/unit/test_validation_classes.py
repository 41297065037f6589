"""Config mistakes are refused when the config loads, before any resource, naming the key; values
the consumers (Kubernetes, Helm, Vault, AWS) accept are accepted; and no error ever shows a secret.

Each class below holds several mistakes; every one is tried on both stacks, and on one of them also
through the whole program, to prove nothing was registered before the refusal.
"""

from __future__ import annotations

import copy
import json

import pytest

from components.model import ConfigError, load_config
from components.model.load import plain_secret_leaves
from tests.harness import load_stack_file, run_stack, stack_config
from tests.harness.fakes import CANARY, fake_pgp_key

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _stack_apps(stack: str) -> list[dict]:
    return copy.deepcopy(load_stack_file(stack)[0]["vault-platform:applications"])


def _app_grant(stack: str, path: str, access: str = "read") -> dict:
    apps = _stack_apps(stack)
    apps[0]["kv"] = [*apps[0].get("kv", []), {"path": path, "access": access}]
    return {"applications": apps}


def _policy(path: str) -> dict:
    return {"policies": [{"name": "ops", "rules": [{"path": path, "capabilities": ["read"]}]}]}


# (case id, overrides or a function of the stack name, the key the error must name)
MISTAKES: dict[str, list[tuple[str, object, str]]] = {
    "kubernetes cross-field rules": [
        ("server cpu request above limit", {"cluster": {"resources": {"requests": {"cpu": "2"}}}},
         "cluster.resources.requests.cpu"),
        ("server memory request above limit", {"cluster": {"resources": {"requests": {"memory": "4Gi"}}}},
         "cluster.resources.requests.memory"),
        ("injector memory request above limit",
         {"cluster": {"injector": {"resources": {"requests": {"memory": "1Gi"}}}}},
         "cluster.injector.resources.requests.memory"),
        ("a data volume of a few bytes", {"cluster": {"dataStorage": {"size": "512"}}}, "cluster.dataStorage.size"),
    ],
    "helm, container and aws naming rules": [
        ("chart version range", {"cluster": {"chart": {"version": "~0.34"}}}, "cluster.chart.version"),
        ("chart version not semver", {"cluster": {"chart": {"version": "0.34"}}}, "cluster.chart.version"),
        ("image repository with a tag", {"cluster": {"image": {"repository": "hashicorp/vault:2.0.4"}}},
         "cluster.image.repository"),
        ("image repository in capitals", {"cluster": {"image": {"repository": "HashiCorp/vault"}}},
         "cluster.image.repository"),
        ("image tag with a space", {"cluster": {"image": {"tag": "2.0.4 "}}}, "cluster.image.tag"),
        ("bucket name with capitals", {"backup": {"s3": {"bucketName": "Vault_Snapshots"}}}, "backup.s3.bucketName"),
        ("bucket name like an IP", {"backup": {"s3": {"bucketName": "10.0.0.1"}}}, "backup.s3.bucketName"),
        ("kms alias with its prefix", {"unseal": {"awskms": {"alias": "alias/vault"}}}, "unseal.awskms.alias"),
        ("aws tag in the reserved namespace", {"aws": {"tags": {"aws:owner": "me"}}}, "aws.tags"),
    ],
    "vault parameter rules": [
        ("one of many shares unseals alone", {"init": {"shares": 3, "threshold": 1}}, "init.threshold"),
        ("a role its connection does not allow",
         {"database": {"connections": [{"name": "app-postgres", "connectionUrl":
                                        "postgresql://{{username}}:{{password}}@db:5432/app?sslmode=verify-full",
                                        "username": "u", "allowedRoles": ["other"], "tlsCa": CA}],
                       "roles": [{"name": "myapp-db", "connection": "app-postgres"},
                                 {"name": "other", "connection": "app-postgres"}], "devPostgres": None}},
         "database.connections[0].allowedRoles"),
        ("a transit key twice", {"transit": {"enabled": True, "keys": ["orders", "orders"]}}, "transit.keys"),
        ("a domain twice", {"pki": {"roles": [{"name": "internal-certs", "allowedDomains": ["internal", "internal"]}]}},
         "pki.roles[0].allowedDomains"),
        ("the same grant twice", lambda s: {"applications": [
            {**_stack_apps(s)[0], "kv": [{"path": "secret/data/shared/x", "access": "read"},
                                         {"path": "secret/data/shared/x", "access": "list"}]}]},
         "applications[0].kv"),
        ("two engines on one path", {"transit": {"enabled": True, "path": "pki", "keys": []}}, "transit.path"),
        ("an engine inside another", {"database": {"path": "secret/db"}}, "database.path"),
        ("an engine where Vault lives", {"kv": {"path": "sys"}}, "kv.path"),
    ],
    "grants that never match on kv v2": [
        ("application grant without data/", lambda s: _app_grant(s, "secret/myapp/*"), "applications[0].kv[2].path"),
        ("application grant outside the kv mount", lambda s: _app_grant(s, "database/creds/x"),
         "applications[0].kv[2].path"),
        ("policy rule without data/", _policy("secret/myapp/config"), "policies[0].rules[0].path"),
    ],
    "plausible but wrong formats": [
        ("a file name as a pgp key", {"init": {"pgpKeys": ["keys/alice.asc"]}}, "init.pgpKeys"),
        ("an armored pgp key", {"init": {"rootTokenPgpKey": "-----BEGIN PGP PUBLIC KEY BLOCK-----"}},
         "init.rootTokenPgpKey"),
        ("a file name as a CA", {"tls": {"source": "existingSecret", "existingSecret": "x", "validity": None,
                                         "existingCaCert": "/etc/ssl/certs/corp-ca.pem"}}, "tls.existingCaCert"),
        ("a PEM header around nothing", {"tls": {"source": "existingSecret", "existingSecret": "x", "validity": None,
                                                 "existingCaCert": "-----BEGIN CERTIFICATE-----\n-----END "
                                                                   "CERTIFICATE-----"}}, "tls.existingCaCert"),
    ],
    "settings that would be ignored": [
        ("transit keys with transit off", {"transit": {"enabled": False, "keys": ["orders"]}}, "transit.keys"),
        ("an intermediate path with no intermediate", {"pki": {"intermediate": {"enabled": False, "path": "ca2"}}},
         "pki.intermediate.path"),
        ("kms settings for another seal",
         {"unseal": {"type": "transit", "awskms": {"deletionWindowDays": 10},
                     "transit": {"address": "https://t.example.com:8200", "keyName": "k"}}},
         "unseal.awskms.deletionWindowDays"),
        ("an existing secret's name with a generated certificate", {"tls": {"existingSecret": "corp-tls"}},
         "tls.existingSecret"),
        ("injector resources with no injector",
         {"cluster": {"injector": {"enabled": False, "resources": {"limits": {"cpu": "1"}}}}},
         "cluster.injector.resources"),
    ],
}
CASES = [pytest.param(cls, *case, id=f"{cls}: {case[0]}") for cls, cases in MISTAKES.items() for case in cases]


def _overrides(value, stack: str) -> dict:
    return value(stack) if callable(value) else value


def _secrets(overrides: dict) -> dict | None:
    """A transit seal needs its token."""
    return {"transitUnsealToken": f"{CANARY}-t"} if overrides.get("unseal", {}).get("type") == "transit" else None


@pytest.mark.parametrize(("cls", "case", "overrides", "key"), CASES)
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_mistake_is_refused_at_load_time_naming_the_key(stack, cls, case, overrides, key):
    overrides = _overrides(overrides, stack)
    config, secret_keys = stack_config(stack, overrides, _secrets(overrides))
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys))
    assert any(p.startswith(f"vault-platform:{key}") for p in err.value.problems), err.value.problems


@pytest.mark.parametrize(("cls", "case", "overrides", "key"), CASES)
def test_the_program_registers_nothing_before_refusing(cls, case, overrides, key):
    overrides = _overrides(overrides, "prod")
    rec = run_stack("prod", overrides, _secrets(overrides), expect_error=True)
    assert f"vault-platform:{key}" in rec.error
    assert [r.type for r in rec.resources if r.custom] == []


GOOD = [
    ("a database connection open to all its roles ('*')",
     {"database": {"connections": [{"name": "app-postgres", "connectionUrl":
                                    "postgresql://{{username}}:{{password}}@db:5432/app?sslmode=verify-full",
                                    "username": "u", "allowedRoles": ["*"], "tlsCa": CA}]}}),
    ("a policy path with a + segment and a trailing *",
     {"policies": [{"name": "ops_read", "rules": [{"path": "secret/data/+/config", "capabilities": ["read"]},
                                                  {"path": "secret/*", "capabilities": ["list"]}]}]}),
    ("transit keys and a mount path as Vault names them",
     {"transit": {"enabled": True, "path": "transit.apps", "keys": ["orders_v2", "Payments.key"]}}),
    ("a wildcard domain and underscore role names",
     {"pki": {"roles": [{"name": "internal_certs", "allowedDomains": ["*.svc.cluster.local", "internal"]}]},
      "applications": None, "certManager": None}),
    ("a deny and a subscribe capability", {"policies": [{"name": "no-admin", "rules": [
        {"path": "sys/*", "capabilities": ["deny"]},
        {"path": "sys/events/subscribe/*", "capabilities": ["subscribe"]}]}]}),
    ("an image from another registry with a port", {"cluster": {"image": {"repository": "registry.corp:5000/vault"}}}),
    ("a pre-release chart version", {"cluster": {"chart": {"version": "0.35.0-rc.1"}}}),
    ("backups turned off entirely", {"backup": {"enabled": False, "schedule": None, "target": None, "s3": None,
                                                "retentionDays": None}, "aws": {"snapshotReaders": None}}),
    ("a schedule with @every", {"backup": {"schedule": "@every 4h"}}),
    ("an IP address in the certificate", {"tls": {"extraIpAddresses": ["10.0.0.7", "fd00::7"]}}),
]


@pytest.mark.parametrize(("case", "overrides"), GOOD, ids=[g[0] for g in GOOD])
def test_what_the_consumers_accept_is_accepted(case, overrides):
    rec = run_stack("prod", overrides)
    assert rec.error is None


# --- secrets never show ------------------------------------------------------------------------------

SECRET = f"{CANARY}-secret-value"
WRONG_SHAPES = [
    ("transitUnsealToken", 12345), ("transitUnsealToken", [SECRET]), ("transitUnsealToken", {"x": SECRET}),
    ("vaultToken", True), ("vaultToken", [SECRET, SECRET]), ("vaultToken", {"token": SECRET}),
    ("databasePasswords", SECRET), ("databasePasswords", [SECRET]), ("databasePasswords", {"app-postgres": 7}),
    ("databasePasswords", {"app-postgres": [SECRET]}), ("databasePasswords", {"app-postgres": {"pw": SECRET}}),
    ("kv", SECRET), ("kv", {"myapp/config": SECRET}), ("kv", {"myapp/config": {"api_key": [SECRET]}}),
    ("kv", {"myapp/config": {"api_key": {"deep": SECRET}}}), ("kv", {"myapp/config": {"api_key": 7}}),
]


@pytest.mark.parametrize(("key", "wrong"), WRONG_SHAPES, ids=[f"{k}={type(v).__name__}" for k, v in WRONG_SHAPES])
def test_a_secure_value_of_the_wrong_shape_is_named_but_never_shown(key, wrong):
    config, secret_keys = stack_config("prod", secrets={key: None})
    secrets = json.loads(config["vault-platform:secrets"])
    secrets[key] = wrong
    config["vault-platform:secrets"] = json.dumps(secrets)
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys))
    text = str(err.value)
    assert CANARY not in text, text
    assert f"vault-platform:secrets.{key}" in text


def test_a_password_in_a_connection_url_is_never_shown():
    config, secret_keys = stack_config("prod", {"database": {"connections": [
        {"name": "app-postgres", "connectionUrl": f"postgresql://admin:{CANARY}-pw@db:5432/app?sslmode=require",
         "username": "u", "allowedRoles": ["myapp-db"], "tlsCa": CA}]}})
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys))
    assert "connectionUrl" in str(err.value) and CANARY not in str(err.value)
    assert "admin:***@db" in str(err.value)


def test_a_plain_value_among_secure_ones_in_the_stack_file_is_refused():
    stack_file = {"config": {"vault-platform:secrets": {
        "vaultToken": f"{CANARY}-left-in-clear-text",
        "databasePasswords": {"app-postgres": {"secure": "v1:abc"}, "reports": "hunter2"},
        "kv": {"myapp/config": {"api_key": {"secure": "v1:def"}}}}}}
    assert plain_secret_leaves(stack_file) == ["secrets.vaultToken", "secrets.databasePasswords.reports"]
    config, secret_keys = stack_config("prod")
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys), stack_file=stack_file)
    text = str(err.value)
    assert "vault-platform:secrets.vaultToken: is in plain text in the stack file" in text
    assert "vault-platform:secrets.databasePasswords.reports: is in plain text" in text
    assert CANARY not in text and "hunter2" not in text
    assert plain_secret_leaves({"config": {"vault-platform:secrets": {"vaultToken": {"secure": "v1:x"}}}}) == []


def test_the_program_reads_the_stack_file_it_runs_beside(tmp_path, monkeypatch):
    """load_from_pulumi finds Pulumi.<stack>.yaml in the folder the CLI runs it in."""
    import yaml

    from components.model.load import read_stack_file

    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump({"config": {"vault-platform:secrets": {"vaultToken": "plain"}}}))
    assert plain_secret_leaves(read_stack_file(path)) == ["secrets.vaultToken"]
    assert read_stack_file(tmp_path / "Pulumi.nope.yaml") is None


# --- messages that point at the right place -----------------------------------------------------------

def test_a_top_level_key_that_belongs_in_a_section_points_there():
    config, secret_keys = stack_config("dev", {"replicas": 3})
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys))
    assert "vault-platform:replicas: unknown setting (did you mean 'cluster.replicas'" in str(err.value)


def test_a_mount_collision_names_the_settings_not_a_generated_policy():
    config, secret_keys = stack_config("prod", {"transit": {"path": "pki"}})
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys))
    text = str(err.value)
    assert "vault-platform:transit.path: 'pki' collides with pki.path 'pki'" in text
    assert "admin" not in text


def test_values_are_shown_as_yaml():
    config, secret_keys = stack_config("dev", {"init": {"pgpKeys": ["keys/a.asc", "keys/b.asc"]}})
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys))
    assert "['keys/a.asc', 'keys/b.asc']" in str(err.value) and "(" not in str(err.value).split("pgpKeys:")[1][:30]
    good = stack_config("prod", {"init": {"pgpKeys": [fake_pgp_key(i) for i in range(5)]}})
    assert load_config(good[0], set(good[1])).init.pgp_keys


# --- nothing the program raises after loading can be a config mistake ----------------------------------

def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    elif isinstance(value, list) and value:
        for i, child in enumerate(value):
            yield from _leaves(child, (*path, i))
    else:
        yield path, value


def _plausible_mistakes(value):
    """Values of the same type that a person might type by mistake."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [0, 10**7]
    if isinstance(value, str):
        return ["", "Not Valid/Name"]
    if isinstance(value, list):
        return [[]]
    return []


def _mutated(stack: str):
    config, _ = load_stack_file(stack)
    base = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("vault-platform:")}
    for path, value in _leaves(base):
        for mistake in _plausible_mistakes(value):
            changed = copy.deepcopy(base)
            node = changed
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = mistake
            yield path, mistake, {path[0]: changed[path[0]]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_mistake_is_refused_at_load_or_the_program_runs(stack):
    """For every key of the stack file, a few plausible mistakes of the right type: either the config
    refuses it when it loads (naming a key), or the whole program evaluates without an error. A
    crash while building resources would be a config mistake that slipped past validation."""
    refused = accepted = 0
    for path, mistake, overrides in _mutated(stack):
        config, secret_keys = stack_config(stack, {path[0]: None})
        top = overrides[path[0]]
        config[f"vault-platform:{path[0]}"] = top if isinstance(top, str) else json.dumps(top)
        try:
            load_config(config, set(secret_keys))
        except ConfigError as err:
            assert all(p.startswith("vault-platform:") for p in err.problems)
            refused += 1
            continue
        accepted += 1
        rec = run_stack(stack, {path[0]: None, **overrides})
        assert rec.error is None, (path, mistake, rec.error)
    assert refused > 80 and accepted > 10, (refused, accepted)
