/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_common.h
 *		Shared support for the libFuzzer harnesses: a tiny stand-in for
 *		backend memory contexts, and a checked abort.
 *
 * The parser cores allocate with palloc and, like all backend code, rely
 * on a memory context reset to free what they do not pfree themselves
 * (for instance pg_parse_json's lexer, tokens and error details).  Linked
 * against libpgcommon's fe_memutils.o, palloc is plain malloc, and
 * LeakSanitizer would report every such allocation as a leak.  So
 * fuzz_common.c defines palloc & co. itself (fe_memutils.o is then never
 * pulled out of libpgcommon.a): every chunk is a separate malloc, so
 * AddressSanitizer still sees overflows and use-after-free, but each chunk
 * also belongs to a FuzzArena that can be reset like a MemoryContext.
 * Anything malloc'ed outside palloc is still leak-checked.
 *
 * The backend's palloc() rules are enforced, since the backend is where
 * the parsers really run: requests above MaxAllocSize, pfree(NULL) and
 * repalloc(NULL) abort with a message instead of quietly working.
 *-------------------------------------------------------------------------
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include "postgres_fe.h"

typedef struct FuzzChunk FuzzChunk;

typedef struct FuzzArena
{
	const char *name;
	FuzzChunk  *chunks;			/* doubly linked list of live chunks */
	size_t		nchunks;
} FuzzArena;

/* The arena palloc allocates in, like CurrentMemoryContext. */
extern FuzzArena *fuzz_current_arena;

extern void fuzz_arena_init(FuzzArena *a, const char *name);
extern void fuzz_arena_reset(FuzzArena *a);
extern FuzzArena *fuzz_arena_switch(FuzzArena *a);

/* Report a harness-detected invariant violation and abort (a "crash"). */
extern void fuzz_fail(const char *fmt,...) pg_attribute_printf(1, 2);

#define FUZZ_CHECK(cond, ...) \
	do { if (!(cond)) fuzz_fail(__VA_ARGS__); } while (0)

#endif							/* FUZZ_COMMON_H */
