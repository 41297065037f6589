"""Suite-wide ordering, the server-flavour filter and the tier figures.

`make test` (tools/run-tests.sh) runs the suite in several pytest-xdist worker processes at once,
while it builds the test tools from Go modules in the background, one after the other: the
HashiCorp Vault server, the Pulumi CLI, helm (and the Vault chart), then promtool. The tests are
handed out in the order in which what they need arrives (``order``): first the unit tests (which
build nothing) and the integration tests on OpenBao (installed with the venv), then, with every
tool built, the OpenBao engine tests (``engine``: the Pulumi CLI), the Vault engine tests, Vault's
integration tests, the tests that render the chart with helm (``chart``) and those that need
promtool; a tool still to be built moves the tests that need it behind those whose tools are there.
A test whose tool is still building waits for it through its build script's lock.
``FLAVOR=openbao`` (or ``vault``) runs the integration tests on one server only.
"""

from __future__ import annotations

import os

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


# The Go-built tools the background job of tools/run-tests.sh builds, in the order it builds them,
# and what each group of tests needs of them.
BUILD_ORDER = ("vault", "pulumi", "helm", "promtool")
READY_VARIABLE = "VAULT_PLATFORM_TOOLS_READY"


def _group(item: pytest.Item) -> tuple[int, tuple[str, ...]]:
    """(rank with every tool built, the tools the test needs). With every tool built the engine tests
    go before Vault's integration tests: they are the longest, and a long test handed out last
    leaves the other workers idle at the end of the run."""
    flavor = _flavor(item)
    server = ("vault",) if flavor == "vault" else ()
    if item.get_closest_marker("promtool") is not None:
        return 6, ("promtool",)
    if item.get_closest_marker("chart") is not None:
        return 5, ("helm",)
    if item.get_closest_marker("engine") is not None:
        return (3, ("pulumi", *server)) if server else (2, ("pulumi",))
    if item.get_closest_marker("integration") is not None:
        return (4, server) if server else (1, ())
    return 0, ()


def _ready() -> frozenset[str]:
    listed = os.environ.get(READY_VARIABLE)
    return frozenset(BUILD_ORDER if listed is None else listed.split())


def order(item: pytest.Item, ready: frozenset[str] | None = None) -> tuple[int, int]:
    """Where a test goes in the run: by when the last tool it needs arrives (now, if it was current
    when the run started, else when the background job builds it), then by its rank. Without
    tools/run-tests.sh (no VAULT_PLATFORM_TOOLS_READY) every tool counts as current: a test builds
    what it needs itself."""
    if ready is None:
        ready = _ready()
    rank, needs = _group(item)
    pending = [tool for tool in BUILD_ORDER if tool not in ready]
    arrives = max((pending.index(tool) + 1 for tool in needs if tool in pending), default=0)
    return arrives, rank


TIER_VARIABLE = "VAULT_PLATFORM_TEST_TIER"
# The worker processes pass each test's tier to the process that prints the summary.
TIER_PROPERTY = "tier"
# Wall time of each tier: from its first test's start to its last test's end (fixtures included).
# With several workers the tiers overlap, so the spans add up to more than the session.
TIER_SPANS: dict[str, list[float]] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # tests.build_tools refuses a build for a unit test: the unit tier must not wait for a Go build.
    os.environ[TIER_VARIABLE] = tier(item)
    item.user_properties.append((TIER_PROPERTY, tier(item)))
    yield
    os.environ.pop(TIER_VARIABLE, None)


def pytest_runtest_logreport(report):
    # Runs where the summary is printed: in the one process, or in xdist's controller.
    name = dict(report.user_properties).get(TIER_PROPERTY)
    if name is None:
        return
    span = TIER_SPANS.setdefault(name, [report.start, report.stop, 0])
    span[0], span[1] = min(span[0], report.start), max(span[1], report.stop)
    if report.when == "teardown":
        span[2] += 1


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    wanted = selected_flavors()
    dropped = [item for item in items if _flavor(item) not in (None, *wanted)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = {id(item) for item in dropped}
        items[:] = [item for item in items if id(item) not in gone]

    # Stable: within each group pytest's own order (fixture scopes) stays as it was. Every xdist
    # worker sorts the same way, as the controller requires (the ready tools come from the
    # environment tools/run-tests.sh set once).
    ready = _ready()
    items.sort(key=lambda item: order(item, ready))
    if any(item.get_closest_marker("integration") is None for item in items):
        # The unit tests run the program in the harness's worker: it imports the SDKs meanwhile.
        from tests.harness.worker import WORKER

        WORKER.start()
    # A test compares the worker with a run in a process of its own: in a single process that run
    # starts now, on the core the tests before it leave idle. Each xdist worker collects every test
    # but runs only some, so there the test that reads the run starts it.
    if "PYTEST_XDIST_WORKER" not in os.environ:
        from tests.harness import start_fresh

        for item in items:
            marker = item.get_closest_marker("fresh_run")
            if marker is not None:
                start_fresh(*marker.args)


# What the harness's workers did, summed over the xdist workers (each has a harness worker of its own).
HARNESS_TOTALS = {"runs": 0, "seconds": 0.0, "hits": 0}


def _harness_figures() -> dict[str, float]:
    from tests.harness.worker import WORKER, run_cache

    return {"runs": WORKER.runs, "seconds": WORKER.seconds, "hits": run_cache.hits}


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its controller prints the summary
        workeroutput["harness"] = _harness_figures()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    for key, value in getattr(node, "workeroutput", {}).get("harness", {}).items():
        HARNESS_TOTALS[key] += value


def pytest_terminal_summary(terminalreporter):
    from tests.harness.worker import run_cache

    if TIER_SPANS:
        terminalreporter.write_line("wall time by tier: " + ", ".join(
            f"{name} {end - start:.0f} s ({count} tests)" for name, (start, end, count) in TIER_SPANS.items()))

    here = _harness_figures()
    runs, seconds, hits = (HARNESS_TOTALS[key] + here[key] for key in ("runs", "seconds", "hits"))
    if runs or hits:
        terminalreporter.write_line(
            f"program runs: {runs} evaluated in the harness worker ({seconds:.1f} s), "
            f"{hits} answered from the run cache ({run_cache.folder if run_cache.enabled else 'off'})")
