#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2034
# What up.sh, down.sh and smoke.sh share: where the cluster lives and how it is addressed.
# Sourced, not run.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${VAULT_PLATFORM_CACHE:-${HOME:-/root}/.cache/vault-platform}"
root="$cache/cluster"
bindir="$root/bin"
# What a cluster-down throws away (etcd, certificates, kubelet, volumes, logs) ...
state="$root/run"
# ... and what it keeps: containerd's content store with the imported images.
containerd_root="$root/containerd"
run_dir="/run/vault-platform-cluster"
sock="$run_dir/containerd.sock"

CLUSTER_NAME="vault-platform-local"
NODE_NAME="vault-platform-node"
# Its own bridge, and nothing else: the node's address is the bridge's, NodePorts listen only on
# it, Service addresses are routed onto it, and nothing is forwarded between it and any other
# interface. kind's pod and Service ranges.
BRIDGE="vpk0"
NODE_IP="10.244.0.1"
POD_CIDR="10.244.0.0/24"
SERVICE_CIDR="10.96.0.0/16"
API_SERVICE_IP="10.96.0.1"
DNS_SERVICE_IP="10.96.0.10"
API_PORT=6443
ETCD_CLIENT="127.0.0.1:23790"
ETCD_PEER="127.0.0.1:23800"
FORWARD_CHAIN="VAULT-PLATFORM-FWD"
IMAGE_REGISTRY="localhost:5000"
PAUSE_IMAGE="$IMAGE_REGISTRY/vault-platform/pause:1.0"
PROVISIONER="vault-platform.local/host-path"

export PATH="$bindir:$PATH"
KUBECTL=(kubectl --kubeconfig "$state/pki/admin.kubeconfig")

started=$SECONDS
log() { printf '[cluster] %5ss  %s\n' "$((SECONDS - started))" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# step <label> <function>: run one step and print how long it took.
step() {
  local label="$1" t=$SECONDS
  shift
  "$@"
  log "$label: $((SECONDS - t))s"
}

pid_of() { [[ -f "$state/pids/$1.pid" ]] && cat "$state/pids/$1.pid"; }
alive() { local pid; pid="$(pid_of "$1")" && [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }

# start <name> <command...>: a daemon in a process session of its own, its output in logs/<name>.log.
start() {
  local name="$1"
  shift
  mkdir -p "$state/logs" "$state/pids"
  setsid "$@" </dev/null >>"$state/logs/$name.log" 2>&1 &
  echo $! >"$state/pids/$name.pid"
}

# stop <name> [seconds]: SIGTERM the daemon started under that name, SIGKILL after the grace time.
stop() {
  local name="$1" grace="${2:-10}" pid i
  pid="$(pid_of "$name")" || return 0
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$state/pids/$name.pid"
}

# wait_for <what> <seconds> <command...>: poll until the command succeeds; name the daemon's log
# when it does not.
wait_for() {
  local what="$1" limit="$2" deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "error: $what not ready within ${limit}s"
      return 1
    fi
    sleep 0.5
  done
}

# The loopback ports kind/dev-cluster.yaml maps to NodePorts: "hostPort=containerPort" each.
port_mappings() {
  python3 - "$repo/kind/dev-cluster.yaml" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
for m in re.finditer(r"containerPort:\s*(\d+),\s*hostPort:\s*(\d+),\s*listenAddress:\s*\"([\d.]+)\"", text):
    print(f"{m.group(3)}:{m.group(2)}={m.group(1)}")
EOF
}
