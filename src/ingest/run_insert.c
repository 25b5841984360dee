/*-------------------------------------------------------------------------
 * src/ingest/run_insert.c
 *		Bulk insertion of new runs with table_multi_insert, the way COPY
 *		FROM stores rows.
 *
 * INSERT ... SELECT writes one heap tuple and one WAL record per row; this
 * path writes up to RUN_INSERT_BATCH tuples per page-level call and then
 * maintains the indexes, which makes storing new runs several times
 * cheaper.  Like COPY it evaluates column defaults (the identity, ingest
 * times) and generated columns, and checks constraints; unique indexes
 * still reject a duplicate identity.
 *
 * It is only used when nothing would be skipped by bypassing the
 * executor's INSERT: run_insert_usable() requires INSERT privilege, no
 * row-level security and no row-level triggers on smartetl.run.  The
 * statement-level reference check (run_references_ins) is unnecessary here:
 * pipeline ids come from rows the caller has locked (store.c), and new runs
 * have no parent id yet and their template ids were just stored by the
 * template session (store.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "compat.h"
#include "ingest/ingest.h"

#define RUN_INSERT_BATCH 1000

/* Batch-row columns copied to the run column of the same name. */
static const char *const copied_columns[] = {
	"external_id", "attempt", "parent_external_id", "started_at", "ended_at",
	"duration", "rows_read", "rows_written", "bytes", "host", "error_message", "template_id",
	"attrs"
};

struct RunInserter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	BulkInsertState bistate;
	CommandId	cid;
	TupleTableSlot *slots[RUN_INSERT_BATCH];
	int			nslots;
	int64		inserted;

	/* where each value goes */
	AttrNumber	pipeline_attno;
	AttrNumber	status_attno;
	AttrNumber	copied_attno[lengthof(copied_columns)];
	int			copied_src[lengthof(copied_columns)];	/* batch column */
	int			status_src;
	Oid			status_type;

	/* columns the batch does not supply: their defaults, or NULL */
	int			ndefaults;
	AttrNumber *default_attno;
	ExprState **default_expr;
};

static Oid
run_relid(void)
{
	return get_relname_relid("run", get_namespace_oid("smartetl", false));
}

/*
 * Can new runs bypass INSERT's executor without skipping anything it
 * would do?  If not, the caller stores them with SQL.
 */
bool
run_insert_usable(void)
{
	Oid			relid = run_relid();
	Relation	rel;
	bool		ok;

	if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK ||
		check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	rel = table_open(relid, AccessShareLock);
	ok = rel->trigdesc == NULL ||
		!(rel->trigdesc->trig_insert_before_row || rel->trigdesc->trig_insert_after_row ||
		  rel->trigdesc->trig_insert_instead_row);
	table_close(rel, AccessShareLock);
	return ok;
}

/* Default expressions of the run columns that the batch does not fill. */
static void
prepare_defaults(RunInserter *ri)
{
	TupleDesc	desc = RelationGetDescr(ri->rel);
	int			natts = desc->natts;
	int			i,
				c;

	ri->default_attno = palloc(sizeof(AttrNumber) * natts);
	ri->default_expr = palloc(sizeof(ExprState *) * natts);
	for (i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AttrNumber	attno = att->attnum;
		bool		supplied = (attno == ri->pipeline_attno || attno == ri->status_attno);
		Node	   *expr;

		for (c = 0; c < lengthof(copied_columns); c++)
			supplied |= (attno == ri->copied_attno[c]);
		if (supplied || att->attisdropped || att->attgenerated)
			continue;
		expr = build_column_default(ri->rel, attno);
		if (expr == NULL)
			continue;
		ri->default_attno[ri->ndefaults] = attno;
		ri->default_expr[ri->ndefaults] =
			ExecPrepareExpr((Expr *) expression_planner((Expr *) expr), ri->estate);
		ri->ndefaults++;
	}
}

static AttrNumber
run_attno(Relation rel, const char *name)
{
	AttrNumber	attno = attnameAttNum(rel, name, false);

	if (attno == InvalidAttrNumber)
		elog(ERROR, "smartetl.run has no column \"%s\"", name);
	return attno;
}

/* Map batch columns (by name, from batch_desc) onto run columns. */
static void
map_columns(RunInserter *ri, TupleDesc batch_desc)
{
	int			c,
				b;

	ri->pipeline_attno = run_attno(ri->rel, "pipeline_id");
	ri->status_attno = run_attno(ri->rel, "status");
	ri->status_type = TupleDescAttr(RelationGetDescr(ri->rel), ri->status_attno - 1)->atttypid;
	for (b = 0; b < batch_desc->natts; b++)
		if (strcmp(NameStr(TupleDescAttr(batch_desc, b)->attname), "status") == 0)
			ri->status_src = b;
	for (c = 0; c < lengthof(copied_columns); c++)
	{
		ri->copied_attno[c] = run_attno(ri->rel, copied_columns[c]);
		ri->copied_src[c] = -1;
		for (b = 0; b < batch_desc->natts; b++)
			if (strcmp(NameStr(TupleDescAttr(batch_desc, b)->attname), copied_columns[c]) == 0)
				ri->copied_src[c] = b;
		if (ri->copied_src[c] < 0)
			elog(ERROR, "ingest batch has no column \"%s\"", copied_columns[c]);
	}
}

RunInserter *
run_insert_begin(TupleDesc batch_desc)
{
	RunInserter *ri = palloc0(sizeof(RunInserter));
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	int			i;

	ri->rel = table_open(run_relid(), RowExclusiveLock);
	ri->estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(ri->rel);
	rte->relkind = ri->rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	compat_ExecInitRangeTable(ri->estate, list_make1(rte));
	ri->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(ri->rri, ri->rel, 1, NULL, 0);
	ExecOpenIndices(ri->rri, false);
	ri->cid = GetCurrentCommandId(true);
	ri->estate->es_output_cid = ri->cid;
	ri->bistate = GetBulkInsertState();
	for (i = 0; i < RUN_INSERT_BATCH; i++)
		ri->slots[i] = table_slot_create(ri->rel, NULL);
	map_columns(ri, batch_desc);
	prepare_defaults(ri);
	return ri;
}

/* Write the buffered slots, then their index entries. */
static void
run_insert_flush(RunInserter *ri)
{
	int			i;

	if (ri->nslots == 0)
		return;
	table_multi_insert(ri->rel, ri->slots, ri->nslots, ri->cid, 0, ri->bistate);
	for (i = 0; i < ri->nslots; i++)
	{
		List	   *recheck;

		recheck = compat_ExecInsertIndexTuples(ri->rri, ri->slots[i], ri->estate);
		list_free(recheck);
		ResetPerTupleExprContext(ri->estate);
		ExecClearTuple(ri->slots[i]);
	}
	ri->inserted += ri->nslots;
	ri->nslots = 0;
}

/*
 * Queue one new run: the batch row in batch_slot, its pipeline id, and
 * status resolved to the enum.
 */
void
run_insert_add(RunInserter *ri, TupleTableSlot *batch_slot, int64 pipeline_id)
{
	TupleTableSlot *slot = ri->slots[ri->nslots];
	ExprContext *econtext = GetPerTupleExprContext(ri->estate);
	MemoryContext old;
	int			c;

	slot_getallattrs(batch_slot);
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);

	slot->tts_values[ri->pipeline_attno - 1] = Int64GetDatum(pipeline_id);
	slot->tts_isnull[ri->pipeline_attno - 1] = false;
	slot->tts_values[ri->status_attno - 1] =
		DirectFunctionCall2(enum_in,
							CStringGetDatum(TextDatumGetCString(batch_slot->tts_values[ri->status_src])),
							ObjectIdGetDatum(ri->status_type));
	slot->tts_isnull[ri->status_attno - 1] = false;
	for (c = 0; c < lengthof(copied_columns); c++)
	{
		slot->tts_values[ri->copied_attno[c] - 1] = batch_slot->tts_values[ri->copied_src[c]];
		slot->tts_isnull[ri->copied_attno[c] - 1] = batch_slot->tts_isnull[ri->copied_src[c]];
	}
	old = MemoryContextSwitchTo(GetPerTupleMemoryContext(ri->estate));
	for (c = 0; c < ri->ndefaults; c++)
	{
		AttrNumber	attno = ri->default_attno[c];

		slot->tts_values[attno - 1] = ExecEvalExpr(ri->default_expr[c], econtext,
												   &slot->tts_isnull[attno - 1]);
	}
	MemoryContextSwitchTo(old);
	ExecStoreVirtualTuple(slot);
	/* the batch slot and the expression context are reused: own the values */
	ExecMaterializeSlot(slot);
	ResetPerTupleExprContext(ri->estate);

	if (ri->rri->ri_RelationDesc->rd_att->constr &&
		ri->rri->ri_RelationDesc->rd_att->constr->has_generated_stored)
		ExecComputeStoredGenerated(ri->rri, ri->estate, slot, CMD_INSERT);
	if (ri->rri->ri_RelationDesc->rd_att->constr)
		ExecConstraints(ri->rri, slot, ri->estate);

	if (++ri->nslots == RUN_INSERT_BATCH)
		run_insert_flush(ri);
}

/* Flush, close, and return how many runs were inserted. */
int64
run_insert_end(RunInserter *ri)
{
	int			i;
	int64		inserted;

	run_insert_flush(ri);
	inserted = ri->inserted;
	FreeBulkInsertState(ri->bistate);
	table_finish_bulk_insert(ri->rel, 0);
	for (i = 0; i < RUN_INSERT_BATCH; i++)
		ExecDropSingleTupleTableSlot(ri->slots[i]);
	ExecCloseIndices(ri->rri);
	FreeExecutorState(ri->estate);
	table_close(ri->rel, NoLock);
	CommandCounterIncrement();
	return inserted;
}
