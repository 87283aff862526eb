#!/usr/bin/env bash
# The newcomer path, as a test: clone this checkout, start the system with the
# README's `make run` (against a database of its own, as the README's
# POSTGRES_URI example shows), check what it prints (the demo interval and
# every address), run every line of the README's API tour against it and
# check each answer the README shows, stop it as Ctrl-C does and check that
# everything ended quietly with status 0; then start it against a database
# that does not exist and check that it stops at once and says how to
# create it.
#
# Needs PostgreSQL and Redis on localhost (as `make test` does), psql and
# curl. CI runs it after `make test` (.ci/run); run it by hand with
# `make newcomer`. It clones what is committed, and leaves nothing behind:
# the clone and the database are removed at the end.
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
# One block of four, so that no two of them can be the same port: the api,
# the receiver, and the two workers' metrics (the second worker takes the
# port after the first's).
first_port=$(free_port 4)
http_port=$first_port
sink_port=$((first_port + 1))
metrics_port=$((first_port + 2))
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
# send Ctrl-C's signal to the script alone, as a terminal would. It keeps
# make run's own CRON_INTERVAL, as a newcomer does, and takes a queue name
# of its own, since the Redis here is shared.
queue="newcomer_$$"
echo "newcomer: make run (HTTP_PORT=$http_port, SINK_ADDR=127.0.0.1:$sink_port, database $db, QUEUE_NAME=$queue)"
# Job control on while starting it gives it that group; without job control
# bash also starts background commands with SIGINT ignored, and an ignored
# signal cannot be trapped.
set -m
POSTGRES_URI="$uri" QUEUE_NAME="$queue" HTTP_PORT="$http_port" METRICS_PORT="$metrics_port" \
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
wait_for 600 "make run being ready" grep -q "run-local: ready" "$tmp/run.log"
for want in "run-local: building the programs" \
	"sample rows from init/02-sample-data.sql are in" \
	"CRON_INTERVAL=5s, a short tick for this local demo" \
	"console     http://127.0.0.1:${http_port}/console/" \
	"Swagger UI  http://127.0.0.1:${http_port}/swagger/index.html" \
	"asynqmon    http://127.0.0.1:${http_port}/monitoring/" \
	"metrics     http://127.0.0.1:${http_port}/metrics (api), http://127.0.0.1:${metrics_port}/metrics" \
	"receiver    http://127.0.0.1:${sink_port}/ (content with fail-once: 500 once, then 202; with reject: 400)"; do
	grep -qF -- "$want" "$tmp/run.log" || { cat "$tmp/run.log" >&2; fail "make run did not print: $want"; }
done

base="http://127.0.0.1:${http_port}"
sample=3f1c2a7e-1b2d-4c5e-9f60-0a1b2c3d4e01
sent() { curl -fsS "$base/api/v1/messages/$sample" | grep -q '"status":"sent"'; }
wait_for 60 "the first sample row being sent" sent

# The README's tour, line by line as a newcomer pastes it (continuation
# lines joined). Variable lines run as they are, then BASE is pointed at
# this system; an `until` line (the README's own wait) runs with a bound;
# each curl line runs with its status code captured, and its documented
# answer - a `# -> CODE BODY` comment at the end of the line or on the
# next line - is checked: the status code, and every "key":value pair the
# shown body holds (values with "..." or <placeholders> are left out).
block=$(awk '/^## A tour of the API/{in_tour=1} in_tour && /^```sh/{on=1; next} on && /^```/{exit} on' README.md)
[ -n "$block" ] || fail "no sh block under '## A tour of the API' in README.md"
checked=0 last_line= last_checked=1
# check_answer LINE EXPECT: the status code in $tmp/code and the body in
# $tmp/body against the README's `# -> ...` comment EXPECT.
check_answer() {
	local line=$1 expect=$2 want frag
	want=$(sed -nE 's/^.*# -> ([0-9]{3}).*$/\1/p' <<<"$expect")
	[ -n "$want" ] || fail "the README's answer has no status code: $expect"
	if [ "$(cat "$tmp/code")" != "$want" ]; then
		cat "$tmp/body" >&2
		fail "$line: got $(cat "$tmp/code"), want $want"
	fi
	while IFS= read -r frag; do
		[ -n "$frag" ] || continue
		grep -qF -- "$frag" "$tmp/body" || { cat "$tmp/body" >&2; echo >&2; fail "$line: the answer lacks $frag, which the README shows"; }
	done < <(grep -oE '"[A-Za-z_]+":("[^"<]*"|-?[0-9][0-9.]*|true|false|null)' <<<"${expect#*# -> }" | grep -vF '...' || true)
	echo "newcomer: $want  ${line%%#*}"
	checked=$((checked + 1))
}
API_KEY= # the README's AUTH line reads it; make run here sets none
while IFS= read -r line; do
	case "$line" in
	'# -> '*)
		[ -n "$last_line" ] && [ "$last_checked" = 0 ] || fail "the README shows an answer that follows no command: $line"
		check_answer "$last_line" "$line"
		last_checked=1
		continue
		;;
	'' | '#'*) continue ;;
	esac
	[ "$last_checked" = 1 ] || fail "the README shows no answer for: $last_line"
	case "$line" in
	curl\ *)
		cmd=${line%%# -> *}
		cmd="${cmd/curl -s/curl -sS -o $tmp/body -w %\{http_code\}}"
		eval "$cmd" >"$tmp/code" || fail "curl failed: $line"
		last_line=$line last_checked=0
		if [[ $line == *'# -> '* ]]; then
			check_answer "$line" "# -> ${line#*# -> }"
			last_checked=1
		fi
		;;
	until\ *)
		export BASE
		timeout 120 bash -c "$line" || fail "the README's wait did not end within 120 s: $line"
		;;
	*=*)
		eval "$line" || fail "the README's line failed: $line"
		BASE=$base
		;;
	*) fail "the README's tour has a line this test cannot run: $line" ;;
	esac
done < <(printf '%s\n' "$block" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta')
[ "$last_checked" = 1 ] || fail "the README shows no answer for: $last_line"
[ "$checked" -ge 20 ] || fail "only $checked commands of the README's tour were checked"
[ -n "$REMOTE" ] || fail "the README's REMOTE line found no remote_message_id for otp-4711"

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
if grep -qE '^make(\[[0-9]+\])?: \*\*\*|Interrupt' "$tmp/run.log"; then
	tail -n 30 "$tmp/run.log" >&2
	fail "make run printed an error line on Ctrl-C"
fi
for p in sink scheduler api worker-1 worker-2; do
	grep -q "run-local: $p exited with status 0" "$tmp/run.log" || { tail -n 30 "$tmp/run.log" >&2; fail "$p did not exit 0"; }
done

# A database that does not exist: make run stops at the first program that
# exits, shows its last lines and the command that creates the database.
missing="${db}_missing"
echo "newcomer: make run against the database $missing, which does not exist"
started_at=$SECONDS
status=0
POSTGRES_URI="postgres://postgres@127.0.0.1:5432/${missing}?sslmode=disable" QUEUE_NAME="$queue" \
	HTTP_PORT="$http_port" METRICS_PORT="$metrics_port" SINK_ADDR="127.0.0.1:$sink_port" \
	timeout 120 make run >"$tmp/missing.log" 2>&1 </dev/null || status=$?
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || { cat "$tmp/missing.log" >&2; fail "make run against a missing database ended with status $status"; }
grep -q "exited on its own with status 1; its last lines:" "$tmp/missing.log" &&
	grep -q "does not exist" "$tmp/missing.log" &&
	grep -qF "CREATE DATABASE \"$missing\"" "$tmp/missing.log" ||
	{ cat "$tmp/missing.log" >&2; fail "make run did not show the missing database and how to create it"; }
echo "newcomer: ok: stopped after $((SECONDS - started_at)) s with the program's last lines and the CREATE DATABASE command"

echo "newcomer: ok: $checked README commands answered as documented; make run stopped cleanly with status 0"
