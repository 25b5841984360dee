#!/bin/sh
# Rebuild job_runs_7d_subset.csv from the full job_runs_7d.csv (149,944 runs,
# ../shared/data/pipeline_runs/google_borg_2011/, see README.md here):
#   sh test/data/google_borg_2011/make_subset.sh [FULL_CSV] > test/data/google_borg_2011/job_runs_7d_subset.csv
# Keeps every run of each logical job whose logical_job_id is 1 modulo 25,
# and every run of each logical job that has an EVICT or LOST run (so all
# five outcomes occur), with the header, in the original row order, values
# unchanged.  Deterministic: the same input gives the same bytes.
set -eu
full=${1:-$(dirname "$0")/../../../../shared/data/pipeline_runs/google_borg_2011/job_runs_7d.csv}
awk -F, '
	NR == FNR { if (FNR > 1 && ($9 == "EVICT" || $9 == "LOST")) keep[$2] = 1; next }
	FNR == 1 || $2 % 25 == 1 || ($2 in keep)
' "$full" "$full"
