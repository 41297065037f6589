"""The hashicorp/vault chart's own description of its values: used to prove every values path the
program sets exists in the chart (Helm silently ignores a misspelled key).

Looked up in $VAULT_HELM_REFERENCE, else .tools/chart-reference (made by `make chart-reference`),
else ../shared/reference/vault-helm-<version> beside the repo.
Make one for another chart version with scripts/chart_value_paths.py from an unpacked chart.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART_VERSION = "0.34.1"


def reference_dir(version: str = CHART_VERSION) -> Path:
    env = os.environ.get("VAULT_HELM_REFERENCE")
    candidates = [Path(env)] if env else []
    # What `make chart-reference` writes, then the reference copy kept beside the repo.
    candidates.append(ROOT / ".tools" / "chart-reference")
    candidates.append(ROOT.parent / "shared" / "reference" / f"vault-helm-{version}")
    for path in candidates:
        if (path / "value-paths.txt").exists():
            return path
    raise FileNotFoundError(
        f"chart reference for vault-helm {version} not found (looked in {', '.join(map(str, candidates))}). "
        "Run `make chart-reference` (needs helm), or unpack the chart "
        f"(`helm pull hashicorp/vault --version {version} --untar`), run "
        "`python scripts/chart_value_paths.py vault/ > DIR/value-paths.txt`, copy its values.yaml and "
        "values.schema.json into DIR, and set VAULT_HELM_REFERENCE=DIR.")


@lru_cache(maxsize=4)
def known_paths(version: str = CHART_VERSION) -> frozenset[str]:
    text = (reference_dir(version) / "value-paths.txt").read_text()
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=4)
def default_values(version: str = CHART_VERSION) -> dict[str, Any]:
    return yaml.safe_load((reference_dir(version) / "values.yaml").read_text())


@lru_cache(maxsize=4)
def schema(version: str = CHART_VERSION) -> dict[str, Any]:
    return json.loads((reference_dir(version) / "values.schema.json").read_text())


def _default_at(path: str, version: str) -> tuple[bool, Any]:
    node: Any = default_values(version)
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def is_free_form(value: Any) -> bool:
    return value is None or isinstance(value, str) or value in ({}, [])


def unknown_paths(paths: list[str], version: str = CHART_VERSION) -> list[str]:
    """Paths the chart does not know: neither listed, nor below a listed free-form prefix."""
    known = known_paths(version)
    bad = []
    for path in paths:
        if path in known:
            continue
        parts = path.split(".")
        ok = False
        for i in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in known:
                found, default = _default_at(prefix, version)
                ok = found and is_free_form(default)
                break
        if not ok:
            bad.append(path)
    return bad
