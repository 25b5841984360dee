/*-------------------------------------------------------------------------
 * src/intake/api_key.c
 *		API keys of the HTTP intake: smartetl.create_api_key() and
 *		smartetl.revoke_api_key(), and the token check the worker uses.
 *
 * A token is "smartetl_<key id>_<64 hex digits>": the id is public (it
 * finds the row), the 32 random bytes are the secret.  Only a salted
 * SHA-256 of the secret is stored, in smartetl.api_key, which no role can
 * write: these functions write it as the extension's owner after checking
 * the caller.  The secrets are random, so a slow password hash would add
 * nothing; comparisons are constant-time all the same.
 *
 * A key acts with the rights of its role, so creating one for a role is
 * allowed only to those who may act as that role themselves, and never
 * for a superuser role.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "intake/intake.h"

PG_FUNCTION_INFO_V1(smartetl_create_api_key);
PG_FUNCTION_INFO_V1(smartetl_revoke_api_key);

#define SECRET_BYTES 32
#define SALT_BYTES 16

static const char hexdigits[] = "0123456789abcdef";

/* SHA-256(salt || secret), into out32. */
void
api_key_digest(const uint8 *salt, size_t saltlen, const char *secret, uint8 *out32)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL ||
		pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, salt, saltlen) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) secret, strlen(secret)) < 0 ||
		pg_cryptohash_final(ctx, out32, 32) < 0)
	{
		pg_cryptohash_free(ctx);
		elog(ERROR, "could not compute SHA-256");
	}
	pg_cryptohash_free(ctx);
}

/* Equal bytes?  Always looks at all len bytes (no early exit on a mismatch). */
bool
api_key_equal(const uint8 *a, const uint8 *b, size_t len)
{
	volatile uint8 diff = 0;
	size_t		i;

	for (i = 0; i < len; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/*
 * Split a token into its key id and secret; false unless it has exactly
 * the shape create_api_key() gives.
 */
bool
api_token_parse(const char *token, int64 *key_id, const char **secret)
{
	const char *p;
	int64		id = 0;
	int			digits = 0;
	int			i;

	if (strncmp(token, API_TOKEN_PREFIX, strlen(API_TOKEN_PREFIX)) != 0)
		return false;
	for (p = token + strlen(API_TOKEN_PREFIX); *p >= '0' && *p <= '9'; p++)
	{
		if (++digits > 18)
			return false;
		id = id * 10 + (*p - '0');
	}
	if (digits == 0 || *p != '_')
		return false;
	p++;
	for (i = 0; i < SECRET_BYTES * 2; i++)
		if (p[i] == '\0' || strchr(hexdigits, p[i]) == NULL)
			return false;
	if (p[i] != '\0')
		return false;
	*key_id = id;
	*secret = p;
	return true;
}

/* Run one statement as the owner of the extension (who owns smartetl.api_key). */
static int
spi_as_owner(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	Oid			saved_user;
	int			saved_sec;
	Oid			owner;
	bool		isnull;
	volatile int rc = 0;

	if (SPI_execute("SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'smartetl'",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "extension smartetl is not installed");
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(owner, saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(saved_user, saved_sec);
	}
	PG_END_TRY();
	return rc;
}

/* The OID of smartetl.ingest(text, text, jsonb). */
static Oid
ingest_function_oid(void)
{
	Oid			argtypes[3] = {TEXTOID, TEXTOID, JSONBOID};

	return LookupFuncName(list_make2(makeString("smartetl"), makeString("ingest")),
						  3, argtypes, false);
}

/* Refuse roles a key must not act as. */
static void
check_key_role(Oid role)
{
	HeapTuple	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	bool		super;
	char	   *name;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", role)));
	super = ((Form_pg_authid) GETSTRUCT(tup))->rolsuper;
	name = pstrdup(NameStr(((Form_pg_authid) GETSTRUCT(tup))->rolname));
	ReleaseSysCache(tup);
	if (super)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("an API key cannot act as superuser \"%s\"", name),
				 errhint("Create a role for the key and grant it smartetl_writer.")));
	if (!has_privs_of_role(GetUserId(), role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create an API key for role \"%s\"", name),
				 errdetail("A key acts with the rights of its role; only those who have that role's privileges may create one.")));
	if (pg_proc_aclcheck(ingest_function_oid(), role, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not ingest", name),
				 errhint("GRANT smartetl_writer TO %s;", quote_identifier(name))));
}

static void
check_namespaces(ArrayType *arr)
{
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("namespaces must be a one-dimensional array")));
	if (ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("namespaces must not be empty"),
				 errhint("Pass NULL for a key that may write every namespace.")));
	if (array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("namespaces must not contain NULL")));
}

static void
to_hex(const uint8 *in, int n, char *out)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static Datum
bytea_datum(const uint8 *data, int n)
{
	bytea	   *b = palloc(VARHDRSZ + n);

	SET_VARSIZE(b, VARHDRSZ + n);
	memcpy(VARDATA(b), data, n);
	return PointerGetDatum(b);
}

/*
 * smartetl.create_api_key(name text, role regrole, namespaces text[]) RETURNS text
 *		The token, shown this once.  Re-using the name of a revoked key
 *		replaces it.
 */
Datum
smartetl_create_api_key(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			role;
	uint8		secret_bytes[SECRET_BYTES];
	char		secret[SECRET_BYTES * 2 + 1];
	uint8		salt[SALT_BYTES];
	uint8		digest[32];
	Oid			types[6] = {TEXTOID, OIDOID, TEXTARRAYOID, BYTEAOID, BYTEAOID, NAMEOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		key_id;
	char	   *token;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("an API key needs a name and a role")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	role = PG_GETARG_OID(1);
	if (name[0] == '\0' || strlen(name) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("API key names must have 1 to 200 bytes")));
	check_key_role(role);
	if (!PG_ARGISNULL(2))
		check_namespaces(PG_GETARG_ARRAYTYPE_P(2));

	if (!pg_strong_random(secret_bytes, sizeof(secret_bytes)) ||
		!pg_strong_random(salt, sizeof(salt)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes for an API key")));
	to_hex(secret_bytes, SECRET_BYTES, secret);
	explicit_bzero(secret_bytes, sizeof(secret_bytes));
	api_key_digest(salt, SALT_BYTES, secret, digest);

	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(role);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
	values[3] = bytea_datum(salt, SALT_BYTES);
	values[4] = bytea_datum(digest, 32);
	/* the caller, not the owner the INSERT runs as */
	values[5] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* a revoked key's name may be used again; an active one's may not */
	if (spi_as_owner("DELETE FROM smartetl.api_key WHERE name = $1 AND revoked_at IS NOT NULL",
					 1, types, values, nulls) != SPI_OK_DELETE)
		elog(ERROR, "could not replace a revoked API key");
	if (spi_as_owner("SELECT 1 FROM smartetl.api_key WHERE name = $1",
					 1, types, values, nulls) != SPI_OK_SELECT)
		elog(ERROR, "could not look up API keys");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("API key \"%s\" already exists", name),
				 errhint("Revoke it first with smartetl.revoke_api_key(%s).",
						 quote_literal_cstr(name))));
	if (spi_as_owner("INSERT INTO smartetl.api_key (name, role, namespaces, salt, hash, created_by) "
					 "VALUES ($1, $2, $3, $4, $5, $6) RETURNING key_id",
					 6, types, values, nulls) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not store the API key");
	key_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	token = psprintf(API_TOKEN_PREFIX INT64_FORMAT "_%s", key_id, secret);
	explicit_bzero(secret, sizeof(secret));
	PG_RETURN_TEXT_P(cstring_to_text(token));
}

/* smartetl.revoke_api_key(name text): the key stops working at once. */
Datum
smartetl_revoke_api_key(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (spi_as_owner("UPDATE smartetl.api_key SET revoked_at = pg_catalog.now() "
					 "WHERE name = $1 AND revoked_at IS NULL", 1, types, values, NULL) != SPI_OK_UPDATE)
		elog(ERROR, "could not revoke the API key");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("API key \"%s\" does not exist or is already revoked", name)));
	SPI_finish();
	PG_RETURN_VOID();
}
