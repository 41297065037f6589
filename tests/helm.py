"""helm and the Vault chart for the chart tests, from tools/helm/build.sh. Both come from the Go
module proxy: helm built from helm.sh/helm/v3, the chart the module zip of
github.com/hashicorp/vault-helm, checked against tools/helm/go.sum."""

from __future__ import annotations

import pathlib
import re

from tests.build_tools import ROOT, built_tool

BUILD_SCRIPT = ROOT / "tools" / "helm" / "build.sh"


def chart_version() -> str:
    """The vault-helm version tools/helm/go.mod pins (the one the chart tests render)."""
    go_mod = (BUILD_SCRIPT.parent / "go.mod").read_text()
    match = re.search(r"^require github\.com/hashicorp/vault-helm v(\S+)$", go_mod, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{BUILD_SCRIPT.parent / 'go.mod'} pins no github.com/hashicorp/vault-helm version")
    return match.group(1)


def helm_and_chart(timeout: float = 3600.0) -> tuple[pathlib.Path, pathlib.Path]:
    """(helm, the unpacked vault chart); RuntimeError (with the build's last lines) when they cannot
    be had."""
    helm = built_tool(BUILD_SCRIPT, timeout)
    # The script unpacks the chart beside bin/: <cache>/charts/vault-helm-<version>.
    chart = helm.parent.parent / "charts" / f"vault-helm-{chart_version()}"
    if not (chart / "Chart.yaml").is_file():
        raise RuntimeError(f"{BUILD_SCRIPT} left no chart at {chart}")
    return helm, chart
