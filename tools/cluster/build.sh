#!/usr/bin/env bash
# Build (once) everything the one-node cluster runs that Debian does not ship, from Go modules:
# Kubernetes 1.34 with this folder's local-volumes and host-ports, CoreDNS, the Vault Agent
# Injector, the External Secrets Operator and crictl; the pause program; then the container images
# (images.sh). See README.md in this folder.
#
# Output, OUTSIDE the repo, in ${VAULT_PLATFORM_CACHE:-$HOME/.cache/vault-platform}/cluster/:
#   bin/   kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#          local-volumes host-ports coredns vault-k8s external-secrets crictl pause
#   images/<name>.tar   OCI image archives (images.sh)
# Each part is rebuilt only when what it is made from changes (a sha256 stamp per part); the whole
# build holds one lock, so concurrent runs wait for each other. Progress goes to stderr, each part
# with its time; the last stdout line is the cluster cache folder.
#
# Environment:
#   VAULT_PLATFORM_CACHE   cache root (default: $HOME/.cache/vault-platform)
#   CLUSTER_BUILD_NICE     niceness of the compilers (default 10: the machine is shared)
#   (and GOTOOLCHAIN, VAULT_PLATFORM_PRINT_KEY: see ../lib/go-build.sh)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/lib/go-build.sh
source "$here/../lib/go-build.sh" cluster/build.sh
root="$cache/cluster"
bindir="$root/bin"
nice_level="${CLUSTER_BUILD_NICE:-10}"

KUBERNETES_VERSION="v1.34.4"
COREDNS_VERSION="v1.12.4"
# vault-k8s 1.7.x (the chart's default injector) is not served by the Go module proxy; 1.6.2 is.
VAULT_K8S_VERSION="v1.6.2"
CRI_TOOLS_VERSION="v1.34.0"
ESO_VERSION="v0.16.2"

need " (make system-packages installs what the cluster needs)" go gcc sha256sum flock

# --- what each part is made from: its key, in the sha256 stamp bin/<part>.stamp ------------------
# Not this script's text: an edit of it rebuilds a part only if it changes what that part's key covers.
goos_goarch="$(go env GOOS GOARCH)"
kube_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl local-volumes host-ports)
kube_pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  k8s.io/kubernetes/cmd/kubectl ./cmd/local-volumes ./cmd/host-ports)
# The version the binaries report (API server /version, the node's kubeletVersion): charts check
# kubeVersion against it. Set as the release build does (hack/lib/version.sh).
minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
built_at="$(cd "$here" && go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$built_at"
done
kube_key="$(sha256_key "$here/go.mod" "$here/go.sum" "$here"/cmd/*/*.go \
  -- "$ldflags" "${kube_pkgs[@]}" "$goos_goarch")"
# <module> <version> <ldflags> of what `go install module@version` builds, and its key.
coredns=(github.com/coredns/coredns "$COREDNS_VERSION"
  "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION")
crictl=(sigs.k8s.io/cri-tools/cmd/crictl "$CRI_TOOLS_VERSION"
  "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION")
go_install_key() { sha256_key -- "$1@$2" "$3" "$goos_goarch"; }
coredns_key="$(go_install_key "${coredns[@]}")"
crictl_key="$(go_install_key "${crictl[@]}")"
injector_ldflags="-s -w -X github.com/hashicorp/vault-k8s/version.Version=${VAULT_K8S_VERSION#v}"
injector_key="$(sha256_key "$here/vault-k8s/go.mod" "$here/vault-k8s/go.sum" \
  -- "$injector_ldflags" "$goos_goarch")"
eso_key="$(sha256_key "$here/external-secrets/go.mod" "$here/external-secrets/go.sum")"
pause_key="$(sha256_key "$here/images/pause.c")"
print_keys_if_asked kube "$kube_key" coredns "$coredns_key" vault-k8s "$injector_key" \
  external-secrets "$eso_key" crictl "$crictl_key" pause "$pause_key"

mkdir -p "$bindir"
lock "$root/.build.lock"

# --- Kubernetes, local-volumes and host-ports: one `go build` of the wrapper module -------------
all_present() { local b; for b in "${kube_bins[@]}"; do [[ -x "$bindir/$b" ]] || return 1; done; }
if stamp_matches "$bindir/kube.stamp" "$kube_key" && all_present; then
  log "kubernetes $KUBERNETES_VERSION: up to date"
else
  log "kubernetes $KUBERNETES_VERSION: building ${kube_bins[*]} (cold: 11-20 min on 2 cores) ..."
  start=$SECONDS
  out="$(mktemp -d "$bindir/.kube.XXXXXX")"
  trap 'rm -rf "$out"' EXIT
  (cd "$here" && nice -n "$nice_level" go build -trimpath "-ldflags=$ldflags" -o "$out/" "${kube_pkgs[@]}") >&2 9>&-
  reported="$("$out/kube-apiserver" --version 9>&-)"
  [[ "$reported" == "Kubernetes $KUBERNETES_VERSION" ]] || die "kube-apiserver reports '$reported'"
  for b in "${kube_bins[@]}"; do mv -f "$out/$b" "$bindir/$b"; done
  rm -rf "$out"; trap - EXIT
  write_stamp "$bindir/kube.stamp" "$kube_key"
  log "kubernetes: built in $((SECONDS - start))s"
fi

# --- CoreDNS and the injector: `go install module@version`, as their own go.mod pins them --------
go_install() { # <binary> <key> <module> <version> <ldflags>
  local bin="$1" key="$2" module="$3" version="$4" ldflags="$5" gobin start
  if stamp_matches "$bindir/$bin.stamp" "$key" && [[ -x "$bindir/$bin" ]]; then
    log "$bin $version: up to date"
    return
  fi
  log "$bin $version: building ..."
  start=$SECONDS
  gobin="$(mktemp -d "$bindir/.$bin.XXXXXX")"
  trap 'rm -rf "$gobin"' EXIT
  GOBIN="$gobin" GOFLAGS=-buildvcs=false nice -n "$nice_level" \
    go install -trimpath "-ldflags=$ldflags" "$module@$version" >&2 9>&-
  mv -f "$gobin/$(basename "$module")" "$bindir/$bin"
  rm -rf "$gobin"; trap - EXIT
  write_stamp "$bindir/$bin.stamp" "$key"
  log "$bin: built in $((SECONDS - start))s"
}
go_install coredns "$coredns_key" "${coredns[@]}"
# The injector from its wrapper module (vault-k8s/go.mod): the proxy refuses vault-k8s's version
# list, which `go install module@version` reads.
if stamp_matches "$bindir/vault-k8s.stamp" "$injector_key" && [[ -x "$bindir/vault-k8s" ]]; then
  log "vault-k8s $VAULT_K8S_VERSION: up to date"
else
  log "vault-k8s $VAULT_K8S_VERSION: building ..."
  start=$SECONDS
  (cd "$here/vault-k8s" && nice -n "$nice_level" go build -trimpath "-ldflags=$injector_ldflags" \
    -o "$bindir/vault-k8s.tmp" github.com/hashicorp/vault-k8s) >&2 9>&-
  grep -q "github.com/hashicorp/vault-k8s $VAULT_K8S_VERSION " "$here/vault-k8s/go.mod" \
    || die "vault-k8s/go.mod does not pin $VAULT_K8S_VERSION"
  mv -f "$bindir/vault-k8s.tmp" "$bindir/vault-k8s"
  write_stamp "$bindir/vault-k8s.stamp" "$injector_key"
  log "vault-k8s: built in $((SECONDS - start))s"
fi
# The External Secrets Operator, for the walkthrough's ExternalSecrets (its wrapper module repeats the
# replace its go.mod makes). v0.16.2 is the newest the proxy serves whole.
if stamp_matches "$bindir/external-secrets.stamp" "$eso_key" && [[ -x "$bindir/external-secrets" ]]; then
  log "external-secrets $ESO_VERSION: up to date"
else
  log "external-secrets $ESO_VERSION: building ..."
  start=$SECONDS
  grep -q "github.com/external-secrets/external-secrets $ESO_VERSION " "$here/external-secrets/go.mod" \
    || die "external-secrets/go.mod does not pin $ESO_VERSION"
  (cd "$here/external-secrets" && nice -n "$nice_level" go build -trimpath "-ldflags=-s -w" \
    -o "$bindir/external-secrets.tmp" github.com/external-secrets/external-secrets) >&2 9>&-
  mv -f "$bindir/external-secrets.tmp" "$bindir/external-secrets"
  write_stamp "$bindir/external-secrets.stamp" "$eso_key"
  log "external-secrets: built in $((SECONDS - start))s"
fi
# crictl: `make cluster-down` removes every pod sandbox through the CRI, network namespaces included.
go_install crictl "$crictl_key" "${crictl[@]}"

# --- the pod sandbox's process -------------------------------------------------------------------
if stamp_matches "$bindir/pause.stamp" "$pause_key" && [[ -x "$bindir/pause" ]]; then
  log "pause: up to date"
else
  gcc -static -Os -Wall -Wextra -Werror -o "$bindir/pause.tmp" "$here/images/pause.c"
  strip "$bindir/pause.tmp"
  mv -f "$bindir/pause.tmp" "$bindir/pause"
  write_stamp "$bindir/pause.stamp" "$pause_key"
  log "pause: built"
fi

# --- the images ----------------------------------------------------------------------------------
CLUSTER_ROOT="$root" bash "$here/images.sh" 9>&-

echo "$root"
