/* limiter.c: the brute-force limiter: failures per (source address, user), blocks that double. */
#include "auth/digest.h"
#include "auth/digest_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define LIM_SRC_MAX 64         /* limiter keys: longer sources / users are cut (same-prefix pairs share) */
#define LIM_USER_MAX 128
#define LIM_SWEEP_MAX 4096     /* pairs a sweep forgets per shard: the shard's lock is not held for long */
#define LIM_BLOCK_CAP_S 3600   /* blocks double up to this; a pair this long past its block starts over */

/* ---- Brute-force limiter ------------------------------------------------------------------------ */

struct lim_entry {
	struct htab_link link;        /* first: its bucket chain and hash */
	struct lim_entry *prev, *next; /* in its shard's counting or blocked list, least recent first */
	uint64_t window_start, blocked_until;
	uint32_t block_len;           /* the last block's length, 0 before the first */
	unsigned fails;               /* within the window starting at window_start */
	uint16_t src_l, user_l;
	bool in_blocked;
	char key[];                   /* source then user */
};

struct lim_list {
	struct lim_entry *head, *tail;
};

struct lim_shard {
	pthread_mutex_t lock;
	struct htab buckets;     /* buckets.count: pairs held */
	size_t cap;
	/* Room is not made from pairs still blocked while others remain: a flood of fresh (source, user)
	 * pairs cannot push a blocked pair out without getting a shard's worth of pairs blocked itself. */
	struct lim_list counting, blocked;
	_Atomic size_t *held; /* the limiter's count of pairs, all shards together */
};

struct digest_limiter {
	/* no pair is blocked at or past this second: the common case answered without a lock */
	_Atomic uint64_t blocked_until_max;
	/* pairs held in all shards: none (no failure counted, the honest case) lets a success go without
	 * hashing its pair or taking a lock */
	_Atomic size_t held;
	unsigned max_failures, window_s, block_s;
	uint32_t seed;
	size_t nshards;
	struct lim_shard shards[SHARDS_MAX];
};

static void lim_list_remove(struct lim_list *l, struct lim_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lim_list_append(struct lim_list *l, struct lim_entry *e)
{
	e->next = NULL;
	e->prev = l->tail;
	if (l->tail)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
}

static struct lim_list *lim_list_of(struct lim_shard *s, struct lim_entry *e)
{
	return e->in_blocked ? &s->blocked : &s->counting;
}

static void lim_remove(struct lim_shard *s, struct lim_entry *e)
{
	htab_remove(&s->buckets, &e->link);
	lim_list_remove(lim_list_of(s, e), e);
	free(e);
	atomic_fetch_sub_explicit(s->held, 1, memory_order_relaxed);
}

int digest_limiter_new(struct digest_limiter **lp, unsigned max_failures, unsigned window_s, unsigned block_s,
		       size_t max_entries)
{
	struct digest_limiter *l;
	size_t per;

	if (!lp || !max_failures || !window_s || !block_s || !max_entries)
		return EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return ENOMEM;
	atomic_init(&l->blocked_until_max, 0);
	atomic_init(&l->held, 0);
	l->max_failures = max_failures;
	l->window_s = window_s;
	l->block_s = block_s;
	l->seed = digest__random_seed();
	l->nshards = digest__shard_count(max_entries);
	per = max_entries / l->nshards;
	for (size_t i = 0; i < l->nshards; i++) {
		struct lim_shard *s = &l->shards[i];

		pthread_mutex_init(&s->lock, NULL);
		s->cap = per;
		s->held = &l->held;
		if (digest__buckets_init(&s->buckets)) {
			l->nshards = i + 1;
			digest_limiter_free(l);
			return ENOMEM;
		}
	}
	*lp = l;
	return 0;
}

void digest_limiter_free(struct digest_limiter *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nshards; i++) {
		struct lim_shard *s = &l->shards[i];

		while (s->counting.head)
			lim_remove(s, s->counting.head);
		while (s->blocked.head)
			lim_remove(s, s->blocked.head);
		htab_free(&s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(l);
}

_Static_assert(DIGEST_SOURCE_MAX >= INET6_ADDRSTRLEN + 4, "room for an IPv6 prefix and /64");

struct slice digest__source(struct slice src, char buf[DIGEST_SOURCE_MAX])
{
	struct in6_addr a;
	char tmp[INET6_ADDRSTRLEN];

	if (!src.l || src.l >= sizeof(tmp) || !memchr(src.p, ':', src.l))
		return src;
	memcpy(tmp, src.p, src.l);
	tmp[src.l] = '\0';
	if (inet_pton(AF_INET6, tmp, &a) != 1 || IN6_IS_ADDR_V4MAPPED(&a))
		return src;
	memset(&a.s6_addr[8], 0, 8);
	if (!inet_ntop(AF_INET6, &a, tmp, sizeof(tmp)))
		return src;
	return slice_make(buf, (size_t)snprintf(buf, DIGEST_SOURCE_MAX, "%s/64", tmp));
}

/* Finds the pair's shard and hash; source and user are cut to their key limits. */
static struct lim_shard *lim_shard_of(struct digest_limiter *l, struct slice *src, struct slice *user, uint32_t *h)
{
	if (src->l > LIM_SRC_MAX)
		src->l = LIM_SRC_MAX;
	if (user->l > LIM_USER_MAX)
		user->l = LIM_USER_MAX;
	*h = slice_hash(*user, slice_hash(*src, l->seed));
	return &l->shards[*h & (l->nshards - 1)];
}

static struct lim_entry *lim_find(struct lim_shard *s, uint32_t h, struct slice src, struct slice user)
{
	for (struct htab_link *l = htab_chain(&s->buckets, h); l; l = l->next) {
		struct lim_entry *e = (struct lim_entry *)l;

		if (l->hash == h && e->src_l == src.l && e->user_l == user.l && (!src.l || !memcmp(e->key, src.p, src.l)) &&
		    (!user.l || !memcmp(e->key + src.l, user.p, user.l)))
			return e;
	}
	return NULL;
}

/* Whom to forget when the shard is full: a pair whose block is over (it only remembers the escalation),
 * else the least recently failing counting pair, else the earliest block. */
static struct lim_entry *lim_victim(struct lim_shard *s, uint64_t now)
{
	if (s->blocked.head && now >= s->blocked.head->blocked_until)
		return s->blocked.head;
	return s->counting.head ? s->counting.head : s->blocked.head;
}

/* Forgets up to n pairs that no longer matter, from the least recent end of each list: counting pairs
 * whose window has passed (their next failure would start from zero anyway) and pairs an hour past
 * their block (their next block would start over); the number forgotten. */
static unsigned lim_prune_n(struct digest_limiter *l, struct lim_shard *s, uint64_t now, unsigned n)
{
	unsigned done = 0;

	while (done < n) {
		struct lim_entry *c = s->counting.head, *b = s->blocked.head;
		unsigned was = done;

		if (c && (now < c->window_start || now - c->window_start >= l->window_s)) {
			lim_remove(s, c);
			done++;
		}
		if (b && now >= b->blocked_until + LIM_BLOCK_CAP_S) {
			lim_remove(s, b);
			done++;
		}
		if (done == was)
			break;
	}
	return done;
}

/* Two at each failure, besides the sweep: the table then holds about the pairs of the last window and of
 * the last hour's blocks, not every pair ever seen until max_entries. */
static void lim_prune(struct digest_limiter *l, struct lim_shard *s, uint64_t now)
{
	lim_prune_n(l, s, now, 2);
}

size_t digest_limiter_sweep(struct digest_limiter *l, uint64_t now_s)
{
	size_t total = 0;

	for (size_t i = 0; l && i < l->nshards; i++) {
		pthread_mutex_lock(&l->shards[i].lock);
		total += lim_prune_n(l, &l->shards[i], now_s, LIM_SWEEP_MAX);
		pthread_mutex_unlock(&l->shards[i].lock);
	}
	return total;
}

static void lim_note_block(struct digest_limiter *l, uint64_t until)
{
	uint64_t max = atomic_load(&l->blocked_until_max);

	while (max < until && !atomic_compare_exchange_weak(&l->blocked_until_max, &max, until))
		;
}

unsigned digest_limiter_failure(struct digest_limiter *l, struct slice source, struct slice user, uint64_t now_s)
{
	char pfx[DIGEST_SOURCE_MAX];
	struct lim_shard *s;
	struct lim_entry *e;
	unsigned started = 0;
	uint32_t h;

	if (!l)
		return 0;
	source = digest__source(source, pfx);
	s = lim_shard_of(l, &source, &user, &h);
	pthread_mutex_lock(&s->lock);
	lim_prune(l, s, now_s);
	e = lim_find(s, h, source, user);
	if (!e) {
		if (s->buckets.count >= s->cap)
			lim_remove(s, lim_victim(s, now_s));
		e = calloc(1, sizeof(*e) + source.l + user.l);
		if (!e) /* out of memory: this failure goes uncounted */
			goto out;
		e->link.hash = h;
		e->src_l = (uint16_t)source.l;
		e->user_l = (uint16_t)user.l;
		if (source.l)
			memcpy(e->key, source.p, source.l);
		if (user.l)
			memcpy(e->key + source.l, user.p, user.l);
		htab_add(&s->buckets, &e->link);
		atomic_fetch_add_explicit(&l->held, 1, memory_order_relaxed);
		lim_list_append(&s->counting, e);
	}
	if (now_s < e->blocked_until) /* refused anyway; a block is not stretched by more tries */
		goto out;
	if (e->fails == 0 || now_s < e->window_start || now_s - e->window_start >= l->window_s) {
		e->fails = 0;
		e->window_start = now_s;
	}
	lim_list_remove(lim_list_of(s, e), e);
	if (++e->fails >= l->max_failures) {
		uint64_t cap = l->block_s > LIM_BLOCK_CAP_S ? l->block_s : LIM_BLOCK_CAP_S;

		/* Each new block doubles the last, unless the pair kept quiet for an hour since. */
		if (e->block_len == 0 || now_s >= e->blocked_until + LIM_BLOCK_CAP_S)
			e->block_len = l->block_s;
		else
			e->block_len = (uint32_t)(2ull * e->block_len < cap ? 2ull * e->block_len : cap);
		e->blocked_until = now_s + e->block_len;
		e->fails = 0;
		e->in_blocked = true;
		lim_note_block(l, e->blocked_until);
		started = e->block_len;
	}
	lim_list_append(lim_list_of(s, e), e);
out:
	pthread_mutex_unlock(&s->lock);
	return started;
}

bool digest_limiter_blocked(struct digest_limiter *l, struct slice source, struct slice user, uint64_t now_s)
{
	char pfx[DIGEST_SOURCE_MAX];
	struct lim_shard *s;
	struct lim_entry *e;
	uint32_t h;
	bool blocked;

	if (!l || now_s >= atomic_load_explicit(&l->blocked_until_max, memory_order_acquire))
		return false;
	source = digest__source(source, pfx);
	s = lim_shard_of(l, &source, &user, &h);
	pthread_mutex_lock(&s->lock);
	e = lim_find(s, h, source, user);
	blocked = e && now_s < e->blocked_until;
	pthread_mutex_unlock(&s->lock);
	return blocked;
}

void digest_limiter_success(struct digest_limiter *l, struct slice source, struct slice user)
{
	char pfx[DIGEST_SOURCE_MAX];
	struct lim_shard *s;
	struct lim_entry *e;
	uint32_t h;

	/* Relaxed: a failure counted by another thread at this moment is one this success need not
	 * forget (it came after, or raced it as it would with the lock). */
	if (!l || atomic_load_explicit(&l->held, memory_order_relaxed) == 0)
		return;
	source = digest__source(source, pfx);
	s = lim_shard_of(l, &source, &user, &h);
	pthread_mutex_lock(&s->lock);
	e = lim_find(s, h, source, user);
	if (e)
		lim_remove(s, e);
	pthread_mutex_unlock(&s->lock);
}

size_t digest_limiter_blocks(struct digest_limiter *l, uint64_t now_s,
			     void (*fn)(void *arg, const struct digest_block *b), void *arg)
{
	size_t total = 0;

	for (size_t i = 0; l && i < l->nshards; i++) {
		struct lim_shard *s = &l->shards[i];

		pthread_mutex_lock(&s->lock);
		for (struct lim_entry *e = s->blocked.head; e; e = e->next) {
			struct digest_block b = { slice_make(e->key, e->src_l), slice_make(e->key + e->src_l, e->user_l),
						  e->blocked_until, e->block_len };

			if (now_s >= e->blocked_until)
				continue;
			total++;
			if (fn)
				fn(arg, &b);
		}
		pthread_mutex_unlock(&s->lock);
	}
	return total;
}

static bool lim_key_is(const char *key, size_t len, const struct slice *want, size_t max)
{
	size_t l = want->l > max ? max : want->l;

	return len == l && (!l || !memcmp(key, want->p, l));
}

/* Forgets the pairs of list that match; the number of them blocked at now_s. */
static size_t lim_forget_in(struct lim_shard *s, struct lim_list *list, const struct slice *source,
			    const struct slice *user, uint64_t now_s)
{
	size_t blocked = 0;
	struct lim_entry *e = list->head;

	while (e) {
		struct lim_entry *next = e->next;

		if ((!source || lim_key_is(e->key, e->src_l, source, LIM_SRC_MAX)) &&
		    (!user || lim_key_is(e->key + e->src_l, e->user_l, user, LIM_USER_MAX))) {
			blocked += now_s < e->blocked_until;
			lim_remove(s, e);
		}
		e = next;
	}
	return blocked;
}

size_t digest_limiter_forget(struct digest_limiter *l, const struct slice *source, const struct slice *user,
			     uint64_t now_s)
{
	char pfx[DIGEST_SOURCE_MAX];
	struct slice src;
	size_t total = 0;

	if (!l)
		return 0;
	if (source) {
		src = digest__source(*source, pfx);
		source = &src;
	}
	for (size_t i = 0; i < l->nshards; i++) {
		struct lim_shard *s = &l->shards[i];

		pthread_mutex_lock(&s->lock);
		total += lim_forget_in(s, &s->counting, source, user, now_s);
		total += lim_forget_in(s, &s->blocked, source, user, now_s);
		pthread_mutex_unlock(&s->lock);
	}
	return total;
}

size_t digest_limiter_size(struct digest_limiter *l)
{
	size_t total = 0;

	for (size_t i = 0; l && i < l->nshards; i++) {
		pthread_mutex_lock(&l->shards[i].lock);
		total += l->shards[i].buckets.count;
		pthread_mutex_unlock(&l->shards[i].lock);
	}
	return total;
}
