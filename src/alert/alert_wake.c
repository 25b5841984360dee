/*-------------------------------------------------------------------------
 * src/alert/alert_wake.c
 *		Wake the alert worker of this database when runs change, at commit.
 *
 * Each worker publishes its PGPROC number in a small shared-memory table,
 * keyed by database.  A transaction that stored or changed runs asks for a
 * wake-up; the commit callback then sets the worker's latch, so the worker
 * sees the committed rows and alerts follow a failure within a moment
 * instead of a naptime.  Without shared_preload_libraries there is no
 * table and no worker, and waking is a no-op.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "alert/alert.h"

PG_FUNCTION_INFO_V1(smartetl_alert_wake);

#define ALERT_MAX_WORKERS 32

typedef struct AlertSlot
{
	Oid			dboid;			/* InvalidOid = free */
	int			pgprocno;
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
