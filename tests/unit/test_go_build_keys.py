"""The Go build scripts (tools/*/build.sh on tools/lib/go-build.sh): their cache keys, and what they
do when a build is current or Go is missing, checked without building anything.

A key decides when a 5-30 minute build runs again, on this machine and in CI, so each one is
recomputed here from the files it covers, byte for byte in the order the scripts feed them to
sha256sum: the files' contents, then each line with a newline. The scripts print their keys and
exit when VAULT_PLATFORM_PRINT_KEY=1, before they lock, build or write anything."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT
from tests.helm import chart_version

TOOLS = ROOT / "tools"
SINGLE = ("vault-server", "helm", "promtool", "pulumi-engine")
# What the scripts export for their builds; the key-relevant parts are CGO_ENABLED and GOOS/GOARCH.
GO_ENV = {"CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false", "GOWORK": "off"}


def _sha256(*files: Path, lines: tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    for line in lines:
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def _go(*args: str, cwd: Path) -> str:
    """What a `"$(go ...)"` in the scripts expands to: stdout without its trailing newlines."""
    env = {**os.environ, **GO_ENV}
    return subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True,
                          timeout=120).stdout.rstrip("\n")


def _assigned(script: Path, name: str) -> str:
    found = re.findall(rf'^{name}="([^"]+)"$', script.read_text(), re.M)
    assert len(found) == 1, f"{script}: {name}"
    return found[0]


def _go_mod_version(module: Path, path: str) -> str:
    found = re.findall(rf"^\s*{re.escape(path)} (v\S+)", (module / "go.mod").read_text(), re.M)
    assert len(found) == 1, f"{module}/go.mod: {path}"
    return found[0]


def _printed_keys(script: Path, tmp_path: Path) -> dict[str, str]:
    cache = tmp_path / "print-key-cache"
    env = {**os.environ, "VAULT_PLATFORM_PRINT_KEY": "1", "VAULT_PLATFORM_CACHE": str(cache)}
    # From another folder than the script's: the scripts find their files and the lib on their own.
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not cache.exists(), "print-key mode must leave the cache alone"
    pairs = [line.split(" ") for line in proc.stdout.splitlines()]
    assert all(len(pair) == 2 and re.fullmatch(r"[0-9a-f]{64}", pair[1]) for pair in pairs), proc.stdout
    return dict(pairs)


def _expected_single_keys(tools: Path, goos_goarch: str) -> dict[str, str]:
    vault, helm, pulumi = tools / "vault-server", tools / "helm", tools / "pulumi-engine"
    helm_version = _go_mod_version(helm, "helm.sh/helm/v3")
    pulumi_version = _go_mod_version(pulumi, "github.com/pulumi/pulumi/pkg/v3")
    promtool = tools / "promtool" / "build.sh"
    return {
        "vault": _sha256(vault / "go.mod", vault / "go.sum", vault / "main.go", vault / "build.sh",
                         *sorted((vault / "_sdk-compat").glob("*.go")),
                         lines=("CGO_ENABLED=0", "-trimpath -ldflags=-s -w", goos_goarch)),
        "helm": _sha256(helm / "go.mod", helm / "go.sum", helm / "build.sh",
                        lines=("CGO_ENABLED=0",
                               f"-trimpath -ldflags=-s -w -X helm.sh/helm/v3/internal/version.version={helm_version}",
                               goos_goarch)),
        "promtool": _sha256(promtool, lines=(_assigned(promtool, "version"), _assigned(promtool, "tags"),
                                             "CGO_ENABLED=0", goos_goarch)),
        "pulumi": _sha256(pulumi / "go.mod", pulumi / "go.sum", pulumi / "build.sh",
                          lines=("CGO_ENABLED=0", "-trimpath -ldflags=-s -w -X "
                                 f"github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={pulumi_version}",
                                 goos_goarch)),
    }


def _expected_cluster_keys(cluster: Path, goos_goarch: str) -> dict[str, str]:
    script = cluster / "build.sh"
    kube, coredns, vault_k8s, cri, eso = (_assigned(script, f"{name}_VERSION")
                                          for name in ("KUBERNETES", "COREDNS", "VAULT_K8S", "CRI_TOOLS", "ESO"))
    assert _go_mod_version(cluster / "external-secrets", "github.com/external-secrets/external-secrets") == eso
    built_at = _go("list", "-m", "-f", '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}', "k8s.io/kubernetes",
                   cwd=cluster)
    minor = kube.split(".")[1]
    ldflags = "-s -w" + "".join(
        f" -X {pkg}.gitVersion={kube} -X {pkg}.gitMajor=1 -X {pkg}.gitMinor={minor}"
        f" -X {pkg}.gitTreeState=clean -X {pkg}.buildDate={built_at}"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"))
    kube_pkgs = (*(f"k8s.io/kubernetes/cmd/{c}" for c in ("kube-apiserver", "kube-controller-manager",
                                                           "kube-scheduler", "kubelet", "kube-proxy", "kubectl")),
                 "./cmd/local-volumes", "./cmd/host-ports")
    return {
        "kube": _sha256(cluster / "go.mod", cluster / "go.sum", *sorted(cluster.glob("cmd/*/*.go")),
                        lines=(ldflags, *kube_pkgs, goos_goarch)),
        "coredns": _sha256(lines=(f"github.com/coredns/coredns@{coredns}",
                                  f"-s -w -X github.com/coredns/coredns/coremain.GitCommit={coredns}", goos_goarch)),
        # The injector's own inputs (its wrapper module, its flags), not build.sh's text.
        "vault-k8s": _sha256(cluster / "vault-k8s" / "go.mod", cluster / "vault-k8s" / "go.sum",
                             lines=(f"-s -w -X github.com/hashicorp/vault-k8s/version.Version={vault_k8s[1:]}",
                                    goos_goarch)),
        "external-secrets": _sha256(cluster / "external-secrets" / "go.mod", cluster / "external-secrets" / "go.sum"),
        "crictl": _sha256(lines=(f"sigs.k8s.io/cri-tools/cmd/crictl@{cri}",
                                 f"-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version={cri}", goos_goarch)),
        "pause": _sha256(cluster / "images" / "pause.c"),
    }


@pytest.fixture(scope="module")
def goos_goarch(tmp_path_factory) -> str:
    return _go("env", "GOOS", "GOARCH", cwd=tmp_path_factory.mktemp("go-env"))


@pytest.mark.parametrize("tool", SINGLE)
def test_a_tool_key_covers_exactly_what_it_always_did(tool, tmp_path, goos_goarch):
    [(name, key)] = _printed_keys(TOOLS / tool / "build.sh", tmp_path).items()
    assert key == _expected_single_keys(TOOLS, goos_goarch)[name]


def test_the_cluster_keys_cover_each_part_s_own_inputs(tmp_path, goos_goarch):
    keys = _printed_keys(TOOLS / "cluster" / "build.sh", tmp_path)
    assert keys == _expected_cluster_keys(TOOLS / "cluster", goos_goarch)


def _copy_tools(tmp_path: Path) -> Path:
    tools = tmp_path / "tools"
    ignore = shutil.ignore_patterns("manifests", "README.md")
    for folder in ("lib", *SINGLE, "cluster"):
        shutil.copytree(TOOLS / folder, tools / folder, ignore=ignore)
    return tools


def test_editing_a_script_rebuilds_only_what_hashes_that_script(tmp_path, goos_goarch):
    """The single-tool scripts hash their own text (a change to how they build rebuilds); the cluster's
    parts hash only what they are made from, so editing cluster/build.sh rebuilds none of them."""
    tools = _copy_tools(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    before = {tool: _printed_keys(tools / tool / "build.sh", run) for tool in (*SINGLE, "cluster")}
    for tool in (*SINGLE, "cluster"):
        with (tools / tool / "build.sh").open("a") as script:
            script.write("# edited\n")
    after = {tool: _printed_keys(tools / tool / "build.sh", run) for tool in (*SINGLE, "cluster")}
    for tool in SINGLE:
        assert before[tool].keys() == after[tool].keys()
        assert before[tool] != after[tool], tool
    assert after["cluster"] == before["cluster"]
    assert after["cluster"] == _expected_cluster_keys(tools / "cluster", goos_goarch)
    expected = _expected_single_keys(tools, goos_goarch)
    assert {name: key for tool in SINGLE for name, key in after[tool].items()} == expected


def _path_with(tmp_path: Path, *commands: str) -> str:
    """A PATH holding only the named commands."""
    bindir = tmp_path / "path"
    bindir.mkdir()
    for command in commands:
        found = shutil.which(command)
        assert found, command
        (bindir / command).symlink_to(found)
    return str(bindir)


def _path_with_go_env_only(tmp_path: Path) -> str:
    """PATH with a `go` in front that answers `go env` and fails anything else: a script that would
    build fails at once instead."""
    real = shutil.which("go")
    assert real
    bindir = tmp_path / "go-env-only"
    bindir.mkdir()
    go = bindir / "go"
    go.write_text(f'#!{shutil.which("bash")}\n[[ "$1" == env ]] && exec {real} "$@"\n'
                  'echo "go $*: this test builds nothing" >&2\nexit 97\n')
    go.chmod(0o755)
    return f"{bindir}{os.pathsep}{os.environ['PATH']}"


MISSING_GO = {
    "vault-server": "[vault-server/build.sh] error: 'go' not found on PATH (Go >= the version in go.mod is required)",
    "helm": "[helm/build.sh] error: 'go' not found on PATH (Go >= the version in go.mod is required)",
    "promtool": "[promtool/build.sh] error: 'go' not found on PATH",
    "pulumi-engine": "[pulumi-engine/build.sh] error: 'go' not found on PATH (Go >= the version in go.mod is required)",
    "cluster": "[cluster/build.sh] error: 'go' not found (make system-packages installs what the cluster needs)",
}


@pytest.mark.parametrize("tool", sorted(MISSING_GO))
def test_without_go_a_script_says_so_and_fails(tool, tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "PATH": _path_with(tmp_path, "dirname"), "VAULT_PLATFORM_CACHE": str(cache)}
    proc = subprocess.run([shutil.which("bash"), str(TOOLS / tool / "build.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stderr, proc.stdout) == (1, MISSING_GO[tool] + "\n", "")
    assert not cache.exists()


# <tool>: (its binary and stamp name, what else must be in the cache, its "up to date" line)
CURRENT = {
    "vault-server": ("vault", [], "up to date: {cache}/bin/vault"),
    "helm": ("helm", ["charts/vault-helm-{chart}/Chart.yaml"],
             "up to date: {cache}/bin/helm, {cache}/charts/vault-helm-{chart}"),
    "promtool": ("promtool", [], "up to date: {cache}/bin/promtool"),
    "pulumi-engine": ("pulumi", ["bin/pulumi-resource-pulumi-python"], "up to date: {cache}/bin/pulumi"),
}


@pytest.mark.parametrize("tool", sorted(CURRENT))
def test_a_current_build_is_left_alone(tool, tmp_path):
    """A stamp holding the key (as the scripts have always written it) and the binaries in place: the
    script takes its lock, says so under its own name, builds nothing and prints the binary's path."""
    name, others, line = CURRENT[tool]
    cache = tmp_path / "cache"
    for path in (f"bin/{name}", *others):
        target = cache / path.format(chart=chart_version())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("#!/bin/sh\n")
        target.chmod(0o755)
    key = _printed_keys(TOOLS / tool / "build.sh", tmp_path)[name]
    (cache / "bin" / f"{name}.stamp").write_text(key + "\n")
    env = {**os.environ, "PATH": _path_with_go_env_only(tmp_path), "VAULT_PLATFORM_CACHE": str(cache)}
    proc = subprocess.run(["bash", str(TOOLS / tool / "build.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"[{tool}/build.sh] " + line.format(cache=cache, chart=chart_version())]
    assert proc.stdout == f"{cache}/bin/{name}\n"
    assert (cache / "bin" / f".{name}-build.lock").is_file()
