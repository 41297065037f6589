"""The Pulumi CLI the engine tests build (tools/pulumi-engine) and the SDK the program pins agree."""

from __future__ import annotations

import re

from tests.harness import ROOT

TOOL = ROOT / "tools" / "pulumi-engine"


def _go_requirements() -> dict[str, str]:
    text = (TOOL / "go.mod").read_text()
    return dict(re.findall(r"^\s*(github\.com/pulumi/pulumi/(?:pkg|sdk)/v3) (v\S+)", text, re.M))


def _sdk_pin() -> str:
    found = re.findall(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert len(found) == 1, found
    return found[0]


def _version(text: str) -> tuple[int, ...]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text)
    assert match, f"not an exact release version: {text}"
    return tuple(int(x) for x in match.groups())


def test_the_cli_is_built_from_one_exact_pulumi_release():
    found = _go_requirements()
    assert set(found) == {"github.com/pulumi/pulumi/pkg/v3", "github.com/pulumi/pulumi/sdk/v3"}, found
    assert len(set(found.values())) == 1, f"pkg/v3 and sdk/v3 differ: {found}"
    _version(next(iter(found.values())))
    mod = (TOOL / "go.mod").read_text()
    assert "tool github.com/pulumi/pulumi/pkg/v3/cmd/pulumi" in mod
    # pkg's own go.mod replaces clipboard; a wrapper module must repeat it or build another one.
    assert "replace github.com/atotto/clipboard => github.com/tgummerer/clipboard" in mod
    assert "github.com/pulumi/pulumi/pkg/v3 " + next(iter(found.values())) in (TOOL / "go.sum").read_text()


def test_the_cli_is_not_older_than_the_sdk_of_the_program():
    """A CLI serves older language SDKs, not newer ones: the tests would otherwise run the program
    with an engine that lacks what its SDK asks for."""
    cli = _version(_go_requirements()["github.com/pulumi/pulumi/pkg/v3"])
    sdk = _version(_sdk_pin())
    assert cli[0] == sdk[0], f"CLI {cli} and SDK {sdk} differ in major version"
    assert cli >= sdk, f"CLI {cli} is older than the SDK {sdk} in requirements.txt: bump tools/pulumi-engine"


def test_the_readme_states_the_versions_it_builds():
    readme = (TOOL / "README.md").read_text()
    version = _go_requirements()["github.com/pulumi/pulumi/pkg/v3"]
    assert f"at {version}**" in readme and f"pulumi=={_sdk_pin()}" in readme
