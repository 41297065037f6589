"""The guardrails' logic: pure functions over what the Pulumi engine shows a policy pack.

Every check takes plain data (a resource's type, name, properties and options, or every resource of
the stack) and returns Violations that name the resource and the property at fault. Nothing here
imports Pulumi, reads a file or the network, so the tests run each check against the resources the
program registers, and another team can import this module into its own pack. ``__main__.py`` only
wraps each entry of ``RULES`` in a pulumi_policy policy.

Values the engine does not know yet (in a preview, an input computed from another resource's
output) arrive as ``UNKNOWN``. A check never guesses about them: it judges what is known and leaves
the rest to `pulumi up`, where the engine runs the pack again on the final inputs before it creates
or updates the resource.

Messages never repeat a property's value where it could be a secret: they name where it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The engine loads the pack with its folder on sys.path (``import rules``); the tests and other
# teams' packs import the package (``from policy import rules``).
if __package__:
    from .hcl_reader import HclError, attrs, blocks, parse_hcl
else:
    from hcl_reader import HclError, attrs, blocks, parse_hcl


# --- what a check sees and says -----------------------------------------------------------------


class _Unknown:
    """A value the engine cannot know during a preview."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


def is_unknown(value: Any) -> bool:
    return isinstance(value, _Unknown)


@dataclass(frozen=True)
class Options:
    """The resource options a check may use. The engine hands a policy ``protect`` and ``parent``
    but not ``retain_on_delete``; None means the caller does not know it, and no check fails on it."""

    protect: bool = False
    retain_on_delete: bool | None = None
    parent: str | None = None


@dataclass(frozen=True)
class Resource:
    """One resource of the stack, for the checks that look at several at once."""

    type: str
    name: str
    props: Mapping[str, Any]
    options: Options = field(default_factory=Options)
    urn: str = ""
    # URNs this resource depends on: all of them, and per input property.
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    resource_type: str
    resource_name: str
    property: str
    message: str
    urn: str = ""

    def __str__(self) -> str:
        return f"{self.resource_type} {self.resource_name}: {self.property} {self.message}"


ResourceCheck = Callable[[str, str, Mapping[str, Any], Options, Mapping[str, Any]], list[Violation]]
StackCheck = Callable[[Sequence[Resource], Mapping[str, Any]], list[Violation]]


@dataclass(frozen=True)
class Rule:
    """One policy: its name, why it exists (the description the engine prints with a violation),
    its check, and the settings it takes from the pack's config (a JSON schema per setting)."""

    name: str
    description: str
    check: ResourceCheck | StackCheck
    stack: bool = False
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class _Reporter:
    """Collects the violations of one resource."""

    def __init__(self, resource_type: str, name: str, urn: str = ""):
        self.resource_type, self.name, self.urn = resource_type, name, urn
        self.found: list[Violation] = []

    def __call__(self, prop: str, message: str) -> None:
        self.found.append(Violation(self.resource_type, self.name, prop, message, self.urn))


# --- reading properties -------------------------------------------------------------------------


def get(data: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted path (``spec.template.spec``); ``default`` when any step is missing.
    An unknown step yields UNKNOWN."""
    value = data
    for part in path.split("."):
        if is_unknown(value):
            return UNKNOWN
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def truthy(value: Any) -> bool:
    """How Vault and Kubernetes read a flag: true, 1, "true", "1"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on")


def falsy(value: Any) -> bool:
    """An explicit false: false, 0, "false", "0"."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value == 0
    return isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


# --- resources the checks recognise -------------------------------------------------------------

HELM_RELEASE_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
VAULT_CHARTS = ("vault", "openbao")
KMS_KEY = "aws:kms/key:Key"
BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ENCRYPTION_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VAULT_POLICY = "vault:index/policy:Policy"
VAULT_AUDIT = "vault:index/audit:Audit"
KUBERNETES_ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
SERVICE_TYPES = ("kubernetes:core/v1:Service", "kubernetes:core/v1:ServicePatch")
CONFIG_MAP_TYPES = ("kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:ConfigMapPatch")
# The labels the chart puts on Vault's server pods; a Service selecting them fronts the API.
VAULT_POD_NAMES = ("vault", "openbao")


def vault_values(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The chart values of a hashicorp/vault (or OpenBao) Helm release, {} when it sets none, UNKNOWN
    when they are not known yet, and None for any other resource."""
    if resource_type not in HELM_RELEASE_TYPES:
        return None
    chart = props.get("chart")
    if not isinstance(chart, str) or chart.rstrip("/").rsplit("/", 1)[-1] not in VAULT_CHARTS:
        return None
    values = props.get("values")
    if is_unknown(values):
        return UNKNOWN
    return values if isinstance(values, Mapping) else {}


def server_config_path(values: Mapping[str, Any]) -> str:
    """Which values key holds the server config the chart will use, by the chart's own logic."""
    if truthy(get(values, "server.ha.enabled", False)):
        if truthy(get(values, "server.ha.raft.enabled", False)):
            return "server.ha.raft.config"
        return "server.ha.config"
    return "server.standalone.config"


def server_config(values: Mapping[str, Any]) -> tuple[str, Any]:
    """(values path, parsed config): None when the chart's default config applies, UNKNOWN when not
    known yet; raises HclError when it cannot be read."""
    path = server_config_path(values)
    raw = get(values, path)
    if raw is None or is_unknown(raw):
        return path, raw
    if isinstance(raw, Mapping):
        return path, raw
    if not isinstance(raw, str):
        raise HclError("is neither HCL text nor an object")
    return path, parse_hcl(raw)


def pod_specs(props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, pod spec) of a Pod, of a workload's pod template, or of a CronJob's job template."""
    for path in ("spec", "spec.template.spec", "spec.jobTemplate.spec.template.spec"):
        spec = get(props, path)
        if isinstance(spec, Mapping) and ("containers" in spec or "initContainers" in spec):
            yield path, spec


def containers(props: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for path, spec in pod_specs(props):
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for i, container in enumerate(_as_list(spec.get(group))):
                if isinstance(container, Mapping):
                    yield f"{path}.{group}[{i}]", container


# --- 1. the API is not internet-facing ----------------------------------------------------------

INTERNAL_LB_ANNOTATIONS = {
    # AWS Load Balancer Controller, then the in-tree AWS controller.
    "service.beta.kubernetes.io/aws-load-balancer-scheme": ("internal",),
    "service.beta.kubernetes.io/aws-load-balancer-internal": ("true", "0.0.0.0/0"),
    "service.beta.kubernetes.io/azure-load-balancer-internal": ("true",),
    "networking.gke.io/load-balancer-type": ("internal",),
    "cloud.google.com/load-balancer-type": ("internal",),
}


def _internal_load_balancer(annotations: Any) -> bool | None:
    """True when annotations keep a load balancer inside the network, None when unknown."""
    if is_unknown(annotations):
        return None
    annotations = annotations if isinstance(annotations, Mapping) else {}
    scheme = annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme")
    if isinstance(scheme, str) and scheme.lower() == "internet-facing":
        return False
    for key, allowed in INTERNAL_LB_ANNOTATIONS.items():
        value = annotations.get(key)
        if is_unknown(value):
            return None
        if isinstance(value, str) and value.lower() in allowed:
            return True
    return False


def _exposure(report: _Reporter, where: str, service_type: Any, annotations: Any, annotations_path: str,
              allow_node_port: bool) -> None:
    if service_type == "LoadBalancer":
        internal = _internal_load_balancer(annotations)
        if internal is False:
            report(annotations_path, "does not make the LoadBalancer internal (e.g. service.beta.kubernetes.io/"
                                     "aws-load-balancer-scheme: internal): Vault's API would face the internet")
    elif service_type == "NodePort" and not allow_node_port:
        report(where, "is NodePort: every node then serves Vault's API on its own address; use an internal "
                      "LoadBalancer or ClusterIP behind your ingress")


def check_api_not_internet_facing(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                                  config: Mapping[str, Any]) -> list[Violation]:
    report = _Reporter(resource_type, name)
    allow_node_port = truthy(config.get("allowNodePort", False))
    values = vault_values(resource_type, props)
    if isinstance(values, Mapping):
        _exposure(report, "values.server.service.type", get(values, "server.service.type"),
                  get(values, "server.service.annotations"), "values.server.service.annotations", allow_node_port)
        if not falsy(get(values, "ui.enabled", False)):
            _exposure(report, "values.ui.serviceType", get(values, "ui.serviceType"),
                      get(values, "ui.annotations"), "values.ui.annotations", allow_node_port)
    if resource_type in SERVICE_TYPES:
        selector = get(props, "spec.selector")
        if isinstance(selector, Mapping) and selector.get("app.kubernetes.io/name") in VAULT_POD_NAMES:
            _exposure(report, "spec.type", get(props, "spec.type"), get(props, "metadata.annotations"),
                      "metadata.annotations", allow_node_port)
            external_ips = get(props, "spec.externalIPs")
            if isinstance(external_ips, list) and external_ips:
                report("spec.externalIPs", "publishes Vault's API on addresses outside the cluster")
    return report.found


# --- 2. TLS on every listener -------------------------------------------------------------------


def check_tls_everywhere(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                         config: Mapping[str, Any]) -> list[Violation]:
    values = vault_values(resource_type, props)
    if not isinstance(values, Mapping):
        return []
    report = _Reporter(resource_type, name)
    tls_disable = get(values, "global.tlsDisable")
    if not is_unknown(tls_disable) and not falsy(tls_disable):
        report("values.global.tlsDisable", "must be false: the chart's default (true) serves the API and Raft "
                                           "over plain HTTP and points every client at http://")
    if truthy(get(values, "server.dev.enabled", False)):
        report("values.server.dev.enabled", "runs Vault in dev mode: in memory, unsealed, without TLS")
    try:
        path, parsed = server_config(values)
    except HclError as err:
        report(f"values.{server_config_path(values)}", f"cannot be read as Vault config ({err}), so its listeners "
                                                       "cannot be checked for TLS")
        return report.found
    if is_unknown(parsed):
        return report.found
    if parsed is None:
        report(f"values.{path}", "is not set: the chart's default server config has a listener with "
                                 "tls_disable = 1")
        return report.found
    for label, listener in blocks(parsed, "listener"):
        if label != "tcp":
            continue
        if any(not falsy(v) for v in attrs(listener, "tls_disable")):
            report(f"values.{path} listener \"tcp\" tls_disable", "turns TLS off for this listener")
        for key in ("tls_cert_file", "tls_key_file"):
            if not any(isinstance(v, str) and v for v in attrs(listener, key)):
                report(f"values.{path} listener \"tcp\" {key}", "is missing: the listener has no certificate to "
                                                                "serve TLS with")
    for key in ("api_addr", "cluster_addr"):
        for value in attrs(parsed, key):
            if isinstance(value, str) and value.startswith("http://"):
                report(f"values.{path} {key}", "advertises a plain http:// address")
    for _, storage in blocks(parsed, "storage"):
        for _, join in blocks(storage, "retry_join", labeled=False):
            for value in attrs(join, "leader_api_addr"):
                if isinstance(value, str) and value.startswith("http://"):
                    report(f"values.{path} storage retry_join leader_api_addr",
                           "joins the Raft cluster over plain HTTP")
    return report.found


# --- 3. KMS keys --------------------------------------------------------------------------------


def _statements(document: Any) -> list[Mapping[str, Any]] | None:
    """The statements of a JSON policy document, or None when it is not one."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return None
    if not isinstance(document, Mapping):
        return None
    statements = [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]
    return statements or None


def _everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" or (isinstance(v, list) and "*" in v) for v in principal.values())
    return False


def check_kms_key(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                  config: Mapping[str, Any]) -> list[Violation]:
    if resource_type != KMS_KEY:
        return []
    report = _Reporter(resource_type, name)
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    rotation = props.get("enableKeyRotation")
    # AWS rotates only symmetric encryption keys; asymmetric and HMAC keys cannot be rotated.
    if spec == "SYMMETRIC_DEFAULT" and not is_unknown(rotation) and not truthy(rotation):
        report("enableKeyRotation", "is not true: the key material is never rotated")
    policy = props.get("policy")
    if not is_unknown(policy):
        statements = _statements(policy)
        if not policy:
            report("policy", "is not set: AWS's default key policy lets every principal of the account whose IAM "
                             "policies allow it use and manage the key; give it an explicit key policy")
        elif statements is None:
            report("policy", "is not a JSON key policy with statements")
        elif any(s.get("Effect") == "Allow" and _everyone(s.get("Principal")) and not s.get("Condition")
                 for s in statements):
            report("policy", "allows every principal ('*') without a condition")
    if not options.protect:
        report("protect", "is not set: `pulumi destroy` or a replacement could delete the key, and with it "
                          "everything it encrypts")
    if options.retain_on_delete is False:
        report("retainOnDelete", "is not set: removing the key from the program would schedule its deletion")
    return report.found


# --- 4. the snapshot bucket ---------------------------------------------------------------------


def _targets(guard: Resource, bucket: Resource) -> bool:
    """Whether a bucket-level resource (public access block, policy, encryption) is for ``bucket``:
    by name when both are known, else by what its ``bucket`` input was computed from."""
    guard_name, bucket_name = guard.props.get("bucket"), bucket.props.get("bucket")
    if isinstance(guard_name, str) and guard_name and isinstance(bucket_name, str) and bucket_name:
        return guard_name == bucket_name
    if bucket.urn and bucket.urn in guard.property_dependencies.get("bucket", ()):
        return True
    return bool(bucket.urn) and "bucket" not in guard.property_dependencies and bucket.urn in guard.dependencies


def _denies_insecure_transport(statements: list[Mapping[str, Any]]) -> bool:
    for s in statements:
        if s.get("Effect") != "Deny":
            continue
        actions = _as_list(s.get("Action"))
        if not any(a in ("*", "s3:*") for a in actions):
            continue
        condition = s.get("Condition") if isinstance(s.get("Condition"), Mapping) else {}
        for operator in ("Bool", "BoolIfExists"):
            test = condition.get(operator)
            if isinstance(test, Mapping) and falsy(test.get("aws:SecureTransport")):
                return True
    return False


def check_bucket_locked_down(resources: Sequence[Resource], config: Mapping[str, Any]) -> list[Violation]:
    found: list[Violation] = []
    for bucket in (r for r in resources if r.type in BUCKET_TYPES):
        report = _Reporter(bucket.type, bucket.name, bucket.urn)
        acl = bucket.props.get("acl")
        if isinstance(acl, str) and acl.startswith(("public-", "authenticated-")):
            report("acl", f"is {acl!r}: the bucket's objects are readable beyond the account")

        blocks_ = [r for r in resources if r.type == PUBLIC_ACCESS_BLOCK and _targets(r, bucket)]
        if not blocks_:
            report("public access block", f"is missing: declare an {PUBLIC_ACCESS_BLOCK} for the bucket that "
                                          "blocks public ACLs and policies")
        for block in blocks_:
            for key in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
                value = block.props.get(key)
                if not is_unknown(value) and not truthy(value):
                    found.append(Violation(block.type, block.name, key, f"is not true for bucket {bucket.name}: "
                                           "a public ACL or policy could expose the snapshots", block.urn))

        policies = [r for r in resources if r.type == BUCKET_POLICY and _targets(r, bucket)]
        known = [(p, _statements(p.props.get("policy"))) for p in policies if not is_unknown(p.props.get("policy"))]
        if not policies:
            report("bucket policy", f"is missing: declare an {BUCKET_POLICY} that denies requests without TLS "
                                    "(aws:SecureTransport false)")
        elif known and not any(statements and _denies_insecure_transport(statements) for _, statements in known):
            for policy, _ in known:
                found.append(Violation(policy.type, policy.name, "policy", f"does not deny requests to bucket "
                                       f"{bucket.name} without TLS (Deny s3:* when aws:SecureTransport is false)",
                                       policy.urn))

        encryptions = [r for r in resources if r.type in BUCKET_ENCRYPTION_TYPES and _targets(r, bucket)]
        if not encryptions:
            report("server-side encryption", "is not configured: declare a BucketServerSideEncryptionConfiguration "
                                             "with aws:kms and the bucket's own KMS key")
        for enc in encryptions:
            rules = enc.props.get("rules")
            if is_unknown(rules):
                continue
            defaults = [get(r, "applyServerSideEncryptionByDefault") for r in _as_list(rules)]
            if not any(isinstance(d, Mapping) and d.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse")
                       and d.get("kmsMasterKeyId") for d in defaults):
                found.append(Violation(enc.type, enc.name, "rules[].applyServerSideEncryptionByDefault",
                                       f"does not encrypt bucket {bucket.name} with aws:kms and a key of its own "
                                       "(kmsMasterKeyId), whose key policy decides who reads snapshots", enc.urn))
        found += report.found
    return found


# --- 5. Raft replicas ---------------------------------------------------------------------------


def check_replicas(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                   config: Mapping[str, Any]) -> list[Violation]:
    values = vault_values(resource_type, props)
    if not isinstance(values, Mapping):
        return []
    report = _Reporter(resource_type, name)
    ha = get(values, "server.ha.enabled", False)
    if is_unknown(ha):
        return []
    if not truthy(ha):
        report("values.server.ha.enabled", "is not true: a single Vault server has no failover and no Raft quorum")
        return report.found
    raw = get(values, "server.ha.replicas", 3)  # the chart's default
    if is_unknown(raw):
        return []
    replicas = _number(raw)
    if replicas is None or replicas != int(replicas):
        report("values.server.ha.replicas", "is not a whole number")
        return report.found
    count = int(replicas)
    if count < 3 or count % 2 == 0:
        report("values.server.ha.replicas", f"is {count}: use an odd number, at least 3, so a Raft quorum "
                                            "survives losing a pod (an even count adds no tolerance)")
    required = _number(config.get("requiredReplicas"))
    if required is not None and count != int(required):
        report("values.server.ha.replicas", f"is {count}; this environment requires {int(required)}")
    return report.found


# --- 6. server resources ------------------------------------------------------------------------

REQUIRED_RESOURCES = ("requests.cpu", "requests.memory", "limits.memory")


def check_server_resources(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                           config: Mapping[str, Any]) -> list[Violation]:
    values = vault_values(resource_type, props)
    if not isinstance(values, Mapping):
        return []
    report = _Reporter(resource_type, name)
    parts = ["server"]
    injector = get(values, "injector.enabled", "-")
    # The chart runs the injector unless it (or global.enabled) is turned off.
    if not falsy(injector) and not (injector == "-" and falsy(get(values, "global.enabled", True))):
        parts.append("injector")
    for part in parts:
        resources = get(values, f"{part}.resources")
        if is_unknown(resources):
            continue
        for key in REQUIRED_RESOURCES:
            value = get(resources, key) if isinstance(resources, Mapping) else None
            if value is None or value == "":
                report(f"values.{part}.resources.{key}", "is not set: without requests the scheduler may pack "
                       "Vault onto a starved node, and without a memory limit one pod can exhaust it")
    return report.found


# --- 7. pinned images ---------------------------------------------------------------------------

FLOATING_TAGS = ("", "latest", "stable", "edge", "main", "master", "nightly", "dev", "canary")


def image_problem(image: Any) -> str | None:
    """Why an image reference is not pinned, or None."""
    if is_unknown(image):
        return None
    if not isinstance(image, str) or not image:
        return "names no image"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else None
    if tag is None:
        return "has no tag, so it follows 'latest'"
    if tag.lower() in FLOATING_TAGS:
        return f"uses the floating tag {tag!r}"
    return None


def _image_maps(value: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every image map (``{repository, tag}``) in the chart values."""
    if isinstance(value, Mapping):
        if "repository" in value:
            yield path, value
        for key, inner in value.items():
            yield from _image_maps(inner, f"{path}.{key}")


def check_images_pinned(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                        config: Mapping[str, Any]) -> list[Violation]:
    report = _Reporter(resource_type, name)
    values = vault_values(resource_type, props)
    if isinstance(values, Mapping):
        server_image = get(values, "server.image")
        if not is_unknown(server_image) and (not isinstance(server_image, Mapping) or "tag" not in server_image):
            report("values.server.image.tag", "is not set: pin the Vault version in the stack, so an upgrade is a "
                                              "reviewed change")
        for path, image in _image_maps(values, "values"):
            tag = image.get("tag")
            # Without a tag the chart's default applies, which the pinned chart version fixes.
            if "tag" not in image or is_unknown(tag) or is_unknown(image.get("repository")):
                continue
            problem = image_problem(f"{image.get('repository')}:{tag}")
            if problem:
                report(f"{path}.tag", problem)
    if resource_type.startswith("kubernetes:"):
        for path, container in containers(props):
            problem = image_problem(container.get("image"))
            if problem:
                report(f"{path}.image", problem)
    return report.found


# --- 8. no secret-like values in plain objects --------------------------------------------------
# A key "names a secret" when its last word is a secret word (VAULT_TOKEN, db-password, clientSecret,
# api_key, AWS_SECRET_ACCESS_KEY); a last word such as name, file, path, ref, ttl says the value is
# about a secret (where it is, how long it lives), not the secret itself (secretName, token_ttl).

SECRET_WORDS = frozenset({"token", "tokens", "password", "passwords", "passwd", "pwd", "passphrase", "secret",
                          "secrets", "credential", "credentials", "jwt", "apikey", "privatekey"})
KEY_WORDS = frozenset({"key", "keys"})
KEY_QUALIFIERS = frozenset({"api", "private", "access", "secret", "signing", "encryption", "unseal", "recovery",
                            "master", "client", "ssh", "root", "tls"})
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
# An object's own annotations, and those of the pods it makes.
ANNOTATION_PATHS = ("metadata.annotations", "spec.template.metadata.annotations",
                    "spec.jobTemplate.metadata.annotations", "spec.jobTemplate.spec.template.metadata.annotations")
# The Vault Agent Injector's annotations hold Vault paths, roles and templates: references.
REFERENCE_ANNOTATION_PREFIXES = ("vault.hashicorp.com/",)


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def secret_like_name(name: str) -> bool:
    words = _words(name)
    if not words:
        return False
    last = words[-1]
    if last in SECRET_WORDS:
        return True
    return last in KEY_WORDS and len(words) > 1 and words[-2] in KEY_QUALIFIERS


def private_key(value: Any) -> bool:
    """A PEM private key is a secret whatever its key is called."""
    return isinstance(value, str) and _PRIVATE_KEY.search(value) is not None


def holds_secret_value(value: Any) -> bool:
    """Whether a value under a secret-like name could be the secret itself. Empty values, flags and
    absolute paths (where a secret is mounted) are not; an unknown value is judged as a value."""
    if is_unknown(value):
        return True
    if value is None or isinstance(value, bool):
        return False
    text = str(value).strip()
    if text == "" or text.lower() in ("true", "false"):
        return False
    return not (text.startswith("/") and not any(c.isspace() for c in text))


def _annotation_findings(annotations: Any, path: str, report: _Reporter) -> None:
    if not isinstance(annotations, Mapping):
        return
    for key, value in annotations.items():
        if key.startswith(REFERENCE_ANNOTATION_PREFIXES):
            continue
        if (secret_like_name(key.rsplit("/", 1)[-1]) and holds_secret_value(value)) or private_key(value):
            report(f"{path}[{key!r}]", "holds a secret-like value in plain text in an annotation, which anyone who "
                                       "can read the object sees; keep it in a Secret and reference it")


def _values_findings(value: Any, path: str, report: _Reporter) -> None:
    """Chart values: every ``annotations`` map and every ``extraEnvironmentVars`` (plain env) map."""
    if not isinstance(value, Mapping):
        return
    for key, inner in value.items():
        here = f"{path}.{key}"
        if key == "annotations":
            _annotation_findings(inner, here, report)
        elif key == "extraEnvironmentVars" and isinstance(inner, Mapping):
            for env_name, env_value in inner.items():
                if (secret_like_name(env_name) and holds_secret_value(env_value)) or private_key(env_value):
                    report(f"{here}.{env_name}", "puts a secret-like value in a plain environment variable of the "
                                                 "pod spec; use server.extraSecretEnvironmentVars (a Secret)")
        else:
            _values_findings(inner, here, report)


def check_no_plain_secrets(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                           config: Mapping[str, Any]) -> list[Violation]:
    report = _Reporter(resource_type, name)
    values = vault_values(resource_type, props)
    if isinstance(values, Mapping):
        _values_findings(values, "values", report)
    if not resource_type.startswith("kubernetes:"):
        return report.found
    if resource_type in CONFIG_MAP_TYPES:
        for part in ("data", "binaryData"):
            data = props.get(part)
            if isinstance(data, Mapping):
                for key, value in data.items():
                    if (secret_like_name(key) and holds_secret_value(value)) or private_key(value):
                        report(f"{part}[{key!r}]", "holds a secret-like value in a ConfigMap, which is stored and "
                                                   "shown in plain text; put it in a Secret")
    for path in ANNOTATION_PATHS:
        _annotation_findings(get(props, path), path, report)
    for path, container in containers(props):
        for i, env in enumerate(_as_list(container.get("env"))):
            if not isinstance(env, Mapping) or not isinstance(env.get("name"), str):
                continue
            if "value" in env and ((secret_like_name(env["name"]) and holds_secret_value(env["value"]))
                                   or private_key(env["value"])):
                report(f"{path}.env[{i}].value", f"sets {env['name']} to a literal value in the pod spec; take it "
                                                 "from a Secret (valueFrom.secretKeyRef)")
    return report.found


# --- 9. audit devices ---------------------------------------------------------------------------


def check_audit_enabled(resources: Sequence[Resource], config: Mapping[str, Any]) -> list[Violation]:
    found: list[Violation] = []
    devices = [r for r in resources if r.type == VAULT_AUDIT]
    for device in devices:
        options = device.props.get("options")
        if not isinstance(options, Mapping):
            continue
        if device.props.get("type") == "file" and options.get("file_path") == "discard":
            found.append(Violation(device.type, device.name, "options.file_path", "is 'discard': the device "
                                   "accepts every entry and keeps none", device.urn))
        if truthy(options.get("log_raw", False)):
            found.append(Violation(device.type, device.name, "options.log_raw", "is true: the log would hold "
                                   "tokens and secrets in plain text instead of their HMACs", device.urn))
    if not devices:
        for release in resources:
            if vault_values(release.type, release.props) is not None:
                found.append(Violation(release.type, release.name, f"audit device ({VAULT_AUDIT})",
                                       "is missing: this stack deploys Vault but declares no audit device, so "
                                       "nobody could tell who read which secret", release.urn))
    return found


# --- 10. application policies stay in their own paths -------------------------------------------

APP_POLICY_PREFIX = "app-"
# Policies any role may carry: Vault's own default policy (token self-service).
ALWAYS_ALLOWED_POLICIES = ("default",)
KV_API = ("data", "metadata", "delete", "undelete", "destroy")
KV_CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list"})
# Endpoints that hand one named role's or key's output to a caller, and what using them takes.
CONSUMER_ENDPOINTS = {
    "creds": frozenset({"read"}),
    "issue": frozenset({"create", "update"}),
    "sign": frozenset({"create", "update"}),
    "encrypt": frozenset({"create", "update"}),
    "decrypt": frozenset({"create", "update"}),
    "rewrap": frozenset({"create", "update"}),
    "hmac": frozenset({"create", "update"}),
    "verify": frozenset({"create", "update"}),
}
SYSTEM_MOUNTS = ("sys", "auth", "identity", "cubbyhole")
_TEMPLATED_OWNER = re.compile(r"^\{\{identity\.entity\.aliases\.[^.}]+\.metadata\.service_account_namespace\}\}$")
_TEMPLATED_NAME = re.compile(r"^\{\{identity\.entity\.aliases\.[^.}]+\.metadata\.service_account_name\}\}$")


def policy_rules(text: str) -> list[tuple[str, list[str]]]:
    """(path, capabilities) of every rule of a Vault policy, repeats kept."""
    rules: list[tuple[str, list[str]]] = []
    for path, body in blocks(parse_hcl(text), "path"):
        capabilities: list[str] = []
        for value in attrs(body, "capabilities"):
            capabilities += [c for c in _as_list(value) if isinstance(c, str)]
        rules.append((path, capabilities))
    return rules


def _own_kv_path(rest: list[str], owners: list[list[str]]) -> bool:
    if len(rest) >= 2 and _TEMPLATED_OWNER.match(rest[0]) and _TEMPLATED_NAME.match(rest[1]):
        return True
    return any(rest[:len(owner)] == owner for owner in owners)


def path_problem(path: str, capabilities: list[str], owners: list[list[str]]) -> str | None:
    """Why a rule grants an application something outside its own paths, or None. ``owners`` are the
    path segments that are the application's own under a KV mount (its name; its namespace and
    service account)."""
    granted = {c for c in capabilities if c != "deny"}
    if not granted:
        return None
    if "sudo" in granted:
        return "grants sudo, which no application needs"
    parts = path.split("/")
    if parts[0] in SYSTEM_MOUNTS or "*" in parts[0] or "+" in parts[0]:
        return "reaches Vault's own configuration, not an application's secrets"
    if len(parts) >= 3 and parts[1] in KV_API:
        if not _own_kv_path(parts[2:], owners):
            own = " or ".join("/".join(o) for o in owners) or "its own name"
            return f"is outside the application's own KV paths (<mount>/{parts[1]}/{own}/...)"
        if not granted <= KV_CAPABILITIES:
            return f"grants {sorted(granted - KV_CAPABILITIES)} on KV"
        return None
    endpoint = parts[1] if len(parts) >= 2 else ""
    named = parts[2:] if endpoint != "datakey" else parts[3:]
    if endpoint == "datakey" and len(parts) == 4 and parts[2] in ("plaintext", "wrapped"):
        endpoint = "encrypt"
    if endpoint in CONSUMER_ENDPOINTS and len(named) == 1 and named[0] and not any(c in named[0] for c in "*+"):
        allowed = CONSUMER_ENDPOINTS[endpoint]
        return None if granted <= allowed else f"grants {sorted(granted - allowed)} on a {endpoint} endpoint"
    return ("is outside the application's own paths (its KV prefix, and creds/issue/sign/encrypt/decrypt "
            "endpoints of one named role or key)")


def _platform_namespaces(resources: Sequence[Resource]) -> set[str]:
    """Namespaces the stack deploys Vault into: workloads there are the platform's own."""
    found = set()
    for r in resources:
        if vault_values(r.type, r.props) is not None and isinstance(r.props.get("namespace"), str):
            found.add(r.props["namespace"])
    return found


# The operators that deliver secrets log in with a role and a policy of the same name, one of these
# prefixes, and what that policy may do: External Secrets reads KV data, cert-manager signs.
OPERATOR_POLICIES = {"external-secrets-": frozenset({"read"}), "cert-manager-": frozenset({"create", "update"})}


def _operator_prefix(role: Resource) -> str | None:
    name, policies = role.props.get("roleName"), role.props.get("tokenPolicies")
    if not isinstance(name, str) or _as_list(policies) != [name]:
        return None
    return next((prefix for prefix in OPERATOR_POLICIES if name.startswith(prefix)), None)


def _operator_policy_problem(prefix: str, path: str, capabilities: Sequence[str]) -> str | None:
    allowed = OPERATOR_POLICIES[prefix]
    if path.split("/")[0] in ("sys", "auth", "identity") or "*" in path or "+" in path:
        return "is not one named secret or sign endpoint: an operator's policy names exactly what it delivers"
    if not set(capabilities) <= allowed:
        return f"grants {sorted(set(capabilities) - allowed)}; this operator's policy may only {sorted(allowed)}"
    if prefix == "cert-manager-" and "/sign/" not in path:
        return "is not a sign endpoint; cert-manager's policy may only sign with its PKI role"
    return None


def check_app_policies(resources: Sequence[Resource], config: Mapping[str, Any]) -> list[Violation]:
    found: list[Violation] = []
    roles = [r for r in resources if r.type == KUBERNETES_ROLE]
    platform = _platform_namespaces(resources)
    operators = {}
    for role in roles:
        namespaces = role.props.get("boundServiceAccountNamespaces")
        policies = role.props.get("tokenPolicies")
        if is_unknown(namespaces) or is_unknown(policies):
            continue
        prefix = _operator_prefix(role)
        if prefix is not None:
            operators[role.props["roleName"]] = prefix
            continue
        namespaces = [n for n in _as_list(namespaces) if isinstance(n, str)]
        if namespaces and all(n in platform for n in namespaces):
            continue  # a platform component in Vault's own namespace (e.g. the backup job)
        own = role.props.get("roleName")
        for policy in _as_list(policies):
            if policy == own and any(policy.startswith(prefix) for prefix in OPERATOR_POLICIES):
                continue  # its own operator policy; the others on the role are what is wrong
            if isinstance(policy, str) and policy not in ALWAYS_ALLOWED_POLICIES and \
                    not policy.startswith(APP_POLICY_PREFIX):
                found.append(Violation(role.type, role.name, "tokenPolicies", f"gives an application the policy "
                                       f"{policy!r}; applications get only their own {APP_POLICY_PREFIX}* policies",
                                       role.urn))
    for policy in (r for r in resources if r.type == VAULT_POLICY):
        name, text = policy.props.get("name"), policy.props.get("policy")
        if isinstance(name, str) and name in operators and isinstance(text, str):
            found += _check_operator_policy(policy, operators[name], text)
            continue
        if not isinstance(name, str) or not name.startswith(APP_POLICY_PREFIX) or not isinstance(text, str):
            continue
        app = name[len(APP_POLICY_PREFIX):]
        owners = [[app]]
        for role in roles:
            if role.props.get("roleName") == app:
                for ns in _as_list(role.props.get("boundServiceAccountNamespaces")):
                    for sa in _as_list(role.props.get("boundServiceAccountNames")):
                        if isinstance(ns, str) and isinstance(sa, str) and "*" not in ns + sa:
                            owners.append([ns, sa])
        try:
            rules = policy_rules(text)
        except HclError as err:
            found.append(Violation(policy.type, policy.name, "policy", f"cannot be read as a Vault policy ({err})",
                                   policy.urn))
            continue
        for path, capabilities in rules:
            problem = path_problem(path, capabilities, owners)
            if problem:
                found.append(Violation(policy.type, policy.name, f"policy path {path!r}", problem, policy.urn))
    return found


def _check_operator_policy(policy: Resource, prefix: str, text: str) -> list[Violation]:
    try:
        rules = policy_rules(text)
    except HclError as err:
        return [Violation(policy.type, policy.name, "policy", f"cannot be read as a Vault policy ({err})",
                          policy.urn)]
    return [Violation(policy.type, policy.name, f"policy path {path!r}", problem, policy.urn)
            for path, capabilities in rules
            if (problem := _operator_policy_problem(prefix, path, capabilities))]


# --- 11. the transit seal's token ---------------------------------------------------------------


def _transit_tokens(parsed: Any) -> bool:
    return any(attrs(body, "token") for label, body in blocks(parsed, "seal") if label == "transit")


def check_transit_token(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                        config: Mapping[str, Any]) -> list[Violation]:
    report = _Reporter(resource_type, name)
    values = vault_values(resource_type, props)
    if isinstance(values, Mapping):
        try:
            path, parsed = server_config(values)
        except HclError:
            path, parsed = server_config_path(values), None  # vault-tls-everywhere reports it
        transit = parsed is not None and not is_unknown(parsed) and any(
            label == "transit" for label, _ in blocks(parsed, "seal"))
        if transit and _transit_tokens(parsed):
            report(f"values.{path} seal \"transit\" token", "puts the unseal token in the server config, which the "
                   "chart stores in a ConfigMap; give it as VAULT_TOKEN from a Secret")
        plain_env = get(values, "server.extraEnvironmentVars")
        if isinstance(plain_env, Mapping) and "VAULT_TOKEN" in plain_env:
            report("values.server.extraEnvironmentVars.VAULT_TOKEN", "puts the token in the pod spec in plain text; "
                                                                     "use server.extraSecretEnvironmentVars")
        secret_env = get(values, "server.extraSecretEnvironmentVars")
        if transit and not is_unknown(secret_env) and not any(
                isinstance(e, Mapping) and e.get("envName") == "VAULT_TOKEN" and e.get("secretName")
                for e in _as_list(secret_env)):
            report("values.server.extraSecretEnvironmentVars", "does not take VAULT_TOKEN from a Secret: the "
                                                               "transit seal's token must come from one")
    if resource_type in CONFIG_MAP_TYPES and isinstance(props.get("data"), Mapping):
        for key, text in props["data"].items():
            if isinstance(text, str) and "transit" in text and "seal" in text:
                try:
                    parsed = parse_hcl(text)
                except HclError:
                    continue
                if _transit_tokens(parsed):
                    report(f"data[{key!r}] seal \"transit\" token", "puts the unseal token in a ConfigMap; give it "
                                                                   "as VAULT_TOKEN from a Secret")
    return report.found


# --- 12. cluster-wide secret stores serve named namespaces only ------------------------------------

CLUSTER_SECRET_STORE_TYPES = ("kubernetes:external-secrets.io/v1:ClusterSecretStore",
                              "kubernetes:external-secrets.io/v1beta1:ClusterSecretStore")
# Namespaces no sensible pattern names together: a regex that matches all of them matches any.
_UNRELATED_NAMESPACES = ("kube-system", "default", "zz-unrelated-0")
OPEN_TO_ALL = ("so the store serves ExternalSecrets in every namespace: anyone who may create one anywhere could "
               "copy every secret the store reads; name the namespaces that need it")


def _matches_any_namespace(pattern: Any) -> bool:
    if not isinstance(pattern, str):
        return False
    try:
        compiled = re.compile(pattern)
    except re.error:
        return False
    return all(compiled.search(ns) for ns in _UNRELATED_NAMESPACES)


def check_cluster_secret_store_scoped(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                                      config: Mapping[str, Any]) -> list[Violation]:
    report = _Reporter(resource_type, name)
    if resource_type not in CLUSTER_SECRET_STORE_TYPES:
        return []
    conditions = get(props, "spec.conditions")
    if is_unknown(conditions):
        return []
    if not _as_list(conditions):
        report("spec.conditions", f"is missing, {OPEN_TO_ALL}")
    for i, condition in enumerate(_as_list(conditions)):
        if not isinstance(condition, Mapping):
            continue
        selector = condition.get("namespaceSelector")
        if isinstance(selector, Mapping) and not selector.get("matchLabels") and not selector.get("matchExpressions"):
            report(f"spec.conditions[{i}].namespaceSelector", f"is empty and selects every namespace, {OPEN_TO_ALL}")
        for j, pattern in enumerate(_as_list(condition.get("namespaceRegexes"))):
            if _matches_any_namespace(pattern):
                report(f"spec.conditions[{i}].namespaceRegexes[{j}]", f"matches any name, {OPEN_TO_ALL}")
    return report.found


# --- 13. certificates for one namespace's names only -------------------------------------------------

CLUSTER_ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
PKI_ROLE = "vault:pkiSecret/secretBackendRole:SecretBackendRole"
# Two Services of two namespaces: a role that would sign both signs for more than one namespace.
_PROBES = (("web.probe-one.svc", "web.probe-two.svc"),
           ("web.probe-one.svc.cluster.local", "web.probe-two.svc.cluster.local"))
ANY_NAMESPACE = ("so any namespace that may use it gets a certificate for another namespace's Service and can "
                 "impersonate it")


def _glob(pattern: str, name: str) -> bool:
    """Vault's glob domains: '*' matches any run of characters, dots included."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), name) is not None


def _role_signs(props: Mapping[str, Any], domain: str, name: str) -> bool:
    if truthy(props.get("allowGlobDomains", False)) and "*" in domain and _glob(domain, name):
        return True
    if truthy(props.get("allowBareDomains", False)) and name == domain:
        return True
    base = domain[2:] if domain.startswith("*.") else domain
    return truthy(props.get("allowSubdomains", False)) and name.endswith("." + base)


def check_certificates_per_namespace(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                                     config: Mapping[str, Any]) -> list[Violation]:
    report = _Reporter(resource_type, name)
    if resource_type == CLUSTER_ISSUER and get(props, "spec.vault") is not None:
        report("spec.vault", f"makes a Vault issuer for the whole cluster: a Certificate in any namespace can use it, "
                             f"{ANY_NAMESPACE}; give each namespace an Issuer of its own with a PKI role bound to it")
    if resource_type == PKI_ROLE:
        if truthy(props.get("allowAnyName", False)):
            report("allowAnyName", f"is true: the role signs any name, {ANY_NAMESPACE}")
        domains = props.get("allowedDomains")
        for i, domain in enumerate(_as_list(domains) if not is_unknown(domains) else []):
            if isinstance(domain, str) and any(all(_role_signs(props, domain, n) for n in pair) for pair in _PROBES):
                report(f"allowedDomains[{i}]", f"{domain!r} covers the Services of every namespace, {ANY_NAMESPACE}; "
                                               "bind the role to one namespace (*.<namespace>.svc)")
    return report.found


# --- 14. metrics need a token --------------------------------------------------------------------


def _telemetry(listener: Any) -> Iterator[Any]:
    """A listener's telemetry settings, as a block or as an object attribute."""
    for _, body in blocks(listener, "telemetry", labeled=False):
        yield body
    # (The reader gives an object attribute's body as a list of attributes, like a block's.)
    yield from (value for value in attrs(listener, "telemetry") if isinstance(value, (Mapping, list)))


def check_metrics_need_a_token(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                               config: Mapping[str, Any]) -> list[Violation]:
    values = vault_values(resource_type, props)
    try:
        path, parsed = server_config(values) if isinstance(values, Mapping) else ("", None)
    except HclError:
        path, parsed = "", None  # vault-tls-everywhere reports it
    if parsed is None or is_unknown(parsed):
        return []
    report = _Reporter(resource_type, name)
    for label, listener in blocks(parsed, "listener"):
        if any(not falsy(v) for body in _telemetry(listener) for v in attrs(body, "unauthenticated_metrics_access")):
            report(f"values.{path} listener \"{label}\" telemetry unauthenticated_metrics_access",
                   "serves sys/metrics to anyone who reaches the listener; let the scraper present a token with "
                   "read on sys/metrics only (a ServiceMonitor's authorization from a Secret)")
    return report.found


# --- the pack -----------------------------------------------------------------------------------

# --- 15. the deployer is not root ------------------------------------------------------------------

DEPLOY_IDENTITY = "pulumi-python:dynamic/bootstrap:DeployIdentity"
# The policies that say who may deploy and what an admin may do: a deployer that could rewrite them
# could make itself root.
IDENTITY_POLICIES = ("deployer", "previewer", "admin")
_WRITES = frozenset({"create", "update", "patch", "delete", "sudo"})
_ROLE_PATH = re.compile(r"auth/[^*]+/role/\*")


def _capabilities(body: Any) -> set[str]:
    return {str(c) for value in attrs(body, "capabilities") for c in _as_list(value)}


def _object(values: list[Any]) -> dict[str, Any]:
    """An HCL object attribute (``allowed_parameters = {...}``) as a dict, from either form."""
    out: dict[str, Any] = {}
    for value in values:
        if isinstance(value, Mapping):
            out.update(value)
        elif isinstance(value, list):
            out.update({item.key: item.value for item in value if hasattr(item, "key")})
    return out


def check_deployer_not_root(resource_type: str, name: str, props: Mapping[str, Any], options: Options,
                            config: Mapping[str, Any]) -> list[Violation]:
    report = _Reporter(resource_type, name)
    if resource_type != DEPLOY_IDENTITY:
        return report.found
    policies, deployer = props.get("policies"), props.get("deployer_policy") or "deployer"
    if not isinstance(policies, Mapping) or is_unknown(policies.get(deployer)):
        return report.found
    text = policies.get(deployer)
    if not isinstance(text, str):
        return report.found
    where = f"policies.{deployer}"
    try:
        paths = list(blocks(parse_hcl(text), "path"))
    except HclError as err:
        report(where, f"cannot be read as a Vault policy ({err})")
        return report.found
    exact = {label: _capabilities(body) for label, body in paths}
    for policy in IDENTITY_POLICIES:
        path = f"sys/policies/acl/{policy}"
        # Vault takes the most specific path: an exact read-only rule beats any sys/policies/acl/* grant.
        if path not in exact or exact[path] & _WRITES:
            report(f'{where} path "{path}"', f"lets the deployer rewrite the {policy} policy, and so make itself "
                                              "root: give that path read only (a break-glass token changes it)")
    for label, body in paths:
        if not _ROLE_PATH.fullmatch(label) or not _capabilities(body) & {"create", "update"}:
            continue
        allowed = _object(attrs(body, "allowed_parameters")).get("token_policies")
        if not allowed or any(str(v).strip() == "*" for v in _as_list(allowed)):
            report(f'{where} path "{label}" allowed_parameters', "lets the deployer give an auth role any "
                   "policy, admin included, and log in with it: allow the policies the stack gives roles only "
                   "(deploy.limitRolePolicies)")
    return report.found


RULES: tuple[Rule, ...] = (
    Rule("vault-api-not-internet-facing",
         "Vault's API is reached from inside the network only: a Service in front of the Vault server pods (or "
         "the chart's own Services) must not be an internet-facing LoadBalancer, carry external IPs, or (unless "
         "the environment allows it, e.g. a local kind cluster) be a NodePort. Anyone on the internet could "
         "otherwise probe it and attack its login endpoints.",
         check_api_not_internet_facing,
         config_schema={"allowNodePort": {"type": "boolean", "description": "Allow NodePort Services (a local "
                                                                            "cluster that maps them to loopback)."}}),
    Rule("vault-tls-everywhere",
         "Every Vault listener serves TLS and the chart's global.tlsDisable is false: without TLS, tokens, "
         "secrets and Raft replication cross the network in plain text.",
         check_tls_everywhere),
    Rule("kms-key-safeguards",
         "KMS keys rotate yearly, have an explicit key policy and are protected (and retained): the unseal and "
         "snapshot keys are the only way to read Vault's data, so losing one or letting the account's default "
         "policy hand it out loses or exposes every secret.",
         check_kms_key),
    Rule("snapshot-bucket-locked-down",
         "Every S3 bucket of the stack (the Raft snapshot bucket) blocks public access, denies requests without "
         "TLS and encrypts with a KMS key of its own: a snapshot is a full copy of every secret in Vault.",
         check_bucket_locked_down, stack=True),
    Rule("vault-raft-replicas",
         "Vault runs in HA with an odd number of Raft voters, at least 3 (and the count the environment requires, "
         "5 in prod), so the cluster keeps a quorum while a pod is down.",
         check_replicas,
         config_schema={"requiredReplicas": {"type": "integer", "minimum": 1, "description": "The exact number "
                                             "of Vault server pods this environment requires."}}),
    Rule("vault-server-resources",
         "Vault's server (and injector) pods request CPU and memory and have a memory limit, so the scheduler "
         "places them on nodes that can run them and one pod cannot starve its node.",
         check_server_resources),
    Rule("images-pinned",
         "Every image is pinned to a version tag or digest, never 'latest' or no tag: otherwise a pod restart can "
         "silently run a different Vault (or job) than the one reviewed.",
         check_images_pinned),
    Rule("no-secret-values-in-plain-objects",
         "No secret-like value (a key named like a token, password, secret, credential, JWT or api/private/access "
         "key) sits in a ConfigMap, a literal environment variable or an annotation: those are stored and shown "
         "in plain text. Secrets live in Secret objects and are referenced.",
         check_no_plain_secrets),
    Rule("vault-audit-enabled",
         "A Vault the stack deploys has at least one audit device, none discards its entries or logs secrets "
         "raw: the audit log is the only record of who read which secret.",
         check_audit_enabled, stack=True),
    Rule("app-policies-own-paths-only",
         "Application policies (app-*) grant nothing outside the application's own paths: its KV prefix and "
         "the creds/issue/encrypt endpoints of one named role or key, never sudo or sys/auth/identity; "
         "application roles carry only app-* policies; the delivering operators' own policies (external-secrets-*, "
         "cert-manager-*) only read KV data or sign. One compromised application must not reach another's "
         "secrets or Vault's configuration.",
         check_app_policies, stack=True),
    Rule("transit-token-from-secret",
         "The token of a transit seal is only referenced from a Secret (VAULT_TOKEN through "
         "server.extraSecretEnvironmentVars), never written into the server config or a ConfigMap: that token "
         "unseals Vault.",
         check_transit_token),
    Rule("cluster-secret-store-scoped",
         "A ClusterSecretStore (such as the transition store for AWS Secrets Manager) lists the namespaces it "
         "serves: without conditions, or with an empty selector or a pattern that matches any name, anyone who may "
         "create an ExternalSecret in any namespace can copy every secret the store reads.",
         check_cluster_secret_store_scoped),
    Rule("certificates-per-namespace",
         "Certificates from Vault's PKI come through one Issuer per namespace, each with a PKI role that signs that "
         "namespace's names only: a Vault ClusterIssuer, or a role that allows any name under svc.cluster.local, "
         "gives any namespace a certificate for another namespace's Service.",
         check_certificates_per_namespace),
    Rule("metrics-need-a-token",
         "No Vault listener serves its metrics without a token (telemetry unauthenticated_metrics_access): they "
         "tell anyone who reaches the API port the request rates, mounts, leadership and audit failures. The "
         "scraper presents a token whose policy reads sys/metrics only.",
         check_metrics_need_a_token),
    Rule("deployer-not-root",
         "The deployer, the login every pull request's merge runs as, cannot make itself root: it may only read "
         "the deployer, previewer and admin policies, and may give Kubernetes auth roles only the policies the "
         "stack gives roles.",
         check_deployer_not_root),
)


def rule(name: str) -> Rule:
    for r in RULES:
        if r.name == name:
            return r
    raise KeyError(name)
