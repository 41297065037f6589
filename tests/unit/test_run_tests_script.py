"""tools/run-tests.sh, as `make test` runs it: one pytest spread over TEST_WORKERS worker processes
(pytest-xdist), unless the arguments choose for themselves, and the run fails when pytest does. A
stand-in for the Python interpreter records what it was asked to run; the tool builds fail at once
(no `go` on PATH)."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "run-tests.sh"

# Records "FLAVOR=<flavor> <args>" (and the tools it was told are built) and exits with the status
# the test asks for.
FAKE_PY = """#!/bin/bash
echo "FLAVOR=$FLAVOR $*" >> "$RECORD"
echo "$VAULT_PLATFORM_TOOLS_READY" > "$RECORD.ready"
echo "3 passed"
exit "${PYTEST_EXIT:-0}"
"""


def run(tmp_path: pathlib.Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    fake = tmp_path / "py"
    fake.write_text(FAKE_PY)
    fake.chmod(0o755)
    record = tmp_path / "record"
    record.touch()
    # No go on PATH: each background build stops at once ("'go' not found").
    proc = subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PY": str(fake), "RECORD": str(record),
                               "VAULT_PLATFORM_CACHE": str(tmp_path / "cache"), **env})
    return proc, record.read_text().splitlines()


# (Not "flavor": tests/conftest.py filters parameters of that name by FLAVOR.)
@pytest.mark.parametrize("servers", ["all", "openbao", "vault"])
def test_one_pytest_spread_over_six_workers_by_default(tmp_path, servers):
    proc, calls = run(tmp_path, "--durations=5", FLAVOR=servers)
    assert proc.returncode == 0, proc.stderr
    assert calls == [f"FLAVOR={servers} -m pytest -n 6 --maxschedchunk 2 --durations=5"]
    assert "make test: pytest done in" in proc.stdout and "in 6 workers" in proc.stdout


@pytest.mark.parametrize(("workers", "expected"), [("3", "-m pytest -n 3 --maxschedchunk 2"), ("0", "-m pytest")])
def test_test_workers_sets_how_many(tmp_path, workers, expected):
    proc, calls = run(tmp_path, TEST_WORKERS=workers)
    assert proc.returncode == 0, proc.stderr
    assert calls == [f"FLAVOR= {expected}"]


def test_a_test_workers_that_is_no_number_is_refused(tmp_path):
    proc, calls = run(tmp_path, TEST_WORKERS="many")
    assert proc.returncode == 2 and calls == []
    assert "TEST_WORKERS=many" in proc.stderr


@pytest.mark.parametrize("args", [("-n", "2"), ("-n2",), ("--numprocesses=2",), ("-p", "no:xdist"),
                                  ("--dist", "loadfile"), ("--maxschedchunk", "5")])
def test_arguments_that_choose_their_own_processes_are_left_alone(tmp_path, args):
    proc, calls = run(tmp_path, *args)
    assert proc.returncode == 0, proc.stderr
    assert calls == [f"FLAVOR= -m pytest {' '.join(args)}"]


@pytest.mark.parametrize(("servers", "promtool", "expected"), [("all", "", ""), ("openbao", "", "vault"),
                                                               ("all", "/bin/true", "promtool"),
                                                               ("openbao", "/bin/true", "vault promtool")])
def test_pytest_is_told_which_tools_were_built_when_it_started(tmp_path, servers, promtool, expected):
    """No go on PATH: no build script can compute its key, so no stamp counts; a tool not built at all
    (the Vault server for FLAVOR=openbao, promtool named by VAULT_PLATFORM_PROMTOOL_BIN) is there."""
    proc, _ = run(tmp_path, FLAVOR=servers, **({"VAULT_PLATFORM_PROMTOOL_BIN": promtool} if promtool else {}))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "record.ready").read_text().strip() == expected


def test_prepare_runs_after_the_builds_start_and_before_pytest(tmp_path):
    proc, calls = run(tmp_path, PREPARE=f"echo prepared >> {tmp_path / 'record'}")
    assert proc.returncode == 0, proc.stderr
    assert calls == ["prepared", "FLAVOR= -m pytest -n 6 --maxschedchunk 2"]
    assert proc.stdout.index("building the test tools") < proc.stdout.index("make test: pytest done")


def test_a_failed_prepare_runs_no_test(tmp_path):
    proc, calls = run(tmp_path, PREPARE="exit 3")
    assert proc.returncode == 3 and calls == []


@pytest.mark.parametrize("exit_code", [1, 2, 5])
def test_the_run_fails_when_pytest_fails(tmp_path, exit_code):
    """5 is pytest's "no tests collected": .ci/run must not pass a run in which nothing ran."""
    proc, _ = run(tmp_path, PYTEST_EXIT=str(exit_code))
    assert proc.returncode == exit_code, proc.stdout + proc.stderr


def test_no_build_is_left_running(tmp_path):
    import time

    proc, _ = run(tmp_path, FLAVOR="all")
    assert proc.returncode == 0
    # The script's EXIT trap signals the builds' process group; give the signal a moment to land.
    for _ in range(50):
        leftovers = subprocess.run(["pgrep", "-f", f"build-tools.*{tmp_path}"], capture_output=True, text=True,
                                   check=False).stdout.split()
        if not leftovers:
            break
        time.sleep(0.1)
    assert leftovers == [], leftovers
    assert os.path.isdir(tmp_path / "cache")


def test_ci_caches_the_tools_by_their_build_scripts_and_the_recorded_runs_by_source():
    import re

    import yaml

    steps = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())["jobs"]["test"]["steps"]
    caches = {step["with"]["key"].split("-${{")[0]: step["with"] for step in steps
              if step.get("uses", "").startswith("actions/cache@")}
    tools = caches["test-tools"]
    built = set(re.findall(r"bash (tools/[a-z-]+/build\.sh)", SCRIPT.read_text()))
    assert len(built) == 4
    for path in (*built, "tools/lib/go-build.sh"):
        assert f"'{path}'" in tools["key"], path
    # Saved once per tools key: the recorded runs must not ride along and go stale with it.
    assert "!~/.cache/vault-platform/harness-runs" in tools["path"].split()
    runs = caches["harness-runs"]
    assert runs["path"] == "~/.cache/vault-platform/harness-runs"
    assert "'components/**'" in runs["key"] and runs["restore-keys"].startswith("harness-runs-")
