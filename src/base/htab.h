/* htab.h: intrusive hash chains whose bucket array grows with what they hold. The caller owns the
 * entries and the locking; an entry embeds a struct htab_link (first, so that a link found is the
 * entry) and sets its hash before adding it.
 *
 * Why grow: a table sized for its worst case (a million nonces) and filled at random buckets touches
 * its whole array page by page, so the resident memory of a quiet server creeps up to the capacity.
 * Growing by doubling when entries outnumber buckets twice keeps memory to what is held (chains of
 * one or two entries on average), at an amortised rehash of each entry once per doubling. The arrays
 * come from a pool of their own, apart from the heap of the entries (see htab.c). */
#ifndef SIPD_BASE_HTAB_H
#define SIPD_BASE_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct htab_link {
	struct htab_link *next;
	uint32_t hash;
};

struct htab {
	struct htab_link **v;
	size_t count;    /* entries held */
	size_t n, max;   /* buckets now, and at most (powers of two) */
	unsigned shift;  /* bucket = (hash >> shift) & (n - 1): low bits left to whoever shards by them */
};

/* min and max: powers of two, min <= max. 0 or ENOMEM. */
int htab_init(struct htab *t, size_t min, size_t max, unsigned shift);
void htab_free(struct htab *t);
/* The bucket of hash h among n. */
static inline size_t htab__index(const struct htab *t, uint32_t h, size_t n)
{
	return (h >> t->shift) & (n - 1);
}
/* The chain holding the entries of hash h (inline: every lookup of the transaction layer passes here). */
static inline struct htab_link *htab_chain(const struct htab *t, uint32_t h)
{
	return t->v[htab__index(t, h, t->n)];
}
/* Every entry in turn: the first with l NULL, else the one after l (still in t), NULL past the last.
 * A walk may free l once it has its successor. Not for the hot path: it steps over empty buckets. */
struct htab_link *htab_next(const struct htab *t, const struct htab_link *l);
/* Adds l (l->hash set); the array doubles first when entries would be more than twice the buckets
 * (below max). Without memory for that, the chains just get longer. */
void htab_add(struct htab *t, struct htab_link *l);
/* l must be in t. */
void htab_remove(struct htab *t, struct htab_link *l);

#endif
