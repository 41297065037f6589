"""A small reader for the HCL Vault reads: its server config and its policies.

A general-purpose HCL library merges repeated blocks (two `listener "tcp"` blocks, or two rules for
one path), which would let a second block hide the first from a check; this reader keeps every
block, in order. Where nothing repeats, it reads what pyhcl reads (tests/unit/test_hcl_reader.py
compares the two on every HCL document the program renders). Standard library only: the policy pack
imports it beside ``rules``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]



class HclError(ValueError):
    pass


@dataclass(frozen=True)
class Block:
    type: str
    labels: tuple[str, ...]
    body: list[Any]  # Attr and Block items


@dataclass(frozen=True)
class Attr:
    key: str
    value: Any


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<heredoc><<(?P<indent>-?)(?P<tag>[A-Za-z_][A-Za-z0-9_]*)[ \t]*\n)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.\-]*)
  | (?P<punct>[=\{\}\[\],:])
""", re.VERBOSE | re.DOTALL)


def _tokens(text: str) -> list[tuple[str, Any, int]]:
    out: list[tuple[str, Any, int]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise HclError(f"unexpected character at line {text.count(chr(10), 0, pos) + 1}")
        kind = match.lastgroup if match.lastgroup not in ("indent", "tag") else "heredoc"
        line = text.count("\n", 0, pos) + 1
        pos = match.end()
        if kind in ("space", "comment"):
            continue
        if match.group("heredoc"):
            tag, indented = match.group("tag"), bool(match.group("indent"))
            end = re.compile(r"^[ \t]*" + re.escape(tag) + r"[ \t]*$" if indented else r"^" + re.escape(tag) + r"$",
                             re.MULTILINE)
            closing = end.search(text, pos)
            if closing is None:
                raise HclError(f"unterminated heredoc at line {line}")
            out.append(("value", text[pos:closing.start()], line))
            pos = closing.end()
        elif kind == "string":
            raw = match.group("string")
            try:
                out.append(("value", json.loads(raw), line))
            except ValueError:
                out.append(("value", raw[1:-1], line))
        elif kind == "number":
            raw = match.group("number")
            out.append(("value", float(raw) if any(c in raw for c in ".eE") else int(raw), line))
        elif kind == "ident":
            word = match.group("ident")
            out.append(("value", word == "true", line) if word in ("true", "false") else ("ident", word, line))
        else:
            out.append((match.group("punct"), None, line))
    return out


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, Any, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None) -> tuple[str, Any, int]:
        token = self.peek()
        if token is None:
            raise HclError("unexpected end of input")
        if kind is not None and token[0] != kind:
            raise HclError(f"expected {kind!r} at line {token[2]}")
        self.pos += 1
        return token

    def body(self, closing: str | None) -> list[Any]:
        items: list[Any] = []
        while True:
            token = self.peek()
            if token is None:
                if closing is not None:
                    raise HclError("unexpected end of input: a block is not closed")
                return items
            if closing is not None and token[0] == closing:
                self.pos += 1
                return items
            if token[0] == ",":
                self.pos += 1
                continue
            items.append(self.item())

    def item(self) -> Any:
        kind, key, line = self.take()
        if kind not in ("ident", "value") or not isinstance(key, str):
            raise HclError(f"expected a name at line {line}")
        token = self.peek()
        if token is not None and token[0] in ("=", ":"):
            self.pos += 1
            return Attr(key, self.value())
        labels: list[str] = []
        while token is not None and token[0] in ("ident", "value") and isinstance(token[1], str):
            labels.append(token[1])
            self.pos += 1
            token = self.peek()
        self.take("{")
        return Block(key, tuple(labels), self.body("}"))

    def value(self) -> Any:
        kind, value, line = self.take()
        if kind == "value":
            return value
        if kind == "ident":
            return value  # an expression HCL 1 keeps as text
        if kind == "[":
            items: list[Any] = []
            while True:
                token = self.peek()
                if token is None:
                    raise HclError(f"unclosed list from line {line}")
                if token[0] == "]":
                    self.pos += 1
                    return items
                if token[0] == ",":
                    self.pos += 1
                    continue
                items.append(self.value())
        if kind == "{":
            return self.body("}")
        raise HclError(f"expected a value at line {line}")


def parse_hcl(text: str) -> list[Any]:
    """Vault's HCL (server config or policy) as a list of Attr and Block items. JSON, which Vault
    takes too, comes back as the parsed JSON object."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return _Parser(text).body(None)


def blocks(body: Any, kind: str, labeled: bool = True) -> Iterator[tuple[str, Any]]:
    """(label, body) of every ``kind "label" {...}`` block, from HCL items or the JSON form
    (``{"listener": [{"tcp": {...}}]}`` or ``{"listener": {"tcp": {...}}}``)."""
    if isinstance(body, list):
        for item in body:
            if isinstance(item, Block) and item.type == kind:
                yield (item.labels[0] if item.labels else ""), item.body
        return
    if not isinstance(body, Mapping):
        return
    for entry in _as_list(body.get(kind)):
        if not isinstance(entry, Mapping):
            continue
        if not labeled:
            yield "", entry
            continue
        for label, inner in entry.items():
            for one in _as_list(inner):
                if isinstance(one, Mapping):
                    yield label, one


def attrs(body: Any, key: str) -> list[Any]:
    """Every value given to ``key`` in a block body (HCL keeps repeats; a check sees them all)."""
    if isinstance(body, list):
        return [item.value for item in body if isinstance(item, Attr) and item.key == key]
    if isinstance(body, Mapping) and key in body:
        return [body[key]]
    return []
