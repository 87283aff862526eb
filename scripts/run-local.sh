#!/usr/bin/env bash
# Runs the whole system on this machine without Docker, as a local demo,
# against PostgreSQL and Redis on localhost (`make run` starts throwaway
# ones first when nothing answers, see scripts/services.sh): a local webhook
# receiver (cmd/sink), the scheduler, the api and two workers, each line of
# output prefixed with the program's name. Once the api is ready it loads
# the sample rows and prints where the api, the console, Swagger UI,
# asynqmon and the metrics are. Ctrl-C (or SIGTERM) stops the programs in
# order - producers first, the receiver last so that calls in flight still
# get their answer - and waits until every one has exited. A program that
# exits on its own stops the others at once, and its last lines are shown.
#
# Settings (environment): POSTGRES_URI (default: the database postgres on
# localhost, as for every program), REDIS_HOST, REDIS_PORT,
# CRON_INTERVAL (default 5 s here, a demo; the programs' own default is
# 120 s), HTTP_PORT (8080), METRICS_PORT (9090; the second worker uses the
# next port), SINK_ADDR (127.0.0.1:9000). Any other variable
# internal/config reads is passed through as well.
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
# A demo shows a delivery within seconds: a short tick unless the caller
# chose one.
cron_default=
[ -n "${CRON_INTERVAL:-}" ] || cron_default=1
export CRON_INTERVAL=${CRON_INTERVAL:-5}
export HTTP_PORT=${HTTP_PORT:-8080}
export APP_NAME=${APP_NAME:-Messaging Server (local)}
# Always the local sink: this script must never post to a real provider.
export WEBHOOK_URL="http://${SINK_ADDR}/"
metrics1=${METRICS_PORT:-9090}
metrics2=$((metrics1 + 1))

echo "run-local: building the programs in cmd/ (api, worker, scheduler, sink) into ${BIN}/;"
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
	: >"$tmp/$name.log"
	(trap '' INT TERM; exec awk -v p="$(printf '%-11s|' "$name")" -v f="$tmp/$name.log" \
		'{ print p, $0; fflush(); print $0 >>f; fflush(f) }' <"$tmp/$name") &
	prefixers+=("$!")
	"$@" >"$tmp/$name" 2>&1 &
	names+=("$name")
	pids+=("$!")
}

signalled=0 early=0
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

# statuses[i] is program i's exit status once it was reaped.
statuses=()

# report_exited: names the programs that exited on its own, with their
# status, shows the first one's last lines, and says how to create a
# database that does not exist.
report_exited() {
	local i first=
	for i in "${!pids[@]}"; do
		kill -0 "${pids[$i]}" 2>/dev/null && continue
		reap "${pids[$i]}"
		statuses[i]=$reaped
		if [ -n "$first" ]; then
			echo "run-local: ${names[$i]} exited on its own too, with status $reaped"
			continue
		fi
		first=$i
		echo "run-local: ${names[$i]} exited on its own with status $reaped; its last lines:"
		tail -n 5 "$tmp/${names[$i]}.log" | sed 's/^/    /'
	done
	if [ -n "$first" ] && grep -qE 'database \\?"[^"\\]*\\?" does not exist' "$tmp/${names[$first]}.log"; then
		local db admin
		db=$(sed -E 's|^[^:]*://[^/]*/([^?]*).*|\1|' <<<"$POSTGRES_URI")
		admin=$(sed -E 's|^([^:]*://[^/]*)/[^?]*|\1/postgres|' <<<"$POSTGRES_URI")
		echo "run-local: the database does not exist; create it first:  psql '$admin' -c 'CREATE DATABASE \"$db\"'"
	fi
}

echo "run-local: POSTGRES_URI=${POSTGRES_URI} REDIS=${REDIS_HOST}:${REDIS_PORT} WEBHOOK_URL=${WEBHOOK_URL}"
if [ -n "$cron_default" ]; then
	echo "run-local: CRON_INTERVAL=${CRON_INTERVAL}s, a short tick for this local demo (the programs' default is 120 s; set CRON_INTERVAL to choose)"
else
	echo "run-local: CRON_INTERVAL=${CRON_INTERVAL}s"
fi
start sink "$BIN/sink" -addr "$SINK_ADDR"
start scheduler "$BIN/scheduler"
start api "$BIN/api"
start worker-1 env METRICS_PORT="$metrics1" "$BIN/worker"
start worker-2 env METRICS_PORT="$metrics2" "$BIN/worker"

# wait_ready: waits until the api answers /readyz (the schema is then
# migrated); false when a program exits first, on a signal, or after two
# minutes (the programs wait about a minute for a server that does not
# answer yet).
wait_ready() {
	local i
	for i in $(seq 1 240); do
		curl -fsS -o /dev/null "http://127.0.0.1:${HTTP_PORT}/readyz" 2>/dev/null && return 0
		((signalled)) && return 1
		alive || return 1
		sleep 0.5 &
		wait $! 2>/dev/null || true
	done
	echo "run-local: the api did not answer /readyz within 2 minutes; see its lines above"
	return 1
}

# load_samples: adds the README's six sample rows (init/02-sample-data.sql;
# existing ids are left alone), so its examples work here as they do under
# Docker.
load_samples() {
	if ! command -v psql >/dev/null; then
		echo "run-local: psql is missing; load the sample rows yourself: psql \"\$POSTGRES_URI\" -f init/02-sample-data.sql"
	elif psql -X -q -v ON_ERROR_STOP=1 "$POSTGRES_URI" -f init/02-sample-data.sql >/dev/null; then
		echo "run-local: sample rows from init/02-sample-data.sql are in (ids 3f1c2a7e-...-0a1b2c3d4e01 to ...e06)"
	else
		echo "run-local: could not load init/02-sample-data.sql with psql"
	fi
}

# show_urls: where to look, once everything answers.
show_urls() {
	local base="http://127.0.0.1:${HTTP_PORT}"
	echo "run-local: ready; Ctrl-C stops everything"
	echo "run-local:   api         $base/api/v1/scheduler"
	echo "run-local:   console     $base/console/"
	echo "run-local:   Swagger UI  $base/swagger/index.html"
	echo "run-local:   asynqmon    $base/monitoring/"
	echo "run-local:   metrics     $base/metrics (api), http://127.0.0.1:${metrics1}/metrics and :${metrics2}/metrics (workers)"
	echo "run-local:   receiver    ${WEBHOOK_URL} (content with fail-once: 500 once, then 202; with reject: 400)"
}

if ! command -v curl >/dev/null; then
	echo "run-local: curl is missing, so the api's readiness cannot be checked; load the sample rows yourself: psql \"\$POSTGRES_URI\" -f init/02-sample-data.sql"
	echo "run-local: api on http://127.0.0.1:${HTTP_PORT} (console /console/, Swagger UI /swagger/index.html, asynqmon /monitoring/)"
elif wait_ready; then
	load_samples
	show_urls
fi

while ((!signalled)) && alive; do
	sleep 1 &
	wait $! 2>/dev/null || true
done
if ((signalled)); then
	echo "run-local: stopping"
else
	report_exited
	echo "run-local: stopping the others"
	early=1
fi

# Producers first, the sink last: workers finish their calls against a live
# receiver.
status=0
stop() {
	local i
	for i in "$@"; do
		[ -n "${statuses[$i]:-}" ] || kill -TERM "${pids[$i]}" 2>/dev/null || true
	done
	for i in "$@"; do
		if [ -n "${statuses[$i]:-}" ]; then
			reaped=${statuses[$i]}
		else
			reap "${pids[$i]}"
			echo "run-local: ${names[$i]} exited with status $reaped"
		fi
		if ((reaped != 0)); then status=1; fi
	done
}
stop 1 2 3 4
stop 0
if ((early)); then status=1; fi
for pid in "${prefixers[@]}"; do
	wait "$pid" 2>/dev/null || true
done
exit "$status"
