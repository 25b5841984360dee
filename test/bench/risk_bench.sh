#!/usr/bin/env bash
# test/bench/risk_bench.sh — run-level failure-risk quality on real run
# history (measures and prints; asserts nothing).
#
# Loads the Google Borg 2011 trace (149,944 runs of 14,827 recurring jobs,
# ../shared/data/pipeline_runs) into a throwaway cluster, trains
# smartetl.train_risk_model (XGBoost and logistic regression) with a time
# split, exports the very same labelled samples, and in the same run scores
# them with (a) the baseline "failure rate of the last 7 days" and (b)
# scikit-learn's HistGradientBoostingClassifier trained on the same rows
# (Debian python3-sklearn).  Prints ROC-AUC and PR-AUC side by side.
#
# Usage (as root): test/bench/risk_bench.sh [--horizon '6 hours'] [--step '6 hours']
# Own throwaway cluster in /tmp/riskbench.<pid>, port 54346; removed on exit.
set -euo pipefail
HORIZON='6 hours'
STEP='6 hours'
while [ $# -gt 0 ]; do
	case "$1" in
		--horizon) HORIZON=$2; shift 2 ;;
		--step) STEP=$2; shift 2 ;;
		*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster helpers use runuser)" >&2; exit 2; }
cd "$(dirname "$0")/../.."
REPO=$(pwd)
source scripts/lib.sh
DATA=${SMARTETL_DATA:-$(cd "$REPO/.." && pwd)/shared/data}
[ -f "$DATA/pipeline_runs/google_borg_2011/job_runs_7d.csv" ] || {
	echo "risk_bench.sh: the Borg trace is not at $DATA/pipeline_runs/google_borg_2011" \
		"(put shared/data beside the checkout or set SMARTETL_DATA)" >&2
	exit 2
}
/usr/bin/python3 -c 'import sklearn' 2>/dev/null || apt-get install -y -q python3-sklearn >/dev/null
DIR=/tmp/riskbench.$$
PORT=54346
trap 'cluster_stop "$DIR" >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || rm -rf "$DIR"' EXIT
cluster_init "$DIR" "$PORT"
cluster_start "$DIR" "$PORT" >/dev/null
export PGHOST=$(socket_dir "$DIR") PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
mkdir -p "$DIR/out" && chown postgres "$DIR/out"
psql -X -q -c "SET client_min_messages = warning; CREATE EXTENSION smartetl;"

log "loading the Borg trace"
psql -X -q -At -v data="$DATA" <<'SQL'
SELECT 'runs: ' || inserted FROM smartetl.ingest_file(:'data' || '/pipeline_runs/google_borg_2011/job_runs_7d.csv', 'csv',
  jsonb_build_object('namespace', 'borg',
    'columns', jsonb_build_object('pipeline', 'logical_job_id', 'external_id', 'job_id',
                                  'started_at', 'schedule_us', 'ended_at', 'end_us', 'status', 'final_event'),
    'epoch_unit', 'us', 'epoch_origin', '2011-05-01 22:50:00+00',
    'status_map', jsonb_build_object('EVICT', 'failed', 'LOST', 'failed')));
SQL
UNTIL=$(psql -X -At -c "SELECT max(run_at) FROM smartetl.run")

log "training in the database (horizon $HORIZON, samples every $STEP, latest 20 % held out)"
psql -X -q -At -v h="$HORIZON" -v s="$STEP" -v u="$UNTIL" -v out="$DIR/out/samples.csv" <<'SQL'
SELECT 'xgboost model ' || smartetl.train_risk_model(:'h', 'xgboost', jsonb_build_object('step', :'s', 'until', :'u'));
SELECT 'linear model ' || smartetl.train_risk_model(:'h', 'linear', jsonb_build_object('step', :'s', 'until', :'u'));
COPY (SELECT label, array_to_string(features, ',') FROM smartetl._risk_samples(:'h', :'s', :'u')
      ORDER BY t, pipeline_id) TO :'out' WITH (FORMAT csv);
SQL
psql -X -At -F ' ' -c "SELECT algorithm, metrics->>'roc_auc', metrics->>'pr_auc', training_rows, test_rows,
                              metrics->>'test_positives', round(train_seconds::numeric, 2)
                       FROM smartetl.model ORDER BY model_id" > "$DIR/out/models.txt"
FAIL_RATE_7D=$(psql -X -At -c "SELECT array_position(smartetl._risk_feature_names(), 'fail_rate_7d') - 1")

log "the same samples: baseline and scikit-learn, same split"
/usr/bin/python3 - "$DIR/out/samples.csv" "$DIR/out/models.txt" "$FAIL_RATE_7D" <<'PY'
import csv, sys, time
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score, average_precision_score
rows = list(csv.reader(open(sys.argv[1])))
y = np.array([float(r[0]) for r in rows])
X = np.array([[float(v) for v in r[1].split(',')] for r in rows])
n_test = int(round(len(y) * 0.2))
tr, te = slice(0, len(y) - n_test), slice(len(y) - n_test, len(y))
def hgb(**kw):
    t0 = time.time()
    m = HistGradientBoostingClassifier(random_state=0, **kw).fit(X[tr], y[tr])
    return m.predict_proba(X[te])[:, 1], time.time() - t0
p_default, s_default = hgb()
p_matched, s_matched = hgb(max_depth=4, learning_rate=0.1, max_iter=200, early_stopping=False)
base = X[te][:, int(sys.argv[3])]
print("samples %d (train %d, test %d), failures within the horizon in test: %d" % (len(y), len(y) - n_test, n_test, int(y[te].sum())))
print("| model | ROC-AUC | PR-AUC | train s |")
print("|---|---:|---:|---:|")
for line in open(sys.argv[2]):
    alg, auc, pr, ntr, nte, pos, s = line.split()
    print("| smartetl train_risk_model (%s) | %.4f | %.4f | %s |" % (alg, float(auc), float(pr), s))
print("| scikit-learn HistGradientBoostingClassifier, defaults | %.4f | %.4f | %.2f |" % (roc_auc_score(y[te], p_default), average_precision_score(y[te], p_default), s_default))
print("| scikit-learn HistGradientBoostingClassifier, depth 4, 200 iterations (as smartetl) | %.4f | %.4f | %.2f |" % (roc_auc_score(y[te], p_matched), average_precision_score(y[te], p_matched), s_matched))
print("| baseline: failure rate of the last 7 days | %.4f | %.4f | |" % (roc_auc_score(y[te], base), average_precision_score(y[te], base)))
PY
