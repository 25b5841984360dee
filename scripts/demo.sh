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
# the version in development is not released: when its install script changed
# since the last demo, recreate the extension (the demo data is loaded again below)
script_md5=$(md5sum "$($PG_CONFIG --sharedir)/extension/smartetl--$(extension_version).sql" | cut -d' ' -f1)
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

log "KPIs of the last 30 days (smartetl.pipeline_kpi, from the rollups)"
psql_do <<'SQL'
\pset footer off
SELECT pipeline, runs, failures, round(success_rate::numeric, 3) AS success_rate,
       round(p50_duration_s::numeric) AS p50_s, round(p95_duration_s::numeric) AS p95_s,
       justify_interval(date_trunc('minute', mttr)) AS mttr, longest_failure_streak AS worst_streak,
       stale, left(top_error, 40) AS top_error
FROM smartetl.pipeline_kpi(now() - interval '30 days', now()) WHERE namespace = 'demo';
SELECT kind, pipeline, round(value::numeric, 1) AS value, round(expected::numeric, 1) AS expected,
       round(score::numeric, 1) AS score FROM smartetl.anomalies ORDER BY at DESC NULLS LAST LIMIT 5;
SQL

log "failure risk for the next day (XGBoost trained in the database on the history)"
psql_do <<'SQL'
\pset footer off
SELECT 'model ' || m AS trained FROM smartetl.train_risk_model('1 day', 'xgboost', '{"step": "6 hours"}') m;
SELECT model_id, algorithm, status, training_rows, test_rows, round((metrics->>'roc_auc')::numeric, 3) AS roc_auc,
       round((metrics->>'pr_auc')::numeric, 3) AS pr_auc, round((metrics->>'brier')::numeric, 3) AS brier
FROM smartetl.model ORDER BY model_id DESC LIMIT 1;
SELECT pipeline, round(risk::numeric, 3) AS risk,
       (SELECT string_agg(r->>'feature' || ' (' || (r->>'contribution') || ')', ', ') FROM jsonb_array_elements(reasons) r) AS top_reasons
FROM smartetl.risk_ranking('1 day') WHERE namespace = 'demo' LIMIT 5;
SQL

log "historical report: $DEMO_DIR/report.html"
psql -X -At -c "SELECT smartetl.report_html(now() - interval '30 days', now())" > "$DEMO_DIR/report.html"
ls -l "$DEMO_DIR/report.html"

log "alerting: a webhook on 127.0.0.1, a rule, a failed run, the delivered alert"
SINK_PORT=${SMARTETL_DEMO_SINK_PORT:-18099}
mkdir -p "$DEMO_DIR/sink"
/usr/bin/python3 test/receivers/http_sink.py --port "$SINK_PORT" --log "$DEMO_DIR/sink/requests.jsonl" \
	>"$DEMO_DIR/sink/out.txt" 2>&1 &
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q ready "$DEMO_DIR/sink/out.txt" && break; sleep 0.1; done
psql_do -v port="$SINK_PORT" <<'SQL'
DELETE FROM smartetl.alert_rule WHERE name = 'demo-failures';
DELETE FROM smartetl.channel WHERE name = 'demo-webhook';
INSERT INTO smartetl.channel (name, kind, target, options)
VALUES ('demo-webhook', 'webhook', 'http://127.0.0.1:' || :'port' || '/alerts',
        '{"link_template": "http://localhost:3000/d/smartetl-overview?var-pipeline={pipeline}"}');
INSERT INTO smartetl.alert_rule (name, kind, selector, severity, channels, group_wait)
VALUES ('demo-failures', 'run_failed', '{"namespace": "demo", "pipeline": "dag_sales_daily"}', 'critical',
        '{demo-webhook}', '0');
SELECT smartetl.ingest('csv', 'job,run_id,start,end,status,error' || E'\n' ||
       'dag_sales_daily,demo_' || to_char(now(), 'YYYYMMDDHH24MISS') || ',' || now() - interval '2 minutes' || ',' || now() ||
       ',failed,psycopg2.OperationalError: could not connect to server: Connection refused (10.0.3.12:5432)',
       '{"namespace": "demo"}');
SQL
for _ in $(seq 50); do
	[ "$(psql -X -At -c "SELECT count(*) FROM smartetl.delivery WHERE channel = 'demo-webhook' AND status = 'sent'")" != 0 ] && break
	sleep 0.2
done
psql_do <<'SQL'
\pset footer off
SELECT channel, status, attempts, last_status, sent_at - created_at AS queue_to_sent,
       notification->'alerts'->0->'annotations'->>'summary' AS summary,
       notification->'alerts'->0->'annotations'->>'error_template' AS error_template
FROM smartetl.delivery WHERE channel = 'demo-webhook' ORDER BY delivery_id DESC LIMIT 1;
SQL
echo "received by the webhook on 127.0.0.1:$SINK_PORT:"
tail -n 1 "$DEMO_DIR/sink/requests.jsonl" | /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.stdin.readline()); j=r["json"]; print("  POST", r["path"], "Idempotency-Key:", r["headers"].get("Idempotency-Key")); print("  status:", j["status"], "| rule:", j["rule"]["name"], "| pipeline:", j["alerts"][0]["labels"]["pipeline"], "| link:", j["link"])'

cat <<MSG

== smartetl is running
Connect:  psql -h $PGHOST -p $PGPORT -U postgres postgres
Stop:     runuser -u postgres -- $PG_BIN/pg_ctl -D $DEMO_DIR/data stop
Remove:   rm -rf $DEMO_DIR
Report:   $DEMO_DIR/report.html
MSG
