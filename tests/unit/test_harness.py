"""The harness itself: it records what the program registers, and its canary scan catches leaks."""

from __future__ import annotations

import pytest

from tests.harness import Recording, Resource, canary_leaks, load_stack_file, run_stack


def resource(typ: str, name: str, inputs: dict, secret_paths: list[str] | None = None) -> Resource:
    return Resource(type=typ, name=name, urn=f"urn:pulumi:test::vault-platform::{typ}::{name}", parent="",
                    custom=True, inputs=inputs, secret_paths=secret_paths or [], protect=False,
                    retain_on_delete=False, depends_on=[], provider="", additional_secret_outputs=[])


def recording(*resources: Resource, exports: dict | None = None, secret_exports: list[str] | None = None):
    return Recording("test", list(resources), exports or {}, secret_exports or [], None)


def test_scan_flags_an_unmarked_secret_input():
    rec = recording(resource("vault:index/policy:Policy", "p", {"policy": "x CANARY-1"}))
    assert canary_leaks(rec) == ["vault:index/policy:Policy::p input policy is not marked secret"]


def test_scan_accepts_a_marked_secret_input():
    rec = recording(resource("vault:kv/secretV2:SecretV2", "s", {"dataJson": "CANARY-1"}, ["dataJson"]))
    assert canary_leaks(rec) == []


@pytest.mark.parametrize(("typ", "inputs", "where"), [
    ("kubernetes:core/v1:ConfigMap", {"data": {"x": "CANARY-1"}}, "data.x"),
    ("kubernetes:apps/v1:Deployment", {"spec": {"template": {"spec": {"containers": [
        {"env": [{"name": "T", "value": "CANARY-1"}]}]}}}}, "spec.template.spec.containers[0].env[0].value"),
    ("kubernetes:core/v1:ServiceAccount", {"metadata": {"annotations": {"a": "CANARY-1"}}}, "metadata.annotations.a"),
    ("kubernetes:helm.sh/v3:Release", {"values": {"server": {"x": "CANARY-1"}}}, "values.server.x"),
])
def test_scan_flags_a_secret_in_any_kubernetes_object_but_a_secret_even_when_marked(typ, inputs, where):
    rec = recording(resource(typ, "r", inputs, [""]))
    assert canary_leaks(rec) == [f"{typ}::r input {where} puts a secret into a Kubernetes "
                                 f"{typ.split(':')[-1]}, not a Secret"]


def test_scan_accepts_a_marked_value_in_a_kubernetes_secret():
    rec = recording(resource("kubernetes:core/v1:Secret", "s", {"stringData": {"k": "CANARY-1"}}, ["stringData"]))
    assert canary_leaks(rec) == []


def test_scan_flags_an_unmarked_export():
    rec = recording(exports={"token": "CANARY-1", "safe": "hello", "ok": "CANARY-2"}, secret_exports=["ok"])
    assert canary_leaks(rec) == ["export token is not marked secret"]


def test_secure_values_in_stack_files_become_canaries(tmp_path, monkeypatch):
    import tests.harness as harness

    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n  vault-platform:secrets:\n    vaultToken:\n      secure: v1:abc\n"
        "  vault-platform:kv:\n    path: secret\n")
    monkeypatch.setattr(harness, "ROOT", tmp_path)
    config, secret_keys = load_stack_file("x")
    assert config["vault-platform:secrets"]["vaultToken"].startswith("CANARY")
    assert secret_keys == {"vault-platform:secrets"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stacks_leak_no_secret_with_every_secret_setting_in_use(stack):
    # (prod refuses the secrets that would sit in its state: tests/unit/test_state_secrets.py.)
    secrets = {"vaultToken": "CANARY-vault-token", "kv": {"myapp/config": {"api_key": "CANARY-k"}}} \
        if stack == "dev" else {"databasePasswords": {"app-postgres": "CANARY-db"}}
    rec = run_stack(stack, secrets=secrets)
    assert canary_leaks(rec) == []
    seen = {r.type for r in rec.resources}
    # the scan looked at real objects: secrets, the release, and Vault resources
    assert {"kubernetes:core/v1:Secret", "kubernetes:helm.sh/v3:Release"} <= seen
    assert ("vault:kv/secretV2:SecretV2" if stack == "dev" else
            "vault:database/secretBackendConnection:SecretBackendConnection") in seen


def test_the_recording_keeps_options_and_parents():
    rec = run_stack("prod")
    key = rec.one("aws:kms/key:Key", "vault-cluster-unseal-key")
    assert key.protect and key.retain_on_delete and key.provider.startswith("urn:pulumi:prod::vault-platform::")
    assert rec.by_urn(key.parent).type == "vault-platform:unseal:AutoUnseal"
    release = rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release")
    assert release.depends_on, "depends-on is recorded"
