#!/usr/bin/env bash
# Build (once) a real HashiCorp Vault server binary from Go modules, for the
# integration tests. See README.md in this directory.
#
# Output: the binary lives OUTSIDE the repo, in
#   ${VAULT_PLATFORM_CACHE:-$HOME/.cache/vault-platform}/bin/vault
# and is rebuilt only when go.mod / go.sum / main.go / the build flags change
# (tracked by a sha256 stamp file next to it).
# The last line printed on stdout is the absolute path of the binary; all
# progress and compiler output goes to stderr.
#
# Environment:
#   VAULT_PLATFORM_CACHE   cache root (default: $HOME/.cache/vault-platform)
#   VAULT_SERVER_FORCE=1   rebuild even if the stamp matches
#   GOTOOLCHAIN            honoured if set to something other than "local";
#                          otherwise "auto" is used so that an older local Go
#                          fetches the toolchain go.mod asks for from the proxy.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${VAULT_PLATFORM_CACHE:-${HOME:-/root}/.cache/vault-platform}"
bindir="$cache/bin"
bin="$bindir/vault"
stamp="$bindir/vault.stamp"

# Static, stripped, reproducible-path build (the way upstream releases are built).
export CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false"
if [[ -z "${GOTOOLCHAIN:-}" || "${GOTOOLCHAIN}" == "local" ]]; then
  export GOTOOLCHAIN=auto
fi
build_flags=(-trimpath -ldflags=-s\ -w)

log() { printf '[vault-server/build.sh] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "error: 'go' not found on PATH (Go >= the version in go.mod is required)"
  exit 1
fi

mkdir -p "$bindir"

key="$(
  {
    cat "$here/go.mod" "$here/go.sum" "$here/main.go"
    printf '%s\n' "CGO_ENABLED=$CGO_ENABLED" "${build_flags[*]}" "$(go env GOOS GOARCH)"
  } | sha256sum | cut -d' ' -f1
)"

up_to_date() {
  [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$key" && "${VAULT_SERVER_FORCE:-0}" != "1" ]]
}

# Serialise concurrent builds (e.g. parallel test workers) on one lock file.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$bindir/.vault-build.lock"
  flock 9
fi

if up_to_date; then
  log "up to date: $bin"
else
  log "building Vault into $bin (cold builds take ~10-20 min on 2 cores) ..."
  start=$SECONDS
  tmp="$bin.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  (cd "$here" && go build "${build_flags[@]}" -o "$tmp" .) >&2
  "$tmp" version >&2
  mv -f "$tmp" "$bin"
  printf '%s\n' "$key" >"$stamp"
  log "built in $((SECONDS - start))s, $(du -h "$bin" | cut -f1)"
fi

echo "$bin"
