"""The chart tests' tools (tools/helm): a machine that cannot build them fails the chart tests."""

from __future__ import annotations

import pytest


def test_the_chart_tests_fail_not_skip_when_helm_cannot_be_built(tmp_path, monkeypatch):
    import tests.helm
    from tests.chart import conftest

    script = tmp_path / "build.sh"
    script.write_text("echo \"[helm/build.sh] error: 'go' not found on PATH\" >&2\nexit 1\n")
    monkeypatch.setattr(tests.helm, "BUILD_SCRIPT", script)
    # A stand-in script that builds nothing: the unit tier's no-build guard has nothing to guard.
    monkeypatch.delenv("VAULT_PLATFORM_TEST_TIER", raising=False)
    conftest._tools.cache_clear()
    outcome: BaseException | None = None
    try:
        conftest.helm_tools_or_fail()
    except BaseException as exc:  # a skip too: caught here, it cannot pass for this test's own outcome
        outcome = exc
    finally:
        conftest._tools.cache_clear()
    assert type(outcome) is pytest.fail.Exception, f"the chart tests must fail, not {outcome!r}"
    assert "'go' not found on PATH" in str(outcome) and "tools/helm/build.sh" in str(outcome)
