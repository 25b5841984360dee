#!/bin/bash
# test/upgrade/run.sh — ALTER EXTENSION smartetl UPDATE from the previous
# release, with its data.  As root, from the checkout (a git clone with the
# release's tag or commit):
#   bash test/upgrade/run.sh
#
# 1. Builds the previous release from git (tag v0.1.0, else its commit) in a
#    temporary folder, and this tree (make install).
# 2. Installs the previous release's install script and library, as a user of
#    that release has them, and starts a throwaway cluster (own folder, port
#    SMARTETL_UPGRADE_PORT, default a free one).
# 3. In database smartetl_upgraded: CREATE EXTENSION smartetl VERSION '<old>',
#    loads the sample history (scripts/sample/generate.sql: runs, a loader log,
#    templates) and quarantined rows, trains an XGBoost and a linear risk model
#    and a generic model, scores them (prediction log), creates a channel, a
#    rule and a silence and fires alerts (evaluate_alerts).  Records the
#    scores and, per table, the row count and a checksum of its columns.
# 4. Stops the cluster, puts this tree's library back (a package upgrade),
#    restarts, runs ALTER EXTENSION smartetl UPDATE, creates a fresh install
#    in database smartetl_fresh and checks (TAP): the version; the library
#    still exports the C symbols the old SQL names; pg_dump --schema-only
#    --binary-upgrade of both databases equal after normalisation
#    (normalize_dump.py says what and why); every table's row count and
#    checksum, every sequence's position; the same scores; alerting and ingest
#    still work; the server never crashed.
# Leaves the PostgreSQL install folder as it found it, but for this tree's
# `make install`.  SMARTETL_KEEP=1 keeps the temporary folder (dumps, diffs,
# server log).  Exit status 0 when every check passed.
#
# Schema changes since the previous release go into
# src/sql/upgrade/smartetl--<old>--<new>.sql (see src/sql/upgrade/README.md).
# If an upgrade step deliberately rewrites existing values, list the column
# in test/upgrade/rewritten_columns (its row count is still checked).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
source scripts/lib.sh

# The previous release: its tag, else its commit (a clone without tags).
FROM_REF=${SMARTETL_UPGRADE_FROM:-v0.1.0}
FROM_COMMIT=6c27ab71391a3826c4230b676a033d6b89657575
[ -n "${SMARTETL_UPGRADE_FROM:-}" ] && FROM_COMMIT=
PORT=${SMARTETL_UPGRADE_PORT:-$(free_port)}
export PGTZ=UTC PGOPTIONS='-c client_min_messages=warning'

PKGLIB=$($PG_CONFIG --pkglibdir)
EXTDIR=$($PG_CONFIG --sharedir)/extension
NEW_VERSION=$(extension_version)

# ---------------------------------------------------------------- TAP output
TESTS=0
FAILED=0
ok() { TESTS=$((TESTS + 1)); echo "ok $TESTS - $1"; }
not_ok() {
	TESTS=$((TESTS + 1)); FAILED=$((FAILED + 1))
	echo "not ok $TESTS - $1"
	shift
	local l
	for l in "$@"; do printf '%s\n' "$l" | sed 's/^/#   /'; done
}
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
bail() { echo "Bail out! $*"; exit 1; }
# check DESCRIPTION EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "got:      $3"; fi
}
# check_files DESCRIPTION EXPECTED_FILE ACTUAL_FILE
check_files() {
	if diff -u --label "$(basename "$2")" --label "$(basename "$3")" "$2" "$3" >"$3.diff"; then
		ok "$1"
	else
		not_ok "$1" "$(head -n 150 "$3.diff")" "($(wc -l <"$3.diff") lines of diff)"
	fi
}

# ------------------------------------------------------ temporary folder and
# the install folder's files this script replaces for a while
TMP=$(mktemp -d /tmp/smartetl-upg.XXXXXX)
chmod 755 "$TMP"
CLUSTER=$TMP/c
OLD_VERSION=
finish() {
	local rc=$?
	set +e
	cluster_stop "$CLUSTER"
	# this tree's library and the install folder's previous state
	[ -f "$TMP/new.so" ] && install_file "$TMP/new.so" "$PKGLIB/smartetl.so"
	if [ -n "$OLD_VERSION" ] && [ -f "$TMP/old-script-installed" ]; then
		if [ -f "$TMP/saved-old-script.sql" ]; then
			install_file "$TMP/saved-old-script.sql" "$EXTDIR/smartetl--$OLD_VERSION.sql"
		else
			rm -f "$EXTDIR/smartetl--$OLD_VERSION.sql"
		fi
	fi
	if [ -n "${SMARTETL_KEEP:-}" ]; then
		echo "# kept $TMP"
	else
		rm -rf "$TMP"
	fi
	if [ "$TESTS" -gt 0 ]; then
		echo "1..$TESTS"
		echo "# upgrade $OLD_VERSION -> $NEW_VERSION: $((TESTS - FAILED)) passed, $FAILED failed"
		[ "$FAILED" -eq 0 ] && [ "$rc" -eq 0 ] || rc=1
	fi
	exit $rc
}
trap finish EXIT
trap 'echo "Bail out! line $LINENO: $BASH_COMMAND failed"' ERR
# install_file SRC DEST: replace DEST by renaming, never rewriting it in place
# (a running server may have the library mapped)
install_file() {
	cp "$1" "$2.upgrade-tmp.$$"
	chmod "$(case "$2" in *.so) echo 755 ;; *) echo 644 ;; esac)" "$2.upgrade-tmp.$$"
	mv -f "$2.upgrade-tmp.$$" "$2"
}
psql_db() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
psql_at() { local db=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }

# ------------------------------------------------------------------ 1. build
OLD_COMMIT=
for ref in "$FROM_REF" $FROM_COMMIT; do
	OLD_COMMIT=$(git -C "$REPO" rev-parse -q --verify "$ref^{commit}" 2>/dev/null) && break
	OLD_COMMIT=
done
[ -n "$OLD_COMMIT" ] || bail "previous release $FROM_REF ${FROM_COMMIT:+(commit $FROM_COMMIT) }not in this clone's history (git fetch --tags, or --unshallow)"
mkdir "$TMP/old"
git -C "$REPO" archive "$OLD_COMMIT" | tar -x -C "$TMP/old"
OLD_VERSION=$(extension_version "$TMP/old/smartetl.control")
[ -n "$OLD_VERSION" ] || bail "no default_version in $FROM_REF's smartetl.control"
[ "$OLD_VERSION" != "$NEW_VERSION" ] || bail "smartetl.control's default_version ($NEW_VERSION) is still that of $FROM_REF"
diag "previous release: $OLD_VERSION ($FROM_REF = ${OLD_COMMIT:0:12}); this tree: $NEW_VERSION"
make -C "$TMP/old" -s -j2 PG_CONFIG=$PG_CONFIG with_llvm=no >"$TMP/old-build.log" 2>&1 ||
	{ tail -30 "$TMP/old-build.log"; bail "building $OLD_VERSION failed"; }
[ -f "$TMP/old/smartetl--$OLD_VERSION.sql" ] && [ -f "$TMP/old/smartetl.so" ] || bail "the $OLD_VERSION build made no install script or library"
build_install >/dev/null
cp "$PKGLIB/smartetl.so" "$TMP/new.so"

# ------------------------------------ 2. the previous release, as installed
[ -f "$EXTDIR/smartetl--$OLD_VERSION.sql" ] && cp "$EXTDIR/smartetl--$OLD_VERSION.sql" "$TMP/saved-old-script.sql"
touch "$TMP/old-script-installed"
install_file "$TMP/old/smartetl--$OLD_VERSION.sql" "$EXTDIR/smartetl--$OLD_VERSION.sql"
install_file "$TMP/old/smartetl.so" "$PKGLIB/smartetl.so"
cluster_start "$CLUSTER" "$PORT" || bail "the cluster did not start with the $OLD_VERSION library"
SERVER_LOG=$CLUSTER/server.log

# ----------------------------------------------- 3. data under the old release
UP=smartetl_upgraded
FRESH=smartetl_fresh
mkdir -p "$TMP/sample"
chown postgres "$TMP/sample"
psql_do -c "DROP DATABASE IF EXISTS $UP" -c "DROP DATABASE IF EXISTS $FRESH" -c "CREATE DATABASE $UP"
psql_db $UP -c "CREATE EXTENSION smartetl VERSION '$OLD_VERSION'" || bail "CREATE EXTENSION smartetl VERSION '$OLD_VERSION' failed"
psql_db $UP -v dir="$TMP/sample" -f scripts/sample/generate.sql >/dev/null || bail "sample data"
psql_db $UP -v dir="$TMP/sample" >"$TMP/workload.out" 2>&1 <<'SQL' || { cat "$TMP/workload.out"; bail "the workload failed under the previous release"; }
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
-- runs, log lines (log_event partitions), templates, quarantined rows
SELECT * FROM smartetl.ingest_file(:'dir' || '/runs.csv', 'csv', '{"namespace": "demo"}');
SELECT * FROM smartetl.ingest_file(:'dir' || '/partner_loader.log', 'logline',
  '{"log_format": "<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>",
    "namespace": "demo", "pipeline": "ftp_partner_import"}');
SELECT * FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nupgrade_bad,1,not a time,,ok\nupgrade_bad,2,2024-01-01 00:00:00,2024-01-01 00:01:00,ok\n',
                              '{"namespace": "demo", "on_error": "quarantine"}');
-- models: two risk models (the registry picks a champion) and a generic one
SELECT smartetl.train_risk_model('1 day', 'xgboost', '{"step": "6 hours"}');
SELECT smartetl.train_risk_model('1 day', 'linear', '{"step": "6 hours"}');
SELECT smartetl.train('upgrade_failed',
  $q$SELECT extract(epoch FROM duration)::float8 AS seconds, coalesce(rows_written, 0)::float8 AS rows_written,
            (status = 'failed')::int::float8 AS failed
     FROM smartetl.run WHERE duration IS NOT NULL ORDER BY run_id$q$, 'failed', 'linear');
SELECT count(*) AS ranked FROM smartetl.risk_ranking('1 day');
-- alerting: a channel (never sent: the worker serves database postgres), a rule, a silence, a failure
INSERT INTO smartetl.channel (name, kind, target, secret)
VALUES ('upgrade-webhook', 'webhook', 'http://127.0.0.1:9/alerts', 'upgrade-secret');
INSERT INTO smartetl.alert_rule (name, kind, selector, severity, channels, group_wait)
VALUES ('upgrade-failures', 'run_failed', '{"namespace": "demo"}', 'critical', '{upgrade-webhook}', '0');
INSERT INTO smartetl.silence (matchers, ends_at, comment)
VALUES ('{"pipeline": "shell_*"}', now() + interval '30 days', 'upgrade test');
SELECT * FROM smartetl.ingest('csv', 'job,run_id,start,end,status,error' || E'\n' ||
       'dag_sales_daily,upgrade_1,' || now() - interval '2 minutes' || ',' || now() ||
       ',failed,psycopg2.OperationalError: could not connect to server: Connection refused (10.0.3.12:5432)',
       '{"namespace": "demo"}');
SELECT smartetl.evaluate_alerts() AS queued;
SQL
counts=$(psql_at $UP -F ' ' -c "SELECT (SELECT count(*) FROM smartetl.run), (SELECT count(*) FROM smartetl.log_event),
	(SELECT count(*) FROM smartetl.ingest_reject), (SELECT count(*) FROM smartetl.model),
	(SELECT count(*) FROM smartetl.prediction), (SELECT count(*) FROM smartetl.alert),
	(SELECT count(*) FROM smartetl.delivery)")
diag "under $OLD_VERSION: runs, log events, rejects, models, predictions, alerts, deliveries = $counts"
for c in $counts; do [ "$c" -gt 0 ] || bail "the workload left an empty table ($counts)"; done

# What to compare after the update.
#  scores: every pipeline's failure risk from the champion at a fixed time, the generic model's predictions
cat >"$TMP/scores.sql" <<'SQL'
SELECT 'risk', p.namespace, p.name, smartetl.failure_risk(p.name, '1 day', a.at)
FROM smartetl.pipeline p, (SELECT max(started_at) AS at FROM smartetl.run) a
WHERE p.namespace = 'demo' ORDER BY p.name;
SELECT 'predict', x, smartetl.predict('upgrade_failed', ARRAY[x, 1000]::float8[])
FROM unnest(ARRAY[30, 600, 3600]::float8[]) x;
SELECT 'champion', name, model_id, algorithm FROM smartetl.model WHERE status = 'champion' ORDER BY name;
SQL
psql_at $UP -f "$TMP/scores.sql" >"$TMP/scores.before" || bail "scoring under $OLD_VERSION failed"
#  every table (partitions and parents) by its old columns, every sequence
rewritten=$( (grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' test/upgrade/rewritten_columns 2>/dev/null || true) | tr -s ' \t' '.' | paste -sd, -)
psql_at $UP -v rewritten="{$rewritten}" >"$TMP/checksum.sql" <<'SQL'
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(r, E''\n'' ORDER BY r), '''')) FROM (SELECT ROW(%s)::text AS r FROM %s) t;',
              c.oid::regclass::text,
              string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                  FILTER (WHERE NOT (n.nspname || '.' || c.relname || '.' || a.attname) = ANY (:'rewritten'::text[])),
              c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'smartetl' AND c.relkind IN ('r', 'p')
GROUP BY c.oid, n.nspname ORDER BY c.oid::regclass::text;
SELECT format('SELECT %L, last_value, is_called FROM %s;', c.oid::regclass::text, c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'smartetl' AND c.relkind = 'S' ORDER BY c.oid::regclass::text;
SQL
sed -i 's/ROW()/ROW(NULL)/' "$TMP/checksum.sql"
psql_at $UP -f "$TMP/checksum.sql" >"$TMP/checksum.before" || bail "checksums under $OLD_VERSION failed"
diag "$(grep -c . "$TMP/checksum.before") tables and sequences checksummed"
#  the C symbols the old SQL names
psql_at $UP >"$TMP/symbols.old" <<'SQL'
SELECT DISTINCT s FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'smartetl', LATERAL (VALUES (p.prosrc), ('pg_finfo_' || p.prosrc)) v(s)
WHERE p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') ORDER BY 1;
SQL

# ------------------------------------------- 4. package upgrade, then UPDATE
cluster_stop "$CLUSTER"
install_file "$TMP/new.so" "$PKGLIB/smartetl.so"
cluster_start "$CLUSTER" "$PORT" || bail "the cluster did not start with the $NEW_VERSION library"
check_eq "extension still at $OLD_VERSION before the update" "$OLD_VERSION" \
	"$(psql_at $UP -c "SELECT extversion FROM pg_extension WHERE extname = 'smartetl'")"
nm -D --defined-only "$TMP/new.so" | awk '{print $3}' | sort -u >"$TMP/symbols.new"
missing=$(comm -23 "$TMP/symbols.old" "$TMP/symbols.new" | paste -sd' ' -)
if [ -z "$missing" ]; then
	ok "the $NEW_VERSION library exports every C function $OLD_VERSION's SQL names ($(wc -l <"$TMP/symbols.old") symbols)"
else
	not_ok "the $NEW_VERSION library exports every C function $OLD_VERSION's SQL names" \
		"missing: $missing" "(a database still at $OLD_VERSION calls them until ALTER EXTENSION UPDATE; keep a stub)"
fi

if psql_db $UP -c "ALTER EXTENSION smartetl UPDATE" >"$TMP/update.out" 2>&1; then
	ok "ALTER EXTENSION smartetl UPDATE"
else
	not_ok "ALTER EXTENSION smartetl UPDATE" "$(cat "$TMP/update.out")"
	bail "the update failed"
fi
check_eq "extension at $NEW_VERSION after the update" "$NEW_VERSION" \
	"$(psql_at $UP -c "SELECT extversion FROM pg_extension WHERE extname = 'smartetl'")"

# data first, before anything writes again
# (no ON_ERROR_STOP: a table that fails shows its error, the others their sums)
psql -X -q -At -d $UP -f "$TMP/checksum.sql" >"$TMP/checksum.after" 2>&1 || true
check_files "every table keeps its rows (count and checksum of the $OLD_VERSION columns) and every sequence its position" \
	"$TMP/checksum.before" "$TMP/checksum.after"

# a backup of the upgraded database restores every row: pg_dump keeps the
# rows of the extension's tables (pg_extension_config_dump, 90_dump.sql) and
# the positions of its sequences.  Restored with session_replication_role =
# replica, as README's Backups section says: the extension's triggers exist
# before its rows are loaded (they check references and add runs to the
# rollups) and must not fire again for restored rows
RESTORED=smartetl_restored
psql_do -c "CREATE DATABASE $RESTORED"
$PG_BIN/pg_dump -d $UP >"$TMP/backup.sql" || bail "pg_dump $UP failed"
# pg_dump re-creates the keys and indexes of a log_event partition whose
# parent is an extension member, which ATTACH PARTITION already made: those
# errors, and only those, are expected (README, Backups)
PGOPTIONS="$PGOPTIONS -c session_replication_role=replica" psql -X -q -d $RESTORED -f "$TMP/backup.sql" >"$TMP/restore.out" 2>&1 || true
errors=$(grep 'ERROR:' "$TMP/restore.out" | grep -Ev 'multiple primary keys for table "log_event_[0-9]+" are not allowed|relation "log_event_[0-9]+_[a-z_]+" already exists' || true)
check_eq "a pg_dump of the upgraded database restores (no error but the partition keys)" "" "$errors"
psql_at $RESTORED -c "SELECT smartetl.after_restore()" >/dev/null
psql -X -q -At -d $RESTORED -f "$TMP/checksum.sql" 2>&1 | grep -v '_seq|' >"$TMP/checksum.restored" || true
check_files "a pg_dump backup restores every row of every table" \
	<(grep -v '_seq|' "$TMP/checksum.after") "$TMP/checksum.restored"
out=$(psql_at $RESTORED -c "SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status\\nrestored_after,1,' || now() - interval '1 minute' || ',' || now() || ',ok', '{\"namespace\": \"demo\"}')" 2>&1) || true
check_eq "after smartetl.after_restore(), ingest into the restored database continues its ids" "1" "$out"
psql_do -c "DROP DATABASE $RESTORED"

# the fresh install, and the schemas
psql_at postgres -c "SELECT rolname FROM pg_roles WHERE rolname LIKE 'smartetl%' ORDER BY 1" >"$TMP/roles.upgraded"
psql_do -c "CREATE DATABASE $FRESH"
psql_db $FRESH -c "CREATE EXTENSION smartetl" || bail "CREATE EXTENSION smartetl ($NEW_VERSION) failed"
psql_at postgres -c "SELECT rolname FROM pg_roles WHERE rolname LIKE 'smartetl%' ORDER BY 1" >"$TMP/roles.fresh"
check_files "the update creates the roles a fresh install creates" "$TMP/roles.fresh" "$TMP/roles.upgraded"

ext_sql="SELECT extversion, extrelocatable, extnamespace::regnamespace,
	ARRAY(SELECT c::regclass::text || coalesce(' WHERE ' || nullif(w, ''), '') FROM unnest(extconfig, extcondition) u(c, w) ORDER BY 1)
	FROM pg_extension WHERE extname = 'smartetl'"
check_eq "extension row (version, configuration tables and their conditions) as in a fresh install" \
	"$(psql_at $FRESH -c "$ext_sql")" "$(psql_at $UP -c "$ext_sql")"

# Objects in the schema that are not extension members: only the log_event
# partitions ingest creates.  They are data-dependent (the fresh database has
# none), so they are left out of both dumps.
not_members="SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'smartetl' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
	AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
	AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))"
others=$(psql_at $UP -c "$not_members AND NOT c.relispartition ORDER BY 1" | paste -sd' ' -)
check_eq "no object in schema smartetl outside the extension but log_event partitions" "" "$others"
exclude=()
while read -r rel; do exclude+=(--exclude-table="$rel"); done < <(psql_at $UP -c "$not_members AND c.relispartition ORDER BY 1")
diag "left out of the dumps: ${#exclude[@]} log_event partitions"
for db in $UP $FRESH; do
	$PG_BIN/pg_dump --schema-only --binary-upgrade --restrict-key=smartetlupgradetest "${exclude[@]}" -d $db >"$TMP/$db.dump" ||
		bail "pg_dump $db failed"
	/usr/bin/python3 test/upgrade/normalize_dump.py <"$TMP/$db.dump" >"$TMP/$db.schema"
done
diag "schema dumps: $(grep -c '^-- Name: ' "$TMP/$FRESH.schema") entries (fresh), $(grep -c '^-- Name: ' "$TMP/$UP.schema") (upgraded)"
check_files "pg_dump --schema-only of the upgraded database equals a fresh $NEW_VERSION install" \
	"$TMP/$FRESH.schema" "$TMP/$UP.schema"

# the models score as before
psql_at $UP -f "$TMP/scores.sql" >"$TMP/scores.after" 2>&1 || true
check_files "risk and generic models score the same after the update, same champions" "$TMP/scores.before" "$TMP/scores.after"

# still working
out=$(psql_at $UP -c "SELECT smartetl.evaluate_alerts() >= 0" 2>&1) || true
check_eq "evaluate_alerts() after the update" "t" "$out"
out=$(psql_at $UP -c "SELECT inserted FROM smartetl.ingest('csv', E'job,run_id,start,end,status\nupgrade_after,1,' || now() - interval '1 minute' || ',' || now() || ',ok', '{\"namespace\": \"demo\"}')" 2>&1) || true
check_eq "ingest after the update" "1" "$out"
out=$(psql_at $UP -c "SELECT count(*) > 0 FROM smartetl.alert WHERE rule_name = 'upgrade-failures'" 2>&1) || true
check_eq "alerts fired under $OLD_VERSION are still there" "t" "$out"

crashes=$(grep -E 'terminated by signal|PANIC:|was terminated by exception' "$SERVER_LOG" || true)
if [ -z "$crashes" ]; then ok "no server process crashed"; else not_ok "no server process crashed" "$crashes"; fi
