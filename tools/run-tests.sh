#!/usr/bin/env bash
# The test suite, as `make test` runs it: pytest over everything, while promtool (for the alert rule
# tests) and then (unless FLAVOR=openbao) the HashiCorp Vault server for the integration tests build
# from Go modules in the background, one after the other. The unit tests and the OpenBao integration
# tests run first, so a cold run costs the longer of the builds and those, not their sum; the
# promtool tests and then the Vault-flavour tests wait for their build (through each build script's
# lock) and run last.
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

cache="${VAULT_PLATFORM_CACHE:-${HOME:-/root}/.cache/vault-platform}"
mkdir -p "$cache"
builds=()
if [[ -z "${VAULT_PLATFORM_PROMTOOL_BIN:-}" ]]; then
  builds+=("bash tools/promtool/build.sh >'$cache/promtool-build.log' 2>&1")
fi
if [[ -z "${VAULT_PLATFORM_VAULT_BIN:-}" && ( "$flavor" == all || "$flavor" == *vault* ) ]]; then
  builds+=("bash tools/vault-server/build.sh >'$cache/vault-build.log' 2>&1")
fi
if [[ ${#builds[@]} -gt 0 ]]; then
  echo "building in the background (logs: $cache/promtool-build.log, $cache/vault-build.log)"
  # One after the other: promtool is small and its tests run before the Vault half. A failed build
  # does not stop the next; its tests fail and show the log.
  script=""
  for build in "${builds[@]}"; do script+="$build; "; done
  setsid bash -c "$script" </dev/null &
  build_pid=$!
fi

"$py" -m pytest "$@"
