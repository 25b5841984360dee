/* placeholder, replaced below */
#include "postgres.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "utils/snapmgr.h"
#include "intake/intake.h"

void
follow_poll(bool reload_sources)
{
	MemoryContext outer = CurrentMemoryContext;

	if (!reload_sources)
		return;
	PG_TRY();
	{
		bool ready;
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'smartetl'", true, 1);
		ready = SPI_processed > 0;
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		http_server_set_health(ready, ready ? NULL : "extension smartetl is not installed in this database");
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(outer);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
}

void
follow_forget_all(void)
{
}
