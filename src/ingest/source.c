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

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "ingest/ingest.h"

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

/* Parse from r, store, and return the counts as smartetl.ingest_result. */
static Datum
ingest_from_reader(FunctionCallInfo fcinfo, LineReader *r, IngestOptions *o)
{
	IngestBatch b;
	IngestCounts counts = {0};

	ingest_batch_init(&b, o);
	o->format->parse(r, o, &b);
	if (b.nruns + b.nevents + b.nrejects == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA),
				 errmsg("%s input holds no records", o->format->name),
				 errdetail("The input is empty or holds only a header or blank lines.")));
	if (o->dry_run)
	{
		/* what would be stored: valid records as inserted, bad ones as rejected */
		counts.inserted = b.nruns + b.nevents;
		counts.rejected = b.nrejects;
	}
	else
		ingest_store(&b, o, &counts);
	ingest_batch_free(&b);
	return ingest_result_datum(fcinfo, &counts);
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
