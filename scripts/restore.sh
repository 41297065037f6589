#!/bin/sh
# restore.sh: restore a Raft snapshot into a running Vault cluster, then check that it serves.
#
# Runs on an operator's machine (or any pod) with the `vault` CLI, and the `aws` CLI for s3://
# sources. Point VAULT_ADDR at the ACTIVE node, e.g. through
#   kubectl -n vault port-forward svc/vault-active 8210:8200
#   export VAULT_ADDR=https://127.0.0.1:8210 VAULT_CACERT=./vault-ca.pem
# See docs/backup-and-restore.md for the whole runbook.
set -eu

VAULT_BIN=${VAULT_BIN:-vault}
AWS_BIN=${AWS_BIN:-aws}
HERE=$(cd "$(dirname "$0")" && pwd)

log() { printf 'restore: %s\n' "$*" >&2; }
die() { printf 'restore: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: restore.sh [options] SOURCE
       restore.sh --verify-only [--verify-kv PATH]

Replace ALL of Vault's data at $VAULT_ADDR with a Raft snapshot, then check that Vault is unsealed,
active and (with --verify-kv) serves a secret from the snapshot.

SOURCE
  ./vault-20250101T000000Z.snap        a local snapshot file
  s3://BUCKET/PREFIX/vault-<ts>.snap   one snapshot in S3 (downloaded with the aws CLI)
  s3://BUCKET/PREFIX/                  the newest vault-*.snap under that prefix

Options
  --force           restore a snapshot taken by ANOTHER cluster (a fresh cluster built to replace a
                    lost one). Without it Vault refuses a snapshot whose seal/keyring differs.
                    Afterwards the data is protected by the OLD cluster's seal: unseal with the old
                    cluster's unseal keys (shamir), or give the pods the old cluster's KMS key.
  --yes             do not ask for confirmation (automation)
  --verify-kv PATH  after the restore, read this KV path (e.g. secret/myapp/config) as proof
  --verify-only     do not restore; only run the checks (e.g. after unsealing a --force restore)
  --wait SECONDS    how long to wait for Vault to come back after the restore (default 120)
  -h, --help        this text

Environment
  VAULT_ADDR, VAULT_CACERT   the active node and its CA
  VAULT_TOKEN                a token with update+sudo on sys/storage/raft/snapshot (and
                             sys/storage/raft/snapshot-force for --force): root or the admin policy
  RESTORE_VERIFY_TOKEN       token for --verify-kv (default VAULT_TOKEN). The restore replaces the
                             token store with the snapshot's: use a token that existed when the
                             snapshot was taken.
  AWS_*                      the usual AWS CLI settings for s3:// sources

Exit codes: 0 restored and verified; 1 failed; 2 usage; 3 restored but Vault is sealed (unseal it
with the snapshot's cluster's keys, then run --verify-only).
EOF
}

last_line() { printf '%s\n' "$1" | sed '/^[[:space:]]*$/d' | tail -n 1; }

force=
yes=
verify_kv=
verify_only=
wait_seconds=120
source=

while [ $# -gt 0 ]; do
  case $1 in
    -force|--force) force=1 ;;
    -yes|--yes|-y) yes=1 ;;
    -verify-kv|--verify-kv) [ $# -ge 2 ] || { usage; exit 2; }; verify_kv=$2; shift ;;
    -verify-only|--verify-only) verify_only=1 ;;
    -wait|--wait) [ $# -ge 2 ] || { usage; exit 2; }; wait_seconds=$2; shift ;;
    -h|--help|help) usage 2>&1; exit 0 ;;
    -*) usage; printf 'restore: ERROR: unknown option %s\n' "$1" >&2; exit 2 ;;
    *) [ -z "$source" ] || { usage; exit 2; }; source=$1 ;;
  esac
  shift
done
case $wait_seconds in ''|*[!0-9]*) die "--wait needs a number of seconds, not '$wait_seconds'" ;; esac
if [ -z "$verify_only" ] && [ -z "$source" ]; then usage; exit 2; fi

[ -n "${VAULT_ADDR:-}" ] || die "VAULT_ADDR is not set (the active node, e.g. https://127.0.0.1:8210 through a port-forward)"
command -v "$VAULT_BIN" >/dev/null 2>&1 || die "the vault CLI ($VAULT_BIN) is not on PATH"

# --- interrupts -----------------------------------------------------------------------------------
# Ctrl-C (INT) or a job runner's TERM stops the script where it is: it must not go on to the next
# step with a half-downloaded snapshot. A shell runs a trap only once its foreground command has
# ended, so every command that can take long (the aws and vault CLIs) runs through run_child: in
# the background, with the script waiting for it; `wait` returns as soon as a trapped signal
# arrives, and the trap stops the command too, whether or not the signal reached it. The traps are
# in place before the temporary folder exists, so there is no moment when a signal leaves it behind.
workdir=
child=
before=

# KILL, not TERM: a TERM that reaches the command between its fork and its exec is caught by the
# forked shell's handler and lost, and the command would run on; what it wrote goes with $workdir.
stop_child() {
  case $child in
    '') ;;
    # Between starting the command and noting its process ID: if $! moved, it is that command.
    starting) [ "${!:-none}" = "$before" ] || kill -KILL "$!" 2>/dev/null || true ;;
    *) kill -KILL "$child" 2>/dev/null || true ;;
  esac
}

on_signal() {
  trap '' INT TERM
  stop_child
  log "$1; nothing more is done"
  exit "$2"
}

trap 'stop_child; [ -z "$workdir" ] || rm -rf "$workdir"' EXIT
trap 'on_signal interrupted 130' INT
trap 'on_signal terminated 143' TERM
# mktemp ignores the signals (the trap runs once it is done), so it never leaves a folder the
# script does not know the name of.
workdir=$(trap '' INT TERM; mktemp -d) || die "cannot create a temporary directory"

# run_child CMD [ARG...]: run it, its status as ours, what it printed (stdout and stderr) in $out.
run_child() {
  before=${!:-none}
  child=starting
  "$@" >"$workdir/out" 2>&1 </dev/null &
  child=$!
  rc=0
  wait "$child" || rc=$?
  child=
  out=$(cat "$workdir/out")
  return "$rc"
}

# What run_child runs in its own subshell, with their own environment.
read_verify_kv() { export VAULT_TOKEN="$token"; exec "$VAULT_BIN" kv get "$verify_kv"; }
check_snapshot() { export VAULT_BIN; exec sh "$HERE/backup.sh" check "$file"; }

# Sets code: 0 unsealed and active (or not HA), 4 unsealed standby, 2 sealed, 1 unreachable or error.
check_status() {
  code=0
  run_child "$VAULT_BIN" status || code=$?
  if [ "$code" = 0 ]; then
    mode=$(printf '%s\n' "$out" | awk '$1 == "HA" && $2 == "Mode" { print $3 }')
    case $mode in ''|active) ;; *) code=4 ;; esac
  fi
}

verify() {
  log "waiting up to ${wait_seconds}s for Vault at $VAULT_ADDR to answer unsealed"
  deadline=$(( $(date +%s) + wait_seconds ))
  attempts=0
  code=1
  sealed_since=
  # Vault stops answering for a few seconds while it installs a snapshot. Sealed for 10s in a row
  # means it stays sealed (a forced restore under another seal); anything else, wait.
  while [ "$attempts" -le "$wait_seconds" ]; do
    check_status
    now=$(date +%s)
    case $code in
      0) break ;;
      2) [ -n "$sealed_since" ] || sealed_since=$now
         [ $((now - sealed_since)) -lt 10 ] || break ;;
      *) sealed_since= ;;
    esac
    [ "$now" -lt "$deadline" ] || break
    attempts=$((attempts + 1))
    sleep 1
  done
  case $code in
    0) ;;
    2)
      printf 'restore: Vault at %s is SEALED. The restored data is protected by the seal of the cluster\n' "$VAULT_ADDR" >&2
      printf 'restore: the snapshot came from: unseal with THAT cluster'"'"'s unseal keys (vault operator unseal),\n' >&2
      printf 'restore: or let the pods use THAT cluster'"'"'s KMS key; then run: restore.sh --verify-only\n' >&2
      # A server goes on asking for the key count of its own `operator init` until it restarts and
      # reads the restored seal configuration: with other numbers the old keys never add up.
      shares=$(printf '%s\n' "$out" | awk '$1 == "Total" && $2 == "Shares" { print $3 }')
      threshold=$(printf '%s\n' "$out" | awk '$1 == "Threshold" { print $2 }')
      if [ -n "$threshold" ] && [ -n "$shares" ]; then
        printf 'restore: this server now asks for %s of %s key shares (the numbers of its own init). If the old\n' "$threshold" "$shares" >&2
        printf 'restore: cluster had other numbers, restart this server first (e.g. kubectl delete pod): only then\n' >&2
        printf 'restore: does it read the restored seal configuration and take the old keys\n' >&2
      fi
      exit 3 ;;
    4) die "Vault at $VAULT_ADDR is unsealed but not the active node after ${wait_seconds}s (is VAULT_ADDR the active Service?)" ;;
    *) die "Vault at $VAULT_ADDR did not come back within ${wait_seconds}s: $(last_line "$out")" ;;
  esac
  log "Vault at $VAULT_ADDR is unsealed and active"
  if [ -n "$verify_kv" ]; then
    token=${RESTORE_VERIFY_TOKEN:-${VAULT_TOKEN:-}}
    [ -n "$token" ] || die "--verify-kv needs RESTORE_VERIFY_TOKEN or VAULT_TOKEN"
    if ! run_child read_verify_kv; then
      die "restored, but reading $verify_kv failed: $(last_line "$out")"
    fi
    log "read $verify_kv from the restored data"
  fi
  log "verified"
}

if [ -n "$verify_only" ]; then
  verify
  exit 0
fi

[ -n "${VAULT_TOKEN:-}" ] || die "VAULT_TOKEN is not set (root, or a token with the admin policy)"

# --- fetch the snapshot ----------------------------------------------------------------------------
case $source in
  s3://*)
    command -v "$AWS_BIN" >/dev/null 2>&1 || die "the AWS CLI ($AWS_BIN) is needed for $source"
    rest=${source#s3://}
    bucket=${rest%%/*}
    key=${rest#"$bucket"}
    key=${key#/}
    [ -n "$bucket" ] || die "no bucket in $source"
    case $key in
      ''|*/)
        log "finding the newest snapshot under s3://$bucket/$key"
        if ! run_child "$AWS_BIN" s3api list-objects-v2 --bucket "$bucket" --prefix "${key}vault-" \
            --query 'Contents[].Key' --output text; then
          die "listing s3://$bucket/$key failed: $(last_line "$out")"
        fi
        keys=$out
        newest=$(printf '%s\n' "$keys" | tr '\t' '\n' | grep -E '/?vault-[0-9]{8}T[0-9]{6}Z\.snap$' | sort | tail -n 1 || true)
        [ -n "$newest" ] || die "no vault-*.snap under s3://$bucket/$key"
        key=$newest ;;
    esac
    file=$workdir/$(basename "$key")
    log "downloading s3://$bucket/$key"
    if ! run_child "$AWS_BIN" s3 cp "s3://$bucket/$key" "$file" --only-show-errors --no-progress; then
      die "download of s3://$bucket/$key failed: $(last_line "$out")"
    fi ;;
  *)
    [ -f "$source" ] || die "$source is not a file (nor an s3:// URL)"
    file=$source ;;
esac

# --- check it --------------------------------------------------------------------------------------
if [ -f "$HERE/backup.sh" ]; then
  checked=0
  run_child check_snapshot || checked=$?
  printf '%s\n' "$out" | sed 's/^backup: /restore: /' >&2
  [ "$checked" = 0 ] || die "$file is not a usable snapshot; nothing changed"
else
  [ -s "$file" ] || die "$file is empty; nothing changed"
fi

# --- preflight -------------------------------------------------------------------------------------
check_status
case $code in
  0) ;;
  2) die "Vault at $VAULT_ADDR is sealed: unseal it (or initialize a fresh cluster) before restoring" ;;
  4) die "Vault at $VAULT_ADDR is a standby: restore on the active node (e.g. port-forward svc/<release>-active)" ;;
  *) die "cannot reach Vault at $VAULT_ADDR: $(last_line "$out")" ;;
esac

if [ -z "$yes" ]; then
  [ -t 0 ] || die "refusing to restore without confirmation: run in a terminal or pass --yes"
  printf 'This REPLACES ALL DATA in Vault at %s with %s%s.\nType "restore" to continue: ' \
    "$VAULT_ADDR" "$(basename "$file")" "${force:+ (--force: the snapshot is from another cluster)}" >&2
  read -r answer || answer=
  [ "$answer" = restore ] || die "not confirmed; nothing changed"
fi

# --- restore ---------------------------------------------------------------------------------------
log "restoring $(basename "$file") into $VAULT_ADDR${force:+ with -force}"
if [ -n "$force" ]; then
  set -- -force "$file"
else
  set -- "$file"
fi
if ! run_child "$VAULT_BIN" operator raft snapshot restore "$@"; then
  case $out in
    *"unseal keys"*|*"recovery keys"*|*"unable to decrypt"*|*"keyring"*)
      die "Vault refused the snapshot: it was taken by a cluster with another seal. If you are restoring into a fresh cluster, re-run with --force ($(last_line "$out"))" ;;
    *"permission denied"*)
      die "permission denied: the token needs update+sudo on sys/storage/raft/snapshot${force:+-force} ($(last_line "$out"))" ;;
    *) die "restore failed: $(last_line "$out")" ;;
  esac
fi
log "snapshot restored"
verify
