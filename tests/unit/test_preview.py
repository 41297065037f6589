"""The program under a preview, as `pulumi preview` runs it on a new stack: every value a provider
computes (certificates, the root token, IDs) is unknown, and so is everything derived from one.
The program must declare the same resources as on `pulumi up` and still keep secrets secret."""

from __future__ import annotations

import pytest

from tests.harness import canary_leaks, run_stack

UNKNOWN = "<unknown>"
READY = "pulumi-python:dynamic/bootstrap:VaultReady"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_preview_declares_what_an_up_declares(stack):
    preview = run_stack(stack, preview=True)
    up = run_stack(stack)
    assert preview.error is None
    assert sorted(r.urn for r in preview.resources) == sorted(r.urn for r in up.resources)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_preview_really_runs_on_unknowns(stack):
    """Without unknowns the test above would prove nothing: the values that only exist after
    init or after the TLS provider ran are unknown here, and known on `up`."""
    preview, up = run_stack(stack, preview=True), run_stack(stack)
    for rec, expected in ((preview, True), (up, False)):
        provider = rec.one("pulumi:providers:vault")
        ready = rec.one(READY)
        assert (provider.get("authLoginTokenFile") == UNKNOWN) is expected
        assert (provider.get("caCertFile") == UNKNOWN) is expected
        assert (ready.get("token") == UNKNOWN) is expected
        assert (rec.exports["caCertificate"] == UNKNOWN) is expected


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_preview_keeps_secrets_secret(stack):
    rec = run_stack(stack, preview=True)
    assert canary_leaks(rec) == []
    # prod revokes the root token in the same run: it exports no root token at all.
    assert ({"rootToken", "unsealKeys"} if stack == "dev" else {"unsealKeys"}) <= set(rec.export_secret_paths)
    assert ("rootToken" in rec.exports) is (stack == "dev")
    ready = rec.one(READY)
    assert ready.is_secret("token") and ready.is_secret("keys")
