#!/usr/bin/env python3
"""Derive the structural schema of each served version of a CustomResourceDefinition, as JSON: the
facts the API server enforces (types, properties, required fields, enums, formats, patterns,
bounds, where unknown fields are kept), without upstream prose (descriptions) or defaults.

    python scripts/crd_facts.py external-secrets.io_externalsecrets.yaml > tests/facts/crds/...

`make crd-facts CRDS=<folder>` regenerates every committed file from a folder of CRD manifests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

GENERATOR = "scripts/crd_facts.py"
# What validation depends on. Everything else (description, default, example, x-kubernetes-list-*
# hints) is documentation or server-side defaulting.
KEPT = {
    "type", "properties", "required", "items", "enum", "format", "pattern", "additionalProperties",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems",
    "maxItems", "minProperties", "maxProperties", "uniqueItems", "nullable", "anyOf", "oneOf", "allOf", "not",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
}


def reduce(node: Any) -> Any:
    if isinstance(node, list):
        return [reduce(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in KEPT:
            continue
        if key == "properties":
            out[key] = {name: reduce(child) for name, child in value.items()}
        elif key in ("enum", "required"):
            out[key] = value
        else:
            out[key] = reduce(value)
    return out


def facts(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd["spec"]
    return {
        "generatedBy": GENERATOR,
        "group": spec["group"],
        "kind": spec["names"]["kind"],
        "plural": spec["names"]["plural"],
        "scope": spec["scope"],
        "versions": {v["name"]: {"storage": bool(v.get("storage")),
                                 "schema": reduce(v["schema"]["openAPIV3Schema"])}
                     for v in spec["versions"] if v.get("served")},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    crd = yaml.safe_load(Path(argv[1]).read_text())
    if crd.get("kind") != "CustomResourceDefinition":
        print(f"{argv[1]}: not a CustomResourceDefinition", file=sys.stderr)
        return 1
    json.dump(facts(crd), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
