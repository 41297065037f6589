#!/usr/bin/env bash
# The test suite, as `make test` runs it: one pytest whose tests run in several worker processes at
# once (pytest-xdist), while the test tools build from Go modules in one background job, one after
# the other: (unless FLAVOR=openbao) the HashiCorp Vault server, the Pulumi CLI (for the engine
# tests), helm and the Vault chart (for the chart tests), then promtool (for the alert rule tests).
# Each test that needs a tool waits for its build (through its build script's lock), and the tests
# are handed out in the order their tools arrive (tests/conftest.py reads which were current when
# the run started from VAULT_PLATFORM_TOOLS_READY), so a cold run costs the builds and the tests
# after the last of them, not the sum of builds and tests.
# One build after the other, not all at once: on 2 cores parallel builds only slow each other. Many
# test workers, though: an integration test mostly waits for a server, a Raft election or a
# subprocess, so one pytest process leaves the machine four-fifths idle.
#
#   tools/run-tests.sh [pytest args...]   PY=<python>  FLAVOR=openbao|vault|all  TEST_WORKERS=<n>
#                                         PREPARE=<command>
#
# TEST_WORKERS (default 6) is how many workers; 0 runs the tests in the pytest process itself, as do
# pytest arguments that choose for themselves (-n, --numprocesses, --dist, --maxschedchunk,
# -p no:xdist). PREPARE is a command run after the builds have started and before pytest (make's
# venv install): a fresh machine's builds then overlap it too.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PY:-venv/bin/python}"
flavor="${FLAVOR:-all}"

build_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
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
# Which tools are current now (their stamp holds the key their build script computes): the tests
# that need only those go first. Every worker must sort the same way, so this is decided once, here.
ready=()
tool_ready() { # <script> <stamp name>
  local key
  key="$(VAULT_PLATFORM_PRINT_KEY=1 bash "$1" 2>/dev/null | sed -n "s/^$2 //p")" || return 1
  [[ -n "$key" && -f "$cache/bin/$2.stamp" && "$(cat "$cache/bin/$2.stamp")" == "$key" ]]
}
if [[ -z "$vault_log" ]] || tool_ready tools/vault-server/build.sh vault; then ready+=(vault); fi
if tool_ready tools/pulumi-engine/build.sh pulumi; then ready+=(pulumi); fi
if tool_ready tools/helm/build.sh helm; then ready+=(helm); fi
if [[ -z "$promtool_log" ]] || tool_ready tools/promtool/build.sh promtool; then ready+=(promtool); fi
export VAULT_PLATFORM_TOOLS_READY="${ready[*]}"

echo "building the test tools in the background (current: ${ready[*]:-none}; logs: ${vault_log:+$vault_log, }$engine_log, $helm_log${promtool_log:+, $promtool_log})"
# A failed build must not keep the next tool from being built: each build reports to its log and the
# tests that need it fail with that log's tail. ($1..$4 are the inner shell's arguments.)
# shellcheck disable=SC2016
setsid bash -c '
  if [[ -n "$3" ]]; then bash tools/vault-server/build.sh >"$3" 2>&1 </dev/null || true; fi
  bash tools/pulumi-engine/build.sh >"$4" 2>&1 </dev/null || true
  bash tools/helm/build.sh >"$2" 2>&1 </dev/null || true
  if [[ -n "$1" ]]; then bash tools/promtool/build.sh >"$1" 2>&1 </dev/null || true; fi
' build-tools "$promtool_log" "$helm_log" "$vault_log" "$engine_log" </dev/null &
build_pid=$!

workers="${TEST_WORKERS:-6}"
[[ "$workers" =~ ^[0-9]+$ ]] || { echo "TEST_WORKERS=$workers: give a number of worker processes (0: none)" >&2; exit 2; }
for arg in "$@"; do
  case $arg in -n|-n*|--numprocesses|--numprocesses=*|--dist|--dist=*|--maxschedchunk*|no:xdist) workers=0 ;; esac
done
spread=()
how="in one process"
# At most two tests sent to a worker at a time: xdist otherwise hands a worker that just finished a
# quick test a run of consecutive tests to go on with, and a run of the long engine tests on one
# worker kept the others idle for minutes at the end.
if [[ "$workers" -gt 0 ]]; then spread=(-n "$workers" --maxschedchunk 2); how="in $workers workers"; fi

if [[ -n "${PREPARE:-}" ]]; then
  bash -c "$PREPARE"
fi

started=$SECONDS
status=0
"$py" -m pytest "${spread[@]}" "$@" || status=$?
# SECONDS counts from this script's start: the whole run, PREPARE (the venv install) included.
echo "make test: pytest done in $((SECONDS - started)) s, $how; $SECONDS s in all (benchmarks/make_test.py reads these figures)"
exit "$status"
