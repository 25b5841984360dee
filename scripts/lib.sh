# scripts/lib.sh — shared by scripts/demo.sh, scripts/test.sh and
# scripts/quick-test.sh (sourced).  Installs what smartetl needs on Debian 12,
# builds it, and runs a throwaway PostgreSQL 15 cluster in a local folder.
# Run as root (the server then runs as postgres); the cluster functions also
# work as another user, who then owns and runs the cluster.

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
export PATH="$PATH:/usr/sbin:/sbin"

APT_PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-pgtap \
libtap-parser-sourcehandler-pgtap-perl libcurl4-openssl-dev make gcc clang-14 libclang-rt-14-dev \
curl openssl python3 python3-aiosmtpd prometheus prometheus-alertmanager prometheus-postgres-exporter \
chromium nodejs libxgboost-dev liblinear-dev python3-sklearn python3-numpy \
libmicrohttpd-dev wrk apache2-utils nginx-light"

# log: a stage heading, with the time since the script started (SECONDS)
log() { printf '\n== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# as_postgres CMD...: run a server command (initdb, pg_ctl) as postgres when
# root (PostgreSQL refuses to run as root), else as the calling user.
as_postgres() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# extension_version [CONTROL]: default_version of smartetl.control, the one
# place the version is written (the Makefile reads it the same way).
extension_version() {
	sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "${1:-smartetl.control}"
}

install_packages() {
	local missing=""
	for p in $APT_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	# Debian's nodejs comes without npm (NodeSource's includes it)
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
	if [ -n "$missing" ]; then
		log "installing Debian packages:$missing"
		export DEBIAN_FRONTEND=noninteractive
		local apt_log
		apt_log=$(mktemp /tmp/smartetl-apt.XXXXXX)
		apt-get update -q >"$apt_log" 2>&1 || { tail -20 "$apt_log"; rm -f "$apt_log"; return 1; }
		apt-get install -y -q $missing >>"$apt_log" 2>&1 || { tail -20 "$apt_log"; rm -f "$apt_log"; return 1; }
		rm -f "$apt_log"
	fi
}

# install_node_modules: the report check's playwright-core, exactly as
# test/report/package-lock.json pins it (npm ci), unless that version is
# already there.  Run from the checkout's root.
install_node_modules() {
	local want have
	want=$(sed -n '/"node_modules\/playwright-core"/,/}/s/.*"version": "\([^"]*\)".*/\1/p' test/report/package-lock.json)
	have=$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' test/report/node_modules/playwright-core/package.json 2>/dev/null | head -1 || true)
	[ -n "$want" ] && [ "$want" = "$have" ] && return 0
	log "installing playwright-core $want for the report check (npm ci in test/report)"
	local npm_log
	npm_log=$(mktemp /tmp/smartetl-npm.XXXXXX)
	(cd test/report && npm ci --no-audit --no-fund >"$npm_log" 2>&1) || { tail -20 "$npm_log"; rm -f "$npm_log"; return 1; }
	rm -f "$npm_log"
}

# free_port: a TCP port on 127.0.0.1 that the kernel says is free now, and
# whose PostgreSQL socket name is unused in /tmp
free_port() {
	local port
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		[ -e "/tmp/.s.PGSQL.$port" ] || [ -e "/tmp/.s.PGSQL.$((port + 1))" ] || { echo "$port"; return 0; }
	done
	return 1
}

build_install() {
	log "building and installing smartetl"
	make -s PG_CONFIG=$PG_CONFIG with_llvm=no >/dev/null
	make -s PG_CONFIG=$PG_CONFIG with_llvm=no install >/dev/null
}

# cluster_init DIR PORT: initdb a cluster in DIR (once) configured for
# smartetl.  Its socket lives in DIR when the path is short enough (the
# limit is 107 bytes), else in /tmp.
cluster_init() {
	local dir=$1 port=$2
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
	chmod 700 "$dir"
	[ -f "$dir/data/PG_VERSION" ] && return 0
	as_postgres $PG_BIN/initdb -D "$dir/data" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
	cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$(socket_dir "$dir")'
shared_preload_libraries = 'smartetl,pg_cron'
cron.database_name = 'postgres'
# run jobs in background workers: the cluster listens on a socket only
cron.use_background_workers = on
max_worker_processes = 16
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
}

# cluster_configure DIR: settings added since a cluster was first made.
cluster_configure() {
	local conf=$1/data/postgresql.conf
	grep -q '^smartetl.database' "$conf" || cat >>"$conf" <<CONF
# the alert worker, and where it may send notifications (loopback only here)
smartetl.database = 'postgres'
smartetl.allowed_hosts = '127.0.0.1,localhost,::1'
smartetl.naptime = 2
CONF
}

socket_dir() {
	if [ ${#1} -le 80 ]; then echo "$1"; else echo /tmp; fi
}

# cluster_start DIR PORT [ENV=VALUE...]: init if needed, start (the server
# gets the extra environment, e.g. LD_PRELOAD), and point libpq at it.
cluster_start() {
	local dir=$1 port=$2
	shift 2
	cluster_init "$dir" "$port"
	cluster_configure "$dir"
	as_postgres env "$@" $PG_BIN/pg_ctl -D "$dir/data" -l "$dir/server.log" \
		-w -t 120 start >/dev/null || { cat "$dir/server.log"; return 1; }
	export PGHOST="$(socket_dir "$dir")" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
}

cluster_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] || return 0
	as_postgres $PG_BIN/pg_ctl -D "$dir/data" -m fast -w stop >/dev/null || true
}

# psql_do ARGS...: run psql quietly, stopping at the first error.
psql_do() {
	psql -X -q -v ON_ERROR_STOP=1 "$@"
}
