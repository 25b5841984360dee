/*-------------------------------------------------------------------------
 * src/alert/cron.h
 *		5-field cron schedules: parsing, and their next and previous
 *		occurrences in a time zone.
 *
 * Frontend-safe (no backend calls): test/fuzz/fuzz_cron.c drives it with a
 * synthetic zone; cron_sql.c gives it PostgreSQL's time zones.
 *
 * Times are whole seconds: "instants" since 1970-01-01 00:00 UTC, "local
 * times" since 1970-01-01 00:00 on the zone's wall clock.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_CRON_H
#define SMARTETL_CRON_H

/* Occurrences are looked for this far ahead (and back) at most. */
#define CRON_HORIZON_SECONDS ((int64) 10 * 366 * 86400)

typedef struct CronSchedule
{
	uint64		minutes;		/* bit m set: minute m (0-59) */
	uint32		hours;			/* bit h: hour h (0-23) */
	uint32		days;			/* bit d: day of month d (1-31) */
	uint32		months;			/* bit m: month m (1-12) */
	uint32		weekdays;		/* bit d: day of week d (0-6, Sunday 0) */
	bool		last_day;		/* day of month "$" or "L" (pg_cron) */
	bool		dom_star;		/* day-of-month field starts with "*" */
	bool		dow_star;		/* day-of-week field starts with "*" */
} CronSchedule;

/*
 * A time zone: the UTC offset (seconds east) in force at an instant, and
 * the offset that turns a local time into an instant, PostgreSQL's rule for
 * local times that a transition skips (the offset before it: 02:30 on a
 * spring-forward night is 03:30 summer time) or repeats (the offset after
 * it: the later 02:30), and when the offset next changes.
 */
typedef struct CronZone
{
	int			(*offset_at) (void *arg, int64 instant);
	int			(*offset_of_local) (void *arg, int64 local);
	/* the first instant after "instant" where the offset changes, or PG_INT64_MAX */
	int64		(*next_change) (void *arg, int64 instant);
	void	   *arg;
} CronZone;

extern bool cron_parse(const char *text, CronSchedule *out, char *err, size_t errlen);
extern bool cron_local_matches(const CronSchedule *s, int64 local);
extern bool cron_next(const CronSchedule *s, const CronZone *z, int64 after, int64 *next);
extern bool cron_prev(const CronSchedule *s, const CronZone *z, int64 at, int64 *prev);

/* Civil calendar helpers (proleptic Gregorian), shared with the fuzz harness. */
extern int64 cron_days_from_civil(int64 y, int m, int d);
extern void cron_civil_from_days(int64 days, int64 *y, int *m, int *d);

#endif							/* SMARTETL_CRON_H */
