/* trust.c: where each user last authenticated from. When guesses for one user come from many addresses
 * (a botnet, each address under the per-pair limit), the user's own phones are told from the guessers
 * by this: the few addresses its right credentials came from before. */
#include "auth/digest.h"
#include "auth/digest_private.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define TRUST_SOURCES 4 /* a desk phone, a softphone at home, a mobile app, one more */

/* 64 bytes a user: keyed hashes instead of the name and the addresses (a collision trusts a guesser's
 * address for one user, one chance in 2^32 per address, under a key the guesser does not know). */
struct trust_entry {
	struct htab_link link;          /* first; link.hash is the user's shard and bucket hash */
	uint64_t user;                  /* the user name's 64-bit hash */
	uint32_t src[TRUST_SOURCES];    /* source hashes (an IPv6 source by its /64) */
	uint32_t seen[TRUST_SOURCES];   /* when each last authenticated, seconds; 0: empty slot */
};

struct trust_shard {
	pthread_mutex_t lock;
	struct htab buckets;
	size_t cap;
};

struct digest_trust {
	uint32_t seed[3];
	size_t nshards;
	struct trust_shard shards[SHARDS_MAX];
};

int digest_trust_new(struct digest_trust **tp, size_t max_users)
{
	struct digest_trust *t;

	if (!tp || !max_users)
		return EINVAL;
	if (!(t = calloc(1, sizeof(*t))))
		return ENOMEM;
	for (unsigned i = 0; i < 3; i++)
		t->seed[i] = digest__random_seed();
	t->nshards = digest__shard_count(max_users);
	for (size_t i = 0; i < t->nshards; i++) {
		struct trust_shard *s = &t->shards[i];

		pthread_mutex_init(&s->lock, NULL);
		s->cap = max_users / t->nshards;
		if (digest__buckets_init(&s->buckets)) {
			t->nshards = i + 1;
			digest_trust_free(t);
			return ENOMEM;
		}
	}
	*tp = t;
	return 0;
}

void digest_trust_free(struct digest_trust *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nshards; i++) {
		struct trust_shard *s = &t->shards[i];

		for (struct htab_link *l = htab_next(&s->buckets, NULL), *next; l; l = next) {
			next = htab_next(&s->buckets, l);
			free(l);
		}
		htab_free(&s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(t);
}

/* The shard, the bucket hash and the 64-bit identity of a user; the hash of its source. */
static struct trust_shard *trust_key(struct digest_trust *t, struct slice source, struct slice user, uint32_t *h,
				     uint64_t *id, uint32_t *src)
{
	char pfx[DIGEST_SOURCE_MAX];

	*h = slice_hash(user, t->seed[0]);
	*id = (uint64_t)*h << 32 | slice_hash(user, t->seed[1]);
	*src = slice_hash(digest__source(source, pfx), t->seed[2]);
	return &t->shards[*h & (t->nshards - 1)];
}

static struct trust_entry *trust_find(struct trust_shard *s, uint32_t h, uint64_t id)
{
	for (struct htab_link *l = htab_chain(&s->buckets, h); l; l = l->next)
		if (l->hash == h && ((struct trust_entry *)l)->user == id)
			return (struct trust_entry *)l;
	return NULL;
}

void digest_trust_note(struct digest_trust *t, struct slice source, struct slice user, uint64_t now_s)
{
	struct trust_shard *s;
	struct trust_entry *e;
	uint32_t h, src, stamp = now_s ? (uint32_t)now_s : 1;
	uint64_t id;
	unsigned slot = 0;

	if (!t)
		return;
	s = trust_key(t, source, user, &h, &id, &src);
	pthread_mutex_lock(&s->lock);
	if (!(e = trust_find(s, h, id))) {
		/* only right credentials make an entry: the table grows with the users that exist, and a full
		 * one (max_users) trusts no new user's addresses rather than forget another's */
		if (s->buckets.count >= s->cap || !(e = calloc(1, sizeof(*e))))
			goto out;
		e->link.hash = h;
		e->user = id;
		htab_add(&s->buckets, &e->link);
	}
	/* the address's own slot, else an empty one, else the one least recently seen */
	for (unsigned i = 0; i < TRUST_SOURCES; i++) {
		if (e->seen[i] && e->src[i] == src) {
			slot = i;
			break;
		}
		if (!e->seen[i] || (e->seen[slot] && e->seen[i] < e->seen[slot]))
			slot = i;
	}
	e->src[slot] = src;
	e->seen[slot] = stamp;
out:
	pthread_mutex_unlock(&s->lock);
}

bool digest_trust_has(struct digest_trust *t, struct slice source, struct slice user)
{
	struct trust_shard *s;
	struct trust_entry *e;
	uint32_t h, src;
	uint64_t id;
	bool found = false;

	if (!t)
		return false;
	s = trust_key(t, source, user, &h, &id, &src);
	pthread_mutex_lock(&s->lock);
	if ((e = trust_find(s, h, id)))
		for (unsigned i = 0; i < TRUST_SOURCES && !found; i++)
			found = e->seen[i] && e->src[i] == src;
	pthread_mutex_unlock(&s->lock);
	return found;
}

size_t digest_trust_size(struct digest_trust *t)
{
	size_t total = 0;

	for (size_t i = 0; t && i < t->nshards; i++) {
		pthread_mutex_lock(&t->shards[i].lock);
		total += t->shards[i].buckets.count;
		pthread_mutex_unlock(&t->shards[i].lock);
	}
	return total;
}
