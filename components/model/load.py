"""From what Pulumi hands the program to a validated PlatformConfig, or one error listing every
problem, each naming the key, the value (never a secret one) and what is allowed."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from components.model import rules
from components.model.checks import closest
from components.model.platform import SECRET_KEYS, TOP_LEVEL_KEYS, PlatformConfig
from components.model.problems import Problems
from components.model.types import PROJECT, show


def _decode(raw: Any) -> Any:
    """Pulumi hands structured values over as JSON text and scalars as plain strings."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def given_paths(value: Any, prefix: str = "") -> set[str]:
    """Every dotted key path a user wrote (list items by index, ``applications[0].name``), to tell a set
    value from a default. A null, an empty list and an empty map set nothing."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            if child is None or child == [] or child == {}:
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            found.add(path)
            found |= given_paths(child, path)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found |= given_paths(child, f"{prefix}[{i}]")
    return found


def plain_secret_leaves(stack_file: Mapping[str, Any] | None) -> list[str]:
    """Paths under ``vault-platform:secrets`` in a stack file whose value is not ``secure:``.

    Pulumi marks the whole key secret once one value in it is, so the program cannot tell from the
    config alone that a token beside a secure value was left in clear text in the file.
    """
    config = (stack_file or {}).get("config") or {}
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict) and set(value) != {"secure"}:
            for key, child in value.items():
                walk(child, f"{path}.{key}")
        elif isinstance(value, list):
            for i, child in enumerate(value):
                walk(child, f"{path}[{i}]")
        elif not (isinstance(value, dict) and isinstance(value.get("secure"), str)):
            found.append(path)

    for key in SECRET_KEYS:
        if f"{PROJECT}:{key}" in config:
            walk(config[f"{PROJECT}:{key}"], key)
    return found


def load_config(raw: Mapping[str, Any], secret_keys: set[str] | frozenset[str] = frozenset(), *,
                stack_file: Mapping[str, Any] | None = None) -> PlatformConfig:
    """Parse ``{"vault-platform:<key>": value}`` into a validated PlatformConfig or raise ConfigError.

    ``stack_file``: the parsed Pulumi.<stack>.yaml the config came from, when there is one; it shows
    which values under ``secrets`` are really ``secure:``.
    """
    problems = Problems()
    for path in plain_secret_leaves(stack_file):
        problems.add(path, "is in plain text in the stack file; every value under secrets must be secure: set it "
                           f"with `pulumi config set --secret --path '{path}' <value>` (the value is not shown)")
    prefix = PROJECT + ":"
    values: dict[str, Any] = {}
    for full_key, value in raw.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        decoded = _decode(value)
        # Pulumi.yaml declares {} or [] as the project default of optional maps and lists: that
        # means "not set", so the program's own defaults apply. (An unknown key is refused, empty or not.)
        if decoded in ({}, []) and key in TOP_LEVEL_KEYS:
            continue
        # Scalars arrive as text; a value meant as text that looks like JSON is still text.
        if key == "environment" and not isinstance(decoded, str):
            decoded = value
        values[key] = decoded
    for key in SECRET_KEYS:
        if key in values and prefix + key not in secret_keys:
            problems.add(key, "holds secrets but is stored in plain text; set every value in it with "
                              "`pulumi config set --secret --path 'secrets.<name>' <value>`")
            values.pop(key)
    given = given_paths(values)
    try:
        config = PlatformConfig.model_validate_json(json.dumps(values))
    except ValidationError as err:
        for error in err.errors(include_url=False):
            problems.add(*describe(error))
        problems.raise_if_any()
        raise  # unreachable: a ValidationError has at least one error
    problems.raise_if_any()
    config = rules.apply_environment_defaults(config)
    rules.check(config, problems, given)
    problems.raise_if_any()
    return config


# --- turning pydantic's errors into ours ------------------------------------------------------------

def config_key(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part != "[key]":
            key += f".{part}" if key else str(part)
    return key


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation


def _walk(loc: tuple[Any, ...]) -> tuple[Any, Any]:
    """The (annotation, pydantic field) at a location, following aliases, list items and map values."""
    annotation: Any = PlatformConfig
    field = None
    for part in loc:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
            by_alias = {(f.alias or n): f for n, f in annotation.model_fields.items()}
            field = by_alias.get(part)
            if field is None:
                return None, None
            annotation = field.annotation if not field.metadata else Annotated[(field.annotation, *field.metadata)]
        elif origin in (tuple, list) and isinstance(part, int):
            annotation = get_args(annotation)[0]
        elif origin is dict and part != "[key]":
            annotation = get_args(annotation)[1]
        elif part == "[key]":
            annotation = str
        else:
            return None, None
    return annotation, field


def known_keys(loc: tuple[Any, ...]) -> list[str]:
    annotation = _unwrap(_walk(loc)[0]) if loc else PlatformConfig
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


def _all_keys(model: type[BaseModel], prefix: str = "", depth: int = 0) -> list[str]:
    found: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}.{field.alias or name}" if prefix else (field.alias or name)
        found.append(key)
        inner = _unwrap(field.annotation)
        if get_origin(inner) in (tuple, list):
            inner, key = _unwrap(get_args(inner)[0]), key + "[]"
        if isinstance(inner, type) and issubclass(inner, BaseModel) and depth < 6:
            found += _all_keys(inner, key, depth + 1)
    return found


def _found_elsewhere(word: str, exact_only: bool = False) -> list[str]:
    """Full paths of settings spelled like ``word`` anywhere in the model (``replicas`` given at the
    top level belongs under ``cluster``)."""
    paths = _all_keys(PlatformConfig)
    exact = [p for p in paths if p.rsplit(".", 1)[-1] == word]
    if exact or exact_only:
        return exact
    near = closest(word, sorted({p.rsplit(".", 1)[-1] for p in paths}))
    return [p for p in paths if near and p.rsplit(".", 1)[-1] == near]


def describe(error: Mapping[str, Any]) -> tuple[str, str]:
    """(config key, message) for one pydantic error."""
    loc = tuple(error["loc"])
    key = config_key(loc)
    kind = error["type"]
    value = error.get("input")
    # Nothing under `secrets` is ever shown, whatever its shape.
    shown = "[a secret value]" if loc[:1] == ("secrets",) else show(value)
    annotation, field = _walk(loc)
    if kind == "extra_forbidden":
        known = known_keys(loc[:-1])
        # A key spelled exactly like one elsewhere was put in the wrong place (`replicas` at the top
        # level belongs under `cluster`); that beats a look-alike here.
        prefix = config_key(loc[:-1])
        exact = [p for p in _found_elsewhere(str(loc[-1]), exact_only=True)
                 if p.rsplit(".", 1)[0] != prefix]
        # Shallower places first: `replicas` at the top level most likely meant cluster.replicas.
        candidates = sorted(exact, key=lambda p: p.count(".")) if exact else \
            [near] if (near := closest(str(loc[-1]), known)) else _found_elsewhere(str(loc[-1]))
        hint = " or ".join(f"'{c}'" for c in candidates[:2])
        return key, ("unknown setting" + (f" (did you mean {hint}?)" if hint else "")
                     + f"; known settings here: {', '.join(sorted(known))}")
    if kind == "missing":
        return key, "is required" + (f": {field.description}" if field is not None and field.description else "")
    if kind == "rule":
        message = error["ctx"]["message"]
        return key, f"{shown} {message}" if loc[:1] != ("secrets",) else f"has a value that {message}"
    if kind == "literal_error":
        literal = _unwrap(annotation)
        allowed = [str(a) for a in get_args(literal)] if get_origin(literal) is Literal else [error["ctx"]["expected"]]
        return key, f"{shown} is not allowed; use one of: {', '.join(allowed)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return key, f"{shown} is not an integer"
    if kind in ("bool_type", "bool_parsing"):
        return key, f"{shown} is not a boolean; use true or false"
    if kind == "string_type":
        return key, f"{shown} is not a string" + (" (a secret is a string set with `pulumi config set --secret`)"
                                                  if loc[:1] == ("secrets",) else "")
    if kind in ("model_type", "model_attributes_type", "dict_type", "mapping_type"):
        return key, f"expected a map, got {shown}"
    if kind in ("list_type", "tuple_type"):
        return key, f"expected a list, got {shown}"
    return key, f"{shown}: {error['msg']}"


# --- reading the stack's config from the Pulumi runtime ------------------------------------------------

def load_from_pulumi() -> PlatformConfig:
    """Read this stack's config as the Pulumi runtime hands it to the program, and validate it.

    Every ``vault-platform:`` key the runtime holds is read, not only the ones the model declares: a
    misspelled key is refused wherever it came from (the stack file, ``--config-file``, a Pulumi ESC
    environment, the Automation API).
    """
    import pulumi
    from pulumi import runtime

    env_secret_keys = set(runtime.get_config_secret_keys_env())
    raw: dict[str, Any] = {}
    secret_keys: set[str] = set()
    names = set(PlatformConfig.model_fields) | {f.alias for f in PlatformConfig.model_fields.values() if f.alias}
    stack_file = read_stack_file(Path.cwd() / f"Pulumi.{pulumi.get_stack()}.yaml")
    names |= project_keys((stack_file or {}).get("config", {}))
    names |= project_keys(runtime_config())
    for name in names:
        full = f"{PROJECT}:{name}"
        value = runtime.get_config(full)
        if value is None:
            continue
        raw[full] = value
        if runtime.is_config_secret(full) or full in env_secret_keys:
            secret_keys.add(full)
    return load_config(raw, secret_keys, stack_file=stack_file)


def runtime_config() -> dict[str, Any]:
    """Every config value the runtime holds: what the language host passes the program in PULUMI_CONFIG
    (the CLI's merged config: stack file, --config-file, ESC environments), and what is set in-process
    (the Automation API's inline programs, Pulumi's test mocks)."""
    from pulumi.runtime import config

    found = dict(config.get_config_env())
    found.update(config.CONFIG.get())
    return found


def project_keys(config: Mapping[str, Any]) -> set[str]:
    """The names of this project's keys (``vault-platform:<name>``) in a config map."""
    return {k.split(":", 1)[1] for k in config if isinstance(k, str) and k.startswith(PROJECT + ":")}


def read_stack_file(path: Path) -> dict[str, Any] | None:
    """The stack file the CLI read the config from (it runs the program in the project folder):
    its keys show a misspelled top-level key, its `secure:` markers a secret left in plain text."""
    if not path.exists():
        return None
    import yaml

    return yaml.safe_load(path.read_text()) or {}
