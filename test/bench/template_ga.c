/*-------------------------------------------------------------------------
 * test/bench/template_ga.c
 *		Grouping accuracy of the template miner on the Loghub 2k datasets.
 *
 * For each dataset and each ground-truth version, every message (the
 * Content column of the structured CSV) is fed to miner_add() in file
 * order, and Grouping Accuracy is computed as the Loghub benchmark
 * defines it: a message counts as correctly parsed only if the set of
 * messages in its predicted cluster equals the set of messages in its
 * ground-truth group (EventId); GA = correct / total.
 *
 * Also measured: miner_add() throughput, and that miner_restore() of
 * every template, in id order, rebuilds a miner that gives the same ids
 * and the same answers (on every file, and on synthetic messages made to
 * be hard).  Exit status 1 if a restore check fails.
 *
 * Usage: template_ga [-d DATADIR] [-r ROUNDS] [-s N] [-v DATASET] [-m]
 *   -d DATADIR   the Loghub 2k folder (default $SMARTETL_DATA/loghub_2k,
 *                else ../shared/data/loghub_2k)
 *   -r ROUNDS    throughput rounds (default 20, 0 = skip)
 *   -s N         synthetic miners for the restore check (default 5000)
 *   -v DATASET   also list the wrongly grouped events of one dataset
 *   -m           only print miner_mask() of each line of stdin
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <time.h>
#include <unistd.h>

#include "lib/stringinfo.h"
#include "template/miner.h"

typedef struct Dataset
{
	const char *name;
	double		drain;			/* Zhu et al., ICSE-SEIP 2019 */
	double		brain;			/* Yu et al., 2023 (logpai/logparser) */
} Dataset;

static const Dataset datasets[] = {
	{"HDFS", 0.998, 0.998},
	{"Hadoop", 0.948, 0.949},
	{"Spark", 0.920, 0.998},
	{"Zookeeper", 0.967, 0.988},
	{"BGL", 0.963, 0.986},
	{"HPC", 0.887, 0.945},
	{"Linux", 0.690, 0.996},
	{"Apache", 1.000, 1.000},
	{"OpenStack", 0.733, 1.000},
};
#define NDATASETS lengthof(datasets)

typedef struct Version
{
	const char *label;
	const char *fmt;			/* path under the data dir: %s = dataset */
} Version;

static const Version versions[] = {
	{"original", "original/%s/%s_2k.log_structured.csv"},
	{"icse22", "corrected_icse22/%s/%s_2k.log_structured_corrected.csv"},
	{"loghub2", "loghub2_revised/%s/%s_2k.log_structured_corrected.csv"},
};
#define NVERSIONS lengthof(versions)

/* One structured file: the Content and EventId of each row. */
typedef struct Rows
{
	int			n;
	int			cap;
	char	  **content;
	char	  **event;
	char	   *buf;			/* the file; fields point into it */
} Rows;

/* Read a whole file into a NUL-terminated palloc'd buffer, or NULL. */
static char *
slurp(const char *path, long *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	*len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = palloc(*len + 1);
	if (fread(buf, 1, *len, f) != (size_t) *len)
	{
		fclose(f);
		pfree(buf);
		return NULL;
	}
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

/*
 * Parse one RFC 4180 field at *p (quoted fields may hold commas, doubled
 * quotes and line breaks), de-quoting in place.  Returns the field and
 * sets *eor when it ended its record (or the input).
 */
static char *
csv_field(char **p, char *end, bool *eor)
{
	char	   *s = *p;
	char	   *out = s;
	char	   *field = s;

	if (s < end && *s == '"')
	{
		for (s++; s < end; s++)
		{
			if (*s == '"' && s + 1 < end && s[1] == '"')
				*out++ = *s++;
			else if (*s == '"')
			{
				s++;
				break;
			}
			else
				*out++ = *s;
		}
	}
	while (s < end && *s != ',' && *s != '\n' && *s != '\r')
		*out++ = *s++;
	*eor = (s >= end || *s != ',');
	if (s < end && *s == '\r')
		s++;
	if (s < end)
		s++;
	*out = '\0';
	*p = s;
	return field;
}

/* Parse the header record: the columns of Content and EventId, or -1. */
static int
parse_header(char **p, char *end, int *ccol, int *ecol)
{
	bool		eor = false;
	int			i = 0;

	*ccol = *ecol = -1;
	while (!eor)
	{
		char	   *f = csv_field(p, end, &eor);

		if (strcmp(f, "Content") == 0)
			*ccol = i;
		else if (strcmp(f, "EventId") == 0)
			*ecol = i;
		i++;
	}
	return i;
}

static void
free_rows(Rows *rows)
{
	if (rows->buf)
		pfree(rows->buf);
	if (rows->content)
	{
		pfree(rows->content);
		pfree(rows->event);
	}
	memset(rows, 0, sizeof(*rows));
}

/*
 * Read one record into the next row; returns its field count (0 for a
 * blank line).
 */
static int
read_record(char **p, char *end, Rows *rows, int ccol, int ecol)
{
	bool		eor = false;
	int			col = 0;
	bool		blank = false;

	if (rows->n == rows->cap)
	{
		rows->cap *= 2;
		rows->content = repalloc(rows->content, sizeof(char *) * rows->cap);
		rows->event = repalloc(rows->event, sizeof(char *) * rows->cap);
	}
	while (!eor)
	{
		char	   *f = csv_field(p, end, &eor);

		if (col == 0)
			blank = eor && f[0] == '\0';
		if (col == ccol)
			rows->content[rows->n] = f;
		if (col == ecol)
			rows->event[rows->n] = f;
		col++;
	}
	return blank ? 0 : col;
}

static bool
read_rows(const char *path, Rows *rows)
{
	long		len;
	char	   *buf = slurp(path, &len);
	char	   *p;
	int			ncols;
	int			ccol;
	int			ecol;

	memset(rows, 0, sizeof(*rows));
	if (buf == NULL)
		return false;
	rows->buf = p = buf;
	ncols = parse_header(&p, buf + len, &ccol, &ecol);
	rows->cap = 4096;
	rows->content = palloc(sizeof(char *) * rows->cap);
	rows->event = palloc(sizeof(char *) * rows->cap);
	while (ccol >= 0 && ecol >= 0 && p < buf + len)
	{
		int			col = read_record(&p, buf + len, rows, ccol, ecol);

		if (col == ncols)
			rows->n++;
		else if (col != 0)
		{
			fprintf(stderr, "%s: record %d has %d fields, want %d\n",
					path, rows->n + 2, col, ncols);
			break;
		}
	}
	if (ccol >= 0 && ecol >= 0 && p >= buf + len)
		return true;
	free_rows(rows);
	return false;
}

/* Ground-truth event names → dense ints (quadratic, but few events). */
static int *
event_ids(const Rows *rows, int *nevents)
{
	int		   *ids = palloc(sizeof(int) * rows->n);
	char	  **names = palloc(sizeof(char *) * rows->n);
	int			i;

	*nevents = 0;
	for (i = 0; i < rows->n; i++)
	{
		int			j;

		for (j = 0; j < *nevents; j++)
			if (strcmp(names[j], rows->event[i]) == 0)
				break;
		if (j == *nevents)
			names[(*nevents)++] = rows->event[i];
		ids[i] = j;
	}
	pfree(names);
	return ids;
}

/*
 * Loghub grouping accuracy: a predicted group counts (with all its
 * messages) only if all its messages share one true event and that event
 * has no message outside the group.
 */
static double
grouping_accuracy(const int *pred, int npred, const int *truth, int ntruth, int n,
				  bool *ok_group)
{
	int		   *psize = palloc0(sizeof(int) * (npred + 1));
	int		   *pevent = palloc(sizeof(int) * (npred + 1));
	int		   *tsize = palloc0(sizeof(int) * ntruth);
	int			correct = 0;
	int			i;

	for (i = 0; i <= npred; i++)
		pevent[i] = -2;
	for (i = 0; i < n; i++)
	{
		int			p = pred[i] + 1;	/* -1 (no cluster) is its own group */

		psize[p]++;
		tsize[truth[i]]++;
		if (pevent[p] == -2)
			pevent[p] = truth[i];
		else if (pevent[p] != truth[i])
			pevent[p] = -1;
	}
	for (i = 0; i <= npred; i++)
	{
		bool		ok = pevent[i] >= 0 && psize[i] == tsize[pevent[i]];

		if (ok)
			correct += psize[i];
		if (ok_group)
			ok_group[i] = ok;
	}
	pfree(psize);
	pfree(pevent);
	pfree(tsize);
	return (double) correct / n;
}

/* Print where the messages of true event e went (cluster, template). */
static void
explain_event(const Rows *rows, const int *pred, const int *truth, int e,
			  TemplateMiner *m)
{
	int			i;

	for (i = 0; i < rows->n; i++)
	{
		int			j;
		int			here = 0;
		int			other = 0;

		if (truth[i] != e)
			continue;
		for (j = 0; j < i; j++)
			if (truth[j] == e && pred[j] == pred[i])
				break;
		if (j < i)
			continue;			/* that cluster is printed already */
		for (j = 0; j < rows->n; j++)
		{
			if (pred[j] != pred[i])
				continue;
			if (truth[j] == e)
				here++;
			else
				other++;
		}
		printf("     -> #%d [%d here, %d other]: %s\n", pred[i], here, other,
			   pred[i] >= 0 ? miner_template(m, pred[i]) : "(none)");
	}
}

/* Print the ground-truth events that were not reproduced, for tuning. */
static void
explain_errors(const Rows *rows, const int *pred, const int *truth, int ntruth,
			   const bool *ok_group, TemplateMiner *m)
{
	int			e;

	for (e = 0; e < ntruth; e++)
	{
		int			i;
		int			first = -1;
		int			count = 0;
		bool		bad = false;

		for (i = 0; i < rows->n; i++)
		{
			if (truth[i] != e)
				continue;
			if (first < 0)
				first = i;
			count++;
			bad |= !ok_group[pred[i] + 1];
		}
		if (!bad)
			continue;
		printf("  %s (%d msgs) e.g. \"%s\"\n", rows->event[first], count,
			   rows->content[first]);
		explain_event(rows, pred, truth, e, m);
	}
}

/*
 * miner_restore() every template in id order into a fresh miner; the ids
 * and texts must come back unchanged and every message must match the
 * same cluster in both.  Returns the number of mismatches.
 */
static int
check_restore(TemplateMiner *m, const Rows *rows, const char *what)
{
	TemplateMiner *r = miner_create();
	int			bad = 0;
	int			i;

	for (i = 0; i < miner_count(m); i++)
	{
		int			id = miner_restore(r, miner_template(m, i));

		if (id != i || strcmp(miner_template(r, i), miner_template(m, i)) != 0)
		{
			if (bad++ < 5)
				fprintf(stderr, "%s: restore #%d gave #%d \"%s\" for \"%s\"\n",
						what, i, id, miner_template(r, id), miner_template(m, i));
		}
	}
	for (i = 0; i < rows->n; i++)
	{
		const char *s = rows->content[i];
		int			a = miner_match(m, s, strlen(s));
		int			b = miner_match(r, s, strlen(s));

		if (a != b)
		{
			if (bad++ < 5)
				fprintf(stderr, "%s: \"%s\" matches #%d \"%s\", after restore #%d\n",
						what, s, a, a >= 0 ? miner_template(m, a) : "",  b);
		}
	}
	miner_free(r);
	return bad;
}

/* Pieces of the synthetic messages: what tokenizing gets wrong first. */
static const char *const atoms[] = {
	"a", "foo", "GET", "POST", "x1", "alt0", "12", "0x1f", "-3", "1.2.3.4",
	":", "=", ",", "(", ")", "[", "]", "{", "}", "<", ">", "<*>", "*", "\"",
	"'", ".", "..", "...", "!", "?", "/", "/a/b", "http://x/y", "-", "_",
	"KB", "Jun", "Fri", "17", "07:07:00", "()", "[]", "e820", "blk_-12",
	"node-D3", "U11", "user.dir", "ab<*>cd", "<<*>>", "<*>.", "*>", "<*",
	"a=1", "x=/p:/q", "[::1]:80", "fe80::1%eth0", "2017-05-16T00:00:00Z",
	"\t", " ", "  ", "\"\"", "........", "=<*>", "(<*>", "<*>)"
};

/* xorshift64: deterministic pseudo-random numbers */
static int
next_random(uint64 *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (int) (*x >> 33);
}

/*
 * One synthetic message: a shape's atoms, a quarter of them replaced at
 * random, joined by a space two times in three.  palloc'd.
 */
static char *
synthetic_message(const char *const *shape, int len, uint64 *x)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < len; i++)
	{
		appendStringInfoString(&buf, next_random(x) % 4 ? shape[i] :
							   atoms[next_random(x) % lengthof(atoms)]);
		if (next_random(x) % 3)
			appendStringInfoChar(&buf, ' ');
	}
	return buf.data;
}

/*
 * The restore check on synthetic messages: 4 shapes a miner (one in ten
 * long enough to be cut at MINER_MAX_TOKENS), 64 variations of them, so
 * that templates merge.
 */
static int
check_restore_synthetic(int rounds)
{
	uint64		x = 88172645463325252ULL;
	Rows		rows = {0};
	int			bad = 0;
	int			r;

	rows.content = palloc(sizeof(char *) * 64);
	for (r = 0; r < rounds; r++)
	{
		TemplateMiner *m = miner_create();
		const char *shape[4][300];
		int			len[4];
		int			i;
		int			k;

		for (i = 0; i < 4; i++)
		{
			len[i] = 1 + next_random(&x) % (r % 10 == 0 ? 300 : 12);
			for (k = 0; k < len[i]; k++)
				shape[i][k] = atoms[next_random(&x) % lengthof(atoms)];
		}
		for (rows.n = 0; rows.n < 64; rows.n++)
		{
			bool		changed;
			int			b = next_random(&x) % 4;
			char	   *msg = synthetic_message(shape[b], len[b], &x);

			rows.content[rows.n] = msg;
			(void) miner_add(m, msg, strlen(msg), &changed);
		}
		bad += check_restore(m, &rows, "synthetic");
		for (i = 0; i < rows.n; i++)
			pfree(rows.content[i]);
		miner_free(m);
	}
	pfree(rows.content);
	return bad;
}

/* Mine one file; returns GA, or -1 if the file is missing. */
static double
run_one(const char *dir, const Dataset *ds, const Version *v, bool verbose,
		int *nclusters, int *nevents, int *restore_bad)
{
	char		path[MAXPGPATH];
	char		rel[MAXPGPATH];
	Rows		rows;
	TemplateMiner *m;
	int		   *pred;
	int		   *truth;
	int			ntruth;
	bool	   *ok_group;
	double		ga;
	int			i;

	snprintf(rel, sizeof(rel), v->fmt, ds->name, ds->name);
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (!read_rows(path, &rows))
		return -1;
	m = miner_create();
	pred = palloc(sizeof(int) * rows.n);
	for (i = 0; i < rows.n; i++)
	{
		bool		changed;

		pred[i] = miner_add(m, rows.content[i], strlen(rows.content[i]), &changed);
	}
	truth = event_ids(&rows, &ntruth);
	ok_group = palloc(sizeof(bool) * (miner_count(m) + 1));
	ga = grouping_accuracy(pred, miner_count(m), truth, ntruth, rows.n, ok_group);
	if (verbose)
	{
		printf("%s/%s: GA %.3f, %d clusters, %d events\n", ds->name, v->label,
			   ga, miner_count(m), ntruth);
		explain_errors(&rows, pred, truth, ntruth, ok_group, m);
	}
	*nclusters = miner_count(m);
	*nevents = ntruth;
	*restore_bad += check_restore(m, &rows, rel);
	miner_free(m);
	pfree(pred);
	pfree(truth);
	pfree(ok_group);
	free_rows(&rows);
	return ga;
}

/* -m: print the masked form of each line of stdin. */
static int
mask_stdin(void)
{
	char		line[65536];

	while (fgets(line, sizeof(line), stdin))
	{
		char	   *masked;

		line[strcspn(line, "\r\n")] = '\0';
		masked = miner_mask(line, strlen(line));
		printf("%s\n", masked);
		pfree(masked);
	}
	return 0;
}

/* CPU time of this process: other jobs on the machine inflate wall time. */
static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds to mine every row set once, a fresh miner for each. */
static double
mine_all(const Rows *rows, int nsets)
{
	double		t0 = now_seconds();
	int			d;

	for (d = 0; d < nsets; d++)
	{
		TemplateMiner *m = miner_create();
		int			i;

		for (i = 0; i < rows[d].n; i++)
		{
			bool		changed;

			(void) miner_add(m, rows[d].content[i],
							 strlen(rows[d].content[i]), &changed);
		}
		miner_free(m);
	}
	return now_seconds() - t0;
}

/*
 * Throughput of miner_add() over all original messages: best of rounds
 * (other jobs share the machine; the best round is the least disturbed).
 */
static void
throughput(const char *dir, int rounds)
{
	Rows		rows[NDATASETS];
	double		best = 0;
	long		nmsg = 0;
	long		nbytes = 0;
	int			d;
	int			r;

	for (d = 0; d < (int) NDATASETS; d++)
	{
		char		path[MAXPGPATH];
		int			i;

		snprintf(path, sizeof(path), "%s/", dir);
		snprintf(path + strlen(path), sizeof(path) - strlen(path),
				 versions[0].fmt, datasets[d].name, datasets[d].name);
		(void) read_rows(path, &rows[d]);	/* n = 0 if missing */
		nmsg += rows[d].n;
		for (i = 0; i < rows[d].n; i++)
			nbytes += strlen(rows[d].content[i]);
	}
	for (r = 0; r < rounds; r++)
	{
		double		t = mine_all(rows, NDATASETS);

		if (best == 0 || t < best)
			best = t;
	}
	for (d = 0; d < (int) NDATASETS; d++)
		free_rows(&rows[d]);
	printf("\nminer_add throughput: %ld messages (%.1f MB) in %.4f s CPU, "
		   "best of %d: %.0f messages/s, %.1f MB/s (one core, fresh miner "
		   "per dataset)\n",
		   nmsg, nbytes / 1e6, best, rounds, nmsg / best, nbytes / 1e6 / best);
}

/*
 * Print the GA table: a row per dataset, a column per ground-truth
 * version, then the published figures.  Returns the files read.
 */
static int
ga_table(const char *dir, const char *verbose, int *restore_bad)
{
	double		sum[NVERSIONS] = {0};
	int			cnt[NVERSIONS] = {0};
	double		dsum = 0;
	double		bsum = 0;
	int			d;
	int			v;

	printf("%-10s", "dataset");
	for (v = 0; v < (int) NVERSIONS; v++)
		printf(" %9s", versions[v].label);
	printf(" %8s %8s %9s %9s\n", "clusters", "events", "Drain'19", "Brain'23");
	for (d = 0; d < (int) NDATASETS; d++)
	{
		int			nclusters = 0;
		int			nevents = 0;

		printf("%-10s", datasets[d].name);
		for (v = 0; v < (int) NVERSIONS; v++)
		{
			double		ga = run_one(dir, &datasets[d], &versions[v], false,
									 &nclusters, &nevents, restore_bad);

			if (ga < 0)
				printf(" %9s", "-");
			else
			{
				printf(" %9.3f", ga);
				sum[v] += ga;
				cnt[v]++;
			}
		}
		printf(" %8d %8d %9.3f %9.3f\n", nclusters, nevents,
			   datasets[d].drain, datasets[d].brain);
		if (verbose && strcmp(verbose, datasets[d].name) == 0)
			(void) run_one(dir, &datasets[d], &versions[0], true,
						   &nclusters, &nevents, restore_bad);
		dsum += datasets[d].drain;
		bsum += datasets[d].brain;
	}
	printf("%-10s", "average");
	for (v = 0; v < (int) NVERSIONS; v++)
		printf(" %9.3f", cnt[v] ? sum[v] / cnt[v] : 0);
	printf(" %8s %8s %9.3f %9.3f\n", "", "", dsum / NDATASETS, bsum / NDATASETS);
	return cnt[0] + cnt[1] + cnt[2];
}

int
main(int argc, char **argv)
{
	const char *dir = NULL;
	const char *verbose = NULL;
	int			rounds = 20;
	int			synthetic = 5000;
	int			restore_bad = 0;
	int			c;

	while ((c = getopt(argc, argv, "d:r:s:v:m")) != -1)
	{
		if (c == 'm')
			return mask_stdin();
		else if (c == 'd')
			dir = optarg;
		else if (c == 'r')
			rounds = atoi(optarg);
		else if (c == 's')
			synthetic = atoi(optarg);
		else if (c == 'v')
			verbose = optarg;
		else
		{
			fprintf(stderr, "usage: %s [-d DATADIR] [-r ROUNDS] [-s N] "
					"[-v DATASET] [-m]\n", argv[0]);
			return 2;
		}
	}
	if (dir == NULL)
	{
		const char *data = getenv("SMARTETL_DATA");

		dir = data && *data ? psprintf("%s/loghub_2k", data) : "../shared/data/loghub_2k";
	}
	if (ga_table(dir, verbose, &restore_bad) == 0)
	{
		fprintf(stderr, "template_ga: no Loghub 2k files under %s\n", dir);
		return 1;
	}
	restore_bad += check_restore_synthetic(synthetic);
	if (rounds > 0)
		throughput(dir, rounds);
	printf("restore check: %s\n",
		   restore_bad ? "FAILED" : "ok (same ids, texts and matches, "
		   "on every file and on the synthetic miners)");
	return restore_bad ? 1 : 0;
}
