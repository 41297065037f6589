"""Suite-wide ordering and the server-flavour filter.

Unit tests run first, then the integration tests on OpenBao (installed with the venv), then the
tests that need promtool, then those that render the Vault chart with helm (``chart``), then the
integration tests on HashiCorp Vault, and last the engine tests (``engine`` marker), on both. `make
test` (tools/run-tests.sh) runs the Vault-flavour tests (``flavored`` with FLAVOR=vault) as a second
pytest beside the rest, while it builds the Vault server, promtool, helm (and fetches the chart) and
the Pulumi CLI from Go modules in the background, in that order. ``FLAVOR=openbao`` (or ``vault``)
runs the integration tests on one server only.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.integration.servers import FLAVORS


def _share_the_hcl_parser() -> None:
    """pyhcl's hcl.loads builds its LALR parser tables anew on every call (80 ms); the tests parse
    HCL hundreds of times. One parser per thread, built once, parses the same."""
    import threading

    import hcl.api
    from hcl.parser import HclParser

    local = threading.local()

    def shared() -> HclParser:
        if not hasattr(local, "parser"):
            local.parser = HclParser()
        return local.parser

    hcl.api.HclParser = shared


_share_the_hcl_parser()


def selected_flavors() -> tuple[str, ...]:
    wanted = os.environ.get("FLAVOR", "").strip()
    if not wanted or wanted == "all":
        return FLAVORS
    chosen = tuple(f.strip() for f in wanted.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FLAVORS]
    if unknown:
        raise pytest.UsageError(f"FLAVOR={wanted!r}: unknown flavour(s) {unknown}; use one of {', '.join(FLAVORS)} "
                                "or all")
    return chosen


def _flavor(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("flavor") if callspec else None


def tier(item: pytest.Item) -> str:
    """The part of the suite a test belongs to, as the cost table in the README names it."""
    flavor = _flavor(item)
    for marker in ("promtool", "chart", "engine", "integration"):
        if item.get_closest_marker(marker) is not None:
            return f"{marker} [{flavor}]" if flavor else marker
    return "unit"


# Wall time of each tier: from its first test's start to its last test's end (fixtures included).
# The suite runs each tier in one stretch (the order below), so the spans add up to the session.
TIER_SPANS: dict[str, list[float]] = {}
TIER_VARIABLE = "VAULT_PLATFORM_TEST_TIER"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.monotonic()
    # tests.build_tools refuses a build for a unit test: the unit tier must not wait for a Go build.
    os.environ[TIER_VARIABLE] = tier(item)
    yield
    os.environ.pop(TIER_VARIABLE, None)
    span = TIER_SPANS.setdefault(tier(item), [start, start, 0])
    span[1], span[2] = time.monotonic(), span[2] + 1


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    wanted = selected_flavors()
    dropped = [item for item in items if _flavor(item) not in (None, *wanted)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = {id(item) for item in dropped}
        items[:] = [item for item in items if id(item) not in gone]

    def order(item: pytest.Item) -> tuple[int, int, float]:
        flavor = _flavor(item)
        if item.get_closest_marker("promtool") is not None:
            return (1, 0, 1.5)  # after the OpenBao half (1, 0, 1), before Vault's (1, 0, 2)
        if item.get_closest_marker("chart") is not None:
            return (1, 0, 1.6)  # after promtool's tests: helm builds after promtool
        integration = item.get_closest_marker("integration") is not None
        engine = item.get_closest_marker("engine") is not None
        return (int(integration), int(engine), FLAVORS.index(flavor) + 1 if flavor else 0)

    # Stable: within each group pytest's own order (fixture scopes) stays as it was.
    items.sort(key=order)
    if any(item.get_closest_marker("integration") is None for item in items):
        # The unit tests run the program in the harness's worker: it imports the SDKs meanwhile.
        from tests.harness.worker import WORKER

        WORKER.start()
    if any(item.get_closest_marker("fresh_run") is not None for item in items):
        # A test compares the worker with a run in a process of its own: that run starts now, on
        # the core the tests before it leave idle.
        from tests.harness import start_fresh

        for item in items:
            marker = item.get_closest_marker("fresh_run")
            if marker is not None:
                start_fresh(*marker.args)


def pytest_terminal_summary(terminalreporter):
    from tests.harness.worker import WORKER, run_cache

    if TIER_SPANS:
        terminalreporter.write_line("wall time by tier: " + ", ".join(
            f"{name} {end - start:.0f} s ({count} tests)" for name, (start, end, count) in TIER_SPANS.items()))

    if WORKER.runs or run_cache.hits:
        terminalreporter.write_line(
            f"program runs: {WORKER.runs} evaluated in the harness worker ({WORKER.seconds:.1f} s), "
            f"{run_cache.hits} answered from the run cache ({run_cache.folder if run_cache.enabled else 'off'})")
