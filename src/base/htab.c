/* htab.c: intrusive hash chains with a growing bucket array. */
#include "base/htab.h"

#include <errno.h>
#include <stdlib.h>

static size_t bucket_of(const struct htab *t, uint32_t h, size_t n)
{
	return (h >> t->shift) & (n - 1);
}

int htab_init(struct htab *t, size_t min, size_t max, unsigned shift)
{
	t->count = 0;
	t->n = min;
	t->max = max;
	t->shift = shift;
	t->v = calloc(min, sizeof(*t->v));
	return t->v ? 0 : ENOMEM;
}

void htab_free(struct htab *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
	t->count = 0;
}

/* Twice the buckets, every entry moved to its new chain. */
static void htab_grow(struct htab *t)
{
	size_t n = t->n * 2;
	struct htab_link **v = calloc(n, sizeof(*v));

	if (!v)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct htab_link *l = t->v[i], *next;

		for (; l; l = next) {
			size_t k = bucket_of(t, l->hash, n);

			next = l->next;
			l->next = v[k];
			v[k] = l;
		}
	}
	free(t->v);
	t->v = v;
	t->n = n;
}

void htab_add(struct htab *t, struct htab_link *l)
{
	size_t k;

	if (++t->count > t->n && t->n < t->max)
		htab_grow(t);
	k = bucket_of(t, l->hash, t->n);
	l->next = t->v[k];
	t->v[k] = l;
}

void htab_remove(struct htab *t, struct htab_link *l)
{
	struct htab_link **pp = &t->v[bucket_of(t, l->hash, t->n)];

	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	t->count--;
}
