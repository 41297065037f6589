"""VaultCluster, VaultTls and AutoUnseal: the pure values and HCL builders, and both stacks' graphs."""

from __future__ import annotations

import json

import hcl
import pytest

from components.model.names import Names
from components.render.helm_values import READINESS_PATH, build_values
from components.render.server_hcl import render_server_hcl, seal_for
from tests import facts
from tests.harness import canary_leaks, load_stack, run_stack

TRANSIT = {"unseal": {"type": "transit", "awskms": None, "transit": {
    "address": "https://vault-unseal.example.com:8200", "keyName": "autounseal", "mountPath": "transit",
    "caCert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}}


def cfg(stack: str, overrides: dict | None = None, secrets: dict | None = None):
    return load_stack(stack, overrides, secrets)


def values_for(stack: str, overrides: dict | None = None, secrets: dict | None = None):
    config = cfg(stack, overrides, secrets)
    return config, build_values(config.cluster, Names.of(config), production=config.is_prod,
                                server_hcl=render_server_hcl(Names.of(config), seal(config)))


def seal(config, key_id: str = "kms-key-id"):
    if config.unseal.type == "awskms":
        return seal_for(config.unseal, region=config.aws.region, kms_key_id=key_id)
    return seal_for(config.unseal)


# --- pure: HCL -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_server_hcl_parses_and_has_one_retry_join_per_replica(stack):
    config = cfg(stack)
    names = Names.of(config)
    parsed = hcl.loads(render_server_hcl(names, seal(config) if stack == "prod" else None))
    listener = parsed["listener"]["tcp"]
    assert listener["tls_cert_file"] == "/vault/userconfig/vault-tls/tls.crt"
    assert listener["tls_key_file"] == "/vault/userconfig/vault-tls/tls.key"
    assert listener["tls_client_ca_file"] == "/vault/userconfig/vault-tls/ca.crt"
    assert listener["cluster_address"] == "[::]:8201"
    assert "tls_disable" not in listener
    raft = parsed["storage"]["raft"]
    assert raft["path"] == "/vault/data"
    joins = raft["retry_join"]
    assert len(joins) == config.cluster.replicas
    for i, join in enumerate(joins):
        assert join["leader_api_addr"] == f"https://vault-{i}.vault-internal:8200"
        assert join["leader_ca_cert_file"] == "/vault/userconfig/vault-tls/ca.crt"
        assert join["leader_tls_servername"] == f"vault-{i}.vault-internal"
    assert "kubernetes" in parsed["service_registration"]
    assert parsed["telemetry"]["prometheus_retention_time"] == "30s"
    assert parsed["disable_mlock"] is True


def test_awskms_seal_stanza():
    parsed = hcl.loads(render_server_hcl(Names.of(cfg("prod")), seal(cfg("prod"), "1234-abcd")))
    assert parsed["seal"]["awskms"] == {"region": "eu-west-1", "kms_key_id": "1234-abcd"}


def test_shamir_has_no_seal_stanza():
    assert "seal" not in hcl.loads(render_server_hcl(Names.of(cfg("dev")), seal(cfg("dev"))))


def test_transit_seal_stanza_never_holds_the_token():
    # (dev: prod takes the token from an operator's Secret, tests/unit/test_state_secrets.py.)
    config = cfg("dev", TRANSIT, {"transitUnsealToken": "CANARY-transit-token"})
    text = render_server_hcl(Names.of(config), seal(config))
    stanza = hcl.loads(text)["seal"]["transit"]
    assert stanza == {"address": "https://vault-unseal.example.com:8200", "key_name": "autounseal",
                    "mount_path": "transit/", "tls_ca_cert": "/vault/userconfig/vault-unseal/transit-ca.crt"}
    assert "token" not in stanza and "CANARY" not in text


def test_hcl_strings_cannot_inject_blocks():
    names = Names("vault", "vault", 1)
    text = render_server_hcl(names, None, retry_join_addrs=[('x"\n}\nseal "shamir" {', "y")])
    parsed = hcl.loads(text)
    assert "seal" not in parsed
    assert parsed["storage"]["raft"]["retry_join"]["leader_api_addr"].startswith('x"')


# --- pure: chart values --------------------------------------------------------------------------

def vault_chart(config=None):
    version = (config or cfg("dev")).cluster.chart.version
    return facts.chart("vault", version)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_values_path_is_known_to_the_chart(stack):
    config, values = values_for(stack)
    assert facts.unknown_paths(vault_chart(config), facts.set_paths(values)) == []


def test_a_misspelled_values_key_is_caught():
    chart = vault_chart()
    assert facts.unknown_paths(chart, ["server.ha.replica", "server.dataStorage.sise", "server.ha.raft.config"]) == [
        "server.ha.replica", "server.dataStorage.sise"]
    # below a free-form map anything goes (resources, annotations, env vars)
    assert facts.unknown_paths(chart, ["server.resources.requests.memory", "server.extraEnvironmentVars.X"]) == []
    # but not below a map the chart spells out
    assert facts.unknown_paths(chart, ["server.ha.raft.confg"]) == ["server.ha.raft.confg"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_values_have_the_types_the_chart_schema_wants(stack):
    config, values = values_for(stack)
    assert facts.type_problems(vault_chart(config), values) == []


def test_a_value_of_the_wrong_type_is_caught():
    chart = vault_chart()
    assert facts.type_problems(chart, {"server": {"ha": {"replicas": "3", "enabled": True}}}) == [
        "server.ha.replicas: str '3' where the chart wants integer"]
    assert facts.type_problems(chart, {"global": {"tlsDisable": "false"}}) == [
        "global.tlsDisable: str 'false' where the chart wants boolean"]


def test_values_that_make_a_safe_ha_cluster():
    _, v = values_for("prod")
    server = v["server"]
    assert v["global"]["tlsDisable"] is False
    assert server["ha"]["enabled"] is True and server["ha"]["replicas"] == 5
    assert server["ha"]["raft"] == {"enabled": True, "setNodeId": True, "config": server["ha"]["raft"]["config"]}
    assert server["standalone"]["enabled"] is False
    assert server["readinessProbe"]["path"] == READINESS_PATH == \
        "/v1/sys/health?standbyok=true&perfstandbyok=true&uninitcode=204"
    # Helm's await skips a StatefulSet that does not roll; that is what lets a strict readiness
    # path coexist with awaiting the release before init.
    assert "updateStrategyType" not in server
    assert server["dataStorage"]["size"] == "10Gi" and server["dataStorage"]["storageClass"] == "gp3"
    assert server["auditStorage"]["enabled"] is True and server["auditStorage"]["size"] == "20Gi"
    assert server["resources"] == {"requests": {"memory": "256Mi", "cpu": "250m"},
                                   "limits": {"memory": "512Mi", "cpu": "500m"}}
    required = server["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert required["topologyKey"] == "kubernetes.io/hostname"
    spread = server["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["whenUnsatisfiable"] == "DoNotSchedule"
    assert server["ha"]["disruptionBudget"] == {"enabled": True, "maxUnavailable": 2}
    assert v["injector"]["enabled"] is True
    assert v["injector"]["resources"] == {"requests": {"memory": "64Mi", "cpu": "50m"},
                                          "limits": {"memory": "128Mi", "cpu": "100m"}}
    assert v["ui"]["enabled"] is True
    assert server["extraEnvironmentVars"]["VAULT_CACERT"] == "/vault/userconfig/vault-tls/ca.crt"
    assert {"name": "vault-tls", "mountPath": "/vault/userconfig/vault-tls", "readOnly": True} in \
        server["volumeMounts"]
    assert server["volumes"][0]["secret"]["secretName"] == "vault-tls"
    assert v["fullnameOverride"] == "vault"
    assert v["serverTelemetry"]["serviceMonitor"]["enabled"] is False
    assert server["authDelegator"]["enabled"] is True


def test_dev_values_fit_a_laptop_and_a_one_zone_cluster():
    _, v = values_for("dev")
    server = v["server"]
    assert server["ha"]["replicas"] == 3
    assert "topologySpreadConstraints" not in server
    assert "preferredDuringSchedulingIgnoredDuringExecution" in server["affinity"]["podAntiAffinity"]
    assert server["resources"]["limits"]["memory"] == "256Mi"


@pytest.mark.parametrize("service_monitor", [False, True])
def test_the_chart_never_makes_its_own_service_monitor_or_rules(service_monitor):
    """The stack declares them (every pod scraped, TLS verified); the chart's would skip verification."""
    # (Without the ServiceMonitor and the rule, the stack's labels, alerts and Prometheus namespace go too.)
    unmonitored = {"labels": None, "alerts": None, "prometheusNamespace": None, "metricsTokenSecret": None}
    _, v = values_for("prod", {"cluster": {"serviceMonitor": service_monitor},
                               "monitoring": {"prometheusRule": service_monitor,
                                              **({} if service_monitor else unmonitored)}})
    assert v["serverTelemetry"]["serviceMonitor"]["enabled"] is False
    assert v["serverTelemetry"]["prometheusRules"]["enabled"] is False
    assert v["global"]["serverTelemetry"]["prometheusOperator"] is False


# --- whole program under mocks --------------------------------------------------------------------

def release(rec):
    return rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_release_is_the_pinned_official_chart(stack):
    rec = run_stack(stack)
    r = release(rec)
    assert r.get("chart") == "vault" and r.get("version") == "0.34.1"
    assert r.get("repositoryOpts.repo") == "https://helm.releases.hashicorp.com"
    assert r.get("name") == "vault" and r.get("namespace") == "vault"
    assert r.get("values.server.image.tag") == "2.0.4"
    chart = facts.chart("vault", r.get("version"))
    assert facts.unknown_paths(chart, facts.set_paths(r.get("values"))) == []
    assert facts.type_problems(chart, r.get("values")) == []
    component = rec.by_urn(r.parent)
    assert component.type == "vault-platform:cluster:VaultCluster"
    assert rec.provider_of(r).type == "pulumi:providers:kubernetes"


def test_prod_seal_names_the_kms_key_the_program_created():
    rec = run_stack("prod")
    key = rec.one("aws:kms/key:Key", "vault-cluster-unseal-key")
    seal = hcl.loads(release(rec).get("values.server.ha.raft.config"))["seal"]["awskms"]
    assert seal["kms_key_id"] == f"{key.name}-key-id"  # the mocked provider's id for that key
    assert seal["region"] == "eu-west-1"


def test_kms_key_is_protected_retained_and_rotated():
    key = run_stack("prod").one("aws:kms/key:Key", "vault-cluster-unseal-key")
    assert key.protect is True and key.retain_on_delete is True
    assert key.get("enableKeyRotation") is True and key.get("deletionWindowInDays") == 30
    assert key.get("keyUsage") == "ENCRYPT_DECRYPT"


def test_irsa_role_trusts_exactly_the_vault_service_account():
    rec = run_stack("prod")
    role = rec.one("aws:iam/role:Role", "vault-cluster-unseal-irsa")
    trust = json.loads(role.get("assumeRolePolicy"))
    (statement,) = trust["Statement"]
    issuer = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    assert statement["Principal"] == {"Federated": "arn:aws:iam::123456789012:oidc-provider/" + issuer}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {"StringEquals": {f"{issuer}:sub": "system:serviceaccount:vault:vault",
                                                       f"{issuer}:aud": "sts.amazonaws.com"}}
    policy = json.loads(rec.one("aws:iam/rolePolicy:RolePolicy", "vault-cluster-unseal-kms").get("policy"))
    (allow,) = policy["Statement"]
    assert sorted(allow["Action"]) == ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"]
    key = rec.one("aws:kms/key:Key", "vault-cluster-unseal-key")
    assert allow["Resource"] == f"arn:aws:kms:eu-west-1:123456789012:key/{key.name}-key-id"
    annotations = release(rec).get("values.server.serviceAccount.annotations")
    assert annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/vault-unseal-prod"}
    alias = rec.one("aws:kms/alias:Alias", "vault-cluster-unseal-alias")
    assert alias.get("name") == "alias/vault-unseal-vault-platform-prod"


def test_transit_token_travels_only_in_a_secret():
    rec = run_stack("dev", TRANSIT, {"transitUnsealToken": "CANARY-transit-token"})
    assert canary_leaks(rec) == []
    secret = rec.one("kubernetes:core/v1:Secret", "vault-cluster-unseal-transit")
    assert secret.get("stringData.VAULT_TOKEN") == "CANARY-transit-token"
    assert secret.is_secret("stringData.VAULT_TOKEN")
    values = release(rec).get("values")
    assert values["server"]["extraSecretEnvironmentVars"] == [
        {"envName": "VAULT_TOKEN", "secretName": "vault-unseal", "secretKey": "VAULT_TOKEN"}]
    assert "CANARY" not in json.dumps(values)
    assert [k.name for k in rec.of_type("aws:kms/key:Key") if k.name.startswith("vault-cluster")] == []


def test_tls_certificate_names_every_way_to_reach_a_pod():
    rec = run_stack("prod")
    cert = rec.one("kubernetes:cert-manager.io/v1:Certificate", "vault-cluster-tls-pair-certificate")
    names = set(cert.get("spec.dnsNames"))
    for i in range(5):
        assert f"vault-{i}.vault-internal" in names
    assert {"vault-active", "vault", "vault.vault.svc", "vault.vault.svc.cluster.local", "localhost",
            "vault.internal.example.com"} <= names
    assert cert.get("spec.ipAddresses") == ["127.0.0.1"]
    # Raft peers present it to each other when joining.
    assert {"server auth", "client auth"} <= set(cert.get("spec.usages"))
    dev = run_stack("dev").one("pulumi-python:dynamic/tls:LocalTls", "vault-cluster-tls-pair-keys")
    assert {"vault-0.vault-internal", "vault-active", "localhost"} <= set(dev.get("dns_names"))
    assert dev.get("ip_addresses") == ["127.0.0.1"] and dev.get("client_auth") is True


def test_prod_tls_keys_are_made_and_kept_in_the_cluster_and_only_the_ca_is_exported():
    rec = run_stack("prod")
    # cert-manager makes the keys: no private key and no key-holding Secret of the stack's own.
    assert rec.of_type("pulumi-python:dynamic/tls:LocalTls") == []
    assert not [r for r in rec.of_type("kubernetes:core/v1:Secret") if "tls.key" in (r.inputs.get("stringData") or {})]
    cert = rec.one("kubernetes:cert-manager.io/v1:Certificate", "vault-cluster-tls-pair-certificate")
    assert cert.get("spec.secretName") == "vault-tls"
    assert cert.get("spec.privateKey") == {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
    assert cert.get("metadata.annotations") == {"pulumi.com/waitFor": "condition=Ready"}
    ca = rec.one("kubernetes:cert-manager.io/v1:Certificate", "vault-cluster-tls-pair-ca")
    assert ca.get("spec.isCA") is True and ca.get("spec.secretName") == "vault-server-ca"
    issuer = rec.one("kubernetes:cert-manager.io/v1:Issuer", "vault-cluster-tls-pair-ca-issuer")
    assert issuer.get("spec") == {"ca": {"secretName": "vault-server-ca"}}
    assert cert.get("spec.issuerRef") == {"group": "cert-manager.io", "kind": "Issuer", "name": "vault-server-ca"}
    # The CA comes back from what cert-manager issued, and is exported (public).
    assert rec.exports["caCertificate"].startswith("-----BEGIN CERTIFICATE-----\nfake-cert-manager-ca")
    assert "caCertificate" not in rec.export_secret_paths
    assert canary_leaks(rec) == []


def test_an_issuer_of_the_operators_signs_the_server_certificate_without_a_ca_of_the_stacks():
    rec = run_stack("prod", {"tls": {"issuer": {"kind": "ClusterIssuer", "name": "corp-pki"}, "caValidity": None}})
    cert = rec.one("kubernetes:cert-manager.io/v1:Certificate", "vault-cluster-tls-pair-certificate")
    assert cert.get("spec.issuerRef") == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "corp-pki"}
    made = {r.name for r in rec.resources if r.name.startswith("vault-cluster-tls-pair-")}
    assert made == {"vault-cluster-tls-pair-certificate"}


def test_dev_tls_key_lives_only_in_a_tls_secret_and_the_ca_is_exported():
    rec = run_stack("dev")
    secret = rec.one("kubernetes:core/v1:Secret", "vault-cluster-tls-pair-secret")
    assert secret.get("type") == "kubernetes.io/tls"
    assert secret.get("metadata.name") == "vault-tls"
    assert "CANARY" in secret.get("stringData")["tls.key"] and secret.is_secret("stringData")
    keys = rec.one("pulumi-python:dynamic/tls:LocalTls", "vault-cluster-tls-pair-keys")
    assert {"ca_key_pem", "key_pem"} <= set(keys.additional_secret_outputs)
    assert "caCertificate" in rec.exports and "BEGIN CERTIFICATE" in rec.exports["caCertificate"]
    assert "caCertificate" not in rec.export_secret_paths
    assert canary_leaks(rec) == []


def test_existing_tls_secret_replaces_the_generated_certificates():
    ca = "-----BEGIN CERTIFICATE-----\nMIIBexisting\n-----END CERTIFICATE-----\n"
    rec = run_stack("dev", {"tls": {"source": "existingSecret", "existingSecret": "corp-vault-tls",
                                    "existingCaCert": ca, "validity": None}})
    assert [r.name for r in rec.resources if r.name.startswith("vault-cluster-tls-")] == []
    # The injector makes its own serving certificate then: no key of the stack's for it either.
    assert rec.of_type("vault-platform:tls:InjectorTls") == []
    assert release(rec).get("values.injector").get("certs") is None
    assert release(rec).get("values.server.volumes[0].secret.secretName") == "corp-vault-tls"
    assert rec.exports["caCertificate"] == ca


def test_dev_exposes_the_api_and_each_pod_on_node_ports():
    rec = run_stack("dev")
    api = rec.one("kubernetes:core/v1:Service", "vault-cluster-api")
    assert api.get("spec.type") == "NodePort" and api.get("spec.ports[0].nodePort") == 30820
    pods = sorted(s.get("spec.ports[0].nodePort") for s in rec.of_type("kubernetes:core/v1:Service")
                  if s.name.startswith("vault-cluster-pod-"))
    assert pods == [30821, 30822, 30823]


def test_prod_api_is_an_internal_load_balancer():
    api = run_stack("prod").one("kubernetes:core/v1:Service", "vault-cluster-api")
    assert api.get("spec.type") == "LoadBalancer"
    assert api.get("metadata.annotations")["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_components_parent_their_children(stack):
    rec = run_stack(stack)
    for r in rec.resources:
        if r.type in ("pulumi:pulumi:Stack", "vault-platform:index:VaultPlatform"):
            continue
        assert r.parent, f"{r.type}::{r.name} has no parent"
        assert any(a.type.startswith("vault-platform:") for a in rec.ancestors(r)), r.name


def test_a_component_misused_in_code_names_the_input_without_a_traceback():
    import pulumi

    from components.model import ApiConfig, ClusterConfig, UnsealConfig
    from components.render.cluster_plan import cluster_plan
    from components.resources.cluster import VaultClusterArgs

    def plan(replicas: int | None):
        return cluster_plan("vault", ApiConfig(address="https://127.0.0.1:8200"), UnsealConfig(type="shamir"),
                            ClusterConfig(replicas=replicas))

    with pytest.raises(pulumi.InputPropertyError) as err:
        VaultClusterArgs(plan(2))
    assert err.value.property_path == "plan.names.replicas" and "odd number, not 2" in err.value.reason
    # A RunError is what the Python language host prints as its message alone.
    assert isinstance(err.value, pulumi.RunError)
    assert str(err.value) == "plan.names.replicas: VaultClusterArgs: cluster.replicas must be an odd number, not 2"
    # Left unset, the count is refused the same way rather than failing inside the builder.
    with pytest.raises(pulumi.InputPropertyError, match="odd number, not 0"):
        VaultClusterArgs(plan(None))
    assert VaultClusterArgs(plan(3)).plan.names.replicas == 3
