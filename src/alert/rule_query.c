/*-------------------------------------------------------------------------
 * src/alert/rule_query.c
 *		The sandbox of sql alert rules: smartetl._rule_query_check() checks
 *		a rule's query when the rule is written, smartetl._rule_query_rows()
 *		runs it when alerts are evaluated.
 *
 * A rule is written by an admin but evaluated by whoever calls
 * evaluate_alerts(), usually the alert worker, which is a superuser.  So the
 * query never runs with the caller's rights.  Both functions parse, analyse
 * and (for the second) run it inside the same sandbox:
 *   - an internal subtransaction that is always rolled back, so anything
 *     the query wrote or locked at transaction level is gone afterwards;
 *   - as smartetl_reader inside a security-restricted operation, which
 *     refuses SET ROLE, set_config('role'), SET SESSION AUTHORIZATION and
 *     temporary objects: the query cannot get the caller's rights back;
 *   - XactReadOnly forced on: no writes, nextval or large objects;
 *   - search_path pinned to pg_catalog, smartetl, pg_temp;
 *   - a time limit, smartetl.rule_timeout, armed as the statement timeout;
 *   - session-level advisory locks, the one effect a rollback keeps, are
 *     released afterwards and reported as the rule's error.
 *
 * The check works on PostgreSQL's own parse and analysis trees, not on the
 * text: exactly one SELECT; no SELECT INTO, locking clause or data-modifying
 * WITH at any level; two columns castable to text and double precision; no
 * volatile function (set_config, pg_sleep, lo_*, pg_advisory_lock,
 * nextval, ...) and none of the stable ones that run SQL text of their own
 * (table_to_xml, ...); tables and functions smartetl_reader may use; and no
 * code that a non-superuser owns (function, view, row-level policy, domain
 * or range type), because its owner can make it do anything whatever
 * volatility it declares.  Views and policies of other owners are checked
 * as if written in the rule; a superuser's views are trusted.
 *
 * The query itself is never pasted into other SQL: it is parsed on its own,
 * and its parse tree becomes the subquery of
 *     SELECT rule.pipeline::text, max(rule.value::float8)
 *     FROM (<query>) rule(pipeline, value) GROUP BY 1
 * so a trailing comment is harmless and a pipeline returned twice counts
 * once, with its highest value.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parse_coerce.h"
#include "parser/parser.h"
#include "postmaster/bgworker.h"
#include "rewrite/rewriteHandler.h"
#include "rewrite/rowsecurity.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "smartetl.h"

PG_FUNCTION_INFO_V1(smartetl_rule_query_check);
PG_FUNCTION_INFO_V1(smartetl_rule_query_rows);

#define RULE_ROLE "smartetl_reader"
#define RULE_SEARCH_PATH "pg_catalog, smartetl, pg_temp"
#define RULE_MAX_VIEW_DEPTH 32

/*
 * Stable functions of pg_catalog that run SQL of their own (as the current
 * user, so they would not escape the sandbox, but the SQL they run is text
 * this check never sees).  The query_to_xml and cursor_to_xml families are
 * volatile and refused as such; they are listed for clarity.
 */
static const char *const sql_text_functions[] = {
	"query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema",
	"cursor_to_xml", "cursor_to_xmlschema",
	"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema",
	"schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
	"database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema",
	"ts_stat",
	NULL
};

/* State of the check of one query tree. */
typedef struct RuleCheck
{
	char	   *refusal;		/* why the query is refused, or NULL */
	bool		trusted;		/* inside a view a superuser owns */
	int			depth;			/* views within views */
	Oid			view;			/* the view whose query this is, if any */
} RuleCheck;

/* One call of the sandbox. */
typedef struct RuleCall
{
	const char *rule;			/* rule name, for messages */
	const char *sql;			/* the rule's query */
	Tuplestorestate *rows;		/* where the rows go; NULL to only check */
	MemoryContext rows_cxt;
	char	   *refusal;		/* why the query was refused, or NULL */
	bool		invalid;		/* refused for its shape, not its safety */
} RuleCall;

/* An advisory lock this backend holds, in one mode. */
typedef struct HeldLock
{
	LOCKTAG		tag;
	LOCKMODE	mode;
} HeldLock;

static bool check_walker(Node *node, RuleCheck *rc);
static bool check_query(Query *query, RuleCheck *rc);

static bool
refuse(RuleCheck *rc, char *why)
{
	rc->refusal = why;
	return true;
}

/*
 * May input of values of this type run code a non-superuser wrote?  A
 * domain's CHECK constraints and a range's canonical function run on
 * input (casts, literals, record_in, json_populate_record, ...).
 */
static bool
type_untrusted(Oid typid, int depth)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		untrusted = false;

	check_stack_depth();
	if (depth > RULE_MAX_VIEW_DEPTH)
		return true;
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		return false;			/* pseudo-types of dropped things: nothing runs */
	typ = (Form_pg_type) GETSTRUCT(tup);
	if ((typ->typtype == TYPTYPE_DOMAIN || typ->typtype == TYPTYPE_RANGE ||
		 typ->typtype == TYPTYPE_MULTIRANGE) && !superuser_arg(typ->typowner))
		untrusted = true;
	else if (typ->typtype == TYPTYPE_DOMAIN)
		untrusted = type_untrusted(typ->typbasetype, depth + 1);
	else if (typ->typtype == TYPTYPE_RANGE)
		untrusted = type_untrusted(get_range_subtype(typid), depth + 1);
	else if (typ->typtype == TYPTYPE_MULTIRANGE)
		untrusted = type_untrusted(get_multirange_range(typid), depth + 1);
	else if (IsTrueArrayType(typ))
		untrusted = type_untrusted(typ->typelem, depth + 1);
	else if (typ->typtype == TYPTYPE_COMPOSITE && OidIsValid(typ->typrelid))
	{
		TupleDesc	desc = lookup_rowtype_tupdesc(typid, -1);
		int			i;

		for (i = 0; i < desc->natts && !untrusted; i++)
			if (!TupleDescAttr(desc, i)->attisdropped)
				untrusted = type_untrusted(TupleDescAttr(desc, i)->atttypid, depth + 1);
		ReleaseTupleDesc(desc);
	}
	ReleaseSysCache(tup);
	return untrusted;
}

static bool
check_type(Oid typid, RuleCheck *rc)
{
	if (!OidIsValid(typid) || !type_untrusted(typid, 0))
		return false;
	return refuse(rc, psprintf("Type %s is, or contains, a domain or range type that a non-superuser owns: "
							   "its owner could change what its input runs.", format_type_be(typid)));
}

static bool
check_types(List *typids, RuleCheck *rc)
{
	ListCell   *lc;

	foreach(lc, typids)
		if (check_type(lfirst_oid(lc), rc))
			return true;
	return false;
}

/* A function, operator, aggregate, cast or type I/O function the query calls. */
static bool
check_function(Oid funcid, void *context)
{
	RuleCheck  *rc = (RuleCheck *) context;
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	Form_pg_proc proc;
	bool		refused = false;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", funcid);
	proc = (Form_pg_proc) GETSTRUCT(tup);
	if (!superuser_arg(proc->proowner))
		refused = refuse(rc, psprintf("Function %s is owned by %s, not a superuser: its owner could change what it does.",
									  format_procedure(funcid), GetUserNameFromId(proc->proowner, false)));
	else if (!rc->trusted)
	{
		const char *const *f;

		if (proc->provolatile == PROVOLATILE_VOLATILE)
			refused = refuse(rc, psprintf("Function %s is volatile: it may change something, and rules may only read.",
										  format_procedure(funcid)));
		for (f = sql_text_functions; !refused && *f; f++)
			if (proc->pronamespace == PG_CATALOG_NAMESPACE && strcmp(NameStr(proc->proname), *f) == 0)
				refused = refuse(rc, psprintf("Function %s runs SQL text of its own.", format_procedure(funcid)));
		if (!refused && pg_proc_aclcheck(funcid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
			refused = refuse(rc, psprintf("%s may not execute function %s.", RULE_ROLE, format_procedure(funcid)));
	}
	ReleaseSysCache(tup);
	return refused;
}

/*
 * A table or view the query reads: readable by smartetl_reader, and the code
 * it brings along (a view's query, row-level policies) checked unless a
 * superuser owns it.
 */
static bool
check_relation(RangeTblEntry *rte, RuleCheck *rc)
{
	Relation	rel = relation_open(rte->relid, AccessShareLock);
	bool		owner_trusted = superuser_arg(rel->rd_rel->relowner);
	bool		refused = false;

	if (!rc->trusted && !ExecCheckRTPerms(list_make1(rte), false))
		refused = refuse(rc, psprintf("%s may not read %s.", RULE_ROLE,
									  quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
																 RelationGetRelationName(rel))));
	else if (rel->rd_rel->relkind == RELKIND_VIEW)
	{
		/* a superuser's view is trusted code; anyone else's is checked as if part of the rule */
		RuleCheck	inner = {NULL, owner_trusted, rc->depth + 1, RelationGetRelid(rel)};

		if (inner.depth > RULE_MAX_VIEW_DEPTH)
			refused = refuse(rc, pstrdup("Views are nested too deeply."));
		else if (check_query(copyObject(get_view_query(rel)), &inner))
			refused = refuse(rc, inner.refusal);
	}
	else if (rel->rd_rel->relrowsecurity && !owner_trusted && rel->rd_rsdesc != NULL)
	{
		RuleCheck	inner = {NULL, false, rc->depth + 1, InvalidOid};
		ListCell   *lc;

		foreach(lc, rel->rd_rsdesc->policies)
		{
			RowSecurityPolicy *policy = (RowSecurityPolicy *) lfirst(lc);

			if ((policy->polcmd == ACL_SELECT_CHR || policy->polcmd == '*') &&
				check_walker((Node *) copyObject(policy->qual), &inner))
			{
				refused = refuse(rc, psprintf("In policy %s of %s: %s", policy->policy_name,
											  RelationGetRelationName(rel), inner.refusal));
				break;
			}
		}
	}
	relation_close(rel, NoLock);
	return refused;
}

/* One query level (the rule, a subquery, a CTE, a view's query). */
static bool
check_query(Query *query, RuleCheck *rc)
{
	ListCell   *lc;

	check_stack_depth();
	if (query->commandType != CMD_SELECT || query->utilityStmt != NULL)
		return refuse(rc, pstrdup("The query runs a command other than SELECT; rules may only read."));
	if (query->rowMarks != NIL)
		return refuse(rc, pstrdup("The query locks rows (FOR UPDATE or FOR SHARE); rules may only read."));
	if (query->hasModifyingCTE)
		return refuse(rc, pstrdup("The query writes in a WITH clause; rules may only read."));
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		/* a view's query lists the view itself (as OLD and NEW): not a reference */
		if (rte->rtekind == RTE_RELATION && rte->relid != rc->view && check_relation(rte, rc))
			return true;
	}
	return query_tree_walker(query, check_walker, rc, 0);
}

static bool
check_walker(Node *node, RuleCheck *rc)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return check_query((Query *) node, rc);
	if (check_functions_in_node(node, check_function, rc))
		return true;
	switch (nodeTag(node))
	{
			/* expressions whose result type's input code may run */
		case T_Var:
		case T_Const:
		case T_Param:
		case T_FuncExpr:
		case T_CoerceViaIO:
		case T_ArrayCoerceExpr:
		case T_CoerceToDomain:
		case T_RelabelType:
		case T_RowExpr:
		case T_ConvertRowtypeExpr:
			if (check_type(exprType(node), rc))
				return true;
			break;
		case T_RangeTblFunction:
			if (check_types(((RangeTblFunction *) node)->funccoltypes, rc))
				return true;
			break;
		case T_TableFunc:
			if (check_types(((TableFunc *) node)->coltypes, rc))
				return true;
			break;
		case T_NextValueExpr:
			return refuse(rc, pstrdup("The query takes sequence values; rules may only read."));
		default:
			break;
	}
	return expression_tree_walker(node, check_walker, rc);
}

/* rule.<column>::<type>, for the wrapper around the rule's query. */
static Node *
rule_column(const char *column, const char *type)
{
	ColumnRef  *ref = makeNode(ColumnRef);
	TypeCast   *cast = makeNode(TypeCast);

	ref->fields = list_make2(makeString("rule"), makeString(pstrdup(column)));
	ref->location = -1;
	cast->arg = (Node *) ref;
	cast->typeName = SystemTypeName(pstrdup(type));
	cast->location = -1;
	return (Node *) cast;
}

/*
 * SELECT rule.pipeline::text, max(rule.value::float8)
 * FROM (<the rule's SELECT>) rule(pipeline, value) GROUP BY 1, built as a
 * parse tree around the rule's own.
 */
static RawStmt *
rule_wrap(RawStmt *raw)
{
	RangeSubselect *sub = makeNode(RangeSubselect);
	SelectStmt *outer = makeNode(SelectStmt);
	ResTarget  *pipeline = makeNode(ResTarget);
	ResTarget  *value = makeNode(ResTarget);
	RawStmt    *wrapped = makeNode(RawStmt);

	sub->subquery = copyObject(raw->stmt);
	sub->alias = makeAlias("rule", list_make2(makeString("pipeline"), makeString("value")));
	pipeline->name = "pipeline";
	pipeline->val = rule_column("pipeline", "text");
	pipeline->location = -1;
	value->name = "value";
	value->val = (Node *) makeFuncCall(SystemFuncName("max"), list_make1(rule_column("value", "float8")),
									   COERCE_EXPLICIT_CALL, -1);
	value->location = -1;
	outer->targetList = list_make2(pipeline, value);
	outer->fromClause = list_make1(sub);
	outer->groupClause = list_make1(rule_column("pipeline", "text"));
	outer->limitOption = LIMIT_OPTION_DEFAULT;
	outer->op = SETOP_NONE;
	wrapped->stmt = (Node *) outer;
	return wrapped;
}

/*
 * Parse, check and, when call->rows is set, run the rule's query.  Runs
 * inside the sandbox.  A refusal is left in call->refusal; anything else
 * that goes wrong is an error.
 */
static void
rule_prepare_and_run(RuleCall *call)
{
	List	   *raws = raw_parser(call->sql, RAW_PARSE_DEFAULT);
	RawStmt    *raw;
	SelectStmt *select;
	Query	   *alone,
			   *wrapped;
	RuleCheck	rc = {NULL, false, 0, InvalidOid};
	Oid			types[2] = {InvalidOid, InvalidOid};
	Oid			text_type = TEXTOID,
				float8_type = FLOAT8OID;
	int			ncolumns = 0;
	ListCell   *lc;
	List	   *rewritten;
	PlannedStmt *plan;
	DestReceiver *dest;
	QueryDesc  *qd;

	if (list_length(raws) != 1 || !IsA(((RawStmt *) linitial(raws))->stmt, SelectStmt))
	{
		call->refusal = list_length(raws) == 1
			? psprintf("Expected a single SELECT (or WITH ... SELECT) statement, found %s.",
					   CreateCommandName(((RawStmt *) linitial(raws))->stmt))
			: pstrdup("Expected a single SELECT (or WITH ... SELECT) statement.");
		return;
	}
	raw = (RawStmt *) linitial(raws);
	select = (SelectStmt *) raw->stmt;
	if (select->intoClause != NULL)
	{
		call->refusal = pstrdup("SELECT INTO creates a table; rules may only read.");
		return;
	}

	/* the query on its own, for its columns */
	alone = parse_analyze_fixedparams(copyObject(raw), call->sql, NULL, 0, NULL);
	if (alone->hasModifyingCTE)
	{
		call->refusal = pstrdup("The query writes in a WITH clause; rules may only read.");
		return;
	}
	call->invalid = true;
	foreach(lc, alone->targetList)
	{
		TargetEntry *tle = (TargetEntry *) lfirst(lc);

		if (tle->resjunk)
			continue;
		if (ncolumns < 2)
			types[ncolumns] = exprType((Node *) tle->expr);
		ncolumns++;
	}
	if (ncolumns != 2)
	{
		call->refusal = psprintf("The query must return two columns, pipeline (text) and value (double precision); it returns %d.",
								 ncolumns);
		return;
	}
	if (!can_coerce_type(1, &types[0], &text_type, COERCION_EXPLICIT))
	{
		call->refusal = psprintf("The first column (%s) cannot be cast to text.", format_type_be(types[0]));
		return;
	}
	if (!can_coerce_type(1, &types[1], &float8_type, COERCION_EXPLICIT))
	{
		call->refusal = psprintf("The second column (%s) cannot be cast to double precision.",
								 format_type_be(types[1]));
		return;
	}

	call->invalid = false;

	/* the query as it will run, checked at every level */
	wrapped = parse_analyze_fixedparams(rule_wrap(raw), call->sql, NULL, 0, NULL);
	if (check_query(wrapped, &rc))
	{
		call->refusal = rc.refusal;
		return;
	}
	rewritten = QueryRewrite(wrapped);
	if (list_length(rewritten) != 1)
	{
		call->refusal = pstrdup("The query was rewritten into several statements.");
		return;
	}
	if (call->rows == NULL)
		return;

	plan = pg_plan_query(linitial_node(Query, rewritten), call->sql, 0, NULL);
	dest = CreateDestReceiver(DestTuplestore);
	SetTuplestoreDestReceiverParams(dest, call->rows, call->rows_cxt, true, NULL, NULL);
	qd = CreateQueryDesc(plan, call->sql, GetActiveSnapshot(), InvalidSnapshot, dest, NULL, NULL, 0);
	ExecutorStart(qd, 0);
	ExecutorRun(qd, ForwardScanDirection, 0, true);
	ExecutorFinish(qd);
	ExecutorEnd(qd);
	FreeQueryDesc(qd);
	dest->rDestroy(dest);
}

/* The advisory locks this backend holds now. */
static List *
advisory_locks_held(void)
{
	LockData   *data = GetLockStatusData();
	List	   *held = NIL;
	int			i;

	for (i = 0; i < data->nelements; i++)
	{
		LockInstanceData *inst = &data->locks[i];
		LOCKMODE	mode;

		if (inst->pid != MyProcPid || inst->locktag.locktag_type != LOCKTAG_ADVISORY)
			continue;
		for (mode = 1; mode < MAX_LOCKMODES; mode++)
			if (inst->holdMask & LOCKBIT_ON(mode))
			{
				HeldLock   *h = palloc(sizeof(HeldLock));

				h->tag = inst->locktag;
				h->mode = mode;
				held = lappend(held, h);
			}
	}
	return held;
}

/*
 * Release the advisory locks taken since "before" was listed.  Called after
 * the rule's subtransaction was rolled back, which released its
 * transaction-level locks: what is left and new is session-level.  Returns
 * how many.
 */
static int
release_new_advisory_locks(List *before)
{
	List	   *after = advisory_locks_held();
	ListCell   *a,
			   *b;
	int			released = 0;

	foreach(a, after)
	{
		HeldLock   *h = (HeldLock *) lfirst(a);
		bool		old = false;

		foreach(b, before)
		{
			HeldLock   *o = (HeldLock *) lfirst(b);

			if (o->mode == h->mode && memcmp(&o->tag, &h->tag, sizeof(LOCKTAG)) == 0)
				old = true;
		}
		if (old)
			continue;
		while (LockHeldByMe(&h->tag, h->mode) && LockRelease(&h->tag, h->mode, true))
			;
		released++;
	}

	/*
	 * Our worker holds no session-level advisory lock of its own, so it
	 * drops them all: that also covers a lock the rule took on a key the
	 * evaluation already held (its transaction-level lock), which the
	 * comparison above cannot see.
	 */
	if (MyBgworkerEntry != NULL &&
		strcmp(MyBgworkerEntry->bgw_library_name, "smartetl") == 0 &&
		strcmp(MyBgworkerEntry->bgw_function_name, "smartetl_alert_worker_main") == 0)
		LockReleaseSession(USER_LOCKMETHOD);
	return released;
}

/* The rule's time limit, armed as the statement timeout. */
typedef struct RuleTimer
{
	bool		armed;			/* our deadline is the one armed */
	bool		outer_active;	/* the statement timeout that was armed before */
	TimestampTz outer_finish;
	TimestampTz deadline;
} RuleTimer;

static void
timer_arm(RuleTimer *t)
{
	t->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), smartetl_rule_timeout_ms);
	t->outer_active = get_timeout_active(STATEMENT_TIMEOUT);
	t->outer_finish = t->outer_active ? get_timeout_finish_time(STATEMENT_TIMEOUT) : 0;
	/* an earlier outer deadline stays; it cancels the whole statement */
	t->armed = !t->outer_active || t->outer_finish > t->deadline;
	if (t->armed)
		enable_timeout_at(STATEMENT_TIMEOUT, t->deadline);
}

/* Put the outer statement timeout back; true if ours fired unnoticed. */
static bool
timer_disarm(RuleTimer *t)
{
	bool		fired;

	if (!t->armed)
		return false;
	t->armed = false;
	fired = get_timeout_indicator(STATEMENT_TIMEOUT, false);
	if (t->outer_active)
		enable_timeout_at(STATEMENT_TIMEOUT, t->outer_finish);
	else
		disable_timeout(STATEMENT_TIMEOUT, false);
	return fired;
}

/*
 * Run rule_prepare_and_run() in the sandbox described at the top of the
 * file, and turn what went wrong into an error that names the rule and
 * that the caller can catch (a timeout is not a query_canceled error,
 * which PL/pgSQL's WHEN OTHERS does not catch).  A cancel that is not our
 * timeout (the user's, or an outer statement_timeout) goes through as is.
 */
static void
rule_sandbox(RuleCall *call)
{
	Oid			reader = get_role_oid(RULE_ROLE, false);
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	MemoryContext work;
	Oid			save_userid;
	int			save_sec_context;
	bool		save_read_only = XactReadOnly;
	List	   *locks_before;
	RuleTimer  *timer;
	ErrorData  *volatile edata = NULL;
	volatile bool timed_out = false;
	int			nest_level;
	int			released;

	/* whoever evaluates rules could read what smartetl_reader reads anyway */
	if (!has_privs_of_role(GetUserId(), reader))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to check or run sql rule \"%s\"", call->rule),
				 errdetail("Rule queries run with the rights of %s, which the current user does not have.",
						   RULE_ROLE)));

	work = AllocSetContextCreate(oldcxt, "smartetl rule query", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(work);
	locks_before = advisory_locks_held();
	timer = palloc0(sizeof(RuleTimer));
	GetUserIdAndSecContext(&save_userid, &save_sec_context);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(work);
	PG_TRY();
	{
		SetUserIdAndSecContext(reader, save_sec_context | SECURITY_RESTRICTED_OPERATION |
							   SECURITY_LOCAL_USERID_CHANGE);
		nest_level = NewGUCNestLevel();
		(void) set_config_option("search_path", RULE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		XactReadOnly = true;
		PushActiveSnapshot(GetTransactionSnapshot());
		timer_arm(timer);

		rule_prepare_and_run(call);

		/* a deadline passed just as the query ended: not worth an error, but not a cancel either */
		if (timer_disarm(timer))
			QueryCancelPending = false;
		PopActiveSnapshot();
		AtEOXact_GUC(false, nest_level);
		XactReadOnly = save_read_only;
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		(void) timer_disarm(timer);
		edata = CopyErrorData();
		FlushErrorState();
		timed_out = edata->sqlerrcode == ERRCODE_QUERY_CANCELED && timer->deadline != 0 &&
			GetCurrentTimestamp() >= timer->deadline;
	}
	PG_END_TRY();

	/* always rolled back: writes, transaction-level locks, settings, user */
	RollbackAndReleaseCurrentSubTransaction();
	CurrentResourceOwner = oldowner;
	XactReadOnly = save_read_only;
	MemoryContextSwitchTo(work);
	released = release_new_advisory_locks(locks_before);
	MemoryContextSwitchTo(oldcxt);
	if (call->refusal)
		call->refusal = pstrdup(call->refusal);
	MemoryContextDelete(work);

	if (edata == NULL && released > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("sql rule \"%s\" took %d advisory lock%s", call->rule, released, released == 1 ? "" : "s"),
				 errdetail("Rules may only read; the locks were released.")));
	if (edata == NULL)
		return;
	if (timed_out)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("sql rule \"%s\" canceled after smartetl.rule_timeout (%d ms)", call->rule,
						smartetl_rule_timeout_ms),
				 errhint("Make the query cheaper, or ask a superuser to raise smartetl.rule_timeout.")));
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	if (call->rows == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid query in sql rule \"%s\": %s", call->rule, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 edata->hint ? errhint("%s", edata->hint) : 0));
	ereport(ERROR,
			(errcode(edata->sqlerrcode == ERRCODE_ASSERT_FAILURE ? ERRCODE_RAISE_EXCEPTION : edata->sqlerrcode),
			 errmsg_internal("%s", edata->message),
			 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
			 edata->hint ? errhint("%s", edata->hint) : 0,
			 errcontext("sql rule \"%s\"", call->rule)));
}

static void
rule_refused(RuleCall *call)
{
	if (call->refusal)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 call->invalid ? errmsg("invalid query in sql rule \"%s\"", call->rule)
				 : errmsg("unsafe query in sql rule \"%s\"", call->rule),
				 errdetail("%s", call->refusal)));
}

/*
 * smartetl._rule_query_check(rule_name text, q text) RETURNS void: raise an
 * error saying why q cannot be a sql rule's query, if it cannot.
 */
Datum
smartetl_rule_query_check(PG_FUNCTION_ARGS)
{
	RuleCall	call = {0};

	call.rule = PG_ARGISNULL(0) ? "?" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		call.refusal = pstrdup("Expected a single SELECT (or WITH ... SELECT) statement, found nothing.");
	else
	{
		call.sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
		rule_sandbox(&call);
	}
	rule_refused(&call);
	PG_RETURN_VOID();
}

/*
 * smartetl._rule_query_rows(rule_name text, q text)
 * RETURNS TABLE (pipeline text, value double precision): the rows of a sql
 * rule's query, checked again and run in the sandbox, one per pipeline.
 */
Datum
smartetl_rule_query_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RuleCall	call = {0};

	call.rule = PG_ARGISNULL(0) ? "?" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		call.refusal = pstrdup("Expected a single SELECT (or WITH ... SELECT) statement, found nothing.");
	rule_refused(&call);
	call.sql = text_to_cstring(PG_GETARG_TEXT_PP(1));

	/* the tuplestore (and any file it spills to) outlives the rule's subtransaction */
	InitMaterializedSRF(fcinfo, 0);
	call.rows = rsinfo->setResult;
	call.rows_cxt = rsinfo->econtext->ecxt_per_query_memory;
	rule_sandbox(&call);
	rule_refused(&call);
	return (Datum) 0;
}
