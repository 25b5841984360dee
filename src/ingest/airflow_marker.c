/*-------------------------------------------------------------------------
 * src/ingest/airflow_marker.c
 *		The marker lines of Airflow task logs (2.x; 1.10 where the text is
 *		the same).  See airflow_marker.h.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include <ctype.h>

#include "ingest/airflow_marker.h"

void
airflow_facts_init(AirflowFacts *f)
{
	memset(f, 0, sizeof(*f));
	f->map_index = -1;
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Copy [s, end) without surrounding blanks, or NULL when empty. */
static char *
trimmed_copy(const char *s, const char *end)
{
	while (s < end && isspace((unsigned char) *s))
		s++;
	while (end > s && isspace((unsigned char) end[-1]))
		end--;
	return end > s ? pnstrdup(s, end - s) : NULL;
}

/* Copy of len bytes at s, or NULL when empty. */
static char *
nonempty_copy(const char *s, size_t len)
{
	return len > 0 ? pnstrdup(s, len) : NULL;
}

/* Take a dag and task id pair, unless exact ones are known already. */
static void
set_ids(AirflowFacts *f, char *dag_id, char *task_id, bool exact)
{
	if ((f->ids_exact && !exact) || dag_id == NULL || task_id == NULL)
		return;
	f->dag_id = dag_id;
	f->task_id = task_id;
	f->ids_exact |= exact;
}

/*
 * "<TaskInstance: dag.task run_id [map_index=N ][state]>".  Dag ids may
 * contain dots, task ids too (task groups): the split at the first dot is
 * a guess that env vars or the state line correct.  Run ids of Airflow
 * < 2.2 are execution dates with a space.
 */
static bool
scan_task_instance(const char *msg, AirflowFacts *f)
{
	const char *p = strstr(msg, "<TaskInstance: ");
	const char *name_end,
			   *state,
			   *map,
			   *dot;

	if (p == NULL)
		return false;
	p += strlen("<TaskInstance: ");
	name_end = strchr(p, ' ');
	if (name_end == NULL || (state = strstr(name_end, " [")) == NULL)
		return false;
	dot = memchr(p, '.', name_end - p);
	if (dot)
		set_ids(f, nonempty_copy(p, dot - p), nonempty_copy(dot + 1, name_end - dot - 1), false);
	map = strstr(name_end, " map_index=");
	if (map && map < state)
	{
		f->map_index = atoi(map + strlen(" map_index="));
		state = map;
	}
	if (f->run_id == NULL)
		f->run_id = trimmed_copy(name_end, state);
	return true;
}

/* A value after key=: quoted ('...' or "...") or up to the next blank. */
static char *
env_value(const char **pp)
{
	const char *p = *pp;
	const char *end;

	if (*p == '\'' || *p == '"')
	{
		end = strchr(p + 1, *p);
		if (end == NULL)
			end = p + strlen(p);
		*pp = *end ? end + 1 : end;
		return nonempty_copy(p + 1, end - p - 1);
	}
	end = p;
	while (*end && !isspace((unsigned char) *end))
		end++;
	*pp = end;
	return nonempty_copy(p, end - p);
}

/* "AIRFLOW_CTX_DAG_ID='d' AIRFLOW_CTX_TASK_ID='t' ..." (one line or several). */
static void
scan_env_vars(const char *msg, AirflowFacts *f)
{
	const char *p = msg;
	char	   *dag_id = NULL,
			   *task_id = NULL;

	while ((p = strstr(p, "AIRFLOW_CTX_")) != NULL)
	{
		const char *key = p + strlen("AIRFLOW_CTX_");
		const char *eq = strchr(key, '=');
		char	   *val;

		if (eq == NULL)
			break;
		p = eq + 1;
		val = env_value(&p);
		if (strncmp(key, "DAG_ID=", 7) == 0)
			dag_id = val;
		else if (strncmp(key, "TASK_ID=", 8) == 0)
			task_id = val;
		else if (strncmp(key, "DAG_RUN_ID=", 11) == 0 && val)
			f->run_id = val;
		else if (strncmp(key, "TRY_NUMBER=", 11) == 0 && val)
			f->attempt = atoi(val);
		else if (strncmp(key, "EXECUTION_DATE=", 15) == 0)
			f->logical_date = val;
		else if (strncmp(key, "DAG_OWNER=", 10) == 0)
			f->owner = val;
	}
	set_ids(f, dag_id, task_id, true);
}

/* "Marking task as STATE. dag_id=d, task_id=t, run_id=r, map_index=0, execution_date=..." */
static void
scan_mark_state(const char *msg, AirflowFacts *f)
{
	const char *p = msg + strlen("Marking task as ");
	const char *end = p;
	char	   *dag_id = NULL,
			   *task_id = NULL;

	while (isupper((unsigned char) *end) || *end == '_')
		end++;
	if (end > p)
		f->state = pnstrdup(p, end - p);
	for (p = end; *p; p++)
	{
		const char *comma;
		char	   *val;

		if (*p != '=' || p == end)
			continue;
		comma = strchr(p + 1, ',');
		val = trimmed_copy(p + 1, comma ? comma : p + 1 + strcspn(p + 1, "\n"));
		if (p - end >= 6 && strncmp(p - 6, "dag_id", 6) == 0)
			dag_id = val;
		else if (p - end >= 7 && strncmp(p - 7, "task_id", 7) == 0)
			task_id = val;
		else if (p - end >= 6 && strncmp(p - 6, "run_id", 6) == 0 && val)
			f->run_id = val;
	}
	set_ids(f, dag_id, task_id, true);
}

/* The last non-blank line of a multi-line entry: a traceback's exception. */
static char *
last_line(const char *msg)
{
	const char *end = msg + strlen(msg);

	while (end > msg)
	{
		const char *start = end;
		char	   *line;

		while (start > msg && start[-1] != '\n')
			start--;
		if ((line = trimmed_copy(start, end)) != NULL)
			return line;
		end = start > msg ? start - 1 : msg;
	}
	return NULL;
}

/* "Failed to execute job 3 for task t (reason; 84)": the reason. */
static char *
job_failure_reason(const char *msg)
{
	const char *open = strchr(msg, '(');
	const char *close = strrchr(msg, ')');
	const char *semi;

	if (open == NULL || close == NULL || close < open)
		return NULL;
	semi = close;
	while (semi > open && *semi != ';')
		semi--;
	return trimmed_copy(open + 1, semi > open ? semi : close);
}

AirflowMarker
airflow_marker_scan(const char *msg, AirflowFacts *f)
{
	int			n,
				of;

	if (starts_with(msg, "Running <TaskInstance: ") && scan_task_instance(msg, f))
	{
		const char *host = strstr(msg, "> on host ");

		if (host)
			f->host = trimmed_copy(host + strlen("> on host "), host + strcspn(host, "\n"));
		return AFM_RUNNING;
	}
	if (starts_with(msg, "Dependencies all met") && scan_task_instance(msg, f))
		return AFM_TASK_INSTANCE;
	if (sscanf(msg, "Starting attempt %d of %d", &n, &of) == 2)
	{
		f->attempt = n;
		f->max_tries = of;
		return AFM_START_ATTEMPT;
	}
	if (starts_with(msg, "Executing <Task("))
	{
		const char *op = msg + strlen("Executing <Task(");

		f->operator_name = trimmed_copy(op, op + strcspn(op, ")\n"));
		return AFM_EXECUTING;
	}
	if (starts_with(msg, "Exporting env vars:") || starts_with(msg, "Exporting the following env vars"))
	{
		scan_env_vars(msg, f);
		return AFM_ENV_VARS;
	}
	if (starts_with(msg, "Marking task as "))
	{
		scan_mark_state(msg, f);
		return AFM_MARK_STATE;
	}
	if (starts_with(msg, "Task exited with return code "))
	{
		const char *code = msg + strlen("Task exited with return code ");

		f->return_code = trimmed_copy(code, code + strcspn(code, "\n"));
		return AFM_EXIT_CODE;
	}
	/* "Task failed with exception", or the exception's text (Airflow < 2.2) */
	if (starts_with(msg, "Task failed with exception") ||
		strstr(msg, "\nTraceback (most recent call last):") != NULL)
	{
		if (strchr(msg, '\n'))
			f->error = last_line(msg);
		return AFM_EXCEPTION;
	}
	if (starts_with(msg, "Failed to execute job "))
	{
		if (f->error == NULL)
			f->error = job_failure_reason(msg);
		return AFM_JOB_FAILED;
	}
	return AFM_NONE;
}
