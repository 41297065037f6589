"""The policy pack's HCL reader (policy/hcl_reader.py) against pyhcl, a general-purpose HCL 1 parser:
on every HCL document the program renders for both stacks, and on the syntax Vault's HCL allows,
the two read the same thing. Where they differ on purpose (repeated blocks), the test says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hcl
import pytest

from policy import hcl_reader, rules
from tests.harness import run_stack


def pyhcl_shape(items: Any) -> Any:
    """Our items in the shape pyhcl gives: blocks nested under their type and labels, repeated
    unlabeled blocks as a list."""
    if not isinstance(items, list):
        return items
    out: dict[str, Any] = {}
    for item in items:
        if isinstance(item, hcl_reader.Attr):
            out[item.key] = _value(item.value)
            continue
        body = pyhcl_shape(item.body)
        if not item.labels:
            if item.type in out:
                previous = out[item.type]
                out[item.type] = [*previous, body] if isinstance(previous, list) else [previous, body]
            else:
                out[item.type] = body
            continue
        node = out.setdefault(item.type, {})
        for label in item.labels[:-1]:
            node = node.setdefault(label, {})
        assert item.labels[-1] not in node, "a repeated labeled block: pyhcl merges what this reader keeps"
        node[item.labels[-1]] = body
    return out


def _value(value: Any) -> Any:
    if isinstance(value, list) and value and all(isinstance(v, (hcl_reader.Attr, hcl_reader.Block)) for v in value):
        return pyhcl_shape(value)
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def rendered_hcl() -> Iterator[tuple[str, str]]:
    """(where, text) of every HCL document the program hands Vault, for dev and prod."""
    for stack in ("dev", "prod"):
        rec = run_stack(stack)
        for resource in rec.resources:
            values = rules.vault_values(resource.type, resource.inputs)
            if values:
                path = rules.server_config_path(values)
                text = rules.get(values, path)
                if isinstance(text, str):
                    yield f"{stack} {resource.name} {path}", text
            if resource.type == rules.VAULT_POLICY and isinstance(resource.get("policy"), str):
                yield f"{stack} policy {resource.get('name')}", resource.get("policy")
            for name, text in sorted((resource.inputs.get("policies") or {}).items()
                                     if isinstance(resource.inputs.get("policies"), dict) else []):
                if isinstance(text, str):
                    yield f"{stack} {resource.name} policy {name}", text


RENDERED = list(rendered_hcl())


def test_every_document_the_program_renders_is_in_the_corpus():
    where = " ".join(w for w, _ in RENDERED)
    for stack in ("dev", "prod"):
        assert f"{stack} " in where
    assert sum("server" in w or "config" in w for w, _ in RENDERED) >= 2, "no server config found"
    assert sum(" policy " in w for w, _ in RENDERED) >= 10, "too few policies found"
    assert any("deployer" in w for w, _ in RENDERED), "the deploy identity's policies are missing"


@pytest.mark.parametrize(("where", "text"), RENDERED, ids=[w for w, _ in RENDERED])
def test_the_reader_reads_what_pyhcl_reads(where, text):
    assert pyhcl_shape(hcl_reader.parse_hcl(text)) == hcl.loads(text), where


SYNTAX = {
    "comments": '# a\n// b\n/* c\n d */\nui = true\n',
    "numbers": "a = 1\nb = -2\nc = 1.5\nd = 1e3\n",
    "booleans": "a = true\nb = false\n",
    "escapes": 'a = "quote \\" and \\\\ backslash"\n',
    "lists": 'a = ["x", "y",]\nb = []\nc = [1, 2]\n',
    "objects": 'a = { "x" = ["1"] y = [] }\n',
    "nested labels": 'seal "transit" { address = "https://t:8200" }\nlistener "tcp" { tls_disable = 0 }\n',
    "unlabeled repeats": 'storage "raft" {\n retry_join { a = "1" }\n retry_join { a = "2" }\n}\n',
    "two labels": 'path "a" "b" { c = 1 }\n',
    "colon": 'a: 1\n',
    "json": '{"path": {"secret/*": {"capabilities": ["read"]}}}',
}


@pytest.mark.parametrize("name", sorted(SYNTAX))
def test_the_reader_reads_vaults_hcl_syntax_as_pyhcl_does(name):
    text = SYNTAX[name]
    ours = hcl_reader.parse_hcl(text)
    assert (ours if isinstance(ours, dict) else pyhcl_shape(ours)) == hcl.loads(text)


def test_repeated_blocks_are_kept_where_pyhcl_keeps_only_the_last():
    text = 'listener "tcp" { address = "a" }\nlistener "tcp" { address = "b"\n tls_disable = 1 }\n'
    listeners = rules.blocks(hcl_reader.parse_hcl(text), "listener")
    assert [(label, rules.attrs(body, "tls_disable")) for label, body in listeners] == [("tcp", []), ("tcp", [1])]
    # A general-purpose parser merges the two into one: a check on it would see one listener.
    assert hcl.loads(text) == {"listener": {"tcp": {"address": "b", "tls_disable": 1}}}


def test_broken_hcl_is_refused_by_both():
    for text in ('path "a" {\n', 'a = [1, 2\n', 'a = "unterminated\n'):
        with pytest.raises(hcl_reader.HclError):
            hcl_reader.parse_hcl(text)
        with pytest.raises(ValueError):
            hcl.loads(text)
