#!/usr/bin/env python3
"""Print every value path an unpacked Helm chart knows: the key paths of its values.yaml plus every
`.Values.x.y` its templates reference. Used to refresh the chart reference for a new chart version.

    helm pull hashicorp/vault --version 0.34.1 --untar
    python scripts/chart_value_paths.py vault/ > value-paths.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml


def value_paths(values: object, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(values, dict):
        for key, child in values.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.add(path)
            out |= value_paths(child, path)
    return out


def template_paths(chart: Path) -> set[str]:
    out: set[str] = set()
    for template in (chart / "templates").rglob("*"):
        if template.is_file():
            for match in re.finditer(r"\.Values\.([A-Za-z0-9_.]+)", template.read_text(errors="replace")):
                parts = match.group(1).rstrip(".").split(".")
                for i in range(1, len(parts) + 1):
                    out.add(".".join(parts[:i]))
    return out


def main(chart_dir: str) -> int:
    chart = Path(chart_dir)
    paths = value_paths(yaml.safe_load((chart / "values.yaml").read_text())) | template_paths(chart)
    for path in sorted(paths):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
