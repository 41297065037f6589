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
set -euo pipefail

version="v0.316.0"
package="github.com/prometheus/prometheus/cmd/promtool"
tags="remove_all_sd"

cache="${VAULT_PLATFORM_CACHE:-${HOME:-/root}/.cache/vault-platform}"
bindir="$cache/bin"
bin="$bindir/promtool"
stamp="$bindir/promtool.stamp"

export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false"
export GOWORK=off
if [[ -z "${GOTOOLCHAIN:-}" || "${GOTOOLCHAIN}" == "local" ]]; then
  export GOTOOLCHAIN=auto
fi

log() { printf '[promtool/build.sh] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "error: 'go' not found on PATH"
  exit 1
fi
mkdir -p "$bindir"

key="$(
  {
    cat "${BASH_SOURCE[0]}"
    printf '%s\n' "$version" "$tags" "CGO_ENABLED=$CGO_ENABLED" "$(go env GOOS GOARCH)"
  } | sha256sum | cut -d' ' -f1
)"

up_to_date() {
  [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$key" && "${PROMTOOL_FORCE:-0}" != "1" ]]
}

# Serialise concurrent builds (the test runner's background build and a test waiting for it).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$bindir/.promtool-build.lock"
  flock 9
fi

if up_to_date; then
  log "up to date: $bin"
else
  log "building promtool $version into $bin ..."
  start=$SECONDS
  gobin="$(mktemp -d "$bindir/.promtool-build.XXXXXX")"
  trap 'rm -rf "$gobin"' EXIT
  # 9>&-: the lock must not leak into the compilers (an orphan would hold it after an interrupt).
  GOBIN="$gobin" go install -trimpath "-ldflags=-s -w" -tags "$tags" "$package@$version" >&2 9>&-
  "$gobin/promtool" --version >&2 9>&-
  mv -f "$gobin/promtool" "$bin"
  printf '%s\n' "$key" >"$stamp"
  log "built in $((SECONDS - start))s"
fi

echo "$bin"
