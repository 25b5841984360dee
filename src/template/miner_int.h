/*-------------------------------------------------------------------------
 * src/template/miner_int.h
 *		Private to the template miner: what tokenize.c and miner.c share.
 *
 * Not an API: miner.h is.  Include only from src/template, after
 * template/miner.h.
 *-------------------------------------------------------------------------
 */
#ifndef SMARTETL_TEMPLATE_MINER_INT_H
#define SMARTETL_TEMPLATE_MINER_INT_H

#define MINER_VAR		0		/* token id of the wildcard <*> */
#define MINER_UNKNOWN	(-1)	/* text that is in no template */

typedef struct MinerTok
{
	const char *s;				/* text, pointing into the message */
	int			len;
	int			id;				/* interned id, MINER_VAR or MINER_UNKNOWN */
	bool		var;			/* masked */
	bool		space;			/* whitespace before it */
	bool		punct;			/* punctuation only */
	bool		name;			/* see is_name_word in tokenize.c */
	bool		camel;			/* a CamelCase identifier (is_camel_word) */
} MinerTok;

/*
 * Tokenize and mask msg into out (MINER_MAX_TOKENS entries); returns the
 * count.  message is false for a template text (see tokenize.c).  Token
 * ids are left MINER_UNKNOWN, for the caller to look up.
 */
extern int	tokenize_text(const char *msg, int len, MinerTok *out, bool message);

/* A text's punctuation-only, has-a-digit, name-like and CamelCase properties. */
extern void tokenize_classify(const char *s, int len, bool *punct, bool *digit,
							  bool *name, bool *camel);

#endif							/* SMARTETL_TEMPLATE_MINER_INT_H */
