#!/usr/bin/env bash
# The test suite, as `make test` runs it: pytest over everything, while the test tools build from Go
# modules in one background job, one after the other: promtool (for the alert rule tests), helm and
# the Vault chart (for the chart tests), then (unless FLAVOR=openbao) the HashiCorp Vault server for
# the integration tests, then the Pulumi CLI for the engine tests. The unit tests and the OpenBao
# integration tests run first, so a cold run costs the longer of the builds and those, not their
# sum; the promtool tests, the chart tests, the Vault-flavour tests and last the engine tests each
# wait for their build (through its build script's lock).
# One build after the other, not all at once: on 2 cores parallel builds only slow each other, and
# each is needed in that order.
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
promtool_log=""
if [[ -z "${VAULT_PLATFORM_PROMTOOL_BIN:-}" ]]; then
  promtool_log="$cache/promtool-build.log"
fi
vault_log=""
if [[ -z "${VAULT_PLATFORM_VAULT_BIN:-}" && ( "$flavor" == all || "$flavor" == *vault* ) ]]; then
  vault_log="$cache/vault-build.log"
fi
helm_log="$cache/helm-build.log"
engine_log="$cache/pulumi-engine-build.log"
echo "building the test tools in the background (logs: ${promtool_log:+$promtool_log, }$helm_log, ${vault_log:+$vault_log, }$engine_log)"
# A failed build must not keep the next tool from being built: each build reports to its log and the
# tests that need it fail with that log's tail. ($1..$4 are the inner shell's arguments.)
# shellcheck disable=SC2016
setsid bash -c '
  if [[ -n "$1" ]]; then bash tools/promtool/build.sh >"$1" 2>&1 </dev/null || true; fi
  bash tools/helm/build.sh >"$2" 2>&1 </dev/null || true
  if [[ -n "$3" ]]; then bash tools/vault-server/build.sh >"$3" 2>&1 </dev/null || true; fi
  bash tools/pulumi-engine/build.sh >"$4" 2>&1 </dev/null || true
' build-tools "$promtool_log" "$helm_log" "$vault_log" "$engine_log" </dev/null &
build_pid=$!

"$py" -m pytest "$@"
