"""Run the guardrails policy pack (policy/) the way the Pulumi engine does, without the engine.

``load_analyzer()`` executes policy/__main__.py as the engine's Python host does (``runpy`` on the
folder) with the gRPC server stubbed out, and returns the real pulumi_policy analyzer it built; the
functions below hand it protocol messages (Configure, Analyze, AnalyzeStack) made from what the
program registered under the mocks, and return its diagnostics.
"""

from __future__ import annotations

import json
import runpy
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy import rules
from tests.harness import ROOT, Recording

POLICY = ROOT / "policy"
CONFIGS = POLICY / "config"
ENVIRONMENTS = ("dev", "prod")
LEVELS = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY,
          "disabled": analyzer_pb2.DISABLED, "remediate": analyzer_pb2.REMEDIATE}


def config_file(env: str) -> dict[str, Any]:
    return json.loads((CONFIGS / f"{env}.json").read_text())


def enforcement(env: str, policy: str) -> str:
    entry = config_file(env)[policy]
    return entry if isinstance(entry, str) else entry["enforcementLevel"]


def settings(env: str, policy: str) -> dict[str, Any]:
    """A policy's own settings in an environment's config file (what get_config() returns)."""
    entry = config_file(env)[policy]
    return {} if isinstance(entry, str) else {k: v for k, v in entry.items() if k != "enforcementLevel"}


def resources_of(rec: Recording) -> list[rules.Resource]:
    """What the program registered, as the checks take it (the inputs the engine analyzes)."""
    return [rules.Resource(type=r.type, name=r.name, props=r.inputs, urn=r.urn,
                           options=rules.Options(protect=r.protect, retain_on_delete=r.retain_on_delete,
                                                 parent=r.parent or None),
                           dependencies=tuple(r.depends_on))
            for r in rec.resources]


def violations(rule_name: str, resources: Iterable[rules.Resource], env: str = "prod") -> list[rules.Violation]:
    """One rule over every resource (or the whole stack), with an environment's settings."""
    rule = rules.rule(rule_name)
    config = settings(env, rule_name)
    resources = list(resources)
    if rule.stack:
        return rule.check(resources, config)
    return [v for r in resources for v in rule.check(r.type, r.name, r.props, r.options, config)]


# --- the real analyzer ----------------------------------------------------------------------------


class _ServerStartedError(Exception):
    pass


class _StubServer:
    def add_insecure_port(self, address: str) -> int:
        return 0

    def start(self) -> None:
        # PolicyPack serves forever once started; stop it here, the analyzer is already registered.
        raise _ServerStartedError


def load_analyzer() -> Any:
    """The analyzer (pulumi_policy's gRPC servicer) that policy/__main__.py builds."""
    captured: dict[str, Any] = {}
    # The pack imports its rules as the top-level module `rules` (its folder is on sys.path when the
    # engine runs it); keep that name out of the rest of the test run.
    had_rules = "rules" in sys.modules
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grpc, "server", lambda *args, **kwargs: _StubServer())
        patch.setattr(analyzer_pb2_grpc, "add_AnalyzerServicer_to_server",
                      lambda servicer, server: captured.setdefault("analyzer", servicer))
        try:
            runpy.run_path(str(POLICY), run_name="__main__")
        except _ServerStartedError:
            pass
        else:
            raise AssertionError("policy/__main__.py returned without starting a PolicyPack")
        finally:
            if not had_rules:
                sys.modules.pop("rules", None)
    return captured["analyzer"]


def configure_request(env: str) -> analyzer_pb2.ConfigureAnalyzerRequest:
    """What the CLI sends for --policy-pack-config policy/config/<env>.json."""
    configs = {}
    for name, entry in config_file(env).items():
        level = entry if isinstance(entry, str) else entry["enforcementLevel"]
        properties = struct_pb2.Struct()
        properties.update({} if isinstance(entry, str) else
                          {k: v for k, v in entry.items() if k != "enforcementLevel"})
        configs[name] = analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level], properties=properties)
    return analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=configs)


def _wire(value: Any) -> Any:
    """Properties as the engine sends them: an unknown value is the SDK's sentinel string."""
    if rules.is_unknown(value):
        return UNKNOWN_STRING_VALUE
    if isinstance(value, Mapping):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(_wire(props), struct_pb2.Struct())


def analyze_request(r: rules.Resource) -> analyzer_pb2.AnalyzeRequest:
    return analyzer_pb2.AnalyzeRequest(
        type=r.type, name=r.name, urn=r.urn or f"urn:pulumi:test::vault-platform::{r.type}::{r.name}",
        properties=struct(r.props),
        options=analyzer_pb2.AnalyzerResourceOptions(protect=r.options.protect, parent=r.options.parent or ""))


def stack_request(resources: Iterable[rules.Resource]) -> analyzer_pb2.AnalyzeStackRequest:
    return analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(
            type=r.type, name=r.name, urn=r.urn, properties=struct(r.props), parent=r.options.parent or "",
            dependencies=list(r.dependencies),
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r.options.protect,
                                                         parent=r.options.parent or ""))
        for r in resources])


def analyze_all(analyzer: Any, resources: list[rules.Resource]) -> list[Any]:
    """Every diagnostic the analyzer reports for a stack: each resource, then the stack."""
    diagnostics = []
    for r in resources:
        diagnostics += list(analyzer.Analyze(analyze_request(r), None).diagnostics)
    diagnostics += list(analyzer.AnalyzeStack(stack_request(resources), None).diagnostics)
    return diagnostics
