#!/usr/bin/env bash
# Brings up the PostgreSQL and Redis that `make run` and `make test` need
# when nothing answers on their addresses, from the binaries installed on
# this machine, and stops them again afterwards.
#
#   scripts/services.sh up run|test             start what does not answer
#   scripts/services.sh down                    stop what `up` started
#   scripts/services.sh with run|test CMD...    up, CMD, down (the Makefile's form)
#
# The addresses are the ones the command will use. For `run`, the programs'
# POSTGRES_URI (default postgres://postgres@localhost:5432/postgres) and
# REDIS_HOST:REDIS_PORT (default 127.0.0.1:6379); for `test`, the tests'
# TEST_POSTGRES_URI (default postgres://postgres@127.0.0.1:5432/test) and
# TEST_REDIS_ADDR (default 127.0.0.1:6379). Only a server on this machine
# (localhost, 127.0.0.1 or ::1) is ever started, and one that answers is
# left alone: where both run, as in CI, `with` simply runs CMD.
#
# A started PostgreSQL keeps its data in .local/postgres under the checkout
# (git ignores .local/), so initdb runs once and the next run starts at
# once; it trusts local connections and gets the URI's user and database.
# A started Redis keeps nothing on disk. Logs: .local/postgres.log and
# .local/redis.log. When a server is needed and its binaries are missing,
# the script prints the one command that installs them and exits 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.local"
started="$state/started"

say() { echo "services: $*" >&2; }

# parse_pg URI: sets pg_host, pg_port, pg_user and pg_db from a postgres://
# URI (defaults: localhost, 5432, postgres, postgres).
parse_pg() {
	local re='^postgres(ql)?://(([^:@/]*)(:[^@/]*)?@)?(\[[^]]*\]|[^:/?]*)(:([0-9]+))?(/([^?]*))?'
	if [[ $1 =~ $re ]]; then
		pg_user=${BASH_REMATCH[3]:-postgres}
		pg_host=${BASH_REMATCH[5]:-localhost}
		pg_port=${BASH_REMATCH[7]:-5432}
		pg_db=${BASH_REMATCH[9]:-$pg_user}
	else
		pg_user=postgres pg_host=unparsable pg_port=5432 pg_db=postgres
	fi
}

is_local() { case "$1" in localhost | 127.0.0.1 | ::1 | '[::1]') return 0 ;; esac; return 1; }

# addresses PROFILE: the PostgreSQL URI parts and the Redis host and port
# the command of PROFILE will use.
addresses() {
	case "$1" in
	run)
		parse_pg "${POSTGRES_URI:-postgres://postgres@localhost:5432/postgres?sslmode=disable}"
		redis_host=${REDIS_HOST:-127.0.0.1}
		redis_port=${REDIS_PORT:-6379}
		;;
	test)
		parse_pg "${TEST_POSTGRES_URI:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
		local addr=${TEST_REDIS_ADDR:-127.0.0.1:6379}
		redis_host=${addr%:*}
		redis_port=${addr##*:}
		;;
	*)
		say "unknown profile '$1': want run or test"
		exit 2
		;;
	esac
}

# tcp_open HOST PORT: something accepts connections there.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

pg_answers() {
	if command -v pg_isready >/dev/null; then
		# 0: accepting, 1: starting or shutting down; either way a server is there.
		local rc=0
		pg_isready -q -h "$pg_host" -p "$pg_port" -t 3 || rc=$?
		[ "$rc" -le 1 ]
	else
		tcp_open "$pg_host" "$pg_port"
	fi
}

redis_answers() {
	local reply
	reply=$(
		exec 2>/dev/null
		exec 3<>"/dev/tcp/$redis_host/$redis_port" || exit 1
		printf 'PING\r\n' >&3
		read -r -t 3 line <&3 && printf '%s' "$line"
	) 2>/dev/null || return 1
	case "$reply" in +PONG* | -NOAUTH* | -ERR*) return 0 ;; esac
	return 1
}

# pg_bindir: the folder of the newest installed initdb, or nothing.
pg_bindir() {
	local d
	if command -v initdb >/dev/null; then
		d=$(dirname "$(readlink -f "$(command -v initdb)")")
		if [ -x "$d/pg_ctl" ] && [ -x "$d/createdb" ]; then
			echo "$d"
			return
		fi
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin /usr/local/opt/postgresql*/bin /opt/homebrew/opt/postgresql*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/createdb" ]; then
			echo "$d"
			return
		fi
	done
}

# install_command PACKAGES...: the one command that installs the servers
# named (postgresql, redis) with this machine's package manager.
install_command() {
	local want=("$@") pkgs=()
	if command -v apt-get >/dev/null; then
		for p in "${want[@]}"; do [ "$p" = redis ] && pkgs+=(redis-server) || pkgs+=(postgresql); done
		echo "sudo apt-get install -y ${pkgs[*]}"
	elif command -v brew >/dev/null; then
		for p in "${want[@]}"; do [ "$p" = redis ] && pkgs+=(redis) || pkgs+=(postgresql@15); done
		echo "brew install ${pkgs[*]}"
	elif command -v dnf >/dev/null; then
		for p in "${want[@]}"; do [ "$p" = redis ] && pkgs+=(redis) || pkgs+=(postgresql-server); done
		echo "sudo dnf install -y ${pkgs[*]}"
	else
		echo "install ${want[*]} with your system's package manager"
	fi
}

# as_pg CMD...: runs CMD as a user initdb accepts (it refuses root; as root
# the system's postgres user runs it).
as_pg() {
	if [ "$(id -u)" -ne 0 ]; then
		"$@"
	else
		runuser -u postgres -- "$@"
	fi
}

wait_until() { # wait_until SECONDS CHECK
	local deadline=$((SECONDS + $1))
	until "$2"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

start_postgres() {
	local bin=$1 data="$state/postgres" log="$state/postgres.log"
	mkdir -p "$state"
	if [ "$(id -u)" -eq 0 ]; then
		if ! id postgres >/dev/null 2>&1 || ! command -v runuser >/dev/null; then
			say "initdb does not run as root, and there is no postgres user to run it as; run this as a normal user"
			return 1
		fi
		mkdir -p "$data"
		touch "$log"
		chown postgres "$data" "$log"
		chmod 700 "$data"
		if ! runuser -u postgres -- test -w "$data"; then
			say "the postgres user cannot write $data (a folder above it is closed to it); run this as a normal user"
			return 1
		fi
	fi
	if [ ! -f "$data/PG_VERSION" ]; then
		say "creating a throwaway PostgreSQL cluster in .local/postgres (once; it is kept for the next run)"
		as_pg "$bin/initdb" -D "$data" -U "$pg_user" --auth=trust -E UTF8 --no-locale >"$state/initdb.log" 2>&1 ||
			{ tail -n 20 "$state/initdb.log" >&2; return 1; }
	fi
	say "PostgreSQL does not answer on $pg_host:$pg_port; starting $bin/postgres there (log: .local/postgres.log)"
	if ! as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
		-o "-p $pg_port -c listen_addresses=localhost -c unix_socket_directories=" start >/dev/null; then
		tail -n 20 "$log" >&2
		return 1
	fi
	echo "postgres $bin" >>"$started"
	local out
	if ! out=$("$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U "$pg_user" "$pg_db" 2>&1); then
		case "$out" in
		*"already exists"*) ;;
		*)
			echo "$out" >&2
			return 1
			;;
		esac
	fi
}

start_redis() {
	mkdir -p "$state"
	say "Redis does not answer on $redis_host:$redis_port; starting redis-server there (nothing kept on disk; log: .local/redis.log)"
	rm -f "$state/redis.pid"
	redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
		--dir "$state" --pidfile "$state/redis.pid" --logfile "$state/redis.log" >/dev/null
	if ! wait_until 10 redis_answers; then
		tail -n 20 "$state/redis.log" >&2
		return 1
	fi
	echo "redis" >>"$started"
}

up() {
	addresses "$1"
	local need_pg=0 need_redis=0 missing=() silent=() bin=
	if ! pg_answers; then
		if ! is_local "$pg_host"; then
			say "PostgreSQL does not answer on $pg_host:$pg_port, which is not this machine; start it there"
			return 1
		fi
		need_pg=1
		silent+=("PostgreSQL on $pg_host:$pg_port")
		bin=$(pg_bindir)
		[ -n "$bin" ] || missing+=(postgresql)
	fi
	if ! redis_answers; then
		if ! is_local "$redis_host"; then
			say "Redis does not answer on $redis_host:$redis_port, which is not this machine; start it there"
			return 1
		fi
		need_redis=1
		silent+=("Redis on $redis_host:$redis_port")
		command -v redis-server >/dev/null || missing+=(redis)
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		local IFS=,
		say "nothing answers (${silent[*]}), and ${missing[*]} is not installed here; install it with:"
		echo "    $(install_command "${missing[@]}")" >&2
		return 1
	fi
	if ((need_pg)); then start_postgres "$bin" || { down; return 1; }; fi
	if ((need_redis)); then start_redis || { down; return 1; }; fi
	return 0
}

down() {
	[ -f "$started" ] || return 0
	local what bin
	while read -r what bin; do
		case "$what" in
		postgres)
			say "stopping the throwaway PostgreSQL (its data stays in .local/postgres)"
			as_pg "$bin/pg_ctl" -D "$state/postgres" -m fast -w -t 60 stop >/dev/null || true
			;;
		redis)
			say "stopping the throwaway Redis"
			if [ -f "$state/redis.pid" ]; then
				local pid
				pid=$(cat "$state/redis.pid")
				kill -TERM "$pid" 2>/dev/null || true
				for _ in $(seq 1 50); do
					kill -0 "$pid" 2>/dev/null || break
					sleep 0.1
				done
			fi
			;;
		esac
	done <"$started"
	rm -f "$started"
}

# with PROFILE CMD...: CMD with the servers it needs. When both answer
# already, CMD simply replaces this script. Otherwise the servers started
# here stop when CMD ends, however it ends; a Ctrl-C reaches CMD itself
# (same process group), and this script waits for it first.
with() {
	local profile=$1
	shift
	[ -f "$started" ] && down # a run that was killed left them behind
	up "$profile" || exit 1
	[ -f "$started" ] || exec "$@"
	trap down EXIT
	trap ':' INT TERM
	local status=0
	"$@" || status=$?
	exit "$status"
}

case "${1:-}" in
up)
	[ $# -eq 2 ] || { say "usage: $0 up run|test"; exit 2; }
	up "$2"
	;;
down) down ;;
with)
	[ $# -ge 3 ] || { say "usage: $0 with run|test COMMAND..."; exit 2; }
	shift
	with "$@"
	;;
*)
	say "usage: $0 up run|test | down | with run|test COMMAND..."
	exit 2
	;;
esac
