#!/usr/bin/env bash
# Build (once) the Pulumi CLI from Go modules, and install the Python dynamic-provider shim next
# to it, for the engine tests. See README.md in this directory.
#
# Output, OUTSIDE the repo, in ${VAULT_PLATFORM_CACHE:-$HOME/.cache/vault-platform}/bin/:
#   pulumi                          the CLI (engine, file backend, Automation API server side)
#   pulumi-resource-pulumi-python   the shim the engine runs for dynamic providers
# Rebuilt only when go.mod / go.sum / this script change (sha256 stamp pulumi.stamp next to
# them). The last line printed on stdout is the absolute path of the CLI; progress and compiler
# output go to stderr.
#
# Environment:
#   VAULT_PLATFORM_CACHE   cache root (default: $HOME/.cache/vault-platform)
#   GOTOOLCHAIN            honoured if set to something other than "local"; otherwise "auto", so
#                          an older local Go fetches the toolchain go.mod asks for from the proxy.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${VAULT_PLATFORM_CACHE:-${HOME:-/root}/.cache/vault-platform}"
bindir="$cache/bin"
bin="$bindir/pulumi"
shim="$bindir/pulumi-resource-pulumi-python"
stamp="$bindir/pulumi.stamp"

export CGO_ENABLED=0
# go.sum is committed and complete: readonly makes a drifted module graph an error, not an edit.
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOWORK=off # a user's go.work must not leak in
if [[ -z "${GOTOOLCHAIN:-}" || "${GOTOOLCHAIN}" == "local" ]]; then
  export GOTOOLCHAIN=auto
fi

log() { printf '[pulumi-engine/build.sh] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "error: 'go' not found on PATH (Go >= the version in go.mod is required)"
  exit 1
fi

# The CLI reports the version of the module it is built from (as upstream releases do), so the
# Automation API's version checks see the real one. One source of truth: go.mod.
version="$(sed -n 's/^[[:space:]]*github.com\/pulumi\/pulumi\/pkg\/v3 \(v[0-9][^ ]*\).*/\1/p' "$here/go.mod")"
if [[ ! "$version" =~ ^v3\.[0-9]+\.[0-9]+$ ]]; then
  log "error: cannot read the github.com/pulumi/pulumi/pkg/v3 version from $here/go.mod"
  exit 1
fi
build_flags=(-trimpath "-ldflags=-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version")

mkdir -p "$bindir"

key="$(
  {
    cat "$here/go.mod" "$here/go.sum" "$here/build.sh"
    printf '%s\n' "CGO_ENABLED=$CGO_ENABLED" "${build_flags[*]}" "$(go env GOOS GOARCH)"
  } | sha256sum | cut -d' ' -f1
)"

up_to_date() {
  [[ -x "$bin" && -x "$shim" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]
}

# Serialise concurrent runs (make test's background build and the tests' fixture) on one lock.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$bindir/.pulumi-build.lock"
  flock 9
fi

if up_to_date; then
  log "up to date: $bin"
else
  log "building the Pulumi CLI $version into $bin (cold: ~5 min on 2 cores) ..."
  start=$SECONDS
  tmp="$bin.tmp.$$"
  trap 'rm -f "$tmp" "$shim.tmp.$$"' EXIT
  # 9>&-: the lock fd must not leak into go/compile processes (an orphaned compiler would
  # otherwise keep holding the lock after an interrupted build).
  (cd "$here" && go build "${build_flags[@]}" -o "$tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) >&2 9>&-
  built="$("$tmp" version 9>&-)"
  if [[ "$built" != "$version" ]]; then
    log "error: the built CLI reports version '$built', expected $version"
    exit 1
  fi
  # The shim ships inside the sdk/v3 module (python/dist), read-only in the module cache.
  sdk_dir="$(cd "$here" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3 9>&-)"
  if [[ ! -f "$sdk_dir/python/dist/pulumi-resource-pulumi-python" ]]; then
    log "error: no python/dist/pulumi-resource-pulumi-python in $sdk_dir"
    exit 1
  fi
  install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$shim.tmp.$$"
  mv -f "$shim.tmp.$$" "$shim"
  mv -f "$tmp" "$bin"
  printf '%s\n' "$key" >"$stamp"
  log "built in $((SECONDS - start))s, $(du -h "$bin" | cut -f1)"
fi

echo "$bin"
