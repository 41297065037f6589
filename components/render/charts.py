"""Where Helm gets a chart from: a chart repository, an OCI registry or a copy on disk. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChartSource:
    """What a Helm release is given: ``chart`` (a name, an oci:// reference or a path) and, for a
    chart repository only, ``repository``."""

    chart: str
    repository: str | None


def chart_source(name: str, repository: str, path: str) -> ChartSource:
    """``path`` (a folder or .tgz) wins; an ``oci://`` repository holds the chart at <repository>/<name>."""
    if path:
        return ChartSource(chart=path, repository=None)
    if repository.startswith("oci://"):
        return ChartSource(chart=f"{repository.rstrip('/')}/{name}", repository=None)
    return ChartSource(chart=name, repository=repository)
