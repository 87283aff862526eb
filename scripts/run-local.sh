#!/usr/bin/env bash
# Runs the whole system on this machine without Docker, against PostgreSQL
# and Redis already running on localhost: a local webhook sink, the
# scheduler, the api and two workers, each line of output prefixed with the
# program's name. Ctrl-C (or SIGTERM) stops them in order - producers first,
# the sink last so that calls in flight still get their answer - and waits
# until every one has exited.
#
# Settings (environment): POSTGRES_URI (default: the database postgres on
# localhost, as for every program), REDIS_HOST, REDIS_PORT,
# CRON_INTERVAL (default 120 s; try CRON_INTERVAL=5 make run), HTTP_PORT
# (8080), METRICS_PORT (9090; the second worker uses the next port),
# SINK_ADDR (127.0.0.1:9000). Any other variable internal/config reads is
# passed through as well.
set -euo pipefail
cd "$(dirname "$0")/.."

# From a terminal, run the rest as a foreground job of its own: the
# terminal's Ctrl-C then reaches this script alone, not make, so a clean
# stop ends quietly with status 0 instead of make's "Interrupt" line.
if [ -z "${RUN_LOCAL_FOREGROUND:-}" ] && [ -t 0 ]; then
	set -m
	RUN_LOCAL_FOREGROUND=1 "$0" "$@"
	exit $?
fi

GO=${GO:-go}
BIN=${BIN:-bin}
SINK_ADDR=${SINK_ADDR:-127.0.0.1:9000}

# The same default as internal/config's, so a row inserted into the
# database the README names is the one that gets sent.
export POSTGRES_URI=${POSTGRES_URI:-postgres://postgres@localhost:5432/postgres?sslmode=disable}
export REDIS_HOST=${REDIS_HOST:-127.0.0.1}
export REDIS_PORT=${REDIS_PORT:-6379}
export CRON_INTERVAL=${CRON_INTERVAL:-120}
export HTTP_PORT=${HTTP_PORT:-8080}
export APP_NAME=${APP_NAME:-Messaging Server (local)}
# Always the local sink: this script must never post to a real provider.
export WEBHOOK_URL="http://${SINK_ADDR}/"
metrics1=${METRICS_PORT:-9090}
metrics2=$((metrics1 + 1))

echo "run-local: building the programs in cmd/ (api, worker, scheduler, sink, bench) into ${BIN}/;"
echo "run-local: the first build compiles every dependency and takes a minute or two"
"$GO" build -trimpath -o "${BIN}/" ./cmd/...
echo "run-local: built"

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

# load_samples: once the api answers /readyz (the schema is migrated), add
# the README's six sample rows (init/02-sample-data.sql; existing ids are
# left alone), so its examples work here as they do under Docker.
load_samples() {
	local i
	for i in $(seq 1 60); do
		if curl -fsS -o /dev/null "http://127.0.0.1:${HTTP_PORT}/readyz" 2>/dev/null; then
			if psql -X -q -v ON_ERROR_STOP=1 "$POSTGRES_URI" -f init/02-sample-data.sql >/dev/null; then
				echo "run-local: sample rows from init/02-sample-data.sql are in (ids 3f1c2a7e-...-0a1b2c3d4e01 to ...e06)"
			else
				echo "run-local: could not load init/02-sample-data.sql with psql"
			fi
			return 0
		fi
		((signalled)) && return 0
		sleep 0.5 &
		wait $! 2>/dev/null || true
	done
	echo "run-local: the api did not become ready within 30 s; sample rows not loaded"
}
if command -v psql >/dev/null && command -v curl >/dev/null; then
	load_samples
else
	echo "run-local: psql or curl is missing; load the sample rows yourself: psql \"\$POSTGRES_URI\" -f init/02-sample-data.sql"
fi

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
