/*-------------------------------------------------------------------------
 * src/template/miner.c
 *		Online log-template miner: masking, tokenizing, Drain-style tree.
 *
 * A message is split into tokens at whitespace and at structural
 * punctuation (see CC_DELIM); tokens that are obviously variable (numbers,
 * hex, addresses, ids, paths, URLs, dates) are masked to <*>.  The tree
 * routes the token list by token count and leading token to a leaf, whose
 * clusters are compared position by position; the most similar one above
 * MINER_SIM_THRESHOLD absorbs the message, and positions where they differ
 * become <*> in its template.
 *
 * The main departure from Drain is that two different name-like words at
 * one position (GET/POST, startup/shutdown, LEADING/FOLLOWING) keep
 * messages apart: in practice such words are what tells events apart, and
 * variables mostly carry digits or get masked (on Loghub 2k, average
 * grouping accuracy 0.872 without this rule, 0.982 with it).  A leaf that
 * collects many clusters differing only by such words treats the slot as
 * a variable after all (MINER_MAX_NAME_SIBLINGS), so that a word variable,
 * such as a user name, cannot grow the miner without bound.
 *
 * Restore: a cluster's template text re-tokenizes to exactly its tokens:
 * a literal <*> is one token, a punctuation token never becomes <*>, the
 * steps that look at neighbours are skipped for templates, and neither
 * collapsing nor cutting a long message glues a token onto another word.
 * A cluster's place in the tree depends only on its template and on the
 * clusters created before it.  So restoring the texts in id order
 * rebuilds the same tree, the same ids and the same future behaviour.
 *
 * Deterministic: no randomness, no pointer-order dependence, ASCII-only
 * classification (not the locale's).
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#include "utils/memutils.h"
#endif

#include "common/hashfn.h"
#include "lib/stringinfo.h"

#include "template/miner.h"

/* Drain's defaults: one token level in the tree, 100 children a node */
#define MINER_TREE_DEPTH		1
#define MINER_MAX_CHILDREN		100
#define MINER_SIM_THRESHOLD		0.5
/* a slot keeps at most this many name-like words apart; then it is <*> */
#define MINER_MAX_NAME_SIBLINGS	12
/* longest repeated token group collapsed to one copy (variable lists) */
#define MINER_MAX_REPEAT_GROUP	4
/* a longer word is a blob (base64, dump...), and keeps templates bounded */
#define MINER_MAX_PIECE			128

#define MINER_VAR		0		/* token id of the wildcard <*> */
#define MINER_UNKNOWN	(-1)	/* text that is in no template */

/* character classes, ASCII only so that the locale cannot change a result */
#define CC_DELIM	0x01		/* always a token of its own */
#define CC_LEAD		0x02		/* may wrap a variable on the left */
#define CC_TRAIL	0x04		/* may wrap a variable on the right */
#define CC_SUBSEP	0x08		/* separates the parts of an identifier */
#define CC_NUMSEP	0x10		/* may join numbers: dates, ip:port, lists */
#define CC_END		0x20		/* sentence end: own token at a word's end */

static const uint8 char_class[256] = {
	['='] = CC_DELIM | CC_TRAIL,
	[','] = CC_DELIM | CC_TRAIL | CC_NUMSEP,
	[':'] = CC_DELIM | CC_TRAIL | CC_NUMSEP | CC_SUBSEP,
	[';'] = CC_DELIM | CC_TRAIL,
	['('] = CC_DELIM | CC_LEAD,
	[')'] = CC_DELIM | CC_TRAIL,
	['['] = CC_DELIM | CC_LEAD,
	[']'] = CC_DELIM | CC_TRAIL,
	['{'] = CC_DELIM | CC_LEAD,
	['}'] = CC_DELIM | CC_TRAIL,
	['<'] = CC_DELIM | CC_LEAD,
	['>'] = CC_DELIM | CC_TRAIL,
	['"'] = CC_DELIM | CC_LEAD | CC_TRAIL,
	['\''] = CC_LEAD | CC_TRAIL,
	['.'] = CC_TRAIL | CC_END | CC_SUBSEP | CC_NUMSEP,
	['!'] = CC_TRAIL | CC_END,
	['?'] = CC_TRAIL | CC_END,
	['-'] = CC_SUBSEP | CC_NUMSEP,
	['_'] = CC_SUBSEP | CC_NUMSEP,
	['/'] = CC_SUBSEP | CC_NUMSEP,
	['+'] = CC_SUBSEP | CC_NUMSEP,
	['#'] = CC_SUBSEP,
	['@'] = CC_SUBSEP,
	['\\'] = CC_SUBSEP,
};

#define CC(c, cls)	((char_class[(unsigned char) (c)] & (cls)) != 0)
#define is_digit(c)	((c) >= '0' && (c) <= '9')
#define is_alpha(c)	(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define is_hexc(c)	(is_digit(c) || ((c) >= 'a' && (c) <= 'f') || \
					 ((c) >= 'A' && (c) <= 'F'))

typedef struct MinerTok
{
	const char *s;				/* text, pointing into the message */
	int			len;
	int			id;				/* interned id, MINER_VAR or MINER_UNKNOWN */
	bool		var;			/* masked */
	bool		space;			/* whitespace before it */
	bool		punct;			/* punctuation only */
	bool		name;			/* a name-like word, see is_name_word */
} MinerTok;

typedef struct MinerKid
{
	int			key;			/* token id, MINER_VAR for the <*> branch */
	struct MinerNode *node;
} MinerKid;

typedef struct MinerNode
{
	int			nkids;
	int			kidcap;
	MinerKid   *kids;
	int			nclust;			/* leaves only: cluster ids, in id order */
	int			clustcap;
	int		   *clust;
} MinerNode;

typedef struct MinerStr
{
	char	   *s;
	int			len;
	bool		punct;			/* punctuation only */
	bool		digit;			/* has a digit */
	bool		name;			/* a name-like word, see is_name_word */
} MinerStr;

typedef struct MinerCluster
{
	int			ntok;
	int			nvar;
	int		   *tok;			/* token ids */
	bool	   *space;			/* whitespace before each token */
	char	   *text;			/* rendered template */
} MinerCluster;

struct TemplateMiner
{
#ifndef FRONTEND
	MemoryContext cxt;			/* all of the miner's memory */
#endif
	/* interned token texts: id -> text, and an open-addressing hash */
	int			nstr;
	int			strcap;
	MinerStr   *str;
	int			hcap;			/* power of 2, at most half full */
	int		   *hslot;			/* id, or -1 if empty */
	/* clusters by id, and the tree: by token count, then leading tokens */
	int			nclust;
	int			clustcap;
	MinerCluster **clust;
	MinerNode  *bylen[MINER_MAX_TOKENS + 1];
	MinerTok   *tok;			/* scratch: the current message */
};

#ifdef FRONTEND
#define miner_alloc(m, sz)	((void) (m), palloc(sz))
#else
#define miner_alloc(m, sz)	MemoryContextAlloc((m)->cxt, (sz))
#endif

/* Room for element n of a growable array (doubling); returns the array. */
static void *
grow(TemplateMiner *m, void *arr, int n, int *cap, Size elem)
{
	if (n < *cap)
		return arr;
	*cap = *cap ? *cap * 2 : 8;
	return arr ? repalloc(arr, elem * *cap) : miner_alloc(m, elem * *cap);
}

/* ---- Shapes of variable text ---- */

/* Does s start with the wildcard <*>? */
static inline bool
starts_wild(const char *s, int n)
{
	return n >= 3 && s[0] == '<' && s[1] == '*' && s[2] == '>';
}

/* Does s hold a <*> anywhere? */
static bool
has_wild(const char *s, int n)
{
	int			i;

	for (i = 0; i + 3 <= n; i++)
		if (starts_wild(s + i, 3))
			return true;
	return false;
}

/* Does s hold an ASCII digit? */
static bool
has_digit(const char *s, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (is_digit(s[i]))
			return true;
	return false;
}

/*
 * A number: signed, dotted (2.6.9, 10.0.0.1), with a unit of up to three
 * letters or % (12ms, 3.5s, 10KB, 95%).  Units are part of the value.
 */
static bool
is_number_unit(const char *s, int n)
{
	int			i = 0;
	int			units = 0;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	if (i >= n || !is_digit(s[i]))
		return false;
	while (i < n && (is_digit(s[i]) ||
					 (s[i] == '.' && i + 1 < n && is_digit(s[i + 1]))))
		i++;
	while (i < n && (is_alpha(s[i]) || s[i] == '%') && units < 3)
		i++, units++;
	return i == n;
}

/*
 * 0x-prefixed hex, or a bare hex string of 8+ characters with a digit
 * (ids, hashes, registers; the digit spares words such as "acceded").
 */
static bool
is_hex(const char *s, int n)
{
	int			i;
	int			start = 0;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		start = 2;
	else if (n < 8 || !has_digit(s, n))
		return false;
	for (i = start; i < n; i++)
		if (!is_hexc(s[i]))
			return false;
	return true;
}

/*
 * Digits joined by . : , - / + _ only: dates, times, ip:port, lists; also
 * ISO 8601's T between digits and Z after them.
 */
static bool
is_numeric_shape(const char *s, int n)
{
	int			i;
	bool		digit = false;

	for (i = 0; i < n; i++)
	{
		if (is_digit(s[i]))
			digit = true;
		else if (!CC(s[i], CC_NUMSEP) &&
				 !(s[i] == 'T' && i > 0 && i + 1 < n && is_digit(s[i - 1]) &&
				   is_digit(s[i + 1])) &&
				 !(s[i] == 'Z' && i > 0 && i + 1 == n && is_digit(s[i - 1])))
			return false;
	}
	return digit;
}

/*
 * Hex groups and 2+ colons (with a digit): IPv6 (with a %zone), MAC
 * addresses, times.
 */
static bool
is_ipv6ish(const char *s, int n)
{
	int			i;
	int			colons = 0;

	for (i = 0; i < n && s[i] != '%'; i++)
	{
		if (s[i] == ':')
			colons++;
		else if (!is_hexc(s[i]) && s[i] != '.')
			return false;
	}
	return colons >= 2 && has_digit(s, n);
}

/* An absolute or home-relative path, or an URL (scheme://...). */
static bool
is_path_or_url(const char *s, int n)
{
	int			i;

	if (n > 1 && s[0] == '/')
		return true;
	if (n > 2 && s[0] == '~' && s[1] == '/')
		return true;
	for (i = 0; i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' ||
						  s[i] == '-' || s[i] == '.'); i++)
		;
	return i > 0 && i + 3 <= n && s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/';
}

/*
 * Is one piece (no delimiters, no <*> inside) a variable?  Besides the shapes
 * above, an identifier with a numeric or long-hex part (blk_-1608999,
 * node-246, core.2275, rdd_2_3, req-38101a0b-...) is; one whose digits are
 * only glued to letters (jk2_init, BIOS-e820, alt0, Slf4jLogger) is not.
 * Measured: masking every token with a digit loses HPC's interface names
 * (GA 0.974 -> 0.928); masking none loses HDFS and HPC ids (-0.002 each).
 */
static bool
piece_is_var(const char *s, int n)
{
	int			start = 0;
	int			i;

	if (n > MINER_MAX_PIECE || is_number_unit(s, n) || is_hex(s, n) ||
		is_numeric_shape(s, n) || is_path_or_url(s, n))
		return true;
	if (!has_digit(s, n))
		return false;
	for (i = 0; i <= n; i++)
	{
		if (i == n || CC(s[i], CC_SUBSEP))
		{
			if (i > start && (is_number_unit(s + start, i - start) ||
							  is_hex(s + start, i - start)))
				return true;
			start = i + 1;
		}
	}
	return false;
}

/* Length of the punctuation token at w, or 0 if a piece starts there. */
static int
punct_len(const char *w, int n)
{
	int			q = 1;

	if (starts_wild(w, n))
		return 0;
	if (CC(w[0], CC_DELIM))
		return 1;
	if (w[0] == '.' && n > 1 && w[1] == '.')
	{
		/* a dot leader, BGL's "enable.........0", is one separator */
		while (q < n && w[q] == '.' && q < MINER_MAX_PIECE)
			q++;
		return q;
	}
	if (CC(w[0], CC_END) && (n == 1 || CC(w[1], CC_DELIM)))
		return 1;
	return 0;
}

/*
 * Is a whole word (less its wrappers) a variable?  Checked before the
 * word is split at delimiters, which would break up URLs, ip:port, IPv6,
 * times and paths such as /a/b:/c/d.
 */
static bool
core_is_var(const char *s, int n)
{
	int			i;

	if (n == 0 || (has_wild(s, n) && !(n == 3 && starts_wild(s, n))))
		return false;
	if (n == 3 && starts_wild(s, n))
		return true;
	if (is_path_or_url(s, n) || is_ipv6ish(s, n) || is_numeric_shape(s, n))
		return true;
	for (i = 0; i < n && s[i] != ']'; i++)
		;
	/* [IPv6]:port, whose [ went as a wrapper */
	if (i < n && is_ipv6ish(s, i) &&
		(i + 1 == n || (s[i + 1] == ':' && is_number_unit(s + i + 2, n - i - 2))))
		return true;
	for (i = 0; i < n; i++)
		if (punct_len(s + i, n - i) > 0)
			return false;
	return piece_is_var(s, n);
}

/*
 * A name-like word: has letters, and digits only as a short suffix after
 * more letters (eth0, alt0, PSR0; not U11, node-D3, x86).  Different
 * name-like words at one position mark different events; see the banner.
 */
static bool
is_name_word(const char *s, int n)
{
	int			letters = 0;
	int			digits = 0;
	int			seg = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (is_digit(s[i]))
			digits++;
		else if (digits > 0)
			return false;
		else if (is_alpha(s[i]))
			letters++;
	}
	if (letters == 0 || digits > 2)
		return false;
	for (i = n - digits - 1; i >= 0 && is_alpha(s[i]); i--)
		seg++;
	return digits == 0 || seg > digits;
}

/*
 * Punctuation only (ASCII, not the locale's ispunct)?  Such tokens are
 * structure: they must match exactly and never become <*>.
 */
static bool
all_punct(const char *s, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if ((unsigned char) s[i] <= ' ' || (unsigned char) s[i] >= 0x7f ||
			is_alpha(s[i]) || is_digit(s[i]))
			return false;
	return n > 0;
}

/* ---- Tokenizer ---- */

typedef struct TokState
{
	MinerTok   *out;
	int			n;
	int			word_start;		/* first token of the current word */
	bool		truncated;
} TokState;

/* Append a token; one slot stays free for the <*> that ends a long one. */
static void
emit(TokState *ts, const char *s, int len, bool var, bool space)
{
	MinerTok   *t;

	if (ts->n >= MINER_MAX_TOKENS - 1)
	{
		ts->truncated = true;
		return;
	}
	t = &ts->out[ts->n++];
	t->s = s;
	t->len = len;
	t->var = var;
	t->space = space && ts->n > 1;
	t->punct = !var && all_punct(s, len);
	t->name = !var && !t->punct && is_name_word(s, len);
	t->id = MINER_UNKNOWN;
}

/*
 * Emit the next token of w and return its length.  A standalone empty
 * pair, "()" or "[]", is an empty value: an empty <*> goes between, so
 * "(host)" and "()" line up (Linux's "connection from ... ()": 45% of it).
 */
static int
split_next(TokState *ts, const char *w, int n, bool space)
{
	int			q = punct_len(w, n);

	if (starts_wild(w, n))
	{
		emit(ts, w, 3, true, space);
		return 3;
	}
	if (q > 0)
	{
		emit(ts, w, q, false, space);
		if (space && n > 1 && q == 1 &&
			((w[0] == '(' && w[1] == ')') || (w[0] == '[' && w[1] == ']') ||
			 (w[0] == '{' && w[1] == '}') || (w[0] == '"' && w[1] == '"')))
			emit(ts, w + 1, 0, true, false);
		return q;
	}
	while (q < n && !starts_wild(w + q, n - q) && punct_len(w + q, n - q) == 0)
		q++;
	emit(ts, w, q, piece_is_var(w, q), space);
	return q;
}

/*
 * If w, less brackets, quotes and trailing punctuation, is a variable as a
 * whole, emit the wrappers and one <*> and return true.  Never strips the
 * brackets of a literal <*>, so a template re-tokenizes to itself.
 */
static bool
whole_var(TokState *ts, const char *w, int n, bool space)
{
	int			lead = 0;
	int			end = n;
	int			p;

	while (lead < n && CC(w[lead], CC_LEAD) && !starts_wild(w + lead, n - lead))
		lead++;
	while (end > lead && CC(w[end - 1], CC_TRAIL) &&
		   !(end - lead >= 3 && starts_wild(w + end - 3, 3)))
		end--;
	if (!core_is_var(w + lead, end - lead))
		return false;
	for (p = 0; p < lead; p++)
		emit(ts, w + p, 1, false, space && p == 0);
	emit(ts, w + lead, end - lead, true, space && lead == 0);
	for (p = end; p < n;)
		p += split_next(ts, w + p, n - p, false);
	return true;
}

/*
 * Tokens of one whitespace-delimited word.  The value of key=value gets
 * the whole-word test too (rhost=10.0.0.1:22, path=/a/b:/c), at most a
 * few times a word so that a pathological word stays linear.
 */
static void
split_word(TokState *ts, const char *w, int n, bool space)
{
	int			p = 0;
	int			rescans = 0;

	while (p < n)
	{
		if ((p == 0 || (w[p - 1] == '=' && rescans++ < 8)) &&
			whole_var(ts, w + p, n - p, space && p == 0))
			return;
		p += split_next(ts, w + p, n - p, space && p == 0);
	}
}

/* Is t exactly one of the names (a NULL-terminated list)? */
static bool
tok_in(const MinerTok *t, const char *const *names)
{
	int			i;

	if (t->var)
		return false;
	for (i = 0; names[i]; i++)
		if (strncmp(names[i], t->s, t->len) == 0 && names[i][t->len] == '\0')
			return true;
	return false;
}

static const char *const unit_names[] = {
	"B", "KB", "MB", "GB", "TB", "PB", "kB", "KiB", "MiB", "GiB", "TiB",
	"ms", "us", "ns", NULL
};
static const char *const month_names[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
	"Nov", "Dec", "January", "February", "March", "April", "June", "July",
	"August", "September", "October", "November", "December", NULL
};
static const char *const day_names[] = {
	"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Monday", "Tuesday",
	"Wednesday", "Thursday", "Friday", "Saturday", "Sunday", NULL
};

/* Mask a token that its neighbours reveal as a variable. */
static inline void
mask_tok(MinerTok *t)
{
	t->var = true;
	t->name = false;
}

/*
 * Variables that only their neighbours reveal: a size or time unit after a
 * number ("5.2 KB" vs "384.0 B": Spark 0.925 -> 1.000), and month (and day)
 * names next to a number ("Fri Jun 17 07:07:00 2005": Linux 0.42 -> 0.88).
 */
static void
mask_context(MinerTok *t, int n)
{
	int			i;

	for (i = 1; i < n; i++)
		if (t[i].space && t[i - 1].var && t[i].len <= 3 && tok_in(&t[i], unit_names))
			mask_tok(&t[i]);
	for (i = 0; i < n; i++)
	{
		if (t[i].len < 3 || !(t[i].s[0] >= 'A' && t[i].s[0] <= 'Z') ||
			!tok_in(&t[i], month_names))
			continue;
		if (!((i + 1 < n && t[i + 1].var && t[i + 1].space) ||
			  (i > 0 && t[i - 1].var && t[i].space)))
			continue;
		mask_tok(&t[i]);
		if (i > 0 && t[i].space && tok_in(&t[i - 1], day_names))
			mask_tok(&t[i - 1]);
	}
}

/* Same token for collapse(): both <*>, or the same text and spacing. */
static bool
tok_same(const MinerTok *a, const MinerTok *b)
{
	if (a->space != b->space || a->var != b->var)
		return false;
	return a->var || (a->len == b->len && memcmp(a->s, b->s, a->len) == 0);
}

/*
 * Collapse what makes the token count of one event vary: a run of
 * space-separated <*> ("to datanode(s) <*> <*>" -> "<*>"), and a group of
 * up to MINER_MAX_REPEAT_GROUP tokens with a <*> that repeats back to back
 * ("node-1 <ok> node-2 <ok>" -> "<*> <ok>"); groups must start after
 * whitespace, so that host:port next to a masked host stays host:port.
 */
static int
collapse(MinerTok *t, int n)
{
	int			k = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		int			g;

		/* the kept <*> must start its word: see "Restore" in the banner */
		if (k > 0 && t[i].var && t[i].space && t[k - 1].var &&
			(k == 1 || t[k - 1].space))
			continue;
		t[k++] = t[i];
		for (g = 2; g <= MINER_MAX_REPEAT_GROUP && 2 * g <= k; g++)
		{
			bool		same = t[k - g].space;
			bool		var = false;
			int			j;

			for (j = 0; j < g && same; j++)
			{
				same = tok_same(&t[k - g + j], &t[k - 2 * g + j]);
				var |= t[k - g + j].var;
			}
			if (same && var)
			{
				k -= g;
				break;
			}
		}
	}
	return k;
}

/*
 * Tokenize and mask msg into out (MINER_MAX_TOKENS entries); returns the
 * count.  A message beyond the limit ends in one <*>.  A template (not a
 * message) skips the steps that look at neighbours, which could rewrite a
 * token next to a <*> that merging produced: it maps back to its tokens.
 */
static int
tokenize(const char *msg, int len, MinerTok *out, bool message)
{
	TokState	ts = {out, 0, 0, false};
	int			i = 0;
	bool		space = true;	/* a word start; emit() drops it for token 0 */

	while (i < len && !ts.truncated)
	{
		int			j = i;

		if ((unsigned char) msg[i] <= ' ' || msg[i] == 0x7f)
		{
			space = true;
			i++;
			continue;
		}
		while (j < len && (unsigned char) msg[j] > ' ' && msg[j] != 0x7f)
			j++;
		ts.word_start = ts.n;
		split_word(&ts, msg + i, j - i, space);
		space = false;
		i = j;
	}
	if (ts.truncated)
	{
		/* a <*> replaces the cut word and the rest, in a word of its own */
		ts.n = ts.word_start;
		out[ts.n] = (MinerTok) {.s = "<*>", .len = 3, .id = MINER_UNKNOWN,
		.var = true, .space = ts.n > 0};
		ts.n++;
	}
	if (!message)
		return ts.n;
	mask_context(out, ts.n);
	return collapse(out, ts.n);
}

/* ---- Interned token texts ---- */

/* (Re)build the hash table of the texts, twice as large as before. */
static void
intern_rehash(TemplateMiner *m)
{
	int			i;

	if (m->hslot)
		pfree(m->hslot);
	m->hcap = m->hcap ? m->hcap * 2 : 1024;
	m->hslot = miner_alloc(m, sizeof(int) * m->hcap);
	memset(m->hslot, -1, sizeof(int) * m->hcap);
	for (i = MINER_VAR + 1; i < m->nstr; i++)
	{
		uint32		j = hash_bytes((const unsigned char *) m->str[i].s, m->str[i].len);

		for (j &= m->hcap - 1; m->hslot[j] >= 0; j = (j + 1) & (m->hcap - 1))
			;
		m->hslot[j] = i;
	}
}

/* Store a new text and its properties; the caller hashes it (or not: <*>). */
static int
intern_new(TemplateMiner *m, const char *s, int len)
{
	MinerStr   *str;

	m->str = grow(m, m->str, m->nstr, &m->strcap, sizeof(MinerStr));
	str = &m->str[m->nstr];
	str->s = miner_alloc(m, len + 1);
	memcpy(str->s, s, len);
	str->s[len] = '\0';
	str->len = len;
	str->punct = all_punct(s, len);
	str->digit = has_digit(s, len);
	str->name = !str->punct && is_name_word(s, len);
	return m->nstr++;
}

/* The id of a text; if it has none, MINER_UNKNOWN or (if add) a new id. */
static int
intern(TemplateMiner *m, const char *s, int len, bool add)
{
	uint32		j = hash_bytes((const unsigned char *) s, len);
	int			id;

	for (j &= m->hcap - 1; m->hslot[j] >= 0; j = (j + 1) & (m->hcap - 1))
	{
		id = m->hslot[j];
		if (m->str[id].len == len && memcmp(m->str[id].s, s, len) == 0)
			return id;
	}
	if (!add)
		return MINER_UNKNOWN;
	id = intern_new(m, s, len);
	m->hslot[j] = id;
	if (m->nstr * 2 > m->hcap)
		intern_rehash(m);
	return id;
}

/* ---- Parse tree ---- */

/* The child for a token id, or NULL (a linear scan: few children). */
static MinerNode *
node_find(const MinerNode *node, int key)
{
	int			i;

	for (i = 0; i < node->nkids; i++)
		if (node->kids[i].key == key)
			return node->kids[i].node;
	return NULL;
}

/* Add an empty child for a token id. */
static MinerNode *
node_add_kid(TemplateMiner *m, MinerNode *node, int key)
{
	MinerNode  *kid = miner_alloc(m, sizeof(MinerNode));

	memset(kid, 0, sizeof(MinerNode));
	node->kids = grow(m, node->kids, node->nkids, &node->kidcap, sizeof(MinerKid));
	node->kids[node->nkids].key = key;
	node->kids[node->nkids++].node = kid;
	return kid;
}

/*
 * Drain's routing for a new cluster: a token with a digit (likely a
 * variable that escaped masking) or <*> goes to the <*> branch, and so does
 * any token once the node has MINER_MAX_CHILDREN children.
 */
static MinerNode *
node_descend_insert(TemplateMiner *m, MinerNode *node, int key)
{
	MinerNode  *kid;

	if (key != MINER_VAR && !m->str[key].digit)
	{
		if ((kid = node_find(node, key)) != NULL)
			return kid;
		if (node->nkids - (node_find(node, MINER_VAR) ? 1 : 0) <
			MINER_MAX_CHILDREN - 1)
			return node_add_kid(m, node, key);
	}
	if ((kid = node_find(node, MINER_VAR)) != NULL)
		return kid;
	return node_add_kid(m, node, MINER_VAR);
}

/* Hang a new cluster in the tree: token count, then leading token(s). */
static void
tree_insert(TemplateMiner *m, int id)
{
	MinerCluster *c = m->clust[id];
	MinerNode  *node;
	int			i;

	if (m->bylen[c->ntok] == NULL)
	{
		m->bylen[c->ntok] = miner_alloc(m, sizeof(MinerNode));
		memset(m->bylen[c->ntok], 0, sizeof(MinerNode));
	}
	node = m->bylen[c->ntok];
	for (i = 0; i < MINER_TREE_DEPTH && i < c->ntok; i++)
		node = node_descend_insert(m, node, c->tok[i]);
	node->clust = grow(m, node->clust, node->nclust, &node->clustcap, sizeof(int));
	node->clust[node->nclust++] = id;
}

/* The leaf for a message: exact token child, else the <*> branch. */
static const MinerNode *
tree_leaf(const TemplateMiner *m, const MinerTok *t, int n)
{
	const MinerNode *node = m->bylen[n];
	int			i;

	for (i = 0; node && i < MINER_TREE_DEPTH && i < n; i++)
	{
		const MinerNode *kid = NULL;

		if (t[i].id > MINER_VAR)
			kid = node_find(node, t[i].id);
		node = kid ? kid : node_find(node, MINER_VAR);
	}
	return node;
}

/* ---- Clusters ---- */

/*
 * Similarity of a message to a template of the same length: the share of
 * positions where they hold the same text, as in Drain, except that a
 * masked variable under a template <*> counts neither way (otherwise a
 * message rich in variables never reaches the threshold: Drain's measure
 * drops BGL to 0.54 at a threshold of 0.6; this one stays flat from 0.3 to
 * 0.6).  Returns -1 if punctuation differs (another structure), and sets
 * *name_clash if two different name-like words meet.
 */
static double
cluster_sim(const TemplateMiner *m, const MinerCluster *c, const MinerTok *t,
			bool *name_clash)
{
	int			same = 0;
	int			total = 0;
	int			i;

	*name_clash = false;
	for (i = 0; i < c->ntok; i++)
	{
		int			tk = c->tok[i];

		if (tk == MINER_VAR)
		{
			if (t[i].punct)
				return -1;
			total += t[i].var ? 0 : 1;
			continue;
		}
		total++;
		if (tk == t[i].id)
			same++;
		else if (t[i].punct || m->str[tk].punct)
			return -1;
		else if (t[i].name && m->str[tk].name)
			*name_clash = true;
	}
	return total > 0 ? (double) same / total : 1.0;
}

/*
 * The best cluster of a leaf for a message, or -1.  Ties go to the more
 * general template (Drain), then to the older cluster.  A name clash
 * disqualifies a cluster, unless MINER_MAX_NAME_SIBLINGS clusters of the
 * leaf clash so already: then the slot is a variable after all.
 */
static int
leaf_best(const TemplateMiner *m, const MinerNode *leaf, const MinerTok *t)
{
	int			best[2] = {-1, -1};	/* [0] no clash, [1] name clash */
	double		bestsim[2] = {-1, -1};
	int			nclash = 0;
	int			i;

	for (i = 0; i < leaf->nclust; i++)
	{
		int			id = leaf->clust[i];
		bool		clash;
		double		sim = cluster_sim(m, m->clust[id], t, &clash);

		if (sim < MINER_SIM_THRESHOLD)
			continue;
		nclash += clash ? 1 : 0;
		if (sim > bestsim[clash] ||
			(sim == bestsim[clash] &&
			 m->clust[id]->nvar > m->clust[best[clash]]->nvar))
		{
			best[clash] = id;
			bestsim[clash] = sim;
		}
	}
	if (best[0] >= 0)
		return best[0];
	return nclash >= MINER_MAX_NAME_SIBLINGS ? best[1] : -1;
}

/* (Re)build a cluster's template text from its tokens. */
static void
cluster_render(TemplateMiner *m, MinerCluster *c)
{
	int			size = 1;
	int			i;
	char	   *p;

	for (i = 0; i < c->ntok; i++)
		size += m->str[c->tok[i]].len + (c->space[i] ? 1 : 0);
	if (c->text)
		pfree(c->text);
	c->text = p = miner_alloc(m, size);
	for (i = 0; i < c->ntok; i++)
	{
		if (c->space[i])
			*p++ = ' ';
		memcpy(p, m->str[c->tok[i]].s, m->str[c->tok[i]].len);
		p += m->str[c->tok[i]].len;
	}
	*p = '\0';
}

/* A new cluster whose template is the message itself; returns its id. */
static int
cluster_create(TemplateMiner *m, const MinerTok *t, int n)
{
	MinerCluster *c = miner_alloc(m, sizeof(MinerCluster) + (sizeof(int) + 1) * n);
	int			i;

	c->ntok = n;
	c->nvar = 0;
	c->tok = (int *) (c + 1);	/* int-aligned: MinerCluster holds pointers */
	c->space = (bool *) (c->tok + n);
	c->text = NULL;
	for (i = 0; i < n; i++)
	{
		c->tok[i] = t[i].var ? MINER_VAR : intern(m, t[i].s, t[i].len, true);
		c->space[i] = t[i].space;
		c->nvar += t[i].var ? 1 : 0;
	}
	cluster_render(m, c);
	m->clust = grow(m, m->clust, m->nclust, &m->clustcap, sizeof(MinerCluster *));
	m->clust[m->nclust] = c;
	tree_insert(m, m->nclust);
	return m->nclust++;
}

/* Turn the positions where the message differs into <*>. */
static bool
cluster_absorb(TemplateMiner *m, MinerCluster *c, const MinerTok *t)
{
	bool		changed = false;
	int			i;

	for (i = 0; i < c->ntok; i++)
	{
		if (c->tok[i] != MINER_VAR && c->tok[i] != t[i].id)
		{
			c->tok[i] = MINER_VAR;
			c->nvar++;
			changed = true;
		}
	}
	if (changed)
		cluster_render(m, c);
	return changed;
}

/* Tokenize into m->tok and look up the ids; returns the token count. */
static int
miner_prepare(TemplateMiner *m, const char *msg, int len, bool message)
{
	int			n = tokenize(msg, len, m->tok, message);
	int			i;

	for (i = 0; i < n; i++)
	{
		MinerTok   *t = &m->tok[i];

		t->id = t->var ? MINER_VAR : intern(m, t->s, t->len, false);
	}
	return n;
}

/* ---- Interface ---- */

/* A new, empty miner (in the backend: in a child of CurrentMemoryContext). */
TemplateMiner *
miner_create(void)
{
	TemplateMiner *m;

#ifndef FRONTEND
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "template miner",
											  ALLOCSET_DEFAULT_SIZES);

	m = MemoryContextAllocZero(cxt, sizeof(TemplateMiner));
	m->cxt = cxt;
#else
	m = palloc0(sizeof(TemplateMiner));
#endif
	(void) intern_new(m, "<*>", 3); /* id 0 == MINER_VAR, never hashed */
	intern_rehash(m);
	m->tok = miner_alloc(m, sizeof(MinerTok) * MINER_MAX_TOKENS);
	return m;
}

#ifdef FRONTEND
/* Free a subtree (frontend; the backend deletes the memory context). */
static void
node_free(MinerNode *node)
{
	int			i;

	for (i = 0; i < node->nkids; i++)
		node_free(node->kids[i].node);
	if (node->kids)
		pfree(node->kids);
	if (node->clust)
		pfree(node->clust);
	pfree(node);
}
#endif

/* Release the miner and everything it returned (templates included). */
void
miner_free(TemplateMiner *m)
{
#ifndef FRONTEND
	MemoryContextDelete(m->cxt);
#else
	int			i;

	for (i = 0; i <= MINER_MAX_TOKENS; i++)
		if (m->bylen[i])
			node_free(m->bylen[i]);
	for (i = 0; i < m->nclust; i++)
	{
		pfree(m->clust[i]->text);
		pfree(m->clust[i]);
	}
	for (i = 0; i < m->nstr; i++)
		pfree(m->str[i].s);
	if (m->clust)
		pfree(m->clust);
	pfree(m->str);
	pfree(m->hslot);
	pfree(m->tok);
	pfree(m);
#endif
}

/*
 * Learn one message: returns its cluster id, and sets *changed if the
 * cluster is new or its template text changed (the caller persists it).
 * Returns -1 only when MINER_MAX_CLUSTERS exist and none matches.
 */
int
miner_add(TemplateMiner *m, const char *msg, int len, bool *changed)
{
	int			n = miner_prepare(m, msg, len, true);
	const MinerNode *leaf = tree_leaf(m, m->tok, n);
	int			id = leaf ? leaf_best(m, leaf, m->tok) : -1;

	*changed = false;
	if (id >= 0)
	{
		*changed = cluster_absorb(m, m->clust[id], m->tok);
		return id;
	}
	if (m->nclust >= MINER_MAX_CLUSTERS)
		return -1;
	*changed = true;
	return cluster_create(m, m->tok, n);
}

/* The cluster miner_add would put msg in, or -1; changes nothing. */
int
miner_match(TemplateMiner *m, const char *msg, int len)
{
	int			n = miner_prepare(m, msg, len, true);
	const MinerNode *leaf = tree_leaf(m, m->tok, n);

	return leaf ? leaf_best(m, leaf, m->tok) : -1;
}

/*
 * Re-create a cluster from a template text (as miner_template gave it) as
 * the next id, whether or not it duplicates one; -1 if the miner is full.
 */
int
miner_restore(TemplateMiner *m, const char *template_text)
{
	int			n = miner_prepare(m, template_text, strlen(template_text), false);

	if (m->nclust >= MINER_MAX_CLUSTERS)
		return -1;
	return cluster_create(m, m->tok, n);
}

/* The number of clusters; ids are 0 .. count - 1. */
int
miner_count(const TemplateMiner *m)
{
	return m->nclust;
}

/* A cluster's template, valid until its next change; NULL if no such id. */
const char *
miner_template(const TemplateMiner *m, int cluster)
{
	if (cluster < 0 || cluster >= m->nclust)
		return NULL;
	return m->clust[cluster]->text;
}

/* The masked, re-spaced text of a message, palloc'd (for tests). */
char *
miner_mask(const char *msg, int len)
{
	MinerTok   *tok = palloc(sizeof(MinerTok) * MINER_MAX_TOKENS);
	int			n = tokenize(msg, len, tok, true);
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		if (tok[i].space)
			appendStringInfoChar(&buf, ' ');
		if (tok[i].var)
			appendStringInfoString(&buf, "<*>");
		else
			appendBinaryStringInfo(&buf, tok[i].s, tok[i].len);
	}
	pfree(tok);
	return buf.data;
}
