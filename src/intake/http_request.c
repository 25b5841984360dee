/*-------------------------------------------------------------------------
 * src/intake/http_request.c
 *		Store a batch of complete HTTP requests: one transaction, one
 *		subtransaction per request, answers final only after the commit.
 *
 * Each request is authenticated against smartetl.api_key (salted SHA-256,
 * constant-time comparison), then stored by the same parse-and-store code
 * as smartetl.ingest() (ingest_payload) with the key's role as the current
 * user, so every privilege check is the role's; a key limited to
 * namespaces has every parsed run (and every log event's pipeline) checked
 * before anything is written.  A request's error rolls back its own
 * subtransaction only, and becomes its 4xx/5xx answer with the message,
 * detail and hint smartetl.ingest() would raise.
 *
 * Acknowledge links (GET/POST /ack/<token>) carry no key: the token is
 * signed, and smartetl._ack_link_page() checks it, acknowledges on POST and
 * gives the HTML page; its refusals roll back their subtransaction.
 *
 * Batching many requests into one commit is what makes synchronous commit
 * affordable: a 2xx is sent only after the commit record is flushed
 * (synchronous_commit is at least 'local' in this worker), so an
 * acknowledged event survives kill -9 of the server.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "ingest/ingest.h"
#include "intake/intake.h"

/* A row of smartetl.api_key, looked up once per batch. */
typedef struct ApiKey
{
	int64		key_id;
	bool		found;
	bool		revoked;
	uint8		salt[64];
	int			saltlen;
	uint8		hash[32];
	bool		hash_ok;		/* hash has 32 bytes */
	char	   *name;
	Oid			role;
	int			nnamespaces;	/* 0 = every namespace */
	char	  **namespaces;
	struct ApiKey *next;
} ApiKey;

/* An error that is the client's (4xx), raised inside the request's subtransaction. */
#define CLIENT_ERROR(status, code, msg, detail, hint) \
	do { intake_set_error(req, (status), (code), (msg), (detail), (hint)); return false; } while (0)

static const uint8 dummy_salt[16] = {0};
static SPIPlanPtr key_plan = NULL;
static SPIPlanPtr touch_plan = NULL;

/*
 * The key's row (SPI connected), from the batch's cache or the table; when
 * it was last used is written at most once a minute, not per request.
 */
static ApiKey *
lookup_key(int64 key_id, ApiKey **cache, MemoryContext keep)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(key_id)};
	ApiKey	   *k;
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	MemoryContext oldcxt;

	for (k = *cache; k; k = k->next)
		if (k->key_id == key_id)
			return k;
	if (key_plan == NULL)
	{
		key_plan = SPI_prepare("SELECT name, role, namespaces, salt, hash, revoked_at IS NOT NULL, "
							   " last_used_at IS NULL OR last_used_at < pg_catalog.now() - interval '1 minute' "
							   "FROM smartetl.api_key WHERE key_id = $1", 1, types);
		touch_plan = SPI_prepare("UPDATE smartetl.api_key SET last_used_at = pg_catalog.now() WHERE key_id = $1",
								 1, types);
		if (key_plan == NULL || touch_plan == NULL || SPI_keepplan(key_plan) || SPI_keepplan(touch_plan))
			elog(ERROR, "could not prepare the API key look-up");
	}
	if (SPI_execute_plan(key_plan, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the API key");

	oldcxt = MemoryContextSwitchTo(keep);
	k = palloc0(sizeof(ApiKey));
	k->key_id = key_id;
	k->next = *cache;
	*cache = k;
	if (SPI_processed == 1)
	{
		bytea	   *b;

		row = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		k->found = true;
		k->name = SPI_getvalue(row, desc, 1);
		k->role = DatumGetObjectId(SPI_getbinval(row, desc, 2, &isnull));
		d = SPI_getbinval(row, desc, 3, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			i;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &nulls, &k->nnamespaces);
			k->namespaces = palloc(sizeof(char *) * Max(k->nnamespaces, 1));
			for (i = 0; i < k->nnamespaces; i++)
				k->namespaces[i] = TextDatumGetCString(elems[i]);
		}
		b = DatumGetByteaPP(SPI_getbinval(row, desc, 4, &isnull));
		k->saltlen = Min(VARSIZE_ANY_EXHDR(b), (int) sizeof(k->salt));
		memcpy(k->salt, VARDATA_ANY(b), k->saltlen);
		b = DatumGetByteaPP(SPI_getbinval(row, desc, 5, &isnull));
		k->hash_ok = VARSIZE_ANY_EXHDR(b) == 32;
		if (k->hash_ok)
			memcpy(k->hash, VARDATA_ANY(b), 32);
		k->revoked = DatumGetBool(SPI_getbinval(row, desc, 6, &isnull));
		if (!k->revoked && DatumGetBool(SPI_getbinval(row, desc, 7, &isnull)) &&
			SPI_execute_plan(touch_plan, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update the API key");
	}
	MemoryContextSwitchTo(oldcxt);
	return k;
}

/*
 * The key of a request, if its secret matches (constant-time), the key is
 * active and its role may be used; else NULL with a 401/403 answer.  Runs
 * as the worker's own user, SPI connected.
 */
static ApiKey *
authenticate(IntakeRequest *req, ApiKey **cache, MemoryContext keep)
{
	int64		key_id;
	const char *secret;
	uint8		digest[32];
	bool		match;
	ApiKey	   *key;
	HeapTuple	roletup;
	bool		super;

	if (req->token == NULL || !api_token_parse(req->token, &key_id, &secret))
	{
		intake_set_error(req, 401, "unauthorized", "invalid API key", NULL, NULL);
		return NULL;
	}
	key = lookup_key(key_id, cache, keep);
	/* unknown ids cost the same work, so timing does not tell them apart */
	if (key->found)
		api_key_digest(key->salt, key->saltlen, secret, digest);
	else
		api_key_digest(dummy_salt, sizeof(dummy_salt), secret, digest);
	match = key->found && key->hash_ok && api_key_equal(digest, key->hash, 32);
	explicit_bzero(digest, sizeof(digest));
	if (!match || key->revoked)
	{
		intake_set_error(req, 401, "unauthorized", "invalid API key", NULL, NULL);
		return NULL;
	}

	/* the role must still exist and must not have become a superuser */
	roletup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(key->role));
	if (!HeapTupleIsValid(roletup))
	{
		intake_set_error(req, 403, "forbidden",
						 psprintf("the role of API key \"%s\" no longer exists", key->name), NULL, NULL);
		return NULL;
	}
	super = ((Form_pg_authid) GETSTRUCT(roletup))->rolsuper;
	ReleaseSysCache(roletup);
	if (super)
	{
		intake_set_error(req, 403, "forbidden", psprintf("API key \"%s\" acts as a superuser", key->name),
						 NULL, "Give the key a role without superuser rights.");
		return NULL;
	}
	return key;
}

static bool
namespace_allowed(const ApiKey *key, const char *ns)
{
	int			i;

	if (key->nnamespaces == 0)
		return true;
	for (i = 0; ns && i < key->nnamespaces; i++)
		if (strcmp(ns, key->namespaces[i]) == 0)
			return true;
	return false;
}

static void
namespace_refused(const ApiKey *key, const char *ns)
{
	StringInfoData list;
	int			i;

	initStringInfo(&list);
	for (i = 0; i < key->nnamespaces; i++)
		appendStringInfo(&list, "%s%s", i ? ", " : "", quote_identifier(key->namespaces[i]));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("API key \"%s\" may not write namespace \"%s\"", key->name, ns ? ns : ""),
			 errdetail("The key is limited to the namespaces %s.", list.data)));
}

/*
 * IngestBatchCheck for a key limited to namespaces: every run's namespace
 * must be one of the key's; log events not tied to a run of the batch
 * belong to the options' pipeline, which must then be named and allowed.
 */
static void
check_batch_namespaces(IngestBatch *b, const IngestOptions *o, void *arg)
{
	const ApiKey *key = (const ApiKey *) arg;
	TupleTableSlot *slot;
	bool		isnull;

	if (key->nnamespaces == 0)
		return;
	slot = MakeSingleTupleTableSlot(b->run_desc, &TTSOpsMinimalTuple);
	tuplestore_rescan(b->runs);
	while (tuplestore_gettupleslot(b->runs, true, false, slot))
	{
		Datum		ns = slot_getattr(slot, 2, &isnull);
		char	   *s = isnull ? NULL : TextDatumGetCString(ns);

		if (!namespace_allowed(key, s))
			namespace_refused(key, s);
		pfree(s);
	}
	tuplestore_rescan(b->runs);
	ExecDropSingleTupleTableSlot(slot);

	if (b->nevents == 0)
		return;
	slot = MakeSingleTupleTableSlot(b->event_desc, &TTSOpsMinimalTuple);
	tuplestore_rescan(b->events);
	while (tuplestore_gettupleslot(b->events, true, false, slot))
	{
		slot_getattr(slot, 8, &isnull);
		if (isnull && (o->pipeline == NULL || !namespace_allowed(key, o->namespace)))
		{
			if (o->pipeline == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("API key \"%s\" may only store log lines of a named pipeline", key->name),
						 errhint("Pass the options \"namespace\" and \"pipeline\".")));
			namespace_refused(key, o->namespace);
		}
	}
	tuplestore_rescan(b->events);
	ExecDropSingleTupleTableSlot(slot);
}

static Oid
ingest_function_oid(void)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, JSONBOID};

	return LookupFuncName(list_make2(makeString("smartetl"), makeString("ingest")),
						  3, argtypes, false);
}

static Jsonb *
jsonb_from_text(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/*
 * The format, payload and options of a request.  The envelope
 * ({"format", "payload", "options"}) is parsed here; its payload may be a
 * string or any JSON value (sent on as its text).
 */
static bool
request_input(IntakeRequest *req, const ApiKey *key, char **format, const char **data,
			  size_t *len, Jsonb **options)
{
	Jsonb	   *opts = jsonb_from_text(req->options_json ? req->options_json : "{}");

	*data = req->body.data;
	*len = req->body.len;
	*format = req->route == ROUTE_LINEAGE ? "openlineage" : req->format;
	if (req->route == ROUTE_ENVELOPE)
	{
		Jsonb	   *env;
		JsonbValue	buf;
		JsonbValue *v;
		char	   *detail = NULL;
		int			line = 0;

		if (!pg_verify_mbstr(GetDatabaseEncoding(), req->body.data, req->body.len, true))
			CLIENT_ERROR(400, "bad_request",
						 psprintf("the body is not valid %s", GetDatabaseEncodingName()), NULL, NULL);
		if (!json_doc_valid(req->body.data, req->body.len, &detail, &line))
			CLIENT_ERROR(400, "bad_request", psprintf("invalid JSON on line %d", line), detail,
						 "POST /api/v1/ingest takes {\"format\": ..., \"payload\": ..., \"options\": {...}}.");
		env = jsonb_from_text(req->body.data);
		if (!JB_ROOT_IS_OBJECT(env))
			CLIENT_ERROR(400, "bad_request", "the body is not a JSON object", NULL,
						 "POST /api/v1/ingest takes {\"format\": ..., \"payload\": ..., \"options\": {...}}.");
		v = getKeyJsonValueFromContainer(&env->root, "format", 6, &buf);
		if (v == NULL || v->type != jbvString)
			CLIENT_ERROR(400, "bad_request", "the envelope needs \"format\" (a string)", NULL, NULL);
		*format = pnstrdup(v->val.string.val, v->val.string.len);
		v = getKeyJsonValueFromContainer(&env->root, "payload", 7, &buf);
		if (v == NULL || v->type == jbvNull)
			CLIENT_ERROR(400, "bad_request", "the envelope needs \"payload\"", NULL, NULL);
		if (v->type == jbvString)
		{
			*data = v->val.string.val;
			*len = v->val.string.len;
		}
		else if (v->type == jbvBinary && strcmp(*format, "jsonl") == 0 &&
				 JsonContainerIsArray(v->val.binary.data))
		{
			/* JSON lines: one element per line */
			StringInfoData lines;
			JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
			JsonbValue	e;
			JsonbIteratorToken tok;

			initStringInfo(&lines);
			while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
				if (tok == WJB_ELEM)
				{
					if (e.type == jbvBinary)
						appendStringInfoString(&lines, JsonbToCString(NULL, e.val.binary.data, e.val.binary.len));
					else
						appendStringInfoString(&lines, JsonbToCString(NULL, &JsonbValueToJsonb(&e)->root, 0));
					appendStringInfoChar(&lines, '\n');
				}
			*data = lines.data;
			*len = lines.len;
		}
		else if (v->type == jbvBinary)
		{
			char	   *text = JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);

			*data = text;
			*len = strlen(text);
		}
		else
			CLIENT_ERROR(400, "bad_request", "\"payload\" must be a string, an object or an array",
						 NULL, NULL);
		v = getKeyJsonValueFromContainer(&env->root, "options", 7, &buf);
		if (v != NULL && v->type != jbvNull)
		{
			if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
				CLIENT_ERROR(400, "bad_request", "\"options\" must be a JSON object", NULL, NULL);
			opts = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(opts),
													  JsonbPGetDatum(JsonbValueToJsonb(v))));
		}
	}
	/* a key limited to namespaces writes new pipelines into its first one */
	if (key->nnamespaces > 0 &&
		getKeyJsonValueFromContainer(&opts->root, "namespace", 9, &(JsonbValue) {0}) == NULL)
	{
		StringInfoData s;

		initStringInfo(&s);
		appendStringInfoString(&s, "{\"namespace\": ");
		escape_json(&s, key->namespaces[0]);
		appendStringInfoChar(&s, '}');
		opts = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(opts),
												  JsonbPGetDatum(jsonb_from_text(s.data))));
	}
	*options = opts;
	return true;
}

/*
 * Ingest as the key's role: every privilege check of the parse and store is
 * the role's, and EXECUTE on smartetl.ingest() is required as for SQL callers.
 */
static void
ingest_as(const ApiKey *key, Oid ingest_oid, const char *format, const char *data, size_t len,
		  Jsonb *options, IngestCounts *counts)
{
	Oid			saved_user;
	int			saved_sec;

	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(key->role, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (pg_proc_aclcheck(ingest_oid, key->role, ACL_EXECUTE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("the role of API key \"%s\" may not ingest", key->name),
					 errhint("GRANT smartetl_writer TO the key's role.")));
		ingest_payload(format, data, len, options, NULL, 1,
					   key->nnamespaces > 0 ? check_batch_namespaces : NULL, (void *) key, counts);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_sec);
	}
	PG_END_TRY();
}

/* The HTTP status for an error raised while storing a request. */
static int
status_for_error(int sqlerrcode)
{
	if (sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE)
		return 403;
	if (sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED)
		return 413;
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_DATA_EXCEPTION:
		case ERRCODE_NO_DATA:
		case ERRCODE_FEATURE_NOT_SUPPORTED:
		case ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION:
			return 400;
		case ERRCODE_TRANSACTION_ROLLBACK:
		case ERRCODE_INSUFFICIENT_RESOURCES:
		case ERRCODE_OPERATOR_INTERVENTION:
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:
			return 503;
		default:
			return 500;
	}
}

/* The answer to an error raised while storing req. */
static void
answer_error(IntakeRequest *req, ErrorData *e)
{
	int			status = status_for_error(e->sqlerrcode);

	if (status >= 500)
	{
		ereport(LOG,
				(errmsg("smartetl intake: could not store a request: %s", e->message),
				 e->detail ? errdetail("%s", e->detail) : 0));
		intake_set_error(req, status, unpack_sql_state(e->sqlerrcode),
						 status == 503 ? e->message : "internal error", NULL,
						 status == 503 ? "Retry after the time in Retry-After." :
						 "The server log has the details.");
	}
	else
		intake_set_error(req, status, unpack_sql_state(e->sqlerrcode), e->message,
						 e->detail, e->hint);
}

/* Work done in a subtransaction: true = keep it. */
typedef bool (*SubxactWork) (void *arg);

/*
 * Run work in its own subtransaction, in the memory context work (reset
 * afterwards).  Returns whether it was kept; *error receives a raised
 * error (copied into the caller's context), else NULL.
 */
static bool
in_subtransaction(SubxactWork fn, void *arg, MemoryContext work, ErrorData **error)
{
	MemoryContext outer = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool kept = false;

	*error = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(work);
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		kept = fn(arg);
		PopActiveSnapshot();
		if (kept)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(outer);
		*error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		kept = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(outer);
	CurrentResourceOwner = owner;
	CommandCounterIncrement();
	MemoryContextReset(work);
	return kept;
}

/* One request, stored on its own. */
typedef struct OneRequest
{
	IntakeRequest *req;
	const ApiKey *key;
	Oid			ingest_oid;
	IngestCounts counts;
} OneRequest;

static bool
store_one_work(void *arg)
{
	OneRequest *one = (OneRequest *) arg;
	char	   *format;
	const char *data;
	size_t		len;
	Jsonb	   *options;

	if (!request_input(one->req, one->key, &format, &data, &len, &options))
		return false;
	ingest_as(one->key, one->ingest_oid, format, data, len, options, &one->counts);
	return true;
}

static const char *
stored_answer(IntakeRequest *req, const IngestCounts *c)
{
	if (req->route == ROUTE_LINEAGE)
		return "{\"status\": \"stored\"}";
	return psprintf("{\"inserted\": " INT64_FORMAT ", \"updated\": " INT64_FORMAT
					", \"unchanged\": " INT64_FORMAT ", \"rejected\": " INT64_FORMAT "}",
					c->inserted, c->updated, c->unchanged, c->rejected);
}

/* Store one request in its own subtransaction; the answer is provisional until commit. */
static void
store_one(IntakeRequest *req, const ApiKey *key, Oid ingest_oid, MemoryContext work)
{
	OneRequest	one = {req, key, ingest_oid, {0}};
	ErrorData  *e;

	if (in_subtransaction(store_one_work, &one, work, &e))
		intake_set_answer(req, req->route == ROUTE_LINEAGE ? 201 : 200, stored_answer(req, &one.counts));
	else if (e)
	{
		answer_error(req, e);
		FreeErrorData(e);
	}
}

/*
 * The events of a lineage body, as elements to put in a JSON array: the
 * object itself, or the array's contents; false when the body is not
 * plainly one of these (then it is stored on its own, to get its own
 * answer).
 */
static bool
lineage_elements(IntakeRequest *req, const char **start, int *len)
{
	char	   *p = req->body.data;
	char	   *end = req->body.data + req->body.len;
	char	   *detail;
	int			line;

	/*
	 * A stack trace becomes a log event labelled by the payload's MD5: stored
	 * alone, a re-sent request gets the same label and adds nothing twice.
	 */
	if (req->body.len == 0 ||
		memmem(req->body.data, req->body.len, "\"stackTrace\"", 12) != NULL ||
		!pg_verify_mbstr(GetDatabaseEncoding(), req->body.data, req->body.len, true) ||
		!json_doc_valid(req->body.data, req->body.len, &detail, &line))
		return false;
	while (p < end && isspace((unsigned char) *p))
		p++;
	while (end > p && isspace((unsigned char) end[-1]))
		end--;
	if (p >= end || (*p != '{' && *p != '['))
		return false;
	if (*p == '[')
	{
		p++;
		end--;
		while (p < end && isspace((unsigned char) *p))
			p++;
		if (p >= end)
			return false;		/* [] */
	}
	*start = p;
	*len = end - p;
	return true;
}

/* Lineage requests of one key and options, stored by one ingest. */
typedef struct LineageGroup
{
	IntakeRequest **reqs;
	int			n;
	const ApiKey *key;
	Oid			ingest_oid;
} LineageGroup;

static bool
store_group_work(void *arg)
{
	LineageGroup *g = (LineageGroup *) arg;
	StringInfoData all;
	IngestCounts counts;
	const char *format;
	const char *data;
	size_t		len;
	Jsonb	   *options;
	int			i;

	initStringInfo(&all);
	appendStringInfoChar(&all, '[');
	for (i = 0; i < g->n; i++)
	{
		const char *start;
		int			n;

		if (!lineage_elements(g->reqs[i], &start, &n))
			elog(ERROR, "lineage body changed");	/* checked by the caller */
		if (i > 0)
			appendStringInfoString(&all, ",\n");
		appendBinaryStringInfo(&all, start, n);
	}
	appendStringInfoString(&all, "]\n");
	if (!request_input(g->reqs[0], g->key, (char **) &format, &data, &len, &options))
		return false;
	ingest_as(g->key, g->ingest_oid, "openlineage", all.data, all.len, options, &counts);
	return true;
}

/*
 * Store many lineage requests at once: one parse-and-store instead of one
 * per event, which is what lets a single worker keep up with thousands of
 * events a second.  Any error sends every request of the group down the
 * one-by-one path, so each still gets its own answer.
 */
static bool
store_group(LineageGroup *g, MemoryContext work)
{
	ErrorData  *e;
	int			i;

	if (in_subtransaction(store_group_work, g, work, &e))
	{
		for (i = 0; i < g->n; i++)
			intake_set_answer(g->reqs[i], 201, stored_answer(g->reqs[i], NULL));
		return true;
	}
	if (e)
		FreeErrorData(e);
	return false;
}

/* Same key and same options: the requests may share one ingest. */
static bool
same_group(IntakeRequest *a, const ApiKey *ka, IntakeRequest *b, const ApiKey *kb)
{
	return a->route == ROUTE_LINEAGE && b->route == ROUTE_LINEAGE && ka->key_id == kb->key_id &&
		strcmp(a->options_json ? a->options_json : "", b->options_json ? b->options_json : "") == 0;
}

/*
 * The value of field "by" of a form body (application/x-www-form-urlencoded:
 * + is a space, %XX a byte), or NULL when absent or not valid text.
 */
static char *
form_field_by(const StringInfoData *body)
{
	const char *p = body->data;
	const char *end = body->data + body->len;

	while (p && p < end)
	{
		const char *amp = memchr(p, '&', end - p);
		const char *stop = amp ? amp : end;

		if (stop - p >= 3 && strncmp(p, "by=", 3) == 0)
		{
			StringInfoData v;
			const char *q;

			initStringInfo(&v);
			for (q = p + 3; q < stop; q++)
			{
				if (*q == '+')
					appendStringInfoChar(&v, ' ');
				else if (*q == '%' && stop - q >= 3 && isxdigit((unsigned char) q[1]) &&
						 isxdigit((unsigned char) q[2]))
				{
					char		hex[3] = {q[1], q[2], '\0'};

					appendStringInfoChar(&v, (char) strtol(hex, NULL, 16));
					q += 2;
				}
				else
					appendStringInfoChar(&v, *q);
			}
			if (memchr(v.data, '\0', v.len) != NULL ||
				!pg_verify_mbstr(GetDatabaseEncoding(), v.data, v.len, true))
				return NULL;
			return v.data;
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

/* An acknowledge link's page: _ack_link_page() does the checks and the work. */
static bool
store_ack_work(void *arg)
{
	IntakeRequest *req = (IntakeRequest *) arg;
	Oid			types[3] = {TEXTOID, BOOLOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	char	   *by = req->confirm ? form_field_by(&req->body) : NULL;
	bool		isnull;
	int			status;
	char	   *page;

	values[0] = CStringGetTextDatum(req->format ? req->format : "");
	values[1] = BoolGetDatum(req->confirm);
	values[2] = by ? CStringGetTextDatum(by) : (Datum) 0;
	nulls[2] = by ? ' ' : 'n';
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT status, page FROM smartetl._ack_link_page($1, $2, $3)",
							  3, types, values, nulls, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not answer an acknowledge link");
	status = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	page = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	intake_set_answer(req, status, page ? page : "");
	req->html = true;
	SPI_finish();
	return status < 300;		/* a refusal changes nothing */
}

/* Answer an acknowledge link in its own subtransaction (a 2xx stands only after the commit). */
static void
store_ack(IntakeRequest *req, MemoryContext work)
{
	ErrorData  *e;

	if (!in_subtransaction(store_ack_work, req, work, &e) && e)
	{
		answer_error(req, e);
		FreeErrorData(e);
	}
}

/*
 * Authenticate every request (each key looked up once per batch), then
 * store lineage requests in groups and everything else one by one.
 */
static void
store_all(IntakeRequest *list, MemoryContext work)
{
	Oid			ingest_oid = ingest_function_oid();
	int			n = 0,
				i,
				j;
	IntakeRequest **reqs;
	ApiKey	  **keys;
	bool	   *done;
	bool	   *alone;			/* failed in a group: store on its own */
	ApiKey	   *cache = NULL;
	MemoryContext keep = CurrentMemoryContext;

	for (IntakeRequest *r = list; r; r = r->next_queued)
		n++;
	reqs = palloc(sizeof(IntakeRequest *) * n);
	keys = palloc0(sizeof(ApiKey *) * n);
	done = palloc0(sizeof(bool) * n);
	alone = palloc0(sizeof(bool) * n);
	n = 0;
	for (IntakeRequest *r = list; r; r = r->next_queued)
		reqs[n++] = r;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (i = 0; i < n; i++)
	{
		if (reqs[i]->route == ROUTE_ACK)
		{
			done[i] = true;		/* no key: the link is signed (below) */
			continue;
		}
		keys[i] = authenticate(reqs[i], &cache, keep);
		if (keys[i] == NULL)
			done[i] = true;		/* answered 401/403 */
	}
	SPI_finish();
	for (i = 0; i < n; i++)
		if (reqs[i]->route == ROUTE_ACK)
			store_ack(reqs[i], work);

	for (i = 0; i < n; i++)
	{
		LineageGroup g;

		if (done[i])
			continue;
		g.reqs = palloc(sizeof(IntakeRequest *) * n);
		g.n = 0;
		g.key = keys[i];
		g.ingest_oid = ingest_oid;
		for (j = i; j < n; j++)
		{
			const char *start;
			int			len;

			if (!done[j] && !alone[i] && !alone[j] &&
				same_group(reqs[i], keys[i], reqs[j], keys[j]) &&
				lineage_elements(reqs[j], &start, &len))
				g.reqs[g.n++] = reqs[j];
		}
		if (g.n >= 2)
		{
			bool		stored = store_group(&g, work);

			for (j = i; j < n; j++)
				for (int k = 0; k < g.n; k++)
					if (reqs[j] == g.reqs[k])
						(stored ? done : alone)[j] = true;
			if (stored)
			{
				pfree(g.reqs);
				continue;
			}
		}
		store_one(reqs[i], keys[i], ingest_oid, work);
		done[i] = true;
		pfree(g.reqs);
	}
}

static bool
extension_ready(void)
{
	bool		ready;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'smartetl'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up the smartetl extension");
	ready = SPI_processed > 0;
	SPI_finish();
	return ready;
}

/*
 * Store a list of complete requests in one transaction.  Every request
 * ends up with an answer; 2xx answers stand only if the commit succeeded.
 */
void
intake_store_requests(IntakeRequest *list)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext work = AllocSetContextCreate(outer, "smartetl intake request work",
											   ALLOCSET_DEFAULT_SIZES);
	IntakeRequest *r;
	int			n = 0;

	for (r = list; r; r = r->next_queued)
		n++;
	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		pgstat_report_activity(STATE_RUNNING, psprintf("smartetl intake: storing %d requests", n));
		PushActiveSnapshot(GetTransactionSnapshot());
		if (!extension_ready())
		{
			http_server_set_health(false, "extension smartetl is not installed in this database");
			for (r = list; r; r = r->next_queued)
				intake_set_error(r, 503, "unavailable", "extension smartetl is not installed",
								 NULL, "CREATE EXTENSION smartetl in the database of smartetl.intake_database.");
		}
		else
			store_all(list, work);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(outer);
		e = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("smartetl intake: could not commit %d requests: %s", n, e->message)));
		for (r = list; r; r = r->next_queued)
			if (!r->answered || r->status < 300)
				intake_set_error(r, 503, "unavailable", "the request was not stored", e->message,
								 "Retry after the time in Retry-After.");
		FreeErrorData(e);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(work);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}
