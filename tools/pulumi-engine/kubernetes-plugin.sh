#!/usr/bin/env bash
# Build (once) the Pulumi Kubernetes provider plugin from Go modules, for `make e2e`, which runs the
# whole program through the real engine. See README.md in this directory ("Other plugins").
#
# Output, OUTSIDE the repo: ${VAULT_PLATFORM_CACHE:-$HOME/.cache/vault-platform}/plugins/pulumi-resource-kubernetes
# (not bin/, which is on the engine's PATH: a plugin there would run instead of the one installed).
# Rebuilt only when this script changes (sha256 stamp next to it). The last stdout line is the path
# of the plugin; progress goes to stderr.
#
# The proxy serves github.com/pulumi/pulumi-kubernetes/provider/v4 at one pseudo-version only. Its
# go.mod replaces the sdk/v4 module with its in-repo copy (../sdk), which a module zip does not hold:
# the build runs in a scratch copy of the module whose go.mod takes the published sdk/v4 its
# require line names instead, after generating the two JSON files main.go embeds (as upstream's
# `go generate` does).
#
# Environment:
#   VAULT_PLATFORM_CACHE   cache root (default: $HOME/.cache/vault-platform)
set -euo pipefail

module="github.com/pulumi/pulumi-kubernetes/provider/v4"
version="v4.0.0-20260115033456-f47bc2d6f199"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${VAULT_PLATFORM_CACHE:-${HOME:-/root}/.cache/vault-platform}"
bindir="$cache/plugins"
bin="$bindir/pulumi-resource-kubernetes"
stamp="$bindir/pulumi-resource-kubernetes.stamp"

export CGO_ENABLED=0
export GOWORK=off
if [[ -z "${GOTOOLCHAIN:-}" || "${GOTOOLCHAIN}" == "local" ]]; then
  export GOTOOLCHAIN=auto
fi

log() { printf '[pulumi-engine/kubernetes-plugin.sh] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "error: 'go' not found on PATH"; exit 1; }
mkdir -p "$bindir"
key="$({ cat "$here/kubernetes-plugin.sh"; go env GOOS GOARCH; } | sha256sum | cut -d' ' -f1)"

exec 9>"$bindir/.kubernetes-plugin-build.lock"
flock 9

if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
  log "up to date: $bin"
  echo "$bin"
  exit 0
fi

log "building $module@$version into $bin (cold: ~14 min on 2 cores) ..."
start=$SECONDS
src="$(cd "$bindir" && go mod download -json "$module@$version" 9>&- | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
[[ -f "$src/cmd/pulumi-resource-kubernetes/main.go" ]] || { log "error: cannot download $module@$version"; exit 1; }
ws="$cache/build-kubernetes-plugin"
rm -rf "$ws"
cp -R "$src" "$ws"
chmod -R u+w "$ws"
n="$(grep -c '^replace github.com/pulumi/pulumi-kubernetes/sdk/v4 => ../sdk$' "$ws/go.mod" || true)"
[[ "$n" == 1 ]] || { log "error: expected the one replace of sdk/v4 by ../sdk in its go.mod, found $n"; exit 1; }
sed -i '/^replace github.com\/pulumi\/pulumi-kubernetes\/sdk\/v4 => ..\/sdk$/d' "$ws/go.mod"
# The plugin reports the version it was built from; `make e2e` installs it under the version the
# pulumi_kubernetes SDK asks for.
plugin_version="${version#v}"
(cd "$ws/cmd/pulumi-resource-kubernetes" && VERSION="$plugin_version" GOFLAGS=-mod=mod \
  nice -n 10 go run ./generate.go) >&2 9>&-
(cd "$ws" && GOFLAGS="-mod=mod -buildvcs=false" nice -n 10 go build -trimpath \
  "-ldflags=-s -w -X $module/pkg/version.Version=$plugin_version" -o "$bin.tmp" ./cmd/pulumi-resource-kubernetes) \
  >&2 9>&-
mv -f "$bin.tmp" "$bin"
printf '%s\n' "$key" >"$stamp"
rm -rf "$ws"
log "built in $((SECONDS - start))s, $(du -h "$bin" | cut -f1)"
echo "$bin"
