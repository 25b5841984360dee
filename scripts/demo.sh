#!/bin/bash
# The smartetl main job on a fresh Debian 12 machine, as root:
#   bash scripts/demo.sh
# Installs packages, builds and installs smartetl, starts a PostgreSQL 15
# cluster in a local folder on its own port (smartetl and pg_cron
# preloaded), loads 30 days of sample runs and a log file, and prints a first
# summary.  Re-runnable: it restarts the same cluster and re-ingests (which
# changes nothing the second time: ingestion is idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
source scripts/lib.sh

PORT=${SMARTETL_DEMO_PORT:-54321}
# the cluster lives in the checkout when the postgres user can reach it
DEMO_DIR=${SMARTETL_DEMO_DIR:-$REPO/.cluster}
if ! runuser -u postgres -- test -x "$(dirname "$DEMO_DIR")" 2>/dev/null; then
	DEMO_DIR=/var/tmp/smartetl-demo
fi

install_packages
build_install
cluster_stop "$DEMO_DIR"	# pick up a freshly built library
cluster_start "$DEMO_DIR" "$PORT"

log "creating the extension"
# 0.1.0 is not released yet: when its install script changed since the last
# demo, recreate the extension (the demo data is loaded again below)
script_md5=$(md5sum "$($PG_CONFIG --sharedir)/extension/smartetl--0.1.0.sql" | cut -d' ' -f1)
if [ "$(cat "$DEMO_DIR/extension.md5" 2>/dev/null)" != "$script_md5" ]; then
	psql_do -c 'DROP EXTENSION IF EXISTS smartetl CASCADE;'
	echo "$script_md5" >"$DEMO_DIR/extension.md5"
fi
psql_do -c 'SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS smartetl; CREATE EXTENSION IF NOT EXISTS pg_cron;'

log "writing sample data to $DEMO_DIR/sample"
mkdir -p "$DEMO_DIR/sample"
chown postgres "$DEMO_DIR/sample"
psql_do -v dir="$DEMO_DIR/sample" -f scripts/sample/generate.sql >/dev/null

log "ingesting runs (csv) and a loader log (logline)"
psql_do -v dir="$DEMO_DIR/sample" <<'SQL'
\pset footer off
SELECT 'runs.csv' AS file, * FROM smartetl.ingest_file(:'dir' || '/runs.csv', 'csv', '{"namespace": "demo"}')
UNION ALL
SELECT 'partner_loader.log', * FROM smartetl.ingest_file(:'dir' || '/partner_loader.log', 'logline',
  '{"log_format": "<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>",
    "namespace": "demo", "pipeline": "ftp_partner_import"}');
SQL

log "summary: runs per pipeline, failures, mean duration (last 30 days)"
psql_do <<'SQL'
\pset footer off
SELECT p.name AS pipeline,
       count(*) AS runs,
       count(*) FILTER (WHERE r.status = 'failed') AS failures,
       round(100.0 * count(*) FILTER (WHERE r.status = 'success') / count(*), 1) AS success_pct,
       justify_interval(date_trunc('second', avg(r.duration))) AS mean_duration,
       max(r.started_at) FILTER (WHERE r.status = 'success') AS last_success
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id)
WHERE p.namespace = 'demo' AND r.started_at > now() - interval '30 days'
GROUP BY p.name ORDER BY failures DESC, p.name;

SELECT left(t.template, 70) AS most_frequent_error_templates, count(*) AS times,
       count(DISTINCT r.pipeline_id) AS pipelines
FROM smartetl.run r JOIN smartetl.template t USING (template_id)
WHERE r.status = 'failed' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5;

SELECT ts, level, component, replace(message, E'\n', ' | ') AS log_event
FROM smartetl.log_event e JOIN smartetl.pipeline p USING (pipeline_id)
WHERE p.name = 'ftp_partner_import' ORDER BY ts;
SQL

cat <<MSG

== smartetl is running
Connect:  psql -h $PGHOST -p $PGPORT -U postgres postgres
Stop:     runuser -u postgres -- $PG_BIN/pg_ctl -D $DEMO_DIR/data stop
Remove:   rm -rf $DEMO_DIR
MSG
