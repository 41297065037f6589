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
#   (and GOTOOLCHAIN, VAULT_PLATFORM_PRINT_KEY: see ../lib/go-build.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/go-build.sh
source "$here/../lib/go-build.sh" pulumi-engine/build.sh
bindir="$cache/bin"
bin="$bindir/pulumi"
shim="$bindir/pulumi-resource-pulumi-python"
stamp="$bindir/pulumi.stamp"

need " on PATH (Go >= the version in go.mod is required)" go

# The CLI reports the version of the module it is built from (as upstream releases do), so the
# Automation API's version checks see the real one. One source of truth: go.mod.
version="$(sed -n 's/^[[:space:]]*github.com\/pulumi\/pulumi\/pkg\/v3 \(v[0-9][^ ]*\).*/\1/p' "$here/go.mod")"
[[ "$version" =~ ^v3\.[0-9]+\.[0-9]+$ ]] ||
  die "cannot read the github.com/pulumi/pulumi/pkg/v3 version from $here/go.mod"
build_flags=(-trimpath "-ldflags=-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version")

key="$(sha256_key "$here/go.mod" "$here/go.sum" "$here/build.sh" \
  -- "CGO_ENABLED=$CGO_ENABLED" "${build_flags[*]}" "$(go env GOOS GOARCH)")"
print_keys_if_asked pulumi "$key"
mkdir -p "$bindir"

up_to_date() {
  [[ -x "$bin" && -x "$shim" ]] && stamp_matches "$stamp" "$key"
}

# Serialise concurrent runs (make test's background build and the tests' fixture) on one lock.
# What runs under it gets 9>&- (see lock in ../lib/go-build.sh).
lock "$bindir/.pulumi-build.lock"

if up_to_date; then
  log "up to date: $bin"
else
  log "building the Pulumi CLI $version into $bin (cold: ~5 min on 2 cores) ..."
  start=$SECONDS
  tmp="$bin.tmp.$$"
  trap 'rm -f "$tmp" "$shim.tmp.$$"' EXIT
  (cd "$here" && go build "${build_flags[@]}" -o "$tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) >&2 9>&-
  built="$("$tmp" version 9>&-)"
  [[ "$built" == "$version" ]] || die "the built CLI reports version '$built', expected $version"
  # The shim ships inside the sdk/v3 module (python/dist), read-only in the module cache.
  sdk_dir="$(cd "$here" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3 9>&-)"
  [[ -f "$sdk_dir/python/dist/pulumi-resource-pulumi-python" ]] ||
    die "no python/dist/pulumi-resource-pulumi-python in $sdk_dir"
  install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$shim.tmp.$$"
  mv -f "$shim.tmp.$$" "$shim"
  mv -f "$tmp" "$bin"
  write_stamp "$stamp" "$key"
  log "built in $((SECONDS - start))s, $(du -h "$bin" | cut -f1)"
fi

echo "$bin"
