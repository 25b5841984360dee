# smartetl — PGXS build.
#
# The install script is assembled from the readable pieces in src/sql/ (in
# file-name order) into smartetl--$(EXTVERSION).sql.

EXTENSION   = smartetl
EXTVERSION  = 0.1.0
MODULE_big  = smartetl

OBJS = \
	src/smartetl.o \
	src/common/line_reader.o \
	src/common/robust_stats.o \
	src/ingest/csv_lexer.o \
	src/ingest/json_fields.o \
	src/ingest/log_format.o \
	src/ingest/log_split.o \
	src/ingest/options.o \
	src/ingest/values.o \
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
	src/alert/alert_wake.o \
	src/alert/alert_outbox.o \
	src/alert/alert_send.o \
	src/alert/alert_worker.o \
	src/alert/alert_test_channel.o \
	src/intake/api_key.o \
	src/intake/http_server.o \
	src/intake/http_request.o \
	src/intake/follow.o \
	src/intake/intake_worker.o \
	src/predict/model_data.o \
	src/predict/model_metrics.o \
	src/predict/model_xgb.o \
	src/predict/model_linear.o \
	src/predict/model_sql.o \
	src/predict/risk_features.o \
	src/predict/risk_features_sql.o

SQL_PIECES = $(sort $(wildcard src/sql/*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql

REGRESS = schema ingest_csv ingest_jsonl ingest_logline ingest_openlineage ingest_dbt ingest_errors template ingest_airflow qsketch kpi alert alert_payload predict drop
REGRESS_OPTS = --load-extension=$(EXTENSION)
ENCODING = UTF8
NO_LOCALE = 1

PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK = -lcurl -lmicrohttpd -lxgboost -lgomp -llinear -lm
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
EXTRA_CLEAN = $(DATA_built)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PIECES)
	cat $^ > $@

# PGXS does not track header dependencies; rebuild everything when one changes.
$(OBJS): $(wildcard src/*.h src/*/*.h)
