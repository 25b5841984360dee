/*-------------------------------------------------------------------------
 * src/template/tokenize.c
 *		Template miner: masking and tokenizing of log messages.
 *
 * A message is split into tokens at whitespace and at structural
 * punctuation (see CC_DELIM); tokens that are obviously variable are
 * masked to <*>.  Tokens of punctuation only are structure, and name-like
 * words tell events apart (see is_name_word and the banner of miner.c,
 * which clusters the tokens).  One configuration serves every log: the
 * rules below name no system, and each was checked on logs of systems it
 * was not written for (test/bench/template_ga.c, test/data/template_synth).
 *
 * Variables by shape: numbers with units, bounds (<1), hex, ids with a
 * numeric part or two runs of digits, IPv4/IPv6, dates and times, paths
 * (also Windows paths), URLs, host and domain names (by top-level domain,
 * with or without digits), reversed-domain names (com.android.systemui),
 * host:port and user@host as one variable whatever the host, true, false
 * and null, the value of key=value when it holds a digit however it is
 * punctuated (ws=WorkSource{10113}), and a quoted phrase of plain words or
 * a quoted word ("View Lock").  Variables by context: the user name after
 * "for user"/"invalid user", the name between "for" and "from <address>",
 * a program named with its pid (mds[171]), units and month names next to
 * numbers.  Token counts made to agree: runs and comma lists of variables,
 * and repeated groups, collapse into one.
 *
 * Restore: a cluster's template text re-tokenizes to exactly its tokens,
 * so that miner.c can rebuild a miner from its templates: a literal <*> is
 * one token, a punctuation token never becomes <*>, the steps that look at
 * neighbours are skipped for templates, and neither collapsing nor cutting
 * a long message glues a token onto another word.
 *
 * Deterministic: no randomness, ASCII-only classification (not the
 * locale's).  No state, and no memory but miner_mask's result.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#endif

#include "lib/stringinfo.h"

#include "template/miner.h"
#include "template/miner_int.h"

/* longest repeated token group collapsed to one copy (variable lists) */
#define MINER_MAX_REPEAT_GROUP	4
/* a longer word is a blob (base64, dump...), and keeps templates bounded */
#define MINER_MAX_PIECE			128

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
	['\''] = CC_DELIM | CC_LEAD | CC_TRAIL,
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

/*
 * What a word holds, in one pass, so that the shape tests that cannot
 * match are skipped (most words are letters only, and need none).
 */
#define WM_DIGIT	0x01
#define WM_ALPHA	0x02
#define WM_DOT		0x04
#define WM_COLON	0x08
#define WM_SLASH	0x10		/* / or ~ */
#define WM_AT		0x20
#define WM_BSLASH	0x40
#define WM_OTHER	0x80		/* any other byte */

/* 0: WM_OTHER */
static const uint8 mask_of[256] = {
	['0' ... '9'] = WM_DIGIT,
	['a' ... 'z'] = WM_ALPHA,
	['A' ... 'Z'] = WM_ALPHA,
	['.'] = WM_DOT,
	[':'] = WM_COLON,
	['/'] = WM_SLASH,
	['~'] = WM_SLASH,
	['@'] = WM_AT,
	['\\'] = WM_BSLASH,
};

static inline uint8
word_mask(const char *s, int n)
{
	uint8		m = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		uint8		c = mask_of[(unsigned char) s[i]];

		m |= c ? c : WM_OTHER;
	}
	return m;
}
#define is_digit(c)	((c) >= '0' && (c) <= '9')
#define is_alpha(c)	(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define is_hexc(c)	(is_digit(c) || ((c) >= 'a' && (c) <= 'f') || \
					 ((c) >= 'A' && (c) <= 'F'))

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

/* A name and its length, for lists that are searched per token. */
typedef struct NameEntry
{
	const char *s;
	int			len;
} NameEntry;

#define NM(x)	{x, sizeof(x) - 1}

/* Is s, ASCII case-insensitively, one of the names (ending in {NULL})? */
static bool
name_in(const char *s, int n, const NameEntry *names)
{
	int			i;

	for (i = 0; names[i].s; i++)
		if (names[i].len == n && pg_strncasecmp(names[i].s, s, n) == 0)
			return true;
	return false;
}

/*
 * Top-level domains that end host names in logs: the generic ones and the
 * most common country codes (no two-letter code that is also a common word
 * or file extension, such as .id, .in, .is, .py, .sh, .md or .pl).
 */
static const NameEntry tld_names[] = {
	NM("com"), NM("net"), NM("org"), NM("edu"), NM("gov"),
	NM("mil"), NM("int"), NM("info"), NM("biz"), NM("io"),
	NM("arpa"), NM("local"), NM("localdomain"), NM("lan"),
	NM("internal"), NM("corp"), NM("home"), NM("uk"), NM("de"),
	NM("fr"), NM("jp"), NM("cn"), NM("ru"), NM("nl"), NM("au"),
	NM("br"), NM("it"), NM("es"), NM("ch"), NM("se"), NM("no"),
	NM("fi"), NM("dk"), NM("be"), NM("at"), NM("cz"), NM("hu"),
	NM("gr"), NM("pt"), NM("ie"), NM("ca"), NM("us"), NM("eu"),
	NM("kr"), NM("tw"), NM("hk"), NM("sg"), NM("nz"), NM("za"),
	NM("mx"), NM("ar"), NM("cl"), NM("tr"), NM("ua"), NM("ro"),
	NM("sk"), NM("si"), NM("hr"), NM("bg"), NM("lt"), NM("lv"),
	NM("ee"), NM("il"), NM("om"), NM("ae"), NM("sa"), NM("eg"),
	NM("ng"), NM("ke"), NM("vn"), NM("th"), NM("my"), NM("ph"),
	NM("pk"), NM("bd"), NM("ir"), NM("cc"), NM("tv"), NM("me"),
	NM("co"), {NULL, 0}
};

/* First labels of reversed-domain identifiers (Java, Android, Apple). */
static const NameEntry reversed_tld_names[] = {
	NM("com"), NM("org"), NM("net"), NM("edu"), NM("gov"),
	NM("android"), NM("androidx"), {NULL, 0}
};

/*
 * A host or domain name, with or without digits: labels of letters, digits
 * and hyphens joined by dots, ending in a top-level domain
 * (proxy.cse.cuhk.edu.hk, mail.example.com); or a reversed-domain
 * identifier of three labels or more (com.android.systemui,
 * org.apache.Foo$Bar), which names an application, a package or a class.
 * Such names are variables in practically every log: they are what the
 * message is about, not what kind of message it is.
 */
static bool
is_hostname(const char *s, int n)
{
	int			labels = 0;
	int			start = 0;
	int			first_end = -1;
	bool		java = false;
	int			i;

	if (n < 4 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 0; i <= n; i++)
	{
		if (i == n || s[i] == '.')
		{
			if (i == start)
				return false;	/* empty label */
			if (first_end < 0)
				first_end = i;
			labels++;
			start = i + 1;
		}
		else if (s[i] == '_' || s[i] == '$')
			java = true;
		else if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-')
			return false;
	}
	if (labels < 2)
		return false;
	if (labels >= 3 && name_in(s, first_end, reversed_tld_names))
		return true;
	/* start is now one past the end: the last label begins after the last dot */
	for (i = n - 1; s[i] != '.'; i--)
		;
	return !java && name_in(s + i + 1, n - i - 1, tld_names);
}

/* Values that are never part of a message's kind. */
static const NameEntry value_names[] = {
	NM("true"), NM("false"), NM("null"), NM("nil"), NM("undefined"), {NULL, 0}
};

/* Does an alphanumeric part hold two separate runs of digits (u0a124)? */
static bool
has_two_digit_runs(const char *s, int n)
{
	int			runs = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (is_digit(s[i]) && (i == 0 || !is_digit(s[i - 1])))
			runs++;
	return runs >= 2;
}

/* A Windows path: C:\dir\file, C:/dir, or a \\server\share path. */
static bool
is_windows_path(const char *s, int n)
{
	if (n >= 3 && is_alpha(s[0]) && s[1] == ':' && (s[2] == '\\' || s[2] == '/'))
		return true;
	return n >= 3 && s[0] == '\\' && s[1] == '\\' && (is_alpha(s[2]) || is_digit(s[2]));
}

static bool piece_is_var(const char *s, int n);

/* A host part of host:port or user@host: a host name, an address, an id. */
static bool
is_host_part(const char *s, int n)
{
	bool		dot = false;
	bool		alpha = false;
	int			i;

	if (n == 0)
		return false;
	if (is_hostname(s, n) || (n == 9 && strncmp(s, "localhost", 9) == 0))
		return true;
	for (i = 0; i < n; i++)
	{
		if (s[i] == '.')
			dot = true;
		else if (is_alpha(s[i]))
			alpha = true;
		else if (!is_digit(s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	}
	return (dot && alpha) || piece_is_var(s, n);
}

/*
 * host:port with a host name or id on the left (www.example.com:443,
 * node-7:8080); an IPv4 address and port is a numeric shape already.
 * Either way it is one variable, so both kinds of host line up.
 */
static bool
is_host_port(const char *s, int n)
{
	int			c;
	int			i;

	for (c = n - 1; c > 0 && s[c] != ':'; c--)
		;
	if (c <= 0 || n - c - 1 < 1 || n - c - 1 > 5)
		return false;
	for (i = c + 1; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return is_host_part(s, c);
}

/* user@host, an e-mail address, or an object@id: name@ then a letter or digit. */
static bool
is_at_address(const char *s, int n)
{
	int			a = -1;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (s[i] == '@')
		{
			if (a >= 0)
				return false;
			a = i;
		}
		else if (!is_alpha(s[i]) && !is_digit(s[i]) && !strchr("._%+-:$", s[i]))
			return false;
	}
	if (a <= 0 || a == n - 1)
		return false;
	for (i = a + 1; i < n; i++)
		if (is_alpha(s[i]) || is_digit(s[i]))
			return true;		/* user@tbird-admin1, Object@1f2e */
	return false;
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
	uint8		mask = word_mask(s, n);
	int			start = 0;
	int			i;

	if (n > MINER_MAX_PIECE)
		return true;
	if (mask == WM_ALPHA)
		return n >= 3 && n <= 9 && name_in(s, n, value_names);
	if (((mask & WM_SLASH) && is_path_or_url(s, n)) ||
		((mask & WM_DOT) && is_hostname(s, n)) ||
		((mask & WM_BSLASH) && is_windows_path(s, n)))
		return true;
	if ((mask & (WM_SLASH | WM_DOT)) == (WM_SLASH | WM_DOT))
	{
		for (i = 0; i <= n; i++)
		{
			if (i == n || s[i] == '/')
			{
				/* com.acme.app/.MainActivity: a reversed-domain part */
				if (i < n && i > start && is_hostname(s + start, i - start))
					return true;
				start = i + 1;
			}
		}
	}
	if (!(mask & WM_DIGIT))
		return false;
	if (is_number_unit(s, n) || is_hex(s, n) || is_numeric_shape(s, n) ||
		((mask & (WM_COLON | WM_SLASH)) == (WM_COLON | WM_SLASH) && is_windows_path(s, n)))
		return true;
	start = 0;
	for (i = 0; i <= n; i++)
	{
		if (i == n || CC(s[i], CC_SUBSEP))
		{
			if (i > start && (is_number_unit(s + start, i - start) ||
							  is_hex(s + start, i - start) ||
							  has_two_digit_runs(s + start, i - start)))
				return true;
			start = i + 1;
		}
	}
	return false;
}

/*
 * The length of an escaped double quote at w (\" or the octal and hex
 * escapes \042 and \x22 that syslog writers use), else 0.  It is a quote:
 * punctuation, a token of its own.
 */
static int
escaped_quote_len(const char *w, int n)
{
	if (n >= 2 && w[0] == '\\' && w[1] == '"')
		return 2;
	if (n >= 4 && w[0] == '\\' && ((w[1] == '0' && w[2] == '4' && w[3] == '2') ||
								   ((w[1] == 'x' || w[1] == 'X') && w[2] == '2' && w[3] == '2')))
		return 4;
	return 0;
}

/* Can a punctuation token start with c (see punct_len)? */
#define may_punct(c)	(CC(c, CC_DELIM | CC_END) || (c) == '\\')

/* Length of the punctuation token at w, or 0 if a piece starts there. */
static int
punct_len(const char *w, int n)
{
	int			q = 1;

	if (starts_wild(w, n))
		return 0;
	if (CC(w[0], CC_DELIM))
		return 1;
	if ((q = escaped_quote_len(w, n)) > 0)
		return q;
	q = 1;
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
	uint8		mask = word_mask(s, n);
	int			i;

	if (n == 0)
		return false;
	if (mask & WM_OTHER)
	{
		if (n == 3 && starts_wild(s, n))
			return true;
		if (has_wild(s, n))
			return false;
	}
	if (mask == WM_ALPHA)
		return piece_is_var(s, n);
	if (((mask & WM_SLASH) && is_path_or_url(s, n)) ||
		((mask & (WM_COLON | WM_DIGIT)) == (WM_COLON | WM_DIGIT) &&
		 (is_ipv6ish(s, n) || is_host_port(s, n))) ||
		((mask & WM_DIGIT) && is_numeric_shape(s, n)) ||
		((mask & (WM_BSLASH | WM_COLON)) && is_windows_path(s, n)) ||
		((mask & WM_AT) && is_at_address(s, n)))
		return true;
	if ((mask & (WM_OTHER | WM_COLON)) == (WM_OTHER | WM_COLON))
	{
		for (i = 0; i < n && s[i] != ']'; i++)
			;
		/* [IPv6]:port, whose [ went as a wrapper */
		if (i < n && is_ipv6ish(s, i) &&
			(i + 1 == n || (s[i + 1] == ':' && is_number_unit(s + i + 2, n - i - 2))))
			return true;
	}
	for (i = 0; i < n; i++)
		if (may_punct(s[i]) && punct_len(s + i, n - i) > 0)
			return false;
	return piece_is_var(s, n);
}

/*
 * A name-like word: has letters, and digits only as a short suffix after
 * more letters (eth0, alt0, PSR0; not U11, node-D3, x86).  Different
 * name-like words at one position mark different events; see the banner
 * of miner.c.
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
 * A CamelCase identifier: a lower-case letter followed by an upper-case
 * one, or two upper-case letters followed by a lower-case one
 * (AppleHDAController, IOAudioEngine, sparkDriver): a class, driver or
 * service name.  Two different ones at one position past the first are a
 * variable, not two events (see cluster_sim in miner.c).
 */
static bool
is_camel_word(const char *s, int n)
{
	int			i;

	for (i = 1; i < n; i++)
	{
		bool		up = s[i] >= 'A' && s[i] <= 'Z';

		if (up && s[i - 1] >= 'a' && s[i - 1] <= 'z')
			return true;
		if (i + 1 < n && up && s[i - 1] >= 'A' && s[i - 1] <= 'Z' &&
			s[i + 1] >= 'a' && s[i + 1] <= 'z')
			return true;
	}
	return false;
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


/* A text's properties as the miner keeps them for its interned texts. */
void
tokenize_classify(const char *s, int len, bool *punct, bool *digit, bool *name,
				  bool *camel)
{
	*punct = all_punct(s, len) || (len > 0 && escaped_quote_len(s, len) == len);
	*digit = has_digit(s, len);
	*name = !*punct && is_name_word(s, len);
	*camel = *name && is_camel_word(s, len);
}

/* ---- Tokenizer ---- */

typedef struct TokState
{
	MinerTok   *out;
	int			n;
	int			word_start;		/* first token of the current word */
	bool		truncated;
	bool		quotes;			/* a quote token was emitted */
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
	t->punct = !var && (all_punct(s, len) || (len > 0 && escaped_quote_len(s, len) == len));
	ts->quotes |= t->punct && (s[0] == '"' || s[0] == '\'' || s[0] == '\\');
	t->name = !var && !t->punct && is_name_word(s, len);
	t->camel = t->name && is_camel_word(s, len);
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
	while (q < n && (!may_punct(w[q]) ||
					 (!starts_wild(w + q, n - q) && punct_len(w + q, n - q) == 0)))
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
 * A bound, <1 or >500ms or ~3: the comparison is part of the value, so
 * that "lifetime <1 sec" lines up with "lifetime 00:01".
 */
static bool
bound_var(TokState *ts, const char *w, int n, bool space)
{
	int			end = n;
	int			p;

	if (n < 2 || (w[0] != '<' && w[0] != '>' && w[0] != '~') || !is_digit(w[1]))
		return false;
	while (end > 1 && CC(w[end - 1], CC_TRAIL))
		end--;
	if (!is_number_unit(w + 1, end - 1))
		return false;
	emit(ts, w, end, true, space);
	for (p = end; p < n;)
		p += split_next(ts, w + p, n - p, false);
	return true;
}

/*
 * The length of the value of key=value at w: up to a comma or semicolon
 * outside brackets, or an unbalanced closing bracket (ws=WorkSource{1,2},
 * uid=7) ...).
 */
static int
value_extent(const char *w, int n)
{
	int			depth = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (w[i] == '(' || w[i] == '[' || w[i] == '{' || w[i] == '<')
			depth++;
		else if (w[i] == ')' || w[i] == ']' || w[i] == '}' || w[i] == '>')
		{
			if (depth == 0)
				break;
			depth--;
		}
		else if ((w[i] == ',' || w[i] == ';') && depth == 0)
			break;
	}
	return i;
}

/*
 * Tokens of one whitespace-delimited word.  The value of key=value gets
 * the whole-word test too (rhost=10.0.0.1:22, path=/a/b:/c), and a value
 * with a digit anywhere is one variable however it is punctuated
 * (ws=WorkSource{10113}), so that its token count does not vary.  Every
 * '=' emits a token, so MINER_MAX_TOKENS bounds the rescans of a
 * pathological word.  (A fixed number of rescans per word would not do:
 * merging can swallow an '=' into a <*>, and the template would then
 * rescan where the message did not.)
 */
static void
split_word(TokState *ts, const char *w, int n, bool space)
{
	int			p = 0;
	int			k = n;

	/*
	 * The common case first: letters only, maybe with one , . : or ; after
	 * them, gives what the tests below would (a word, a variable only if it
	 * is a value such as "true") without running them.
	 */
	if (k > 1 && (w[k - 1] == ',' || w[k - 1] == '.' || w[k - 1] == ':' || w[k - 1] == ';'))
		k--;
	if (word_mask(w, k) == WM_ALPHA)
	{
		bool		var = k >= 3 && k <= 9 && name_in(w, k, value_names);

		emit(ts, w, k, var, space);
		if (k < n)
			emit(ts, w + k, 1, false, false);
		return;
	}

	while (p < n && !ts->truncated)
	{
		if (p > 0 && w[p - 1] == '=')
		{
			int			v = value_extent(w + p, n - p);

			if (whole_var(ts, w + p, n - p, false))
				return;
			if (v > 0 && has_digit(w + p, v) && !has_wild(w + p, v))
			{
				emit(ts, w + p, v, true, false);
				p += v;
				continue;
			}
		}
		else if (p == 0 && (bound_var(ts, w, n, space) || whole_var(ts, w, n, space)))
			return;
		p += split_next(ts, w + p, n - p, space && p == 0);
	}
}

/* Is t exactly one of the names (case-sensitively)? */
static bool
tok_in(const MinerTok *t, const NameEntry *names)
{
	int			i;

	if (t->var)
		return false;
	for (i = 0; names[i].s; i++)
		if (names[i].len == t->len && memcmp(names[i].s, t->s, t->len) == 0)
			return true;
	return false;
}

static const NameEntry unit_names[] = {
	NM("B"), NM("KB"), NM("MB"), NM("GB"), NM("TB"), NM("PB"),
	NM("kB"), NM("KiB"), NM("MiB"), NM("GiB"), NM("TiB"), NM("ms"),
	NM("us"), NM("ns"), NM("sec"), NM("min"), NM("hr"), NM("hrs"), {NULL, 0}
};
static const NameEntry month_names[] = {
	NM("Jan"), NM("Feb"), NM("Mar"), NM("Apr"), NM("May"),
	NM("Jun"), NM("Jul"), NM("Aug"), NM("Sep"), NM("Oct"),
	NM("Nov"), NM("Dec"), NM("January"), NM("February"), NM("March"),
	NM("April"), NM("June"), NM("July"), NM("August"),
	NM("September"), NM("October"), NM("November"), NM("December"), {NULL, 0}
};
static const NameEntry day_names[] = {
	NM("Mon"), NM("Tue"), NM("Wed"), NM("Thu"), NM("Fri"),
	NM("Sat"), NM("Sun"), NM("Monday"), NM("Tuesday"),
	NM("Wednesday"), NM("Thursday"), NM("Friday"), NM("Saturday"),
	NM("Sunday"), {NULL, 0}
};

/* "for user X", "invalid user X": the word that names a user (any case) */
static const NameEntry user_names[] = {
	NM("user"), NM("username"), NM("login"), {NULL, 0}
};
static const NameEntry user_lead_names[] = {
	NM("for"), NM("by"), NM("from"), NM("of"), NM("to"), NM("as"),
	NM("with"), NM("invalid"), NM("unknown"), {NULL, 0}
};
static const NameEntry for_names[] = {
	NM("for"), {NULL, 0}
};
static const NameEntry from_names[] = {
	NM("from"), {NULL, 0}
};

/* Mask a token that its neighbours reveal as a variable. */
static inline void
mask_tok(MinerTok *t)
{
	t->var = true;
	t->name = false;
	t->camel = false;
}

/*
 * Variables that only their neighbours reveal: a user name after "for
 * user" (Linux 0.877 -> 0.999) or between "for" and "from <address>", a
 * program named with its pid ("mds[171]"), a size or time unit after a
 * number ("5.2 KB" vs "384.0 B": Spark 0.925 -> 1.000), and month (and
 * day) names next to a number ("Fri Jun 17 07:07:00 2005": Linux 0.42 ->
 * 0.88).
 */
static void
mask_context(MinerTok *t, int n)
{
	int			i;

	/*
	 * A user name after "for user", "invalid user"...: no shape tells it
	 * from a word, but the phrase does (sshd, PAM, su, databases).  Not
	 * user=X: key=value words are mostly enumerations (see is_name_word).
	 */
	for (i = 1; i + 1 < n; i++)
		if (t[i].space && t[i + 1].space && t[i + 1].name &&
			!t[i].var && name_in(t[i].s, t[i].len, user_names) &&
			!t[i - 1].var && name_in(t[i - 1].s, t[i - 1].len, user_lead_names))
			mask_tok(&t[i + 1]);
	/* a program named with its pid, "process mds[171] caught ..." */
	for (i = 0; i + 3 < n; i++)
		if (t[i].name && (i == 0 || t[i].space) && !t[i + 1].space && t[i + 2].var &&
			!t[i + 3].space && t[i + 1].len == 1 && t[i + 1].s[0] == '[' &&
			t[i + 3].len == 1 && t[i + 3].s[0] == ']' &&
			(i + 4 == n || t[i + 4].space || (t[i + 4].len == 1 && t[i + 4].s[0] == ':')))
			mask_tok(&t[i]);
	/* and "... for X from <address>" (sshd's "Accepted publickey for X from") */
	for (i = 1; i + 2 < n; i++)
		if (t[i].name && t[i].space && t[i + 1].space && t[i + 2].var &&
			tok_in(&t[i - 1], for_names) && tok_in(&t[i + 1], from_names))
			mask_tok(&t[i]);

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

/* Is t the quote character q, as a token of its own? */
static inline bool
tok_quote(const MinerTok *t, char q)
{
	return !t->var && ((t->len == 1 && t->s[0] == q) ||
					   (q == '"' && t->len > 1 && escaped_quote_len(t->s, t->len) == t->len));
}

/*
 * May token i open a quoted value: a quote at a word start, or right
 * after = : ( or [ (tag="...", key:'...').
 */
static bool
quote_opens(const MinerTok *t, int i)
{
	return i == 0 || t[i].space ||
		(t[i - 1].punct && t[i - 1].len == 1 && strchr("=:([", t[i - 1].s[0]) != NULL);
}

/* May token i close a quoted value: at the end, or before space or , ; : . ) ] } > ! ? */
static bool
quote_closes(const MinerTok *t, int i, int n)
{
	return i + 1 == n || t[i + 1].space ||
		(t[i + 1].punct && strchr(",;:.)]}>!?", t[i + 1].s[0]) != NULL);
}

/*
 * Quoted values: between an opening quote and the next closing one of the
 * same kind, tokens without a variable (a phrase of plain words: a name,
 * a label or a user's text, tag="View Lock") become one <*>, and so does a
 * quoted word whatever it holds ("alt0" and "SCSI-WWID:01:6005-08b4"), so
 * that one event keeps one token count.  Quoted text with a variable and
 * a space inside keeps its tokens: a quoted request line, "GET /a
 * HTTP/1.1", still tells GET from POST.  Messages only: the quotes are
 * tokens of their own (CC_DELIM) and punctuation never becomes <*>, so a
 * template's "<*>" re-tokenizes to the same three tokens.
 */
static const char quote_chars[2] = {'"', '\''};

/* For each token, the next token at or after it that may close a quote. */
static void
find_closers(const MinerTok *t, int n, int next_close[2][MINER_MAX_TOKENS + 1])
{
	int			i;
	int			k;

	for (k = 0; k < 2; k++)
	{
		next_close[k][n] = -1;
		for (i = n - 1; i >= 0; i--)
			next_close[k][i] = tok_quote(&t[i], quote_chars[k]) && quote_closes(t, i, n) ?
				i : next_close[k][i + 1];
	}
}

static int
pair_quotes(MinerTok *t, int n)
{
	int			next_close[2][MINER_MAX_TOKENS + 1];
	int			i;
	int			k;

	find_closers(t, n, next_close);
	for (i = 0; i < n; i++)
	{
		int			j = -1;
		bool		var = false;
		bool		spaced;
		MinerTok	closer;
		const char *start;
		int			m;

		for (k = 0; k < 2 && j < 0; k++)
			if (tok_quote(&t[i], quote_chars[k]) && quote_opens(t, i))
				j = next_close[k][i + 1];
		if (j < 0)
			continue;
		spaced = t[j].space;
		for (m = i + 1; m < j; m++)
		{
			var |= t[m].var;
			spaced |= t[m].space;
		}
		if ((var && spaced) || (j == i + 1 && n >= MINER_MAX_TOKENS - 1))
		{
			i = j;
			continue;
		}
		/* tokens i+1 .. j-1 become one <*> at i+1, then the closer and the rest */
		start = t[i + 1].s;		/* the closer's, if nothing is quoted */
		closer = t[j];
		memmove(&t[i + 2], &t[j], sizeof(MinerTok) * (n - j));
		t[i + 1] = (MinerTok) {.s = start, .len = (int) (closer.s - start),
		.id = MINER_UNKNOWN, .var = true};
		n += i + 2 - j;
		find_closers(t, n, next_close);
		i += 2;
	}
	return n;
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
 * space-separated <*> ("to datanode(s) <*> <*>" -> "<*>"), a list of them
 * ("hosts <*>, <*>, <*>" -> "hosts <*>"), and a group of
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
		/* a list "<*>, <*>, <*>" is one <*> too, whatever its length */
		if (k > 1 && t[i].var && t[i].space && !t[k - 1].space &&
			t[k - 1].len == 1 && (t[k - 1].s[0] == ',' || t[k - 1].s[0] == ';') &&
			t[k - 2].var && (k == 2 || t[k - 2].space))
		{
			k--;
			continue;
		}
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
int
tokenize_text(const char *msg, int len, MinerTok *out, bool message)
{
	TokState	ts = {out, 0, 0, false, false};
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
	if (ts.quotes)
		ts.n = pair_quotes(out, ts.n);
	mask_context(out, ts.n);
	return collapse(out, ts.n);
}

/* The masked, re-spaced text of a message, palloc'd (for tests). */
char *
miner_mask(const char *msg, int len)
{
	MinerTok   *tok = palloc(sizeof(MinerTok) * MINER_MAX_TOKENS);
	int			n = tokenize_text(msg, len, tok, true);
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
