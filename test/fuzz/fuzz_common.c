/*-------------------------------------------------------------------------
 * test/fuzz/fuzz_common.c
 *		palloc & co. on top of malloc, grouped into resettable arenas.
 *
 * See fuzz_common.h for why.  Defines every symbol of libpgcommon's
 * fe_memutils.o so that object is never linked in (a second definition
 * would be a duplicate-symbol link error, which is how we would notice).
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_common.h"

#define FUZZ_CHUNK_MAGIC 0x5EC0FFEEu

struct FuzzChunk
{
	uint32		magic;
	FuzzArena  *arena;
	FuzzChunk  *prev;
	FuzzChunk  *next;
	size_t		size;
};

/* keep the user pointer as aligned as malloc's own result */
#define CHUNK_HDR	TYPEALIGN(16, sizeof(FuzzChunk))
#define CHUNK_OF(p)	((FuzzChunk *) ((char *) (p) - CHUNK_HDR))
#define USER_OF(c)	((void *) ((char *) (c) + CHUNK_HDR))

static FuzzArena fuzz_top_arena = {"top", NULL, 0};

FuzzArena  *fuzz_current_arena = &fuzz_top_arena;

void
fuzz_fail(const char *fmt,...)
{
	va_list		ap;

	fputs("FUZZ INVARIANT VIOLATED: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

void
fuzz_arena_init(FuzzArena *a, const char *name)
{
	a->name = name;
	a->chunks = NULL;
	a->nchunks = 0;
}

void
fuzz_arena_reset(FuzzArena *a)
{
	FuzzChunk  *c = a->chunks;

	while (c)
	{
		FuzzChunk  *next = c->next;

		c->magic = 0;
		free(c);
		c = next;
	}
	a->chunks = NULL;
	a->nchunks = 0;
}

FuzzArena *
fuzz_arena_switch(FuzzArena *a)
{
	FuzzArena  *old = fuzz_current_arena;

	fuzz_current_arena = a;
	return old;
}

static void
chunk_link(FuzzChunk *c, FuzzArena *a)
{
	c->arena = a;
	c->prev = NULL;
	c->next = a->chunks;
	if (a->chunks)
		a->chunks->prev = c;
	a->chunks = c;
	a->nchunks++;
}

static void
chunk_unlink(FuzzChunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->arena->chunks = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->arena->nchunks--;
}

static FuzzChunk *
chunk_check(void *p, const char *what)
{
	FuzzChunk  *c;

	if (p == NULL)
		fuzz_fail("%s(NULL): would crash in the backend", what);
	c = CHUNK_OF(p);
	if (c->magic != FUZZ_CHUNK_MAGIC)
		fuzz_fail("%s(%p): not a live palloc chunk", what, p);
	return c;
}

static void *
fuzz_alloc(size_t size, int flags)
{
	FuzzChunk  *c;

	/* the backend raises ERROR "invalid memory alloc request size" */
	if (size > MaxAllocSize && !(flags & MCXT_ALLOC_HUGE))
		fuzz_fail("palloc(%zu) exceeds MaxAllocSize", size);
	c = malloc(CHUNK_HDR + size);
	if (c == NULL)
	{
		if (flags & MCXT_ALLOC_NO_OOM)
			return NULL;
		fuzz_fail("out of memory allocating %zu bytes", size);
	}
	c->magic = FUZZ_CHUNK_MAGIC;
	c->size = size;
	chunk_link(c, fuzz_current_arena);
	if (flags & MCXT_ALLOC_ZERO)
		memset(USER_OF(c), 0, size);
	return USER_OF(c);
}

static void *
fuzz_realloc(void *p, size_t size, const char *what)
{
	FuzzChunk  *c = chunk_check(p, what);
	FuzzArena  *a = c->arena;
	FuzzChunk  *n;

	if (size > MaxAllocSize)
		fuzz_fail("%s(%zu) exceeds MaxAllocSize", what, size);
	chunk_unlink(c);
	n = realloc(c, CHUNK_HDR + size);
	if (n == NULL)
		fuzz_fail("out of memory reallocating %zu bytes", size);
	n->size = size;
	chunk_link(n, a);			/* repalloc keeps the chunk's context */
	return USER_OF(n);
}

static void
fuzz_release(void *p, const char *what)
{
	FuzzChunk  *c = chunk_check(p, what);

	chunk_unlink(c);
	c->magic = 0;
	free(c);
}

static Size
checked_mul(Size s1, Size s2)
{
	Size		r;

	if (__builtin_mul_overflow(s1, s2, &r))
		fuzz_fail("allocation size overflow: %zu * %zu", s1, s2);
	return r;
}

/* ---- the fe_memutils.h API ---- */

Size
add_size(Size s1, Size s2)
{
	Size		r;

	if (__builtin_add_overflow(s1, s2, &r))
		fuzz_fail("allocation size overflow: %zu + %zu", s1, s2);
	return r;
}

Size
mul_size(Size s1, Size s2)
{
	return checked_mul(s1, s2);
}

void *
palloc(Size size)
{
	return fuzz_alloc(size, 0);
}

void *
palloc0(Size size)
{
	return fuzz_alloc(size, MCXT_ALLOC_ZERO);
}

void *
palloc_extended(Size size, int flags)
{
	return fuzz_alloc(size, flags);
}

void *
palloc_mul(Size s1, Size s2)
{
	return fuzz_alloc(checked_mul(s1, s2), 0);
}

void *
palloc0_mul(Size s1, Size s2)
{
	return fuzz_alloc(checked_mul(s1, s2), MCXT_ALLOC_ZERO);
}

void *
palloc_mul_extended(Size s1, Size s2, int flags)
{
	return fuzz_alloc(checked_mul(s1, s2), flags);
}

void *
repalloc(void *pointer, Size size)
{
	return fuzz_realloc(pointer, size, "repalloc");
}

void *
repalloc_mul(void *p, Size s1, Size s2)
{
	return fuzz_realloc(p, checked_mul(s1, s2), "repalloc");
}

void
pfree(void *pointer)
{
	fuzz_release(pointer, "pfree");
}

char *
pstrdup(const char *in)
{
	size_t		len = strlen(in);
	char	   *out = fuzz_alloc(len + 1, 0);

	memcpy(out, in, len + 1);
	return out;
}

char *
pnstrdup(const char *in, Size size)
{
	size_t		len = strnlen(in, size);
	char	   *out = fuzz_alloc(len + 1, 0);

	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

void *
pg_malloc(size_t size)
{
	return fuzz_alloc(size, 0);
}

void *
pg_malloc0(size_t size)
{
	return fuzz_alloc(size, MCXT_ALLOC_ZERO);
}

void *
pg_malloc_extended(size_t size, int flags)
{
	return fuzz_alloc(size, flags);
}

void *
pg_malloc_mul(Size s1, Size s2)
{
	return fuzz_alloc(checked_mul(s1, s2), 0);
}

void *
pg_malloc0_mul(Size s1, Size s2)
{
	return fuzz_alloc(checked_mul(s1, s2), MCXT_ALLOC_ZERO);
}

void *
pg_malloc_mul_extended(Size s1, Size s2, int flags)
{
	return fuzz_alloc(checked_mul(s1, s2), flags);
}

void *
pg_realloc(void *pointer, size_t size)
{
	if (pointer == NULL)
		return fuzz_alloc(size, 0);
	return fuzz_realloc(pointer, size, "pg_realloc");
}

void *
pg_realloc_mul(void *p, Size s1, Size s2)
{
	return pg_realloc(p, checked_mul(s1, s2));
}

char *
pg_strdup(const char *in)
{
	return pstrdup(in);
}

void
pg_free(void *pointer)
{
	if (pointer != NULL)
		fuzz_release(pointer, "pg_free");
}
