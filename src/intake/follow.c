/*-------------------------------------------------------------------------
 * src/intake/follow.c
 *		Followed files: the intake worker tails the files of smartetl.source
 *		and stores their new lines, each file's position committed in the
 *		same transaction as the rows it covers (smartetl.source_file).
 *
 * Files are known by device and inode, not by name, so a file renamed by
 * log rotation keeps its position, and its last lines are read through the
 * descriptor the worker keeps open, until it has been quiet for a while.
 * After a restart a rotated file is found again by inode in its directory.
 * A file that shrinks, or whose first bytes changed, was truncated
 * (copytruncate): its copy, recognised by a hash of the 4 kB before the
 * position, supplies the lines between the last read and the truncation,
 * then the file is read from its start again.
 *
 * Line formats (csv, jsonl, logline, openlineage) are read up to the last
 * complete line; an unfinished last line is held back until it is complete
 * (or, in a rotated file, until the file is quiet).  A CSV file's header is
 * sent again with each later slice.  logline also holds back its last entry
 * (a traceback may still follow) until the next entry starts or the file is
 * quiet for half a second.  Document formats (dbt, airflow) are read whole
 * whenever the file changed, idempotently.
 *
 * Rows are stored with the rights of the role that registered the source
 * (which must still have pg_read_server_files).  Log events are labelled
 * "<path>#<inode>" with the line's number in that file, so a rotated file
 * and its successor never collide.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "ingest/ingest.h"
#include "intake/intake.h"

extern Datum smartetl_parse_log(PG_FUNCTION_ARGS);

#define SLICE_MAX (16 * 1024 * 1024)	/* bytes read per file per transaction */
#define DOCUMENT_MAX (256 * 1024 * 1024)	/* largest dbt/airflow document */
#define HEAD_BYTES 1024
#define TAIL_BYTES 4096
#define QUIET_ROTATED_MS 5000	/* a rotated file quiet this long is finished */
#define QUIET_ENTRY_MS 500		/* logline: last entry complete after this */
#define QUIET_DOCUMENT_MS 1000	/* dbt/airflow: read when quiet this long ... */
#define DOCUMENT_MAX_DELAY_MS 10000 /* ... or at least this often while growing */
#define RETRY_MS 5000			/* after an error */

typedef struct FollowedFile
{
	int64		dev;
	int64		ino;
	int			fd;				/* -1 = not open */
	char	   *path;			/* where it was last seen */
	bool		rotated;		/* no longer at the source's path */
	bool		done;
	bool		seen;			/* matched by the latest look-up */
	bool		start_at_end;	/* there when the source was first followed */
	int64		position;		/* committed; -1 = read the state row */
	int64		size;			/* at the last look */
	int64		mtime_ms;
	TimestampTz changed_at;		/* when size or mtime last changed */
	TimestampTz ingested_at;
	TimestampTz recheck_at;		/* held-back data may be ready then; 0 = on change */
	TimestampTz retry_at;
	struct FollowedFile *next;
} FollowedFile;

typedef struct FollowedSource
{
	int64		source_id;
	char	   *path;
	char	   *format;
	char	   *options;		/* jsonb text, without "start" */
	bool		start_at_end;
	Oid			owner;
	bool		is_glob;
	bool		document;		/* dbt, airflow: whole-file formats */
	bool		had_files;		/* some file state existed (start_at_end applies once) */
	bool		seen;
	FollowedFile *files;
	struct FollowedSource *next;
} FollowedSource;

static MemoryContext follow_cxt = NULL;
static FollowedSource *sources = NULL;
static bool extension_present = false;

/* ----------------------------------------------------------------
 * In-memory registry
 * ---------------------------------------------------------------- */

static void
close_file(FollowedFile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static void
free_source(FollowedSource *s)
{
	FollowedFile *f,
			   *next;

	for (f = s->files; f; f = next)
	{
		next = f->next;
		close_file(f);
		pfree(f->path);
		pfree(f);
	}
	pfree(s->path);
	pfree(s->format);
	pfree(s->options);
	pfree(s);
}

/* Close every file (the extension went away). */
void
follow_forget_all(void)
{
	FollowedSource *s,
			   *next;

	for (s = sources; s; s = next)
	{
		next = s->next;
		free_source(s);
	}
	sources = NULL;
}

static FollowedFile *
find_file(FollowedSource *s, int64 dev, int64 ino)
{
	FollowedFile *f;

	for (f = s->files; f; f = f->next)
		if (f->dev == dev && f->ino == ino)
			return f;
	return NULL;
}

static FollowedFile *
add_file(FollowedSource *s, int64 dev, int64 ino, const char *path)
{
	FollowedFile *f = MemoryContextAllocZero(follow_cxt, sizeof(FollowedFile));

	f->dev = dev;
	f->ino = ino;
	f->fd = -1;
	f->path = MemoryContextStrdup(follow_cxt, path);
	f->position = -1;			/* unknown until its row is read */
	f->size = -1;
	f->next = s->files;
	s->files = f;
	return f;
}

static void
set_path(FollowedFile *f, const char *path)
{
	if (strcmp(f->path, path) != 0)
	{
		pfree(f->path);
		f->path = MemoryContextStrdup(follow_cxt, path);
	}
}

/* ----------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------- */

static void
spi_check(int rc, int expected, const char *what)
{
	if (rc != expected)
		elog(ERROR, "smartetl follow: could not %s (%s)", what, SPI_result_code_string(rc));
}

static int64
spi_int8(int row, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

static bytea *
to_bytea(const char *data, size_t n)
{
	bytea	   *b = palloc(VARHDRSZ + n);

	SET_VARSIZE(b, VARHDRSZ + n);
	memcpy(VARDATA(b), data, n);
	return b;
}

/* Read exactly n bytes at offset (fewer only at end of file); -1 on error. */
static ssize_t
read_at(int fd, char *buf, size_t n, off_t offset)
{
	size_t		done = 0;

	while (done < n)
	{
		ssize_t		r = pread(fd, buf + done, n - done, offset + done);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		done += r;
	}
	return (ssize_t) done;
}

static void
sha256(const char *data, size_t n, uint8 *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, n) < 0 ||
		pg_cryptohash_final(ctx, out, 32) < 0)
	{
		pg_cryptohash_free(ctx);
		elog(ERROR, "could not compute SHA-256");
	}
	pg_cryptohash_free(ctx);
}

/* SHA-256 of the TAIL_BYTES before position (fewer at the start of the file). */
static bool
tail_hash(int fd, int64 position, uint8 *out)
{
	char		buf[TAIL_BYTES];
	int64		from = Max(0, position - TAIL_BYTES);
	ssize_t		n = read_at(fd, buf, position - from, from);

	if (n != position - from)
		return false;
	sha256(buf, n, out);
	return true;
}

static void
file_error(const char *what, const char *path)
{
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not %s file \"%s\": %m", what, path)));
}

/* ----------------------------------------------------------------
 * Reloading the sources and their file states
 * ---------------------------------------------------------------- */

static bool
is_glob_pattern(const char *path)
{
	return strpbrk(path, "*?[") != NULL;
}

/* Load the unfinished file states of a source (after a start or a change). */
static void
load_file_states(FollowedSource *s)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(s->source_id)};
	uint64		i;
	bool		isnull;

	spi_check(SPI_execute_with_args("SELECT dev, inode, path, position, done FROM smartetl.source_file "
									"WHERE source_id = $1", 1, types, values, NULL, true, 0),
			  SPI_OK_SELECT, "read file states");
	s->had_files = SPI_processed > 0;
	for (i = 0; i < SPI_processed; i++)
	{
		FollowedFile *f;

		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5, &isnull)))
			continue;
		f = add_file(s, spi_int8(i, 1, &isnull), spi_int8(i, 2, &isnull),
					 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3));
		f->position = spi_int8(i, 4, &isnull);
		f->rotated = true;		/* until a look-up finds it at the source's path */
		f->changed_at = GetCurrentTimestamp();
	}
}

/* Re-read smartetl.source (inside a transaction, SPI connected). */
static void
reload_sources(void)
{
	FollowedSource *s,
			  **link;
	uint64		i;
	SPITupleTable *tab;
	uint64		n;

	for (s = sources; s; s = s->next)
		s->seen = false;
	spi_check(SPI_execute("SELECT source_id, path, format, (options - 'start')::text, "
						  " coalesce(options->>'start', 'beginning') = 'end', owner "
						  "FROM smartetl.source WHERE enabled ORDER BY source_id", true, 0),
			  SPI_OK_SELECT, "read smartetl.source");
	tab = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		HeapTuple	row = tab->vals[i];
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(row, tab->tupdesc, 1, &isnull));
		char	   *path = SPI_getvalue(row, tab->tupdesc, 2);
		char	   *format = SPI_getvalue(row, tab->tupdesc, 3);
		char	   *options = SPI_getvalue(row, tab->tupdesc, 4);

		for (s = sources; s; s = s->next)
			if (s->source_id == id)
				break;
		/* a changed registration starts over from its stored file states */
		if (s && (strcmp(s->path, path) != 0 || strcmp(s->format, format) != 0 ||
				  strcmp(s->options, options) != 0))
		{
			s->seen = false;
			s = NULL;
		}
		if (s == NULL)
		{
			s = MemoryContextAllocZero(follow_cxt, sizeof(FollowedSource));
			s->source_id = id;
			s->path = MemoryContextStrdup(follow_cxt, path);
			s->format = MemoryContextStrdup(follow_cxt, format);
			s->options = MemoryContextStrdup(follow_cxt, options);
			s->is_glob = is_glob_pattern(path);
			s->document = strcmp(format, "dbt") == 0 || strcmp(format, "airflow") == 0;
			s->next = sources;
			sources = s;
			load_file_states(s);
			/* load_file_states() ran a query: the source rows are in tab */
		}
		s->start_at_end = DatumGetBool(SPI_getbinval(row, tab->tupdesc, 5, &isnull));
		s->owner = DatumGetObjectId(SPI_getbinval(row, tab->tupdesc, 6, &isnull));
		s->seen = true;
	}
	/* drop sources deleted, disabled or changed */
	link = &sources;
	while (*link)
	{
		s = *link;
		if (!s->seen)
		{
			*link = s->next;
			free_source(s);
		}
		else
			link = &s->next;
	}
}

/* ----------------------------------------------------------------
 * Looking up the files of a source
 * ---------------------------------------------------------------- */

/* Find (dev, ino) among the regular files of dir; the path or NULL. */
static char *
find_inode_in_dir(const char *dir, int64 dev, int64 ino)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	char	   *found = NULL;

	if (d == NULL)
		return NULL;
	while (found == NULL && (de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		char	   *p = psprintf("%s/%s", dir, de->d_name);
		struct stat st;

		if ((int64) de->d_ino == ino && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
			(int64) st.st_dev == dev && (int64) st.st_ino == ino)
			found = p;
		else
			pfree(p);
	}
	FreeDir(d);
	return found;
}

static char *
dir_of(const char *path)
{
	char	   *d = pstrdup(path);
	char	   *slash = strrchr(d, '/');

	if (slash == d)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	return d;
}

/*
 * Open f if it is not open: at its last path if the inode is still there,
 * else wherever rotation moved it in the same directory.  False if it is
 * gone.
 */
static bool
open_file(FollowedFile *f)
{
	struct stat st;
	char	   *where = f->path;

	if (f->fd >= 0)
		return true;
	if (stat(where, &st) != 0 || (int64) st.st_dev != f->dev || (int64) st.st_ino != f->ino)
	{
		where = find_inode_in_dir(dir_of(f->path), f->dev, f->ino);
		if (where == NULL)
			return false;
		f->rotated = true;
	}
	f->fd = open(where, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return false;
	if (fstat(f->fd, &st) != 0 || (int64) st.st_dev != f->dev || (int64) st.st_ino != f->ino)
	{
		close_file(f);
		return false;
	}
	set_path(f, where);
	return true;
}

/* The paths a source names now: itself, or its glob's matches. */
static void
discover(FollowedSource *s, bool full)
{
	glob_t		g;
	size_t		i;
	FollowedFile *f;
	char	  **paths;
	size_t		npaths;
	char	   *single[1];

	if (s->is_glob && !full)
		return;					/* globbing waits for the next reload */
	if (s->is_glob)
	{
		memset(&g, 0, sizeof(g));
		if (glob(s->path, GLOB_NOSORT, NULL, &g) != 0)
			g.gl_pathc = 0;
		paths = g.gl_pathv;
		npaths = g.gl_pathc;
	}
	else
	{
		single[0] = s->path;
		paths = single;
		npaths = 1;
	}
	for (f = s->files; f; f = f->next)
		f->seen = false;
	for (i = 0; i < npaths; i++)
	{
		struct stat st;

		if (stat(paths[i], &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		f = find_file(s, (int64) st.st_dev, (int64) st.st_ino);
		if (f == NULL)
		{
			f = add_file(s, (int64) st.st_dev, (int64) st.st_ino, paths[i]);
			f->start_at_end = s->start_at_end && !s->had_files;
		}
		else
			set_path(f, paths[i]);
		f->seen = true;
		f->rotated = false;
	}
	/* "start": "end" is for the files there when the source is first followed */
	s->had_files = true;
	/* a file no longer at a path of the source (or deleted) was rotated away: drain it */
	for (f = s->files; f; f = f->next)
	{
		struct stat st;

		if (f->seen && f->fd >= 0 && fstat(f->fd, &st) == 0 && st.st_nlink == 0)
			f->seen = false;
		if (!f->seen && !f->rotated)
		{
			f->rotated = true;
			f->changed_at = GetCurrentTimestamp();
		}
	}
	if (s->is_glob)
		globfree(&g);
}

/* ----------------------------------------------------------------
 * Storing new lines
 * ---------------------------------------------------------------- */

/* The state of a file in smartetl.source_file (row locked), or a new one. */
typedef struct FileState
{
	bool		exists;
	int64		position;
	int64		line_no;
	char	   *label;
	bytea	   *head;
	bytea	   *tail_sha;
	int64		size;
	int64		mtime_ms;
} FileState;

static bool
load_state(FollowedSource *s, FollowedFile *f, FileState *st)
{
	Oid			types[3] = {INT8OID, INT8OID, INT8OID};
	Datum		values[3] = {Int64GetDatum(s->source_id), Int64GetDatum(f->dev), Int64GetDatum(f->ino)};
	bool		isnull;
	HeapTuple	row;
	TupleDesc	desc;
	Datum		d;

	memset(st, 0, sizeof(*st));
	spi_check(SPI_execute_with_args("SELECT position, line_no, label, head, tail_sha, size, "
									" round(extract(epoch FROM mtime) * 1000)::int8 FROM smartetl.source_file "
									"WHERE source_id = $1 AND dev = $2 AND inode = $3 FOR UPDATE",
									3, types, values, NULL, false, 0),
			  SPI_OK_SELECT, "read a file state");
	if (SPI_processed == 0)
		return false;
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	st->exists = true;
	st->position = spi_int8(0, 1, &isnull);
	st->line_no = spi_int8(0, 2, &isnull);
	st->label = SPI_getvalue(row, desc, 3);
	d = SPI_getbinval(row, desc, 4, &isnull);
	st->head = isnull ? NULL : DatumGetByteaPCopy(d);
	d = SPI_getbinval(row, desc, 5, &isnull);
	st->tail_sha = isnull ? NULL : DatumGetByteaPCopy(d);
	st->size = spi_int8(0, 6, &isnull);
	if (isnull)
		st->size = -1;
	st->mtime_ms = spi_int8(0, 7, &isnull);
	return true;
}

/*
 * Does the file at fd hold what st describes up to st->position: the same
 * first bytes and the same 4 kB before the position?
 */
static bool
holds_state(int fd, int64 size, const FileState *st)
{
	char		head[HEAD_BYTES];
	uint8		sha[32];
	int			hlen;

	if (size < st->position)
		return false;
	if (st->head)
	{
		hlen = VARSIZE_ANY_EXHDR(st->head);
		if (read_at(fd, head, hlen, 0) != hlen || memcmp(head, VARDATA_ANY(st->head), hlen) != 0)
			return false;
	}
	if (st->tail_sha && st->position > 0)
	{
		if (!tail_hash(fd, st->position, sha) || VARSIZE_ANY_EXHDR(st->tail_sha) != 32 ||
			memcmp(sha, VARDATA_ANY(st->tail_sha), 32) != 0)
			return false;
	}
	return true;
}

/*
 * A copy of f's content up to st->position (what copytruncate leaves, or
 * a glob's newcomer), among the regular files of f's directory: its path,
 * or NULL.
 */
static char *
find_copy(FollowedSource *s, FollowedFile *f, const FileState *st, int64 *dev, int64 *ino)
{
	char	   *dir = dir_of(f->path);
	DIR		   *d;
	struct dirent *de;
	char	   *found = NULL;

	if (st->position == 0 || st->tail_sha == NULL)
		return NULL;
	d = AllocateDir(dir);
	if (d == NULL)
		return NULL;
	while (found == NULL && (de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		char	   *p = psprintf("%s/%s", dir, de->d_name);
		struct stat sb;
		int			fd;

		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= st->position &&
			!((int64) sb.st_dev == f->dev && (int64) sb.st_ino == f->ino) &&
			find_file(s, (int64) sb.st_dev, (int64) sb.st_ino) == NULL &&
			(fd = open(p, O_RDONLY | O_CLOEXEC)) >= 0)
		{
			if (holds_state(fd, sb.st_size, st))
			{
				found = p;
				*dev = (int64) sb.st_dev;
				*ino = (int64) sb.st_ino;
			}
			close(fd);
		}
		if (found == NULL)
			pfree(p);
	}
	FreeDir(d);
	return found;
}

static void
save_state(FollowedSource *s, FollowedFile *f, const FileState *st, bool insert, bool ingested,
		   bool truncated_note)
{
	Oid			types[13] = {INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID,
	BYTEAOID, BYTEAOID, INT8OID, FLOAT8OID, BOOLOID, BOOLOID};
	Datum		v[13];
	char		nulls[13];
	const char *sql;

	memset(nulls, ' ', sizeof(nulls));
	v[0] = Int64GetDatum(s->source_id);
	v[1] = Int64GetDatum(f->dev);
	v[2] = Int64GetDatum(f->ino);
	v[3] = CStringGetTextDatum(f->path);
	v[4] = CStringGetTextDatum(st->label);
	v[5] = Int64GetDatum(st->position);
	v[6] = Int64GetDatum(st->line_no);
	v[7] = PointerGetDatum(st->head);
	nulls[7] = st->head ? ' ' : 'n';
	v[8] = PointerGetDatum(st->tail_sha);
	nulls[8] = st->tail_sha ? ' ' : 'n';
	v[9] = Int64GetDatum(st->size);
	v[10] = Float8GetDatum((double) st->mtime_ms / 1000.0);
	v[11] = BoolGetDatum(f->rotated);
	v[12] = BoolGetDatum(f->done);
	if (insert)
		sql = "INSERT INTO smartetl.source_file (source_id, dev, inode, path, label, position, line_no, "
			"head, tail_sha, size, mtime, rotated, done) "
			"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, pg_catalog.to_timestamp($11), $12, $13)";
	else
		sql = psprintf("UPDATE smartetl.source_file SET path = $4, label = $5, position = $6, line_no = $7, "
					   "head = $8, tail_sha = $9, size = $10, mtime = pg_catalog.to_timestamp($11), "
					   "rotated = $12, done = $13, updated_at = pg_catalog.now() %s "
					   "WHERE source_id = $1 AND dev = $2 AND inode = $3",
					   truncated_note ?
					   ", last_error = 'truncated: following from its start again', last_error_at = pg_catalog.now()" :
					   ingested ? ", last_error = NULL, last_error_at = NULL" : "");
	spi_check(SPI_execute_with_args(sql, 13, types, v, nulls, false, 0),
			  insert ? SPI_OK_INSERT : SPI_OK_UPDATE, "save a file state");
	if (ingested)
		spi_check(SPI_execute_with_args("UPDATE smartetl.source SET last_ingest_at = pg_catalog.now(), "
										"last_error = NULL, last_error_at = NULL WHERE source_id = $1",
										1, types, v, NULL, false, 0),
				  SPI_OK_UPDATE, "update the source");
}

/* Store data as the source's owner, with the rights that owner has. */
static void
ingest_as_owner(FollowedSource *s, const char *data, size_t len, const char *label, long first_line)
{
	Oid			saved_user;
	int			saved_sec;
	Oid			argtypes[3] = {TEXTOID, TEXTOID, JSONBOID};
	Oid			ingest_oid;
	Jsonb	   *options;
	IngestCounts counts;
	JsonbValue	buf;

	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(s->owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role that registered source %lld no longer exists", (long long) s->source_id)));
	if (!has_privs_of_role(s->owner, ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may no longer read server files", GetUserNameFromId(s->owner, false)),
				 errdetail("Followed files are stored with the rights of the role that registered them.")));
	ingest_oid = LookupFuncName(list_make2(makeString("smartetl"), makeString("ingest")), 3, argtypes, false);
	options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s->options)));
	/* bad lines go to smartetl.ingest_reject unless the source asks otherwise */
	if (getKeyJsonValueFromContainer(&options->root, "on_error", 8, &buf) == NULL)
		options = DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(options),
													 DirectFunctionCall1(jsonb_in,
																		 CStringGetDatum("{\"on_error\": \"quarantine\"}"))));
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(s->owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (pg_proc_aclcheck(ingest_oid, s->owner, ACL_EXECUTE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("role \"%s\" may not ingest", GetUserNameFromId(s->owner, false))));
		ingest_payload(s->format, data, len, options, label, first_line, NULL, NULL, &counts);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_sec);
	}
	PG_END_TRY();
}

/* Does a logline line start an entry (match the source's log_format)? */
static bool
starts_entry(const char *line, int len, const char *log_format)
{
	LOCAL_FCINFO(fcinfo, 2);

	InitFunctionCallInfoData(*fcinfo, NULL, 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = PointerGetDatum(cstring_to_text_with_len(line, len));
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(log_format);
	fcinfo->args[1].isnull = false;
	(void) smartetl_parse_log(fcinfo);
	return !fcinfo->isnull;
}

/*
 * How much of the complete lines data[0, len) may be stored now for a
 * logline source: up to the start of the last entry, whose continuation
 * lines (a traceback) may still be coming.
 */
static size_t
logline_ready(FollowedSource *s, const char *data, size_t len)
{
	Jsonb	   *options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s->options)));
	char	   *log_format = ingest_option_text(&options->root, "log_format");
	size_t		end = len;
	int			lines = 0;

	if (log_format == NULL)
		return len;
	/* walk back over the last lines (not too far: a huge traceback is stored anyway) */
	while (end > 0 && lines < 1000)
	{
		size_t		start = end - 1;	/* end - 1 is the '\n' of the line */
		int			n;

		while (start > 0 && data[start - 1] != '\n')
			start--;
		n = (int) (end - 1 - start);
		if (n > 0 && data[start + n - 1] == '\r')
			n--;
		if (starts_entry(data + start, n, log_format))
			return start;
		end = start;
		lines++;
	}
	return len;
}

static int64
count_lines(const char *data, size_t len)
{
	int64		n = 0;
	const char *p = data;
	const char *end = data + len;

	while ((p = memchr(p, '\n', end - p)) != NULL)
	{
		n++;
		p++;
	}
	return n;
}

/* The first line of a CSV file (its header), with its '\n'; NULL if none yet. */
static char *
csv_header(int fd)
{
	char	   *buf = palloc(65536 + 1);
	ssize_t		n = read_at(fd, buf, 65536, 0);
	char	   *nl = n > 0 ? memchr(buf, '\n', n) : NULL;

	if (nl == NULL)
		return NULL;
	nl[1] = '\0';
	return buf;
}

/*
 * Where a new file starts: at its beginning, or (option "start": "end",
 * for the files there when the source is first followed) after its last
 * complete line.  A glob's newcomer that is a copy of a followed file
 * takes over that file's position.
 */
static void
new_state(FollowedSource *s, FollowedFile *f, int64 size, FileState *st)
{
	memset(st, 0, sizeof(*st));
	st->label = psprintf("%s#%lld", f->path, (long long) f->ino);
	st->size = -1;
	if (f->start_at_end && size > 0)
	{
		char	   *buf = palloc(1024 * 1024);
		int64		off = 0;

		/* count the lines to skip, so line numbers stay the file's */
		while (off < size)
		{
			ssize_t		n = read_at(f->fd, buf, Min(1024 * 1024, size - off), off);
			char	   *last;

			if (n <= 0)
				file_error("read", f->path);
			last = NULL;
			for (char *p = buf; (p = memchr(p, '\n', buf + n - p)) != NULL; p++)
			{
				st->line_no++;
				last = p;
			}
			if (last)
				st->position = off + (last - buf) + 1;
			off += n;
		}
		pfree(buf);
	}
	else
	{
		FollowedFile *o;

		for (o = s->files; o; o = o->next)
		{
			FileState	ost;

			if (o == f || o->position <= 0 || !load_state(s, o, &ost))
				continue;
			if (holds_state(f->fd, size, &ost))
			{
				/* a copy: continue o's stream of lines from o's position */
				st->position = ost.position;
				st->line_no = ost.line_no;
				st->label = ost.label;
				st->head = ost.head;
				st->tail_sha = ost.tail_sha;
				break;
			}
		}
	}
}

/*
 * Store what is new in f, in the current transaction.  Returns true if
 * rows were stored.
 */
static bool
follow_file(FollowedSource *s, FollowedFile *f)
{
	FileState	st;
	struct stat sb;
	bool		insert;
	bool		truncated = false;
	bool		ingested = false;
	int64		size;
	TimestampTz now = GetCurrentTimestamp();
	int64		mtime_ms;
	bool		quiet_rotated;

	if (fstat(f->fd, &sb) != 0)
		file_error("stat", f->path);
	size = sb.st_size;
	mtime_ms = (int64) sb.st_mtime * 1000 + sb.st_mtim.tv_nsec / 1000000;
	insert = !load_state(s, f, &st);
	if (insert)
		new_state(s, f, size, &st);
	else if (!holds_state(f->fd, size, &st))
	{
		int64		cdev,
					cino;
		char	   *copy = find_copy(s, f, &st, &cdev, &cino);

		/* truncated (copytruncate): the copy, if any, has the lines we missed */
		if (copy)
		{
			FollowedFile *c = add_file(s, cdev, cino, copy);
			FileState	cst = st;

			c->rotated = true;
			c->changed_at = now;
			c->position = st.position;
			c->size = -1;
			cst.size = -1;
			save_state(s, c, &cst, true, false, false);
		}
		/* the new content is a new stream of lines: a label of its own */
		st.position = 0;
		st.line_no = 0;
		st.label = psprintf("%s#%lld+%lld", f->path, (long long) f->ino, (long long) time(NULL));
		st.head = NULL;
		st.tail_sha = NULL;
		truncated = true;
	}
	if (size != f->size || mtime_ms != f->mtime_ms)
		f->changed_at = now;
	f->size = size;
	f->mtime_ms = mtime_ms;
	f->recheck_at = 0;
	quiet_rotated = f->rotated &&
		TimestampDifferenceExceeds(f->changed_at, now, QUIET_ROTATED_MS);

	if (s->document)
	{
		bool		changed = size != st.size || mtime_ms != st.mtime_ms || st.position != size;
		bool		ready = TimestampDifferenceExceeds(f->changed_at, now, QUIET_DOCUMENT_MS) ||
			TimestampDifferenceExceeds(f->ingested_at, now, DOCUMENT_MAX_DELAY_MS);

		if (changed && size > 0 && !ready)
			f->recheck_at = Min(TimestampTzPlusMilliseconds(f->changed_at, QUIET_DOCUMENT_MS),
								TimestampTzPlusMilliseconds(f->ingested_at, DOCUMENT_MAX_DELAY_MS));
		if (changed && size > 0 && ready)
		{
			char	   *buf;

			if (size > DOCUMENT_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("file \"%s\" is larger than %d MB", f->path, DOCUMENT_MAX / (1024 * 1024))));
			buf = palloc_extended(size + 1, MCXT_ALLOC_HUGE);
			if (read_at(f->fd, buf, size, 0) != size)
				file_error("read", f->path);
			ingest_as_owner(s, buf, size, st.label, 1);
			st.position = size;
			st.line_no = count_lines(buf, size);
			ingested = true;
			f->ingested_at = now;
		}
	}
	else if (size > st.position)
	{
		size_t		n = Min(size - st.position, SLICE_MAX);
		char	   *buf = palloc_extended(n + 1, MCXT_ALLOC_HUGE);
		size_t		complete;
		char	   *nl;
		bool		final;
		bool		has_newline;

		if (read_at(f->fd, buf, n, st.position) != (ssize_t) n)
			file_error("read", f->path);
		/* up to the last complete line; a rotated, quiet file's last line is complete */
		for (nl = buf + n; nl > buf && nl[-1] != '\n'; nl--)
			;
		complete = nl - buf;
		has_newline = complete > 0;
		final = quiet_rotated && st.position + (int64) n == size;
		if (final)
			complete = n;
		else if (complete > 0 && strcmp(s->format, "logline") == 0 &&
				 !TimestampDifferenceExceeds(f->changed_at, now, QUIET_ENTRY_MS))
			complete = logline_ready(s, buf, complete);
		if (!has_newline && n == SLICE_MAX)
		{
			/* one line longer than a slice: skip it, and say so */
			int64		off = st.position + n;
			char		chunk[65536];
			ssize_t		r;
			char	   *p = NULL;

			while (p == NULL && (r = read_at(f->fd, chunk, sizeof(chunk), off)) > 0)
			{
				p = memchr(chunk, '\n', r);
				off += p ? (p - chunk) + 1 : r;
			}
			if (p)
			{
				ereport(LOG,
						(errmsg("smartetl follow: skipped line %lld of \"%s\": longer than %d MB",
								(long long) st.line_no + 1, f->path, SLICE_MAX / (1024 * 1024))));
				st.position = off;
				st.line_no++;
			}
		}
		if (complete > 0)
		{
			StringInfoData payload;
			long		first = st.line_no + 1;

			initStringInfo(&payload);
			if (strcmp(s->format, "csv") == 0 && st.position > 0)
			{
				char	   *header = csv_header(f->fd);

				if (header)
				{
					appendStringInfoString(&payload, header);
					first--;
				}
			}
			appendBinaryStringInfo(&payload, buf, complete);
			ingest_as_owner(s, payload.data, payload.len, st.label, first);
			st.position += complete;
			st.line_no += count_lines(buf, complete) + (buf[complete - 1] != '\n' ? 1 : 0);
			ingested = true;
			f->ingested_at = now;
		}
		pfree(buf);
		/* data held back: look again when it may be ready, if nothing changes before */
		if (st.position < size)
		{
			if (n == SLICE_MAX && complete > 0)
				f->recheck_at = now;	/* a backlog: the next slice at the next poll */
			else if (f->rotated)
				f->recheck_at = TimestampTzPlusMilliseconds(f->changed_at, QUIET_ROTATED_MS);
			else if (strcmp(s->format, "logline") == 0)
				f->recheck_at = TimestampTzPlusMilliseconds(f->changed_at, QUIET_ENTRY_MS);
		}
	}
	if (f->rotated && !f->done && st.position >= size && !quiet_rotated)
		f->recheck_at = TimestampTzPlusMilliseconds(f->changed_at, QUIET_ROTATED_MS);

	/* remember the first bytes and the 4 kB before the position */
	if (st.head == NULL || (VARSIZE_ANY_EXHDR(st.head) < HEAD_BYTES && size > VARSIZE_ANY_EXHDR(st.head)))
	{
		char		head[HEAD_BYTES];
		ssize_t		hn = read_at(f->fd, head, Min(size, HEAD_BYTES), 0);

		if (hn >= 0)
			st.head = to_bytea(head, hn);
	}
	if (ingested || insert || truncated)
	{
		uint8		sha[32];

		if (tail_hash(f->fd, st.position, sha))
			st.tail_sha = to_bytea((char *) sha, 32);
	}
	st.size = size;
	st.mtime_ms = mtime_ms;
	if (f->rotated && quiet_rotated && st.position >= size)
		f->done = true;
	save_state(s, f, &st, insert, ingested, truncated);
	f->position = st.position;
	return ingested;
}

/*
 * Is there anything to do for f now?  Only a change of the file, or the
 * end of a quiet period that held data back, costs a transaction.
 */
static bool
needs_work(FollowedSource *s, FollowedFile *f, TimestampTz now)
{
	struct stat sb;

	if (f->done || now < f->retry_at)
		return false;
	if (!open_file(f) || fstat(f->fd, &sb) != 0)
		return true;			/* gone: follow_one records it */
	if (f->position < 0)
		return true;			/* not looked at since the worker started */
	if (sb.st_size != f->size ||
		(int64) sb.st_mtime * 1000 + sb.st_mtim.tv_nsec / 1000000 != f->mtime_ms)
		return true;
	return f->recheck_at != 0 && now >= f->recheck_at;
}

/* Record an error on the file and the source, in a transaction of its own. */
static void
record_error(FollowedSource *s, FollowedFile *f, const char *message)
{
	Oid			types[4] = {INT8OID, INT8OID, INT8OID, TEXTOID};
	Datum		v[4] = {Int64GetDatum(s->source_id), Int64GetDatum(f->dev), Int64GetDatum(f->ino),
	CStringGetTextDatum(message)};

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	spi_check(SPI_execute_with_args("UPDATE smartetl.source_file SET last_error = $4, last_error_at = pg_catalog.now() "
									"WHERE source_id = $1 AND dev = $2 AND inode = $3",
									4, types, v, NULL, false, 0), SPI_OK_UPDATE, "record an error");
	v[3] = CStringGetTextDatum(psprintf("%s: %s", f->path, message));
	spi_check(SPI_execute_with_args("UPDATE smartetl.source SET last_error = $4, last_error_at = pg_catalog.now() "
									"WHERE source_id = $1", 4, types, v, NULL, false, 0),
			  SPI_OK_UPDATE, "record an error");
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* One file in one transaction; errors are recorded and retried later. */
static void
follow_one(FollowedSource *s, FollowedFile *f, MemoryContext work)
{
	MemoryContext outer = CurrentMemoryContext;
	volatile bool gone = false;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		MemoryContextSwitchTo(work);
		pgstat_report_activity(STATE_RUNNING, "smartetl intake: following files");
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (!open_file(f) && f->position >= 0 && f->position >= f->size && f->size >= 0)
		{
			/* read to its end before it went: finished */
			f->done = true;
			spi_check(SPI_execute_with_args("UPDATE smartetl.source_file SET done = true, updated_at = pg_catalog.now() "
											"WHERE source_id = $1 AND dev = $2 AND inode = $3", 3,
											(Oid[]) {INT8OID, INT8OID, INT8OID},
											(Datum[]) {Int64GetDatum(s->source_id), Int64GetDatum(f->dev), Int64GetDatum(f->ino)},
											NULL, false, 0), SPI_OK_UPDATE, "finish a file");
		}
		else if (!open_file(f))
		{
			gone = true;
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FILE),
					 errmsg("file is gone before it was read to its end"),
					 errdetail("Lines written after byte %lld are lost.", (long long) Max(f->position, 0))));
		}
		else
			follow_file(s, f);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(outer);
		if (f->done)
			close_file(f);
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(outer);
		e = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		close_file(f);
		f->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RETRY_MS);
		f->position = -1;		/* re-read the committed state next time */
		if (gone)
			f->done = true;
		PG_TRY();
		{
			record_error(s, f, e->detail ? psprintf("%s (%s)", e->message, e->detail) : e->message);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(outer);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
		}
		PG_END_TRY();
		FreeErrorData(e);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(outer);
	MemoryContextReset(work);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * One polling round: re-read the sources when asked (about every second),
 * look at their paths, and store what is new.  Also keeps the health
 * endpoint informed of whether the extension is installed.
 */
void
follow_poll(bool reload_sources_now)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext work;
	FollowedSource *s;
	FollowedFile *f;
	TimestampTz now;

	if (follow_cxt == NULL)
		follow_cxt = AllocSetContextCreate(TopMemoryContext, "smartetl follow", ALLOCSET_DEFAULT_SIZES);
	if (reload_sources_now)
	{
		PG_TRY();
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			spi_check(SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'smartetl'", true, 1),
					  SPI_OK_SELECT, "look up the extension");
			extension_present = SPI_processed > 0;
			if (extension_present)
				reload_sources();
			else
				follow_forget_all();
			SPI_finish();
			PopActiveSnapshot();
			CommitTransactionCommand();
			http_server_set_health(extension_present, extension_present ? NULL :
								   "extension smartetl is not installed in this database");
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(outer);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			http_server_set_health(false, "could not read smartetl.source");
		}
		PG_END_TRY();
		MemoryContextSwitchTo(outer);
	}
	if (!extension_present || sources == NULL)
		return;

	work = AllocSetContextCreate(outer, "smartetl follow work", ALLOCSET_DEFAULT_SIZES);
	now = GetCurrentTimestamp();
	for (s = sources; s; s = s->next)
	{
		FollowedFile **link;

		discover(s, reload_sources_now);
		for (f = s->files; f; f = f->next)
			if (needs_work(s, f, now))
				follow_one(s, f, work);
		/* finished files leave memory (their state row says done) */
		link = &s->files;
		while ((f = *link) != NULL)
		{
			if (f->done && f->fd < 0)
			{
				*link = f->next;
				pfree(f->path);
				pfree(f);
			}
			else
				link = &f->next;
		}
	}
	MemoryContextDelete(work);
}
