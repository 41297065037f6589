#!/usr/bin/env bash
# Prove the running one-node cluster does what the dev stack needs (`make cluster-smoke`), each
# check with its time: a pod from an image built here Running, a PersistentVolumeClaim bound and
# written, cluster DNS resolving a Service, pod -> Service -> pod, and a NodePort reached through
# the loopback port kind/dev-cluster.yaml maps (127.0.0.1:8200 -> 30820). Everything it makes
# lives in the namespace "cluster-smoke", deleted at the end (its volume folder with it).
set -euo pipefail
# shellcheck source=tools/cluster/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ns=cluster-smoke
k=("${KUBECTL[@]}" -n "$ns")
busybox="$IMAGE_REGISTRY/library/busybox:1.35.0"
failures=0

check() { # <label> <seconds> <command...>
  local label="$1" limit="$2" t=$SECONDS
  shift 2
  if wait_for "$label" "$limit" "$@"; then
    log "ok   $label ($((SECONDS - t))s)"
  else
    log "FAIL $label"
    failures=$((failures + 1))
  fi
}

cleanup() {
  "${KUBECTL[@]}" delete namespace "$ns" --ignore-not-found --wait=true --timeout=90s >/dev/null 2>&1 || true
}

"${KUBECTL[@]}" get --raw /readyz >/dev/null || die "the cluster is not running (make cluster)"
trap cleanup EXIT
cleanup
"${KUBECTL[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $ns}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: $ns}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: $ns, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsUser: 100, runAsGroup: 1000}
  containers:
    - name: web
      image: $busybox
      imagePullPolicy: IfNotPresent
      command: [sh, -c, 'echo "served from \$(hostname)" > /data/index.html && exec httpd -f -p 8080 -h /data']
      ports: [{containerPort: 8080}]
      readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 1}
      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: $ns}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30820}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $ns}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: client
      image: $busybox
      imagePullPolicy: IfNotPresent
      command: [sleep, "600"]
---
# The dev stack's PostgreSQL as the stack runs it: uid 70, a read-only root, three emptyDirs.
apiVersion: v1
kind: Pod
metadata: {name: postgres, namespace: $ns}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, runAsUser: 70, runAsGroup: 70, fsGroup: 70}
  containers:
    - name: postgres
      image: $IMAGE_REGISTRY/vault-platform/postgres:15
      imagePullPolicy: IfNotPresent
      env:
        - {name: POSTGRES_USER, value: vault}
        - {name: POSTGRES_DB, value: vault}
        - {name: POSTGRES_PASSWORD, value: smoke}
        - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
      readinessProbe:
        exec: {command: [pg_isready, -h, 127.0.0.1, -p, "5432", -U, vault, -d, vault]}
        periodSeconds: 2
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      volumeMounts:
        - {name: data, mountPath: /var/lib/postgresql/data}
        - {name: run, mountPath: /var/run/postgresql}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - {name: data, emptyDir: {}}
    - {name: run, emptyDir: {medium: Memory}}
    - {name: tmp, emptyDir: {}}
---
# The Vault, Python and injector images as the chart and the rollout Job run them: not as root.
apiVersion: v1
kind: Pod
metadata: {name: images, namespace: $ns}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 100, runAsGroup: 1000}
  containers:
    - name: vault
      image: $IMAGE_REGISTRY/hashicorp/vault:1.21.4
      imagePullPolicy: IfNotPresent
      command: [/bin/sh, -ec, 'vault version && echo c2hlbGwgb2s= | base64 -d']
    - name: python
      image: $IMAGE_REGISTRY/vault-platform/python:3.11
      imagePullPolicy: IfNotPresent
      command: [python3, -c, 'import ssl, json, urllib.request; print("python", ssl.OPENSSL_VERSION)']
      securityContext: {runAsUser: 65534, readOnlyRootFilesystem: true}
    - name: injector
      image: $IMAGE_REGISTRY/hashicorp/vault-k8s:1.6.2
      imagePullPolicy: IfNotPresent
      args: [version]
    - name: external-secrets
      image: $IMAGE_REGISTRY/external-secrets/external-secrets:v0.16.2
      imagePullPolicy: IfNotPresent
      args: [certcontroller, --help]
EOF

check "pod from the built busybox image Running" 90 bash -c \
  "[[ \"\$(${k[*]} get pod web -o jsonpath='{.status.phase}')\" == Running ]]"
check "PersistentVolumeClaim bound (local-volumes)" 30 bash -c \
  "[[ \"\$(${k[*]} get pvc data -o jsonpath='{.status.phase}')\" == Bound ]]"
check "pod Ready, serving the file it wrote to its volume" 60 bash -c \
  "[[ \"\$(${k[*]} get pod web -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" == True ]]"
check "client pod Running" 60 bash -c \
  "[[ \"\$(${k[*]} get pod client -o jsonpath='{.status.phase}')\" == Running ]]"
check "DNS: kubernetes.default.svc.cluster.local resolves to $API_SERVICE_IP" 30 bash -c \
  "${k[*]} exec client -- nslookup kubernetes.default.svc.cluster.local | grep -q 'Address.*$API_SERVICE_IP'"
# busybox 1.35's wget crashes on its own -T here: `timeout` bounds it instead.
check "pod -> Service (by DNS name) -> pod" 30 bash -c \
  "${k[*]} exec client -- timeout 5 wget -qO- http://web.$ns.svc.cluster.local/index.html | grep -q 'served from web'"
# /livez is open to anyone (system:public-info-viewer): exactly "ok" comes back.
check "pod -> the API server through the kubernetes Service" 30 bash -c \
  "[[ \"\$(${k[*]} exec client -- timeout 5 wget -qO- --no-check-certificate https://kubernetes.default.svc/livez)\" == ok ]]"
check "NodePort 30820 on the node address $NODE_IP" 30 bash -c \
  "curl -fsS -m 3 http://$NODE_IP:30820/index.html | grep -q 'served from web'"
check "NodePort 30820 through loopback 127.0.0.1:8200 (kind's mapping)" 30 bash -c \
  "curl -fsS -m 3 http://127.0.0.1:8200/index.html | grep -q 'served from web'"
check "PostgreSQL image: Ready as uid 70 on a read-only root" 60 bash -c \
  "[[ \"\$(${k[*]} get pod postgres -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')\" == True ]]"
check "PostgreSQL image: a password login over TCP" 20 bash -c \
  "${k[*]} exec postgres -- env PGPASSWORD=smoke psql -h 127.0.0.1 -U vault -d vault -tAc 'select 1' | grep -qx 1"
check "Vault, Python, injector and External Secrets images run as their pods' users" 60 bash -c \
  "[[ \"\$(${k[*]} get pod images -o jsonpath='{.status.phase}')\" == Succeeded ]]"
for c in vault python injector external-secrets; do
  log "  $c: $("${k[@]}" logs images -c "$c" 2>&1 | head -n 2 | tr '\n' ' ')"
done
volume="$("${k[@]}" get pvc data -o jsonpath='{.spec.volumeName}')"
dir="$("${KUBECTL[@]}" get pv "$volume" -o jsonpath='{.spec.hostPath.path}')"
check "the volume's file is on the node ($dir)" 5 grep -q 'served from web' "$dir/index.html"

trap - EXIT
t=$SECONDS
cleanup
check "namespace deleted: its volume and folder are gone" 30 bash -c \
  "! ${KUBECTL[*]} get pv $volume >/dev/null 2>&1 && [[ ! -e '$dir' ]]"
log "cleanup: $((SECONDS - t))s"
if ((failures > 0)); then
  die "$failures smoke check(s) failed"
fi
log "all smoke checks passed in $((SECONDS - started))s"
