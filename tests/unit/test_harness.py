"""The harness itself: it records what the program registers, and its canary scan catches leaks."""

from __future__ import annotations

import json

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


# --- the worker and the run cache ------------------------------------------------------------------

def _canonical(result: dict) -> dict:
    """A run's result with the orders that vary from run to run (registration, dependencies) fixed."""
    import json

    result = json.loads(json.dumps(result, default=str))
    for r in result["resources"]:
        r["depends_on"] = sorted(r["depends_on"])
    result["resources"] = sorted(result["resources"], key=lambda r: r["urn"])
    return result


@pytest.mark.fresh_run("prod")
def test_a_run_in_the_shared_worker_records_what_a_fresh_process_records():
    """The worker runs the program many times in one process: whatever one run leaves behind in
    Pulumi's runtime (the root stack, settings, config, the serializer's state) must not change the
    next. Another stack runs in between; the prod run must equal a run in a process of its own."""
    from tests.harness import run_fresh, run_served

    run_served("dev", {"cluster": {"replicas": 1}})
    served = run_served("prod")
    fresh = run_fresh("prod")
    assert served["error"] is None and len(served["resources"]) > 100
    assert _canonical(served) == _canonical(fresh)


def _stateful_provider():
    from pulumi.dynamic import ResourceProvider

    # State of its own: serialized on every call, even by the worker (which serializes a stateless
    # provider's class once).
    provider = ResourceProvider()
    provider.state = 1
    return provider


def test_undoing_the_pickling_patch_unwraps_every_layer_serializing_a_provider_left():
    import pickle

    from pulumi.dynamic import dynamic

    from tests.pulumi_pickling import undo_dynamic_provider_pickling_patch

    undo_dynamic_provider_pickling_patch()
    original = pickle._Pickler._batch_setitems
    for _ in range(3):
        dynamic.serialize_provider(_stateful_provider())
    assert pickle._Pickler._batch_setitems is not original, "the SDK no longer leaves a wrapper: drop the undo"
    assert undo_dynamic_provider_pickling_patch() == 3
    assert pickle._Pickler._batch_setitems is original
    assert undo_dynamic_provider_pickling_patch() == 0


# The wrappers the SDK left on the Pickler in this process, counted without undoing them.
_PICKLER_DEPTH = """import pickle

import pulumi


def depth():
    function, layers = pickle._Pickler._batch_setitems, 0
    while "batch_set_items_sorted" in function.__qualname__:
        (function,) = [c.cell_contents for c in function.__closure__ if callable(c.cell_contents)]
        layers += 1
    return layers


pulumi.export("at_start", depth())
"""


def test_each_run_in_the_worker_starts_without_the_pickling_wrappers_earlier_runs_left(tmp_path):
    """pulumi.dynamic wraps pickle's Pickler on every provider it serializes and never unwraps it;
    after some hundreds of runs in one process the wrappers overflow the stack. A run that leaves
    five must not hand them to the next."""
    from tests.harness import _prepare, worker

    def request(name: str, body: str) -> dict:
        program = tmp_path / name / "__main__.py"
        program.parent.mkdir()
        program.write_text(_PICKLER_DEPTH + body)
        folder = tmp_path / f"{name}-run"
        folder.mkdir()
        return _prepare({"stack": "dev", "config": {}, "secret_keys": [], "preview": False,
                         "program": str(program), "project": "probe", "env": {}}, str(folder))

    leave_five = ("from pulumi.dynamic import ResourceProvider, dynamic\n"
                  "provider = ResourceProvider()\n"
                  "provider.state = 1\n"
                  "for _ in range(5):\n"
                  "    dynamic.serialize_provider(provider)\n"
                  "pulumi.export('at_end', depth())\n")
    own = worker.Worker(preload=None)
    try:
        first = own.run(request("first", leave_five))
        assert first["error"] is None, first["error"]
        assert first["exports"] == {"at_start": 0, "at_end": 5}
        assert own.run(request("second", ""))["exports"] == {"at_start": 0}
    finally:
        own.close()


def test_the_run_cache_key_follows_the_sources_the_request_and_the_environment(tmp_path, monkeypatch):
    from tests.harness import worker

    root = tmp_path / "checkout"
    monkeypatch.setattr(worker, "ROOT", root)
    (root / "components").mkdir(parents=True)
    source = root / "components" / "x.py"
    source.write_text("A = 1\n")
    (root / "docs").mkdir()
    (root / "docs" / "guide.md").write_text("words\n")
    (root / "tools" / "helm").mkdir(parents=True)
    (root / "tools" / "helm" / "build.sh").write_text("go build\n")
    cache = worker.RunCache()
    cache.folder, cache.enabled = tmp_path / "cache", True
    request = {"stack": "dev", "config": {"vault-platform:x": "1"}, "env": {}}
    key = cache._key(request)
    assert cache.get(request) is None
    cache.put(request, {"resources": [], "error": None})
    assert cache.get(request) == {"resources": [], "error": None} and cache.hits == 1
    # What the program never reads does not matter; its sources, its config and its environment do.
    (root / "docs" / "guide.md").write_text("other words\n")
    (root / "tools" / "helm" / "build.sh").write_text("go build -trimpath\n")
    assert cache._key(request) == key
    source.write_text("A = 2\n")
    assert cache._key(request) != key and cache.get(request) is None
    assert cache._key({**request, "config": {"vault-platform:x": "2"}}) != cache._key(request)
    assert cache._key({**request, "env": {"AWS_REGION": "us-east-1"}}) != cache._key(request)


def test_the_program_sees_the_environment_of_the_test_that_runs_it(tmp_path, monkeypatch):
    """The worker is started once, but each run gets the variables the program reads as they are
    when the test asks (a test's monkeypatch reaches the program); they are part of the cache key."""
    from tests.harness import run_program

    program = tmp_path / "__main__.py"
    program.write_text("import os\nimport pulumi\n"
                       "pulumi.export('skip', os.environ.get('VAULT_SKIP_VERIFY', 'unset'))\n")
    monkeypatch.setenv("VAULT_SKIP_VERIFY", "true")
    assert run_program(program, "dev", {}, [], project="env-probe").exports == {"skip": "true"}
    monkeypatch.delenv("VAULT_SKIP_VERIFY")
    assert run_program(program, "dev", {}, [], project="env-probe").exports == {"skip": "unset"}


def test_a_run_cut_short_never_hands_its_answer_to_the_next(tmp_path, monkeypatch):
    """Interrupted while the worker runs (Ctrl-C, a pytest timeout), the harness must not read that
    run's answer as the next request's: the next run goes to a new process."""
    from tests.harness import _prepare, worker

    def request(name: str) -> dict:
        program = tmp_path / name / "__main__.py"
        program.parent.mkdir()
        program.write_text(f"import pulumi\npulumi.export('program', {name!r})\n")
        folder = tmp_path / f"{name}-run"
        folder.mkdir()
        return _prepare({"stack": "dev", "config": {}, "secret_keys": [], "preview": False,
                         "program": str(program), "project": "probe", "env": {}}, str(folder))

    own = worker.Worker(preload=None)
    try:
        assert own.run(request("first"))["exports"] == {"program": "first"}
        read_line = worker.Worker._read_line

        def interrupted(proc):
            raise KeyboardInterrupt

        monkeypatch.setattr(worker.Worker, "_read_line", staticmethod(interrupted))
        with pytest.raises(KeyboardInterrupt):
            own.run(request("second"))
        monkeypatch.setattr(worker.Worker, "_read_line", staticmethod(read_line))
        assert own.run(request("third"))["exports"] == {"program": "third"}
    finally:
        own.close()


def test_a_request_being_evaluated_elsewhere_is_waited_for_not_evaluated_again(tmp_path):
    """xdist workers share the run cache: while one holds a request's claim, another process asking
    for the same request waits, and then finds the answer in the cache."""
    import subprocess
    import sys

    from tests.harness import worker

    cache = worker.RunCache()
    cache.folder, cache.enabled = tmp_path / "cache", True
    request = {"stack": "dev", "config": {"vault-platform:x": "1"}, "env": {}}
    other = ("import json, sys\nfrom tests.harness import worker\n"
             "cache = worker.RunCache()\ncache.folder, cache.enabled = worker.Path(sys.argv[1]), True\n"
             "request = json.loads(sys.argv[2])\nprint('asking', flush=True)\n"
             "with cache.claim(request):\n    print(json.dumps(cache.get(request)), flush=True)\n")
    with cache.claim(request):
        proc = subprocess.Popen([sys.executable, "-c", other, str(cache.folder), json.dumps(request)],
                                cwd=worker.ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "asking\n"
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1)  # held here: it waits
        cache.put(request, {"resources": [], "error": None})
    out, _ = proc.communicate(timeout=60)
    assert json.loads(out) == {"resources": [], "error": None}
