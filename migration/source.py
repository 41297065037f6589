"""AWS Secrets Manager, read through boto3 with the standard credential chain (environment,
shared profile, web identity/IRSA, instance role). Throttling and transient errors are retried by
botocore's own ``standard`` retry mode, which knows every service's throttling and transient error
codes, backs off with jitter and keeps a retry quota; this module only bounds the attempts and
counts the retries botocore reports."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from migration.retry import Counter

# Attempts per call, the first included (botocore's ``total_max_attempts``). With the standard mode's
# backoff (random up to 2**n seconds, at most 20 s) a call gives up after at most ~71 s of sleep.
MAX_ATTEMPTS = 8
# BatchGetSecretValue takes at most 20 secrets; ListSecrets pages hold at most 100.
BATCH = 20
PAGE = 100


@dataclass(frozen=True)
class SourceSecret:
    """One secret as ListSecrets describes it: no value."""

    name: str
    arn: str
    current_version: str | None
    tags: tuple[tuple[str, str], ...] = ()
    last_accessed: dt.date | None = None


@dataclass(frozen=True)
class SourceValue:
    """The current version of one secret. The value never shows in a repr."""

    arn: str
    version_id: str
    string: str | None = field(repr=False, default=None)
    binary: bytes | None = field(repr=False, default=None)


class AwsError(RuntimeError):
    """A Secrets Manager call failed for good (after retries); the message holds no value."""


def retry_config(workers: int = 8) -> Config:
    return Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}, connect_timeout=10, read_timeout=60,
                  max_pool_connections=max(10, workers * 2))


def _retry_attempts(response: dict) -> int:
    return int((response.get("ResponseMetadata") or {}).get("RetryAttempts") or 0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def _last_accessed(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    return None


class SecretsManager:
    def __init__(self, client):
        self.client = client
        self.requests = Counter()
        self.retries = Counter()

    @classmethod
    def from_environment(cls, region: str | None = None, profile: str | None = None,
                         workers: int = 8) -> SecretsManager:
        # AWS_REGION is what the other SDKs (and EKS's pod identity webhook) set; boto3 reads
        # AWS_DEFAULT_REGION and the profile.
        session = boto3.Session(profile_name=profile, region_name=region or os.environ.get("AWS_REGION") or None)
        if session.region_name is None:
            raise AwsError("no AWS region: pass --region or set AWS_REGION or AWS_DEFAULT_REGION (or a region in "
                           "the AWS profile)")
        return cls(session.client("secretsmanager", config=retry_config(workers)))

    def _call(self, operation: str, **kwargs):
        try:
            answer = getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            self._count(exc.response)
            raise AwsError(f"Secrets Manager {operation}: {_describe(exc)}") from None
        except BotoCoreError as exc:
            # Connection errors land here once botocore's attempts are spent; it does not say how many.
            self.requests.add()
            raise AwsError(f"Secrets Manager {operation}: {_describe(exc)}") from None
        self._count(answer)
        return answer

    def _count(self, response: dict) -> None:
        retried = _retry_attempts(response)
        self.requests.add(1 + retried)
        self.retries.add(retried)

    def list(self, prefixes: Iterable[str]) -> list[SourceSecret]:
        """Every secret whose name starts with one of ``prefixes`` (case-sensitive), sorted by name.

        Secrets scheduled for deletion are left out, as ListSecrets leaves them out by default.
        """
        prefixes = sorted(set(prefixes))
        found: dict[str, SourceSecret] = {}
        for prefix in prefixes:
            # The name filter narrows the listing on the service's side; each name is still
            # checked here, since the rules are defined on names, not on the service's search.
            kwargs: dict = {"MaxResults": PAGE, "SortOrder": "asc"}
            if prefix:
                kwargs["Filters"] = [{"Key": "name", "Values": [prefix]}]
            for _ in range(1_000_000):
                page = self._call("list_secrets", **kwargs)
                for entry in page.get("SecretList", []):
                    name = entry["Name"]
                    if not name.startswith(prefix) or entry["ARN"] in found:
                        continue
                    current = next((v for v, stages in (entry.get("SecretVersionsToStages") or {}).items()
                                    if "AWSCURRENT" in stages), None)
                    tags = tuple(sorted((t["Key"], t.get("Value", "")) for t in entry.get("Tags") or []))
                    found[entry["ARN"]] = SourceSecret(name, entry["ARN"], current, tags,
                                                       _last_accessed(entry.get("LastAccessedDate")))
                token = page.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
        return sorted(found.values(), key=lambda s: s.name)

    def values(self, arns: list[str]) -> dict[str, SourceValue | str]:
        """ARN -> the current value, or why it could not be read. At most ``BATCH`` ARNs per call."""
        if len(arns) > BATCH:
            raise ValueError(f"at most {BATCH} secrets per batch")
        if not arns:
            return {}
        answer = self._call("batch_get_secret_value", SecretIdList=list(arns))
        out: dict[str, SourceValue | str] = {}
        for entry in answer.get("SecretValues", []):
            binary = entry.get("SecretBinary")
            out[entry["ARN"]] = SourceValue(entry["ARN"], entry["VersionId"], entry.get("SecretString"),
                                            bytes(binary) if binary is not None else None)
        for error in answer.get("Errors", []):
            out.setdefault(error.get("SecretId", ""), f"{error.get('ErrorCode', 'error')}: "
                                                      f"{error.get('Message', '')}".strip())
        for arn in arns:
            out.setdefault(arn, "no value returned (deleted since it was listed?)")
        return out
