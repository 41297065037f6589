"""How `pulumi up` and clients reach the API in prod: an internal load balancer by default, its
hostname exported, optionally a DNS record for the address, and an address the certificate covers."""

from __future__ import annotations

import types

import pytest

from components.resources.cluster import load_balancer_host
from tests.harness import run_stack

SERVICE = "kubernetes:core/v1:Service"
INIT = "pulumi-python:dynamic:Resource"


def _api_service(rec):
    return rec.one(SERVICE, "vault-cluster-api")


def test_prod_exports_the_load_balancer_hostname():
    rec = run_stack("prod")
    assert "apiLoadBalancerHostname" in rec.exports
    assert "apiLoadBalancerHostname" not in run_stack("dev").exports


def test_the_hostname_is_read_from_the_service_status_in_either_shape():
    status = {"loadBalancer": {"ingress": [{"hostname": "k8s-vault-abc.elb.eu-west-1.amazonaws.com"}]}}
    assert load_balancer_host(status) == "k8s-vault-abc.elb.eu-west-1.amazonaws.com"
    typed = types.SimpleNamespace(load_balancer=types.SimpleNamespace(
        ingress=[types.SimpleNamespace(hostname=None, ip="10.0.3.4")]))
    assert load_balancer_host(typed) == "10.0.3.4"
    assert load_balancer_host(None) == "" and load_balancer_host({"loadBalancer": {}}) == ""


def test_prod_load_balancer_is_internal():
    annotations = _api_service(run_stack("prod")).get("metadata.annotations")
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-internal"] == "true"


def test_prod_refuses_an_internet_facing_api_unless_it_is_intended():
    rec = run_stack("prod", {"api": {"internalLoadBalancer": False}}, expect_error=True)
    assert "vault-platform:api.internalLoadBalancer: false would put Vault's API on an internet-facing" in rec.error
    assert [r for r in rec.resources if r.type != "pulumi:pulumi:Stack"] == []
    rec = run_stack("prod", {"api": {"internalLoadBalancer": False, "publicExposureIntended": True}})
    annotations = _api_service(rec).get("metadata.annotations")
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    assert "service.beta.kubernetes.io/aws-load-balancer-internal" not in annotations


def test_public_exposure_is_only_a_setting_of_a_public_load_balancer():
    rec = run_stack("prod", {"api": {"publicExposureIntended": True}}, expect_error=True)
    assert "vault-platform:api.publicExposureIntended: has no effect: it only confirms an internet-facing" in rec.error


def test_external_dns_annotates_the_api_service():
    rec = run_stack("prod", {"api": {"dns": {"record": "externalDns", "ttl": 120}}})
    annotations = _api_service(rec).get("metadata.annotations")
    assert annotations["external-dns.alpha.kubernetes.io/hostname"] == "vault.internal.example.com"
    assert annotations["external-dns.alpha.kubernetes.io/ttl"] == "120"
    assert rec.of_type("aws:route53/record:Record") == []


def test_route53_record_points_the_address_at_the_load_balancer_before_init():
    rec = run_stack("prod", {"api": {"dns": {"record": "route53", "route53ZoneId": "Z0123456789ABC"}}})
    record = rec.one("aws:route53/record:Record")
    assert record.get("zoneId") == "Z0123456789ABC" and record.get("name") == "vault.internal.example.com"
    assert record.get("type") == "CNAME" and record.get("ttl") == 60 and record.get("allowOverwrite") is False
    assert rec.provider_of(record).type == "pulumi:providers:aws"
    # VaultInit reaches Vault by that name: it waits for the record.
    assert rec.depends_on(rec.one(INIT, "vault-bootstrap-init"), record)


@pytest.mark.parametrize(("api", "key", "needle"), [
    ({"dns": {"record": "route53"}}, "api.dns.route53ZoneId", "is required when api.dns.record is route53"),
    ({"dns": {"record": "route53", "route53ZoneId": "zone-1"}}, "api.dns.route53ZoneId",
     "is not a Route 53 hosted zone id"),
    ({"dns": {"route53ZoneId": "Z0123456789ABC"}}, "api.dns.route53ZoneId", "has no effect: api.dns.record is"),
    ({"serviceType": "ClusterIP", "dns": {"record": "externalDns"}}, "api.dns.record", "needs api.serviceType"),
    ({"address": "https://vault.elsewhere.example.com:8200"}, "api.address", "is not in the server certificate"),
])
def test_reachability_mistakes_are_refused_before_any_resource(api, key, needle):
    rec = run_stack("prod", {"api": api}, expect_error=True)
    assert f"vault-platform:{key}" in rec.error and needle in rec.error, rec.error
    assert [r for r in rec.resources if r.type != "pulumi:pulumi:Stack"] == []


def test_an_ip_address_in_the_certificate_makes_an_ip_api_address_valid():
    overrides = {"api": {"address": "https://10.0.12.7:8200"}, "tls": {"extraIpAddresses": ["10.0.12.7"]}}
    rec = run_stack("prod", overrides)
    cert = rec.one("kubernetes:cert-manager.io/v1:Certificate", "vault-cluster-tls-pair-certificate")
    assert cert.get("spec.ipAddresses") == ["127.0.0.1", "10.0.12.7"]
    rec = run_stack("prod", {"api": {"address": "https://10.0.12.7:8200"}}, expect_error=True)
    assert "'10.0.12.7' is not in the server certificate" in rec.error
    rec = run_stack("prod", {"tls": {"extraIpAddresses": ["10.0.12"]}}, expect_error=True)
    assert "vault-platform:tls.extraIpAddresses" in rec.error and "is not an IP address" in rec.error


def test_a_wildcard_name_in_the_certificate_covers_one_label():
    ok = run_stack("prod", {"api": {"address": "https://vault.corp.example.com:8200"},
                            "tls": {"extraDnsNames": ["*.corp.example.com"]}})
    assert ok.error is None
    bad = run_stack("prod", {"api": {"address": "https://a.vault.corp.example.com:8200"},
                             "tls": {"extraDnsNames": ["*.corp.example.com"]}}, expect_error=True)
    assert "is not in the server certificate" in bad.error


@pytest.mark.parametrize("overrides", [{}, {"api": {"dns": {"record": "route53", "route53ZoneId": "Z0123456789ABC"}}}])
def test_the_deployer_policy_covers_every_aws_resource_the_stack_declares(overrides):
    from components.render.iam import DEPLOYER_ACTIONS, deployer_policy

    rec = run_stack("prod", overrides)
    types = sorted({r.type for r in rec.resources if r.type.startswith("aws:") and r.custom})
    assert types and set(types) <= set(DEPLOYER_ACTIONS)
    actions = deployer_policy(types)["Statement"][0]["Action"]
    assert "eks:DescribeCluster" in actions and "kms:PutKeyPolicy" in actions
    assert not any(a.endswith(":*") for a in actions)
    with pytest.raises(ValueError, match="no deployer permissions known"):
        deployer_policy([*types, "aws:ec2/instance:Instance"])
