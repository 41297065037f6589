"""The vault-platform guardrails: every rule of rules.py as a Pulumi policy.

The engine runs this folder (`pulumi preview --policy-pack policy --policy-pack-config
policy/config/<env>.json`). Without a config file every policy is mandatory; config/dev.json makes
them advisory for a local cluster.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

NAME = "vault-platform-guardrails"


def _plain(value: Any) -> Any:
    """The engine's properties as plain data, each value unknown in a preview as rules.UNKNOWN (the
    SDK's proxies raise on reading one, which would skip the whole policy instead of that value)."""
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = _plain(value[key])
            except UnknownValueError:
                out[key] = rules.UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = []
        for i in range(len(value)):
            try:
                items.append(_plain(value[i]))
            except UnknownValueError:
                items.append(rules.UNKNOWN)
        return items
    return value


def _report(violations: list[rules.Violation], report_violation: ReportViolation) -> None:
    for violation in violations:
        report_violation(str(violation), violation.urn or None)


def _resource_policy(rule: rules.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        # The engine does not tell a policy about retain_on_delete: None, so no check fails on it.
        options = rules.Options(protect=bool(args.opts.protect), parent=args.opts.parent)
        _report(rule.check(args.resource_type, args.name, _plain(args.props), options, _plain(args.get_config())),
                report_violation)

    return ResourceValidationPolicy(name=rule.name, description=rule.description, validate=validate,
                                    config_schema=_schema(rule))


def _stack_policy(rule: rules.Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [rules.Resource(
            type=r.resource_type, name=r.name, props=_plain(r.props), urn=r.urn,
            options=rules.Options(protect=bool(r.opts.protect), parent=r.parent.urn if r.parent else None),
            dependencies=tuple(d.urn for d in r.dependencies),
            property_dependencies={k: tuple(d.urn for d in v) for k, v in r.property_dependencies.items()},
        ) for r in args.resources]
        _report(rule.check(resources, _plain(args.get_config())), report_violation)

    return StackValidationPolicy(name=rule.name, description=rule.description, validate=validate,
                                 config_schema=_schema(rule))


def _schema(rule: rules.Rule) -> PolicyConfigSchema | None:
    if not rule.config_schema:
        return None
    return PolicyConfigSchema(properties={k: dict(v) for k, v in rule.config_schema.items()})


PolicyPack(
    name=NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[_stack_policy(rule) if rule.stack else _resource_policy(rule) for rule in rules.RULES],
)
