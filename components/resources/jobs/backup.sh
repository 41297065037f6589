#!/bin/sh
# backup.sh: scheduled Raft snapshots of Vault, for the vault-platform backup CronJob.
#
# POSIX sh: it runs under busybox sh in the hashicorp/vault image (the `vault` CLI, no curl, no
# aws) and under bash in the AWS CLI image. The CronJob runs it in two steps that share one
# emptyDir:
#
#   backup.sh snapshot       (initContainer, Vault image) log in, take a snapshot from the active
#                            node, check it, leave it in $SNAPSHOT_DIR
#   backup.sh upload-s3      (container, AWS CLI image) upload it to s3://$S3_BUCKET/$S3_PREFIX,
#                            with any an earlier run could not upload, then delete snapshots there
#                            older than $RETENTION_DAYS. A snapshot leaves $SNAPSHOT_DIR only once
#                            S3 holds it whole
#   backup.sh store-volume   (container, Vault image) copy it to $BACKUP_DIR (a volume), then
#                            delete snapshots there older than $RETENTION_DAYS
#   backup.sh check FILE     check a snapshot file (non-empty, intact archive, inspectable)
#
# Environment:
#   VAULT_ADDR            the active node (https://<release>-active.<namespace>.svc:8200)   [snapshot]
#   VAULT_CACERT          CA bundle for VAULT_ADDR
#   VAULT_TOKEN           a token to use as is; when unset, log in with Kubernetes auth:
#   VAULT_K8S_AUTH_PATH   Kubernetes auth mount (default: kubernetes)
#   VAULT_K8S_ROLE        Kubernetes auth role (default: raft-backup)
#   VAULT_K8S_JWT_PATH    service account token (default: the pod's mounted token)
#   SNAPSHOT_DIR          where the snapshot step leaves its file (default: /snapshot)
#   S3_BUCKET, S3_PREFIX  upload target; the prefix ends in '/' (default: none)      [upload-s3]
#   BACKUP_DIR            the backup volume's mount path                             [store-volume]
#   RETENTION_DAYS        snapshots older than this many days are deleted     [upload-s3, store-volume]
#   VAULT_BIN, AWS_BIN    the CLIs (default: vault, aws from PATH)
#   AWS_* / AWS_ENDPOINT_URL  the usual AWS CLI settings (the endpoint override is how tests use a
#                         local S3)
#
# Snapshots are named vault-<UTC yyyymmddThhmmssZ>.snap. Pruning goes by the time in that name and
# touches nothing else. Every failure exits non-zero with one line starting "backup: ERROR:".
set -eu

VAULT_BIN=${VAULT_BIN:-vault}
AWS_BIN=${AWS_BIN:-aws}
SNAPSHOT_DIR=${SNAPSHOT_DIR:-/snapshot}
VAULT_K8S_AUTH_PATH=${VAULT_K8S_AUTH_PATH:-kubernetes}
VAULT_K8S_ROLE=${VAULT_K8S_ROLE:-raft-backup}
VAULT_K8S_JWT_PATH=${VAULT_K8S_JWT_PATH:-/var/run/secrets/kubernetes.io/serviceaccount/token}
# A large snapshot streams for longer than the CLI's default 60s.
VAULT_CLIENT_TIMEOUT=${VAULT_CLIENT_TIMEOUT:-300s}
export VAULT_CLIENT_TIMEOUT

log() { printf 'backup: %s\n' "$*" >&2; }
die() { printf 'backup: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: backup.sh snapshot | upload-s3 | store-volume | check FILE

  snapshot      log in to Vault, take a Raft snapshot from $VAULT_ADDR into $SNAPSHOT_DIR, check it
  upload-s3     upload the snapshot in $SNAPSHOT_DIR to s3://$S3_BUCKET/$S3_PREFIX, prune old ones
  store-volume  copy the snapshot in $SNAPSHOT_DIR to $BACKUP_DIR, prune old ones
  check FILE    check a snapshot file

See the comments at the top of this script for the environment it reads.
EOF
}

# --- helpers ---------------------------------------------------------------------------------------

require() {
  for name in "$@"; do
    eval "value=\${$name:-}"
    # shellcheck disable=SC2154 # value is set by the eval above
    [ -n "$value" ] || die "$name is not set"
  done
}

retention_days() {
  require RETENTION_DAYS
  case $RETENTION_DAYS in
    ''|*[!0-9]*) die "RETENTION_DAYS must be a whole number of days, not '$RETENTION_DAYS'" ;;
  esac
  [ "$RETENTION_DAYS" -ge 1 ] || die "RETENTION_DAYS must be at least 1, not '$RETENTION_DAYS'"
  printf '%s\n' "$RETENTION_DAYS"
}

size_of() { wc -c <"$1" | tr -d ' '; }

# The last non-empty line of a command's output: usually the error that matters. Plain sh, since
# the AWS CLI image promises little beyond coreutils.
last_line() {
  result=
  while IFS= read -r line; do
    case $line in *[![:space:]]*) result=$line ;; esac
  done <<EOF
$1
EOF
  printf '%s\n' "$result"
}

# One sentence for what went wrong talking to Vault, then the CLI's own words.
explain_vault() {
  out=$1
  case $out in
    *"permission denied"*|*"Code: 403"*)
      reason="permission denied: the token may not read sys/storage/raft/snapshot (it needs the raft-backup policy)" ;;
    *"connection refused"*|*"no such host"*|*"i/o timeout"*|*"dial tcp"*|*"Client.Timeout"*)
      reason="Vault is unreachable at $VAULT_ADDR" ;;
    *"certificate"*|*"x509"*|*"tls:"*)
      reason="TLS to $VAULT_ADDR failed (check VAULT_CACERT)" ;;
    *"Vault is sealed"*|*"Code: 503"*)
      reason="Vault at $VAULT_ADDR is sealed or not ready" ;;
    *"missing client token"*|*"invalid token"*)
      reason="no valid Vault token" ;;
    *) reason="Vault returned an error" ;;
  esac
  printf '%s (%s)\n' "$reason" "$(last_line "$out")"
}

# yyyymmddhhmmss of a snapshot name, or nothing (non-zero) for any other name.
stamp_of() {
  case $1 in
    vault-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.snap) ;;
    *) return 1 ;;
  esac
  s=${1#vault-}
  d=${s%%T*}
  t=${s#*T}
  printf '%s%s\n' "$d" "${t%Z.snap}"
}

# yyyymmddhhmmss of now minus $1 days (UTC). `date -d @N` works in GNU date and busybox date.
cutoff_stamp() {
  now=$(date -u +%s) || die "cannot read the clock"
  date -u -d "@$((now - $1 * 86400))" +%Y%m%d%H%M%S 2>/dev/null \
    || die "this date(1) cannot compute the retention cutoff (needs 'date -d @SECONDS')"
}

# The one snapshot the snapshot step left in $SNAPSHOT_DIR.
pending_snapshot() {
  found=
  count=0
  for f in "$SNAPSHOT_DIR"/vault-*.snap; do
    [ -e "$f" ] || continue
    found=$f
    count=$((count + 1))
  done
  [ "$count" -gt 0 ] || die "no snapshot in $SNAPSHOT_DIR: the snapshot step did not produce one"
  [ "$count" -eq 1 ] || die "$count snapshots in $SNAPSHOT_DIR; expected exactly one"
  printf '%s\n' "$found"
}

# Cheap checks that need nothing but sh and coreutils (the AWS CLI image has no vault, tar or awk).
quick_check() {
  f=$1
  [ -f "$f" ] || die "snapshot $f does not exist"
  [ -s "$f" ] || die "snapshot $f is empty (0 bytes); refusing to keep it"
  magic=$(head -c 2 "$f" | od -An -tx1 | tr -d ' \n')
  [ "$magic" = "1f8b" ] || die "snapshot $f is not a gzip archive (starts with 0x$magic); refusing to keep it"
}

# A Raft snapshot is a gzip tar of meta.json, state.bin and SHA256SUMS; check every checksum, and
# let `vault operator raft snapshot inspect` read it when this vault has that command.
full_check() {
  f=$1
  quick_check "$f"
  list=$(tar -tzf "$f" 2>&1) || die "snapshot $f is not a readable archive: $(last_line "$list")"
  for member in meta.json state.bin SHA256SUMS; do
    printf '%s\n' "$list" | grep -qx "$member" || die "snapshot $f has no $member: not a Raft snapshot"
  done
  sums=$(tar -xzOf "$f" SHA256SUMS) || die "cannot read SHA256SUMS from $f"
  for member in meta.json state.bin; do
    want=$(printf '%s\n' "$sums" | awk -v m="$member" '$2 == m { print $1 }')
    [ -n "$want" ] || die "snapshot $f: SHA256SUMS lists no $member"
    got=$(tar -xzOf "$f" "$member" | sha256sum | awk '{ print $1 }')
    [ "$got" = "$want" ] || die "snapshot $f: $member is corrupt (sha256 $got, expected $want)"
  done
  if inspect_supported; then
    out=$("$VAULT_BIN" operator raft snapshot inspect "$f" 2>&1) \
      || die "vault operator raft snapshot inspect rejected $f: $(last_line "$out")"
    log "vault operator raft snapshot inspect: $(printf '%s\n' "$out" \
      | awk '$1 ~ /^(Index|Term|Size)$/ && NF == 2 { printf "%s=%s ", $1, $2 }')"
  fi
}

inspect_supported() {
  command -v "$VAULT_BIN" >/dev/null 2>&1 || return 1
  # An unknown subcommand prints the parent's help (and may still exit 0): look for its own usage.
  "$VAULT_BIN" operator raft snapshot inspect -h 2>&1 | grep -q 'Usage: vault operator raft snapshot inspect'
}

login() {
  if [ -n "${VAULT_TOKEN:-}" ]; then
    log "using the token in VAULT_TOKEN"
    return 0
  fi
  [ -r "$VAULT_K8S_JWT_PATH" ] \
    || die "VAULT_TOKEN is not set and there is no service account token at $VAULT_K8S_JWT_PATH to log in with"
  log "logging in to $VAULT_ADDR with Kubernetes auth (auth/$VAULT_K8S_AUTH_PATH, role $VAULT_K8S_ROLE)"
  err=$(mktemp) || die "cannot create a temporary file (is /tmp writable?)"
  if ! token=$("$VAULT_BIN" write -field=token "auth/$VAULT_K8S_AUTH_PATH/login" \
      role="$VAULT_K8S_ROLE" jwt=@"$VAULT_K8S_JWT_PATH" 2>"$err"); then
    msg=$(cat "$err"); rm -f "$err"
    die "Kubernetes login failed: $(explain_vault "$msg")"
  fi
  rm -f "$err"
  [ -n "$token" ] || die "Kubernetes login returned no token"
  VAULT_TOKEN=$token
  export VAULT_TOKEN
}

# --- steps -----------------------------------------------------------------------------------------

cmd_snapshot() {
  require VAULT_ADDR
  command -v "$VAULT_BIN" >/dev/null 2>&1 || die "the vault CLI ($VAULT_BIN) is not on PATH"
  mkdir -p "$SNAPSHOT_DIR" || die "cannot create $SNAPSHOT_DIR"
  [ -w "$SNAPSHOT_DIR" ] || die "$SNAPSHOT_DIR is not writable"

  # Reachable and unsealed? `vault status` exits 0 unsealed, 2 sealed, 1 on any error.
  rc=0
  out=$("$VAULT_BIN" status 2>&1) || rc=$?
  case $rc in
    0) ;;
    2) die "Vault at $VAULT_ADDR is sealed; no snapshot taken" ;;
    *) die "cannot reach Vault: $(explain_vault "$out")" ;;
  esac

  login
  # A snapshot an earlier run could not upload may wait in $SNAPSHOT_DIR: never overwrite it.
  for _ in 1 2 3; do
    file=$SNAPSHOT_DIR/vault-$(date -u +%Y%m%dT%H%M%SZ).snap
    [ -e "$file" ] || break
    sleep 1
  done
  [ ! -e "$file" ] || die "$file exists already; not overwriting a snapshot"
  partial=$file.partial
  log "taking a Raft snapshot from $VAULT_ADDR"
  if ! out=$("$VAULT_BIN" operator raft snapshot save "$partial" 2>&1); then
    rm -f "$partial"
    die "snapshot failed: $(explain_vault "$out")"
  fi
  # A snapshot that fails its checks is deleted, never left for the next step to pick up.
  if ! (full_check "$partial"); then
    rm -f "$partial"
    exit 1
  fi
  mv "$partial" "$file" || die "cannot rename $partial"
  log "snapshot $file is good ($(size_of "$file") bytes)"
}

cmd_check() {
  [ $# -eq 1 ] || { usage; exit 2; }
  full_check "$1"
  log "snapshot $1 is good ($(size_of "$1") bytes)"
}

# Every snapshot waiting in $SNAPSHOT_DIR, oldest first (the name sorts by time).
spooled_snapshots() {
  for f in "$SNAPSHOT_DIR"/vault-*.snap; do
    if [ -e "$f" ]; then printf '%s\n' "$f"; fi
  done
  return 0
}

# Upload one snapshot and confirm S3 holds all of it; the local copy goes only after that.
upload_one() {
  file=$1
  name=$(basename "$file")
  url=s3://$S3_BUCKET/$prefix$name
  size=$(size_of "$file")
  log "uploading $name ($size bytes) to $url"
  if ! out=$("$AWS_BIN" s3 cp "$file" "$url" --only-show-errors --no-progress 2>&1); then
    die "upload to $url failed: $(last_line "$out"); the snapshot stays in $SNAPSHOT_DIR for the next run"
  fi
  if ! stored=$("$AWS_BIN" s3api head-object --bucket "$S3_BUCKET" --key "$prefix$name" \
      --query ContentLength --output text 2>&1); then
    die "cannot confirm the upload of $url: $(last_line "$stored"); the snapshot stays in $SNAPSHOT_DIR"
  fi
  [ "$stored" = "$size" ] || die "uploaded $url has $stored bytes, the snapshot has $size; it stays in $SNAPSHOT_DIR"
  rm -f "$file" || die "uploaded $url, but cannot remove it from $SNAPSHOT_DIR"
  log "uploaded $url"
}

cmd_upload_s3() {
  require S3_BUCKET
  prefix=${S3_PREFIX:-}
  case $prefix in ''|*/) ;; *) die "S3_PREFIX must end in '/', not '$prefix'" ;; esac
  days=$(retention_days)
  command -v "$AWS_BIN" >/dev/null 2>&1 || die "the AWS CLI ($AWS_BIN) is not on PATH"
  cutoff=$(cutoff_stamp "$days")

  # The snapshot step leaves its file here; a run whose upload failed left its own too. Upload them
  # all, oldest first. One past the retention would only expire in S3: it is dropped instead, so a
  # long outage cannot fill the volume.
  pending=$(spooled_snapshots)
  [ -n "$pending" ] || die "no snapshot in $SNAPSHOT_DIR: the snapshot step did not produce one"
  uploaded=0
  set -f
  old_ifs=$IFS
  IFS='
'
  for file in $pending; do
    IFS=$old_ifs
    stamp=$(stamp_of "$(basename "$file")") || continue
    if [ "$stamp" -lt "$cutoff" ]; then
      rm -f "$file"
      log "dropped $(basename "$file"): never uploaded and older than $days days"
      continue
    fi
    # A snapshot that fails even the cheap checks can never be restored: it is not kept.
    if ! (quick_check "$file"); then
      rm -f "$file"
      exit 1
    fi
    upload_one "$file"
    uploaded=$((uploaded + 1))
  done
  IFS=$old_ifs
  set +f

  if ! keys=$("$AWS_BIN" s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${prefix}vault-" \
      --query 'Contents[].Key' --output text 2>&1); then
    die "snapshot uploaded, but listing s3://$S3_BUCKET/$prefix to prune failed: $(last_line "$keys")"
  fi
  pruned=0
  kept=0
  set -f # keys are words, never patterns
  for key in $keys; do
    case $key in None) continue ;; esac
    stamp=$(stamp_of "${key#"$prefix"}") || continue
    if [ "$stamp" -lt "$cutoff" ]; then
      # With Object Lock this only adds a delete marker: the locked version stays until its lock ends.
      if ! out=$("$AWS_BIN" s3 rm "s3://$S3_BUCKET/$key" --only-show-errors 2>&1); then
        die "snapshot uploaded, but deleting the expired s3://$S3_BUCKET/$key failed: $(last_line "$out")"
      fi
      log "pruned s3://$S3_BUCKET/$key (older than $days days)"
      pruned=$((pruned + 1))
    else
      kept=$((kept + 1))
    fi
  done
  set +f
  log "done: $uploaded uploaded, $kept snapshot(s) kept in s3://$S3_BUCKET/$prefix, $pruned pruned"
}

cmd_store_volume() {
  require BACKUP_DIR
  days=$(retention_days)
  [ -d "$BACKUP_DIR" ] || die "backup volume $BACKUP_DIR does not exist"
  [ -w "$BACKUP_DIR" ] || die "backup volume $BACKUP_DIR is not writable"
  file=$(pending_snapshot)
  quick_check "$file"
  name=$(basename "$file")
  size=$(size_of "$file")

  log "storing $name ($size bytes) in $BACKUP_DIR"
  if ! out=$(cp "$file" "$BACKUP_DIR/$name.partial" 2>&1); then
    rm -f "$BACKUP_DIR/$name.partial"
    die "copying to $BACKUP_DIR failed (is the volume full?): $(last_line "$out")"
  fi
  stored=$(size_of "$BACKUP_DIR/$name.partial")
  [ "$stored" = "$size" ] || { rm -f "$BACKUP_DIR/$name.partial"; die "copy in $BACKUP_DIR has $stored bytes, the snapshot has $size"; }
  mv "$BACKUP_DIR/$name.partial" "$BACKUP_DIR/$name" || die "cannot rename the copy in $BACKUP_DIR"
  log "stored $BACKUP_DIR/$name"

  cutoff=$(cutoff_stamp "$days")
  pruned=0
  kept=0
  for f in "$BACKUP_DIR"/vault-*.snap; do
    [ -e "$f" ] || continue
    stamp=$(stamp_of "$(basename "$f")") || continue
    if [ "$stamp" -lt "$cutoff" ]; then
      rm -f "$f" || die "snapshot stored, but deleting the expired $f failed"
      log "pruned $f (older than $days days)"
      pruned=$((pruned + 1))
    else
      kept=$((kept + 1))
    fi
  done
  # Leftovers of an interrupted copy are never a valid snapshot.
  for f in "$BACKUP_DIR"/vault-*.snap.partial; do
    if [ -e "$f" ]; then rm -f "$f"; fi
  done
  log "done: $kept snapshot(s) kept in $BACKUP_DIR, $pruned pruned"
}

main() {
  [ $# -ge 1 ] || { usage; exit 2; }
  step=$1
  shift
  case $step in
    snapshot) cmd_snapshot ;;
    upload-s3) cmd_upload_s3 ;;
    store-volume) cmd_store_volume ;;
    check) cmd_check "$@" ;;
    -h|--help|help) usage 2>&1 ;;
    *) usage; die "unknown step '$step'" ;;
  esac
}

main "$@"
