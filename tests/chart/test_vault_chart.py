"""The hashicorp/vault chart rendered with the program's values: every object valid for Kubernetes,
and what the chart builds agreeing with what the rest of the stack assumes about it (the server
config's files on the mounts, the ports the probes and Services use, the names clients dial in the
certificate, the injector's certificate and settings, the unseal role on the service account).

The committed chart facts (tests/facts, test_cluster.py) stay as the quick check of value paths and
types; these tests see what those cannot: what the chart's templates make of the values.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import hcl
import kubernetes_validate
import pytest
import yaml

from components.model.checks import name_covers
from components.model.names import API_PORT, CLUSTER_PORT, INJECTION_LABEL, INJECTION_LABEL_VALUE
from components.render.helm_values import LIVENESS_PATH, READINESS_PATH
from components.render.tls_objects import CERT_MANAGER_API
from tests.chart.conftest import KUBE_VERSIONS, VARIANTS, Rendered
from tests.harness.fakes import fake_outputs
from tests.helm import chart_version

pytestmark = pytest.mark.chart

CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}
# Labels Vault's own service registration ("kubernetes") puts on its pods at run time; the chart's
# active and standby Services select on them.
RUNTIME_LABELS = {"vault-active", "vault-initialized", "vault-perf-standby", "vault-sealed", "vault-version"}
# The label the StatefulSet controller gives each pod (dev's per-pod unseal Services select on it).
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
SECRET = "kubernetes:core/v1:Secret"
CERTIFICATE_PAIR = "vault-platform:tls:CertificatePair"
LOCAL_TLS = "pulumi-python:dynamic/tls:LocalTls"
# What cert-manager writes into a Certificate's Secret (type kubernetes.io/tls): the chain and the key,
# and ca.crt when the issuer is a CA Issuer (an issuer of the operator's may not say its CA).
CERT_MANAGER_KEYS = {"tls.crt", "tls.key"}
CERT_MANAGER_CA_KEY = "ca.crt"


def _server(r: Rendered) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the server StatefulSet, its vault container)."""
    sts = r.one("StatefulSet", r.names.release)
    [container] = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "vault"]
    return sts, container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _hcl(r: Rendered) -> dict[str, Any]:
    data = r.one("ConfigMap", f"{r.names.release}-config")["data"]
    return hcl.loads(data["extraconfig-from-values.hcl"])


def _recorded_secret(r: Rendered, name: str) -> Any:
    """The Secret the stack declares under ``name`` in the Vault namespace, or None."""
    found = [s for s in r.rec.of_type(SECRET)
             if s.get("metadata.name") == name and s.get("metadata.namespace") == r.names.namespace]
    assert len(found) <= 1, f"the stack declares {len(found)} Secrets {name!r} in {r.names.namespace!r}"
    return found[0] if found else None


@dataclass(frozen=True)
class Pair:
    """A certificate pair as the chart's pods get it: the files of its Secret, what the certificate
    names, and the CA the stack reads back (for clients and the webhook's caBundle)."""

    secret_type: str
    secret_keys: frozenset[str]
    dns_names: list[str]
    ip_addresses: list[str]
    ca_cert_pem: str


def _pair(r: Rendered, secret_name: str) -> Pair:
    """The stack's certificate pair whose Secret is ``secret_name``: LocalTls's keys in a Secret the
    stack declares (generated), or a Certificate cert-manager issues into that Secret (certManager)."""
    pairs = [p for p in r.rec.of_type(CERTIFICATE_PAIR) if p.outputs.get("secret_name") == secret_name]
    assert len(pairs) == 1, f"no certificate pair of the stack fills the Secret {secret_name!r} the chart mounts"
    [pair] = pairs
    children = [c for c in r.rec.resources if c.parent == pair.urn]
    ca = pair.outputs.get("ca_cert_pem") or ""
    local = [c for c in children if c.type == LOCAL_TLS]
    if local:
        [keys] = local
        secret = _recorded_secret(r, secret_name)
        assert secret is not None and secret.parent == pair.urn, (
            f"the stack declares no Secret {secret_name!r} in {r.names.namespace!r} for the chart to mount")
        files = set(secret.get("stringData", None) or {}) | set(secret.get("data", None) or {})
        return Pair(secret.get("type"), frozenset(files), keys.get("dns_names"), keys.get("ip_addresses", []), ca)
    [certificate] = [c for c in children if c.type == f"kubernetes:{CERT_MANAGER_API}:Certificate"
                     and c.get("spec.secretName") == secret_name]
    assert certificate.get("metadata.namespace") == r.names.namespace, "cert-manager writes the Secret beside it"
    issuer = certificate.get("spec.issuerRef")
    own_ca = [c for c in children if c.type == f"kubernetes:{CERT_MANAGER_API}:Issuer" and issuer["kind"] == "Issuer"
              and c.get("metadata.name") == issuer["name"] and "ca" in c.get("spec")]
    files = CERT_MANAGER_KEYS | ({CERT_MANAGER_CA_KEY} if own_ca else set())
    return Pair("kubernetes.io/tls", frozenset(files), certificate.get("spec.dnsNames"),
                certificate.get("spec.ipAddresses", []), ca)


def _files_of_volume(r: Rendered, volume: dict[str, Any]) -> set[str]:
    """The file names a Secret volume shows in the pod: its items, or every key of the Secret."""
    secret = volume["secret"]
    if secret.get("items"):
        return {item["path"] for item in secret["items"]}
    name = secret["secretName"]
    if any(p.outputs.get("secret_name") == name for p in r.rec.of_type(CERTIFICATE_PAIR)):
        return set(_pair(r, name).secret_keys)
    declared = _recorded_secret(r, name)
    assert declared is not None, (
        f"the stack declares no Secret {name!r} in {r.names.namespace!r} for the chart to mount")
    return set(declared.get("stringData", None) or {}) | set(declared.get("data", None) or {})


def _mounted_file(r: Rendered, pod: dict[str, Any], container: dict[str, Any], path: str) -> tuple[str, str]:
    """(volume name, file name) of the file at ``path`` in the container; fails when it is not there."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix) and mount["name"] in volumes and "secret" in volumes[mount["name"]]:
            name = path[len(prefix):]
            assert name in _files_of_volume(r, volumes[mount["name"]]), (
                f"{path}: the volume {mount['name']!r} mounted at {mount['mountPath']} has no file {name!r}")
            return mount["name"], name
    raise AssertionError(f"{path} is on no Secret volume of the {container['name']} container")


def _certificate(r: Rendered) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) of the server certificate the stack has made."""
    pair = _pair(r, r.names.tls_secret)
    return pair.dns_names, pair.ip_addresses


def _covered(r: Rendered, host: str) -> bool:
    dns, ips = _certificate(r)
    return host in ips or any(name_covers(name, host) for name in dns)


def _service_of_host(r: Rendered, host: str) -> dict[str, Any] | None:
    """The chart's Service a cluster DNS name resolves through (<service>[.<namespace>[.svc...]] or
    <pod>.<headless service>...), or None for a name outside the cluster."""
    labels = host.split(".")
    services = {s["metadata"]["name"]: s for s in r.of_kind("Service")}
    namespace = r.names.namespace
    if labels[0] in services and (len(labels) == 1 or labels[1] == namespace):
        return services[labels[0]]
    if len(labels) > 1 and labels[1] in services and (len(labels) == 2 or labels[2] == namespace):
        return services[labels[1]]
    return None


# --- the chart takes the values ------------------------------------------------------------------------

def test_the_release_installs_the_chart_these_tests_render(rendered):
    assert rendered.release.get("version") == chart_version()
    assert rendered.release.get("name") == rendered.names.release
    assert rendered.release.get("namespace") == rendered.names.namespace
    kinds = {o["kind"] for o in rendered.objects}
    assert {"StatefulSet", "ConfigMap", "Service", "PodDisruptionBudget", "ServiceAccount"} <= kinds
    for obj in rendered.objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == rendered.names.namespace, obj["metadata"]["name"]


def test_helm_warns_only_where_a_map_of_ours_replaces_a_template_string_of_the_chart(rendered, helm_tools):
    """Helm warns when it merges a value of another type over the chart's default. The only ones
    allowed: keys whose default is a template string (affinity) that the program replaces with a map."""
    _, chart = helm_tools
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    for warning in rendered.warnings:
        match = re.search(r"destination for vault\.(\S+) is a table\. Ignoring non-table value", warning)
        assert match, f"helm warned: {warning}"
        path = match.group(1).split(".")
        ours: Any = rendered.values
        theirs: Any = defaults
        for part in path:
            ours, theirs = ours[part], theirs[part]
        assert isinstance(ours, dict) and isinstance(theirs, str), warning


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_rendered_object_passes_the_kubernetes_schema(render, variant, kube_version):
    rendered = render(variant, kube_version)
    assert rendered.objects
    for obj in rendered.objects:
        kubernetes_validate.validate(obj, kube_version.rsplit(".", 1)[0], strict=True)


# --- the server: config, files, ports, probes -------------------------------------------------------------

def test_the_config_map_holds_the_programs_server_config(rendered):
    cm = rendered.one("ConfigMap", f"{rendered.names.release}-config")
    # The chart writes it as a YAML block that drops the final newline.
    assert cm["data"]["extraconfig-from-values.hcl"] == rendered.values["server"]["ha"]["raft"]["config"].rstrip("\n")
    sts, container = _server(rendered)
    # The pod starts from that file (the chart copies it before substituting the pod's addresses).
    assert "/vault/config/extraconfig-from-values.hcl" in container["args"][0]
    config_mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert config_mount["mountPath"] == "/vault/config"
    config_volume = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    assert config_volume["configMap"]["name"] == cm["metadata"]["name"]


def test_every_file_the_server_config_names_is_mounted_from_the_stacks_secrets(rendered):
    sts, container = _server(rendered)
    pod = sts["spec"]["template"]["spec"]
    config = _hcl(rendered)
    listener = config["listener"]["tcp"]
    files = [listener["tls_cert_file"], listener["tls_key_file"], listener["tls_client_ca_file"]]
    joins = config["storage"]["raft"]["retry_join"]
    files += [j["leader_ca_cert_file"] for j in (joins if isinstance(joins, list) else [joins])]
    seal = config.get("seal", {})
    if "transit" in seal:
        files.append(seal["transit"]["tls_ca_cert"])
    mounted = {path: _mounted_file(rendered, pod, container, path) for path in files}
    # The certificate, its key and the CA come from the Secret the stack's certificate pair fills.
    tls_volume = next(v for v in pod["volumes"] if v["name"] == mounted[listener["tls_cert_file"]][0])
    assert tls_volume["secret"]["secretName"] == rendered.names.tls_secret
    assert _pair(rendered, rendered.names.tls_secret).secret_type == "kubernetes.io/tls"
    assert "transit" in seal or "vault-unseal" not in {v["name"] for v in pod["volumes"]}


def test_raft_data_and_the_audit_log_are_on_the_volumes_the_chart_claims(rendered):
    sts, container = _server(rendered)
    claims = {c["metadata"]["name"]: c for c in sts["spec"]["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert _hcl(rendered)["storage"]["raft"]["path"] == mounts["data"] and "data" in claims
    assert claims["data"]["spec"]["resources"]["requests"]["storage"] == rendered.config.cluster.data_storage.size
    [audit_file] = [a.get("options.file_path") for a in rendered.rec.of_type("vault:index/audit:Audit")
                    if a.get("type") == "file" and a.get("options.file_path") != "stdout"]
    assert "audit" in claims and audit_file.startswith(mounts["audit"].rstrip("/") + "/")
    assert claims["audit"]["spec"]["resources"]["requests"]["storage"] == rendered.config.cluster.audit_storage.size


def test_the_server_listens_where_the_probes_and_the_services_point(rendered):
    sts, container = _server(rendered)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    listener = _hcl(rendered)["listener"]["tcp"]
    assert int(listener["address"].rsplit(":", 1)[1]) == ports["https"] == API_PORT
    assert int(listener["cluster_address"].rsplit(":", 1)[1]) == ports["https-internal"] == CLUSTER_PORT
    # TLS on the listener, so the probes speak HTTPS to it, on the paths the program chose.
    assert "tls_disable" not in listener
    for probe, path in (("readinessProbe", READINESS_PATH), ("livenessProbe", LIVENESS_PATH)):
        get = container[probe]["httpGet"]
        assert (get["scheme"], get["port"], get["path"]) == ("HTTPS", API_PORT, path), probe
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # The chart's Services for the servers, and the stack's own API Service.
    services = [s for s in [*rendered.of_kind("Service"),
                            *(r.inputs for r in rendered.rec.of_type("kubernetes:core/v1:Service"))]
                if s["metadata"].get("namespace") == rendered.names.namespace
                and s["spec"].get("selector", {}).get("component") == "server"]
    release = rendered.names.release
    assert {release, rendered.names.active_service, rendered.names.internal_service, f"{release}-standby",
            rendered.names.api_service} <= {s["metadata"]["name"] for s in services}
    for service in services:
        name = service["metadata"]["name"]
        selector = service["spec"]["selector"]
        static = {k: v for k, v in selector.items() if k not in RUNTIME_LABELS and k != POD_NAME_LABEL}
        assert static.items() <= pod_labels.items(), f"Service {name} selects no server pod"
        if POD_NAME_LABEL in selector:
            assert selector[POD_NAME_LABEL] in {f"{release}-{i}" for i in range(sts["spec"]["replicas"])}, name
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert int(target) in ports.values() if not isinstance(target, str) else target in ports, name
    # The selectors on labels only Vault sets work because Vault registers itself with Kubernetes.
    assert "kubernetes" in _hcl(rendered)["service_registration"]


def test_the_disruption_budget_keeps_a_quorum_and_covers_the_server_pods(rendered):
    sts, _ = _server(rendered)
    replicas = rendered.config.cluster.replicas
    assert sts["spec"]["replicas"] == replicas
    pdb = rendered.one("PodDisruptionBudget", rendered.names.release)
    assert pdb["spec"]["maxUnavailable"] == max(1, (replicas - 1) // 2)
    assert replicas - pdb["spec"]["maxUnavailable"] > replicas // 2 or replicas == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()


def test_the_network_policy_lets_the_pods_talk_on_the_ports_they_listen_on(rendered):
    sts, container = _server(rendered)
    policies = rendered.rec.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    if not rendered.config.cluster.network_policy.enabled:
        assert policies == []
        return
    [policy] = policies
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert policy.get("spec.podSelector.matchLabels").items() <= pod_labels.items()
    ports = {p["containerPort"] for p in container["ports"]}
    for rule in policy.get("spec.ingress"):
        assert {int(p["port"]) for p in rule["ports"]} <= ports
        for peer in rule.get("from", []):
            if "podSelector" in peer and "namespaceSelector" not in peer:
                assert peer["podSelector"]["matchLabels"].items() <= pod_labels.items()


# --- names and the certificate --------------------------------------------------------------------------

def test_every_name_a_client_dials_is_a_rendered_service_and_in_the_server_certificate(rendered):
    _, container = _server(rendered)
    env = _env(container)
    hosts = {"the pods' own CLI (VAULT_ADDR)": urlsplit(env["VAULT_ADDR"]).hostname,
             "api.address": urlsplit(rendered.config.api.address).hostname}
    # Raft peers reach each other as <pod>.<headless service>, the name Vault is told to advertise.
    cluster_addr = env["VAULT_CLUSTER_ADDR"]
    assert "$(HOSTNAME)" in cluster_addr and env["HOSTNAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    for i in range(rendered.config.cluster.replicas):
        pod_addr = cluster_addr.replace("$(HOSTNAME)", f"{rendered.names.release}-{i}")
        hosts[f"raft peer {i}"] = urlsplit(pod_addr).hostname
    joins = _hcl(rendered)["storage"]["raft"]["retry_join"]
    for join in joins if isinstance(joins, list) else [joins]:
        hosts[f"retry_join {join['leader_api_addr']}"] = join["leader_tls_servername"]
        assert urlsplit(join["leader_api_addr"]).hostname == join["leader_tls_servername"]
    if rendered.of_kind("Deployment"):
        injector_env = _env(rendered.one("Deployment", f"{rendered.names.release}-agent-injector")["spec"]["template"]
                            ["spec"]["containers"][0])
        hosts["the injector's agents"] = urlsplit(injector_env["AGENT_INJECT_VAULT_ADDR"]).hostname
    for job in rendered.rec.of_type("kubernetes:batch/v1:CronJob"):
        for c in job.get("spec.jobTemplate.spec.template.spec.containers"):
            for e in c.get("env", []):
                if e["name"] == "VAULT_ADDR":
                    hosts[f"the {job.get('metadata.name')} job"] = urlsplit(e["value"]).hostname
    for monitor in rendered.rec.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor"):
        for endpoint in monitor.get("spec.endpoints"):
            hosts["the ServiceMonitor"] = endpoint["tlsConfig"]["serverName"]
    assert len(hosts) > 4
    for who, host in hosts.items():
        assert _covered(rendered, host), f"{who} dials {host}, which the server certificate does not carry"
        if who != "api.address" and host != "127.0.0.1":
            assert _service_of_host(rendered, host) is not None, f"{who} dials {host}: no rendered Service"


def test_the_service_monitor_scrapes_a_rendered_service_by_its_port_name(rendered):
    monitors = rendered.rec.of_type("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    if not rendered.config.cluster.service_monitor:
        assert monitors == []
        return
    [monitor] = monitors
    selector = monitor.get("spec.selector.matchLabels")
    matched = [s for s in rendered.of_kind("Service") if selector.items() <= s["metadata"]["labels"].items()]
    assert matched, f"the ServiceMonitor's selector {selector} matches no Service the chart renders"
    for service in matched:
        names = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor.get("spec.endpoints")} <= names
        # A headless Service: the monitor reaches every pod, not one behind a virtual IP.
        assert service["spec"].get("clusterIP") == "None"
    [endpoint] = monitor.get("spec.endpoints")
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": rendered.names.tls_secret, "key": "ca.crt"}


def test_the_cli_in_the_pods_and_the_backup_job_trust_the_ca_the_server_uses(rendered):
    sts, container = _server(rendered)
    pod = sts["spec"]["template"]["spec"]
    env = _env(container)
    volume, name = _mounted_file(rendered, pod, container, env["VAULT_CACERT"])
    assert name == "ca.crt"
    listener = _hcl(rendered)["listener"]["tcp"]
    assert _mounted_file(rendered, pod, container, listener["tls_client_ca_file"]) == (volume, name)
    server_secret = next(v for v in pod["volumes"] if v["name"] == volume)["secret"]["secretName"]
    for job in rendered.rec.of_type("kubernetes:batch/v1:CronJob"):
        volumes = {v["name"]: v for v in job.get("spec.jobTemplate.spec.template.spec.volumes")}
        secrets = {v["secret"]["secretName"] for v in volumes.values() if "secret" in v}
        assert server_secret in secrets


# --- unseal ---------------------------------------------------------------------------------------------------

def test_the_server_pods_run_as_the_service_account_the_unseal_setup_expects(rendered):
    sts, container = _server(rendered)
    account = sts["spec"]["template"]["spec"]["serviceAccountName"]
    sa = rendered.one("ServiceAccount", account)
    assert account == rendered.names.service_account
    annotations = sa["metadata"].get("annotations") or {}
    roles = [r for r in rendered.rec.of_type("aws:iam/role:Role") if r.name.endswith("-unseal-irsa")]
    if rendered.config.unseal.type != "awskms":
        assert roles == [] and "eks.amazonaws.com/role-arn" not in annotations
    else:
        [role] = roles
        arn = fake_outputs("aws:iam/role:Role", role.name, role.inputs)["arn"]
        assert annotations["eks.amazonaws.com/role-arn"] == arn
        assert f"system:serviceaccount:{rendered.names.namespace}:{account}" in role.get("assumeRolePolicy")
        seal = _hcl(rendered)["seal"]["awskms"]
        assert seal["region"] == rendered.config.aws.region
    if rendered.config.unseal.type == "transit":
        # The token reaches the server only as an environment variable from a Secret: the operator's
        # own where one is named (prod: the stack never holds it), else the stack's unseal Secret.
        ref = _env(container)["VAULT_TOKEN"]["secretKeyRef"]
        stacks = _recorded_secret(rendered, rendered.names.unseal_secret).get("stringData")
        if rendered.config.unseal.transit.token_secret:
            assert ref == {"name": rendered.config.unseal.transit.token_secret, "key": "VAULT_TOKEN"}
            assert "VAULT_TOKEN" not in stacks
        else:
            assert ref["name"] == rendered.names.unseal_secret and ref["key"] in stacks
        assert "token" not in _hcl(rendered)["seal"]["transit"]


# --- the agent injector ------------------------------------------------------------------------------------

def test_the_injector_serves_with_the_stacks_certificate_and_settings(rendered):
    injector = rendered.config.cluster.injector
    deployments = rendered.of_kind("Deployment")
    if not injector.enabled:
        assert deployments == [] and rendered.of_kind("MutatingWebhookConfiguration") == []
        return
    deployment = rendered.one("Deployment", f"{rendered.names.release}-agent-injector")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = _env(container)
    assert deployment["spec"]["replicas"] == (injector.replicas or (2 if rendered.config.is_prod else 1))
    # Its serving certificate: the Secret the stack's InjectorTls fills, by file name.
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == rendered.names.injector_tls_secret
    pair = _pair(rendered, rendered.names.injector_tls_secret)
    assert pair.secret_type == "kubernetes.io/tls"
    for key in ("AGENT_INJECT_TLS_CERT_FILE", "AGENT_INJECT_TLS_KEY_FILE"):
        _mounted_file(rendered, pod, container, env[key])
    assert "AGENT_INJECT_TLS_AUTO" not in env, "the injector would make certificates of its own"
    webhook_config = rendered.one("MutatingWebhookConfiguration")
    [webhook] = webhook_config["webhooks"]
    service = webhook["clientConfig"]["service"]
    assert rendered.one("Service", service["name"])["spec"]["selector"].items() <= (
        pod_labels := deployment["spec"]["template"]["metadata"]["labels"]).items()
    assert pod_labels
    assert f"{service['name']}.{service['namespace']}.svc" in pair.dns_names
    # The API server trusts the CA of the injector's own pair, as the stack read it back.
    assert pair.ca_cert_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert base64.b64decode(webhook["clientConfig"]["caBundle"]).decode() == pair.ca_cert_pem
    # Only namespaces the stack labels for it; what happens to a pod it cannot serve.
    assert webhook["namespaceSelector"] == {"matchLabels": {INJECTION_LABEL: INJECTION_LABEL_VALUE}}
    assert webhook["failurePolicy"] == (injector.failure_policy or ("Fail" if rendered.config.is_prod else "Ignore"))
    labelled = [n for n in [*rendered.rec.of_type("kubernetes:core/v1:Namespace"),
                            *rendered.rec.of_type("kubernetes:core/v1:NamespacePatch")]
                if (n.get("metadata.labels", {}) or {}).get(INJECTION_LABEL) == INJECTION_LABEL_VALUE]
    injected = {app.namespace for app in rendered.config.applications if app.delivery == "injector"}
    assert injected <= {n.get("metadata.name") for n in labelled}
    # Agents log in where the stack enables Kubernetes auth, and run the servers' image.
    auth = [a for a in rendered.rec.of_type("vault:index/authBackend:AuthBackend") if a.get("type") == "kubernetes"]
    assert env["AGENT_INJECT_VAULT_AUTH_PATH"] == f"auth/{auth[0].get('path')}"
    image = rendered.config.cluster.image
    assert env["AGENT_INJECT_VAULT_IMAGE"] == f"{image.repository}:{image.tag}"
    _, server = _server(rendered)
    assert server["image"] == f"{image.repository}:{image.tag}"
