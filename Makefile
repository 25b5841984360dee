# smartetl — PGXS build.
#
# The install script is assembled from the readable pieces in src/sql/ (in
# file-name order) into smartetl--$(EXTVERSION).sql.  The upgrade scripts
# src/sql/upgrade/smartetl--A--B.sql are installed as they are (see
# src/sql/upgrade/README.md).
#
# The version is written in one place only: default_version in
# smartetl.control.  It names the install script and reaches the C code as
# SMARTETL_VERSION (-D below).

EXTENSION   = smartetl
EXTVERSION := $(shell sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)
ifeq ($(EXTVERSION),)
$(error cannot read default_version from $(EXTENSION).control)
endif
MODULE_big  = smartetl

OBJS = \
	src/smartetl.o \
	src/locks.o \
	src/common/line_reader.o \
	src/common/robust_stats.o \
	src/ingest/csv_lexer.o \
	src/ingest/json_fields.o \
	src/ingest/log_format.o \
	src/ingest/log_split.o \
	src/ingest/formats.o \
	src/ingest/options.o \
	src/ingest/values.o \
	src/ingest/time_window.o \
	src/ingest/field_map.o \
	src/ingest/run_record.o \
	src/ingest/source.o \
	src/ingest/ingest_csv.o \
	src/ingest/ingest_jsonl.o \
	src/ingest/ingest_logline.o \
	src/ingest/json_doc.o \
	src/ingest/ingest_openlineage.o \
	src/ingest/ingest_dbt.o \
	src/ingest/ingest_airflow.o \
	src/ingest/ingest_airflow_rest.o \
	src/ingest/airflow_marker.o \
	src/ingest/run_insert.o \
	src/ingest/store.o \
	src/template/miner.o \
	src/template/tokenize.o \
	src/template/template_store.o \
	src/kpi/qsketch_core.o \
	src/kpi/qsketch.o \
	src/kpi/rollup.o \
	src/kpi/robust_baseline.o \
	src/kpi/anomaly_scan.o \
	src/alert/alert_wake.o \
	src/alert/alert_outbox.o \
	src/alert/alert_send.o \
	src/alert/alert_worker.o \
	src/alert/alert_notify.o \
	src/alert/alert_test_channel.o \
	src/alert/rule_query.o \
	src/intake/api_key.o \
	src/intake/ack_link.o \
	src/intake/http_server.o \
	src/intake/http_request.o \
	src/intake/follow.o \
	src/intake/intake_worker.o \
	src/alert/cron.o \
	src/alert/cron_sql.o \
	src/predict/model_data.o \
	src/predict/model_metrics.o \
	src/predict/model_xgb.o \
	src/predict/model_linear.o \
	src/predict/model_sql.o \
	src/predict/model_baseline.o \
	src/predict/risk_backtest.o \
	src/predict/risk_backtest_sql.o \
	src/predict/risk_features.o \
	src/predict/risk_features_sql.o

SQL_PIECES = $(sort $(wildcard src/sql/*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
UPGRADE_SCRIPTS = $(sort $(wildcard src/sql/upgrade/$(EXTENSION)--*--*.sql))
DATA = $(UPGRADE_SCRIPTS)

REGRESS = schema ingest_csv ingest_jsonl ingest_logline ingest_openlineage ingest_dbt ingest_errors template ingest_airflow qsketch kpi alert alert_payload alert_channels alert_rules_security predict oncall alert_incremental ack_link ingest_safety definitions docs drop
REGRESS_OPTS = --load-extension=$(EXTENSION)
ENCODING = UTF8
NO_LOCALE = 1

PG_CPPFLAGS = -I$(srcdir)/src -DSMARTETL_VERSION='"$(EXTVERSION)"'
SHLIB_LINK = -lcurl -lmicrohttpd -lxgboost -lgomp -llinear -lm
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
EXTRA_CLEAN = $(DATA_built)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PIECES)
	cat $^ > $@

# PGXS does not track header dependencies; rebuild everything when one changes
# (and when the version in the control file does).
$(OBJS): $(wildcard src/*.h src/*/*.h) $(EXTENSION).control

# Upgrade scripts: this version must be reachable from the previous release
# (a script smartetl--<previous>--$(EXTVERSION).sql), and while that script
# holds no statement yet, the install pieces must be those of the previous
# release (git tag v<previous>; skipped outside a git checkout or without the
# tag).  A cheap tripwire only: test/upgrade/run.sh compares the upgraded
# schema with a fresh install.
UPGRADE_TO_HERE = $(wildcard src/sql/upgrade/$(EXTENSION)--*--$(EXTVERSION).sql)
all: upgrade-script-check
.PHONY: upgrade-script-check
upgrade-script-check:
	@set -e; \
	up='$(UPGRADE_TO_HERE)'; \
	if [ -z "$$up" ]; then \
		echo "error: no upgrade script to $(EXTVERSION): add src/sql/upgrade/$(EXTENSION)--<previous release>--$(EXTVERSION).sql" >&2; \
		exit 1; \
	fi; \
	for f in $$up; do \
		prev=$${f##*/$(EXTENSION)--}; prev=$${prev%%--*}; \
		[ -e .git ] && git rev-parse -q --verify "v$$prev^{commit}" >/dev/null 2>&1 || continue; \
		git diff --quiet "v$$prev" -- ':(glob)src/sql/*.sql' && continue; \
		grep -v -e '^[[:space:]]*--' -e '^[[:space:]]*$$' -e '^\\echo ' "$$f" | grep -q . && continue; \
		echo "error: src/sql/*.sql changed since v$$prev but $$f has no statement:" >&2; \
		echo "       append the same schema changes there (ALTER TABLE ..., CREATE OR REPLACE FUNCTION ...)" >&2; \
		exit 1; \
	done
