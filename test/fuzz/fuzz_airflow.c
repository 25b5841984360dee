/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_airflow.c
 *		libFuzzer harness: airflow_marker_scan over the lines of the input,
 *		accumulating facts as ingest_airflow.c does for one try.
 *
 * Invariants:
 *	- the marker is one of the enum's values;
 *	- every fact string is a non-empty substring of the message that set
 *	  it (the scanner only copies, it never invents text), checked after
 *	  each message for the facts that message changed;
 *	- exact ids (env vars, state line) are never overwritten by a guess
 *	  from a TaskInstance repr;
 *	- the multi-line input as one message (a traceback entry) also scans.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "ingest/airflow_marker.h"

#include "fuzz_common.h"

static void
check_fact(const char *name, const char *before, const char *after, const char *msg)
{
	if (after == NULL || after == before)
		return;
	FUZZ_CHECK(after[0] != '\0', "fact %s is empty", name);
	FUZZ_CHECK(strstr(msg, after) != NULL, "fact %s \"%s\" is not in the message", name, after);
}

static void
scan_checked(const char *msg, AirflowFacts *f)
{
	AirflowFacts before = *f;
	AirflowMarker m = airflow_marker_scan(msg, f);

	FUZZ_CHECK(m >= AFM_NONE && m <= AFM_JOB_FAILED, "marker %d out of range", (int) m);
	check_fact("dag_id", before.dag_id, f->dag_id, msg);
	check_fact("task_id", before.task_id, f->task_id, msg);
	check_fact("run_id", before.run_id, f->run_id, msg);
	check_fact("host", before.host, f->host, msg);
	check_fact("operator", before.operator_name, f->operator_name, msg);
	check_fact("logical_date", before.logical_date, f->logical_date, msg);
	check_fact("owner", before.owner, f->owner, msg);
	check_fact("state", before.state, f->state, msg);
	check_fact("return_code", before.return_code, f->return_code, msg);
	check_fact("error", before.error, f->error, msg);
	if (before.ids_exact)
	{
		FUZZ_CHECK(f->ids_exact, "exact ids lost");
		FUZZ_CHECK(m == AFM_ENV_VARS || m == AFM_MARK_STATE ||
				   (f->dag_id == before.dag_id && f->task_id == before.task_id),
				   "exact ids overwritten by a guess");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	arena;
	AirflowFacts f;
	char	   *text;
	char	   *line;

	/* log text never holds NUL (the line reader rejects it) */
	if (memchr(data, '\0', size) != NULL)
		return -1;
	fuzz_arena_init(&arena, "call");
	fuzz_arena_switch(&arena);

	text = palloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';

	airflow_facts_init(&f);
	scan_checked(text, &f);

	airflow_facts_init(&f);
	for (line = text; line;)
	{
		char	   *nl = strchr(line, '\n');
		char	   *copy = pnstrdup(line, nl ? (size_t) (nl - line) : strlen(line));

		scan_checked(copy, &f);
		line = nl ? nl + 1 : NULL;
	}
	fuzz_arena_reset(&arena);
	return 0;
}
