/*-------------------------------------------------------------------------
 * src/ingest/airflow_marker.h
 *		Recognise the lines of an Airflow task log that say which task
 *		instance runs, which try it is and how it ended.
 *
 * Frontend-safe (palloc only), so test/fuzz/fuzz_airflow.c links it as is.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_AIRFLOW_MARKER_H
#define SMARTETL_AIRFLOW_MARKER_H

#include <stdbool.h>

typedef enum AirflowMarker
{
	AFM_NONE,
	AFM_TASK_INSTANCE,			/* "Dependencies all met ... ti=<TaskInstance: ...>" */
	AFM_RUNNING,				/* "Running <TaskInstance: ...> on host H" */
	AFM_START_ATTEMPT,			/* "Starting attempt N of M" */
	AFM_EXECUTING,				/* "Executing <Task(Operator): task> on date" */
	AFM_ENV_VARS,				/* "Exporting env vars: AIRFLOW_CTX_...=..." */
	AFM_MARK_STATE,				/* "Marking task as SUCCESS. dag_id=..., ..." */
	AFM_EXIT_CODE,				/* "Task exited with return code N" */
	AFM_EXCEPTION,				/* an entry followed by a traceback */
	AFM_JOB_FAILED				/* "Failed to execute job N for task T (reason; pid)" */
} AirflowMarker;

/* What the marker lines of one task try say; NULL / 0 = not said. */
typedef struct AirflowFacts
{
	char	   *dag_id;
	char	   *task_id;
	char	   *run_id;
	int			map_index;		/* -1 = not a mapped task */
	char	   *host;
	char	   *operator_name;
	char	   *logical_date;
	char	   *owner;
	int			attempt;
	int			max_tries;
	char	   *state;			/* SUCCESS, FAILED, UP_FOR_RETRY, SKIPPED, ... */
	char	   *return_code;
	char	   *error;			/* the exception line, or the job failure reason */
	bool		ids_exact;		/* dag_id/task_id from env vars or the state line */
} AirflowFacts;

extern void airflow_facts_init(AirflowFacts *f);

/*
 * Which marker the message (an entry's text, continuation lines included)
 * is, filling what it says into *f.  Facts already known are overwritten
 * only by more authoritative ones (env vars and the state line name the
 * dag and task unambiguously; a TaskInstance repr must guess where the
 * dag id ends).
 */
extern AirflowMarker airflow_marker_scan(const char *message, AirflowFacts *f);

#endif							/* SMARTETL_AIRFLOW_MARKER_H */
