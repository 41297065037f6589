#!/usr/bin/env bash
# Start the one-node Kubernetes 1.34 cluster on this machine, without Docker (`make cluster`):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd + runc, kubelet,
# kube-proxy, CoreDNS, the local-volumes provisioner, and the loopback port mappings of
# kind/dev-cluster.yaml. It adds the kube context "vault-platform-local" and makes it current.
#
# Bounded: every wait has a limit, the whole start CLUSTER_UP_TIMEOUT seconds (default 300). On any
# failure it prints the failing daemon's log and takes down whatever it started (down.sh).
# Needs root, the binaries and images of build.sh, and Debian's etcd-server, containerd, runc,
# containernetworking-plugins, iptables, conntrack and openssl. See README.md in this folder.
set -euo pipefail
# shellcheck source=tools/cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

timeout_total="${CLUSTER_UP_TIMEOUT:-300}"
remaining() { local r=$((timeout_total - (SECONDS - started))); ((r > 5)) && echo "$r" || echo 5; }

preflight() {
  [[ "$(id -u)" == 0 ]] || die "needs root (bridges, iptables, containerd)"
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl local-volumes \
    host-ports crictl; do
    [[ -x "$bindir/$b" ]] || die "$bindir/$b missing: run tools/cluster/build.sh (make cluster does)"
  done
  for b in etcd containerd runc iptables conntrack openssl ip; do
    command -v "$b" >/dev/null || die "'$b' not found (make system-packages)"
  done
  for b in bridge host-local portmap loopback; do
    [[ -x "/usr/lib/cni/$b" ]] || die "/usr/lib/cni/$b missing (apt-get install containernetworking-plugins)"
  done
  if alive kube-apiserver || ip link show "$BRIDGE" >/dev/null 2>&1; then
    die "a cluster is already running (or was left behind): make cluster-down first"
  fi
  local mapping listen port
  # The loopback ports the daemons listen on (etcd, the kubelet's, kube-proxy's and the control
  # plane's health ports): a start that cannot have them stops here, naming the port.
  for port in "${ETCD_CLIENT##*:}" "${ETCD_PEER##*:}" 10248 10249 10256 10257 10259; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "127.0.0.1:$port is in use; the cluster's daemons need it"
    fi
  done
  for mapping in $(port_mappings); do
    listen="${mapping%%=*}"
    if (exec 3<>"/dev/tcp/${listen%:*}/${listen##*:}") 2>/dev/null; then
      die "$listen is in use; the cluster maps it to NodePort ${mapping#*=} (kind/dev-cluster.yaml)"
    fi
  done
  rm -rf "$state"
  mkdir -p "$state"/{logs,pids,pki,cni/net.d,cni/ipam,kubelet,volumes,pod-logs} "$run_dir" "$containerd_root"
  ip netns list 2>/dev/null | awk '{print $1}' | sort >"$state/netns-before"
}

network() {
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Service addresses belong on the bridge: until kube-proxy has a rule for one, a packet to it
  # stays here instead of following the default route out of the machine.
  ip route add "$SERVICE_CIDR" dev "$BRIDGE"
  sysctl -n net.ipv4.ip_forward >"$state/ip_forward-before"
  sysctl -qw net.ipv4.ip_forward=1
  # Forwarding is for pod -> Service -> pod on the bridge only, never to or from another interface.
  iptables -N "$FORWARD_CHAIN"
  iptables -A "$FORWARD_CHAIN" -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  iptables -A "$FORWARD_CHAIN" -i "$BRIDGE" -j DROP
  iptables -A "$FORWARD_CHAIN" -o "$BRIDGE" -j DROP
  iptables -I FORWARD 1 -j "$FORWARD_CHAIN"
}

cert() { # <name> <subject> [extensions]: a key and a certificate signed by the cluster CA
  local name="$1" subject="$2" ext="${3:-}" p="$state/pki"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$p/$name.key" -subj "$subject" -out "$p/$name.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "$ext" >"$p/$name.ext"
  openssl x509 -req -in "$p/$name.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial -days 30 \
    -extfile "$p/$name.ext" -out "$p/$name.crt" 2>/dev/null
  rm -f "$p/$name.csr" "$p/$name.ext"
}

kubeconfig() { # <name> <user certificate name>
  local p="$state/pki"
  cat >"$p/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority: $p/ca.crt
users:
- name: $2
  user:
    client-certificate: $p/$2.crt
    client-key: $p/$2.key
contexts:
- name: $CLUSTER_NAME
  context: {cluster: $CLUSTER_NAME, user: $2}
current-context: $CLUSTER_NAME
EOF
}

pki() {
  local p="$state/pki" client="extendedKeyUsage=clientAuth" server="extendedKeyUsage=serverAuth"
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$p/ca.key" -subj "/CN=$CLUSTER_NAME-ca" -days 30 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$p/ca.crt" 2>/dev/null
  cert apiserver "/CN=kube-apiserver" "$server
subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:$API_SERVICE_IP,IP:$NODE_IP,IP:127.0.0.1"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  cert admin "/O=system:masters/CN=kubernetes-admin" "$client"
  cert controller-manager "/CN=system:kube-controller-manager" "$client"
  cert scheduler "/CN=system:kube-scheduler" "$client"
  cert kube-proxy "/CN=system:kube-proxy" "$client"
  cert node "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
  cert kubelet-serving "/CN=$NODE_NAME" "$server
subjectAltName=DNS:$NODE_NAME,IP:$NODE_IP"
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  kubeconfig admin admin
  kubeconfig controller-manager controller-manager
  kubeconfig scheduler scheduler
  kubeconfig kube-proxy kube-proxy
  kubeconfig node node
  chmod 600 "$p"/*.key
}

etcd_start() {
  start etcd etcd --name "$CLUSTER_NAME" --data-dir "$state/etcd" --logger zap \
    --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
    --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
    --initial-cluster "$CLUSTER_NAME=http://$ETCD_PEER" \
    --quota-backend-bytes 2147483648 --snapshot-count 10000
  wait_for etcd "$(remaining)" curl -fsS "http://$ETCD_CLIENT/health"
}

apiserver_start() {
  local p="$state/pki"
  start kube-apiserver kube-apiserver \
    --etcd-servers "http://$ETCD_CLIENT" \
    --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
    --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
    --client-ca-file "$p/ca.crt" --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --kubelet-client-certificate "$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$p/apiserver-kubelet-client.key" --kubelet-certificate-authority "$p/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-issuer "https://kubernetes.default.svc.cluster.local" \
    --service-account-key-file "$p/sa.pub" --service-account-signing-key-file "$p/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --event-ttl 1h
  wait_for kube-apiserver "$(remaining)" "${KUBECTL[@]}" get --raw /readyz
}

controllers_start() {
  local p="$state/pki"
  start kube-controller-manager kube-controller-manager \
    --kubeconfig "$p/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$p/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$p/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
    --root-ca-file "$p/ca.crt" --service-account-private-key-file "$p/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false --profiling=false
  start kube-scheduler kube-scheduler \
    --kubeconfig "$p/scheduler.kubeconfig" --authentication-kubeconfig "$p/scheduler.kubeconfig" \
    --authorization-kubeconfig "$p/scheduler.kubeconfig" --bind-address 127.0.0.1 --leader-elect=false \
    --profiling=false
  wait_for kube-controller-manager "$(remaining)" curl -fsSk https://127.0.0.1:10257/healthz
  wait_for kube-scheduler "$(remaining)" curl -fsSk https://127.0.0.1:10259/healthz
}

containerd_start() {
  cat >"$state/containerd.toml" <<EOF
version = 2
root = "$containerd_root"
state = "$run_dir/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$containerd_root/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Processes here lack CAP_SYS_RESOURCE: without this runc fails to lower a container's OOM score.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
EOF
  cat >"$state/cni/net.d/10-vault-platform.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "vault-platform",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$state/cni/ipam",
              "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$state/crictl.yaml" <<EOF
runtime-endpoint: unix://$sock
image-endpoint: unix://$sock
timeout: 30
EOF
  start containerd containerd --config "$state/containerd.toml"
  wait_for containerd "$(remaining)" ctr --address "$sock" version
}

images_import() {
  local tar name stamp_dir="$containerd_root/imported"
  mkdir -p "$stamp_dir"
  for tar in "$root"/images/*.tar; do
    name="$(basename "$tar" .tar)"
    # Imported once per build of the archive: containerd keeps its images across cluster-down.
    if [[ -f "$stamp_dir/$name" && "$(cat "$stamp_dir/$name")" == "$(cat "$root/images/$name.stamp")" ]]; then
      continue
    fi
    ctr --address "$sock" -n k8s.io images import "$tar" >&2
    cp "$root/images/$name.stamp" "$stamp_dir/$name"
  done
  log "images in containerd: $(ctr --address "$sock" -n k8s.io images ls -q | grep -c "^$IMAGE_REGISTRY/")"
}

kubelet_start() {
  local p="$state/pki"
  : >"$state/resolv.conf"
  cat >"$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $p/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $p/kubelet-serving.crt
tlsPrivateKeyFile: $p/kubelet-serving.key
containerRuntimeEndpoint: unix://$sock
# cgroup v1 here, which 1.34 still runs when told to.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
# Pods with dnsPolicy Default get no upstream: the cluster has no way out.
resolvConf: $state/resolv.conf
# A shared build machine's disk: evict only when it is really full, and keep the imported images.
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
maxPods: 110
podLogsDir: $state/pod-logs
EOF
  start kubelet kubelet --config "$state/kubelet.yaml" --kubeconfig "$p/node.kubeconfig" \
    --root-dir "$state/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
  wait_for "node $NODE_NAME Ready" "$(remaining)" bash -c \
    "[[ \"\$(${KUBECTL[*]} get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" == True ]]"
}

proxy_start() {
  cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $state/pki/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
# NodePorts on the node's bridge address only: never on another interface, nor on loopback
# (host-ports maps the loopback ports kind maps).
nodePortAddresses: ["$NODE_IP/32"]
iptables: {localhostNodePorts: false}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the host's conntrack sysctls as they are.
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kube-proxy kube-proxy --config "$state/kube-proxy.yaml"
  wait_for kube-proxy "$(remaining)" curl -fsS http://127.0.0.1:10256/healthz
}

addons() {
  sed -e "s|@PROVISIONER@|$PROVISIONER|g" -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" \
    -e "s|@COREDNS_IMAGE@|$IMAGE_REGISTRY/coredns/coredns:v1.12.4|g" "$here/manifests/addons.yaml" \
    | "${KUBECTL[@]}" apply -f - >&2
  start local-volumes local-volumes -kubeconfig "$state/pki/admin.kubeconfig" -provisioner "$PROVISIONER" \
    -root "$state/volumes" -node "$NODE_NAME"
  local maps=() m
  for m in $(port_mappings); do maps+=(-map "${m%%=*}=$NODE_IP:${m#*=}"); done
  start host-ports host-ports "${maps[@]}"
  wait_for "CoreDNS" "$(remaining)" "${KUBECTL[@]}" -n kube-system rollout status deployment/coredns --timeout=5s
  alive local-volumes || die "local-volumes exited: $(tail -n 5 "$state/logs/local-volumes.log")"
  alive host-ports || die "host-ports exited: $(tail -n 5 "$state/logs/host-ports.log")"
}

context() {
  # As kind does: the context goes into the user's kubeconfig and becomes the current one.
  local kc="${KUBECONFIG:-$HOME/.kube/config}" p="$state/pki"
  kc="${kc%%:*}"
  mkdir -p "$(dirname "$kc")"
  kubectl --kubeconfig "$kc" config current-context >"$state/context-before" 2>/dev/null || : >"$state/context-before"
  kubectl --kubeconfig "$kc" config set-cluster "$CLUSTER_NAME" --server "https://$NODE_IP:$API_PORT" \
    --certificate-authority "$p/ca.crt" --embed-certs >/dev/null
  kubectl --kubeconfig "$kc" config set-credentials "$CLUSTER_NAME" --client-certificate "$p/admin.crt" \
    --client-key "$p/admin.key" --embed-certs >/dev/null
  kubectl --kubeconfig "$kc" config set-context "$CLUSTER_NAME" --cluster "$CLUSTER_NAME" --user "$CLUSTER_NAME" >/dev/null
  kubectl --kubeconfig "$kc" config use-context "$CLUSTER_NAME" >/dev/null
  echo "$kc" >"$state/kubeconfig-path"
}

on_failure() {
  local code=$? name
  trap - ERR EXIT
  if ((code != 0)); then
    log "start failed (exit $code); the last lines of each daemon's log:"
    for name in "$state"/logs/*.log; do
      [[ -f "$name" ]] || continue
      printf -- '--- %s\n' "$(basename "$name")" >&2
      tail -n 15 "$name" >&2 || true
    done
    log "taking down what was started"
    bash "$here/down.sh" >&2 || true
  fi
  exit "$code"
}

trap on_failure EXIT
step "preflight" preflight
step "network (bridge $BRIDGE, node $NODE_IP)" network
step "certificates and kubeconfigs" pki
step "etcd" etcd_start
step "kube-apiserver" apiserver_start
step "controller-manager and scheduler" controllers_start
step "containerd" containerd_start
step "images imported" images_import
step "kubelet (node Ready)" kubelet_start
step "kube-proxy" proxy_start
step "StorageClass, CoreDNS, local-volumes, host ports" addons
step "kube context $CLUSTER_NAME" context
trap - EXIT
log "cluster up in $((SECONDS - started))s: kubectl --context $CLUSTER_NAME get pods -A"
