#!/usr/bin/env bash
# Build (once) a real HashiCorp Vault server binary from Go modules, for the
# integration tests. See README.md in this directory.
#
# Output: the binary lives OUTSIDE the repo, in
#   ${VAULT_PLATFORM_CACHE:-$HOME/.cache/vault-platform}/bin/vault
# and is rebuilt only when go.mod / go.sum / main.go / _sdk-compat / this script change
# (tracked by a sha256 stamp file next to it).
# The last line printed on stdout is the absolute path of the binary; all
# progress and compiler output goes to stderr.
#
# Environment:
#   VAULT_PLATFORM_CACHE   cache root (default: $HOME/.cache/vault-platform)
#   VAULT_SERVER_FORCE=1   rebuild even if the stamp matches
#   (and GOTOOLCHAIN, VAULT_PLATFORM_PRINT_KEY: see ../lib/go-build.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/go-build.sh
source "$here/../lib/go-build.sh" vault-server/build.sh
bindir="$cache/bin"
bin="$bindir/vault"
stamp="$bindir/vault.stamp"
build_flags=(-trimpath "-ldflags=-s -w")

need " on PATH (Go >= the version in go.mod is required)" go
key="$(sha256_key "$here/go.mod" "$here/go.sum" "$here/main.go" "$here/build.sh" "$here"/_sdk-compat/*.go \
  -- "CGO_ENABLED=$CGO_ENABLED" "${build_flags[*]}" "$(go env GOOS GOARCH)")"
print_keys_if_asked vault "$key"
mkdir -p "$bindir"

up_to_date() {
  [[ -x "$bin" ]] && stamp_matches "$stamp" "$key" && [[ "${VAULT_SERVER_FORCE:-0}" != "1" ]]
}

# Vault v1.21.4 is built upstream against its in-tree ./sdk (release branch),
# which is not byte-identical to any published github.com/hashicorp/vault/sdk.
# Versus the v0.21.0 that Vault's go.mod names, a full type-check of the build
# finds exactly two API differences:
#   1. framework.Backend.ActivationFunc: v0.21.0 added a 3rd (string) argument,
#      the release branch did not -> revert that field's type;
#   2. keysutil.LockManager.RestorePolicy returns (name, error) on the release
#      branch (as in sdk >= v0.25), only error in v0.21.0 -> rename v0.21.0's
#      method and add _sdk-compat/keysutil_restore_policy.go as an adapter.
# Go refuses -overlay for module-cache files (and a go.work changes the module
# graph), so the build runs from a scratch copy of this module in the cache
# dir whose go.mod additionally replaces the sdk with a patched copy. The
# repo's go.mod/go.sum stay untouched and clean. Each edit must match exactly
# once, so a version bump that no longer needs it fails loudly here.
patch_once() { # <file> <old literal> <new literal>
  local f="$1" n
  n="$(grep -cF -- "$2" "$f" || true)"
  if [[ "$n" != 1 ]]; then
    die "sdk patch expected 1 match of '$2' in $f, found $n"
  fi
  OLD="$2" NEW="$3" perl -0pi -e 's/\Q$ENV{OLD}\E/$ENV{NEW}/' "$f"
}

make_build_src() {
  local ws="$1" sdk_dir
  sdk_dir="$(cd "$here" && go mod download -json github.com/hashicorp/vault/sdk 9>&- | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$sdk_dir/framework" ]] || die "cannot locate github.com/hashicorp/vault/sdk source"
  rm -rf "$ws" && mkdir -p "$ws"
  cp "$here/go.mod" "$here/go.sum" "$here/main.go" "$ws/"
  cp -R "$sdk_dir" "$ws/sdk" && chmod -R u+w "$ws/sdk"
  patch_once "$ws/sdk/framework/backend.go" \
    'ActivationFunc func(context.Context, *logical.Request, string) error' \
    'ActivationFunc func(context.Context, *logical.Request) error'
  patch_once "$ws/sdk/helper/keysutil/lock_manager.go" \
    'func (lm *LockManager) RestorePolicy(ctx context.Context, storage logical.Storage, name, backup string, force bool) error {' \
    'func (lm *LockManager) restorePolicyV021(ctx context.Context, storage logical.Storage, name, backup string, force bool) error {'
  cp "$here/_sdk-compat/keysutil_restore_policy.go" "$ws/sdk/helper/keysutil/"
  printf '\n// added by build.sh\nreplace github.com/hashicorp/vault/sdk => ./sdk\n' >>"$ws/go.mod"
}

# Serialise concurrent builds (e.g. parallel test workers) on one lock file.
# What runs under it gets 9>&- (see lock in ../lib/go-build.sh).
lock "$bindir/.vault-build.lock"

if up_to_date; then
  log "up to date: $bin"
else
  log "building Vault into $bin (cold builds take ~25-35 min on 2 cores) ..."
  start=$SECONDS
  tmp="$bin.tmp.$$"
  ws="$cache/build-src"
  trap 'rm -f "$tmp"' EXIT
  make_build_src "$ws"
  (cd "$ws" && go build "${build_flags[@]}" -o "$tmp" .) >&2 9>&-
  "$tmp" version >&2 9>&-
  mv -f "$tmp" "$bin"
  write_stamp "$stamp" "$key"
  log "built in $((SECONDS - start))s, $(du -h "$bin" | cut -f1)"
fi

echo "$bin"
