/*-------------------------------------------------------------------------
 * src/template/miner.h
 *		Online log-template miner (after Drain, He et al., ICWS 2017).
 *
 * Messages are masked (numbers, addresses, ids, paths... become <*>),
 * tokenized, and routed through a fixed-depth tree keyed by token count
 * and leading token to a short list of clusters; the most similar one
 * above a threshold absorbs the message, and positions where they differ
 * become <*> in its template.  One built-in configuration serves all logs.
 *
 * Ids: 0-based, dense, stable.  A cluster is never renumbered, merged or
 * dropped, and a message, once assigned, is never reassigned.
 *
 * Persistence: store (id, miner_template(id)) whenever miner_add reports
 * *changed.  To rebuild after a restart, miner_restore() every stored
 * template into a fresh miner in id order: ids, templates and all later
 * answers are then the same as the original miner's (tested by
 * test/bench/template_ga).  Templates must come from the same version
 * of this code; restore accepts any text, but the equivalence holds only
 * for texts this code produced.
 *
 * Memory: at most MINER_MAX_CLUSTERS templates of at most MINER_MAX_TOKENS
 * tokens of at most 128 bytes each, plus a tree node or two per template.
 * Deterministic; no global state.  Frontend-safe; in the backend all of a
 * miner's memory lives in its own context, a child of the context current
 * at miner_create().  Not thread-safe (a miner is one backend's object).
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_TEMPLATE_MINER_H
#define SMARTETL_TEMPLATE_MINER_H

/* at most this many clusters; then miner_add() only matches (-1 if none) */
#define MINER_MAX_CLUSTERS	50000
/* tokens beyond this many are folded into one trailing <*> */
#define MINER_MAX_TOKENS	256

typedef struct TemplateMiner TemplateMiner;

/* a new, empty miner; miner_free() releases it and every string it gave */
extern TemplateMiner *miner_create(void);
extern void miner_free(TemplateMiner *m);

/*
 * Learn a message (len bytes, NUL-termination not needed): returns its
 * cluster id and sets *changed when that cluster is new or its template
 * text changed.  -1 only if the miner is full and nothing matches.
 */
extern int	miner_add(TemplateMiner *m, const char *msg, int len, bool *changed);

/* the cluster miner_add() would choose, or -1; the miner is not changed */
extern int	miner_match(TemplateMiner *m, const char *msg, int len);

/* re-create a cluster from a stored template text; returns the next id */
extern int	miner_restore(TemplateMiner *m, const char *template_text);

/* number of clusters: ids are 0 .. miner_count() - 1 */
extern int	miner_count(const TemplateMiner *m);

/*
 * A cluster's template: tokens with their original spacing (runs of
 * whitespace as one space), variables as <*>.  Owned by the miner, valid
 * until the cluster's next change; NULL for an unknown id.
 */
extern const char *miner_template(const TemplateMiner *m, int cluster);

/* the masked, re-spaced text of one message, palloc'd; for tests */
extern char *miner_mask(const char *msg, int len);

#endif							/* SMARTETL_TEMPLATE_MINER_H */
