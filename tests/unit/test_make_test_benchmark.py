"""benchmarks/make_test.py reads its figures from what the suite itself prints: the tier line of
tests/conftest.py and the last line of tools/run-tests.sh. Both are checked here against the code
that prints them, so a change to either cannot leave the benchmark reading nothing."""

from __future__ import annotations

import importlib.util
import re

from tests.harness import ROOT


def _benchmark():
    spec = importlib.util.spec_from_file_location("make_test", ROOT / "benchmarks" / "make_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_figures_of_a_run():
    log = ("wall time by tier: unit 52 s (1380 tests), integration [openbao] 300 s (128 tests), "
           "integration [vault] 310 s (128 tests), engine [vault] 200 s (9 tests)\n"
           "========== 1645 passed in 560.12s (0:09:20) ==========\n"
           "make test: pytest done in 565 s, in 6 workers; 640 s in all (benchmarks/make_test.py reads these "
           "figures)\n")
    f = _benchmark().figures(log)
    assert f["tiers"] == {"unit": (52, 1380), "integration [openbao]": (300, 128),
                          "integration [vault]": (310, 128), "engine [vault]": (200, 9)}
    assert f["pytest_runs_seconds"] == [560.12]
    assert f["pytest_seconds"] == 565 and f["total_seconds"] == 640 and f["processes"] == "6 workers"


def test_the_lines_it_reads_are_the_ones_the_suite_prints():
    conftest = (ROOT / "tests" / "conftest.py").read_text()
    assert '"wall time by tier: "' in conftest and '{name} {end - start:.0f} s ({count} tests)' in conftest
    script = (ROOT / "tools" / "run-tests.sh").read_text()
    printed = re.search(r'echo "(make test: pytest done in )\$\(\(SECONDS - started\)\)( s, )\$how(; )'
                        r'\$SECONDS( s in all)', script)
    assert printed, "tools/run-tests.sh no longer prints the run's wall time"
    for how in ("in one process", "in 6 workers"):
        line = f"{printed.group(1)}905{printed.group(2)}{how}{printed.group(3)}990{printed.group(4)}\n"
        done = _benchmark().DONE.search(line)
        assert done and done.group(3) == "990"


def test_the_e2e_benchmark_reads_figures_the_walkthrough_writes():
    """benchmarks/e2e_figures.py prints .e2e/figures.json: every figure it reads is one tests/e2e writes."""
    bench = (ROOT / "benchmarks" / "e2e_figures.py").read_text()
    read = set(re.findall(r'f\.get\("([a-z_]+)"\)', bench))
    e2e = "".join(p.read_text() for p in (ROOT / "tests" / "e2e").glob("*.py"))
    written = set(re.findall(r'figure\([\w.]+, "([a-z_]+)"', e2e)) | set(re.findall(r'figures\["([a-z_]+)"\] =', e2e))
    dynamic = {"external_secret_sync_seconds_myapp"}  # f"external_secret_sync_seconds_{application}"
    assert "external_secret_sync_seconds_" in e2e
    assert len(read) > 15 and read <= written | dynamic, sorted(read - written - dynamic)
