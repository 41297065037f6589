"""Run a Pulumi program under Pulumi's mocks and report what it registered as JSON.

    python -m tests.harness.runner <request.json> <result.json>    one run, then exit
    python -m tests.harness.runner --serve [--preload MODULE]       one run per request line on stdin

Importing the providers' SDKs costs seconds; evaluating the program a fraction of that. The serving
mode imports them once and runs the program many times, each run as the CLI's language host runs an
inline program: in a fresh copy of the runtime's context (the root stack, the settings, the config),
on a fresh event loop, in the program's folder with its own environment. A test compares a served
run with a one-shot run in a fresh process, so a leak between runs would fail it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import json
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.dynamic import dynamic as pulumi_dynamic
from pulumi.runtime import _serialization, rpc
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import wait_for_rpcs

from tests.harness.fakes import fake_call, fake_outputs
from tests.pulumi_pickling import undo_dynamic_provider_pickling_patch

ROOT = Path(__file__).resolve().parents[2]
SECRET_SIG = rpc._special_secret_sig
SIG_KEY = rpc._special_sig_key


def unwrap(value: Any, path: str, secret_paths: list[str], inherited: bool = False) -> Any:
    """Strip Pulumi's secret envelopes, remembering each path that was secret."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            secret_paths.append(path)
            return unwrap(value.get("value"), path, secret_paths, True)
        return {k: unwrap(v, f"{path}.{k}" if path else k, secret_paths, inherited) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v, f"{path}[{i}]", secret_paths, inherited) for i, v in enumerate(value)]
    if value == rpc.UNKNOWN:
        return "<unknown>"
    return value


class Mocks(pulumi_mocks.Mocks):
    def __init__(self, preview: bool = False):
        self.preview = preview

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        outputs = dict(args.inputs)
        if self.preview:
            # As the engine previews a create: the inputs come back, everything a provider would
            # compute (and the ID) is unknown, and so is every input that depended on one.
            return "", outputs
        outputs.update(fake_outputs(args.typ, args.name, args.inputs))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi_mocks.MockCallArgs):
        return fake_call(args.token, args.args)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self.records: list[dict[str, Any]] = []
        self.outputs: dict[str, dict[str, Any]] = {}

    def RegisterResourceOutputs(self, request):  # noqa: N802 - gRPC method name
        """What a component registered as its outputs (register_outputs)."""
        raw = json_format.MessageToDict(request.outputs, preserving_proto_field_name=True)
        self.outputs[request.urn] = unwrap(raw, "", [])
        return super().RegisterResourceOutputs(request)

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
        secret_paths: list[str] = []
        inputs = unwrap(raw, "", secret_paths)
        response = super().RegisterResource(request)
        self.records.append({
            "type": request.type,
            "name": request.name,
            "urn": response.urn,
            "parent": request.parent,
            "custom": bool(request.custom),
            "inputs": inputs,
            "secret_paths": secret_paths,
            "protect": bool(request.protect) if request.HasField("protect") else False,
            "retain_on_delete": bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
            "depends_on": list(request.dependencies),
            "provider": request.provider,
            "additional_secret_outputs": list(request.additionalSecretOutputs),
            "ignore_changes": list(request.ignoreChanges),
            "delete_before_replace": bool(request.deleteBeforeReplace),
            "replace_on_changes": list(request.replaceOnChanges),
            "aliases": [json_format.MessageToDict(a, preserving_proto_field_name=True) for a in request.aliases],
        })
        return response


# Serializing a dynamic provider (dill, by value) is a third of a run, and its result depends only on
# the provider's class (its code and the module constants it refers to, which no run changes): each
# class is serialized once per process. Instances with state of their own are serialized every time.
_serialize_provider = pulumi_dynamic.serialize_provider
_SERIALIZED: dict[type, tuple[str, bool]] = {}


def _serialize_provider_once(provider: Any) -> str:
    if getattr(provider, "__dict__", None) != {}:
        return _serialize_provider(provider)
    cls = type(provider)
    if cls not in _SERIALIZED:
        text = _serialize_provider(provider)
        _SERIALIZED[cls] = (text, _serialization._var_serialization_contained_secrets.get())
    text, contained_secrets = _SERIALIZED[cls]
    if contained_secrets:
        _serialization._var_serialization_contained_secrets.set(True)
    return text


pulumi_dynamic.serialize_provider = _serialize_provider_once


def run(request: dict[str, Any]) -> dict[str, Any]:
    """One evaluation of the program, isolated from every other run in this process."""
    # Each run starts from the Pickler as it was before the first one (tests/pulumi_pickling.py).
    undo_dynamic_provider_pickling_patch()
    return contextvars.copy_context().run(_run, request)


def _run(request: dict[str, Any]) -> dict[str, Any]:
    stack = request["stack"]
    program = Path(request.get("program") or ROOT / "__main__.py")
    preview = bool(request.get("preview", False))
    # As the CLI does: the program runs in its project folder, beside its stack file.
    os.chdir(request.get("workdir") or ROOT)
    for key, value in (request.get("env") or {}).items():
        os.environ[key] = value
    if request.get("import_path"):
        # As another team's program runs: the components come from where they were installed, never
        # from this checkout. Only a run in a process of its own gets here (the harness sends it
        # there), since the shared worker has imported them from the checkout already.
        assert "components" not in sys.modules, "an installed-package run needs a process of its own"
        sys.path[:] = [request["import_path"], *(p for p in sys.path if Path(p or ".").resolve() != ROOT)]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = Mocks(preview=preview)
    monitor = RecordingMonitor(mocks)
    # reset_options clears the root stack (set_mocks only makes one when none exists); set_mocks
    # then installs fresh settings: a new RPC manager, no outputs, this run's project and stack.
    pulumi_settings.reset_options(project=request.get("project") or "vault-platform", stack=stack, preview=preview)
    pulumi.runtime.set_all_config(request["config"], request["secret_keys"])
    pulumi_mocks.set_mocks(mocks, project=request.get("project") or "vault-platform", stack=stack, preview=preview,
                           monitor=monitor)
    result: dict[str, Any] = {"stack": stack, "error": None, "error_type": None}
    try:
        runpy.run_path(str(program), run_name="__main__")
        # Let every outstanding registration and apply finish, as the CLI does before exiting.
        loop.run_until_complete(wait_for_rpcs())
        loop.run_until_complete(_collect_exports(result))
    except pulumi.RunError as exc:
        result["error"] = str(exc)
        result["error_type"] = type(exc).__name__
    except Exception as exc:  # the program crashed: a test failure, show the traceback
        result["error"] = "".join(traceback.format_exception(exc))
        result["error_type"] = type(exc).__name__
    finally:
        _close(loop)
    for record in monitor.records:
        record["outputs"] = monitor.outputs.get(record["urn"], {})
    loaded = sys.modules.get("components")
    result["components_from"] = str(Path(loaded.__file__).parent) if loaded and loaded.__file__ else None
    result["resources"] = monitor.records
    # What the program left for the providers in its project folder (the CA, the run's token file).
    result["local_files"] = {str(path): path.read_text()
                             for folder in (".vault-ca", ".vault-login") for path in sorted(Path(folder).glob("*"))
                             if path.is_file()}
    return result


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """What a failed run left pending is cancelled, as the language host does, before the next run."""
    for task in asyncio.all_tasks(loop):
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    asyncio.set_event_loop(None)


def main(request_path: str, result_path: str) -> int:
    sys.path.insert(0, str(ROOT))
    result = run(json.loads(Path(request_path).read_text()))
    Path(result_path).write_text(json.dumps(result, indent=1, default=str))
    return 0


def serve(preload: str | None = None) -> int:
    """Answer one JSON request line on stdin with one JSON result line, until stdin closes.

    The answers go to the original stdout; anything the program prints goes to stderr instead, so
    it can never corrupt an answer. ``preload``: a module every run imports (the platform's
    components), imported before the first request arrives."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.path.insert(0, str(ROOT))
    if preload:
        importlib.import_module(preload)
    base_env = dict(os.environ)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        os.environ.clear()
        os.environ.update(base_env)
        try:
            result = run(request)
        except BaseException as exc:  # the runner itself broke: report it, the next run starts clean
            result = {"stack": request.get("stack"), "runner_error": "".join(traceback.format_exception(exc))}
        answers.write(json.dumps(result, default=str) + "\n")
        answers.flush()
    return 0


async def _collect_exports(result: dict[str, Any]) -> None:
    """Resolve every stack export, noting which are secret, as the engine would store them."""
    root = pulumi.runtime.settings.get_root_resource()
    exports: dict[str, Any] = {}
    secret: list[str] = []
    for name, value in root.outputs.items():
        output = pulumi.Output.from_input(value)
        resolved = await output.future(with_unknowns=True)
        if await output.is_secret():
            secret.append(name)
        exports[name] = _plain(resolved)
    result["exports"] = exports
    result["export_secret_paths"] = secret


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return "<unknown>" if type(value).__name__ == "Unknown" else str(value)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(serve(sys.argv[3] if sys.argv[2:3] == ["--preload"] else None))
    sys.exit(main(sys.argv[1], sys.argv[2]))
