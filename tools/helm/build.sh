#!/usr/bin/env bash
# Build (once) the helm CLI from Go modules and fetch the Vault chart from the Go module proxy, for
# the chart tests (tests/chart): they render the real chart with the values the program produces.
#
# Output, OUTSIDE the repo, in ${VAULT_PLATFORM_CACHE:-$HOME/.cache/vault-platform}:
#   bin/helm                        helm.sh/helm/v3 at the version go.mod pins
#   charts/vault-helm-<version>/    github.com/hashicorp/vault-helm at the version go.mod pins: the
#                                   module zip of the chart's repository at its tag, checked against
#                                   the hash in go.sum (and the checksum database when first fetched)
# Rebuilt only when go.mod / go.sum / this script change (sha256 stamp bin/helm.stamp). The last line
# printed on stdout is the path of helm; progress and compiler output go to stderr.
#
# Environment:
#   VAULT_PLATFORM_CACHE   cache root (default: $HOME/.cache/vault-platform)
#   HELM_FORCE=1           rebuild even if the stamp matches
#   (and GOTOOLCHAIN, VAULT_PLATFORM_PRINT_KEY: see ../lib/go-build.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/go-build.sh
source "$here/../lib/go-build.sh" helm/build.sh
bindir="$cache/bin"
bin="$bindir/helm"
stamp="$bindir/helm.stamp"

need " on PATH (Go >= the version in go.mod is required)" go

# One source of truth for both versions: go.mod.
helm_version="$(sed -n 's/^[[:space:]]*helm\.sh\/helm\/v3 \(v3\.[0-9.]*\).*/\1/p' "$here/go.mod")"
chart_version="$(sed -n 's/^require github\.com\/hashicorp\/vault-helm v\([0-9][0-9.]*\)$/\1/p' "$here/go.mod")"
[[ -n "$helm_version" && -n "$chart_version" ]] ||
  die "cannot read the helm.sh/helm/v3 and github.com/hashicorp/vault-helm versions from $here/go.mod"
chart="$cache/charts/vault-helm-$chart_version"
# helm reports the version it was built from, as upstream releases do.
build_flags=(-trimpath "-ldflags=-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version")

key="$(sha256_key "$here/go.mod" "$here/go.sum" "$here/build.sh" \
  -- "CGO_ENABLED=$CGO_ENABLED" "${build_flags[*]}" "$(go env GOOS GOARCH)")"
print_keys_if_asked helm "$key"
mkdir -p "$bindir" "$cache/charts"

up_to_date() {
  [[ -x "$bin" && -f "$chart/Chart.yaml" ]] && stamp_matches "$stamp" "$key" && [[ "${HELM_FORCE:-0}" != "1" ]]
}

# Serialise concurrent runs (make test's background build and the tests' fixture) on one lock.
# What runs under it gets 9>&- (see lock in ../lib/go-build.sh).
lock "$bindir/.helm-build.lock"

if up_to_date; then
  log "up to date: $bin, $chart"
else
  log "building helm $helm_version into $bin and fetching the vault chart $chart_version (cold: a few minutes) ..."
  start=$SECONDS
  tmp="$bin.tmp.$$"
  chart_tmp="$chart.tmp.$$"
  trap 'rm -rf "$tmp" "$chart_tmp"' EXIT
  # The chart: `go mod download` verifies the module zip against go.sum before unpacking it.
  dir="$(cd "$here" && go mod download -json github.com/hashicorp/vault-helm 9>&- |
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -f "$dir/Chart.yaml" ]] || die "github.com/hashicorp/vault-helm v$chart_version has no Chart.yaml (at '$dir')"
  got="$(sed -n 's/^version: *\([^ ]*\)$/\1/p' "$dir/Chart.yaml")"
  [[ "$got" == "$chart_version" ]] ||
    die "the module github.com/hashicorp/vault-helm v$chart_version holds chart version '$got'"
  # A writable copy of the read-only module cache folder, so the cache can be cleaned like any other.
  rm -rf "$chart_tmp" && cp -R "$dir" "$chart_tmp" && chmod -R u+w "$chart_tmp"
  (cd "$here" && go build "${build_flags[@]}" -o "$tmp" helm.sh/helm/v3/cmd/helm) >&2 9>&-
  built="$("$tmp" version --template '{{.Version}}' 9>&-)"
  [[ "$built" == "$helm_version" ]] || die "the built helm reports version '$built', expected $helm_version"
  rm -rf "$chart" && mv "$chart_tmp" "$chart"
  mv -f "$tmp" "$bin"
  write_stamp "$stamp" "$key"
  log "built in $((SECONDS - start))s: $bin ($built), $chart"
fi

echo "$bin"
