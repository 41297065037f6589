"""Value rules of the stack config. Pure functions: each returns None when the value is fine, or a
sentence saying what is allowed, so one rule serves the typed model, the component arguments and
the builders alike.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Iterable
from typing import Any

# Vault's fixed capability set; anything else in a policy is a typo that Vault would silently keep.
CAPABILITIES = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe", "recover")

Check = Callable[[Any], "str | None"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9*]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|ms|s|m|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_QUANTITY_FACTOR = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                    "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
                    "E": 1e18}


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option a misspelled ``word`` most likely meant, for a did-you-mean hint."""
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return match[0] if match else None


def duplicates(names: Iterable[str]) -> list[str]:
    """Names that appear more than once, sorted."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for name in names:
        (repeated if name in seen else seen).add(name)
    return sorted(repeated)


def dns_label(value: str) -> str | None:
    if _DNS_LABEL.match(value):
        return None
    return "is not a DNS label (RFC 1123: lower-case letters, digits and '-', 1-63 characters, " \
           "starting and ending with a letter or digit)"


def dns_name(value: str) -> str | None:
    if _DNS_NAME.match(value):
        return None
    return "is not a DNS name (lower-case labels separated by dots)"


def duration_seconds(value: str) -> float:
    """Seconds in a Go-style duration such as ``1h30m`` or ``768h``; ``d`` (days) is accepted too."""
    if not _DURATION.match(value):
        raise ValueError(value)
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))


def duration(value: str) -> str | None:
    try:
        if duration_seconds(value) > 0:
            return None
    except ValueError:
        pass
    return "is not a positive duration (a number and unit, e.g. 30s, 15m, 1h, 24h, 7d, 1h30m)"


def quantity_value(value: str) -> float:
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(value)
    return float(match.group(1)) * _QUANTITY_FACTOR[match.group(3)]


def quantity(value: str) -> str | None:
    try:
        if quantity_value(value) > 0:
            return None
    except ValueError:
        pass
    return "is not a Kubernetes quantity (e.g. 10Gi, 512Mi, 250m, 1)"


# --- cron, as the Kubernetes API server checks a CronJob's schedule ----------------------------------
# The API server parses schedules with robfig/cron's standard parser: five fields, names for months
# and weekdays, '*' or '?', ranges, steps, lists, and the descriptors below (@every <Go duration>
# included). Day-of-week runs 0-6; 7 is refused. TZ= prefixes are refused (timeZone is the field).

_CRON_FIELDS = (("minute", 0, 59, None), ("hour", 0, 23, None), ("day of month", 1, 31, None),
                ("month", 1, 12, {n: i + 1 for i, n in enumerate(
                    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}),
                ("day of week", 0, 6, {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}))
_CRON_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_GO_DURATION = re.compile(r"^(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$")


def _cron_number(text: str, names: dict[str, int] | None) -> int | None:
    if names and text.lower() in names:
        return names[text.lower()]
    return int(text) if text.isdigit() else None


def _cron_field(text: str, low: int, high: int, names: dict[str, int] | None) -> bool:
    for part in text.split(","):
        span, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            return False
        if span in ("*", "?"):
            continue
        bounds = span.split("-")
        if len(bounds) > 2:
            return False
        numbers = [_cron_number(b, names) for b in bounds]
        if any(n is None or n < low or n > high for n in numbers):
            return False
        if len(numbers) == 2 and numbers[0] > numbers[1]:  # type: ignore[operator]
            return False
    return True


def cron(value: str) -> str | None:
    problem = ("is not a cron schedule the Kubernetes API accepts (five fields: minute hour day-of-month month "
               "day-of-week, day-of-week 0-6, e.g. '0 */6 * * *'; or @hourly, @daily, @weekly, @monthly, "
               "@yearly, @every 6h)")
    text = value.strip()
    if "TZ" in text:
        return "sets a time zone in the schedule; the Kubernetes API refuses that (schedules run in UTC)"
    if text.startswith("@"):
        if text in _CRON_DESCRIPTORS:
            return None
        every, _, rest = text.partition(" ")
        if every == "@every" and _GO_DURATION.match(rest.strip()) and re.search(r"[1-9]", rest):
            return None
        return problem
    fields = text.split()
    if len(fields) != 5:
        return problem
    for field, (_, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        if not _cron_field(field, low, high, names):
            return problem
    return None


_CRON_SHORTHANDS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _cron_values(text: str, low: int, high: int, names: dict[str, int] | None) -> tuple[set[int], bool]:
    """The values a valid field matches, and whether it starts with '*' (or '?')."""
    values: set[int] = set()
    for part in text.split(","):
        span, _, step = part.partition("/")
        if span in ("*", "?"):
            start, end = low, high
        else:
            bounds = [_cron_number(b, names) for b in span.split("-")]
            start = bounds[0]  # type: ignore[assignment]
            end = bounds[-1] if len(bounds) == 2 or step else start  # type: ignore[assignment]
            if step and len(bounds) == 1:
                end = high
        values.update(range(start, end + 1, int(step) if step else 1))  # type: ignore[arg-type]
    return values, text[:1] in ("*", "?")


def cron_longest_gap_seconds(value: str) -> int:
    """The longest time between two runs of a valid schedule (UTC), as the CronJob controller runs it:
    day of month and day of week both restricted means either matches (robfig/cron's rule)."""
    import datetime as dt

    text = value.strip()
    if text.startswith("@every"):
        try:
            return max(1, int(duration_seconds(text.split(None, 1)[1])))
        except ValueError:  # sub-second units: more often than any backup can run
            return 1
    text = _CRON_SHORTHANDS.get(text, text)
    fields = [_cron_values(f, low, high, names) for f, (_, low, high, names) in
              zip(text.split(), _CRON_FIELDS, strict=True)]
    (minutes, _), (hours, _), (doms, dom_star), (months, _), (dows, dow_star) = fields
    times = sorted(h * 60 + m for h in hours for m in minutes)
    day = dt.date(2001, 1, 1)
    runs: list[int] = []
    # Two years and a day cover every yearly pattern (Feb 29 schedules are not worth a longer walk).
    for offset in range(2 * 366 + 1):
        date = day + dt.timedelta(days=offset)
        dom_ok, dow_ok = date.day in doms, (date.isoweekday() % 7) in dows
        matches = (dom_ok and dow_ok) if (dom_star or dow_star) else (dom_ok or dow_ok)
        if date.month in months and matches:
            runs += [offset * 1440 + t for t in times]
    if len(runs) < 2:
        return 366 * 86400
    return max(b - a for a, b in itertools.pairwise(runs)) * 60


# --- small combinators and the rest ----------------------------------------------------------------

def one_of(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in allowed else f"is not allowed; use one of: {', '.join(allowed)}"
    return check


def at_least(minimum: int) -> Check:
    def check(value: int) -> str | None:
        return None if value >= minimum else f"is too small; the minimum is {minimum}"
    return check


def between(low: int, high: int) -> Check:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"is out of range; allowed: {low} to {high}"
    return check


def https_url(value: str) -> str | None:
    import ipaddress

    match = re.match(r"^https://([^/\s:\[\]]+|\[([0-9A-Fa-f:.]+)\])(:\d{1,5})?(/\S*)?$", value)
    if match and match.group(2):
        try:
            ipaddress.IPv6Address(match.group(2))
        except ValueError:
            match = None
    if match:
        return None
    return "is not an https:// URL (Vault is only ever reached over TLS)"


_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")


def pem_or_empty(value: str) -> str | None:
    """Empty, or one or more PEM certificates (the text itself, not a path to a file holding it)."""
    import base64
    import binascii

    if value == "":
        return None
    problem = ("is not a PEM certificate: give the certificate's text (-----BEGIN CERTIFICATE----- ... "
               "-----END CERTIFICATE-----), not a file name or a key")
    blocks = _PEM_BLOCK.findall(value)
    if not blocks:
        return problem
    for block in blocks:
        try:
            der = base64.b64decode("".join(block.split()), validate=True)
        except (binascii.Error, ValueError):
            return problem
        if not der or der[0] != 0x30:  # a DER SEQUENCE, as every X.509 certificate is
            return problem
    return None


def pgp_public_key(value: str) -> str | None:
    """Base64 of a binary OpenPGP public key, as Vault's init takes it (`gpg --export <id> | base64`)."""
    import base64
    import binascii

    problem = ("is not a base64 OpenPGP public key: export it with `gpg --export <key id> | base64 -w0` "
               "(the binary key, base64-encoded; not armored text, not a file name)")
    if "BEGIN PGP" in value:
        return problem + "; this is armored text"
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return problem
    # A public-key packet: old format tag 6 (0x98/0x99/0x9a) or new format 0xc6.
    if len(raw) < 10 or raw[0] not in (0x98, 0x99, 0x9A, 0xC6):
        return problem
    return None


def vault_path(value: str) -> str | None:
    # Mount and policy paths: segments of letters, digits, - _ . + and {{...}} templates; an optional
    # trailing * or a + wildcard segment. No leading slash, no empty segments, no spaces.
    if re.match(r"^(?!/)([A-Za-z0-9_.\-+*]|\{\{[^}]+\}\})+(/([A-Za-z0-9_.\-+*]|\{\{[^}]+\}\})*)*$", value) \
            and "//" not in value and "*" not in value[:-1]:
        return None
    return ("is not a valid Vault path (segments of letters, digits, '-', '_', '.', '+' or {{identity "
            "templates}} separated by '/', no leading '/', '*' only at the end)")


def mount_path(value: str) -> str | None:
    if re.match(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$", value) and ".." not in value:
        return None
    return "is not a valid mount path (letters, digits, '-', '_' and '.' segments, no leading or trailing '/')"


def service_account_name(value: str) -> str | None:
    return dns_name(value) if "*" not in value else "must name one service account, not a wildcard"


def capabilities(values: Iterable[str]) -> str | None:
    """Vault keeps an unknown capability without complaint (and grants nothing for it): refuse it."""
    values = list(values)
    if not values:
        return "names no capability; name at least one"
    unknown = [c for c in values if c not in CAPABILITIES]
    if unknown:
        return f"has unknown capabilities {unknown}; use: {', '.join(CAPABILITIES)}"
    if duplicates(values):
        return f"has repeated capabilities {duplicates(values)}"
    return None


def aws_region(value: str) -> str | None:
    return None if re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", value) else "is not an AWS region (e.g. eu-west-1)"


def oidc_provider_arn(value: str) -> str | None:
    return None if re.match(r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/.+", value) \
        else "is not an IAM OIDC provider ARN"


def oidc_issuer(value: str) -> str | None:
    return None if re.match(r"^[a-z0-9.-]+(/[A-Za-z0-9]+)*$", value) and not value.startswith("https://") \
        else "is not an issuer host/path without https://"


def postgres_url(value: str) -> str | None:
    return None if value.startswith(("postgresql://", "postgres://")) and "{{username}}" in value \
        and "{{password}}" in value else "is not a postgresql:// URL with {{username}} and {{password}}"


def s3_prefix(value: str) -> str | None:
    return None if re.match(r"^[A-Za-z0-9_\-/]+/$", value) else "must be a key prefix ending in '/'"


def pinned_tag(value: str) -> str | None:
    return "is not a pinned tag" if value in ("", "latest") else None


def pinned_image(value: str) -> str | None:
    """An image reference with a tag (not 'latest') or a digest."""
    if "@sha256:" in value:
        return None
    name, _, tag = value.rpartition(":")
    if not name or "/" in tag or tag in ("", "latest"):
        return "is not an image pinned by tag or digest (e.g. python:3.14.0-alpine3.22)"
    return None


def url_or_empty(value: str) -> str | None:
    return None if value == "" else https_url(value)


def audit_file_path(value: str) -> str | None:
    return None if value.startswith("/vault/audit/") else "must be under /vault/audit/"


def iam_principal_arn(value: str) -> str | None:
    """A role or user ARN, as a KMS key policy names principals (not an assumed-role session)."""
    return None if re.match(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$", value) else (
        "is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name>; for an SSO or assumed-role "
        "session use the role's ARN, not the arn:aws:sts::...:assumed-role/... session)")


def iam_policy_arn(value: str) -> str | None:
    return None if re.match(r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+$", value) \
        else "is not an IAM managed policy ARN (arn:aws:iam::<account>:policy/<name>)"


def subnet_id(value: str) -> str | None:
    return None if re.match(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$", value) \
        else "is not a VPC subnet id (subnet-0123456789abcdef0)"


def cidrs_overlap(a: str, b: str) -> bool:
    import ipaddress

    first, second = ipaddress.ip_network(a), ipaddress.ip_network(b)
    return first.version == second.version and first.overlaps(second)  # type: ignore[arg-type]


def ip_address(value: str) -> str | None:
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "is not an IP address (e.g. 10.0.12.7 or fd00::7)"
    return None


def route53_zone_id(value: str) -> str | None:
    return None if re.match(r"^Z[A-Z0-9]{1,31}$", value) else "is not a Route 53 hosted zone id (Z followed by " \
        "letters and digits, e.g. Z0123456789ABCDEFGHIJ)"


def url_host(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "").lower()


def name_covers(pattern: str, host: str) -> bool:
    """Whether a certificate name (possibly *.wildcard) covers ``host``, as TLS clients check it."""
    pattern, host = pattern.lower(), host.lower()
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def cidr(value: str) -> str | None:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return "is not a CIDR range with no host bits set (e.g. 10.0.0.0/16)"
    return None


SEMVER_PATTERN = (r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?"
                  r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
_SEMVER = re.compile(SEMVER_PATTERN)


def pinned_chart_version(value: str) -> str | None:
    """A chart version as Helm's `--version` takes it, and pinned: one exact SemVer, not a range."""
    if _SEMVER.match(value):
        return None
    if re.search(r"[~^*xX<>=|, ]", value):
        return "is a version range; pin one exact chart version (e.g. 0.34.1)"
    return "is not a chart version (SemVer: MAJOR.MINOR.PATCH, e.g. 0.34.1)"


# The container image reference grammar (distribution/reference): [registry[:port]/]path[:tag].
_IMAGE_PATH = re.compile(r"^(?:(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+|[a-zA-Z0-9-]+:[0-9]+)(?::[0-9]+)?/)?"
                         r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$")
_IMAGE_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


def image_repository(value: str) -> str | None:
    if ":" in value.split("/")[-1] or "@" in value:
        return "holds a tag or digest; put the repository here and the tag in cluster.image.tag"
    if _IMAGE_PATH.match(value) and len(value) <= 255:
        return None
    return "is not an image repository (lower-case path components, optionally after a registry host)"


def kv_prefix(value: str) -> str | None:
    """A folder of a KV mount, as a policy path prefix: segments, ending in '/', no glob or template."""
    if not re.fullmatch(r"([A-Za-z0-9_.-]+/)+", value):
        return "is not a KV folder: name segments of letters, digits, '-', '_' or '.', each followed by '/' " \
               "(imported/)"
    return None


def chart_repository(value: str) -> str | None:
    """Where Helm finds a chart: a chart repository over https, or an OCI registry (oci://host/path)."""
    if re.match(r"^oci://[^/\s:]+(:\d{1,5})?(/[a-z0-9][a-z0-9._/-]*)?$", value):
        return None
    if re.match(r"^https://[^/\s:]+(:\d{1,5})?(/\S*)?$", value):
        return None
    return "is not a chart repository (an https:// URL) or an OCI registry (oci://host[:port]/path)"


# A registry as an image reference starts with it: a host the runtimes cannot take for a Docker Hub
# path (a dot, a port, or localhost), then an optional path inside it (a mirror's project).
_REGISTRY = re.compile(r"^(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+|[a-zA-Z0-9-]+(?=:))(?::[0-9]{1,5})?"
                       r"(?:/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$")


def image_registry(value: str) -> str | None:
    if "://" in value:
        return "is a URL; name the registry as image references do (registry.example.com[:port][/path])"
    if _REGISTRY.match(value) and len(value) <= 200:
        return None
    return ("is not a registry (a host name with a dot or a port, or localhost, then an optional path, e.g. "
            "registry.example.com/mirror)")


def image_tag(value: str) -> str | None:
    if value in ("", "latest"):
        return "is not a pinned tag; name a release (e.g. 2.0.4), never 'latest'"
    if not _IMAGE_TAG.match(value):
        return "is not an image tag (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')"
    return None


def s3_bucket_name(value: str) -> str | None:
    """Amazon S3's general purpose bucket naming rules."""
    import ipaddress

    rules = ("is not a valid S3 bucket name (3-63 characters: lower-case letters, digits, '.' and '-', "
             "starting and ending with a letter or digit)")
    if value == "":
        return None
    if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", value) or ".." in value or ".-" in value \
            or "-." in value:
        return rules
    try:
        ipaddress.ip_address(value)
        return "is not a valid S3 bucket name: S3 refuses one formatted as an IP address; use a name, e.g. " \
               "acme-vault-snapshots"
    except ValueError:
        pass
    if value.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or value.endswith(("-s3alias", "--ol-s3", ".mrap",
                                                                                  "--x-s3", "--table-s3")):
        return "is not a valid S3 bucket name: it uses a prefix or suffix S3 reserves; choose another name"
    return None


def kms_alias(value: str) -> str | None:
    if value == "":
        return None
    if value.startswith(("alias/", "aws/")):
        return "must be the name only, without 'alias/', and not in the reserved aws/ namespace"
    return None if re.match(r"^[a-zA-Z0-9/_-]{1,250}$", value) else \
        "is not a KMS alias name (letters, digits, '/', '_' and '-', at most 250)"


def aws_tag_key(value: str) -> str | None:
    if value.lower().startswith("aws:"):
        return "uses the reserved aws: prefix"
    return None if re.match(r"^[\w .:/=+@-]{1,128}$", value) else \
        "is not an AWS tag key (1-128 letters, digits, spaces and _ . : / = + - @)"


def aws_tag_value(value: str) -> str | None:
    return None if re.match(r"^[\w .:/=+@-]{0,256}$", value) else \
        "is not an AWS tag value (up to 256 letters, digits, spaces and _ . : / = + - @)"


def vault_name(value: str) -> str | None:
    """A name that becomes one segment of a Vault API path (a key, a role, a connection)."""
    return None if re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", value) and ".." not in value else \
        "is not a Vault object name (letters, digits, '_', '.', '-', starting with a letter or digit)"


def quantity_cmp(request: str, limit: str) -> bool:
    """Whether a Kubernetes resource request exceeds its limit (the API server refuses the pod)."""
    return quantity_value(request) > quantity_value(limit)


def policy_name(value: str) -> str | None:
    return None if re.match(r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$", value) and value != "root" else \
        "is not a policy name (lower-case letters, digits, '.', '_', '-'; Vault stores names lower-cased)"


def github_repository(value: str) -> str | None:
    return None if re.match(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$", value) else \
        "is not a GitHub repository (owner/name)"


def redirect_uri(value: str) -> str | None:
    if re.match(r"^https://[^\s]+$", value) or re.match(r"^http://(localhost|127\.0\.0\.1):\d+/[^\s]*$", value):
        return None
    return "is not a redirect URI (https://..., or http://localhost:<port>/... for the CLI)"


def env_name(value: str) -> str | None:
    return None if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value) else (
        "is not an environment variable name (letters, digits and '_', not starting with a digit)")


def kv_property(value: str) -> str | None:
    # Agent templates read it as .Data.data.<property>, which only a Go identifier can be (and which
    # makes a missing property an error rather than an empty value).
    return None if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value) else (
        "is not a KV property name the delivery templates can read (letters, digits and '_', not starting "
        "with a digit)")


def kv_secret_path(value: str) -> str | None:
    segments = value.split("/")
    if all(re.match(r"^[A-Za-z0-9_.-]+$", s) and s not in (".", "..") for s in segments):
        return None
    return ("is not a KV secret path under the mount (segments of letters, digits, '-', '_' and '.' separated "
            "by '/', no leading or trailing '/', no wildcards), e.g. myapp/config")


def policy_path_allows(pattern: str, path: str) -> bool:
    """Whether a Vault policy path (``*`` at the end matches any rest, ``+`` one segment) covers ``path``."""
    prefix = pattern.endswith("*")
    pattern_segments = (pattern[:-1] if prefix else pattern).split("/")
    path_segments = path.split("/")
    if prefix:
        # The last pattern segment is a prefix of the corresponding path segment (or of the rest).
        *whole, head = pattern_segments
        if len(path_segments) < len(pattern_segments):
            return False
        for want, have in zip(whole, path_segments, strict=False):
            if want not in ("+", have):
                return False
        rest = "/".join(path_segments[len(whole):])
        return rest.startswith(head) if head != "+" else True
    if len(pattern_segments) != len(path_segments):
        return False
    return all(want in ("+", have) for want, have in zip(pattern_segments, path_segments, strict=True))


# AWS Secrets Manager names: letters, digits and /_+=.@- (no IAM wildcards).
_SECRETS_MANAGER_PREFIX = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")


def secrets_manager_prefix(value: str) -> str | None:
    if _SECRETS_MANAGER_PREFIX.match(value):
        return None
    return ("is not a Secrets Manager name prefix (letters, digits and / _ + = . @ -, no wildcards; e.g. "
            "'prod/')")


def kms_key_arn(value: str) -> str | None:
    return None if re.match(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$", value) \
        else "is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"


# --- claims a login is bound to, and values the consumers read ------------------------------------------

_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def git_ref(value: str) -> str | None:
    """A full ref as the `ref` claim of a GitHub Actions token carries it; Vault compares it exactly."""
    if any(c in value for c in "*?["):
        return ("has a wildcard, which Vault compares literally (no workflow ever runs on it); name the one ref "
                "deploys run on, e.g. refs/heads/main")
    if not value.startswith(("refs/heads/", "refs/tags/")):
        return ("is not a full ref: the token's ref claim is refs/heads/<branch> or refs/tags/<tag> (e.g. "
                "refs/heads/main), and Vault compares it exactly")
    parts = value.split("/")[2:]
    if _REF_FORBIDDEN.search(value) or ".." in value or "@{" in value or value.endswith((".", "/")) \
            or any(not p or p.startswith(".") or p.endswith(".lock") for p in parts):
        return "is not a valid git ref name (git check-ref-format)"
    return None


def issuer_url(value: str) -> str | None:
    """An OIDC issuer as Vault's oidc_discovery_url takes it: Vault appends /.well-known/openid-configuration."""
    problem = https_url(value)
    if problem:
        return problem
    if "/.well-known/" in value or value.rstrip("/").endswith("/.well-known"):
        return ("is the discovery document, not the issuer: give the URL without /.well-known/... (Vault "
                "appends /.well-known/openid-configuration itself), e.g. https://token.actions.githubusercontent.com")
    return None


def no_wildcard(value: str) -> str | None:
    if "*" in value or "?" in value:
        return "has a wildcard, which Vault compares literally (it would match no one); name the one value"
    return None


_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def label_key(value: str) -> str | None:
    """A Kubernetes label key: an optional DNS subdomain prefix and '/', then a name of at most 63 characters."""
    prefix, slash, name = value.rpartition("/")
    if _LABEL_NAME.match(name) and (not slash or (len(prefix) <= 253 and _DNS_NAME.match(prefix)
                                                   and "*" not in prefix)):
        return None
    return ("is not a Kubernetes label key (an optional DNS prefix and '/', then at most 63 letters, digits, '-', "
            "'_' and '.', starting and ending with a letter or digit)")


def label_value(value: str) -> str | None:
    if value == "" or _LABEL_NAME.match(value):
        return None
    return ("is not a Kubernetes label value (at most 63 letters, digits, '-', '_' and '.', starting and ending "
            "with a letter or digit; or empty)")


# The pattern the Prometheus Operator's CRDs put on every duration (ServiceMonitor interval and
# scrapeTimeout), which is also the syntax Prometheus itself parses.
PROMETHEUS_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"


def prometheus_duration(value: str) -> str | None:
    if re.match(PROMETHEUS_DURATION, value):
        return None
    return ("is not a duration Prometheus reads: whole numbers with units in the order y, w, d, h, m, s, ms (e.g. "
            "30s, 1m, 1m30s; no fractions)")


LOOPBACK = ("localhost", "127.0.0.1", "::1", "0.0.0.0")  # noqa: S104 - names, never bound to


def is_loopback(host: str) -> bool:
    import ipaddress

    host = host.strip("[]").lower()
    if host in LOOPBACK or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def pki_urls_base(value: str) -> str | None:
    """The base of the issuer and CRL URLs every issued certificate carries (the stack appends /v1/<mount>/...)."""
    from urllib.parse import urlsplit

    if value == "":
        return None
    problem = https_url(value)
    if problem:
        return problem
    if is_loopback(url_host(value)):
        return ("is a loopback address: every certificate would tell its clients to fetch the issuer and CRL from "
                "their own machine; give an address the clients reach (or leave it empty)")
    if "v1" in urlsplit(value).path.split("/"):
        return ("already holds /v1: the stack appends /v1/<mount>/ca and /v1/<mount>/crl itself, so every "
                "certificate would carry a doubled path; give only the scheme, host and port")
    return None


_SECRETS_MANAGER_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$")


def secrets_manager_arn(value: str) -> str | None:
    if not value or _SECRETS_MANAGER_ARN.match(value):
        return None
    return "is not an AWS Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
