/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_template.c
 *		Fuzz the template miner (src/template) with arbitrary messages.
 *
 * Each input line is learned; ids must be dense and stable, every id must
 * have a template, and a second miner restored from the templates in id
 * order (what a new backend does from smartetl.template) must give every
 * message the same id as the original.
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include "template/miner.h"

#include "fuzz_common.h"

#define MAX_LINES 256

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FuzzArena	arena;
	const char *text = (const char *) data;
	TemplateMiner *m;
	TemplateMiner *restored;
	int			starts[MAX_LINES];
	int			lens[MAX_LINES];
	int			ids[MAX_LINES];
	int			n = 0,
				i;
	size_t		pos = 0;

	if (memchr(text, '\0', size) != NULL)
		return 0;
	fuzz_arena_init(&arena, "template");
	fuzz_arena_switch(&arena);
	m = miner_create();
	while (pos < size && n < MAX_LINES)
	{
		const char *end = memchr(text + pos, '\n', size - pos);
		int			len = end ? (int) (end - (text + pos)) : (int) (size - pos);
		bool		changed;
		int			before = miner_count(m);

		ids[n] = miner_add(m, text + pos, len, &changed);
		FUZZ_CHECK(ids[n] >= 0 && ids[n] < miner_count(m), "id %d of %d", ids[n], miner_count(m));
		FUZZ_CHECK(miner_count(m) <= before + 1, "one message made several clusters");
		FUZZ_CHECK(ids[n] < before || changed, "a new cluster not reported as changed");
		FUZZ_CHECK(miner_template(m, ids[n]) != NULL, "no template for id %d", ids[n]);
		(void) miner_mask(text + pos, len);
		starts[n] = (int) pos;
		lens[n] = len;
		n++;
		pos += len + 1;
	}

	/* a fresh miner restored from the templates answers the same */
	restored = miner_create();
	for (i = 0; i < miner_count(m); i++)
		FUZZ_CHECK(miner_restore(restored, miner_template(m, i)) == i, "restore id %d", i);
	for (i = 0; i < n; i++)
	{
		int			a = miner_match(m, text + starts[i], lens[i]);
		int			b = miner_match(restored, text + starts[i], lens[i]);

		/*
		 * Not checked: that a message still matches the cluster it joined.
		 * Later messages can specialise the tree around it (Drain does the
		 * same); ingestion stores the id given at learning time.
		 */
		FUZZ_CHECK(a == b, "line %d: original matches %d, restored %d", i, a, b);
	}
	miner_free(restored);
	miner_free(m);
	fuzz_arena_reset(&arena);
	return 0;
}
