#!/usr/bin/env bash
# Runs the whole system on this machine without Docker, against PostgreSQL
# and Redis already running on localhost: a local webhook sink, the
# scheduler, the api and two workers, each line of output prefixed with the
# program's name. Ctrl-C (or SIGTERM) stops them in order - producers first,
# the sink last so that calls in flight still get their answer - and waits
# until every one has exited.
#
# Settings (environment): POSTGRES_URI, REDIS_HOST, REDIS_PORT,
# CRON_INTERVAL (default 120 s; try CRON_INTERVAL=5 make run), HTTP_PORT
# (8080), METRICS_PORT (9090; the second worker uses the next port),
# SINK_ADDR (127.0.0.1:9000). Any other variable internal/config reads is
# passed through as well.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
BIN=${BIN:-bin}
SINK_ADDR=${SINK_ADDR:-127.0.0.1:9000}

export POSTGRES_URI=${POSTGRES_URI:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
export REDIS_HOST=${REDIS_HOST:-127.0.0.1}
export REDIS_PORT=${REDIS_PORT:-6379}
export CRON_INTERVAL=${CRON_INTERVAL:-120}
export HTTP_PORT=${HTTP_PORT:-8080}
export APP_NAME=${APP_NAME:-Messaging Server (local)}
# Always the local sink: this script must never post to a real provider.
export WEBHOOK_URL="http://${SINK_ADDR}/"
metrics1=${METRICS_PORT:-9090}
metrics2=$((metrics1 + 1))

echo "run-local: building into ${BIN}/"
"$GO" build -trimpath -o "${BIN}/" ./cmd/...

# Job control puts every background program in its own process group, so a
# terminal's Ctrl-C (sent to the whole foreground group) reaches only this
# script, which then stops the programs in order.
set -m

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

names=() pids=() prefixers=()

# start NAME COMMAND...: runs COMMAND in the background with its stdout and
# stderr prefixed by NAME. The prefixer ignores INT and TERM so that it
# outlives its program and prints the shutdown lines too.
start() {
	local name=$1
	shift
	mkfifo "$tmp/$name"
	(trap '' INT TERM; exec awk -v p="$(printf '%-11s|' "$name")" '{ print p, $0; fflush() }' <"$tmp/$name") &
	prefixers+=("$!")
	"$@" >"$tmp/$name" 2>&1 &
	names+=("$name")
	pids+=("$!")
}

signalled=0
# shellcheck disable=SC2317 # called by the trap below
on_signal() { signalled=1; }
trap on_signal INT TERM

# reap PID: waits for PID and sets reaped to its exit status. A signal
# that interrupts the wait does not lose the status; a second Ctrl-C while
# stopping kills the program instead of waiting for its grace period.
reaped=0
reap() {
	local pid=$1
	while :; do
		signalled=0
		reaped=0
		wait "$pid" || reaped=$?
		if ((signalled)) && kill -0 "$pid" 2>/dev/null; then
			echo "run-local: interrupted again; killing $pid"
			kill -KILL "$pid" 2>/dev/null || true
			continue
		fi
		return 0
	done
}

# alive: true while every program runs.
alive() {
	local pid
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null || return 1
	done
}

echo "run-local: POSTGRES_URI=${POSTGRES_URI} REDIS=${REDIS_HOST}:${REDIS_PORT} CRON_INTERVAL=${CRON_INTERVAL}s WEBHOOK_URL=${WEBHOOK_URL}"
echo "run-local: api on http://127.0.0.1:${HTTP_PORT}, worker metrics on :${metrics1} and :${metrics2}; Ctrl-C stops everything"
start sink "$BIN/sink" -addr "$SINK_ADDR"
start scheduler "$BIN/scheduler"
start api "$BIN/api"
start worker-1 env METRICS_PORT="$metrics1" "$BIN/worker"
start worker-2 env METRICS_PORT="$metrics2" "$BIN/worker"

while ((!signalled)) && alive; do
	sleep 1 &
	wait $! 2>/dev/null || true
done
if ((signalled)); then
	echo "run-local: stopping"
else
	echo "run-local: a program exited on its own; stopping the others"
fi

# Producers first, the sink last: workers finish their calls against a live
# receiver.
status=0
stop() {
	local i
	for i in "$@"; do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
	done
	for i in "$@"; do
		reap "${pids[$i]}"
		echo "run-local: ${names[$i]} exited with status $reaped"
		if ((reaped != 0)); then status=1; fi
	done
}
stop 1 2 3 4
stop 0
for pid in "${prefixers[@]}"; do
	wait "$pid" 2>/dev/null || true
done
exit "$status"
