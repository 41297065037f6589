"""Facts about what the program's output is sent to, committed in the repo and generated from the
upstream files by scripts (never copies of them):

- ``charts/<chart>-<version>.json`` (scripts/chart_facts.py): every value path a Helm chart knows,
  the schema's type for each, and which paths are free-form. Helm silently ignores a misspelled
  values key, so the tests prove every path the program sets is one the chart reads.
- ``crds/<group>_<plural>.json`` (scripts/crd_facts.py): the structural schema of each served
  version of a CustomResourceDefinition. The API server prunes unknown fields silently, so the
  tests refuse them here.

`make chart-facts` / `make crd-facts` regenerate them when a chart or operator is bumped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

FACTS = Path(__file__).resolve().parent

# JSON Schema type names a Python value satisfies.
_JSON_TYPES: tuple[tuple[type, tuple[str, ...]], ...] = (
    (bool, ("boolean",)),
    (int, ("integer", "number")),
    (float, ("number",)),
    (str, ("string",)),
    (dict, ("object",)),
    (list, ("array",)),
    (tuple, ("array",)),
    (type(None), ("null",)),
)


# --- Helm charts -----------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def chart(name: str, version: str) -> dict[str, Any]:
    path = FACTS / "charts" / f"{name}-{version}.json"
    if not path.exists():
        have = sorted(p.stem for p in (FACTS / "charts").glob("*.json"))
        raise FileNotFoundError(
            f"no chart facts for {name} {version} (have: {', '.join(have)}). After bumping the chart, run "
            f"`make chart-facts` (or scripts/chart_facts.py on the unpacked chart) and commit {path.name}.")
    return json.loads(path.read_text())


def all_paths(values: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) a values tree sets, maps included; list items are leaves."""
    if isinstance(values, dict):
        for key, value in values.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, value
            yield from all_paths(value, path)


def set_paths(values: Any) -> list[str]:
    """Every leaf path a values tree sets (lists and empty maps count as leaves)."""
    return [p for p, v in all_paths(values) if not (isinstance(v, dict) and v)]


def unknown_paths(facts: dict[str, Any], paths: Iterable[str]) -> list[str]:
    """Paths the chart does not read: neither listed, nor below a listed free-form prefix."""
    known, free = facts["paths"], set(facts["freeForm"])
    bad = []
    for path in paths:
        if path in known:
            continue
        parts = path.split(".")
        prefixes = [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
        nearest = next((p for p in prefixes if p in known), None)
        if nearest is None or nearest not in free:
            bad.append(path)
    return bad


def type_problems(facts: dict[str, Any], values: Any) -> list[str]:
    """Values whose type or value the chart's schema refuses, as "path: what" lines."""
    problems = []
    for path, value in all_paths(values):
        fact = facts["paths"].get(path) or {}
        types = fact.get("types")
        if types:
            have = next(names for tp, names in _JSON_TYPES if isinstance(value, tp))
            if isinstance(value, float) and value.is_integer():
                # Values that crossed the Pulumi engine are protobuf doubles; JSON Schema counts 8200.0
                # as an integer too.
                have = ("integer", "number")
            if not set(have) & set(types):
                problems.append(f"{path}: {type(value).__name__} {value!r:.60} where the chart wants {'/'.join(types)}")
        if "enum" in fact and value not in fact["enum"]:
            problems.append(f"{path}: {value!r} is not one of {fact['enum']}")
    return problems


# --- CustomResourceDefinitions ----------------------------------------------------------------------

@lru_cache(maxsize=32)
def crd(group: str, plural: str) -> dict[str, Any]:
    path = FACTS / "crds" / f"{group}_{plural}.json"
    if not path.exists():
        raise FileNotFoundError(f"no CRD facts for {plural}.{group}; run `make crd-facts` and commit {path.name}")
    return json.loads(path.read_text())


def _crd_for(api_version: str, kind: str) -> tuple[dict[str, Any], str]:
    group, _, version = api_version.partition("/")
    for path in sorted((FACTS / "crds").glob(f"{group}_*.json")):
        facts = json.loads(path.read_text())
        if facts["kind"] == kind:
            if version not in facts["versions"]:
                raise AssertionError(f"{kind} {api_version}: version {version!r} is not served; served: "
                                     f"{', '.join(facts['versions'])}")
            return facts, version
    raise AssertionError(f"no CRD facts for kind {kind} in group {group}")


def structural_to_jsonschema(node: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI v3 structural schema as JSON Schema, refusing unknown fields where the API server
    would prune them (objects with properties and no x-kubernetes-preserve-unknown-fields)."""
    out: dict[str, Any] = {}
    typ = node.get("type")
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif typ:
        out["type"] = [typ, "null"] if node.get("nullable") else typ
    for key in ("enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
                "minProperties", "maxProperties", "uniqueItems", "required"):
        if key in node:
            out[key] = node[key]
    if "properties" in node:
        out["properties"] = {k: structural_to_jsonschema(v) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = structural_to_jsonschema(node["items"])
    if "additionalProperties" in node:
        extra = node["additionalProperties"]
        out["additionalProperties"] = extra if isinstance(extra, bool) else structural_to_jsonschema(extra)
    elif (typ == "object" and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields")
          and not node.get("x-kubernetes-embedded-resource")):
        out["additionalProperties"] = False
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            out.setdefault("allOf", []).append({key: [structural_to_jsonschema(n) for n in node[key]]})
    if "not" in node:
        out["not"] = structural_to_jsonschema(node["not"])
    return out


def custom_resource_problems(manifest: dict[str, Any]) -> list[str]:
    """What the API server would refuse (or silently prune) in a custom resource, as "path: what"."""
    facts, version = _crd_for(manifest["apiVersion"], manifest["kind"])
    schema = structural_to_jsonschema(facts["versions"][version]["schema"])
    # Every object has these; the CRD schema leaves metadata to the API server.
    schema.setdefault("properties", {}).update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                "metadata": {"type": "object"}})
    validator = jsonschema.Draft7Validator(schema)
    return [f"{manifest['kind']} {'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))]
