"""What a run tells people: a journal written as it goes (so a run killed half-way leaves a record
of what it did), progress on stderr for long runs, and the tables at the end. Secret names, KV
paths, key counts and versions only: never a value."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO


@dataclass
class Item:
    """One AWS secret's outcome. ``keys`` is a count; no field ever holds a value."""

    name: str
    path: str | None
    action: str
    reason: str = ""
    keys: int | None = None
    aws_version: str | None = None
    kv_version: int | None = None

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Journal:
    """A JSON Lines file: a header line, one line per secret as soon as it is done, and a summary
    line when the run ends. Each line goes out in one write() on an O_APPEND descriptor, so a run
    killed at any moment (even by SIGKILL) leaves whole lines behind, each one a finished secret. A
    file without a summary line is the record of a run that did not finish."""

    def __init__(self, path: Path, header: Mapping[str, Any]):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
        self._lock = threading.Lock()
        self._write({"journal": "vault-platform migration", **header})

    def _write(self, record: Mapping[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)

    def record(self, item: Item) -> None:
        self._write({"item": item.row(), "at": now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")})

    def finish(self, summary: Mapping[str, Any]) -> None:
        self._write({"summary": dict(summary), "finished": now().strftime("%Y-%m-%dT%H:%M:%SZ")})
        os.fsync(self._fd)
        os.close(self._fd)


def read_journal(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """(header, items, summary or None when the run did not finish) of a journal."""
    header: dict[str, Any] = {}
    items: list[dict[str, Any]] = []
    summary = None
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the last line of a run killed mid-write
        if "journal" in record:
            header = record
        elif "item" in record:
            items.append(record["item"])
        elif "summary" in record:
            summary = record["summary"]
    return header, items, summary


class Progress:
    """A line on stderr every ``interval`` seconds while secrets are processed, for long runs."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, interval: float = 2.0,
                 enabled: bool = True):
        self.label, self.total, self.interval, self.enabled = label, total, interval, enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.monotonic()
        self._last = self.start
        self._lock = threading.Lock()

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            moment = time.monotonic()
            if self.enabled and moment - self._last >= self.interval and self.done < self.total:
                self._last = moment
                self.stream.write(self.line(moment) + "\n")
                self.stream.flush()

    def line(self, moment: float | None = None) -> str:
        elapsed = max(1e-9, (moment or time.monotonic()) - self.start)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = f", about {left:.0f} s left" if left != float("inf") else ""
        return f"{self.label}: {self.done}/{self.total} secrets ({pct:.0f}%), {rate:.0f}/s{eta}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def item_table(items: Iterable[Item], status: bool = False) -> str:
    if status:
        return table(("STATE", "AWS SECRET", "KV PATH", "WHY"),
                     ((i.action, i.name, i.path or "-", i.reason) for i in items))
    return table(("ACTION", "KEYS", "AWS SECRET", "KV PATH", "WHY"),
                 ((i.action, "-" if i.keys is None else i.keys, i.name, i.path or "-", i.reason) for i in items))


def summary_table(counts: Mapping[str, int], order: Sequence[str]) -> str:
    rows = [(a, counts.get(a, 0)) for a in order if counts.get(a, 0)]
    rows += [(a, n) for a, n in sorted(counts.items()) if a not in order and n]
    rows.append(("total", sum(counts.values())))
    return table(("RESULT", "SECRETS"), rows)


def tally(items: Iterable[Item]) -> dict[str, int]:
    return dict(Tally(i.action for i in items))
