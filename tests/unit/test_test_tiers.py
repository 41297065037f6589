"""The tiers of the suite. The unit tier builds nothing: it runs first, while `make test` builds the
tools in the background, and a unit test waiting for a Go build would stall the whole tier for
minutes. And each tier's figures reach the summary when xdist workers run the tests."""

from __future__ import annotations

import pytest

from tests.build_tools import ROOT, built_tool


@pytest.mark.parametrize("tool", ["promtool", "helm", "vault-server", "pulumi-engine"])
def test_a_unit_test_asking_for_a_tool_fails_at_once(tool):
    with pytest.raises(RuntimeError, match="mark it with the tier that builds it"):
        built_tool(ROOT / "tools" / tool / "build.sh", timeout=5)


def test_the_tier_figures_add_up_over_xdist_workers():
    """make test runs the suite in xdist workers: the summary is printed by the controller, which runs
    no test itself, so the tiers must reach it from the workers' reports."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q",
                           "tests/unit/test_make_test_benchmark.py", "tests/unit/test_run_tests_script.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    tiers = [line for line in proc.stdout.splitlines() if line.startswith("wall time by tier: ")]
    passed = int(proc.stdout.rsplit(" passed", 1)[0].rsplit(maxsplit=1)[-1])
    assert passed > 10
    assert tiers == [tiers[0]] and tiers[0].startswith("wall time by tier: unit ")
    assert tiers[0].endswith(f"({passed} tests)"), tiers[0]
