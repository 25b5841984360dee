/*-------------------------------------------------------------------------
 * src/ingest/source.c
 *		SQL entry points smartetl.ingest(format, payload, options) and
 *		smartetl.ingest_file(path, format, options).
 *
 * Both parse everything first, then store the batch in one go, so a call
 * either stores all its good rows or (in strict mode) nothing at all.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "common/md5.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/resowner.h"

#include "ingest/ingest.h"
#include "template/template.h"

PG_FUNCTION_INFO_V1(smartetl_ingest);
PG_FUNCTION_INFO_V1(smartetl_ingest_file);

static Datum
ingest_result_datum(FunctionCallInfo fcinfo, const IngestCounts *c)
{
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "smartetl.ingest_result is not a composite type");
	values[0] = Int64GetDatum(c->inserted);
	values[1] = Int64GetDatum(c->updated);
	values[2] = Int64GetDatum(c->unchanged);
	values[3] = Int64GetDatum(c->rejected);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

/*
 * A dry run stores the batch in a subtransaction and rolls it back: its
 * counts are then exactly the real call's (records of one run merged, stored
 * runs looked up, rejects counted) and nothing stays.  An error is rethrown
 * after our subtransaction is gone, so a caller's savepoint handling (a
 * PL/pgSQL EXCEPTION block) finds its own subtransaction on top.
 */
static void
ingest_store_rolled_back(IngestBatch *b, IngestOptions *o, IngestCounts *counts)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		ingest_store(b, o, counts);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/* Parse from r and store; check, if any, sees the batch before it is stored. */
static void
ingest_reader_counts(LineReader *r, IngestOptions *o, IngestBatchCheck check, void *arg,
					 IngestCounts *counts)
{
	IngestBatch b;

	ingest_batch_init(&b, o);
	o->format->parse(r, o, &b);
	if (b.nruns + b.nevents + b.nrejects == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA),
				 errmsg("%s input holds no records", o->format->name),
				 errdetail("The input is empty or holds only a header or blank lines.")));
	if (check)
		check(&b, o, arg);
	if (o->parse_only)
	{
		/* what would be stored: valid records as inserted, bad ones as rejected */
		counts->inserted = b.nruns + b.nevents;
		counts->rejected = b.nrejects;
		template_dry_run_end();
	}
	else if (o->dry_run)
	{
		ingest_store_rolled_back(&b, o, counts);
		template_dry_run_end();
	}
	else
		ingest_store(&b, o, counts);
	ingest_batch_free(&b);
}

/* Parse from r, store, and return the counts as smartetl.ingest_result. */
static Datum
ingest_from_reader(FunctionCallInfo fcinfo, LineReader *r, IngestOptions *o)
{
	IngestCounts counts = {0};

	ingest_reader_counts(r, o, NULL, NULL, &counts);
	return ingest_result_datum(fcinfo, &counts);
}

/*
 * smartetl.ingest() for callers inside the server (the intake worker): the
 * same parse and store, on bytes not yet verified in the server encoding.
 * The payload's first line is numbered first_line; source labels it when
 * the options name none (else "payload:<md5>", as smartetl.ingest() does).
 * The caller checks the privileges (EXECUTE on smartetl.ingest) itself.
 */
void
ingest_payload(const char *format, const char *data, size_t len, Jsonb *options,
			   const char *source, long first_line, IngestBatchCheck check, void *arg,
			   IngestCounts *counts)
{
	IngestOptions o;
	LineReader	r;

	ingest_options_parse(&o, format, options);
	if (o.source == NULL && source != NULL)
		o.source = pstrdup(source);
	if (o.source == NULL)
	{
		char		hex[33];
		const char *errstr = NULL;

		if (!pg_md5_hash(data, len, hex, &errstr))
			elog(ERROR, "could not compute MD5 of the payload: %s", errstr);
		o.source = psprintf("payload:%s", hex);
	}
	line_reader_init_mem(&r, data, len, GetDatabaseEncoding(), o.max_line);
	r.line_no = first_line - 1;
	memset(counts, 0, sizeof(*counts));
	ingest_reader_counts(&r, &o, check, arg, counts);
	line_reader_free(&r);
}

/*
 * smartetl.ingest(format text, payload text, options jsonb) RETURNS ingest_result
 */
Datum
smartetl_ingest(PG_FUNCTION_ARGS)
{
	char	   *format = text_to_cstring(PG_GETARG_TEXT_PP(0));
	text	   *payload = PG_GETARG_TEXT_PP(1);
	Jsonb	   *options = PG_GETARG_JSONB_P(2);
	IngestOptions o;
	LineReader	r;

	ingest_options_parse(&o, format, options);
	if (o.source == NULL)
		o.source = psprintf("payload:%s",
							TextDatumGetCString(DirectFunctionCall1(md5_text,
																	PointerGetDatum(payload))));
	/* text input is already verified in the server encoding */
	line_reader_init_mem(&r, VARDATA_ANY(payload), VARSIZE_ANY_EXHDR(payload),
						 -1, o.max_line);
	return ingest_from_reader(fcinfo, &r, &o);
}

static void
check_file_access(void)
{
	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to ingest a server-side file"),
				 errdetail("Only superusers and members of pg_read_server_files may read server files."),
				 errhint("Send the content with smartetl.ingest(format, payload, options) instead.")));
}

/*
 * smartetl.ingest_file(path text, format text, options jsonb) RETURNS ingest_result
 *		Streams the file, so its size is not limited by the 1 GB text limit.
 */
Datum
smartetl_ingest_file(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *format = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Jsonb	   *options = PG_GETARG_JSONB_P(2);
	IngestOptions o;
	LineReader	r;
	FILE	   *file;
	Datum		result;

	check_file_access();
	ingest_options_parse(&o, format, options);
	if (o.source == NULL)
		o.source = path;
	file = AllocateFile(path, PG_BINARY_R);
	if (file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	line_reader_init_file(&r, file, GetDatabaseEncoding(), o.max_line);
	result = ingest_from_reader(fcinfo, &r, &o);
	if (ferror(file))
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
	FreeFile(file);
	line_reader_free(&r);
	return result;
}
