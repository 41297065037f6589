#!/usr/bin/env bash
# The test suite, as `make test` runs it, while the test tools build from Go modules in one
# background job, one after the other: (unless FLAVOR=openbao) the HashiCorp Vault server for the
# integration tests, promtool (for the alert rule tests), helm and the Vault chart (for the chart
# tests), then the Pulumi CLI for the engine tests. Each test that needs a tool waits for its build
# (through its build script's lock), so a cold run costs the longer of the builds and the tests
# before them, not their sum.
# One build after the other, not all at once: on 2 cores parallel builds only slow each other, and
# each is needed in that order.
#
# With both servers (FLAVOR=all, the default) the suite runs as two pytest processes side by side:
# everything but the Vault-flavour tests in the foreground (unit, OpenBao integration, promtool,
# chart, OpenBao engine), and the Vault-flavour integration and engine tests beside it (marker
# `flavored`), their output shown when they end. Most of an integration test is waiting for a server
# or a subprocess, so the two halves share the two cores instead of taking turns. PYTEST_ARGS with
# their own -m selection run as one process, as before.
#
#   tools/run-tests.sh [pytest args...]     PY=<python>  FLAVOR=openbao|vault|all
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PY:-venv/bin/python}"
flavor="${FLAVOR:-all}"

build_pid=""
beside_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [[ -n "$build_pid" ]] && kill -0 "$build_pid" 2>/dev/null; then
    # The builds run in their own process group (setsid): stop go and its compilers too.
    kill -TERM -- "-$build_pid" 2>/dev/null || true
  fi
  if [[ -n "$beside_pid" ]] && kill -0 "$beside_pid" 2>/dev/null; then
    kill -TERM -- "-$beside_pid" 2>/dev/null || true
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
  if [[ -n "$3" ]]; then bash tools/vault-server/build.sh >"$3" 2>&1 </dev/null || true; fi
  if [[ -n "$1" ]]; then bash tools/promtool/build.sh >"$1" 2>&1 </dev/null || true; fi
  bash tools/helm/build.sh >"$2" 2>&1 </dev/null || true
  bash tools/pulumi-engine/build.sh >"$4" 2>&1 </dev/null || true
' build-tools "$promtool_log" "$helm_log" "$vault_log" "$engine_log" </dev/null &
build_pid=$!

split=1
[[ "$flavor" == all ]] || split=0
for arg in "$@"; do
  case $arg in -m|-m*|--markexpr|--markexpr=*) split=0 ;; esac
done
if [[ "$split" == 0 ]]; then
  "$py" -m pytest "$@"
  exit
fi

beside_log="$cache/tests-vault-flavour.log"
started=$SECONDS
echo "the Vault-flavour tests run beside these, in a second pytest (output when they end: $beside_log)"
FLAVOR=vault setsid "$py" -m pytest -m flavored -p no:cacheprovider "$@" >"$beside_log" 2>&1 </dev/null &
beside_pid=$!
status=0
FLAVOR=openbao "$py" -m pytest "$@" || status=$?
beside=0
wait "$beside_pid" || beside=$?
beside_pid=""
echo
echo "==================== the Vault-flavour tests (FLAVOR=vault, marker flavored) ===================="
cat "$beside_log"
# 5: nothing collected, when the arguments select no Vault-flavour test (e.g. a unit test file).
if [[ "$beside" == 5 ]]; then beside=0; fi
if [[ "$status" == 0 && "$beside" != 0 ]]; then status=$beside; fi
echo "make test: both halves done in $((SECONDS - started)) s (benchmarks/make_test.py reads these figures)"
exit "$status"
