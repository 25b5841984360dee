#!/bin/sh
# test/bench/template_ga.sh — accuracy and speed of the template miner (a
# benchmark: it measures and prints; it fails only if the restore check or,
# with -t, the synthetic GA floor fails).
#
# Always: the frontend benchmark test/bench/template_ga.c — GA, FGA and PA
# per Loghub 2k system (held-out folds), GA on the adversarial synthetic
# sets of test/data/template_synth, the restore check, miner_add speed.
# The miner core is frontend-safe: compiled with -DFRONTEND and linked with
# PostgreSQL's frontend static libraries (libpgcommon before libpgport),
# as test/fuzz/build.sh does.
#
# --drain DIR  also Drain on the same lines (test/bench/drain_ga.py), from a
#              checkout of logpai/logparser at DIR that you fetched
#              (needs Debian's python3-pandas and python3-regex).
# --sql        also the in-database speed, in a throwaway cluster (run as
#              root; builds and installs the extension first; on a shared
#              machine hold its install lock around the whole run):
#                * SELECT smartetl.log_template_id(m) FROM t in one
#                  statement over the first 125,000 / 250,000 / 500,000
#                  messages (the Content of the Loghub systems, repeated),
#                  each from an empty template store, then 500,000 again
#                  with the templates known;
#                * logline ingest of each system's log repeated to
#                  500,000 lines in all: dry run (parse + mine), full
#                  ingest, and COPY of the same typed events into
#                  smartetl.log_event, ROUNDS rounds, medians.
# Other arguments go to template_ga (see there: -d DATADIR, -D NAMES,
# -r ROUNDS, -s N, -v NAME, -t MIN, -m, -R).
#
# Environment: CC (default gcc), PG_CONFIG (default
# /usr/lib/postgresql/15/bin/pg_config), SMARTETL_BENCH_PORT (default
# 55437), SMARTETL_BENCH_ROUNDS (default 3), SMARTETL_DATA (default
# ../shared/data beside the checkout).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="${TMPDIR:-/tmp}/smartetl-template_ga"	# build output, outside the repo

sql=0
drain=""
while [ $# -gt 0 ]; do
	case "$1" in
		--sql) sql=1; shift ;;
		--drain) drain=${2:?--drain needs a logparser checkout}; shift 2 ;;
		*) break ;;
	esac
done

if [ -z "${SMARTETL_DATA:-}" ]; then
	SMARTETL_DATA=$(cd "$root/.." && pwd)/shared/data
fi
loghub="$SMARTETL_DATA/loghub_2k"

CC=${CC:-gcc}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
pg_libdir=$("$PG_CONFIG" --libdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
pg_server_inc=$("$PG_CONFIG" --includedir-server 2>/dev/null || echo /usr/include/postgresql/15/server)
pg_internal_inc=$("$PG_CONFIG" --pkgincludedir 2>/dev/null || echo /usr/include/postgresql)/internal

# Debian keeps the static libraries next to the server modules
for d in "$pg_libdir" /usr/lib/postgresql/15/lib; do
	if [ -f "$d/libpgcommon.a" ] && [ -f "$d/libpgport.a" ]; then
		pglibs="$d/libpgcommon.a $d/libpgport.a"
		break
	fi
done
if [ -z "${pglibs:-}" ]; then
	echo "template_ga.sh: libpgcommon.a / libpgport.a not found (pg_config --libdir: $pg_libdir)" >&2
	exit 1
fi

# all warnings as errors (clang: PG headers use gnu_printf, hence the -Wno)
CFLAGS="-O2 -g -DFRONTEND -Wall -Wextra -Werror -Wno-ignored-attributes"
INCLUDES="-I $root/src -I $pg_server_inc -I $pg_internal_inc"

mkdir -p "$out"
# shellcheck disable=SC2086
"$CC" $CFLAGS $INCLUDES -o "$out/template_ga" "$here/template_ga.c" \
	"$root/src/template/miner.c" "$root/src/template/tokenize.c" $pglibs -lm
case " $* " in
	*" -m "*|*" -R "*) exec "$out/template_ga" "$@" ;;
esac
status=0
"$out/template_ga" -d "$loghub" -S "$root/test/data/template_synth" "$@" || status=$?

[ -n "$drain" ] && { echo; /usr/bin/python3 "$here/drain_ga.py" "$drain" "$loghub"; }
[ "$sql" -eq 1 ] || exit $status

# ---- in the database ----
[ "$(id -u)" -eq 0 ] || { echo "template_ga.sh --sql: run as root (the cluster helpers use runuser)" >&2; exit 2; }
PORT=${SMARTETL_BENCH_PORT:-55437}
ROUNDS=${SMARTETL_BENCH_ROUNDS:-3}
cd "$root"
# shellcheck source=../../scripts/lib.sh
. scripts/lib.sh
DIR=$(mktemp -d /tmp/tgabench.XXXXXX)
trap 'cluster_stop "$DIR"; rm -rf "$DIR"' EXIT
build_install >/dev/null
cluster_start "$DIR" "$PORT" >/dev/null
mkdir -p "$DIR/files" && chown postgres "$DIR/files"

# the Content of every system (COPY text format), and each log repeated
/usr/bin/python3 - "$loghub" "$DIR/files" <<'PY'
import csv, os, sys
data, out = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(os.path.join(data, "formats.csv"))))
per = 500000 // len(rows)
with open(os.path.join(out, "messages.txt"), "w") as m, open(os.path.join(out, "systems.tsv"), "w") as t:
    for r in rows:
        s = r["dataset"]
        for row in csv.DictReader(open(os.path.join(data, "original", s, s + "_2k.log_structured.csv"),
                                       encoding="utf-8", errors="replace")):
            c = row["Content"]
            m.write(c.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r") + "\n")
        lines = [l for l in open(os.path.join(data, "original", r["log_file"]), encoding="utf-8",
                                 errors="replace").read().replace("\r\n", "\n").split("\n") if l]
        path = os.path.join(out, s + ".log")
        with open(path, "w") as f:
            for i in range(per):
                f.write(lines[i % len(lines)] + "\n")
        t.write("%s\t%s\t%s\n" % (s, path, r["log_format"]))
PY
chown -R postgres "$DIR/files"
drain_rate="$DIR/files/systems.tsv"

psql -X -q -v ON_ERROR_STOP=1 -v dir="$DIR/files" -v rounds="$ROUNDS" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS smartetl;
CREATE TABLE bench_msg (id serial, m text);
SELECT format('COPY bench_msg (m) FROM %L', :'dir' || '/messages.txt') \gexec
CREATE TABLE bench_t AS
SELECT g, b.m FROM generate_series(0, 499999) g JOIN bench_msg b ON b.id = 1 + g % (SELECT count(*) FROM bench_msg) ORDER BY g;
VACUUM ANALYZE bench_t;
CREATE TABLE bench_sys (name text, file text, fmt text);
SELECT format('COPY bench_sys FROM %L WITH (FORMAT csv, DELIMITER E''\t'')', :'dir' || '/systems.tsv') \gexec

-- seconds for one statement, run by EXECUTE between two clock readings
CREATE FUNCTION bench_time(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t0);
END $$;

-- every system's log through smartetl.ingest_file
CREATE FUNCTION bench_ingest(dry boolean) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp(); r record;
BEGIN
    FOR r IN SELECT * FROM bench_sys LOOP
        PERFORM smartetl.ingest_file(r.file, 'logline', jsonb_build_object(
            'log_format', r.fmt, 'pipeline', 'bench_' || r.name, 'source', r.name,
            'dry_run', CASE WHEN dry THEN to_jsonb('parse'::text) ELSE 'false' END));
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0);
END $$;

\echo
\echo smartetl.log_template_id(m) over N messages, one statement each, from an empty template store
\echo (the last row: 500,000 again with the templates known); wall time with the commit
CREATE TEMP TABLE percall (n text, secs float8, templates bigint);
TRUNCATE smartetl.template_text, smartetl.template_seen;
SELECT clock_timestamp() AS t0 \gset
SELECT count(smartetl.log_template_id(m)) AS n FROM bench_t WHERE g < 125000 \gset
INSERT INTO percall SELECT '125,000', extract(epoch FROM clock_timestamp() - :'t0'), count(*) FROM smartetl.template;
TRUNCATE smartetl.template_text, smartetl.template_seen;
SELECT clock_timestamp() AS t0 \gset
SELECT count(smartetl.log_template_id(m)) AS n FROM bench_t WHERE g < 250000 \gset
INSERT INTO percall SELECT '250,000', extract(epoch FROM clock_timestamp() - :'t0'), count(*) FROM smartetl.template;
TRUNCATE smartetl.template_text, smartetl.template_seen;
SELECT clock_timestamp() AS t0 \gset
SELECT count(smartetl.log_template_id(m)) AS n FROM bench_t \gset
INSERT INTO percall SELECT '500,000', extract(epoch FROM clock_timestamp() - :'t0'), count(*) FROM smartetl.template;
SELECT clock_timestamp() AS t0 \gset
SELECT count(smartetl.log_template_id(m)) AS n FROM bench_t \gset
INSERT INTO percall SELECT '500,000 again', extract(epoch FROM clock_timestamp() - :'t0'), count(*) FROM smartetl.template;
SELECT n AS messages, round(secs::numeric, 3) AS seconds,
       to_char(replace(split_part(n, ' ', 1), ',', '')::int / secs, 'FM999,999,999') AS messages_per_s,
       templates
FROM percall;

\echo
\echo logline ingest of the Loghub logs repeated to 500,000 lines: medians of the rounds (one untimed
\echo warm-up ingest first, so the templates are known); each ingest in its own statement
CREATE TEMP TABLE bulk (round int, what text, secs float8);
SELECT bench_ingest(false) AS warmup_secs \gset
SELECT format('COPY (SELECT pipeline_id, run_id, ts, level, component, message, template_id, source, line_no, attrs FROM smartetl.log_event) TO %L', :'dir' || '/events.copy') \gexec
SELECT count(*) AS events FROM smartetl.log_event \gset
SELECT q FROM generate_series(1, :rounds) r, LATERAL (VALUES
    (1, format($f$INSERT INTO bulk VALUES (%s, 'dry run (parse + mine)', bench_ingest(true))$f$, r)),
    (2, 'TRUNCATE smartetl.log_event'),
    (3, format($f$INSERT INTO bulk VALUES (%s, 'ingest (parse + mine + store)', bench_ingest(false))$f$, r)),
    (4, 'TRUNCATE smartetl.log_event'),
    (5, format($f$INSERT INTO bulk VALUES (%s, 'COPY of the same typed events into log_event', bench_time(%L))$f$, r,
               format('COPY smartetl.log_event (pipeline_id, run_id, ts, level, component, message, template_id, source, line_no, attrs) FROM %L',
                      :'dir' || '/events.copy'))),
    (6, 'TRUNCATE smartetl.log_event')) v(k, q) ORDER BY r, k \gexec
SELECT what, round(percentile_disc(0.5) WITHIN GROUP (ORDER BY secs)::numeric, 3) AS median_s,
       to_char(:events / percentile_disc(0.5) WITHIN GROUP (ORDER BY secs), 'FM999,999,999') AS lines_per_s,
       string_agg(round(secs::numeric, 3)::text, ' ' ORDER BY round) AS rounds_s
FROM bulk GROUP BY what ORDER BY min(round), what;
SELECT round((percentile_disc(0.5) WITHIN GROUP (ORDER BY secs) FILTER (WHERE what LIKE 'ingest%') /
              percentile_disc(0.5) WITHIN GROUP (ORDER BY secs) FILTER (WHERE what LIKE 'COPY%'))::numeric, 2)
       AS ingest_over_copy
FROM bulk;
SQL
[ -n "$drain" ] && { echo; /usr/bin/python3 "$here/drain_ga.py" "$drain" "$loghub" --rate "$drain_rate" | tail -1; }
exit $status
