#!/usr/bin/env bash
# Build (once) Prometheus' promtool from Go modules, for the alert rule tests (`promtool check rules`,
# `promtool test rules`).
#
# Output: ${VAULT_PLATFORM_CACHE:-$HOME/.cache/vault-platform}/bin/promtool, outside the repo, rebuilt
# only when this script changes (sha256 stamp next to it). The last line printed on stdout is the
# binary's path; progress goes to stderr.
#
# Pinned: github.com/prometheus/prometheus v0.316.0 (Prometheus 3.16.0), whose go.mod and go.sum fix
# every dependency. -tags remove_all_sd leaves out the service discovery plugins promtool does not
# need for rules, which halves the build.
#
# Environment:
#   VAULT_PLATFORM_CACHE   cache root (default: $HOME/.cache/vault-platform)
#   PROMTOOL_FORCE=1       rebuild even if the stamp matches
#   (and GOTOOLCHAIN, VAULT_PLATFORM_PRINT_KEY: see ../lib/go-build.sh)
set -euo pipefail

version="v0.316.0"
package="github.com/prometheus/prometheus/cmd/promtool"
tags="remove_all_sd"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/go-build.sh
source "$here/../lib/go-build.sh" promtool/build.sh
bindir="$cache/bin"
bin="$bindir/promtool"
stamp="$bindir/promtool.stamp"
# `go install module@version` builds with that module's own go.mod and go.sum: no -mod=readonly
# for a go.sum of ours to keep.
export GOFLAGS="-buildvcs=false"

need " on PATH" go
key="$(sha256_key "$here/build.sh" -- "$version" "$tags" "CGO_ENABLED=$CGO_ENABLED" "$(go env GOOS GOARCH)")"
print_keys_if_asked promtool "$key"
mkdir -p "$bindir"

up_to_date() {
  [[ -x "$bin" ]] && stamp_matches "$stamp" "$key" && [[ "${PROMTOOL_FORCE:-0}" != "1" ]]
}

# Serialise concurrent builds (the test runner's background build and a test waiting for it).
# What runs under it gets 9>&- (see lock in ../lib/go-build.sh).
lock "$bindir/.promtool-build.lock"

if up_to_date; then
  log "up to date: $bin"
else
  log "building promtool $version into $bin ..."
  start=$SECONDS
  gobin="$(mktemp -d "$bindir/.promtool-build.XXXXXX")"
  trap 'rm -rf "$gobin"' EXIT
  GOBIN="$gobin" go install -trimpath "-ldflags=-s -w" -tags "$tags" "$package@$version" >&2 9>&-
  "$gobin/promtool" --version >&2 9>&-
  mv -f "$gobin/promtool" "$bin"
  write_stamp "$stamp" "$key"
  log "built in $((SECONDS - start))s"
fi

echo "$bin"
