#!/usr/bin/env bash
# shellcheck shell=bash
# What the Go build scripts (tools/*/build.sh) share: the environment their builds run in, their log
# lines, the check for the commands they need, the lock that makes concurrent runs wait for each
# other, and the sha256 keys and stamps that tell a current build from a stale one. Sourced, not run:
#   source "$here/../lib/go-build.sh" <name for the log lines, e.g. helm/build.sh>
#
# Nothing here is part of a cache key: a script's keys hash what its binaries are made from (go.mod
# and go.sum or sources, versions, flags, GOOS/GOARCH; the single-tool scripts also their own text).
# A change here that changes what gets built must come with a change to those keys, or the cached
# binaries stay as they are.
#
# Environment:
#   VAULT_PLATFORM_CACHE      cache root (default: $HOME/.cache/vault-platform)
#   GOTOOLCHAIN               honoured if set to something other than "local"; otherwise "auto", so an
#                             older local Go fetches the toolchain go.mod asks for from the proxy.
#   VAULT_PLATFORM_PRINT_KEY  1: print the cache keys ("<stamp name> <key>" lines) and exit before
#                             anything is locked, built or written (how the tests check the keys).

# shellcheck disable=SC2034 # used by the scripts that source this
cache="${VAULT_PLATFORM_CACHE:-${HOME:-/root}/.cache/vault-platform}"

# Static, stripped, reproducible-path builds, the way upstream releases are built.
export CGO_ENABLED=0
# go.sum is committed and complete: readonly makes a drifted module graph an error, not an edit.
export GOFLAGS="-mod=readonly -buildvcs=false"
export GOWORK=off # a user's go.work must not leak in
if [[ -z "${GOTOOLCHAIN:-}" || "${GOTOOLCHAIN}" == "local" ]]; then
  export GOTOOLCHAIN=auto
fi

go_build_log_name="${1:?name the log lines: source go-build.sh <script>}"
log() { printf '[%s] %s\n' "$go_build_log_name" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# need <message tail> <command>...: exit 1 unless every command is on PATH, naming the first one
# missing: "'<command>' not found<message tail>".
need() {
  local message_tail="$1" cmd
  shift
  for cmd; do
    command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found$message_tail"
  done
}

# sha256_key <file>... [-- <line>...]: the sha256 of the files' bytes followed by each line and a
# newline. A file that cannot be read fails the key rather than leaving it out.
sha256_key() {
  local files=()
  while (($# > 0)) && [[ "$1" != -- ]]; do
    files+=("$1")
    shift
  done
  (($# == 0)) || shift
  {
    if ((${#files[@]} > 0)); then cat -- "${files[@]}"; fi &&
      if (($# > 0)); then printf '%s\n' "$@"; fi
  } | sha256sum | cut -d' ' -f1
}

# print_keys_if_asked <name> <key> [<name> <key>]...: in print-key mode, the keys on stdout and exit.
print_keys_if_asked() {
  [[ "${VAULT_PLATFORM_PRINT_KEY:-0}" == 1 ]] || return 0
  printf '%s %s\n' "$@"
  exit 0
}

# lock <file>: hold <file> locked on fd 9 until the script exits, so a concurrent run (make test's
# background build and a test waiting for it) waits for this one; without flock, runs are not
# serialised. Run go and the binaries with 9>&-: an orphaned compiler would otherwise keep holding
# the lock after an interrupted build.
lock() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$1"
  flock 9
}

# stamp_matches <stamp file> <key>: whether the binaries the stamp stands for were built from <key>.
stamp_matches() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

# write_stamp <stamp file> <key>: once the binaries are in place.
write_stamp() { printf '%s\n' "$2" >"$1"; }
