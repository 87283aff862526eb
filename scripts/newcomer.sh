#!/usr/bin/env bash
# The newcomer path, as a test: clone this checkout, start the system with the
# README's `make run` (against a database of its own, as the README's
# POSTGRES_URI example shows), run every curl line of the README's API
# example block against it, check each answer, then stop it as Ctrl-C does
# and check that everything ended quietly with status 0.
#
# Needs PostgreSQL and Redis on localhost (as `make test` does), psql and
# curl. CI runs it after `make test` (.ci/run); run it by hand with
# `make newcomer`. It leaves nothing behind: the clone and the database are
# removed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "newcomer: FAIL: $*" >&2; exit 1; }

pg_admin=${TEST_POSTGRES_URI:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
db="newcomer_$$_$RANDOM"
tmp=$(mktemp -d)
# free_port [N]: the first of N consecutive ports (default 1) that can be
# bound now. They are taken below the kernel's ephemeral range (32768 up
# here), because the programs' own outbound connections (PostgreSQL, Redis)
# take local ports from that range and once took the second worker's
# metrics port (METRICS_PORT + 1) between this check and its bind.
free_port() {
	python3 - "${1:-1}" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(1000):
    p = random.randrange(20000, 32000 - n)
    socks = []
    try:
        for q in range(p, p + n):
            s = socket.socket()
            s.bind(("127.0.0.1", q))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(p)
    sys.exit(0)
sys.exit("no free ports")
PY
}
http_port=$(free_port)
sink_port=$(free_port)
metrics_port=$(free_port 2) # the second worker takes the next one
uri="postgres://postgres@127.0.0.1:5432/${db}?sslmode=disable"

make_pid=
cleanup() {
	if [ -n "$make_pid" ] && kill -0 "$make_pid" 2>/dev/null; then
		kill -KILL -- "-$make_pid" 2>/dev/null || true
	fi
	# The programs run in process groups of their own: find them by the
	# clone they run in.
	local p
	for p in $(pgrep -f '^bin/(api|worker|scheduler|sink)' || true); do
		[ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$tmp/repo" ] && kill -KILL "$p" 2>/dev/null
	done
	psql -X -q "$pg_admin" -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "newcomer: cloning into $tmp/repo"
git clone -q "$root" "$tmp/repo"
cd "$tmp/repo"
psql -X -q "$pg_admin" -c "CREATE DATABASE ${db}" >/dev/null

# The README's command, in a process group of its own so that the test can
# send Ctrl-C's signal to the script alone, as a terminal would.
echo "newcomer: make run (HTTP_PORT=$http_port, SINK_ADDR=127.0.0.1:$sink_port, database $db)"
# Job control on while starting it gives it that group; without job control
# bash also starts background commands with SIGINT ignored, and an ignored
# signal cannot be trapped.
set -m
POSTGRES_URI="$uri" CRON_INTERVAL=2 HTTP_PORT="$http_port" METRICS_PORT="$metrics_port" \
	SINK_ADDR="127.0.0.1:$sink_port" make run >"$tmp/run.log" 2>&1 </dev/null &
make_pid=$!
set +m

wait_for() { # wait_for SECONDS WHAT COMMAND...
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			tail -n 40 "$tmp/run.log" >&2
			fail "$what did not happen within ${secs}s"
		fi
		kill -0 "$make_pid" 2>/dev/null || { tail -n 40 "$tmp/run.log" >&2; fail "make run exited early"; }
		sleep 0.5
	done
}
# The first build of a fresh clone can take minutes on a busy machine.
wait_for 600 "loading the sample rows" grep -q "sample rows from init/02-sample-data.sql are in" "$tmp/run.log"
grep -q "run-local: building the programs" "$tmp/run.log" || fail "make run did not say what it builds"

base="http://127.0.0.1:${http_port}"
sample=3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e01
sent() { curl -fsS "$base/api/v1/messages/$sample" | grep -q '"status":"sent"'; }
wait_for 60 "the first sample row being sent" sent

# Every curl line of the README's example block, with the answer the README
# documents for it on this system (the sample row is sent, so retrying it is
# the documented 409 not_failed).
expect_for() {
	case "$1" in
	*'/healthz'*) echo 200 ;;
	*'/readyz'*) echo 200 ;;
	*'/api/v1/scheduler/stop'*) echo 200 ;;
	*'/api/v1/scheduler/start'*) echo 200 ;;
	*'/api/v1/scheduler'*) echo 200 ;;
	*'/retry'*) echo 409 ;;
	*'/api/v1/messages/sent'*) echo 200 ;;
	*"/api/v1/messages/$sample"*) echo 200 ;;
	*'-d '*'/api/v1/messages'*) echo 201 ;;
	*'/api/v1/stats/counts'*) echo 200 ;;
	*'/api/v1/stats/minutes'*) echo 200 ;;
	*'/metrics'*) echo 200 ;;
	*) echo unknown ;;
	esac
}
block=$(awk '/^## HTTP API/{in_api=1} in_api && /^```sh/{on=1; next} on && /^```/{exit} on' README.md)
[ -n "$block" ] || fail "no sh block under '## HTTP API' in README.md"
# Join continuation lines, drop the variable line, run each curl with the
# status code printed after the body.
lines=$(printf '%s\n' "$block" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -E '^curl ' || true)
[ -n "$lines" ] || fail "no curl lines in the README's API block"
checked=0
# run_curl LINE CMD WANT: run CMD, the README's curl LINE made runnable
# here, with the status code printed after the body, and check the code.
run_curl() {
	local line=$1 cmd=$2 want=$3 got
	cmd="${cmd/curl -s/curl -sS -o $tmp/body -w %\{http_code\}}"
	got=$(eval "$cmd") || fail "curl failed: $line"
	if [ "$got" != "$want" ]; then
		cat "$tmp/body" >&2
		fail "$line: got $got, want $want"
	fi
	echo "newcomer: $got  ${line%%#*}"
	checked=$((checked + 1))
}
while IFS= read -r line; do
	want=$(expect_for "$line")
	[ "$want" != unknown ] || fail "the README shows a curl line this test does not know; add its answer to expect_for: $line"
	cmd=${line%%#*}
	cmd=${cmd//\$BASE/$base}
	cmd=${cmd//\"\$AUTH\"/\"X-Unused: 1\"}
	cmd=${cmd//\$AUTH/X-Unused:1}
	run_curl "$line" "$cmd" "$want"
done <<<"$lines"

# The README's lifecycle block, in order, as a newcomer pastes it: its
# variable lines are run too (BASE and AUTH then pointed at this system),
# and before the lines about otp-4711's calls it waits for otp-4711 to be
# sent, as the block's comment says.
lifecycle_expect() {
	case "$1" in
	*'/receipts'*) echo 200 ;;
	*'/cancel'*) echo 200 ;;
	*'/attempts'*) echo 200 ;;
	*'/api/v1/messages/batch'*) echo 201 ;;
	*'/api/v1/messages?'*) echo 200 ;;
	*'/api/v1/messages -d '* | *'/api/v1/messages '*'-d '*) echo 201 ;;
	*) echo unknown ;;
	esac
}
block=$(awk '/^## Message lifecycle/{in_lc=1} in_lc && /^```sh/{on=1; next} on && /^```/{exit} on' README.md)
[ -n "$block" ] || fail "no sh block under '## Message lifecycle' in README.md"
otp_sent() { curl -fsS "$base/api/v1/messages/otp-4711" | grep -q '"status":"sent"'; }
waited=
API_KEY= # the README's AUTH line reads it; make run here sets none
while IFS= read -r line; do
	case "$line" in
	'' | '#'*) continue ;;
	*otp-4711/attempts* | REMOTE=*)
		if [ -z "$waited" ]; then
			wait_for 60 "otp-4711 being sent" otp_sent
			waited=1
		fi
		;;
	esac
	case "$line" in
	curl\ *)
		want=$(lifecycle_expect "$line")
		[ "$want" != unknown ] || fail "the README's lifecycle block shows a curl line this test does not know; add its answer to lifecycle_expect: $line"
		run_curl "$line" "$line" "$want"
		;;
	*=*)
		eval "$line" || fail "the README's line failed: $line"
		BASE=$base AUTH="X-Unused: 1"
		;;
	*) fail "the README's lifecycle block has a line this test cannot run: $line" ;;
	esac
done < <(printf '%s\n' "$block" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta')
[ -n "$REMOTE" ] || fail "the README's REMOTE line found no remote_message_id for otp-4711"
grep -q '"delivery_status":"delivered"' "$tmp/body" || { cat "$tmp/body" >&2; fail "the receipt did not mark otp-4711 delivered"; }

# Ctrl-C: the signal reaches the script (make's child), which stops
# everything; make then ends with status 0 and without an "Interrupt" line.
# The bash that runs the script, not the sh -c that make starts it with
# nor scripts/services.sh, which names the script among its arguments.
script_pid=$(pgrep -g "$make_pid" -f '^(/usr/bin/|/bin/)?bash [^ ]*scripts/run-local.sh' | head -n 1)
[ -n "$script_pid" ] || fail "run-local.sh is not running under make"
kill -INT "$script_pid"
status=0
for _ in $(seq 1 120); do
	kill -0 "$make_pid" 2>/dev/null || break
	sleep 0.5
done
kill -0 "$make_pid" 2>/dev/null && fail "make run did not stop within 60 s of Ctrl-C"
wait "$make_pid" || status=$?
make_pid=
[ "$status" -eq 0 ] || { tail -n 30 "$tmp/run.log" >&2; fail "make run ended with status $status"; }
if grep -qE 'Interrupt|\*\*\*' "$tmp/run.log"; then
	tail -n 30 "$tmp/run.log" >&2
	fail "make run printed an error line on Ctrl-C"
fi
for p in sink scheduler api worker-1 worker-2; do
	grep -q "run-local: $p exited with status 0" "$tmp/run.log" || { tail -n 30 "$tmp/run.log" >&2; fail "$p did not exit 0"; }
done
echo "newcomer: ok: $checked README commands answered as documented; make run stopped cleanly with status 0"
