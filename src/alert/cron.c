/*-------------------------------------------------------------------------
 * src/alert/cron.c
 *		5-field cron schedules (minute hour day-of-month month day-of-week)
 *		as Vixie cron, pg_cron and Airflow read them, and their occurrences
 *		in a time zone.
 *
 * Syntax: each field is a list of items "*", "N", "N-M", each optionally
 * "/step" ("N/step" runs from N to the field's end); months and weekdays
 * may be named (jan, mon); weekday 7 is Sunday; day of month "$" or "L" is
 * the month's last day (pg_cron).  Macros @yearly @annually @monthly
 * @weekly @daily @midnight @hourly.  When both day fields are restricted a
 * day matching either runs (Vixie); a field starting with "*" is not a
 * restriction.
 *
 * Daylight saving follows Airflow's cron timetable (which follows the wall
 * clock, as users expect): a schedule that runs every hour (hour field
 * "*") runs at every instant whose local time matches, so an hourly job
 * runs 23 times on a spring-forward day and 25 times on a fall-back day;
 * any other schedule runs once at each matching wall-clock time, taken as
 * PostgreSQL takes such a local time (timestamp AT TIME ZONE): a time the
 * clocks skip runs as if the change had not happened yet (02:30 on the
 * night the clocks go from 02:00 to 03:00 runs at 03:30), and a time that
 * happens twice runs once, the second time.
 *
 * No libc time functions: the zone comes in as two callbacks (cron.h), and
 * the calendar is computed here, so that the same code runs in the server
 * and in the fuzz harness.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "port/pg_bitutils.h"

#include "alert/cron.h"

#define SECS_MINUTE 60
#define SECS_HOUR 3600
#define SECS_DAY 86400
#define ALL_HOURS ((uint32) 0xFFFFFF)

/*
 * How far a local time and its instant may move apart beyond the offset
 * at the start of a search: the largest DST change, with room to spare.
 */
#define ZONE_MARGIN (3 * SECS_HOUR)

/* Longest schedule text read; real ones are a few dozen characters. */
#define CRON_MAX_TEXT 1024

typedef struct CronField
{
	const char *name;
	int			min;
	int			max;
	const char *const *names;	/* names of min, min+1, ... or NULL */
} CronField;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
"jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const weekday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const CronField fields[5] = {
	{"minute", 0, 59, NULL},
	{"hour", 0, 23, NULL},
	{"day of month", 1, 31, NULL},
	{"month", 1, 12, month_names},
	{"day of week", 0, 7, weekday_names},
};

static const struct
{
	const char *name;
	const char *expansion;
}			macros[] = {
	{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"}, {"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

static int64
floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	if ((a % b) != 0 && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
int64
cron_days_from_civil(int64 y, int m, int d)
{
	int64		era;
	int64		yoe,
				doy,
				doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
cron_civil_from_days(int64 days, int64 *y, int *m, int *d)
{
	int64		z = days + 719468;
	int64		era = floor_div(z, 146097);
	int64		doe = z - era * 146097;
	int64		yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64		doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64		mp = (5 * doy + 2) / 153;

	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int64 y, int m)
{
	static const int dm[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m];
}

/* ---------------------------------------------------------------- parsing */

static bool
fail(char *err, size_t errlen, const char *fmt,...) pg_attribute_printf(3, 4);

static bool
fail(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err && errlen > 0)
	{
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* A number or a name of field f at *p; advances *p. */
static bool
parse_value(const char **p, const CronField *f, int *out, char *err, size_t errlen)
{
	const char *s = *p;
	int			v = 0;
	int			n = 0;

	if (*s >= '0' && *s <= '9')
	{
		while (*s >= '0' && *s <= '9')
		{
			if (++n > 3)
				return fail(err, errlen, "The %s value \"%.8s...\" is out of range %d-%d.",
							f->name, *p, f->min, f->max);
			v = v * 10 + (*s++ - '0');
		}
	}
	else if (f->names && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
	{
		int			i;

		for (i = 0; f->names[i]; i++)
			if (pg_strncasecmp(s, f->names[i], 3) == 0 &&
				!((s[3] >= 'a' && s[3] <= 'z') || (s[3] >= 'A' && s[3] <= 'Z')))
				break;
		if (f->names[i] == NULL)
			return fail(err, errlen, "\"%.3s\" is not a %s name.", s, f->name);
		v = f->min + i;
		s += 3;
	}
	else
		return fail(err, errlen, "Expected a number%s in the %s field, found \"%.8s\".",
					f->names ? " or a name" : "", f->name, s);
	if (v < f->min || v > f->max)
		return fail(err, errlen, "The %s value %d is out of range %d-%d.", f->name, v, f->min, f->max);
	*p = s;
	*out = v;
	return true;
}

/*
 * One field (text from s to end) into a bit set.  Day-of-week 7 becomes
 * Sunday (0).
 */
static bool
parse_field(const char *s, const char *end, int fi, uint64 *bits, bool *star, bool *last,
			char *err, size_t errlen)
{
	const CronField *f = &fields[fi];

	*bits = 0;
	*star = *s == '*';
	for (;;)
	{
		int			lo,
					hi,
					step = 1,
					v;
		bool		range;

		if (fi == 2 && (*s == '$' || *s == 'L' || *s == 'l'))
		{
			*last = true;
			s++;
			goto next_item;
		}
		if (*s == '*')
		{
			lo = f->min;
			hi = f->max == 7 ? 6 : f->max;
			range = true;
			s++;
		}
		else
		{
			if (!parse_value(&s, f, &lo, err, errlen))
				return false;
			hi = lo;
			range = false;
			if (*s == '-')
			{
				s++;
				if (!parse_value(&s, f, &hi, err, errlen))
					return false;
				if (hi < lo)
					return fail(err, errlen, "The %s range %d-%d runs backwards.", f->name, lo, hi);
				range = true;
			}
		}
		if (*s == '/')
		{
			const char *st = ++s;

			step = 0;
			while (*s >= '0' && *s <= '9' && s - st < 3)
				step = step * 10 + (*s++ - '0');
			if (s == st || step == 0 || (*s >= '0' && *s <= '9'))
				return fail(err, errlen, "The %s step must be a number from 1 to %d.", f->name, f->max);
			/* "N/step" runs to the end of the field */
			if (!range)
				hi = f->max == 7 ? 6 : f->max;
		}
		for (v = lo; v <= hi; v += step)
			*bits |= UINT64CONST(1) << (fi == 4 && v == 7 ? 0 : v);
next_item:
		if (s == end)
			break;
		if (*s != ',' || s + 1 == end)
			return fail(err, errlen, "Unexpected \"%c\" in the %s field.", *s, f->name);
		s++;
	}
	return true;
}

/*
 * Parse a schedule.  On failure returns false with a sentence in err
 * (for errdetail).
 */
bool
cron_parse(const char *text, CronSchedule *out, char *err, size_t errlen)
{
	const char *p = text;
	const char *start[5];
	const char *end[5];
	uint64		bits[5];
	bool		star[5];
	int			n = 0;
	int			i;
	int			m;
	bool		any_day;

	memset(out, 0, sizeof(*out));
	if (text == NULL)
		return fail(err, errlen, "The schedule is empty.");
	if (strlen(text) > CRON_MAX_TEXT)
		return fail(err, errlen, "The schedule is longer than %d characters.", CRON_MAX_TEXT);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '@')
	{
		size_t		len = strcspn(p, " \t");
		const char *rest = p + len;

		while (*rest == ' ' || *rest == '\t')
			rest++;
		for (i = 0; i < lengthof(macros); i++)
			if (strlen(macros[i].name) == len && pg_strncasecmp(p, macros[i].name, len) == 0 && *rest == '\0')
				return cron_parse(macros[i].expansion, out, err, errlen);
		return fail(err, errlen, "\"%.*s\" is not a recurring schedule; the macros are @yearly, @annually, "
					"@monthly, @weekly, @daily, @midnight and @hourly.", (int) Min(len, 20), p);
	}
	while (*p)
	{
		if (n == 5)
			return fail(err, errlen, "A schedule has 5 fields (minute hour day-of-month month day-of-week), "
						"found more.");
		start[n] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		end[n++] = p;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (n != 5)
		return fail(err, errlen, "A schedule has 5 fields (minute hour day-of-month month day-of-week), "
					"found %d.", n);
	for (i = 0; i < 5; i++)
		if (!parse_field(start[i], end[i], i, &bits[i], &star[i], &out->last_day, err, errlen))
			return false;
	out->minutes = bits[0];
	out->hours = (uint32) bits[1];
	out->days = (uint32) bits[2];
	out->months = (uint32) bits[3];
	out->weekdays = (uint32) bits[4];
	out->dom_star = star[2];
	out->dow_star = star[4];

	/* a day of month that no month of the schedule has (30 February) never runs */
	any_day = out->last_day || out->dom_star || !out->dow_star;
	for (m = 1; m <= 12 && !any_day; m++)
		if ((out->months & (1u << m)) &&
			(out->days & (((UINT64CONST(1) << (days_in_month(2000, m) + 1)) - 1) & ~UINT64CONST(1))))
			any_day = true;
	if (!any_day)
		return fail(err, errlen, "No month of the schedule has any of its days of month, so it never runs.");
	return true;
}

/* ---------------------------------------------------------------- occurrences */

static bool
day_matches(const CronSchedule *s, int64 y, int m, int d, int64 days)
{
	int			wday = (int) (days - floor_div(days + 4, 7) * 7 + 4) % 7;
	bool		dom = (s->days & (1u << d)) != 0 || (s->last_day && d == days_in_month(y, m));
	bool		dow = (s->weekdays & (1u << wday)) != 0;

	if (s->dom_star || s->dow_star)
		return dom && dow;
	return dom || dow;
}

/* Does a local time (seconds, any within its minute) match? */
bool
cron_local_matches(const CronSchedule *s, int64 local)
{
	int64		days = floor_div(local, SECS_DAY);
	int64		sod = local - days * SECS_DAY;
	int64		y;
	int			m,
				d;

	cron_civil_from_days(days, &y, &m, &d);
	return (s->months & (1u << m)) && day_matches(s, y, m, d, days) &&
		(s->hours & (1u << (sod / SECS_HOUR))) &&
		(s->minutes & (UINT64CONST(1) << ((sod % SECS_HOUR) / SECS_MINUTE)));
}

/*
 * The first local time at or after from (rounded up to a minute) that
 * matches, if it is not after limit.  Skips whole months, days and hours
 * that cannot match.
 */
static bool
next_local_match(const CronSchedule *s, int64 from, int64 limit, int64 *out)
{
	int64		l = floor_div(from + SECS_MINUTE - 1, SECS_MINUTE) * SECS_MINUTE;

	while (l <= limit)
	{
		int64		days = floor_div(l, SECS_DAY);
		int64		sod = l - days * SECS_DAY;
		int			h = (int) (sod / SECS_HOUR);
		int			mi = (int) ((sod % SECS_HOUR) / SECS_MINUTE);
		int64		y;
		int			m,
					d;
		uint64		later;

		cron_civil_from_days(days, &y, &m, &d);
		if (!(s->months & (1u << m)))
		{
			l = cron_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * SECS_DAY;
			continue;
		}
		if (!day_matches(s, y, m, d, days))
		{
			l = (days + 1) * SECS_DAY;
			continue;
		}
		later = s->minutes >> mi;
		if (!(s->hours & (1u << h)) || later == 0)
		{
			l = days * SECS_DAY + (h + 1) * SECS_HOUR;
			continue;
		}
		l = days * SECS_DAY + h * SECS_HOUR + (mi + pg_rightmost_one_pos64(later)) * SECS_MINUTE;
		if (l > limit)
			return false;
		*out = l;
		return true;
	}
	return false;
}

/*
 * The first occurrence strictly after the instant "after", within
 * CRON_HORIZON_SECONDS; false when there is none.
 */
bool
cron_next(const CronSchedule *s, const CronZone *z, int64 after, int64 *next)
{
	int			i;

	if (s->hours == ALL_HOURS)
	{
		/*
		 * Every hour: the first instant whose local time matches.  Between
		 * two changes of the zone's offset local time is the instant plus
		 * a constant, so each stretch is searched in one go.
		 */
		int64		c = after + 1;
		int64		limit = after + CRON_HORIZON_SECONDS;

		for (i = 0; i < 100000 && c <= limit; i++)
		{
			int			off = z->offset_at(z->arg, c);
			int64		change = Max(z->next_change(z->arg, c), c + 1);
			int64		m;

			if (!next_local_match(s, c + off, c + off + CRON_HORIZON_SECONDS, &m))
				return false;
			if (m - off < change)
			{
				*next = m - off;
				return true;
			}
			c = change;
		}
		return false;
	}
	else
	{
		/*
		 * Wall-clock times: the local matches near and after the local time
		 * of "after", each turned into its instant; the earliest instant
		 * after "after" wins.  Skipped and repeated times make the instants
		 * out of order by at most the size of a DST change, so the search
		 * starts ZONE_MARGIN early and stops ZONE_MARGIN after the first hit.
		 */
		int64		start = after + z->offset_at(z->arg, after) - ZONE_MARGIN;
		int64		l = start;
		int64		best = 0;
		int64		first_hit = 0;
		bool		found = false;

		for (i = 0; i < 100000; i++)
		{
			int64		m;
			int64		inst;

			if (!next_local_match(s, l, found ? first_hit + ZONE_MARGIN : start + CRON_HORIZON_SECONDS, &m))
				break;
			inst = m - z->offset_of_local(z->arg, m);
			if (inst > after && (!found || inst < best))
			{
				if (!found)
					first_hit = m;
				best = inst;
				found = true;
			}
			l = m + SECS_MINUTE;
		}
		if (found)
			*next = best;
		return found;
	}
}

/*
 * The latest occurrence at or before the instant "at", within
 * CRON_HORIZON_SECONDS; false when there is none.  Looks back in windows
 * that double until one holds an occurrence, then walks forward.
 */
bool
cron_prev(const CronSchedule *s, const CronZone *z, int64 at, int64 *prev)
{
	int64		delta;

	for (delta = SECS_MINUTE; delta <= CRON_HORIZON_SECONDS; delta *= 2)
	{
		int64		occ;
		int64		n;
		int			i;

		if (!cron_next(s, z, at - delta, &occ))
			return false;
		if (occ > at)
			continue;
		for (i = 0; i < 1000000 && cron_next(s, z, occ, &n) && n <= at; i++)
			occ = n;
		*prev = occ;
		return true;
	}
	return false;
}
