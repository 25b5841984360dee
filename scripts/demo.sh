#!/bin/bash
# The smartetl main job on a fresh Debian 12 machine, as root:
#   bash scripts/demo.sh
# Installs packages, builds and installs smartetl, starts a PostgreSQL 15
# cluster in a local folder on its own port (smartetl and pg_cron
# preloaded), loads 30 days of sample runs and a log file, and prints a first
# summary, KPIs, risk, the report and an alert; then turns on the HTTP
# intake, sends one pipeline's runs as OpenLineage events over HTTP, follows
# a growing log file, and shows the runs, log lines and alert they made.  Re-runnable: it restarts the same cluster and re-ingests (which
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

log "failure risk for the next day (XGBoost trained in the database, served only if it beats the baselines out of time)"
psql_do <<'SQL'
\pset footer off
SELECT 'model ' || m AS trained FROM smartetl.train_risk_model('1 day', 'xgboost') m;
SELECT coalesce(options->>'baseline', algorithm) AS candidate, status, test_rows AS pipeline_times,
       round((metrics->>'roc_auc')::numeric, 3) AS roc_auc, round((metrics->>'brier')::numeric, 3) AS brier
FROM smartetl.model WHERE status IN ('champion', 'candidate') AND kind = 'risk' ORDER BY model_id;
SELECT note AS why_served FROM smartetl.model WHERE status = 'champion' AND kind = 'risk';
SELECT pipeline, round(risk::numeric, 3) AS risk, reasons
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
DELETE FROM smartetl.alert_rule WHERE name IN ('demo-failures', 'demo-http-failures');
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

log "real-time intake: a pipeline's runs as OpenLineage events over HTTP, a followed log file"
# smartetl.http_listen is reloadable: the intake worker starts listening on SIGHUP
HTTP_PORT=${SMARTETL_DEMO_HTTP_PORT:-18097}
LIVE_DIR="$DEMO_DIR/live"
mkdir -p "$LIVE_DIR"
chown postgres "$LIVE_DIR"
rm -f "$LIVE_DIR"/spark.log*
: >"$LIVE_DIR/spark.log"
psql_do -v listen="127.0.0.1:$HTTP_PORT" -v log="$LIVE_DIR/spark.log" <<'SQL' >/dev/null
SET client_min_messages = warning;
ALTER SYSTEM SET smartetl.http_listen = :'listen';
SELECT pg_reload_conf();
-- what an earlier demo sent over HTTP
DELETE FROM smartetl.source WHERE path = :'log';
DELETE FROM smartetl.log_event WHERE pipeline_id IN (SELECT pipeline_id FROM smartetl.pipeline WHERE namespace = 'demo_http');
DELETE FROM smartetl.run WHERE pipeline_id IN (SELECT pipeline_id FROM smartetl.pipeline WHERE namespace = 'demo_http');
DELETE FROM smartetl.pipeline WHERE namespace = 'demo_http';
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_spark') THEN CREATE ROLE demo_spark NOLOGIN; END IF;
    IF EXISTS (SELECT FROM smartetl.api_key WHERE name = 'demo-spark' AND revoked_at IS NULL) THEN
        PERFORM smartetl.revoke_api_key('demo-spark');
    END IF;
END $$;
GRANT smartetl_writer TO demo_spark;
DELETE FROM smartetl.alert_rule WHERE name = 'demo-http-failures';
INSERT INTO smartetl.alert_rule (name, kind, selector, severity, channels, group_wait)
VALUES ('demo-http-failures', 'run_failed', '{"namespace": "demo_http"}', 'critical', '{demo-webhook}', '0');
INSERT INTO smartetl.source (path, format, options)
VALUES (:'log', 'logline', '{"log_format": "<Date> <Time> <Level> <Component>: <Content>",
                             "namespace": "demo_http", "pipeline": "spark_clickstream_agg"}');
SQL
TOKEN=$(psql -X -At -c "SELECT smartetl.create_api_key('demo-spark', 'demo_spark', ARRAY['demo_http'])")
(umask 077 && echo "$TOKEN" >"$DEMO_DIR/demo-spark.token")
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HTTP_PORT/api/v1/health" >/dev/null && break; sleep 0.2; done
echo "listening: $(curl -s "http://127.0.0.1:$HTTP_PORT/api/v1/health")"
echo "API key 'demo-spark' (role demo_spark, namespace demo_http): ${TOKEN:0:20}... (only its hash is stored)"

# the last day of spark_clickstream_agg's sample runs, as the Spark listener would send them:
# a START and a COMPLETE or FAIL event per run, one POST each
psql -X -At >"$LIVE_DIR/events.jsonl" <<'SQL'
SELECT jsonb_build_object('eventType', e.type, 'eventTime', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
         'run', jsonb_build_object('runId', r.external_id, 'facets',
                CASE WHEN e.type = 'FAIL' THEN jsonb_build_object('errorMessage',
                     jsonb_build_object('message', r.error_message, 'programmingLanguage', 'scala')) ELSE '{}' END),
         'job', jsonb_build_object('namespace', 'demo_http', 'name', p.name),
         'inputs', '[]'::jsonb,
         'outputs', CASE WHEN e.type = 'COMPLETE' THEN jsonb_build_array(jsonb_build_object(
                    'namespace', 's3://lake', 'name', 'clickstream_hourly', 'outputFacets',
                    jsonb_build_object('outputStatistics', jsonb_build_object('rowCount', r.rows_written)))) ELSE '[]' END,
         'producer', 'https://github.com/OpenLineage/OpenLineage/tree/1.9.1/integration/spark',
         'schemaURL', 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent')
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id),
     LATERAL (VALUES ('START', r.started_at),
                     (CASE WHEN r.status = 'failed' THEN 'FAIL' ELSE 'COMPLETE' END, r.ended_at)) e(type, at)
WHERE p.namespace = 'demo' AND p.name = 'spark_clickstream_agg' AND r.started_at > now() - interval '1 day'
ORDER BY r.started_at, e.type DESC;
SQL
t0=$(date +%s.%N)
codes=""
while IFS= read -r event; do
	codes+="$(curl -s -o /dev/null -w '%{http_code} ' -X POST "http://127.0.0.1:$HTTP_PORT/api/v1/lineage" \
		-H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" --data-binary "$event")"
done <"$LIVE_DIR/events.jsonl"
echo "POST /api/v1/lineage x $(wc -l <"$LIVE_DIR/events.jsonl") in $(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN {printf "%.2f", t1 - t0}') s," \
	"answers: $(echo "$codes" | tr ' ' '\n' | grep -v '^$' | sort | uniq -c | awk '{printf "%s x %s ", $2, $1}')"
echo "a key limited to demo_http writing elsewhere: $(curl -s -X POST "http://127.0.0.1:$HTTP_PORT/api/v1/lineage" \
	-H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
	--data-binary '{"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z", "run": {"runId": "x"}, "job": {"namespace": "finance", "name": "x"}}')"

# the job's log, written by another process while the worker follows it
(
	for i in 1 2 3 4 5 6; do
		printf '%s INFO spark.scheduler: stage %d finished (200 tasks)\n' "$(date -u '+%Y-%m-%d %H:%M:%S')" "$i"
		sleep 0.3
	done
	printf '%s ERROR spark.executor: Lost executor 7: java.lang.OutOfMemoryError: Java heap space\n' "$(date -u '+%Y-%m-%d %H:%M:%S')"
	printf '\tat org.apache.spark.util.collection.ExternalSorter.insertAll(ExternalSorter.scala:210)\n'
	printf '%s ERROR spark.driver: Job aborted due to stage failure\n' "$(date -u '+%Y-%m-%d %H:%M:%S')"
) >>"$LIVE_DIR/spark.log"
# and the failed run the listener reports right after
RUN_ID="spark_clickstream_agg_live_$(date -u +%Y%m%dT%H%M%S)"
for ev in "START" "FAIL"; do
	curl -s -o /dev/null -X POST "http://127.0.0.1:$HTTP_PORT/api/v1/lineage" -H 'Content-Type: application/json' \
		-H "Authorization: Bearer $TOKEN" --data-binary '{"eventType": "'$ev'", "eventTime": "'"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)"'",
		"run": {"runId": "'"$RUN_ID"'", "facets": {"errorMessage": {"message": "Job aborted due to stage failure: java.lang.OutOfMemoryError: Java heap space", "programmingLanguage": "scala"}}},
		"job": {"namespace": "demo_http", "name": "spark_clickstream_agg"}, "inputs": [], "outputs": [],
		"producer": "https://github.com/OpenLineage/OpenLineage/tree/1.9.1/integration/spark"}'
done
for _ in $(seq 50); do
	[ "$(psql -X -At -c "SELECT count(*) FROM smartetl.delivery d WHERE channel = 'demo-webhook' AND status = 'sent'
	      AND notification->'alerts'->0->'labels'->>'namespace' = 'demo_http'")" != 0 ] &&
	[ "$(psql -X -At -c "SELECT count(*) FROM smartetl.log_event WHERE source LIKE '%/live/spark.log#%'")" -ge 8 ] && break
	sleep 0.2
done
psql_do <<'SQL'
\pset footer off
SELECT p.name AS pipeline, count(*) AS runs_over_http, count(*) FILTER (WHERE r.status = 'failed') AS failed,
       sum(r.rows_written) AS rows_written, max(r.ended_at) AS last_end
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'demo_http' GROUP BY 1;
SELECT r.external_id, r.status, r.started_at, r.duration, left(r.error_message, 60) AS error
FROM smartetl.run r JOIN smartetl.pipeline p USING (pipeline_id) WHERE p.namespace = 'demo_http'
ORDER BY r.started_at DESC LIMIT 4;
SELECT e.line_no, e.ts, e.level, e.component, replace(e.message, E'\n', ' | ') AS followed_log_line
FROM smartetl.log_event e WHERE e.source LIKE '%/live/spark.log#%' ORDER BY e.line_no;
SELECT s.path, f.position, f.line_no, f.last_error FROM smartetl.source s JOIN smartetl.source_file f USING (source_id)
WHERE s.path LIKE '%/live/spark.log';
SELECT channel, status, last_status, sent_at - created_at AS queue_to_sent,
       notification->'alerts'->0->'labels'->>'pipeline' AS pipeline,
       notification->'alerts'->0->'annotations'->>'summary' AS summary
FROM smartetl.delivery WHERE channel = 'demo-webhook'
  AND notification->'alerts'->0->'labels'->>'namespace' = 'demo_http' ORDER BY delivery_id DESC LIMIT 1;
SQL
echo "Send your own: curl -X POST http://127.0.0.1:$HTTP_PORT/api/v1/lineage -H 'Content-Type: application/json' \\"
echo "                 -H \"Authorization: Bearer \$TOKEN\" --data-binary @event.json   (see README \"Connect Airflow / dbt / Spark\")"

cat <<MSG

== smartetl is running
Connect:  psql -h $PGHOST -p $PGPORT -U postgres postgres
Stop:     runuser -u postgres -- $PG_BIN/pg_ctl -D $DEMO_DIR/data stop
Remove:   rm -rf $DEMO_DIR
Report:   $DEMO_DIR/report.html
Intake:   POST http://127.0.0.1:$HTTP_PORT/api/v1/lineage, Authorization: Bearer \$(cat $DEMO_DIR/demo-spark.token)
Followed: $LIVE_DIR/spark.log (append lines; they are stored within a second)
MSG
