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


class _Item:
    """What tests/conftest.order reads of a pytest item: its markers and its flavour parameter."""

    def __init__(self, name: str, *markers: str, flavor: str | None = None):
        self.name, self._markers = name, set(markers)
        if flavor:
            self.callspec = type("CallSpec", (), {"params": {"flavor": flavor}})()

    def get_closest_marker(self, marker: str):
        return marker if marker in self._markers else None


SUITE = [_Item("promtool", "promtool"), _Item("chart", "chart"),
         _Item("vault engine", "integration", "engine", flavor="vault"),
         _Item("vault integration", "integration", flavor="vault"),
         _Item("openbao engine", "integration", "engine", flavor="openbao"),
         _Item("openbao integration", "integration", flavor="openbao"), _Item("unit")]


@pytest.mark.parametrize(("ready", "expected"), [
    # Warm: the longest tests (engine) before Vault's integration tests, so none is handed out last.
    ("vault pulumi helm promtool", ["unit", "openbao integration", "openbao engine", "vault engine",
                                    "vault integration", "chart", "promtool"]),
    # Cold: in the order the background job builds the tools (Vault, Pulumi CLI, helm, promtool).
    ("", ["unit", "openbao integration", "vault integration", "openbao engine", "vault engine", "chart",
          "promtool"]),
    # Only the Pulumi CLI to rebuild: everything else first.
    ("vault helm promtool", ["unit", "openbao integration", "vault integration", "chart", "promtool",
                             "openbao engine", "vault engine"]),
])
def test_tests_go_in_the_order_their_tools_arrive(monkeypatch, ready, expected):
    from tests import conftest

    monkeypatch.setenv(conftest.READY_VARIABLE, ready)
    assert [item.name for item in sorted(SUITE, key=conftest.order)] == expected


def test_without_the_build_job_every_tool_counts_as_built(monkeypatch):
    from tests import conftest

    monkeypatch.delenv(conftest.READY_VARIABLE, raising=False)
    warm = [item.name for item in sorted(SUITE, key=lambda item: conftest.order(item, frozenset(conftest.BUILD_ORDER)))]
    assert [item.name for item in sorted(SUITE, key=conftest.order)] == warm


def test_the_build_order_is_the_build_jobs():
    """tests/conftest.py orders by BUILD_ORDER; tools/run-tests.sh builds in its own order: they must agree."""
    import re

    from tests import conftest

    script = (ROOT / "tools" / "run-tests.sh").read_text()
    job = script[script.index("setsid bash -c"):]
    built = re.findall(r"bash tools/([a-z-]+)/build\.sh", job)
    names = {"vault-server": "vault", "pulumi-engine": "pulumi", "helm": "helm", "promtool": "promtool"}
    assert tuple(names[tool] for tool in built) == conftest.BUILD_ORDER
