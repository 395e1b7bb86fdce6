/* htab.c: intrusive hash chains with a growing bucket array.
 *
 * The bucket arrays come from a pool of their own (base/pool), not from the heap: they live as long as
 * their table, and a table grows during a burst, when the heap is filling with the burst's
 * transactions. An array carved between them would keep a page of the heap resident after they are
 * gone: 1,024 transaction shards each growing once under 100,000 REGISTERs left 5 MB behind. */
#include "base/htab.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/pool.h"

static struct pool *arrays;
static pthread_once_t arrays_once = PTHREAD_ONCE_INIT;

static void arrays_init(void)
{
	if (pool_new(&arrays))
		arrays = NULL;
}

/* n zeroed buckets, or NULL. */
static struct htab_link **array_new(size_t n)
{
	pthread_once(&arrays_once, arrays_init);
	return arrays ? pool_alloc(arrays, n * sizeof(struct htab_link *)) : NULL;
}

int htab_init(struct htab *t, size_t min, size_t max, unsigned shift)
{
	t->count = 0;
	t->n = min;
	t->max = max;
	t->shift = shift;
	t->v = array_new(min);
	return t->v ? 0 : ENOMEM;
}

void htab_free(struct htab *t)
{
	if (t->v)
		pool_release(arrays, t->v);
	t->v = NULL;
	t->n = 0;
	t->count = 0;
}

/* Twice the buckets, every entry moved to its new chain. */
static void htab_grow(struct htab *t)
{
	size_t n = t->n * 2;
	struct htab_link **v = array_new(n);

	if (!v)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct htab_link *l = t->v[i], *next;

		for (; l; l = next) {
			size_t k = htab__index(t, l->hash, n);

			next = l->next;
			l->next = v[k];
			v[k] = l;
		}
	}
	pool_release(arrays, t->v);
	t->v = v;
	t->n = n;
}

void htab_add(struct htab *t, struct htab_link *l)
{
	size_t k;

	if (++t->count > 2 * t->n && t->n < t->max)
		htab_grow(t);
	k = htab__index(t, l->hash, t->n);
	l->next = t->v[k];
	t->v[k] = l;
}

struct htab_link *htab_next(const struct htab *t, const struct htab_link *l)
{
	size_t k = 0;

	if (l) {
		if (l->next)
			return l->next;
		k = htab__index(t, l->hash, t->n) + 1;
	}
	for (; t->v && k < t->n; k++)
		if (t->v[k])
			return t->v[k];
	return NULL;
}

void htab_remove(struct htab *t, struct htab_link *l)
{
	struct htab_link **pp = &t->v[htab__index(t, l->hash, t->n)];

	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	t->count--;
}
