"""Every component has one shape, so a program that composes them in code reads each the same way:

- its Args is a frozen dataclass of flat fields, each documented: plain values, Pulumi inputs, or
  plans the pure builders (components/render) made; never a section of the stack config
  (components/model), which is VaultPlatform's to map, and never a provider (those come through
  ``opts``);
- every attribute it sets is declared on the class with its type and a docstring.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import textwrap
import typing
from typing import Any

import pulumi
import pytest

import components.resources
from components.model import TlsConfig
from components.model.types import Secret, Section

# The one component made from the whole stack config: it maps that config onto the others' Args.
FROM_CONFIG = {"VaultPlatform"}


def _components() -> list[type[pulumi.ComponentResource]]:
    found: dict[str, type[pulumi.ComponentResource]] = {}
    for info in pkgutil.iter_modules(components.resources.__path__):
        module = importlib.import_module(f"components.resources.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, pulumi.ComponentResource)
                    and value.__module__ == module.__name__):
                found[value.__name__] = value
    return [found[name] for name in sorted(found)]


COMPONENTS = _components()
WITH_ARGS = [c for c in COMPONENTS if c.__name__ not in FROM_CONFIG]


def _hints(obj: Any) -> dict[str, Any]:
    # pulumi.Input[T] names Output[T] by a forward reference, resolved in the module that uses it.
    return typing.get_type_hints(obj, localns={"Output": pulumi.Output, "T": pulumi.output.T})


def _args_class(component: type) -> type:
    return _hints(component.__init__)["args"]


def _misplaced_types(hint: Any, nested_from: tuple[str, ...] = ("components.resources.",),
                     seen: set[Any] | None = None) -> set[str]:
    """Config sections, secrets of the config and providers anywhere in a type: in its arguments
    (``X | None``, ``tuple[X, ...]``) and in the fields of the Args dataclasses it nests (those of
    modules named by ``nested_from``)."""
    seen = set() if seen is None else seen
    if id(hint) in seen:
        return set()
    seen.add(id(hint))
    found: set[str] = set()
    if isinstance(hint, type):
        if issubclass(hint, Section | Secret | pulumi.ProviderResource):
            found.add(hint.__name__)
        if dataclasses.is_dataclass(hint) and hint.__module__.startswith(nested_from):
            for nested in _hints(hint).values():
                found |= _misplaced_types(nested, nested_from, seen)
    for arg in typing.get_args(hint):
        found |= _misplaced_types(arg, nested_from, seen)
    return found


def _class_node(cls: type) -> ast.ClassDef:
    node = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    assert isinstance(node, ast.ClassDef)
    return node


def _undocumented_fields(args: type) -> list[str]:
    """Fields with neither a comment on the line(s) just above them nor ``name`` in the class docstring."""
    node = _class_node(args)
    docstring = ast.get_docstring(node) or ""
    lines = textwrap.dedent(inspect.getsource(args)).splitlines()
    missing = []
    for statement in node.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        name = statement.target.id
        above = lines[statement.lineno - 2].strip() if statement.lineno >= 2 else ""
        if not above.startswith("#") and f"``{name}``" not in docstring:
            missing.append(name)
    return missing


def _attributes_set(node: ast.ClassDef) -> set[str]:
    """The public attributes the class's methods assign on ``self``."""
    names: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Assign):
            targets = child.targets
        elif isinstance(child, ast.AnnAssign | ast.AugAssign):
            targets = [child.target]
        else:
            continue
        for target in targets:
            for item in target.elts if isinstance(target, ast.Tuple) else [target]:
                if (isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) and item.value.id == "self"
                        and not item.attr.startswith("_")):
                    names.add(item.attr)
    return names


def _declared(node: ast.ClassDef) -> dict[str, bool]:
    """Class-level annotations -> whether a docstring follows each."""
    declared: dict[str, bool] = {}
    for i, statement in enumerate(node.body):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            after = node.body[i + 1] if i + 1 < len(node.body) else None
            declared[statement.target.id] = (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                                             and isinstance(after.value.value, str) and bool(after.value.value.strip()))
    return declared


def _attribute_problems(component: type) -> list[str]:
    node = _class_node(component)
    declared = _declared(node)
    problems = []
    for name in sorted(_attributes_set(node)):
        if name not in declared:
            problems.append(f"{name} is set but not declared on the class")
        elif not declared[name]:
            problems.append(f"{name} has no docstring")
    return problems


def test_every_component_is_found():
    names = {c.__name__ for c in COMPONENTS}
    assert {"VaultCluster", "VaultTls", "InjectorTls", "AutoUnseal", "VaultBootstrap", "VaultConfiguration",
            "RaftBackup", "VaultRollout", "RolloutAccess", "CertificatePair", "VaultPlatform"} <= names
    assert len(WITH_ARGS) >= 16


@pytest.mark.parametrize("component", WITH_ARGS, ids=lambda c: c.__name__)
def test_args_are_flat_frozen_and_documented(component):
    args = _args_class(component)
    assert dataclasses.is_dataclass(args) and args.__dataclass_params__.frozen, f"{args.__name__} is not frozen"
    hints = _hints(args)
    misplaced = {name: sorted(found) for name, hint in hints.items() if (found := _misplaced_types(hint))}
    assert misplaced == {}, f"{args.__name__} takes config sections or providers: {misplaced}"
    assert _undocumented_fields(args) == [], f"{args.__name__}: undocumented fields"


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_every_attribute_a_component_sets_is_declared_with_a_docstring(component):
    assert _attribute_problems(component) == []


def _refusals() -> dict[str, tuple[Any, str, str]]:
    """What -> (a callable making Args a component cannot use, the Args path it names, what it says)."""
    from components.model import AwsSecretsManagerStoreConfig
    from components.render.aws_secret_store import AwsSecretStore
    from components.render.external_secrets import ExternalSecretsDelivery
    from components.resources.aws_secret_store import AwsSecretsManagerStoreArgs
    from components.resources.bootstrap import VaultBootstrapArgs
    from components.resources.external_secrets import ExternalSecretsArgs
    from tests.harness import load_stack

    prod = load_stack("prod")
    assert prod.aws is not None
    return {
        "an init timeout that is no duration": (
            lambda: VaultBootstrapArgs(address="https://vault:8200", ca_cert_pem="", mode="auto", expected_peers=3,
                                       init_timeout="5 minutes"),
            "init_timeout", "'5 minutes' is not a positive duration"),
        "an operator timeout that is no duration": (
            lambda: ExternalSecretsArgs(ExternalSecretsDelivery.of(prod), "", timeout="ten minutes"),
            "timeout", "'ten minutes' is not a positive duration"),
        "a transition store without a name prefix": (
            lambda: AwsSecretsManagerStoreArgs(
                AwsSecretStore(AwsSecretsManagerStoreConfig(enabled=True), prod.aws), "vault"),
            "store.store.name_prefix", "needs a name prefix (migration.awsSecretsManager.namePrefix)"),
    }


@pytest.mark.parametrize("what", ["an init timeout that is no duration", "an operator timeout that is no duration",
                                  "a transition store without a name prefix"])
def test_args_a_component_cannot_use_stop_the_program_naming_the_field(what):
    make, path, reason = _refusals()[what]
    with pytest.raises(pulumi.InputPropertyError) as err:
        make()
    # A RunError: the language host prints the message alone, no traceback.
    assert isinstance(err.value, pulumi.RunError)
    assert err.value.property_path == path and reason in err.value.reason


# --- the checks above see what they look for --------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Nested:
    # a plan field
    token: Secret


@dataclasses.dataclass(frozen=True)
class _BadArgs:
    """``name`` is documented here."""

    name: str
    tls: TlsConfig | None
    provider: tuple[pulumi.ProviderResource, ...]
    nested: _Nested | None = None


class _BadComponent(pulumi.ComponentResource):
    declared: pulumi.Output[str]
    """Documented."""
    bare: pulumi.Output[str]

    def __init__(self) -> None:
        self.declared, self.bare = pulumi.Output.from_input("a"), pulumi.Output.from_input("b")
        self.stray = 1
        self._private = 2


def test_the_checks_see_config_sections_providers_and_undeclared_attributes():
    hints = _hints(_BadArgs)
    # Nested dataclasses are followed into the modules named (the resources layer's Args; here, this one).
    assert _misplaced_types(hints["nested"]) == set()
    assert {name: _misplaced_types(hint, (__name__,)) for name, hint in hints.items()} == {
        "name": set(), "tls": {"TlsConfig"}, "provider": {"ProviderResource"}, "nested": {"Secret"}}
    assert _undocumented_fields(_BadArgs) == ["tls", "provider", "nested"]
    assert _undocumented_fields(_Nested) == []
    assert _attribute_problems(_BadComponent) == ["bare has no docstring", "stray is set but not declared on the class"]
