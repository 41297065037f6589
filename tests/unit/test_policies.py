"""Policies as code: what we render is valid HCL with exactly the rules the model holds."""

from __future__ import annotations

import hcl
import pytest

from components.model import ConfigError, load_config
from components.render import policies as pol
from components.render import vault_objects as vs
from tests.harness import stack_config

ACCESSOR = "auth_kubernetes_0a1b2c3d"


def load(stack: str, overrides: dict | None = None):
    # Applications given here replace the stack's: the stack's settings for the External Secrets Operator
    # go too (they have no effect unless an application delivers through it; the defaults apply).
    if overrides and "applications" in overrides:
        overrides = {"externalSecrets": None, **overrides}
    config, secret_keys = stack_config(stack, overrides)
    return load_config(config, set(secret_keys))


def parsed_rules(text: str) -> dict[str, dict]:
    return hcl.loads(text)["path"]


def _app(**kw):
    return {"name": "billing", "namespace": "payments", "serviceAccount": "billing-sa", **kw}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_rendered_policy_parses_and_matches_its_model(stack):
    config = load(stack, {"policies": [{"name": "ops-read", "rules": [
        {"path": "sys/metrics", "capabilities": ["read"]},
        {"path": "secret/data/shared/+/config", "capabilities": ["read", "list"],
         "requiredParameters": ["version"], "deniedParameters": ["force", "*"]}]}]})
    policies = vs.build(config).all_policies(ACCESSOR)
    assert len({p.name for p in policies}) == len(policies)
    for policy in policies:
        text = pol.render(policy)
        rules = parsed_rules(text)
        assert list(rules) == [r.path for r in policy.rules], policy.name
        for rule in policy.rules:
            block = rules[rule.path]
            assert block["capabilities"] == list(rule.capabilities)
            assert block.get("required_parameters", []) == list(rule.required_parameters)
            denied = {p: [] for p in rule.denied_parameters} | {p: list(v) for p, v in rule.denied_values}
            assert block.get("denied_parameters", {}) == denied
            assert block.get("allowed_parameters", {}) == {p: list(v) for p, v in rule.allowed_parameters}
    ops = next(p for p in policies if p.name == "ops-read")
    assert parsed_rules(pol.render(ops))["secret/data/shared/+/config"]["denied_parameters"] == {"force": [], "*": []}


def test_builtin_policy_names_and_order():
    names = [p.name for p in vs.build(load("prod")).all_policies(ACCESSOR)]
    assert names == ["deployer", "previewer", "admin", "raft-backup", "raft-rollout", "metrics", "app-myapp",
                     "external-secrets-default", "cert-manager-default", "raft-restore",
                     "secrets-manager-migration", "app-templated"]
    # Without an accessor (before Kubernetes auth exists) the templated policy cannot be rendered.
    assert "app-templated" not in [p.name for p in vs.build(load("prod")).policies]


def test_backup_policy_api_is_stable_and_minimal():
    assert pol.BACKUP_POLICY == "raft-backup"
    policy = pol.backup_policy()
    assert policy.name == pol.BACKUP_POLICY
    assert parsed_rules(pol.render(policy)) == {"sys/storage/raft/snapshot": {"capabilities": ["read"]}}


def test_the_scrape_token_policy_reads_the_metrics_only():
    policy = pol.metrics_policy()
    assert policy.name == pol.METRICS_POLICY == "metrics"
    assert parsed_rules(pol.render(policy)) == {"sys/metrics": {"capabilities": ["read"]}}
    # Only a stack that scrapes gets it.
    assert pol.METRICS_POLICY not in [p.name for p in pol.static_policies(load("dev"))]


def test_templated_policy_paths_use_the_kubernetes_alias_metadata():
    rules = parsed_rules(pol.render(pol.templated_policy_for("secret", ACCESSOR)))
    meta = f"identity.entity.aliases.{ACCESSOR}.metadata"
    own = f"{{{{{meta}.service_account_namespace}}}}/{{{{{meta}.service_account_name}}}}"
    assert rules == {
        f"secret/data/{own}/*": {"capabilities": ["read"]},
        f"secret/metadata/{own}/*": {"capabilities": ["read", "list"]},
    }
    written = parsed_rules(pol.render(pol.templated_policy_for("secret", ACCESSOR, "write")))
    assert written == {
        f"secret/data/{own}/*": {"capabilities": ["create", "read", "update", "patch"]},
        f"secret/metadata/{own}/*": {"capabilities": ["read", "list"]},
    }
    # Nobody may delete versions or metadata (which destroys every version) through these.
    for policy in (rules, written):
        assert not {"delete", "sudo", "deny"} & {c for r in policy.values() for c in r["capabilities"]}


def test_applications_read_their_own_folder_unless_they_ask_to_write():
    config = load("prod", {"applications": [_app(), _app(name="writer", serviceAccount="writer", ownFolder="write"),
                                            _app(name="none", serviceAccount="none", ownFolder="none")]})
    s = vs.build(config)
    roles = {r.name: r for r in s.kubernetes_roles}
    assert roles["billing"].token_policies == ("app-templated",)
    assert roles["writer"].token_policies == ("app-templated-write",)
    assert roles["none"].token_policies == ()
    assert [p.name for p in s.templated(ACCESSOR)] == ["app-templated", "app-templated-write"]
    only_readers = vs.build(load("prod", {"applications": [_app()]}))
    assert [p.name for p in only_readers.templated(ACCESSOR)] == ["app-templated"]


def test_roles_carry_a_max_ttl_and_an_audience():
    config = load("prod", {"applications": [_app(), _app(name="own", serviceAccount="own", tokenTtl="30m",
                                                         tokenMaxTtl="2h", audience="https://kubernetes.default.svc")]})
    roles = {r.name: r for r in vs.build(config).kubernetes_roles}
    assert roles["billing"].token_max_ttl_seconds == 24 * 3600 and roles["billing"].audience == "vault"
    assert roles["own"].token_ttl_seconds == 1800 and roles["own"].token_max_ttl_seconds == 7200
    assert roles["own"].audience == "https://kubernetes.default.svc"


@pytest.mark.parametrize(("overrides", "key", "needle"), [
    ({"kubernetesAuth": {"audience": ""}}, "kubernetesAuth.audience", "prod binds every Kubernetes auth role"),
    ({"kubernetesAuth": {"tokenTtl": "48h"}}, "kubernetesAuth.tokenTtl", "is longer than kubernetesAuth.tokenMaxTtl"),
    ({"applications": [_app(tokenTtl="2h", tokenMaxTtl="1h")]}, "applications[0].tokenMaxTtl", "longer than"),
    ({"applications": [_app(ownFolder="write")], "kubernetesAuth": {"templatedPolicy": False}},
     "applications[0].ownFolder", "needs kubernetesAuth.templatedPolicy"),
])
def test_role_settings_that_make_no_sense_are_refused(overrides, key, needle):
    with pytest.raises(ConfigError) as err:
        load("prod", overrides)
    assert f"vault-platform:{key}" in str(err.value) and needle in str(err.value)


def test_templated_policy_follows_the_kv_mount_and_needs_an_accessor():
    (policy,) = vs.build(load("prod", {"kv": {"path": "kv-apps"}, "applications": None})).templated(ACCESSOR)
    assert all(r.path.startswith("kv-apps/") for r in policy.rules)
    with pytest.raises(ValueError, match="accessor"):
        vs.build(load("prod")).templated("")


def test_unknown_capability_is_rejected_by_the_model():
    with pytest.raises(ValueError, match=r"'secret/data/x/\*': has unknown capabilities \['wrte'\]"):
        pol.Rule("secret/data/x/*", ("read", "wrte"))
    with pytest.raises(ValueError, match="names no capability"):
        pol.Rule("secret/data/x/*", ())
    with pytest.raises(ValueError, match="repeated"):
        pol.Rule("secret/data/x/*", ("read", "read"))


@pytest.mark.parametrize("path", ["", "/secret/data/x", 'secret/"x"', "secret/data/a b"])
def test_malformed_rule_paths_are_rejected(path):
    with pytest.raises(ValueError, match="not a Vault API path"):
        pol.Rule(path, ("read",))


def test_policy_names_and_duplicate_paths_are_rejected():
    with pytest.raises(ValueError, match="policy name"):
        pol.Policy("Bad Name")
    with pytest.raises(ValueError, match="policy name"):
        pol.Policy("root")
    with pytest.raises(ValueError, match=r"\['secret/data/x'\] appear in more than one rule"):
        pol.Policy("dup", (pol.Rule("secret/data/x", ("read",)), pol.Rule("secret/data/x", ("list",))))


def test_app_policy_grants_creds_and_certificates_on_the_issuing_mount():
    prod = pol.app_policy(load("prod"), load("prod").applications[0])
    dev = pol.app_policy(load("dev"), load("dev").applications[0])
    assert prod is not None and dev is not None
    assert parsed_rules(pol.render(prod)) == {
        "secret/data/myapp/*": {"capabilities": ["read"]},
        "secret/metadata/myapp/*": {"capabilities": ["list"]},
        "database/creds/myapp-db": {"capabilities": ["read"]},
        "pki_int/issue/internal-certs": {"capabilities": ["create", "update"]},  # the intermediate issues in prod
    }
    assert "pki/issue/internal-certs" in parsed_rules(pol.render(dev))


def test_grants_inside_the_templated_path_need_no_app_policy():
    config = load("prod", {"applications": [_app(ownFolder="write", kv=[
        {"path": "secret/data/payments/billing-sa/*", "access": "write"},
        {"path": "secret/metadata/payments/billing-sa/config", "access": "list"}])]})
    assert pol.app_policy(config, config.applications[0]) is None
    # A write grant in its own folder is not covered when the application only reads it.
    reader = load("prod", {"applications": [_app(kv=[{"path": "secret/data/payments/billing-sa/*",
                                                       "access": "write"}])]})
    assert pol.app_policy(reader, reader.applications[0]) is not None
    assert "app-billing" not in [p.name for p in vs.build(config).all_policies(ACCESSOR)]


def test_only_grants_beyond_the_templated_path_stay_in_the_app_policy():
    config = load("prod", {"applications": [_app(kv=[
        {"path": "secret/data/payments/billing-sa/*", "access": "read"},      # covered
        {"path": "secret/data/payments/billing-sa", "access": "read"},        # the folder itself: not covered
        {"path": "secret/metadata/payments/billing-sa/x", "access": "write"},  # metadata is not writable there
        {"path": "secret/data/payments/other-sa/*", "access": "read"},        # another service account
        {"path": "secret/data/shared/*", "access": "read"}])]})
    policy = pol.app_policy(config, config.applications[0])
    assert policy is not None
    assert [r.path for r in policy.rules] == ["secret/data/payments/billing-sa",
                                              "secret/metadata/payments/billing-sa/x",
                                              "secret/data/payments/other-sa/*", "secret/data/shared/*"]


def test_without_the_templated_policy_every_grant_is_in_the_app_policy():
    config = load("prod", {"kubernetesAuth": {"templatedPolicy": False},
                           "applications": [_app(kv=[{"path": "secret/data/payments/billing-sa/*",
                                                      "access": "read"}])]})
    policy = pol.app_policy(config, config.applications[0])
    assert policy is not None and [r.path for r in policy.rules] == ["secret/data/payments/billing-sa/*"]
    assert "app-templated" not in [p.name for p in vs.build(config).all_policies(ACCESSOR)]


def test_admin_policy_manages_every_enabled_engine_but_is_not_root():
    rules = parsed_rules(pol.render(pol.admin_policy(load("prod"))))
    for mount in ("secret", "database", "pki", "pki_int", "transit"):
        assert "delete" in rules[f"{mount}/*"]["capabilities"]
    assert "*" not in rules and "sys/*" not in rules
    dev_rules = parsed_rules(pol.render(pol.admin_policy(load("dev"))))
    assert "transit/*" not in dev_rules and "pki_int/*" not in dev_rules


def test_config_policies_are_rendered_verbatim():
    config = load("dev", {"policies": [{"name": "ci-deployer", "rules": [
        {"path": "secret/data/ci/*", "capabilities": ["create", "update"]}]}]})
    policy = next(p for p in vs.build(config).all_policies(ACCESSOR) if p.name == "ci-deployer")
    assert parsed_rules(pol.render(policy)) == {"secret/data/ci/*": {"capabilities": ["create", "update"]}}
    assert pol.render(policy).startswith("# ci-deployer: managed by vault-platform")
