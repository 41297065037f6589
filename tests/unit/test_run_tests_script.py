"""tools/run-tests.sh, as `make test` runs it: with both servers, the Vault-flavour tests run as a
second pytest beside the rest, and the run fails when either half fails. A stand-in for the Python
interpreter records what it was asked to run; the tool builds fail at once (no `go` on PATH)."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "run-tests.sh"

# Records "FLAVOR=<flavor> <args>" and exits with the status the test asks for that flavour.
FAKE_PY = """#!/bin/bash
echo "FLAVOR=$FLAVOR $*" >> "$RECORD"
case $FLAVOR in
  vault) exit "${VAULT_EXIT:-0}" ;;
  *) echo "3 passed"; exit "${MAIN_EXIT:-0}" ;;
esac
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
    return proc, sorted(record.read_text().splitlines())


def test_both_servers_run_as_two_pytest_processes(tmp_path):
    proc, calls = run(tmp_path, "--durations=5", FLAVOR="all")
    assert proc.returncode == 0, proc.stderr
    assert calls == ["FLAVOR=openbao -m pytest --durations=5",
                     "FLAVOR=vault -m pytest -m flavored -p no:cacheprovider --durations=5"]
    assert "the Vault-flavour tests" in proc.stdout


@pytest.mark.parametrize(("main_exit", "vault_exit", "expected"), [("0", "1", 1), ("1", "0", 1), ("2", "1", 2),
                                                                   ("0", "5", 0)])
def test_the_run_fails_when_either_half_fails(tmp_path, main_exit, vault_exit, expected):
    """5 is pytest's "no tests collected": arguments that select no Vault-flavour test."""
    proc, _ = run(tmp_path, FLAVOR="all", MAIN_EXIT=main_exit, VAULT_EXIT=vault_exit)
    assert proc.returncode == expected, proc.stdout + proc.stderr


# (Not "flavor": tests/conftest.py filters parameters of that name by FLAVOR.)
@pytest.mark.parametrize(("servers", "args"), [("openbao", ()), ("vault", ()), ("all", ("-m", "engine")),
                                               ("all", ("-mengine",))])
def test_one_server_or_an_own_selection_runs_one_pytest(tmp_path, servers, args):
    proc, calls = run(tmp_path, *args, FLAVOR=servers)
    assert proc.returncode == 0, proc.stderr
    assert calls == [f"FLAVOR={servers} -m pytest {' '.join(args)}".rstrip()]


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
