/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_cron.c
 *		libFuzzer harness: cron_parse on untrusted text, then cron_next and
 *		cron_prev on whatever it accepts, in a synthetic zone with a
 *		daylight-saving period chosen by the input.
 *
 * Input: 16 header bytes, then the schedule text.  The header gives the
 * zone's standard offset, its DST change (0, 30, 60 or 120 minutes), when
 * DST starts and ends, and the instant to search from.
 *
 * Invariants for an accepted schedule:
 *	- parsing is deterministic (a second parse gives the same schedule);
 *	- cron_next(after) is later than "after" and is an occurrence by the
 *	  rules of cron.c (every-hour schedules: its local time matches; others:
 *	  a matching local time turns into exactly this instant);
 *	- no occurrence lies strictly between "after" and it (brute force over
 *	  every minute of the next three days);
 *	- cron_prev of an occurrence is that occurrence, and cron_prev of the
 *	  instant before it is earlier;
 *	- when cron_next finds nothing, brute force finds nothing either.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "alert/cron.h"

#include "fuzz_common.h"

typedef struct Zone
{
	int64		base;			/* standard offset, seconds east */
	int64		delta;			/* DST adds this */
	int64		dst_start;		/* instants: DST in [start, end) */
	int64		dst_end;
} Zone;

static int
offset_at(void *arg, int64 t)
{
	Zone	   *z = arg;

	return (int) (z->base + (t >= z->dst_start && t < z->dst_end ? z->delta : 0));
}

/* PostgreSQL's rule: the one offset that fits, else "before" (gap) or "after" (overlap). */
static int
offset_of_local(void *arg, int64 l)
{
	Zone	   *z = arg;
	bool		std_fits = offset_at(z, l - z->base) == z->base;
	bool		dst_fits = z->delta != 0 && offset_at(z, l - z->base - z->delta) == z->base + z->delta;

	if (std_fits && !dst_fits)
		return (int) z->base;
	if (dst_fits && !std_fits)
		return (int) (z->base + z->delta);
	/* a gap (DST starts: "before" is standard) or an overlap (DST ends: "after" is standard) */
	return (int) z->base;
}

static int64
next_change(void *arg, int64 t)
{
	Zone	   *z = arg;

	if (z->delta == 0)
		return PG_INT64_MAX;
	if (t < z->dst_start)
		return z->dst_start;
	if (t < z->dst_end)
		return z->dst_end;
	return PG_INT64_MAX;
}

static bool
every_hour(const CronSchedule *s)
{
	return s->hours == 0xFFFFFF;
}

/* Is instant t an occurrence, by the rules cron.c documents? */
static bool
is_occurrence(const CronSchedule *s, Zone *z, int64 t)
{
	int64		cand[2];
	int			i;

	if (t % 60 != 0)
		return false;
	if (every_hour(s))
		return cron_local_matches(s, t + offset_at(z, t));
	cand[0] = t + z->base;
	cand[1] = t + z->base + z->delta;
	for (i = 0; i < 2; i++)
		if (cron_local_matches(s, cand[i]) && cand[i] - offset_of_local(z, cand[i]) == t)
			return true;
	return false;
}

static int64
header_int(const uint8_t *p, int n)
{
	int64		v = 0;
	int			i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64 deltas[4] = {0, 1800, 3600, 7200};
	char		text[1100];
	char		err[256];
	CronSchedule s,
				again;
	Zone		zone;
	CronZone	cz;
	int64		after,
				next,
				t,
				prev;
	bool		found;

	if (size < 16 || size - 16 >= sizeof(text))
		return -1;
	memcpy(text, data + 16, size - 16);
	text[size - 16] = '\0';
	if (strlen(text) != size - 16)
		return -1;

	if (!cron_parse(text, &s, err, sizeof(err)))
	{
		FUZZ_CHECK(err[0] != '\0', "rejected without a reason: \"%s\"", text);
		return 0;
	}
	FUZZ_CHECK(cron_parse(text, &again, NULL, 0) && memcmp(&s, &again, sizeof(s)) == 0,
			   "parsing is not deterministic");
	FUZZ_CHECK(s.minutes != 0 && s.hours != 0 && s.months != 0 && (s.days != 0 || s.last_day) && s.weekdays != 0,
			   "accepted schedule with an empty field");

	/* offsets are whole minutes from -12:00 to +14:00 */
	zone.base = (int64) (header_int(data, 2) % (26 * 60 + 1) - 12 * 60) * 60;
	zone.delta = deltas[data[2] & 3];
	zone.dst_start = header_int(data + 3, 4) % ((int64) 4000000000);
	zone.dst_end = zone.dst_start + 60 * (1 + header_int(data + 7, 3) % (300 * 24 * 60));
	after = header_int(data + 10, 5) % ((int64) 4000000000);
	if (data[15] & 1)
		after = zone.dst_start - 3600 + (data[15] >> 1) * 60;	/* near a transition */
	else if (data[15] & 2)
		after = zone.dst_end - 3600 + (data[15] >> 2) * 60;
	cz.offset_at = offset_at;
	cz.offset_of_local = offset_of_local;
	cz.next_change = next_change;
	cz.arg = &zone;

	found = cron_next(&s, &cz, after, &next);
	if (found)
	{
		FUZZ_CHECK(next > after, "next %lld is not after %lld", (long long) next, (long long) after);
		FUZZ_CHECK(is_occurrence(&s, &zone, next), "next %lld (after %lld) is not an occurrence of \"%s\"",
				   (long long) next, (long long) after, text);
	}
	for (t = (after / 60) * 60 + 60; t < after + 3 * 86400 && (!found || t < next); t += 60)
		FUZZ_CHECK(!is_occurrence(&s, &zone, t), "occurrence %lld of \"%s\" missed between %lld and %lld",
				   (long long) t, text, (long long) after, found ? (long long) next : -1LL);
	if (found)
	{
		FUZZ_CHECK(cron_prev(&s, &cz, next, &prev) && prev == next,
				   "prev of occurrence %lld is %lld", (long long) next, (long long) prev);
		if (cron_prev(&s, &cz, next - 1, &prev))
			FUZZ_CHECK(prev < next && is_occurrence(&s, &zone, prev), "prev before %lld is %lld",
					   (long long) next, (long long) prev);
	}
	return 0;
}
