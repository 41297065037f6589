#!/usr/bin/env bash
# Take the one-node cluster down (`make cluster-down`) and leave nothing of it behind: its pods
# (through the kubelet, then the CRI), daemons, mounts, network namespaces, iptables rules, bridge,
# route, the ip_forward setting it changed, its kube context, and its state (etcd, certificates,
# volumes). containerd's image store stays, so the next start imports nothing. Safe to run twice,
# and after a failed start.
set -uo pipefail
# shellcheck source=tools/cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

[[ "$(id -u)" == 0 ]] || die "needs root"

pods() {
  if alive kube-apiserver && alive kubelet; then
    # Nothing recreates or reschedules a pod from here on; the kubelet stops each one (its network
    # namespace and volumes with it) before the pod object goes.
    stop kube-controller-manager
    stop kube-scheduler
    "${KUBECTL[@]}" delete pods --all --all-namespaces --grace-period=5 --wait=false >/dev/null 2>&1
    wait_for "pods to stop" 60 bash -c "[[ -z \"\$(${KUBECTL[*]} get pods -A -o name 2>/dev/null)\" ]]" || true
  fi
}

daemons() {
  local name
  for name in host-ports local-volumes kube-scheduler kube-controller-manager kube-proxy kubelet; do
    stop "$name"
  done
  if alive containerd; then
    # What the kubelet did not stop: every sandbox through the CRI, network namespaces included.
    crictl --config "$state/crictl.yaml" rmp --all --force >/dev/null 2>&1 || true
    crictl --config "$state/crictl.yaml" rm --all --force >/dev/null 2>&1 || true
  fi
  stop containerd
  # A container shim outlives containerd; ours are the ones serving its socket.
  local pid
  grep -lsF -- "$sock" /proc/[0-9]*/cmdline | cut -d/ -f3 | while read -r pid; do
    [[ "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" == *containerd-shim*"$sock"* ]] && kill -KILL "$pid" 2>/dev/null
  done
  stop kube-apiserver
  stop etcd
}

rules() {
  # kube-proxy removes its own chains; then what the kubelet and the CNI plugins added.
  if [[ -x "$bindir/kube-proxy" ]]; then
    kube-proxy --cleanup >/dev/null 2>&1 || true
  fi
  local table chain
  for table in nat filter mangle; do
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^(KUBE|CNI)-/) {print $2}'); do
      # Drop every jump to the chain from the built-in chains, then the chain itself.
      iptables -t "$table" -S 2>/dev/null | grep -- "-j $chain\( \|$\)" | grep -v "^-A \(KUBE\|CNI\)-" \
        | sed 's/^-A/-D/' | while read -r rule; do eval iptables -t "$table" "$rule"; done
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^(KUBE|CNI)-/) {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && ($2 ~ /^(KUBE|CNI)-/) {print $2}'); do
      iptables -t "$table" -X "$chain" 2>/dev/null
    done
  done
  while iptables -D FORWARD -j "$FORWARD_CHAIN" 2>/dev/null; do :; done
  iptables -F "$FORWARD_CHAIN" 2>/dev/null
  iptables -X "$FORWARD_CHAIN" 2>/dev/null
  return 0
}

mounts() {
  local target
  # Deepest first: kubelet's volume mounts, container root filesystems, sandbox namespaces.
  for target in $(findmnt -rn -o TARGET | grep -E "^($state|$run_dir|$containerd_root)(/|$)" | sort -r); do
    umount -l "$target" 2>/dev/null
  done
  local ns
  if [[ -f "$state/netns-before" ]]; then
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-' | sort | comm -23 - "$state/netns-before"); do
      ip netns delete "$ns" 2>/dev/null
    done
  fi
  # The pod cgroups the kubelet made (empty once the pods are gone).
  local dir
  for dir in /sys/fs/cgroup/*/kubepods; do
    [[ -d "$dir" ]] && find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  return 0
}

network() {
  ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null
  ip link del "$BRIDGE" 2>/dev/null
  if [[ -f "$state/ip_forward-before" ]]; then
    sysctl -qw "net.ipv4.ip_forward=$(cat "$state/ip_forward-before")"
  fi
  return 0
}

context() {
  [[ -f "$state/kubeconfig-path" ]] || return 0
  local kc before
  kc="$(cat "$state/kubeconfig-path")"
  before="$(cat "$state/context-before" 2>/dev/null)"
  kubectl --kubeconfig "$kc" config delete-context "$CLUSTER_NAME" >/dev/null 2>&1
  kubectl --kubeconfig "$kc" config delete-cluster "$CLUSTER_NAME" >/dev/null 2>&1
  kubectl --kubeconfig "$kc" config delete-user "$CLUSTER_NAME" >/dev/null 2>&1
  if [[ -n "$before" && "$before" != "$CLUSTER_NAME" ]]; then
    kubectl --kubeconfig "$kc" config use-context "$before" >/dev/null 2>&1
  else
    kubectl --kubeconfig "$kc" config unset current-context >/dev/null 2>&1
  fi
  return 0
}

step "pods stopped" pods
step "daemons stopped" daemons
step "iptables rules removed" rules
step "mounts, network namespaces and cgroups removed" mounts
step "bridge and route removed" network
step "kube context removed" context
rm -rf "$state" "$run_dir"
left="$(findmnt -rn -o TARGET | grep -cE "^($root|$run_dir)(/|$)")"
if ip link show "$BRIDGE" >/dev/null 2>&1 || ((left > 0)); then
  die "left behind: bridge $BRIDGE or $left mounts"
fi
log "cluster down in $((SECONDS - started))s"
