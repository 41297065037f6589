#!/usr/bin/env bash
# The Debian/Ubuntu packages the integration tests need, installed with apt-get when missing:
#   postgresql  the PostgreSQL server (initdb, pg_ctl) for dynamic database credentials
#   gnupg       gpg, for PGP-encrypted key shares
#   busybox     the shell of the hashicorp/vault image, which the backup scripts run under
#   and the shell script linter, shellcheck
# As root, or with password-less sudo, they are installed; otherwise this prints the one command
# to run and fails.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v busybox >/dev/null 2>&1 || missing+=(busybox)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ "$(id -u)" == 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "missing system packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]}; this is not a Debian/Ubuntu machine: install them with its package manager" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
