#!/usr/bin/env bash
# The test suite, as `make test` runs it: pytest over everything, while (unless FLAVOR=openbao) the
# HashiCorp Vault server for the integration tests builds from Go modules in the background. The
# unit tests and the OpenBao integration tests run first, so a cold run costs the longer of the
# build and those, not their sum; the Vault-flavour tests then wait for the build (through
# build.sh's lock) and run last.
#
#   tools/run-tests.sh [pytest args...]     PY=<python>  FLAVOR=openbao|vault|all
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PY:-venv/bin/python}"
flavor="${FLAVOR:-all}"

build_pid=""
cleanup() {
  if [[ -n "$build_pid" ]] && kill -0 "$build_pid" 2>/dev/null; then
    # The build runs in its own process group (setsid): stop go and its compilers too.
    kill -TERM -- "-$build_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

if [[ -z "${VAULT_PLATFORM_VAULT_BIN:-}" && ( "$flavor" == all || "$flavor" == *vault* ) ]]; then
  log="${VAULT_PLATFORM_CACHE:-${HOME:-/root}/.cache/vault-platform}/vault-build.log"
  mkdir -p "$(dirname "$log")"
  echo "building the Vault test server in the background (log: $log)"
  setsid bash tools/vault-server/build.sh >"$log" 2>&1 </dev/null &
  build_pid=$!
fi

"$py" -m pytest "$@"
