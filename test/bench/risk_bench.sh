#!/usr/bin/env bash
# test/bench/risk_bench.sh — failure-risk quality out of time, on histories
# the model was not developed on (measures and prints; asserts nothing).
#
# For each dataset, in its own database: load the runs, train with
# smartetl.train_risk_model('1 day', 'auto', until = the time 70 % of the
# runs had started) — which evaluates the candidates by rolling origin and
# picks the one to serve — then ask smartetl.failure_risk(pipeline, '1 day',
# midnight) for every pipeline (with a run within 30 days) at each midnight
# of the last 30 % whose day is over, as a user would.  Printed side by
# side on those pipeline-days: the three baselines (calibrated as the
# registry stores them), each learned candidate, what failure_risk served,
# and scikit-learn's HistGradientBoostingClassifier (Debian python3-sklearn)
# trained on the very same samples (exported from smartetl._risk_samples_v2).
# The verdict per dataset: OK when the served model is a baseline, or beats
# the best baseline on the test days by at least 0.02 ROC-AUC.
#
# Datasets: borg = the Google Borg 2011 trace in ../shared/data, only the
# jobs with an even logical_job_id (the odd ones were used to develop the
# features and defaults); ci, noise, noise_rates, periodic, drift, short =
# synthetic adversarial histories from test/bench/risk_histories.py with
# seed 1001 (development used seeds 1 and 10-15).
#
# Usage (as root): test/bench/risk_bench.sh [--datasets "borg ci ..."] [--seed N] [--horizon '1 day']
# Own throwaway cluster in /tmp/riskbench.<pid>, port 54346; removed on exit.
set -euo pipefail
DATASETS="borg ci noise noise_rates periodic drift short"
SEED=1001
HORIZON='1 day'
while [ $# -gt 0 ]; do
	case "$1" in
		--datasets) DATASETS=$2; shift 2 ;;
		--seed) SEED=$2; shift 2 ;;
		--horizon) HORIZON=$2; shift 2 ;;
		*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }
cd "$(dirname "$0")/../.."
REPO=$(pwd)
source scripts/lib.sh
DATA=${SMARTETL_DATA:-$(cd "$REPO/.." && pwd)/shared/data}
BORG=$DATA/pipeline_runs/google_borg_2011/job_runs_7d.csv
if [[ " $DATASETS " == *" borg "* ]] && [ ! -f "$BORG" ]; then
	echo "risk_bench.sh: the Borg trace is not at $DATA/pipeline_runs/google_borg_2011" \
		"(put shared/data beside the checkout or set SMARTETL_DATA); skipping it" >&2
	DATASETS=${DATASETS//borg/}
fi
/usr/bin/python3 -c 'import sklearn' 2>/dev/null || apt-get install -y -q python3-sklearn >/dev/null
DIR=/tmp/riskbench.$$
PORT=54346
trap 'cluster_stop "$DIR" >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || rm -rf "$DIR"' EXIT
cluster_init "$DIR" "$PORT"
cluster_start "$DIR" "$PORT" >/dev/null
export PGHOST=$(socket_dir "$DIR") PGPORT=$PORT PGUSER=postgres
OUT=$DIR/out
mkdir -p "$OUT" && chown postgres "$OUT"

for ds in $DATASETS; do
	log "$ds"
	createdb "bench_$ds"
	export PGDATABASE="bench_$ds"
	psql -X -q -c "SET client_min_messages = warning; CREATE EXTENSION smartetl;"
	if [ "$ds" = borg ]; then
		# the evaluation half of the jobs
		/usr/bin/python3 - "$BORG" "$OUT/borg.csv" <<'PY'
import csv, sys
r = csv.reader(open(sys.argv[1])); w = csv.writer(open(sys.argv[2], 'w'))
w.writerow(next(r))
for row in r:
    if int(row[1]) % 2 == 0:
        w.writerow(row)
PY
		OPTS='{"namespace": "borg", "columns": {"pipeline": "logical_job_id", "external_id": "job_id",
		       "started_at": "schedule_us", "ended_at": "end_us", "status": "final_event"},
		       "epoch_unit": "us", "epoch_origin": "2011-05-01 22:50:00+00",
		       "status_map": {"EVICT": "failed", "LOST": "failed"}}'
	else
		/usr/bin/python3 test/bench/risk_histories.py "$ds" "$SEED" >"$OUT/$ds.csv"
		OPTS="{\"namespace\": \"$ds\"}"
	fi
	chown postgres "$OUT/$ds.csv"
	psql -X -q -At -v ON_ERROR_STOP=1 -v file="$OUT/$ds.csv" -v opts="$OPTS" -v h="$HORIZON" \
		-v registry="$OUT/${ds}_registry.csv" -v scores="$OUT/${ds}_scores.csv" -v testcsv="$OUT/${ds}_test.csv" \
		-v traincsv="$OUT/${ds}_train.csv" <<'SQL'
SET client_min_messages = warning;
SELECT inserted AS runs FROM smartetl.ingest_file(:'file', 'csv', :'opts'::jsonb) \gset
SELECT percentile_disc(0.7) WITHIN GROUP (ORDER BY run_at) AS cut, max(run_at) AS last FROM smartetl.run \gset
\timing on
SELECT smartetl.train_risk_model(:'h', 'auto', jsonb_build_object('until', :'cut')) AS learned \gset
\timing off
COPY (SELECT coalesce(options->>'baseline', algorithm), status, metrics->>'roc_auc', metrics->>'pr_auc',
             metrics->>'brier', test_rows, note
      FROM smartetl.model WHERE status IN ('champion', 'candidate') ORDER BY model_id) TO :'registry' CSV;
-- each midnight of the last 30 % whose horizon is over, every pipeline with a run within 30 days
CREATE TEMP TABLE test AS
SELECT p.pipeline_id, p.name, t.at, r.label, r.features
FROM smartetl.pipeline p
CROSS JOIN generate_series(date_trunc('day', :'cut'::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day',
                           :'last'::timestamptz - :'h'::interval, interval '1 day') t(at)
CROSS JOIN LATERAL smartetl._risk_rows(p.pipeline_id, ARRAY[t.at], :'h', '30 days') r;
-- what a user gets: failure_risk, served by the champion
ALTER TABLE test ADD COLUMN served double precision;
UPDATE test SET served = smartetl.failure_risk(name, :'h', at);
-- every candidate of the registry, with its own calibration
COPY (SELECT coalesce(m.options->>'baseline', m.algorithm) AS candidate, t.pipeline_id, t.label,
             smartetl._calibrate((smartetl._model_predict(m.model_id, m.algorithm, m.model, t.features))[1],
                                 m.calibration) AS p
      FROM test t, smartetl.model m WHERE m.status IN ('champion', 'candidate')
      UNION ALL
      SELECT 'served', pipeline_id, label, served FROM test) TO :'scores' CSV;
COPY (SELECT label, array_to_string(features, ',') FROM test ORDER BY at, pipeline_id) TO :'testcsv' CSV;
COPY (SELECT label, array_to_string(features, ',')
      FROM smartetl._risk_samples_v2(:'h', smartetl._risk_step(:'h'), :'cut') ORDER BY t, pipeline_id)
  TO :'traincsv' CSV;
\echo :runs :cut
SQL
done

log "results"
/usr/bin/python3 - "$OUT" $DATASETS <<'PY'
import csv, sys, time, collections
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score, average_precision_score, brier_score_loss
out, datasets = sys.argv[1], sys.argv[2:]
BASE = ['fail_rate_7d', 'fail_count_7d', 'last_failed']
def load(path):
    y, X = [], []
    for r in csv.reader(open(path)):
        y.append(float(r[0])); X.append([float(v) for v in r[1].split(',')])
    return np.array(y), np.array(X)
def auc(y, p): return roc_auc_score(y, p) if 0 < y.sum() < len(y) else float('nan')
rows, briers, notes = [], [], []
for ds in datasets:
    scores = collections.defaultdict(lambda: ([], []))
    for cand, pid, label, p in csv.reader(open('%s/%s_scores.csv' % (out, ds))):
        scores[cand][0].append(float(label)); scores[cand][1].append(float(p))
    reg = list(csv.reader(open('%s/%s_registry.csv' % (out, ds))))
    served = [r[0] for r in reg if r[1] == 'champion'][0]
    val = {r[0]: float(r[2]) if r[2] else float('nan') for r in reg}
    ytr, Xtr = load('%s/%s_train.csv' % (out, ds)); yte, Xte = load('%s/%s_test.csv' % (out, ds))
    t0 = time.time()
    hgb = HistGradientBoostingClassifier(random_state=0).fit(Xtr, ytr).predict_proba(Xte)[:, 1]
    res = {c: (auc(np.array(y), np.array(p)), brier_score_loss(y, p), average_precision_score(y, p) if sum(y) else float('nan'))
           for c, (y, p) in scores.items()}
    res['sklearn'] = (auc(yte, hgb), brier_score_loss(yte, hgb), average_precision_score(yte, hgb) if yte.sum() else float('nan'))
    y = np.array(scores['served'][0])
    best_base = max(BASE, key=lambda b: np.nan_to_num(res[b][0], nan=-1))
    ok = served in BASE or res['served'][0] >= res[best_base][0] + 0.02
    f = lambda c, i=0: '%.3f' % res[c][i] if c in res else '–'
    rows.append('| %s | %d (%d) | %s | %s | %s | %s | %s | **%s** %s | %s | %s |' % (
        ds, len(y), y.sum(), f('fail_rate_7d'), f('fail_count_7d'), f('last_failed'), f('xgboost'), f('linear'),
        served, f('served'), f('sklearn'), 'OK' if ok else 'MISSED'))
    briers.append('| %s | %.4f | %s | %s | %s | %s | %s | %s | %s |' % (
        ds, y.mean(), f('fail_rate_7d', 1), f('fail_count_7d', 1), f('last_failed', 1), f('xgboost', 1), f('linear', 1),
        f('served', 1), f('sklearn', 1)))
    notes.append('| %s | %s | %s | %s | %s | %s | %s | %d |' % (
        ds, *['%.3f' % val.get(c, float('nan')) for c in BASE + ['xgboost', 'linear']], served, int(reg[0][5])))
print('Test: ROC-AUC over the pipeline-days after the cut (failure_risk at each midnight, horizon 1 day)\n')
print('| dataset | pipeline-days (failed) | fail_rate_7d | fail_count_7d | last_failed | xgboost | linear | served by failure_risk | scikit-learn HGB | verdict |')
print('|---|---:|---:|---:|---:|---:|---:|---|---:|---|')
print('\n'.join(rows))
print('\nTest: Brier score (calibrated probabilities; base rate beside)\n')
print('| dataset | base rate | fail_rate_7d | fail_count_7d | last_failed | xgboost | linear | served | scikit-learn HGB |')
print('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
print('\n'.join(briers))
print('\nValidation (train_risk_model\'s rolling origin before the cut): ROC-AUC per candidate, and what it chose\n')
print('| dataset | fail_rate_7d | fail_count_7d | last_failed | xgboost | linear | served | pipeline-times |')
print('|---|---:|---:|---:|---:|---:|---|---:|')
print('\n'.join(notes))
PY
