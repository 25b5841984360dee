#!/bin/bash
# test/prometheus/run.sh — scrape smartetl's Prometheus metrics through a real
# prometheus-postgres-exporter (Debian package, 0.11) loaded with
# prometheus/queries.yaml, and check them against a recount from smartetl.run
# written in this test (not against smartetl.metrics, the view under test).
#
#   PGHOST=/socket/dir PGPORT=5432 PGUSER=postgres PGDATABASE=etl test/prometheus/run.sh
#
# The database must have smartetl installed and some runs ingested.  The
# exporter is installed with apt-get when missing (needs root), listens on
# 127.0.0.1:$SMARTETL_EXPORTER_PORT (default: a port the kernel finds free),
# and is stopped on exit.  Run as root, the exporter runs as the Debian
# service user "prometheus" when that user can reach the server's socket,
# else as the owner of the socket (e.g. postgres); never as root
# (override with SMARTETL_EXPORTER_USER).  The role it connects as is
# $SMARTETL_EXPORTER_PGUSER (default $PGUSER); SMARTETL_PROM_QUERIES names
# another query file to test.  Output is TAP; the exit status
# is non-zero when a test fails.  promtool (Debian package prometheus,
# installed by scripts/lib.sh) also checks and unit-tests
# prometheus/smartetl-rules.yml; without it those two checks fail.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
QUERIES=${SMARTETL_PROM_QUERIES:-$ROOT/prometheus/queries.yaml}
RULES=$ROOT/prometheus/smartetl-rules.yml
RULES_TEST=$ROOT/test/prometheus/rules_test.yml
EXPORTER=/usr/bin/prometheus-postgres-exporter
export PATH="$PATH:/usr/sbin:/sbin"

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n - # SKIP $*"; }
diag() { sed 's/^/# /'; }
bail() { echo "Bail out! $*"; exit 1; }

: "${PGHOST:?set PGHOST (a unix socket directory or a host name)}"
export PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-$(id -un)}
export PGDATABASE=${PGDATABASE:-$PGUSER}

# --- the exporter ----------------------------------------------------------
if [ ! -x "$EXPORTER" ]; then
	[ "$(id -u)" = 0 ] || bail "$EXPORTER is missing; install prometheus-postgres-exporter (as root)"
	echo "# installing prometheus-postgres-exporter"
	export DEBIAN_FRONTEND=noninteractive
	apt_log=$(mktemp)
	if ! apt-cache show prometheus-postgres-exporter >/dev/null 2>&1; then
		apt-get update -q >"$apt_log" 2>&1 || { diag <"$apt_log"; bail "apt-get update failed"; }
	fi
	apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
		prometheus-postgres-exporter curl >>"$apt_log" 2>&1 ||
		{ tail -20 "$apt_log" | diag; bail "apt-get install prometheus-postgres-exporter failed"; }
	rm -f "$apt_log"
fi
command -v curl >/dev/null || bail "curl is missing"
command -v psql >/dev/null || bail "psql is missing"
version=$("$EXPORTER" --version 2>&1 | sed -n 's/.*version \([^ ]*\).*/\1/p' | head -1)
echo "# prometheus-postgres-exporter $version"

work=$(mktemp -d /tmp/smartetl-prom.XXXXXX)
chmod 755 "$work"
exporter_pid=
cleanup() {
	if [ -n "$exporter_pid" ] && kill -0 "$exporter_pid" 2>/dev/null; then
		kill "$exporter_pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$exporter_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$exporter_pid" 2>/dev/null
		wait "$exporter_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# lib/pq URL: percent-encode every byte but the unreserved characters
urlencode() {
	local LC_ALL=C s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

exporter_pguser=${SMARTETL_EXPORTER_PGUSER:-$PGUSER}
# 0.11.1 rewrites the URL as key='value' pairs that its collector code then
# splits on spaces ("Failed to create PostgresCollector ... malformed dsn")
for v in "$exporter_pguser" "$PGDATABASE" "$PGHOST" "${PGPASSWORD:-}"; do
	[[ $v != *[[:space:]]* ]] ||
		bail "prometheus-postgres-exporter 0.11 cannot connect when the user, database, host or password contains a space"
done
dsn="postgresql://$(urlencode "$exporter_pguser")"
[ -n "${PGPASSWORD:-}" ] && dsn+=":$(urlencode "$PGPASSWORD")"
case $PGHOST in
/*) dsn+="@:$PGPORT/$(urlencode "$PGDATABASE")?host=$(urlencode "$PGHOST")&sslmode=disable" ;;
*) dsn+="@$PGHOST:$PGPORT/$(urlencode "$PGDATABASE")?sslmode=${PGSSLMODE:-disable}" ;;
esac

# who runs the exporter: never root
run_as=()
run_user=$(id -un)
if [ "$(id -u)" = 0 ]; then
	socket=$PGHOST/.s.PGSQL.$PGPORT
	[[ $PGHOST != /* || -S $socket ]] || bail "no PostgreSQL socket $socket"
	can_reach() { setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups -- test -w "$socket"; }
	if [ -n "${SMARTETL_EXPORTER_USER:-}" ]; then
		run_user=$SMARTETL_EXPORTER_USER
	elif [[ $PGHOST != /* ]]; then
		run_user=prometheus
	elif id prometheus >/dev/null 2>&1 && can_reach prometheus; then
		run_user=prometheus
	else
		echo "# user prometheus cannot reach the socket $socket"
		run_user=$(stat -c %U "$socket" 2>/dev/null || stat -c %U "$PGHOST")
	fi
	[ "$run_user" != root ] || bail "refusing to run the exporter as root (set SMARTETL_EXPORTER_USER)"
	id "$run_user" >/dev/null 2>&1 || bail "no such user: $run_user"
	run_as=(setpriv --reuid="$run_user" --regid="$(id -g "$run_user")" --init-groups --)
	# the exporter must be able to read the query file
	if ! "${run_as[@]}" test -r "$QUERIES"; then
		cp "$QUERIES" "$work/queries.yaml" && chmod 644 "$work/queries.yaml"
		QUERIES=$work/queries.yaml
	fi
fi
echo "# exporter runs as OS user $run_user, connects as role $exporter_pguser to $PGDATABASE on $PGHOST:$PGPORT"

# a port the kernel says is free right now (SMARTETL_EXPORTER_PORT pins one);
# should another process take it before the exporter binds, the exporter
# exits and is started again on another port
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
up=no
for attempt in 1 2 3; do
	port=${SMARTETL_EXPORTER_PORT:-$(free_port)}
	flags=(--extend.query-path="$QUERIES" --web.listen-address="127.0.0.1:$port"
		--disable-default-metrics --disable-settings-metrics
		--no-collector.database --no-collector.bgwriter)
	echo "# $EXPORTER ${flags[*]}"
	(cd "$work" && exec env DATA_SOURCE_NAME="$dsn" "${run_as[@]}" "$EXPORTER" "${flags[@]}") \
		>"$work/exporter.log" 2>&1 &
	exporter_pid=$!
	url=http://127.0.0.1:$port/metrics
	# poll, at most 30 s
	for _ in $(seq 150); do
		kill -0 "$exporter_pid" 2>/dev/null || break
		if curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; then up=yes; break; fi
		sleep 0.2
	done
	[ $up = yes ] && break
	kill -0 "$exporter_pid" 2>/dev/null && break # running but not answering: no retry
	[ -z "${SMARTETL_EXPORTER_PORT:-}" ] && grep -q 'address already in use' "$work/exporter.log" || break
	echo "# port $port was taken before the exporter bound it: another port"
done
if [ $up = yes ] && kill -0 "$exporter_pid" 2>/dev/null; then
	ok "exporter $version answers on $url"
else
	not_ok "exporter $version answers on $url"
	diag <"$work/exporter.log"
	echo "1..$n"
	exit 1
fi

# --- scrape and compare ----------------------------------------------------
# The oracle is a recount from smartetl.run, smartetl.pipeline and
# smartetl.alert written here (not smartetl.metrics, the view the exporter
# reads, nor the rollups it reads): counts of stored runs, exact
# percentile_cont of the durations of finished runs in the hours of the last
# 168 (the qsketch's 0.5 % bound allowed), seconds since the last success,
# stale against the pipeline's expected interval (its own, else the median
# gap between its last 31 first tries), failing (the latest finished run
# failed) and firing alerts.  One psql session recounts, scrapes the
# exporter, recounts again and compares.  A scraped value must match the
# "before" or the "after" recount (freshness must lie between them), so the
# checks hold even when the 168-hour window or the stale threshold moves
# during the scrape.
export SCRAPE_FILE=$work/scrape.txt SCRAPE_URL=$url
results=$work/results
psql -X -q -At -F $'\x1f' -v ON_ERROR_STOP=1 -o "$results" 2>"$work/psql.err" <<'SQL'
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE TEMP VIEW recount AS
SELECT p.namespace, p.name AS pipeline,
       (SELECT count(*) FROM smartetl.run r
        WHERE r.pipeline_id = p.pipeline_id AND coalesce(r.started_at, r.ended_at) IS NOT NULL) AS runs_total,
       (SELECT count(*) FROM smartetl.run r
        WHERE r.pipeline_id = p.pipeline_id AND coalesce(r.started_at, r.ended_at) IS NOT NULL
          AND r.status = 'failed') AS failures_total,
       q.p[1] AS duration_p50_seconds, q.p[2] AS duration_p95_seconds, q.p[3] AS duration_p99_seconds,
       extract(epoch FROM now() - coalesce(h.last_success, h.first_run))::float8 AS freshness_seconds,
       CASE WHEN now() - coalesce(h.last_success, h.first_run)
                 > coalesce(p.expected_interval, g.median_gap) * 1.5 THEN 1 ELSE 0 END AS stale,
       CASE WHEN (SELECT r.status FROM smartetl.run r
                  WHERE r.pipeline_id = p.pipeline_id AND r.status IN ('success', 'failed')
                  ORDER BY coalesce(r.started_at, r.ended_at) DESC NULLS LAST LIMIT 1) = 'failed'
            THEN 1 ELSE 0 END AS failing,
       (SELECT count(*) FROM smartetl.alert a
        WHERE a.state = 'firing' AND a.labels->>'namespace' = p.namespace
          AND a.labels->>'pipeline' = p.name) AS open_alerts
FROM smartetl.pipeline p
CROSS JOIN LATERAL (
    SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM r.duration)) AS p
    FROM smartetl.run r
    WHERE r.pipeline_id = p.pipeline_id AND r.status IN ('success', 'failed') AND r.duration IS NOT NULL
      AND date_trunc('hour', coalesce(r.started_at, r.ended_at)) >= now() - interval '168 hours') q
CROSS JOIN LATERAL (
    SELECT min(coalesce(r.started_at, r.ended_at)) AS first_run,
           max(coalesce(r.ended_at, r.started_at)) FILTER (WHERE r.status = 'success') AS last_success
    FROM smartetl.run r WHERE r.pipeline_id = p.pipeline_id) h
CROSS JOIN LATERAL (
    SELECT make_interval(secs => percentile_cont(0.5) WITHIN GROUP (ORDER BY gap)) AS median_gap
    FROM (SELECT extract(epoch FROM t - lag(t) OVER (ORDER BY t)) AS gap
          FROM (SELECT coalesce(r.started_at, r.ended_at) AS t FROM smartetl.run r
                WHERE r.pipeline_id = p.pipeline_id AND coalesce(r.started_at, r.ended_at) < now()
                  AND r.attempt <= 1
                ORDER BY 1 DESC LIMIT 31) last31) gaps
    WHERE gap > 0 HAVING count(*) >= 3) g;
CREATE TEMP TABLE before AS SELECT * FROM recount;
\! curl -fsS --max-time 30 -o "$SCRAPE_FILE" "$SCRAPE_URL"
CREATE TEMP TABLE after AS SELECT * FROM recount;
\set scrape `cat "$SCRAPE_FILE"`
CREATE TEMP TABLE line AS
SELECT l AS line FROM regexp_split_to_table(:'scrape', E'\n') l;

-- samples: name{labels} value
CREATE TEMP TABLE sample AS
SELECT m[1] AS name, coalesce(m[3], '') AS labels, m[4] AS value_text,
       CASE lower(m[4]) WHEN 'nan' THEN 'NaN'::float8 WHEN '+inf' THEN 'Infinity'::float8
                        WHEN '-inf' THEN '-Infinity'::float8 ELSE m[4]::float8 END AS value
FROM line, regexp_match(line, '^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?[0-9]+)?$') m
WHERE line !~ '^#' AND m IS NOT NULL;

-- labels, unescaped (\\, \" and \n)
CREATE TEMP TABLE series AS
SELECT s.name, s.value, s.value_text,
       (SELECT jsonb_object_agg(l[1], replace(replace(replace(replace(l[2], '\\', chr(1)), '\"', '"'),
                                                              '\n', E'\n'), chr(1), '\'))
        FROM regexp_matches(s.labels, '([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', 'g') l) AS labels
FROM sample s;

CREATE TEMP TABLE expected AS
SELECT coalesce(b.namespace, a.namespace) AS namespace, coalesce(b.pipeline, a.pipeline) AS pipeline,
       to_jsonb(b) AS b, to_jsonb(a) AS a
FROM before b FULL JOIN after a USING (namespace, pipeline);

CREATE TEMP TABLE metric (col text, type text, kind text, ord int);
INSERT INTO metric VALUES
  ('runs_total', 'counter', 'exact', 1), ('failures_total', 'counter', 'exact', 2),
  ('duration_p50_seconds', 'gauge', 'sketch', 3), ('duration_p95_seconds', 'gauge', 'sketch', 4),
  ('duration_p99_seconds', 'gauge', 'sketch', 5), ('freshness_seconds', 'gauge', 'between', 6),
  ('stale', 'gauge', 'exact', 7), ('failing', 'gauge', 'exact', 8), ('open_alerts', 'gauge', 'exact', 9);

-- "t|description" for a pass, "f|description|diagnostic" for a failure
SELECT count(*) > 0, format('the recount has pipelines (%s)', count(*)) FROM expected;
SELECT count(*) > 0 AND count(*) FILTER (WHERE (b->>'runs_total')::bigint > 0) > 0
         AND count(*) FILTER (WHERE (b->>'failures_total')::bigint > 0) > 0
         AND count(*) FILTER (WHERE b->>'duration_p95_seconds' IS NOT NULL) > 0,
       'the recount has pipelines with runs, with failures and with durations in the last 7 days',
       format('%s pipelines', count(*))
FROM expected;

SELECT coalesce(bool_and(value = 1), false), 'pg_up 1',
       'got ' || coalesce(string_agg(value_text, ', '), 'no pg_up')
FROM series WHERE name = 'pg_up';

SELECT coalesce(bool_and(value = 0), false), 'pg_exporter_last_scrape_error 0',
       'got ' || coalesce(string_agg(value_text, ', '), 'no pg_exporter_last_scrape_error')
FROM series WHERE name = 'pg_exporter_last_scrape_error';

SELECT coalesce(bool_and(value = 0), false), 'pg_exporter_user_queries_load_error 0 (queries.yaml loaded)',
       'got ' || coalesce(string_agg(value_text || ' ' || labels::text, ', '), 'no pg_exporter_user_queries_load_error')
FROM series WHERE name = 'pg_exporter_user_queries_load_error';

SELECT coalesce(bool_and(l.line = format('# TYPE smartetl_pipeline_%s %s', m.col, m.type)), false)
         AND count(l.line) = 1,
       format('smartetl_pipeline_%s has TYPE %s', m.col, m.type),
       'got ' || coalesce(string_agg(l.line, ', '), 'no TYPE line')
FROM metric m
LEFT JOIN line l ON starts_with(l.line, '# TYPE smartetl_pipeline_' || m.col || ' ')
GROUP BY m.col, m.type, m.ord ORDER BY m.ord;

SELECT count(*) = 0, 'every smartetl series is a known metric of a stored pipeline',
       string_agg(s.name || ' ' || s.labels::text, ', ')
FROM series s
WHERE s.name LIKE 'smartetl\_%'
  AND (s.name NOT IN (SELECT 'smartetl_pipeline_' || col FROM metric)
       OR NOT EXISTS (SELECT FROM expected e
                      WHERE e.namespace = s.labels->>'namespace' AND e.pipeline = s.labels->>'pipeline'));

SELECT count(*) = 0, 'no duplicate series', string_agg(DISTINCT s.name, ', ')
FROM (SELECT name, labels FROM series GROUP BY 1, 2 HAVING count(*) > 1) s;

-- one check per pipeline and metric
WITH got AS (
    SELECT e.namespace, e.pipeline, m.col, m.kind, m.ord,
           (e.b->>m.col)::float8 AS b, (e.a->>m.col)::float8 AS a,
           array_agg(s.value) FILTER (WHERE s.name IS NOT NULL) AS vals,
           string_agg(s.value_text, ', ') AS texts
    FROM expected e CROSS JOIN metric m
    LEFT JOIN series s ON s.name = 'smartetl_pipeline_' || m.col
                      AND s.labels->>'namespace' = e.namespace AND s.labels->>'pipeline' = e.pipeline
    GROUP BY e.namespace, e.pipeline, e.b, e.a, m.col, m.kind, m.ord
), judged AS (
    SELECT *, vals[1] AS v,
           CASE
             WHEN coalesce(cardinality(vals), 0) > 1 THEN false
             -- NULL in SQL: no sample or NaN
             WHEN b IS NULL AND a IS NULL THEN vals IS NULL OR vals[1] = 'NaN'::float8
             WHEN vals IS NULL OR vals[1] IN ('NaN', 'Infinity', '-Infinity') THEN
                  (b IS NULL OR a IS NULL) AND vals[1] = 'NaN'::float8
             WHEN kind = 'between' THEN
                  vals[1] BETWEEN coalesce(b, a) - 1e-6 AND coalesce(a, b) + 1e-6
             -- the qsketch's documented bound: 0.5 % of the exact order statistic
             WHEN kind = 'sketch' THEN
                  abs(vals[1] - b) <= 0.005 * abs(b) + 1e-9 OR abs(vals[1] - a) <= 0.005 * abs(a) + 1e-9
             ELSE abs(vals[1] - b) <= 1e-9 * greatest(1, abs(b))
               OR abs(vals[1] - a) <= 1e-9 * greatest(1, abs(a))
           END AS pass
    FROM got
)
SELECT coalesce(pass, false),
       format('smartetl_pipeline_%s{namespace=%s,pipeline=%s} %s', col, to_json(namespace), to_json(pipeline),
              CASE WHEN b IS NULL AND a IS NULL THEN 'absent or NaN (NULL in SQL)'
                   WHEN kind = 'between' THEN 'between the recounts before and after the scrape'
                   WHEN kind = 'sketch' THEN 'within 0.5 % of the exact recount'
                   ELSE 'equals the recount' END),
       format('scraped %s; recount before %s, after %s', coalesce(texts, 'nothing'),
              coalesce(b::text, 'NULL'), coalesce(a::text, 'NULL'))
FROM judged ORDER BY namespace, pipeline, ord;
SQL
psql_rc=$?

if [ -s "$SCRAPE_FILE" ]; then
	ok "scrape $url ($(grep -c '^smartetl_' "$SCRAPE_FILE") smartetl series)"
else
	not_ok "scrape $url"
	diag <"$work/exporter.log"
fi
if [ -f "$results" ]; then
	while IFS=$'\x1f' read -r pass desc why; do
		desc=${desc//#/\\#} # a "#" would start a TAP directive
		if [ "$pass" = t ]; then ok "$desc"; else not_ok "$desc"; printf '%s\n' "$why" | diag; fi
	done <"$results"
fi
if [ $psql_rc -ne 0 ]; then
	not_ok "compare the scrape with the recount from smartetl.run (psql exit $psql_rc)"
	diag <"$work/psql.err"
fi

# non-fatal query problems (e.g. a value the exporter cannot parse) are only logged
if grep -Eq 'level=(error|warn)|err=' "$work/exporter.log"; then
	not_ok "exporter log has no errors"
	grep -E 'level=(error|warn)|err=' "$work/exporter.log" | head -20 | diag
else
	ok "exporter log has no errors"
fi

# --- the alert rules -------------------------------------------------------
if command -v promtool >/dev/null; then
	if out=$(promtool check rules "$RULES" 2>&1); then
		ok "promtool check rules prometheus/smartetl-rules.yml"
	else
		not_ok "promtool check rules prometheus/smartetl-rules.yml"
		printf '%s\n' "$out" | diag
	fi
	if out=$(cd "$work" && promtool test rules "$RULES_TEST" 2>&1); then
		ok "promtool test rules test/prometheus/rules_test.yml"
	else
		not_ok "promtool test rules test/prometheus/rules_test.yml"
		printf '%s\n' "$out" | diag
	fi
else
	not_ok "promtool check rules prometheus/smartetl-rules.yml"
	echo "# promtool is not installed (apt-get install prometheus)"
	not_ok "promtool test rules test/prometheus/rules_test.yml"
fi

echo "1..$n"
[ $failed -eq 0 ] || { echo "# $failed of $n tests failed"; exit 1; }
