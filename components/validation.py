"""Typed parsing of stack config into frozen dataclasses, and the value checks it relies on.

Every error names the full config key (``vault-platform:cluster.replicas``), the value it got and
what is allowed, so a user fixing a stack file never has to read the program.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import pulumi

PROJECT = "vault-platform"


class ConfigError(pulumi.RunError):
    """Raised for invalid stack config; RunError makes Pulumi print the message without a traceback."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid stack configuration ({len(self.problems)} problem(s)):\n{lines}")


class Problems:
    """Collects every problem of one config load so the user sees all of them at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{PROJECT}:{key}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


class Secret:
    """A config value that must stay secret. Its repr never shows the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def output(self) -> pulumi.Output[str]:
        return pulumi.Output.secret(self._value)

    def __repr__(self) -> str:
        return "Secret(***)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def doc(text: str, *, key: str | None = None, check: Callable[[Any], str | None] | None = None,
        default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    """Declare a config field: its description, optional stack key spelling and value check.

    ``check`` returns None when the value is fine, or a sentence saying what is allowed.
    """
    meta = {"doc": text, "key": key, "check": check}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def stack_key(field: dataclasses.Field) -> str:
    return field.metadata.get("key") or camel(field.name)


def show(value: Any) -> str:
    if isinstance(value, Secret):
        return "[secret]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean (true or false)", float: "a number"}


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if tp in _TYPE_NAMES:
        return _TYPE_NAMES[tp]
    if tp is Secret:
        return "a secret string"
    if origin is list:
        return "a list"
    if origin is dict:
        return "a map"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if dataclasses.is_dataclass(tp):
        return "a map"
    return str(tp)


def parse(tp: Any, raw: Any, key: str, problems: Problems, *, secret: bool = False) -> Any:
    """Parse ``raw`` into ``tp``; on a problem record it and return None."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if raw is None:
            return None
        return parse(args[0], raw, key, problems, secret=secret)
    if tp is Secret:
        if not isinstance(raw, str):
            problems.add(key, f"expected a secret string, got {type(raw).__name__}")
            return None
        if not secret:
            problems.add(key, "holds a secret but is stored in plain text; set it with "
                              "`pulumi config set --secret` (or `--path --secret` inside a map)")
            return None
        return Secret(raw)
    if origin is Literal:
        allowed = get_args(tp)
        if raw not in allowed:
            problems.add(key, f"{show(raw)} is not allowed; use one of: {', '.join(map(str, allowed))}")
            return None
        return raw
    if dataclasses.is_dataclass(tp):
        if not isinstance(raw, dict):
            problems.add(key, f"expected a map, got {show(raw)}")
            return None
        return parse_dataclass(tp, raw, key, problems, secret=secret)
    if origin is list:
        if not isinstance(raw, list):
            problems.add(key, f"expected a list, got {show(raw)}")
            return None
        (item,) = get_args(tp)
        return tuple(parse(item, v, f"{key}[{i}]", problems, secret=secret) for i, v in enumerate(raw))
    if origin is dict:
        if not isinstance(raw, dict):
            problems.add(key, f"expected a map, got {show(raw)}")
            return None
        _, value_tp = get_args(tp)
        return types.MappingProxyType(
            {str(k): parse(value_tp, v, f"{key}.{k}", problems, secret=secret) for k, v in raw.items()})
    if tp is bool:
        if not isinstance(raw, bool):
            problems.add(key, f"{show(raw)} is not a boolean; use true or false")
            return None
        return raw
    if tp is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            problems.add(key, f"{show(raw)} is not an integer")
            return None
        return raw
    if tp is float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            problems.add(key, f"{show(raw)} is not a number")
            return None
        return float(raw)
    if tp is str:
        if not isinstance(raw, str):
            problems.add(key, f"{show(raw)} is not a string")
            return None
        return raw
    raise TypeError(f"unsupported config type {tp!r} at {key}")


def parse_dataclass(cls: type, raw: dict, key: str, problems: Problems, *, secret: bool = False) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {stack_key(f): f for f in dataclasses.fields(cls)}
    for unknown in sorted(set(raw) - set(fields)):
        hint = _closest(unknown, list(fields))
        problems.add(f"{key}.{unknown}" if key else unknown,
                     "unknown setting" + (f" (did you mean '{hint}'?)" if hint else "")
                     + f"; known settings here: {', '.join(sorted(fields))}")
    values: dict[str, Any] = {}
    failed = False
    for skey, f in fields.items():
        sub = f"{key}.{skey}" if key else skey
        if skey in raw:
            before = len(problems.items)
            value = parse(hints[f.name], raw[skey], sub, problems, secret=secret)
            if len(problems.items) != before:
                failed = True
                continue
            check = f.metadata.get("check")
            if check is not None and value is not None:
                message = check(value)
                if message:
                    problems.add(sub, f"{show(value)} {message}")
                    failed = True
                    continue
            values[f.name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.add(sub, f"is required: {f.metadata.get('doc', '')}")
            failed = True
    if failed:
        return None
    return cls(**values)


def _closest(word: str, options: list[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return match[0] if match else None


# --- value checks: each returns None when fine, else what is allowed -------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9*]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|ms|s|m|h|d))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h|d)")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_QUANTITY_FACTOR = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                    "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
                    "E": 1e18}


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


_CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_CRON_NAMES = [None, None, None,
               {n: i + 1 for i, n in enumerate(
                   ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])},
               {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}]
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _cron_field(text: str, low: int, high: int, names: dict | None) -> bool:
    for part in text.split(","):
        step = None
        if "/" in part:
            part, step = part.split("/", 1)
            if not step.isdigit() or int(step) == 0:
                return False
        if part == "*":
            continue
        bounds = part.split("-", 1)
        numbers = []
        for bound in bounds:
            if names and bound.lower() in names:
                numbers.append(names[bound.lower()])
            elif bound.isdigit():
                numbers.append(int(bound))
            else:
                return False
        if any(n < low or n > high for n in numbers):
            return False
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            return False
    return True


def cron(value: str) -> str | None:
    """Kubernetes CronJob schedules: five fields (minute hour day-of-month month day-of-week) or a macro."""
    problem = ("is not a cron schedule (five fields: minute hour day-of-month month day-of-week, "
               "e.g. '0 */6 * * *', or a macro such as @daily)")
    if value.strip() in _CRON_MACROS:
        return None
    fields = value.split()
    if len(fields) != 5:
        return problem
    for text, (low, high), names in zip(fields, _CRON_RANGES, _CRON_NAMES, strict=True):
        if not _cron_field(text, low, high, names):
            return problem
    return None


def one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in allowed else f"is not allowed; use one of: {', '.join(allowed)}"
    return check


def at_least(minimum: int) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return None if value >= minimum else f"is too small; the minimum is {minimum}"
    return check


def between(low: int, high: int) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"is out of range; allowed: {low} to {high}"
    return check


def https_url(value: str) -> str | None:
    if re.match(r"^https://[^/\s:]+(:\d{1,5})?(/\S*)?$", value):
        return None
    return "is not an https:// URL (Vault is only ever reached over TLS)"


def each(check: Callable[[Any], str | None]) -> Callable[[tuple], str | None]:
    def run(values: tuple) -> str | None:
        for v in values:
            message = check(v)
            if message:
                return f"has an entry {show(v)} that {message}"
        return None
    return run
