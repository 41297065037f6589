#!/usr/bin/env python3
"""Derive the facts the value tests need from a Helm chart, as JSON: every value path the chart
knows, the type (and allowed values) its schema gives each path, and which paths are free-form.

    helm pull vault --repo https://helm.releases.hashicorp.com --version 0.34.1 --untar -d /tmp/c
    python scripts/chart_facts.py /tmp/c/vault > tests/facts/charts/vault-0.34.1.json

The source is an unpacked chart (Chart.yaml, values.yaml, templates/, values.schema.json), or a
folder holding Chart.yaml, values.yaml, values.schema.json and value-paths.txt (the paths the
templates read, one per line) instead of templates/. Only facts are written, never upstream text:
no comments, no defaults, no descriptions. `make chart-facts` regenerates every committed file.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

GENERATOR = "scripts/chart_facts.py"


def value_paths(values: object, prefix: str = "") -> dict[str, Any]:
    """Every key path of values.yaml -> its default."""
    out: dict[str, Any] = {}
    if isinstance(values, dict):
        for key, child in values.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out[path] = child
            out.update(value_paths(child, path))
    return out


def template_paths(chart: Path) -> set[str]:
    """Every `.Values.x.y` the templates read (and each of its prefixes)."""
    out: set[str] = set()
    listed = chart / "value-paths.txt"
    if not (chart / "templates").is_dir() and listed.exists():
        return {line.strip() for line in listed.read_text().splitlines() if line.strip() and not line.startswith("#")}
    for template in (chart / "templates").rglob("*"):
        if template.is_file():
            for match in re.finditer(r"\.Values\.([A-Za-z0-9_.]+)", template.read_text(errors="replace")):
                parts = match.group(1).rstrip(".").split(".")
                for i in range(1, len(parts) + 1):
                    out.add(".".join(parts[:i]))
    return out


def schema_facts(schema: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """path -> {"types": [...], "enum": [...]} from a draft-07 values schema."""
    out: dict[str, dict[str, Any]] = {}
    for key, node in (schema.get("properties") or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        fact: dict[str, Any] = {}
        if "type" in node:
            fact["types"] = sorted([node["type"]] if isinstance(node["type"], str) else node["type"])
        if "enum" in node:
            fact["enum"] = node["enum"]
        if fact:
            out[path] = fact
        out.update(schema_facts(node, path))
    return out


def is_free_form(default: Any) -> bool:
    """A default that holds anything the user puts there: null, a string (a config text or a
    template), or an empty map or list (resources, annotations, extra env)."""
    return default is None or isinstance(default, str) or default in ({}, [])


def facts(chart: Path) -> dict[str, Any]:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    defaults = value_paths(yaml.safe_load((chart / "values.yaml").read_text()) or {})
    schema_file = chart / "values.schema.json"
    typed = schema_facts(json.loads(schema_file.read_text())) if schema_file.exists() else {}
    paths = sorted(set(defaults) | template_paths(chart) | set(typed))
    return {
        "generatedBy": GENERATOR,
        "chart": meta["name"],
        "version": str(meta["version"]),
        "appVersion": str(meta.get("appVersion", "")),
        "paths": {p: typed.get(p, {}) for p in paths},
        "freeForm": sorted(p for p, d in defaults.items() if is_free_form(d)),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(facts(Path(argv[1])), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
