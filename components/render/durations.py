"""Durations as each consumer writes them. Pure.

The config takes Go-style durations plus days (``7d``); Go's parser (Vault, the External Secrets
Operator) has no days, Prometheus has days but no compound units, and Vault answers with Go's own
canonical form (``10m0s``), which is what a resource must send to read back without a diff.
"""

from __future__ import annotations

from components.model.checks import duration_seconds

_NANOS = 1_000_000_000


def go_duration(value: str) -> str:
    """``value`` in a form Go's time.ParseDuration reads, in its largest whole unit (``7d`` -> ``168h``)."""
    seconds = int(duration_seconds(value))
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def go_duration_string(value: str) -> str:
    """``value`` as Go's time.Duration.String() prints it (``10m`` -> ``10m0s``, ``90s`` -> ``1m30s``,
    ``500ms`` -> ``500ms``): what Vault returns for a duration it stored."""
    nanos = round(duration_seconds(value) * _NANOS)
    if nanos == 0:
        return "0s"
    if nanos < _NANOS:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return f"{_trim(nanos / size)}{unit}"
    hours, rest = divmod(nanos, 3600 * _NANOS)
    minutes, rest = divmod(rest, 60 * _NANOS)
    text = f"{_trim(rest / _NANOS)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def _trim(number: float) -> str:
    return f"{number:.9f}".rstrip("0").rstrip(".")


def prometheus_duration(seconds: int) -> str:
    """Prometheus duration text for whole seconds, in its largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
