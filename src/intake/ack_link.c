/*-------------------------------------------------------------------------
 * src/intake/ack_link.c
 *		Signed one-click acknowledge links: the token a notification
 *		carries, and its check by the intake's GET/POST /ack/<token>.
 *
 * A token is "<alert id>.<expires, Unix seconds>.<nonce>.<signature>":
 * the nonce is 16 random bytes (32 hex digits) that make every link
 * different and name it in smartetl.ack_link_use once it has been used;
 * the signature is HMAC-SHA256 (PostgreSQL's own pg_hmac, common/hmac.h)
 * over "smartetl-ack-v1|<id>|<expires>|<nonce>" as the token writes them,
 * under the secret of smartetl.ack_link_secret (32 random bytes made when
 * the extension is created), as 64 hex digits.  Issuing a link writes
 * nothing; using one is checked and recorded in SQL (_ack_link_page,
 * 86_ack_link.sql).
 *
 * No role may read the secret, admins included: it is read here straight
 * from the table (no SQL, so no privilege check), by the signer (EXECUTE:
 * on-call staff and admins, who may acknowledge anyway) and the verifier
 * (EXECUTE: nobody; the intake worker runs as the bootstrap superuser).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "common/hmac.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "intake/intake.h"

PG_FUNCTION_INFO_V1(smartetl_ack_link_token);
PG_FUNCTION_INFO_V1(smartetl_ack_link_verify);
PG_FUNCTION_INFO_V1(smartetl_random_bytes);

#define NONCE_BYTES 16
#define SIG_BYTES 32
#define SECRET_MAX 256

/* n bytes as 2n lower-case hex digits and a NUL */
static void
to_hex(const uint8 *in, int n, char *out)
{
	out[hex_encode((const char *) in, n, out)] = '\0';
}

/*
 * The secret, read from smartetl.ack_link_secret with the active snapshot
 * (no privilege check: nobody but the extension's owner may SELECT it).
 * Returns its length; errors when the row is missing.
 */
static int
read_secret(uint8 *out)
{
	Oid			nsp = get_namespace_oid("smartetl", false);
	Oid			relid = get_relname_relid("ack_link_secret", nsp);
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	int			len = 0;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table smartetl.ack_link_secret does not exist"),
				 errhint("ALTER EXTENSION smartetl UPDATE creates it.")));
	rel = table_open(relid, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	if (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, 2, &isnull);

		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);

			len = Min(VARSIZE_ANY_EXHDR(b), SECRET_MAX);
			memcpy(out, VARDATA_ANY(b), len);
		}
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
	if (len < 32)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the acknowledge link secret is missing"),
				 errhint("As a superuser: INSERT INTO smartetl.ack_link_secret (secret) VALUES (smartetl._random_bytes(32));")));
	return len;
}

/* HMAC-SHA256 of the token's signed text, into sig. */
static void
sign(const char *id, const char *expires, const char *nonce, uint8 *sig)
{
	uint8		secret[SECRET_MAX];
	int			secretlen = read_secret(secret);
	char	   *msg = psprintf("smartetl-ack-v1|%s|%s|%s", id, expires, nonce);
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	bool		ok;

	ok = ctx != NULL &&
		pg_hmac_init(ctx, secret, secretlen) == 0 &&
		pg_hmac_update(ctx, (const uint8 *) msg, strlen(msg)) == 0 &&
		pg_hmac_final(ctx, sig, SIG_BYTES) == 0;
	explicit_bzero(secret, sizeof(secret));
	if (!ok)
	{
		const char *why = ctx ? pg_hmac_error(ctx) : "out of memory";

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute HMAC-SHA256: %s", why);
	}
	pg_hmac_free(ctx);
	pfree(msg);
}

/*
 * smartetl._ack_link_token(alert_id bigint, expires timestamptz) RETURNS text
 *		A new signed token for an alert, valid until expires (whole seconds).
 */
Datum
smartetl_ack_link_token(PG_FUNCTION_ARGS)
{
	int64		alert_id = PG_GETARG_INT64(0);
	TimestampTz expires = PG_GETARG_TIMESTAMPTZ(1);
	uint8		nonce_bytes[NONCE_BYTES];
	char		nonce[NONCE_BYTES * 2 + 1];
	uint8		sig[SIG_BYTES];
	char		sig_hex[SIG_BYTES * 2 + 1];
	char	   *id;
	char	   *exp;

	if (alert_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an alert id is positive")));
	if (TIMESTAMP_NOT_FINITE(expires))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an acknowledge link needs a finite expiry")));
	if (!pg_strong_random(nonce_bytes, sizeof(nonce_bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes for an acknowledge link")));
	to_hex(nonce_bytes, NONCE_BYTES, nonce);
	id = psprintf(INT64_FORMAT, alert_id);
	/* Unix seconds, rounded down; never negative (the check refuses those) */
	exp = psprintf(INT64_FORMAT, Max((int64) 0,
									 (int64) ((expires - SetEpochTimestamp()) / USECS_PER_SEC)));
	sign(id, exp, nonce, sig);
	to_hex(sig, SIG_BYTES, sig_hex);
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("%s.%s.%s.%s", id, exp, nonce, sig_hex)));
}

/* n decimal digits, 1..max, no leading zero; returns the count, 0 if not. */
static int
digits(const char *s, int max)
{
	int			n = strspn(s, "0123456789");

	if (n == 0 || n > max || (s[0] == '0' && n > 1))
		return 0;
	return n;
}

static bool
lower_hex(const char *s, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * smartetl._ack_link_verify(token text, OUT alert_id bigint,
 *		OUT expires timestamptz, OUT nonce text, OUT signed boolean)
 *		A token taken apart: every field NULL (and signed false) when it
 *		does not have exactly the shape _ack_link_token gives; signed
 *		whether its signature is this installation's (constant-time).
 *		The expiry is not checked here.
 */
Datum
smartetl_ack_link_verify(PG_FUNCTION_ARGS)
{
	char	   *token = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TupleDesc	desc;
	Datum		values[4] = {0};
	bool		nulls[4] = {true, true, true, false};
	const char *p = token;
	int			n_id,
				n_exp;
	char	   *id,
			   *exp,
			   *nonce;
	uint8		want[SIG_BYTES];
	uint8		got[SIG_BYTES];
	bool		shaped = false;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	values[3] = BoolGetDatum(false);

	/* <id>.<expires>.<32 hex>.<64 hex> */
	if ((n_id = digits(p, 18)) > 0 && p[n_id] == '.' &&
		(n_exp = digits(p + n_id + 1, 12)) > 0 && p[n_id + 1 + n_exp] == '.')
	{
		const char *h = p + n_id + 1 + n_exp + 1;

		shaped = strlen(h) == NONCE_BYTES * 2 + 1 + SIG_BYTES * 2 &&
			lower_hex(h, NONCE_BYTES * 2) && h[NONCE_BYTES * 2] == '.' &&
			lower_hex(h + NONCE_BYTES * 2 + 1, SIG_BYTES * 2);
	}
	if (shaped)
	{
		id = pnstrdup(p, n_id);
		exp = pnstrdup(p + n_id + 1, n_exp);
		nonce = pnstrdup(p + n_id + 1 + n_exp + 1, NONCE_BYTES * 2);
		hex_decode(p + n_id + 1 + n_exp + 1 + NONCE_BYTES * 2 + 1, SIG_BYTES * 2, (char *) got);
		sign(id, exp, nonce, want);
		values[0] = Int64GetDatum(pg_strtoint64(id));
		values[1] = TimestampTzGetDatum(SetEpochTimestamp() + pg_strtoint64(exp) * USECS_PER_SEC);
		values[2] = CStringGetTextDatum(nonce);
		values[3] = BoolGetDatum(api_key_equal(want, got, SIG_BYTES));	/* constant-time */
		nulls[0] = nulls[1] = nulls[2] = false;
		explicit_bzero(want, sizeof(want));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * smartetl._random_bytes(n integer) RETURNS bytea
 *		n bytes from the server's strong random source (the link secret).
 */
Datum
smartetl_random_bytes(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *b;

	if (n < 1 || n > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("random byte count must be between 1 and 1024")));
	b = palloc(VARHDRSZ + n);
	SET_VARSIZE(b, VARHDRSZ + n);
	if (!pg_strong_random(VARDATA(b), n))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	PG_RETURN_BYTEA_P(b);
}
