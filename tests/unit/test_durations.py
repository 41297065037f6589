"""Durations as Go writes them, checked against Go itself (the toolchain the test tools build with)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from components.model.checks import duration_seconds
from components.render.durations import go_duration, go_duration_string, prometheus_duration

SAMPLES = ["10m", "10s", "1h", "90s", "24h", "1h30m", "2h0m5s", "1.5s", "500ms", "2m", "7d", "36h", "0s", "1m0.25s"]

GO_PROGRAM = """package main

import (
\t"encoding/json"
\t"fmt"
\t"os"
\t"time"
)

func main() {
\tvar in []string
\t_ = json.NewDecoder(os.Stdin).Decode(&in)
\tout := map[string][]string{}
\tfor _, s := range in {
\t\td, err := time.ParseDuration(s)
\t\tif err != nil {
\t\t\tfmt.Fprintln(os.Stderr, err)
\t\t\tos.Exit(1)
\t\t}
\t\tout[s] = []string{d.String(), fmt.Sprint(d.Nanoseconds())}
\t}
\t_ = json.NewEncoder(os.Stdout).Encode(out)
}
"""


def _as_go_input(value: str) -> str:
    # Go has no days: the same length in hours.
    return f"{int(duration_seconds(value)) // 3600}h" if value.endswith("d") else value


WHOLE = [v for v in SAMPLES if duration_seconds(v) == int(duration_seconds(v))]


@pytest.fixture(scope="module")
def go_says(tmp_path_factory) -> dict[str, list[str]]:
    """What Go makes of every sample and of every short form: [Duration.String(), nanoseconds]."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not on PATH: the test tools build with it, and this test asks it")
    source = tmp_path_factory.mktemp("go") / "main.go"
    source.write_text(GO_PROGRAM)
    values = sorted({*(_as_go_input(v) for v in SAMPLES), *(go_duration(v) for v in WHOLE)})
    proc = subprocess.run([go, "run", str(source)], input=json.dumps(values), capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "GOFLAGS": "", "GO111MODULE": "off"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_canonical_form_is_what_go_prints(go_says):
    for value in SAMPLES:
        assert go_duration_string(value) == go_says[_as_go_input(value)][0], value


def test_the_short_form_parses_to_the_same_length_in_go(go_says):
    for value in WHOLE:
        assert int(go_says[go_duration(value)][1]) == int(duration_seconds(value)) * 1_000_000_000, value


@pytest.mark.parametrize(("seconds", "text"), [(60, "1m"), (86400, "1d"), (90, "90s"), (7200, "2h")])
def test_prometheus_durations_use_the_largest_whole_unit(seconds, text):
    assert prometheus_duration(seconds) == text
