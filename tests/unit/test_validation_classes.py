"""Config mistakes are refused when the config loads, before any resource, naming the key and saying
what to do; values the consumers (Kubernetes, Helm, Vault, AWS, GitHub, Prometheus) accept are accepted;
and no error ever shows a secret.

Each class of mistake is tested as a class: the cases enumerate the sections and settings it applies to,
and where the model itself says which settings belong to a class (the settings another setting can make
ineffective, the sections an ``enabled`` switches), a test checks that every one of them has a case. The
cases call the loader directly; one whole-program run proves that a refusal comes before any resource.
"""

from __future__ import annotations

import contextvars
import copy
import json
from typing import Any

import pytest
from pydantic import BaseModel

from components.model import ConfigError, PlatformConfig, load_config
from components.model import unused as unused_rule
from components.model.load import given_paths, plain_secret_leaves
from components.model.types import Section
from components.resources.stack_config import load_from_pulumi
from tests.harness import load_stack_file, run_stack, stack_config
from tests.harness.fakes import CANARY, fake_pgp_key

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
AWS = {"region": "eu-west-1", "oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/x",
       "oidcIssuer": "oidc.eks.eu-west-1.amazonaws.com/id/X"}
# An application that delivers through the injector only: with it, the stack files' externalSecrets
# section has no effect, so the cases that use it drop that section.
INJECTED = {"name": "myapp", "namespace": "default", "serviceAccount": "myapp",
            "kv": [{"path": "secret/data/myapp/*", "access": "read"}]}
NO_OPERATOR = {"externalSecrets": None}
OIDC = {"enabled": True, "discoveryUrl": "https://idp.example.com", "clientId": "vault", "adminGroup": "platform"}
OIDC_SECRET = {"oidcClientSecret": f"{CANARY}-oidc-client-secret"}
# prod reads the client secret from AWS Secrets Manager when the identity is written, never from config.
OIDC_ARN = {"clientSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:vault-oidc"}


def _stack_apps(stack: str) -> list[dict]:
    return copy.deepcopy(load_stack_file(stack)[0]["vault-platform:applications"])


def _app(stack: str, **changes: Any) -> dict:
    return {"applications": [{**_stack_apps(stack)[0], **changes}]}


def _app_grant(stack: str, path: str, access: str = "read") -> dict:
    apps = _stack_apps(stack)
    apps[0]["kv"] = [*apps[0].get("kv", []), {"path": path, "access": access}]
    return {"applications": apps}


def _policy(path: str) -> dict:
    return {"policies": [{"name": "ops", "rules": [{"path": path, "capabilities": ["read"]}]}]}


def _overrides(value: Any, stack: str) -> dict:
    return value(stack) if callable(value) else value


def _secrets(overrides: dict) -> dict | None:
    """A transit seal needs its token."""
    return {"transitUnsealToken": f"{CANARY}-t"} if overrides.get("unseal", {}).get("type") == "transit" else None


def refusals(stack: str, overrides: dict, secrets: dict | None = None) -> list[str]:
    config, secret_keys = stack_config(stack, overrides, secrets)
    with pytest.raises(ConfigError) as err:
        load_config(config, set(secret_keys))
    # No error ever shows a secret: every secret value in these configs carries the canary.
    assert CANARY not in str(err.value), str(err.value)
    return err.value.problems


def refused_for(problems: list[str], key: str) -> str:
    """The problem reported for ``key`` (or for one of the keys inside it)."""
    found = [p for p in problems if any(p.startswith(f"vault-platform:{key}{sep}") for sep in (": ", ".", "["))]
    assert found, problems
    return found[0]


# --- mistakes on the older settings, tried on both stacks ---------------------------------------------

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
}
OLDER = [pytest.param(cls, *case, id=f"{cls}: {case[0]}") for cls, cases in MISTAKES.items() for case in cases]


@pytest.mark.parametrize(("cls", "case", "overrides", "key"), OLDER)
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_mistake_is_refused_at_load_time_naming_the_key(stack, cls, case, overrides, key):
    overrides = _overrides(overrides, stack)
    refused_for(refusals(stack, overrides, _secrets(overrides)), key)


# --- class 1: a setting with no effect, because what it configures is off ------------------------------

# (case id, stack, overrides, secrets, the key refused, the table key it covers)
NO_EFFECT: list[tuple[str, str, dict, dict | None, str, str]] = [
    ("dead-server cleanup on one replica", "dev",
     {"cluster": {"replicas": 1, "raft": {"autopilot": {"cleanupDeadServers": True}}}}, None,
     "cluster.raft.autopilot.cleanupDeadServers", "cluster.raft.autopilot.cleanupDeadServers"),
    ("a dead-server threshold with cleanup off", "prod", {"cluster": {"raft": {"autopilot": {
        "cleanupDeadServers": False}}}}, None,
     "cluster.raft.autopilot.deadServerLastContactThreshold", "cluster.raft.autopilot.deadServerLastContactThreshold"),
    ("a NodePort on a LoadBalancer", "prod", {"api": {"nodePort": 30820}}, None, "api.nodePort", "api.nodePort"),
    ("a dev PostgreSQL image without the dev PostgreSQL", "prod", {"database": {"devPostgresImage": "postgres:16"}},
     None, "database.devPostgresImage", "database.devPostgresImage"),
    ("a cert-manager issuer for a generated certificate", "dev",
     {"tls": {"issuer": {"kind": "ClusterIssuer", "name": "corp-pki"}}}, None, "tls.issuer", "tls.issuer"),
    ("a CA lifetime when an issuer of the operator's signs", "prod",
     {"tls": {"issuer": {"kind": "ClusterIssuer", "name": "corp-pki"}, "caValidity": "87600h"}}, None,
     "tls.caValidity", "tls.caValidity"),
    ("an internal load balancer with no load balancer", "prod", {"api": {"serviceType": "ClusterIP"}}, None,
     "api.internalLoadBalancer", "api.internalLoadBalancer"),
    ("load balancer settings with no load balancer", "prod", {"api": {"serviceType": "ClusterIP"}}, None,
     "api.loadBalancer.subnets", "api.loadBalancer.*"),
    ("load balancer subnets the pods never see", "prod",
     {"api": {"loadBalancer": {"preserveClientIp": True}},
      "cluster": {"networkPolicy": {"apiFrom": {"cidrs": ["10.1.0.0/24"]}}}}, None,
     "api.loadBalancer.subnetCidrs", "api.loadBalancer.subnetCidrs"),
    ("public exposure of an internal load balancer", "prod", {"api": {"publicExposureIntended": True}}, None,
     "api.publicExposureIntended", "api.publicExposureIntended"),
    ("a hosted zone with no route53 record", "prod", {"api": {"dns": {"route53ZoneId": "Z0123456789ABC"}}}, None,
     "api.dns.route53ZoneId", "api.dns.route53ZoneId"),
    ("a record ttl with no record", "prod", {"api": {"dns": {"ttl": 300}}}, None, "api.dns.ttl", "api.dns.ttl"),
    ("an existing secret's name with a generated certificate", "prod", {"tls": {"existingSecret": "corp-tls"}},
     None, "tls.existingSecret", "tls.existingSecret"),
    ("an existing CA with a generated certificate", "dev", {"tls": {"existingCaCert": CA}}, None,
     "tls.existingCaCert", "tls.existingCaCert"),
    ("a validity for a certificate the stack does not make", "dev",
     {"tls": {"source": "existingSecret", "existingSecret": "corp-tls", "existingCaCert": CA}}, None,
     "tls.validity", "tls.validity"),
    ("extra names for a certificate the stack does not make", "prod",
     {"tls": {"source": "existingSecret", "existingSecret": "corp-tls", "existingCaCert": CA, "validity": None,
              "caValidity": None}}, None, "tls.extraDnsNames", "tls.extraDnsNames"),
    ("extra addresses for a certificate the stack does not make", "dev",
     {"tls": {"source": "existingSecret", "existingSecret": "corp-tls", "existingCaCert": CA, "validity": None,
              "extraIpAddresses": ["10.0.0.7"]}}, None, "tls.extraIpAddresses", "tls.extraIpAddresses"),
    ("a CA lifetime for a CA the stack does not make", "dev",
     {"tls": {"source": "existingSecret", "existingSecret": "corp-tls", "existingCaCert": CA, "validity": None,
              "caValidity": "8760h"}}, None, "tls.caValidity", "tls.caValidity"),
    ("an organization for certificates the stack does not make", "dev",
     {"tls": {"source": "existingSecret", "existingSecret": "corp-tls", "existingCaCert": CA, "validity": None,
              "organization": "corp"}}, None, "tls.organization", "tls.organization"),
    ("kms settings for another seal", "dev", {"unseal": {"awskms": {"deletionWindowDays": 10}}}, None,
     "unseal.awskms.deletionWindowDays", "unseal.awskms.*"),
    ("transit seal settings for another seal", "prod",
     {"unseal": {"transit": {"address": "https://t.example.com:8200", "keyName": "k"}}}, None,
     "unseal.transit", "unseal.transit"),
    ("a transit seal token for another seal", "prod", {}, {"transitUnsealToken": f"{CANARY}-t"},
     "secrets.transitUnsealToken", "secrets.transitUnsealToken"),
    ("plaintext shares outside prod", "dev", {"init": {"acceptPlaintextShares": True}}, None,
     "init.acceptPlaintextShares", "init.acceptPlaintextShares"),
    ("aws settings nothing uses", "dev", {"aws": AWS}, None, "aws", "aws"),
    ("key administrators with no KMS key", "dev",
     {"aws": {**AWS, "keyAdministrators": ["arn:aws:iam::123456789012:role/admin"]},
      "migration": {"awsSecretsManager": {"enabled": True, "namePrefix": "dev/"}}}, None,
     "aws.keyAdministrators", "aws.keyAdministrators"),
    ("key policy administrators with no KMS key", "dev",
     {"aws": {**AWS, "keyPolicyAdministrators": ["arn:aws:iam::123456789012:role/break-glass"]},
      "migration": {"awsSecretsManager": {"enabled": True, "namePrefix": "dev/"}}}, None,
     "aws.keyPolicyAdministrators", "aws.keyPolicyAdministrators"),
    ("snapshot readers with no snapshot bucket", "dev",
     {"aws": {**AWS, "snapshotReaders": ["arn:aws:iam::123456789012:role/restore"]},
      "migration": {"awsSecretsManager": {"enabled": True, "namePrefix": "dev/"}}}, None,
     "aws.snapshotReaders", "aws.snapshotReaders"),
    ("a permissions boundary with no IAM role", "dev",
     {"aws": {**AWS, "permissionsBoundary": "arn:aws:iam::123456789012:policy/boundary"},
      "api": {"serviceType": "LoadBalancer", "nodePort": None,
              "dns": {"record": "route53", "route53ZoneId": "Z0123456789ABC"}}}, None,
     "aws.permissionsBoundary", "aws.permissionsBoundary"),
    ("an intermediate path with no intermediate", "dev", {"pki": {"intermediate": {"path": "ca2"}}}, None,
     "pki.intermediate.path", "pki.intermediate.*"),
    ("transit keys with transit off", "dev", {"transit": {"keys": ["orders"]}}, None, "transit.keys", "transit.*"),
    ("operator settings with no application delivering through it", "prod",
     {"applications": [INJECTED]}, None, "externalSecrets.install", "externalSecrets.*"),
    ("a refresh interval with only the migration store", "prod",
     {"applications": [INJECTED], "migration": {"awsSecretsManager": {"enabled": True, "namePrefix": "prod/",
                                                                       "namespaces": ["default"]}}},
     None, "externalSecrets.refreshInterval", "externalSecrets.refreshInterval"),
    ("a chart for an operator the stack does not install", "prod",
     {"externalSecrets": {"install": False, "chart": {"version": "2.9.0"}}}, None,
     "externalSecrets.chart", "externalSecrets.chart"),
    ("cluster-wide token requests for an operator the stack does not install", "dev",
     {"externalSecrets": {"install": False, "clusterWideTokenRequests": True}}, None,
     "externalSecrets.clusterWideTokenRequests", "externalSecrets.clusterWideTokenRequests"),
    ("cert-manager's role with cert-manager off", "dev",
     {"certManager": {"enabled": None, "issuers": [{"namespace": "default", "pkiRole": "internal-certs"}]}}, None,
     "certManager.issuers", "certManager.*"),
    ("subdomains for a role bound to a namespace", "prod",
     {"pki": {"roles": [{"name": "internal-certs", "namespace": "default", "allowSubdomains": True}]}}, None,
     "pki.roles[0].allowSubdomains", "pki.roles[].allowSubdomains"),
    ("bare domains for a role bound to a namespace", "dev",
     {"pki": {"roles": [{"name": "internal-certs", "namespace": "default", "allowBareDomains": False}]}}, None,
     "pki.roles[0].allowBareDomains", "pki.roles[].allowBareDomains"),
    ("s3 settings with volume backups", "dev", {"backup": {"s3": {"prefix": "snapshots/"}}}, None,
     "backup.s3.prefix", "backup.s3.*"),
    ("replication with volume backups", "dev", {"backup": {"s3": {"replication": {"enabled": True,
                                                                                  "region": "eu-central-1"}}}},
     None, "backup.s3.replication", "backup.s3.*"),
    ("volume settings with s3 backups", "prod", {"backup": {"volume": {"size": "1Gi"}}}, None,
     "backup.volume.size", "backup.volume.*"),
    ("lock days with no lock", "prod", {"backup": {"s3": {"objectLock": {"mode": "none"}}}}, None,
     "backup.s3.objectLock.days", "backup.s3.objectLock.days"),
    ("a replica region with replication never switched on", "prod",
     {"backup": {"s3": {"replication": {"enabled": None}}}}, None,
     "backup.s3.replication.region", "backup.s3.replication.*"),
    ("github settings with the CI login off", "dev", {"deploy": {"jwt": {"github": {"repository": "acme/vault"}}}},
     None, "deploy.jwt.github", "deploy.jwt.*"),
    ("operator OIDC settings with it off", "prod", {"deploy": {"operatorOidc": {"clientId": "vault"}}}, None,
     "deploy.operatorOidc.clientId", "deploy.operatorOidc.*"),
    ("an OIDC client secret with operator OIDC off", "prod", {}, OIDC_SECRET, "secrets.oidcClientSecret",
     "secrets.oidcClientSecret"),
    ("a bootstrap token ttl while the root token is kept (dev default)", "dev",
     {"deploy": {"bootstrapTokenTtl": "2h"}}, None, "deploy.bootstrapTokenTtl", "deploy.bootstrapTokenTtl"),
    ("a bootstrap token ttl while the root token is kept", "prod",
     {"deploy": {"revokeRootToken": False, "bootstrapTokenTtl": "2h"}}, None, "deploy.bootstrapTokenTtl",
     "deploy.bootstrapTokenTtl"),
    ("migration settings with the store off", "prod", {"migration": {"awsSecretsManager": {"namePrefix": "prod/"}}},
     None, "migration.awsSecretsManager.namePrefix", "migration.awsSecretsManager.*"),
    ("alert thresholds with no PrometheusRule", "prod", {"monitoring": {"prometheusRule": False}}, None,
     "monitoring.alerts", "monitoring.alerts"),
    ("dashboard labels with no dashboard", "prod",
     {"monitoring": {"grafanaDashboard": False, "dashboardLabels": {"grafana_dashboard": "1"}}}, None,
     "monitoring.dashboardLabels", "monitoring.dashboardLabels"),
    ("a scrape interval with nothing scraping", "dev", {"monitoring": {"scrapeInterval": "1m"}}, None,
     "monitoring.scrapeInterval", "monitoring.scrapeInterval"),
    ("prometheus' namespace with nothing scraping", "dev", {"monitoring": {"prometheusNamespace": "prometheus"}},
     None, "monitoring.prometheusNamespace", "monitoring.prometheusNamespace"),
    ("a scrape token with nothing scraping", "dev", {"monitoring": {"metricsTokenSecret": "vault-metrics-token"}},
     None, "monitoring.metricsTokenSecret", "monitoring.metricsTokenSecret"),
    ("labels with nothing to label", "dev", {"monitoring": {"labels": {"release": "kube-prometheus-stack"}}}, None,
     "monitoring.labels", "monitoring.labels"),
    ("an application's refresh interval with the injector", "prod",
     {"applications": [{**INJECTED, "refreshInterval": "5m"}], **NO_OPERATOR}, None,
     "applications[0].refreshInterval", "applications[].refreshInterval"),
    ("an application's secrets with no delivery", "prod",
     {"applications": [{**INJECTED, "delivery": "none", "secrets": [
         {"name": "config", "path": "myapp/config", "keys": {"API_KEY": "api_key"}}]}], **NO_OPERATOR}, None,
     "applications[0].secrets", "applications[].secrets"),
]


@pytest.mark.parametrize(("case", "stack", "overrides", "secrets", "key", "covers"), NO_EFFECT,
                         ids=[c[0] for c in NO_EFFECT])
def test_a_setting_with_no_effect_is_refused_naming_what_turns_it_off(case, stack, overrides, secrets, key, covers):
    message = refused_for(refusals(stack, overrides, secrets), key)
    assert ": has no effect: " in message and ("remove it" in message or "remove them" in message), message


def _table_key(key: str) -> str:
    import re

    return re.sub(r"\[\d+\]", "[]", key)


def _default_true_switches() -> set[str]:
    """``enabled`` keys that are on unless written false: the keys they turn off are only ever off on
    purpose, so the toggle test below covers them instead."""
    return {f"{path}.enabled" for path, section in _enabled_sections() if section.model_fields["enabled"].default}


def test_every_setting_another_can_turn_off_has_a_case():
    covered = {c[5] for c in NO_EFFECT}
    config, keys = stack_config("prod")
    loaded = load_config(config, set(keys))
    raw = {k.split(":", 1)[1]: json.loads(v) if v[:1] in "[{" else v for k, v in config.items()}
    table = unused_rule.table(loaded, given_paths(raw))
    # Keys off only when a switch that defaults to on is written false are always excused: the toggle
    # test covers them.
    listed = {_table_key(key) for entry in table for key in entry.keys
              if entry.switch not in _default_true_switches()}
    assert listed - covered == set(), "add a NO_EFFECT case for these"
    assert covered - listed == set(), "cases for keys the table no longer has"


# The exception, everywhere: `enabled: false` written in the stack keeps the section's other settings.

def _enabled_sections(model: type[BaseModel] = PlatformConfig, prefix: str = "") -> list[tuple[str, type[Section]]]:
    from components.model.load import _unwrap

    found: list[tuple[str, type[Section]]] = []
    for name, field in model.model_fields.items():
        inner = _unwrap(field.annotation)
        if isinstance(inner, type) and issubclass(inner, Section):
            path = f"{prefix}.{field.alias or name}" if prefix else (field.alias or name)
            if "enabled" in inner.model_fields:
                found.append((path, inner))
            found += _enabled_sections(inner, path)
    return found


def _section_in_stack(stack: str, section: str) -> dict:
    config, _ = load_stack_file(stack)
    top, _, rest = section.partition(".")
    node = config.get(f"vault-platform:{top}") or {}
    for part in rest.split(".") if rest else ():
        node = node.get(part) or {}
    return node


def _nest(path: str, value: Any) -> dict:
    for part in reversed(path.split(".")):
        value = {part: value}
    return value


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


# What else a stack must change so that switching the section off breaks nothing that uses it (an
# application's delivery, role or issuer), settings of the section a stack would write, and the
# section's parent switched on (dev backs up to a volume: its s3 settings are another target's).
TOGGLE_EXTRAS: dict[str, Any] = {
    "cluster.injector": lambda s: _app(s, delivery="externalSecrets"),
    "pki": lambda s: {**_app(s, pkiRole=""), "certManager": {"enabled": False}},
    "database": lambda s: _app(s, databaseRole=""),
    # prod keeps a deploy identity (it refuses a standing root token): operators' when CI's is off.
    "deploy.jwt": lambda s: {"deploy": {"revokeRootToken": False}} if s == "dev" else
    {"deploy": {"operatorOidc": {**OIDC, **OIDC_ARN}}},
    "deploy.operatorOidc": lambda s: {"deploy": {"operatorOidc": {
        **{k: v for k, v in OIDC.items() if k != "enabled"}, **(OIDC_ARN if s == "prod" else {})}}},
    "migration.awsSecretsManager": {"migration": {"awsSecretsManager": {"namePrefix": "prod/"}}},
    "backup.s3.replication": lambda s: {"backup": {"s3": {"replication": {"region": "eu-central-1"}}}} if s == "prod"
    else {"backup": {"target": "s3", "volume": None, "s3": {"replication": {"region": "eu-central-1"}}},
          "aws": {**AWS, "keyAdministrators": ["arn:aws:iam::123456789012:role/admin"],
                  "keyPolicyAdministrators": ["arn:aws:iam::123456789012:role/break-glass"]}},
}
def _toggle_secrets(section: str, stack: str) -> dict | None:
    return OIDC_SECRET if section == "deploy.operatorOidc" and stack == "dev" else None


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("section", [path for path, _ in _enabled_sections()])
def test_enabled_false_keeps_the_settings_beside_it(stack, section):
    sections = dict(_enabled_sections())
    # Every setting of the section written out (the stack file's, else the default), and the section
    # switched off.
    in_stack = _section_in_stack(stack, section)
    defaults = {k: v for k, v in sections[section]().model_dump(by_alias=True, mode="json", exclude_none=True).items()
                if k != "enabled" and v not in ([], {})}
    defaults = {**_merge(defaults, in_stack), "enabled": None} if "enabled" in in_stack else _merge(defaults, in_stack)
    overrides = _nest(section, {**defaults, "enabled": False})
    extra = TOGGLE_EXTRAS.get(section, {})
    overrides = _merge(_overrides(extra, stack), overrides)
    config, secret_keys = stack_config(stack, overrides, _toggle_secrets(section, stack))
    loaded = load_config(config, set(secret_keys))
    assert unused_rule.value_at(loaded, f"{section}.enabled") is False
    # ...and left out (its default), the same settings are refused where the default is off.
    if not sections[section].model_fields["enabled"].default:
        off = _merge(_overrides(extra, stack), _nest(section, defaults))
        problems = refusals(stack, off, _toggle_secrets(section, stack))
        assert any(f"has no effect: {section}.enabled is false (its default)" in p for p in problems), problems


def test_backups_switched_off_keep_their_settings():
    # The stack file's whole backup section stays; only enabled changes.
    for stack in ("dev", "prod"):
        config, keys = stack_config(stack, {"backup": {"enabled": False}})
        assert load_config(config, set(keys)).backup.enabled is False


# --- class 2: bound claims that can never match, or match too much -----------------------------------

CLAIMS: list[tuple[str, str, dict, dict | None, str]] = [
    ("a branch name instead of a ref", "prod", {"deploy": {"jwt": {"github": {"deployRef": "main"}}}}, None,
     "deploy.jwt.github.deployRef"),
    ("a ref without refs/", "prod", {"deploy": {"jwt": {"github": {"deployRef": "heads/main"}}}}, None,
     "deploy.jwt.github.deployRef"),
    ("a wildcard ref", "prod", {"deploy": {"jwt": {"github": {"deployRef": "refs/heads/*"}}}}, None,
     "deploy.jwt.github.deployRef"),
    ("a ref git refuses", "prod", {"deploy": {"jwt": {"github": {"deployRef": "refs/heads/a..b"}}}}, None,
     "deploy.jwt.github.deployRef"),
    ("an empty deploy environment", "prod", {"deploy": {"jwt": {"github": {"deployEnvironment": ""}}}}, None,
     "deploy.jwt.github.deployEnvironment"),
    ("a wildcard deploy environment", "prod", {"deploy": {"jwt": {"github": {"deployEnvironment": "prod*"}}}}, None,
     "deploy.jwt.github.deployEnvironment"),
    ("an empty preview environment", "prod", {"deploy": {"jwt": {"github": {"previewEnvironment": " "}}}}, None,
     "deploy.jwt.github.previewEnvironment"),
    ("an empty CI audience", "prod", {"deploy": {"jwt": {"audience": ""}}}, None, "deploy.jwt.audience"),
    ("the discovery document instead of the issuer", "prod", {"deploy": {"jwt": {
        "discoveryUrl": "https://token.actions.githubusercontent.com/.well-known/openid-configuration"}}}, None,
     "deploy.jwt.discoveryUrl"),
    ("the operator issuer's discovery document", "prod", {"deploy": {"operatorOidc": {
        **OIDC, "discoveryUrl": "https://idp.example.com/.well-known/openid-configuration"}}}, OIDC_SECRET,
     "deploy.operatorOidc.discoveryUrl"),
    ("an admin group of *", "prod", {"deploy": {"operatorOidc": {**OIDC, "adminGroup": "*"}}}, OIDC_SECRET,
     "deploy.operatorOidc.adminGroup"),
    ("an empty groups claim", "prod", {"deploy": {"operatorOidc": {**OIDC, "groupsClaim": ""}}}, OIDC_SECRET,
     "deploy.operatorOidc.groupsClaim"),
    ("no redirect URI", "prod", {"deploy": {"operatorOidc": {**OIDC, "allowedRedirectUris": []}}}, OIDC_SECRET,
     "deploy.operatorOidc.allowedRedirectUris"),
    ("a prod application on the default service account", "prod",
     lambda s: _app(s, serviceAccount="default", createServiceAccount=False), None, "applications[0].serviceAccount"),
]


# --- class 3: durations and thresholds that contradict each other or the system ------------------------

DURATIONS: list[tuple[str, str, dict, dict | None, str]] = [
    ("a bootstrap token that never outlives the renewal margin", "prod", {"deploy": {"bootstrapTokenTtl": "5m"}},
     None, "deploy.bootstrapTokenTtl"),
    ("a bootstrap token of exactly the margin", "prod", {"deploy": {"bootstrapTokenTtl": "10m"}}, None,
     "deploy.bootstrapTokenTtl"),
    ("a bootstrap token of 600 seconds", "prod", {"deploy": {"bootstrapTokenTtl": "600s"}}, None,
     "deploy.bootstrapTokenTtl"),
    ("a bootstrap token of a year", "prod", {"deploy": {"bootstrapTokenTtl": "8760h"}}, None,
     "deploy.bootstrapTokenTtl"),
    ("a CI token ttl above its maximum", "prod", {"deploy": {"jwt": {"tokenTtl": "2h", "tokenMaxTtl": "1h"}}}, None,
     "deploy.jwt.tokenTtl"),
    ("a certificate alert beyond the certificate's lifetime", "prod",
     {"tls": {"validity": "240h"}, "monitoring": {"alerts": {"certificateExpiryDays": 14}}}, None,
     "monitoring.alerts.certificateExpiryDays"),
    ("a certificate alert before pulumi up can renew", "prod",
     {"monitoring": {"alerts": {"certificateExpiryDays": 45}}}, None, "monitoring.alerts.certificateExpiryDays"),
    ("a scrape interval under the scrape timeout", "prod", {"monitoring": {"scrapeInterval": "5s"}}, None,
     "monitoring.scrapeInterval"),
    ("a lock longer than the retention", "prod", {"backup": {"s3": {"objectLock": {"days": 60}}}}, None,
     "backup.s3.objectLock.days"),
    ("a compliance lock longer than the retention", "prod",
     {"backup": {"s3": {"objectLock": {"mode": "compliance", "days": 31}}}}, None, "backup.s3.objectLock.days"),
    ("a retention shorter than the schedule's gaps", "prod",
     {"backup": {"schedule": "@weekly", "retentionDays": 3, "s3": {"objectLock": {"days": 3}}}}, None,
     "backup.retentionDays"),
]


# --- class 4: names and values the target refuses --------------------------------------------------------

TARGETS: list[tuple[str, str, dict, dict | None, str]] = [
    ("a replica bucket name with capitals", "prod",
     {"backup": {"s3": {"replication": {"enabled": True, "bucketName": "Vault_Replica"}}}}, None,
     "backup.s3.replication.bucketName"),
    ("a replica bucket name like an IP", "prod",
     {"backup": {"s3": {"replication": {"enabled": True, "bucketName": "10.0.0.1"}}}}, None,
     "backup.s3.replication.bucketName"),
    ("the snapshot bucket as its own replica", "prod",
     {"backup": {"s3": {"bucketName": "acme-snapshots", "replication": {"enabled": True,
                                                                        "bucketName": "acme-snapshots"}}}}, None,
     "backup.s3.replication.bucketName"),
    ("the operator chart at latest", "prod", {"externalSecrets": {"chart": {"version": "latest"}}}, None,
     "externalSecrets.chart.version"),
    ("the operator chart as a range", "prod", {"externalSecrets": {"chart": {"version": "^2.9"}}}, None,
     "externalSecrets.chart.version"),
    ("the Vault chart at latest", "prod", {"cluster": {"chart": {"version": "latest"}}}, None,
     "cluster.chart.version"),
    ("negative injector replicas", "dev", {"cluster": {"injector": {"replicas": -1}}}, None,
     "cluster.injector.replicas"),
    ("no injector replicas", "dev", {"cluster": {"injector": {"replicas": 0}}}, None, "cluster.injector.replicas"),
    ("PKI URLs on loopback", "prod", {"pki": {"urlsBase": "https://127.0.0.1:8200"}}, None, "pki.urlsBase"),
    ("PKI URLs on localhost", "prod", {"pki": {"urlsBase": "https://localhost:8200"}}, None, "pki.urlsBase"),
    ("PKI URLs on IPv6 loopback", "prod", {"pki": {"urlsBase": "https://[::1]:8200"}}, None, "pki.urlsBase"),
    ("PKI URLs already ending in the mount", "prod",
     {"pki": {"urlsBase": "https://vault.internal.example.com:8200/v1/pki"}}, None, "pki.urlsBase"),
    ("PKI URLs ending in /v1", "prod", {"pki": {"urlsBase": "https://vault.internal.example.com/v1/"}}, None,
     "pki.urlsBase"),
    ("a scrape interval Prometheus cannot read", "prod", {"monitoring": {"scrapeInterval": "1.5m"}}, None,
     "monitoring.scrapeInterval"),
    ("a label value with a space", "prod", {"monitoring": {"labels": {"release": "kube prometheus"}}}, None,
     "monitoring.labels.release"),
    ("a label key with a leading dash", "prod", {"monitoring": {"labels": {"-release": "x"}}}, None,
     "monitoring.labels.-release"),
    ("a dashboard label value too long", "prod", {"monitoring": {"dashboardLabels": {"grafana_dashboard": "1" * 64}}},
     None, "monitoring.dashboardLabels.grafana_dashboard"),
]


# --- class 5: applications placed where they break the cluster ------------------------------------------

PLACEMENT: list[tuple[str, str, dict, dict | None, str]] = [
    ("injection in kube-system", "prod", lambda s: _app(s, namespace="kube-system"), None,
     "applications[0].namespace"),
    ("injection in kube-node-lease", "prod", lambda s: _app(s, namespace="kube-node-lease"), None,
     "applications[0].namespace"),
    ("injection in kube-public", "prod", lambda s: _app(s, namespace="kube-public"), None,
     "applications[0].namespace"),
    ("injection in Vault's namespace", "prod", lambda s: _app(s, namespace="vault"), None,
     "applications[0].namespace"),
    ("injection in cert-manager's namespace", "prod", lambda s: _app(s, namespace="cert-manager"), None,
     "applications[0].namespace"),
    ("injection in the operator's namespace", "prod", lambda s: _app(s, namespace="external-secrets"), None,
     "applications[0].namespace"),
    ("injection in kube-system with a dev injector that fails closed", "dev",
     lambda s: {**_app(s, namespace="kube-system"), "cluster": {"injector": {"failurePolicy": "Fail"}}}, None,
     "applications[0].namespace"),
    ("the default service account, created", "dev", lambda s: _app(s, serviceAccount="default"), None,
     "applications[0].createServiceAccount"),
    ("the default service account, created, in prod", "prod", lambda s: _app(s, serviceAccount="default"), None,
     "applications[0].createServiceAccount"),
    ("an empty audience past the prod audience rule", "prod", lambda s: _app(s, audience=""), None,
     "applications[0].audience"),
]


# --- class 6: a namespace's PKI role (cert-manager's Issuer, applications) that allows any domain ----------

def _pki_role(**changes: Any) -> dict:
    return {"pki": {"roles": [{"name": "internal-certs", "namespace": "default", "allowedDomains": ["internal"],
                               **changes}]}}


ISSUER: list[tuple[str, str, dict, dict | None, str]] = [
    ("every name", "prod", _pki_role(allowedDomains=["*"]), None, "pki.roles[0].allowedDomains"),
    ("every name below a public top-level domain", "prod", _pki_role(allowedDomains=["internal", "*.com"]), None,
     "pki.roles[0].allowedDomains"),
    ("a wildcard over a top-level domain", "prod", _pki_role(allowedDomains=["*.io"]), None,
     "pki.roles[0].allowedDomains"),
    ("another namespace's Services", "prod", _pki_role(allowedDomains=["*.payments.svc"]), None,
     "pki.roles[0].allowedDomains"),
    ("every name in dev too", "dev", {**_pki_role(allowedDomains=["*"]), "certManager": {
        "enabled": True, "issuers": [{"namespace": "default", "pkiRole": "internal-certs"}]}}, None,
     "pki.roles[0].allowedDomains"),
]


# --- class 7: two things on one Vault path (a traceback from the policy builder once) -------------------

COLLISIONS: list[tuple[str, str, dict, dict | None, str]] = [
    ("the CI login on the Kubernetes auth path", "prod", {"deploy": {"jwt": {"path": "kubernetes"}}}, None,
     "deploy.jwt.path"),
    ("operator OIDC on the CI login's path", "prod", {"deploy": {"operatorOidc": {**OIDC, "path": "jwt-ci"}}},
     OIDC_SECRET, "deploy.operatorOidc.path"),
    ("operator OIDC on the Kubernetes auth path", "prod",
     {"deploy": {"operatorOidc": {**OIDC, "path": "kubernetes"}}}, OIDC_SECRET, "deploy.operatorOidc.path"),
    ("the CI login inside the Kubernetes auth path", "prod", {"deploy": {"jwt": {"path": "kubernetes/ci"}}}, None,
     "deploy.jwt.path"),
    ("the Kubernetes auth path around the CI login", "prod",
     {"kubernetesAuth": {"path": "ci"}, "deploy": {"jwt": {"path": "ci/github"}}}, None, "deploy.jwt.path"),
    ("Kubernetes auth on Vault's token method", "prod", {"kubernetesAuth": {"path": "token"}}, None,
     "kubernetesAuth.path"),
    ("the CI login on Vault's token method", "prod", {"deploy": {"jwt": {"path": "token"}}}, None, "deploy.jwt.path"),
    ("operator OIDC under Vault's token method", "prod", {"deploy": {"operatorOidc": {**OIDC, "path": "token/oidc"}}},
     OIDC_SECRET, "deploy.operatorOidc.path"),
    ("an application taking the rolling restart's role", "prod", lambda s: _app(s, name="raft-rollout"), None,
     "applications[0].name"),
    ("an application taking the backup job's role", "dev", lambda s: _app(s, name="raft-backup"), None,
     "applications[0].name"),
    ("an application taking the templated policy", "prod", lambda s: _app(s, name="templated"), None,
     "applications[0].name"),
    ("an application taking the templated write policy", "dev", lambda s: _app(s, name="templated-write"), None,
     "applications[0].name"),
]

CLASSES = {"2 bound claims": CLAIMS, "3 durations": DURATIONS, "4 target values": TARGETS, "5 placement": PLACEMENT,
           "6 cert-manager role": ISSUER, "7 collisions": COLLISIONS}
CASES = [pytest.param(*case, id=f"{cls}: {case[0]}") for cls, cases in CLASSES.items() for case in cases]


@pytest.mark.parametrize(("case", "stack", "overrides", "secrets", "key"), CASES)
def test_each_class_is_refused_naming_the_key_and_what_to_do(case, stack, overrides, secrets, key):
    problems = refusals(stack, _overrides(overrides, stack), secrets)
    message = refused_for(problems, key)
    # Every message says what to do or what is allowed, not only what is wrong.
    assert any(word in message for word in ("use ", "name ", "give ", "choose ", "remove", "keep ", "allow ",
                                            "lock ", "scrape ", "run ", "make ", "set ", "e.g.", "allowed:",
                                            "at most")), message


@pytest.mark.parametrize("interval", ["10s", "30s", "1m", "1m30s", "2h", "1d", "15000ms",
                                      "1.5m", "30s30s", "90sec", "1h 30m", "1m1h"])
def test_the_scrape_interval_rule_is_the_servicemonitor_crds(interval):
    """What the model accepts as monitoring.scrapeInterval is what the Prometheus Operator's CRD (its
    committed schema facts) accepts in the ServiceMonitor it lands in."""
    import dataclasses

    from components.render.monitoring import Monitoring, service_monitor
    from tests import facts

    config, keys = stack_config("prod", {"monitoring": {"scrapeInterval": interval}})
    try:
        load_config(config, set(keys))
        accepted = True
    except ConfigError as err:
        refused_for(err.problems, "monitoring.scrapeInterval")
        accepted = False
    base, base_keys = stack_config("prod")
    prod = Monitoring.of(load_config(base, set(base_keys)))
    manifest = service_monitor(dataclasses.replace(prod, scrape_interval=interval))
    assert accepted == (facts.custom_resource_problems(manifest) == []), (interval, accepted)


@pytest.mark.promtool
@pytest.mark.parametrize("interval", ["5s", "9s", "10s", "11s", "30s", "1m", "9999ms"])
def test_the_scrape_interval_rule_is_prometheus_own(interval, tmp_path):
    """Prometheus (promtool, built from its Go modules) refuses a scrape config whose timeout is longer
    than its interval: what the ServiceMonitor would become. The model refuses exactly those."""
    import subprocess

    import yaml

    from components.render.monitoring import Monitoring, service_monitor
    from tests.promtool import promtool_binary

    config, keys = stack_config("prod", {"monitoring": {"scrapeInterval": interval}})
    try:
        load_config(config, set(keys))
        accepted = True
    except ConfigError as err:
        refused_for(err.problems, "monitoring.scrapeInterval")
        accepted = False
    base, base_keys = stack_config("prod")
    endpoint = service_monitor(Monitoring.of(load_config(base, set(base_keys))))["spec"]["endpoints"][0]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": [{
        "job_name": "vault", "scrape_interval": interval, "scrape_timeout": endpoint["scrapeTimeout"],
        "static_configs": [{"targets": ["vault-0.vault-internal:8200"]}]}]}))
    proc = subprocess.run([str(promtool_binary()), "check", "config", "prometheus.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert accepted == (proc.returncode == 0), (interval, proc.stdout + proc.stderr)


def test_the_program_registers_nothing_before_refusing():
    """The one whole-program run: a mistake the policy builder used to crash on, after the cluster
    and everything before the Vault configuration had been declared."""
    rec = run_stack("prod", {"deploy": {"jwt": {"path": "kubernetes"}}}, expect_error=True)
    assert "vault-platform:deploy.jwt.path: 'kubernetes' collides with kubernetesAuth.path" in (rec.error or "")
    assert "Traceback" not in (rec.error or "")
    assert [r.type for r in rec.resources if r.custom] == []


# --- class 8: unknown keys, wherever the runtime got them ----------------------------------------------

def _from_runtime(stack: str, extra: dict[str, str], monkeypatch, tmp_path, *, via_env: bool) -> Any:
    """load_from_pulumi in a folder with no stack file, the config handed over by the runtime only."""
    config, secret_keys = stack_config(stack)
    config.update(extra)
    monkeypatch.chdir(tmp_path)

    def run() -> Any:
        import pulumi

        if via_env:
            # How the CLI's language host hands a program its config (stack file, --config-file, ESC).
            monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
            monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret_keys))
            pulumi.runtime.set_all_config({}, [])
        else:
            # How the Automation API's inline programs (and Pulumi's mocks) get it.
            pulumi.runtime.set_all_config(config, secret_keys)
        return load_from_pulumi()

    return contextvars.copy_context().run(run)


@pytest.mark.parametrize("via_env", [True, False], ids=["language host", "automation api"])
def test_unknown_keys_are_refused_whatever_brought_them(via_env, monkeypatch, tmp_path):
    assert _from_runtime("dev", {}, monkeypatch, tmp_path, via_env=via_env).environment == "dev"
    with pytest.raises(ConfigError) as err:
        _from_runtime("dev", {"vault-platform:clustr": json.dumps({"replicas": 3}),
                              "vault-platform:monitorng": "{}"}, monkeypatch, tmp_path, via_env=via_env)
    text = str(err.value)
    assert "vault-platform:clustr: unknown setting (did you mean 'cluster'?)" in text
    assert "vault-platform:monitorng: unknown setting (did you mean 'monitoring'?)" in text
    # Other namespaces belong to providers.
    assert _from_runtime("dev", {"aws:region": "eu-west-1"}, monkeypatch, tmp_path, via_env=via_env)


# --- what the consumers accept is accepted ---------------------------------------------------------------

def _build_everything(config: PlatformConfig) -> None:
    """Every pure builder the program runs on a loaded config, in process: a crash here is a config
    mistake the loader let through."""
    from components.model.names import Names
    from components.render import delivery, vault_objects
    from components.render import policies as pol
    from components.render.aws_secret_store import AwsSecretStore, cluster_secret_store, read_policy
    from components.render.backup_job import BackupJob, cron_job
    from components.render.cert_manager import VaultIssuer
    from components.render.external_secrets import ExternalSecretsDelivery, chart_values, external_secret
    from components.render.helm_values import UnsealWiring, build_values
    from components.render.monitoring import Monitoring, dashboard_config_map, prometheus_rule, service_monitor
    from components.render.network_policy import network_policy
    from components.render.server_hcl import render_server_hcl, seal_for
    from components.render.services import api_service_annotations, api_service_spec
    from components.resources.backup import read_script
    from components.resources.platform import cluster_args, deploy_identity_args

    plan = cluster_args(config).plan
    names = Names.of(config)
    seal = seal_for(config.unseal, region="eu-west-1", kms_key_id="key-id")
    hcl = render_server_hcl(names, seal, ui=config.cluster.ui, performance_multiplier=1)
    build_values(config.cluster, names, production=config.is_prod, server_hcl=hcl)
    plan.server.values(seal=seal, wiring=UnsealWiring(), tls_secret=plan.tls.secret_name, cert_pem=None, webhook=None)
    network_policy(names, config.cluster.network_policy, delivery.api_client_namespaces(config))
    api_service_annotations(config.api), api_service_spec(config.api, names)
    objects = vault_objects.build(config)
    for policy in objects.policies:
        pol.render(policy)
    deploy_identity_args(config, objects)
    delivery.namespace_plans(config)
    for app in config.applications:
        delivery.application_export(config, app)
        if app.uses_external_secrets:
            external_secret(config, app)
    m = Monitoring.of(config)
    service_monitor(m), prometheus_rule(m), dashboard_config_map(m)
    ExternalSecretsDelivery.of(config), chart_values(config)
    if config.cert_manager.enabled:
        VaultIssuer.of(config)
    if config.backup.enabled:
        cron_job(BackupJob.of(config), read_script(), bucket="bucket")
    if config.migration.aws_secrets_manager.enabled and config.aws is not None:
        store = AwsSecretStore(config.migration.aws_secrets_manager, config.aws)
        read_policy(store), cluster_secret_store(store)


GOOD: list[tuple[str, str, dict, dict | None]] = [
    ("a database connection open to all its roles ('*')", "prod",
     {"database": {"connections": [{"name": "app-postgres", "connectionUrl":
                                    "postgresql://{{username}}:{{password}}@db:5432/app?sslmode=verify-full",
                                    "username": "u", "allowedRoles": ["*"], "tlsCa": CA}]}}, None),
    ("a policy path with a + segment and a trailing *", "prod",
     {"policies": [{"name": "ops_read", "rules": [{"path": "secret/data/+/config", "capabilities": ["read"]},
                                                  {"path": "secret/*", "capabilities": ["list"]}]}]}, None),
    ("transit keys and a mount path as Vault names them", "prod",
     {"transit": {"enabled": True, "path": "transit.apps", "keys": ["orders_v2", "Payments.key"]}}, None),
    ("a wildcard domain and underscore role names", "prod",
     {"pki": {"roles": [{"name": "internal_certs", "allowedDomains": ["*.svc.cluster.local", "internal"]}]},
      "applications": None, "certManager": None, **NO_OPERATOR}, None),
    ("a deny and a subscribe capability", "prod", {"policies": [{"name": "no-admin", "rules": [
        {"path": "sys/*", "capabilities": ["deny"]},
        {"path": "sys/events/subscribe/*", "capabilities": ["subscribe"]}]}]}, None),
    ("an image from another registry with a port", "prod",
     {"cluster": {"image": {"repository": "registry.corp:5000/vault"}}}, None),
    ("a pre-release chart version", "prod", {"cluster": {"chart": {"version": "0.35.0-rc.1"}}}, None),
    ("backups off with every other backup setting kept", "prod", {"backup": {"enabled": False}}, None),
    ("backups off entirely", "prod", {"backup": {"enabled": False, "schedule": None, "target": None, "s3": None,
                                                 "retentionDays": None}, "aws": {"snapshotReaders": None}}, None),
    ("a schedule with @every", "prod", {"backup": {"schedule": "@every 4h"}}, None),
    ("an IP address in the certificate", "prod", {"tls": {"extraIpAddresses": ["10.0.0.7", "fd00::7"]}}, None),
    ("deploys from a tag", "prod", {"deploy": {"jwt": {"github": {"deployRef": "refs/tags/v1.2.3"}}}}, None),
    ("a GitHub Enterprise issuer with a path", "prod",
     {"deploy": {"jwt": {"discoveryUrl": "https://github.example.com/_services/token"}}}, None),
    ("an environment name with a space", "prod",
     {"deploy": {"jwt": {"github": {"deployEnvironment": "prod eu"}}}}, None),
    ("the longest and shortest bootstrap tokens", "prod", {"deploy": {"bootstrapTokenTtl": "11m"}}, None),
    ("a day-long bootstrap token", "prod", {"deploy": {"bootstrapTokenTtl": "24h"}}, None),
    ("operator OIDC on its own path", "prod", {"deploy": {"operatorOidc": {**OIDC, **OIDC_ARN}}}, None),
    ("operator OIDC with its secret from the config", "dev",
     {"deploy": {"operatorOidc": OIDC, "jwt": {"enabled": True, "github": {"repository": "example-org/x"}}}},
     OIDC_SECRET),
    ("a certificate alert as early as pulumi up renews", "prod",
     {"monitoring": {"alerts": {"certificateExpiryDays": 30}}}, None),
    ("a scrape interval equal to the timeout", "prod", {"monitoring": {"scrapeInterval": "10s"}}, None),
    ("a scrape interval in minutes and seconds", "prod", {"monitoring": {"scrapeInterval": "1m30s"}}, None),
    ("a lock as long as the retention, in compliance mode", "prod",
     {"backup": {"s3": {"objectLock": {"mode": "compliance", "days": 30}}}}, None),
    ("a named replica bucket", "prod", {"backup": {"s3": {"bucketName": "acme-snapshots", "replication": {
        "enabled": True, "region": "eu-central-1", "bucketName": "acme-snapshots-replica"}}}}, None),
    ("PKI URLs behind a path", "prod", {"pki": {"urlsBase": "https://pki.example.com/vault"}}, None),
    ("labels with a DNS prefix", "prod",
     {"monitoring": {"labels": {"app.kubernetes.io/part-of": "observability", "team": ""}}}, None),
    ("a dev application in kube-system with an injector that fails open", "dev",
     lambda s: _app(s, namespace="kube-system", createServiceAccount=False, pkiRole=""), None),
    ("a dev application that accepts any audience", "dev", lambda s: _app(s, audience=""), None),
    ("the default service account, not created, in dev", "dev",
     lambda s: _app(s, serviceAccount="default", createServiceAccount=False), None),
    ("cert-manager on its namespace's role with names the namespace owns", "prod",
     _pki_role(allowedDomains=["internal", "example.com", "*.myapp.example.com"]), None),
    ("auth methods nested only by name", "prod", {"deploy": {"jwt": {"path": "kubernetes-ci"}}}, None),
    ("an application whose name only starts like the platform's", "prod", lambda s: _app(s, name="raft-backups"),
     None),
]


@pytest.mark.parametrize(("case", "stack", "overrides", "secrets"), GOOD, ids=[g[0] for g in GOOD])
def test_what_the_consumers_accept_is_accepted(case, stack, overrides, secrets):
    config, secret_keys = stack_config(stack, _overrides(overrides, stack), secrets)
    _build_everything(load_config(config, set(secret_keys)))


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
    secrets = json.loads(config.get("vault-platform:secrets") or "{}")
    secret_keys = sorted({*secret_keys, "vault-platform:secrets"})
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

    from components.resources.stack_config import read_stack_file

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
def test_every_mistake_is_refused_at_load_or_everything_builds(stack):
    """For every key of the stack file, a few plausible mistakes of the right type: either the config
    refuses it when it loads (naming a key), or every builder the program runs on it succeeds. A
    crash while building would be a config mistake that slipped past validation."""
    refused = accepted = 0
    without: dict[str, tuple[dict[str, str], list[str]]] = {}
    for path, mistake, overrides in _mutated(stack):
        if path[0] not in without:
            without[path[0]] = stack_config(stack, {path[0]: None})
        config, secret_keys = dict(without[path[0]][0]), without[path[0]][1]
        top = overrides[path[0]]
        config[f"vault-platform:{path[0]}"] = top if isinstance(top, str) else json.dumps(top)
        try:
            loaded = load_config(config, set(secret_keys))
        except ConfigError as err:
            assert all(p.startswith("vault-platform:") for p in err.problems)
            assert CANARY not in str(err)
            refused += 1
            continue
        accepted += 1
        try:
            _build_everything(loaded)
        except Exception as err:  # any crash is the finding
            where = ".".join(map(str, path))
            raise AssertionError(f"{where} = {mistake!r} loads but does not build: {err!r}") from err
    assert refused > 80 and accepted > 10, (refused, accepted)
