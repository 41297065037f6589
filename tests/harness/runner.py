"""Run the real __main__.py under Pulumi's mocks and write what it registered as JSON.

Usage: python -m tests.harness.runner <request.json> <result.json>

It runs in its own process because the Pulumi runtime keeps global state (the root stack, the
config): one evaluation per process is exactly how the CLI runs a program.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from tests.harness.fakes import fake_call, fake_outputs

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


def main(request_path: str, result_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    stack = request["stack"]
    config: dict[str, str] = request["config"]
    secret_keys: list[str] = request["secret_keys"]
    program = Path(request.get("program") or ROOT / "__main__.py")

    # As the CLI does: the program runs in its project folder, beside its stack file.
    os.chdir(request.get("workdir") or ROOT)
    sys.path.insert(0, str(ROOT))
    if request.get("import_path"):
        # As another team's program runs: the components come from where they were installed,
        # never from this checkout (the harness itself is already imported).
        sys.path[:] = [request["import_path"], *(p for p in sys.path if Path(p or ".").resolve() != ROOT)]
    mocks = Mocks(preview=request.get("preview", False))
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(config, secret_keys)
    pulumi_mocks.set_mocks(mocks, project=request.get("project") or "vault-platform", stack=stack,
                           preview=request.get("preview", False), monitor=monitor)
    result: dict[str, Any] = {"stack": stack, "error": None, "error_type": None}
    try:
        runpy.run_path(str(program), run_name="__main__")
        # Let every outstanding registration and apply finish, as the CLI does before exiting.
        _sync_await(wait_for_rpcs())
        _sync_await(_collect_exports(result))
    except pulumi.RunError as exc:
        result["error"] = str(exc)
        result["error_type"] = type(exc).__name__
    except Exception as exc:  # the program crashed: a test failure, show the traceback
        result["error"] = "".join(traceback.format_exception(exc))
        result["error_type"] = type(exc).__name__
    for record in monitor.records:
        record["outputs"] = monitor.outputs.get(record["urn"], {})
    loaded = sys.modules.get("components")
    result["components_from"] = str(Path(loaded.__file__).parent) if loaded and loaded.__file__ else None
    result["resources"] = monitor.records
    # What the program left for the providers in its project folder (the CA, the run's token file).
    result["local_files"] = {str(path): path.read_text()
                             for folder in (".vault-ca", ".vault-login") for path in sorted(Path(folder).glob("*"))
                             if path.is_file()}
    Path(result_path).write_text(json.dumps(result, indent=1, default=str))
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
    sys.exit(main(sys.argv[1], sys.argv[2]))
