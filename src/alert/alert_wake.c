/*-------------------------------------------------------------------------
 * src/alert/alert_wake.c
 *		Wake the alert worker of this database when runs change, at commit.
 *
 * Each worker publishes its PGPROC number in a small shared-memory table,
 * keyed by database, with when it started, last read the settings and last
 * ran a cycle (smartetl.alert_worker_status(), so users can watch the
 * watcher and tests can wait for a reload instead of sleeping).  A transaction that stored or changed runs asks for a
 * wake-up; the commit callback then sets the worker's latch, so the worker
 * sees the committed rows and alerts follow a failure within a moment
 * instead of a naptime.  Without shared_preload_libraries there is no
 * table and no worker, and waking is a no-op.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "alert/alert.h"

PG_FUNCTION_INFO_V1(smartetl_alert_wake);
PG_FUNCTION_INFO_V1(smartetl_alert_worker_status);

#define ALERT_MAX_WORKERS 32

typedef struct AlertSlot
{
	Oid			dboid;			/* InvalidOid = free */
	int			pgprocno;
	int			pid;
	TimestampTz started_at;
	TimestampTz settings_loaded_at; /* the worker's PgReloadTime */
	TimestampTz last_cycle_at;	/* 0 before the first cycle */
} AlertSlot;

typedef struct AlertShmem
{
	slock_t		mutex;
	AlertSlot	slots[ALERT_MAX_WORKERS];
} AlertShmem;

static AlertShmem *alert_shmem = NULL;
static int	my_slot = -1;
static bool wake_pending = false;
static bool callback_registered = false;

void
alert_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(AlertShmem)));
}

void
alert_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	alert_shmem = ShmemInitStruct("smartetl alert workers", sizeof(AlertShmem), &found);
	if (!found)
	{
		SpinLockInit(&alert_shmem->mutex);
		memset(alert_shmem->slots, 0, sizeof(alert_shmem->slots));
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
detach_on_exit(int code, Datum arg)
{
	alert_worker_detach();
}

/* The calling worker serves dboid: publish its latch. */
void
alert_worker_attach(Oid dboid)
{
	int			i;

	if (alert_shmem == NULL)
		return;
	SpinLockAcquire(&alert_shmem->mutex);
	for (i = 0; i < ALERT_MAX_WORKERS && my_slot < 0; i++)
		if (alert_shmem->slots[i].dboid == InvalidOid)
		{
			alert_shmem->slots[i].dboid = dboid;
			alert_shmem->slots[i].pgprocno = MyProc->pgprocno;
			alert_shmem->slots[i].pid = MyProcPid;
			alert_shmem->slots[i].started_at = GetCurrentTimestamp();
			alert_shmem->slots[i].settings_loaded_at = PgReloadTime;
			alert_shmem->slots[i].last_cycle_at = 0;
			my_slot = i;
		}
	SpinLockRelease(&alert_shmem->mutex);
	if (my_slot < 0)
		ereport(WARNING,
				(errmsg("smartetl: more than %d alert workers; this one is only woken by its naptime",
						ALERT_MAX_WORKERS)));
	else
		before_shmem_exit(detach_on_exit, (Datum) 0);
}

void
alert_worker_detach(void)
{
	if (alert_shmem == NULL || my_slot < 0)
		return;
	SpinLockAcquire(&alert_shmem->mutex);
	alert_shmem->slots[my_slot].dboid = InvalidOid;
	SpinLockRelease(&alert_shmem->mutex);
	my_slot = -1;
}

/* After each cycle: the settings it ran with and when it ended. */
void
alert_worker_publish_cycle(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (alert_shmem == NULL || my_slot < 0)
		return;
	SpinLockAcquire(&alert_shmem->mutex);
	alert_shmem->slots[my_slot].settings_loaded_at = PgReloadTime;
	alert_shmem->slots[my_slot].last_cycle_at = now;
	SpinLockRelease(&alert_shmem->mutex);
}

static void
wake_workers(void)
{
	int			procnos[ALERT_MAX_WORKERS];
	int			n = 0,
				i;

	SpinLockAcquire(&alert_shmem->mutex);
	for (i = 0; i < ALERT_MAX_WORKERS; i++)
		if (alert_shmem->slots[i].dboid == MyDatabaseId)
			procnos[n++] = alert_shmem->slots[i].pgprocno;
	SpinLockRelease(&alert_shmem->mutex);
	for (i = 0; i < n; i++)
		SetLatch(&ProcGlobal->allProcs[procnos[i]].procLatch);
}

static void
wake_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_pending)
		wake_workers();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_pending = false;
}

/* Wake this database's worker when the current transaction commits. */
void
alert_wake_at_commit(void)
{
	if (alert_shmem == NULL)
		return;
	if (!callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		callback_registered = true;
	}
	wake_pending = true;
}

/* smartetl._alert_wake(): for the triggers on smartetl.run. */
Datum
smartetl_alert_wake(PG_FUNCTION_ARGS)
{
	alert_wake_at_commit();
	PG_RETURN_VOID();
}

/* smartetl.alert_worker_status(): the workers serving this database. */
Datum
smartetl_alert_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AlertSlot	slots[ALERT_MAX_WORKERS];
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (alert_shmem == NULL)
		PG_RETURN_VOID();		/* not preloaded: no worker */
	SpinLockAcquire(&alert_shmem->mutex);
	memcpy(slots, alert_shmem->slots, sizeof(slots));
	SpinLockRelease(&alert_shmem->mutex);
	for (i = 0; i < ALERT_MAX_WORKERS; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		if (slots[i].dboid != MyDatabaseId)
			continue;
		values[0] = Int32GetDatum(slots[i].pid);
		values[1] = TimestampTzGetDatum(slots[i].started_at);
		values[2] = TimestampTzGetDatum(slots[i].settings_loaded_at);
		values[3] = TimestampTzGetDatum(slots[i].last_cycle_at);
		nulls[3] = slots[i].last_cycle_at == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
