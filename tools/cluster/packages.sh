#!/usr/bin/env bash
# The Debian packages the one-node cluster runs on, installed with apt-get when missing (as root):
#   etcd-server                  the API server's store (3.4, which Kubernetes 1.34 still serves from)
#   containerd, runc             the container runtime the kubelet drives through the CRI
#   containernetworking-plugins  bridge, host-local, portmap, loopback
#   iptables, conntrack          kube-proxy's Services and NodePorts
#   busybox-static               the shell of the images built here
#   postgresql-15, python3.11    what the PostgreSQL and Python images are made of
#   openssl, curl                the cluster's certificates, health checks
set -euo pipefail

want=(etcd-server containerd runc containernetworking-plugins iptables conntrack busybox-static postgresql-15
  python3.11 openssl curl)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ "$(id -u)" != 0 ]]; then
  echo "missing packages: ${missing[*]}; the cluster needs root: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
