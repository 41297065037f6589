"""Every fenced block of the README and docs/ is accounted for: a command block runs in
tests/integration/test_runbooks.py or says why it cannot run here; none is skipped silently."""

from __future__ import annotations

import collections
import re

from tests.harness import runbooks


def test_every_command_block_runs_or_says_why_not():
    every = runbooks.every_block()
    assert len(every) > 40
    registered = collections.Counter((doc, first) for runs in runbooks.RUNS.values() for doc, first in runs)
    assert max(registered.values()) == 1, [k for k, n in registered.items() if n > 1]
    unaccounted, both = [], []
    for block in every:
        assert block.language in (*runbooks.COMMAND_LANGUAGES, *runbooks.OTHER_LANGUAGES), \
            f"{block.where}: name the block's language ({block.language!r})"
        if block.language not in runbooks.COMMAND_LANGUAGES:
            assert not block.note, f"{block.where}: only command blocks take a note"
            continue
        runs = (str(block.path.relative_to(runbooks.ROOT)), block.first) in registered
        if block.note:
            assert block.not_run, f"{block.where}: a note is `not-run: <why>`"
        if runs and block.not_run:
            both.append(block.where)
        if not runs and not block.not_run:
            unaccounted.append(f"{block.where}: {block.first}")
    assert not unaccounted, "command blocks no test runs and no `not-run:` explains:\n" + "\n".join(unaccounted)
    assert not both, f"marked not-run, yet registered to run: {both}"
    for runs in runbooks.RUNS.values():
        for doc, first in runs:
            runbooks.find(doc, first)


def test_no_block_hands_a_later_command_a_file_descriptor_that_is_gone():
    """`export X=<(...)` names /dev/fd/N of a pipe closed as soon as the export finishes: every later
    command that reads X finds nothing there."""
    offending = [b.where for b in runbooks.every_block() if b.language == "sh" and re.search(r"=<\(", b.code)]
    assert not offending, offending
