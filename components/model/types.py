"""The building blocks of the typed config: the base of every section, secret values, and the
annotated types that attach a value rule (components.model.checks) to a field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, Strict, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components.model import checks

PROJECT = "vault-platform"


class Secret(SecretStr):
    """A config value that must stay secret: its repr, str and any error message never show it."""

    def reveal(self) -> str:
        return self.get_secret_value()

    def output(self) -> pulumi.Output[str]:
        return pulumi.Output.secret(self.get_secret_value())

    def __repr__(self) -> str:
        return "Secret(***)"


def rule(check: checks.Check) -> AfterValidator:
    """Run a value rule after the type is checked; its sentence becomes the error message."""

    def validate(value: Any) -> Any:
        message = check(value)
        if message:
            raise PydanticCustomError("rule", "{message}", {"message": message})
        return value

    return AfterValidator(validate)


class JsonSchema:
    """JSON Schema keywords for the published stack schema (schema/stack-config.schema.json), beside a
    rule the program itself runs: an editor flags what the schema can express before a run does."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> Any:
        schema = handler(core_schema)
        schema.update(self.keywords)
        return schema


def each(check: checks.Check) -> Callable[[Any], str | None]:
    def run(values: Any) -> str | None:
        for value in values:
            message = check(value)
            if message:
                return f"has an entry {show(value)} that {message}"
        return None
    return run


# Scalars are strict: "3" is not an integer and "yes" is not a boolean.
Str = Annotated[str, Strict()]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
DnsLabel = Annotated[str, Strict(), rule(checks.dns_label)]
DnsName = Annotated[str, Strict(), rule(checks.dns_name)]
Duration = Annotated[str, Strict(), rule(checks.duration)]
Quantity = Annotated[str, Strict(), rule(checks.quantity)]
HttpsUrl = Annotated[str, Strict(), rule(checks.https_url)]
MountPath = Annotated[str, Strict(), rule(checks.mount_path)]
VaultPath = Annotated[str, Strict(), rule(checks.vault_path)]
Pem = Annotated[str, Strict(), rule(checks.pem_or_empty)]
Cron = Annotated[str, Strict(), rule(checks.cron)]
VaultName = Annotated[str, Strict(), rule(checks.vault_name)]


def Between(low: int, high: int) -> Any:  # noqa: N802 - reads like a type in field declarations
    return Annotated[int, Strict(), rule(checks.between(low, high))]


def setting(description: str, default: Any = ..., *, factory: Callable[[], Any] | None = None) -> Any:
    """Declare a config field: what it does (the reference and the JSON Schema show it) and its
    default. Without a default or factory the setting is required."""
    if factory is not None:
        return Field(default_factory=factory, description=description)
    return Field(default, description=description)


def _merge(default: Any, given: Any) -> Any:
    if isinstance(default, dict) and isinstance(given, dict):
        return {**default, **{k: _merge(default.get(k), v) for k, v in given.items()}}
    return given


class Section(BaseModel):
    """One map of the stack config: camelCase keys, unknown keys refused, frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True,
                              validate_default=False, hide_input_in_errors=True)

    @model_validator(mode="before")
    @classmethod
    def _keep_nested_defaults(cls, data: Any) -> Any:
        """A partly given map keeps the defaults of the keys it leaves out.

        Without this, ``cluster.resources: {limits: {memory: 1Gi}}`` would build the limits from the
        class defaults of its type (shared with requests), not from this field's own defaults.
        """
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key not in data or not isinstance(data[key], dict) or field.default_factory is None:
                continue
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                merged[key] = _merge(default.model_dump(by_alias=True, mode="json"), data[key])
        return merged


def show(value: Any) -> str:
    """A value as the user wrote it in YAML (flow style), shortened; a secret never shows."""
    if isinstance(value, SecretStr):
        return "[secret]"
    text = _yaml(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return "'" + redact_url_password(value).replace("'", "''") + "'"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, BaseModel):
        return _yaml(value.model_dump(by_alias=True, mode="json"))
    return repr(value)


def redact_url_password(text: str) -> str:
    """A URL with its password replaced (``postgresql://admin:***@db``); {{password}} templates stay."""
    import re

    return re.sub(r"(://[^/:@\s]*:)(?!\{\{password\}\})[^@/\s]+(@)", r"\1***\2", text)
