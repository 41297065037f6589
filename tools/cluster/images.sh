#!/usr/bin/env bash
# Build the cluster's container images as OCI archives, from binaries built here (build.sh,
# tools/vault-server) and Debian's packages, without Docker. Called by build.sh (which holds the
# lock); `up.sh` imports them into containerd under these names.
#
# Every name starts with $IMAGE_REGISTRY (localhost:5000): the e2e stack's images.registry. The
# cluster never pulls (the images are present and pinned, so IfNotPresent finds them); were one
# missing, the pull would go to that loopback address and fail at once, never to the internet.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${CLUSTER_ROOT:?set by build.sh}"
bindir="$root/bin"
outdir="$root/images"
registry="${IMAGE_REGISTRY:-localhost:5000}"
mkdir -p "$outdir"

log() { printf '[cluster/images.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# name|reference: what each archive holds. e2e/Pulumi.e2e.yaml names the same images without the
# registry (images.registry adds it); tools/cluster/manifests name pause and CoreDNS.
IMAGES=(
  "pause|$registry/vault-platform/pause:1.0"
  "busybox|$registry/library/busybox:1.35.0"
  "coredns|$registry/coredns/coredns:v1.12.4"
  "vault|$registry/hashicorp/vault:1.21.4"
  "vault-k8s|$registry/hashicorp/vault-k8s:1.6.2"
  "postgres|$registry/vault-platform/postgres:15"
  "python|$registry/vault-platform/python:3.11"
  "external-secrets|$registry/external-secrets/external-secrets:v0.16.2"
)

ref_of() { local e; for e in "${IMAGES[@]}"; do [[ "${e%%|*}" == "$1" ]] && { echo "${e#*|}"; return; }; done; }

PASSWD='root:x:0:0:root:/root:/bin/sh
vault:x:100:1000:vault:/home/vault:/bin/sh
postgres:x:70:70:postgres:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false'
GROUP='root:x:0:
vault:x:1000:
postgres:x:70:
nogroup:x:65534:'

base_fs() { # <rootfs>: /etc/passwd, /etc/group, /tmp, the CA bundle
  local fs="$1"
  mkdir -p "$fs/etc/ssl/certs" "$fs/tmp" "$fs/bin"
  printf '%s\n' "$PASSWD" >"$fs/etc/passwd"
  printf '%s\n' "$GROUP" >"$fs/etc/group"
  chmod 1777 "$fs/tmp"
  cp /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/"
}

with_busybox() { # <rootfs>: Debian's static busybox as /bin/sh and its applets
  local fs="$1" applet
  [[ -x /bin/busybox ]] || die "/bin/busybox missing (apt-get install busybox-static)"
  cp /bin/busybox "$fs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ -e "$fs/bin/$applet" ]] || ln -s busybox "$fs/bin/$applet"
  done
}

with_libs() { # <rootfs> <binary...>: copy binaries' shared libraries (and the loader) at their paths
  local fs="$1"; shift
  local lib
  # "name => /path (address)" lines, and the loader's "/path (address)"; not ldd's "file:" headers.
  for lib in $(ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u); do
    mkdir -p "$fs$(dirname "$lib")"
    cp -L "$lib" "$fs$lib"
  done
}

build_image() { # <name> <key material...> -- <mkimage args...>
  local name="$1"; shift
  local ref key parts=() fs start
  ref="$(ref_of "$name")"
  while [[ "$1" != "--" ]]; do parts+=("$1"); shift; done; shift
  key="$({ printf '%s\n' "$ref" "$@"; cat "$here/images.sh" "$here/images/mkimage.py" "${parts[@]}"; } | sha256sum | cut -d' ' -f1)"
  if [[ -f "$outdir/$name.tar" && -f "$outdir/$name.stamp" && "$(cat "$outdir/$name.stamp")" == "$key" ]]; then
    log "$name: up to date ($ref)"
    return 1
  fi
  start=$SECONDS
  fs="$(mktemp -d "$outdir/.$name.XXXXXX")"
  CURRENT_FS="$fs" CURRENT_KEY="$key" CURRENT_REF="$ref" CURRENT_START="$start"
  return 0
}

finish_image() { # <name> <mkimage args...>
  local name="$1"; shift
  python3 "$here/images/mkimage.py" --rootfs "$CURRENT_FS" --ref "$CURRENT_REF" --out "$outdir/$name.tar" "$@"
  rm -rf "$CURRENT_FS"
  printf '%s\n' "$CURRENT_KEY" >"$outdir/$name.stamp"
  log "$name: $CURRENT_REF in $((SECONDS - CURRENT_START))s"
}

# --- pause: the static program alone --------------------------------------------------------------
if build_image pause "$bindir/pause" --; then
  cp "$bindir/pause" "$CURRENT_FS/pause"
  finish_image pause --entrypoint '["/pause"]' --user 65535:65535
fi

# --- busybox: for tests and debugging pods --------------------------------------------------------
if build_image busybox /bin/busybox --; then
  base_fs "$CURRENT_FS"; with_busybox "$CURRENT_FS"
  finish_image busybox --cmd '["sh"]' --env PATH=/bin
fi

# --- CoreDNS --------------------------------------------------------------------------------------
if build_image coredns "$bindir/coredns" --; then
  base_fs "$CURRENT_FS"
  cp "$bindir/coredns" "$CURRENT_FS/coredns"
  finish_image coredns --entrypoint '["/coredns"]' --user 65534:65534
fi

# --- Vault: the server tools/vault-server builds, with a shell for the chart's commands ----------
vault_bin="$(bash "$here/../vault-server/build.sh" | tail -n 1)"
[[ -x "$vault_bin" ]] || die "tools/vault-server/build.sh gave no binary"
if build_image vault "$vault_bin" "$here/images/vault-entrypoint" --; then
  fs="$CURRENT_FS"
  base_fs "$fs"; with_busybox "$fs"
  install -m 0755 "$vault_bin" "$fs/bin/vault"
  mkdir -p "$fs/usr/local/bin" "$fs/vault/config" "$fs/vault/file" "$fs/vault/logs" "$fs/home/vault"
  install -m 0755 "$here/images/vault-entrypoint" "$fs/usr/local/bin/docker-entrypoint.sh"
  finish_image vault --entrypoint '["docker-entrypoint.sh"]' --cmd '["server", "-dev"]' \
    --env PATH=/usr/local/bin:/bin --env VAULT_CONFIG_DIR=/vault/config --env HOME=/home/vault \
    --owner vault=100:1000 --owner home/vault=100:1000
fi

# --- the Agent Injector --------------------------------------------------------------------------
if build_image vault-k8s "$bindir/vault-k8s" --; then
  base_fs "$CURRENT_FS"
  cp "$bindir/vault-k8s" "$CURRENT_FS/vault-k8s"
  finish_image vault-k8s --entrypoint '["/vault-k8s"]' --user 100:1000
fi

# --- PostgreSQL: Debian's server and client, with an entrypoint taking the official image's env ---
pg=/usr/lib/postgresql/15
[[ -x "$pg/bin/postgres" && -x "$pg/bin/pg_isready" ]] || die "$pg missing (apt-get install postgresql-15)"
if build_image postgres "$pg/bin/postgres" "$here/images/postgres-entrypoint" --; then
  fs="$CURRENT_FS"
  base_fs "$fs"; with_busybox "$fs"
  mkdir -p "$fs$pg" "$fs/usr/share/postgresql" "$fs/usr/share" "$fs/usr/local/bin" "$fs/var/lib/postgresql" \
    "$fs/var/run/postgresql"
  cp -a "$pg/bin" "$pg/lib" "$fs$pg/"
  rm -rf "$fs$pg/lib/bitcode"
  cp -a /usr/share/postgresql/15 "$fs/usr/share/postgresql/"
  rm -rf "$fs/usr/share/postgresql/15/man"
  cp -a /usr/share/zoneinfo "$fs/usr/share/"
  with_libs "$fs" "$pg"/bin/* "$pg"/lib/*.so
  install -m 0755 "$here/images/postgres-entrypoint" "$fs/usr/local/bin/docker-entrypoint.sh"
  finish_image postgres --entrypoint '["docker-entrypoint.sh"]' --cmd '["postgres"]' \
    --env "PATH=/usr/local/bin:$pg/bin:/bin" --env PGDATA=/var/lib/postgresql/data --env LANG=C.UTF-8 \
    --owner var/lib/postgresql=70:70 --owner var/run/postgresql=70:70 --user 70:70
fi

# --- Python: Debian's interpreter and standard library, for the rollout and backup Jobs ----------
py=/usr/bin/python3.11
[[ -x "$py" ]] || die "$py missing (apt-get install python3.11)"
if build_image python "$py" --; then
  fs="$CURRENT_FS"
  base_fs "$fs"; with_busybox "$fs"
  mkdir -p "$fs/usr/bin" "$fs/usr/lib"
  cp "$py" "$fs/usr/bin/python3.11"
  ln -s python3.11 "$fs/usr/bin/python3"
  ln -s python3.11 "$fs/usr/bin/python"
  cp -a /usr/lib/python3.11 "$fs/usr/lib/"
  rm -rf "$fs/usr/lib/python3.11/"{test,idlelib,tkinter,turtledemo,ensurepip,lib2to3,pydoc_data,site-packages}
  find "$fs/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} +
  with_libs "$fs" "$py" "$fs"/usr/lib/python3.11/lib-dynload/*.so
  finish_image python --cmd '["python3"]' --env PATH=/usr/bin:/bin --env LANG=C.UTF-8
fi

# --- the External Secrets Operator: controller, webhook and certificate controller in one binary --
if build_image external-secrets "$bindir/external-secrets" --; then
  base_fs "$CURRENT_FS"
  cp "$bindir/external-secrets" "$CURRENT_FS/bin/external-secrets"
  finish_image external-secrets --entrypoint '["/bin/external-secrets"]' --user 65534:65534
fi

ls -1 "$outdir"/*.tar >&2
