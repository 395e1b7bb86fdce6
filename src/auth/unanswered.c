/* unanswered.c: clients that were sent several challenges and came back without answering any.
 *
 * RFC 8760 has a client answer the first challenge whose algorithm it supports; clients older than
 * it take every challenge as their own and give up on the one they do not know (libre, the stack of
 * baresip, fails on a realm's second challenge, SHA-256 or MD5). Such a client, after its failure,
 * sends its request again without credentials: that is the sign. From then on it is offered one
 * challenge, the algorithm every client knows, for a day.
 *
 * A fixed table of 4-slot buckets (32 bytes), each slot one atomic word: a 39-bit tag of the
 * client's key, a "single" bit, and 24 bits of seconds. No lock and no allocation after the start;
 * races between workers lose at most a mark, which costs the client one more failed attempt. */
#include "auth/digest.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#define WAYS 4
#define TIME_BITS 24
#define TIME_MASK ((UINT64_C(1) << TIME_BITS) - 1)
#define SINGLE_BIT (UINT64_C(1) << TIME_BITS)
#define TAG_SHIFT (TIME_BITS + 1)
#define PENDING_S 600    /* a second request without credentials this soon after several challenges */
#define SINGLE_S 86400   /* how long a client that did not cope is offered one challenge */

struct digest_unanswered {
	size_t nbuckets; /* a power of two */
	_Atomic uint64_t (*buckets)[WAYS];
};

int digest_unanswered_new(struct digest_unanswered **up, size_t slots)
{
	struct digest_unanswered *u = calloc(1, sizeof(*u));
	size_t n = 1;

	if (!u)
		return ENOMEM;
	while (n * WAYS < slots)
		n <<= 1;
	u->nbuckets = n;
	u->buckets = calloc(n, sizeof(*u->buckets));
	if (!u->buckets) {
		free(u);
		return ENOMEM;
	}
	*up = u;
	return 0;
}

void digest_unanswered_free(struct digest_unanswered *u)
{
	if (!u)
		return;
	free(u->buckets);
	free(u);
}

/* The key's tag: its top bits, the lowest of them set so that no slot in use reads 0. */
static uint64_t tag_of(uint64_t key)
{
	return key >> TAG_SHIFT | 1;
}

static uint64_t slot_make(uint64_t key, bool single, uint64_t now_s)
{
	return tag_of(key) << TAG_SHIFT | (single ? SINGLE_BIT : 0) | (now_s & TIME_MASK);
}

static bool slot_is(uint64_t v, uint64_t key)
{
	return v >> TAG_SHIFT == tag_of(key);
}

static uint64_t slot_age(uint64_t v, uint64_t now_s)
{
	return (now_s - (v & TIME_MASK)) & TIME_MASK;
}

static bool slot_live(uint64_t v, uint64_t now_s)
{
	return v && slot_age(v, now_s) < ((v & SINGLE_BIT) ? SINGLE_S : PENDING_S);
}

static _Atomic uint64_t *bucket_of(struct digest_unanswered *u, uint64_t key)
{
	return u->buckets[key & (u->nbuckets - 1)];
}

/* The slot holding key, or NULL. */
static _Atomic uint64_t *find(_Atomic uint64_t *b, uint64_t key, uint64_t *v)
{
	for (unsigned i = 0; i < WAYS; i++) {
		*v = atomic_load_explicit(&b[i], memory_order_relaxed);
		if (slot_is(*v, key))
			return &b[i];
	}
	return NULL;
}

/* Where a new mark goes: a free or spent slot, else a pending one, else the oldest. */
static _Atomic uint64_t *victim(_Atomic uint64_t *b, uint64_t now_s)
{
	_Atomic uint64_t *best = &b[0];
	uint64_t best_rank = 0;

	for (unsigned i = 0; i < WAYS; i++) {
		uint64_t v = atomic_load_explicit(&b[i], memory_order_relaxed);
		uint64_t rank;

		if (!slot_live(v, now_s))
			return &b[i];
		rank = ((v & SINGLE_BIT) ? 0 : UINT64_C(1) << 32) + slot_age(v, now_s);
		if (rank > best_rank) {
			best_rank = rank;
			best = &b[i];
		}
	}
	return best;
}

bool digest_unanswered_request(struct digest_unanswered *u, uint64_t key, uint64_t now_s, bool *newly)
{
	_Atomic uint64_t *b = bucket_of(u, key), *s;
	uint64_t v;

	*newly = false;
	s = find(b, key, &v);
	if (s && slot_live(v, now_s)) {
		*newly = !(v & SINGLE_BIT);
		atomic_store_explicit(s, slot_make(key, true, now_s), memory_order_relaxed);
		return true;
	}
	atomic_store_explicit(s ? s : victim(b, now_s), slot_make(key, false, now_s), memory_order_relaxed);
	return false;
}

bool digest_unanswered_single(struct digest_unanswered *u, uint64_t key, uint64_t now_s)
{
	uint64_t v;

	return find(bucket_of(u, key), key, &v) && (v & SINGLE_BIT) && slot_live(v, now_s);
}

void digest_unanswered_answered(struct digest_unanswered *u, uint64_t key)
{
	uint64_t v;
	_Atomic uint64_t *s = find(bucket_of(u, key), key, &v);

	if (s && !(v & SINGLE_BIT))
		atomic_compare_exchange_strong_explicit(s, &v, 0, memory_order_relaxed, memory_order_relaxed);
}
