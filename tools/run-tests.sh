#!/usr/bin/env bash
# The test suite, as `make test` runs it: pytest over everything, while the test tools build from Go
# modules in one background job: first (unless FLAVOR=openbao) the HashiCorp Vault server for the
# integration tests, then the Pulumi CLI for the engine tests. The unit tests and the OpenBao
# integration tests run first, so a cold run costs the longer of the Vault build and those, not
# their sum; the Vault-flavour tests then wait for the Vault build (through its build.sh's lock),
# and the Pulumi CLI builds while they run. The engine tests run last and wait for it the same way.
# One build after the other, not both at once: on 2 cores two builds only slow each other, and the
# Vault server is needed first.
#
#   tools/run-tests.sh [pytest args...]     PY=<python>  FLAVOR=openbao|vault|all
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PY:-venv/bin/python}"
flavor="${FLAVOR:-all}"

build_pid=""
cleanup() {
  if [[ -n "$build_pid" ]] && kill -0 "$build_pid" 2>/dev/null; then
    # The builds run in their own process group (setsid): stop go and its compilers too.
    kill -TERM -- "-$build_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

cache="${VAULT_PLATFORM_CACHE:-${HOME:-/root}/.cache/vault-platform}"
mkdir -p "$cache"
vault_log=""
if [[ -z "${VAULT_PLATFORM_VAULT_BIN:-}" && ( "$flavor" == all || "$flavor" == *vault* ) ]]; then
  vault_log="$cache/vault-build.log"
  echo "building the Vault test server in the background (log: $vault_log)"
fi
engine_log="$cache/pulumi-engine-build.log"
echo "building the Pulumi CLI in the background, after it (log: $engine_log)"
# A failed Vault build must not keep the engine tests from their CLI: each build reports to its log
# and the tests that need it fail with that log's tail. ($1 and $2 are the inner shell's arguments.)
# shellcheck disable=SC2016
setsid bash -c '
  if [[ -n "$1" ]]; then bash tools/vault-server/build.sh >"$1" 2>&1 </dev/null || true; fi
  bash tools/pulumi-engine/build.sh >"$2" 2>&1 </dev/null || true
' build-tools "$vault_log" "$engine_log" </dev/null &
build_pid=$!

"$py" -m pytest "$@"
