/*-------------------------------------------------------------------------
 * src/template/miner.c
 *		Online log-template miner: Drain-style tree and clusters.
 *
 * Messages are masked and tokenized by tokenize.c.  The tree routes the
 * token list by token count and leading token to a leaf, whose clusters
 * are compared position by position; the most similar one above
 * MINER_SIM_THRESHOLD absorbs the message, and positions where they differ
 * become <*> in its template.
 *
 * The main departure from Drain is that two different name-like words at
 * one position (GET/POST, startup/shutdown, LEADING/FOLLOWING) keep
 * messages apart: in practice such words are what tells events apart, and
 * variables mostly carry digits or get masked (on the nine Loghub 2k
 * systems, average grouping accuracy 0.873 without this rule, 0.996 with
 * it).  Word variables are the tokenizer's to find, by shape (host and
 * package names, quoted phrases, true/false) or by context (the user name
 * after "for user"); here, two CamelCase identifiers past the first token
 * (AppleHDAController, IOAudioEngine: class, driver and service names) do
 * not clash.  A leaf that collects many clusters differing only by such
 * words treats the slot as a variable after all
 * (MINER_MAX_NAME_SIBLINGS), so that a word variable the rules miss cannot
 * grow the miner without bound.
 *
 * Restore: a cluster's template text re-tokenizes to exactly its tokens
 * (see tokenize.c), and a cluster's place in the tree depends only on its
 * template and on the clusters created before it.  So restoring the texts
 * in id order rebuilds the same tree, the same ids and the same future
 * behaviour.
 *
 * Deterministic: no randomness, no pointer-order dependence.
 *-------------------------------------------------------------------------
 */
#ifdef FRONTEND
#include "postgres_fe.h"
#else
#include "postgres.h"
#include "utils/memutils.h"
#endif

#include "common/hashfn.h"

#include "template/miner.h"
#include "template/miner_int.h"

/* Drain's defaults: one token level in the tree, 100 children a node */
#define MINER_TREE_DEPTH		1
#define MINER_MAX_CHILDREN		100
#define MINER_SIM_THRESHOLD		0.5
/* a slot keeps at most this many name-like words apart; then it is <*> */
#define MINER_MAX_NAME_SIBLINGS	12

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
	bool		name;			/* a name-like word (tokenize.c) */
	bool		camel;			/* a CamelCase identifier (tokenize.c) */
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
	tokenize_classify(s, len, &str->punct, &str->digit, &str->name, &str->camel);
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
		else if (t[i].name && m->str[tk].name &&
				 !(i > 0 && t[i].camel && m->str[tk].camel))
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
	int			n = tokenize_text(msg, len, m->tok, message);
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
