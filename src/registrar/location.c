/* location.c: sharded AOR table; a binding is one allocation with its strings packed behind it. */
#include "registrar/location.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/htab.h"
#include "base/log.h"
#include "base/slice.h"
#include "base/pool.h"
#include "base/timer.h"

#define LOC_SHARD_BITS 6
#define LOC_SHARDS (1u << LOC_SHARD_BITS) /* by the AOR hash's low bits; the chains use the rest */
#define AOR_BUCKETS_MAX (1u << 20)
#define EXPIRED_BATCH 256

struct aor;

struct binding {
	struct binding *next;
	struct aor *aor;
	struct tmr expiry;
	int64_t expires, updated;
	int64_t seq;       /* its row in the store */
	uint32_t cseq;
	int q;
	const char *contact, *received, *path, *call_id, *user_agent, *instance, *local; /* into data[] */
	char data[];
};

struct aor {
	struct htab_link link; /* first: the shard's chain, and the name's hash */
	struct binding *head;
	char name[];
};

struct loc_shard {
	pthread_mutex_t lock;
	struct htab aors;         /* of struct aor, by name */
	struct tmr_wheel *wheel; /* expiry timers of this shard's bindings, advanced by the expiry thread */
	struct store_change *expired; /* filled by timer handlers during an advance */
	size_t nexpired;
};

struct loc {
	struct loc_shard shards[LOC_SHARDS];
	loc_expired_h *expired_h;
	void *arg;
	pthread_t thread;
	bool running;
	atomic_bool stopping;
	pthread_mutex_t pause_lock; /* the expiry thread sleeps on pause until its next pass or a stop */
	pthread_cond_t pause;
	/* The expiry thread sleeps until the earliest binding is due (tmr_clock_ms), 0 while it is awake; a
	 * binding due before that wakes it (note_due). added_min: the earliest due of the bindings added
	 * since its pass began, which it checks before sleeping, for those its pass may have missed. */
	_Atomic uint64_t planned_ms;
	_Atomic uint64_t added_min;
	atomic_size_t count;
	struct pool *pool; /* bindings and AORs live an hour, apart from the heap of the transactions */
};

static struct loc_shard *shard_of(struct loc *l, uint32_t h)
{
	return &l->shards[h % LOC_SHARDS];
}

static uint32_t aor_hash(const char *aor)
{
	return slice_casehash(slice_cstr(aor), 0x10c);
}

static struct aor *aor_find(struct loc_shard *s, const char *name, uint32_t h)
{
	for (struct htab_link *k = htab_chain(&s->aors, h); k; k = k->next)
		if (k->hash == h && !strcmp(((struct aor *)k)->name, name))
			return (struct aor *)k;
	return NULL;
}

/* ---- bindings ---- */

static void binding_free(struct loc *l, struct binding *b)
{
	tmr_cancel(&b->expiry);
	atomic_fetch_sub(&l->count, 1);
	pool_release(l->pool, b);
}

/* An AOR entry, added to shard s. */
static struct aor *aor_new(struct loc *l, struct loc_shard *s, const char *name, uint32_t hash)
{
	size_t len = strlen(name);
	struct aor *a = pool_alloc(l->pool, sizeof(*a) + len + 1);

	if (!a)
		return NULL;
	memcpy(a->name, name, len + 1);
	a->link.hash = hash;
	a->head = NULL;
	htab_add(&s->aors, &a->link);
	return a;
}

/* Field by field, without clearing the whole record first: a record is ~3 kB and lookups are hot. */
static void binding_export(const struct binding *b, const char *aor, struct store_binding *out)
{
	slice_copy(out->aor, sizeof(out->aor), slice_cstr(aor));
	slice_copy(out->contact, sizeof(out->contact), slice_cstr(b->contact));
	slice_copy(out->received, sizeof(out->received), slice_cstr(b->received));
	slice_copy(out->path, sizeof(out->path), slice_cstr(b->path));
	slice_copy(out->call_id, sizeof(out->call_id), slice_cstr(b->call_id));
	slice_copy(out->user_agent, sizeof(out->user_agent), slice_cstr(b->user_agent));
	slice_copy(out->instance, sizeof(out->instance), slice_cstr(b->instance));
	slice_copy(out->local, sizeof(out->local), slice_cstr(b->local));
	out->cseq = b->cseq;
	out->q = b->q;
	out->expires = b->expires;
	out->updated = b->updated;
	out->seq = b->seq;
}

static void on_expiry(struct tmr *t, void *arg);

/* From now (a whole second) to a binding's end. When now is the clock's second, the part of it already
 * gone is taken off: the timer runs at the end, not up to a second after it. */
static uint64_t expiry_delay_ms(int64_t expires, int64_t now)
{
	struct timespec ts;
	uint64_t ms;

	if (expires <= now)
		return 0;
	ms = (uint64_t)(expires - now) * 1000u;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec == now)
		ms -= (uint64_t)ts.tv_nsec / 1000000u;
	return ms;
}

/* A binding just added is due at due (tmr_clock_ms): the expiry thread, asleep until later, is woken
 * to plan again. Rare, as the bindings of a server mostly end later than the earliest pending one;
 * two atomic loads otherwise. Called with a shard locked (the thread takes pause_lock with none). */
static void note_due(struct loc *l, uint64_t due)
{
	uint64_t least = atomic_load(&l->added_min);

	while (due < least && !atomic_compare_exchange_weak(&l->added_min, &least, due))
		;
	if (due < atomic_load(&l->planned_ms)) {
		pthread_mutex_lock(&l->pause_lock);
		pthread_cond_signal(&l->pause);
		pthread_mutex_unlock(&l->pause_lock);
	}
}

static struct binding *binding_new(struct loc *l, struct loc_shard *s, struct aor *a, const struct store_binding *sb,
				   int64_t now)
{
	uint64_t now_ms, delay;
	const char *f[7] = { sb->contact, sb->received, sb->path, sb->call_id, sb->user_agent, sb->instance, sb->local };
	size_t len[7], total = 0;
	struct binding *b;
	char *p;

	for (int i = 0; i < 7; i++)
		total += (len[i] = strlen(f[i])) + 1;
	b = pool_alloc(l->pool, sizeof(*b) + total);
	if (!b)
		return NULL;
	p = b->data;
	for (int i = 0; i < 7; i++) {
		memcpy(p, f[i], len[i] + 1);
		f[i] = p;
		p += len[i] + 1;
	}
	b->contact = f[0];
	b->received = f[1];
	b->path = f[2];
	b->call_id = f[3];
	b->user_agent = f[4];
	b->instance = f[5];
	b->local = f[6];
	b->aor = a;
	b->cseq = sb->cseq;
	b->q = sb->q;
	b->expires = sb->expires;
	b->updated = sb->updated;
	b->seq = sb->seq;
	/* from the wheel's time, which the expiry thread moves only on its passes: a delay from the
	 * clock's now would end the binding early by as much as the wheel lags */
	now_ms = tmr_clock_ms();
	delay = expiry_delay_ms(sb->expires, now);
	tmr_start(s->wheel, &b->expiry, now_ms - tmr_wheel_now(s->wheel) + delay, on_expiry, l);
	note_due(l, now_ms + delay);
	atomic_fetch_add(&l->count, 1);
	return b;
}

static void aor_remove_if_empty(struct loc *l, struct loc_shard *s, struct aor *a)
{
	if (a->head)
		return;
	htab_remove(&s->aors, &a->link);
	pool_release(l->pool, a);
}

/* The store's deletion of an expired binding, as the registrar is told of it. */
static void expired_change(struct store_change *c, const struct aor *a, const struct binding *b)
{
	c->op = STORE_BINDING_DEL;
	c->b.seq = b->seq; /* its row; the store reads the whole table for one without */
	slice_copy(c->b.aor, sizeof(c->b.aor), slice_cstr(a->name));
	slice_copy(c->b.contact, sizeof(c->b.contact), slice_cstr(b->contact));
}

/* Runs inside tmr_wheel_advance, with the shard locked by the expiry thread. */
static void on_expiry(struct tmr *t, void *arg)
{
	struct binding *b = (struct binding *)((char *)t - offsetof(struct binding, expiry));
	struct aor *a = b->aor;
	struct loc *l = arg;
	struct loc_shard *s = shard_of(l, a->link.hash);
	struct binding **pp;

	for (pp = &a->head; *pp && *pp != b; pp = &(*pp)->next)
		;
	if (!*pp)
		return;
	*pp = b->next;
	if (s->expired && s->nexpired < EXPIRED_BATCH)
		expired_change(&s->expired[s->nexpired++], a, b);
	log_debug("location: %s -> %s expired", a->name, b->contact);
	binding_free(l, b);
	aor_remove_if_empty(l, s, a);
}

/* ---- the table ---- */

int loc_new(struct loc **lp, loc_expired_h *expired, void *arg)
{
	struct loc *l = calloc(1, sizeof(*l));
	uint64_t now = tmr_clock_ms();
	pthread_condattr_t ca;

	if (!l || pool_new(&l->pool)) {
		free(l);
		return ENOMEM;
	}
	l->expired_h = expired;
	l->arg = arg;
	pthread_mutex_init(&l->pause_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the pause's deadline is on that clock */
	pthread_cond_init(&l->pause, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < LOC_SHARDS; i++) {
		struct loc_shard *s = &l->shards[i];

		pthread_mutex_init(&s->lock, NULL);
		if (htab_init(&s->aors, 64, AOR_BUCKETS_MAX, LOC_SHARD_BITS) || tmr_wheel_new(&s->wheel, now)) {
			loc_free(l);
			return ENOMEM;
		}
	}
	*lp = l;
	return 0;
}

/* How long the expiry thread sleeps between passes: until the earliest timer of any shard, or until a
 * binding added with an earlier end wakes it (note_due), at most PASS_MAX_MS. Each pass locks every
 * shard and reads its wheel, cold: a fixed tick of 200 ms cost a loaded server more than one
 * microsecond a registration for bindings an hour away, and a pass a second still about a millisecond
 * of CPU a second on an idle virtual machine. */
#define PASS_MIN_MS 10
#define PASS_MAX_MS 60000

static void *expiry_main(void *arg)
{
	struct loc *l = arg;
	struct store_change *batch = calloc(EXPIRED_BATCH, sizeof(*batch));

	pthread_setname_np(pthread_self(), "sipd-expiry"); /* top -H, ps -L */

	while (batch && !atomic_load(&l->stopping)) {
		int64_t next = PASS_MAX_MS;
		struct timespec until;
		uint64_t wake_at;

		atomic_store(&l->added_min, UINT64_MAX); /* what is added from here on, note_due records */
		for (unsigned i = 0; i < LOC_SHARDS && !atomic_load(&l->stopping); i++) {
			struct loc_shard *s = &l->shards[i];
			int64_t d;
			size_t n;

			pthread_mutex_lock(&s->lock);
			s->expired = batch;
			s->nexpired = 0;
			tmr_wheel_advance(s->wheel, tmr_clock_ms());
			n = s->nexpired;
			s->expired = NULL;
			/* told under the lock, so that a REGISTER that binds the same contact again right after
			 * reaches the disk after this deletion, not before it (a 200 whose binding a restart loses) */
			if (n && l->expired_h)
				l->expired_h(batch, n, l->arg);
			d = tmr_wheel_next(s->wheel);
			pthread_mutex_unlock(&s->lock);
			if (d >= 0 && d < next)
				next = d;
		}
		if (next < PASS_MIN_MS)
			next = PASS_MIN_MS;
		wake_at = tmr_clock_ms() + (uint64_t)next;
		tmr_deadline(&until, (uint64_t)next * 1000u);
		pthread_mutex_lock(&l->pause_lock);
		/* planned before added_min is read: a binding added after this store sees it and wakes us; one
		 * added before it is in added_min, and due earlier than wake_at, it takes another pass now */
		atomic_store(&l->planned_ms, wake_at);
		if (!atomic_load(&l->stopping) && atomic_load(&l->added_min) >= wake_at)
			pthread_cond_timedwait(&l->pause, &l->pause_lock, &until);
		atomic_store(&l->planned_ms, 0);
		pthread_mutex_unlock(&l->pause_lock);
	}
	free(batch);
	return NULL;
}

int loc_start(struct loc *l)
{
	int err = pthread_create(&l->thread, NULL, expiry_main, l);

	l->running = err == 0;
	return err;
}

void loc_free(struct loc *l)
{
	if (!l)
		return;
	if (l->running) {
		pthread_mutex_lock(&l->pause_lock);
		atomic_store(&l->stopping, true);
		pthread_cond_signal(&l->pause);
		pthread_mutex_unlock(&l->pause_lock);
		pthread_join(l->thread, NULL);
	}
	for (unsigned i = 0; i < LOC_SHARDS; i++) {
		struct loc_shard *s = &l->shards[i];

		for (struct htab_link *k = htab_next(&s->aors, NULL), *next; k; k = next) {
			struct aor *a = (struct aor *)k;

			next = htab_next(&s->aors, k);
			while (a->head) {
				struct binding *b = a->head;

				a->head = b->next;
				binding_free(l, b);
			}
			pool_release(l->pool, a);
		}
		htab_free(&s->aors);
		tmr_wheel_free(s->wheel);
		pthread_mutex_destroy(&s->lock);
	}
	pthread_cond_destroy(&l->pause);
	pthread_mutex_destroy(&l->pause_lock);
	pool_free(l->pool);
	free(l);
}

struct loc_held loc_lock(struct loc *l, const char *aor)
{
	struct loc_held h = { .l = l, .aor = aor, .hash = aor_hash(aor) };

	pthread_mutex_lock(&shard_of(l, h.hash)->lock);
	return h;
}

void loc_unlock(const struct loc_held *h)
{
	pthread_mutex_unlock(&shard_of(h->l, h->hash)->lock);
}

size_t loc_get_locked(const struct loc_held *h, struct store_binding *out, size_t max, int64_t now)
{
	struct aor *a = aor_find(shard_of(h->l, h->hash), h->aor, h->hash);
	size_t n = 0;

	for (struct binding *b = a ? a->head : NULL; b; b = b->next) {
		if (b->expires <= now)
			continue; /* its timer has not run yet: already gone for everyone */
		if (n < max)
			binding_export(b, h->aor, &out[n]);
		n++;
	}
	return n;
}

/* Under the lock: a binding past its end that a change of its AOR replaces before its timer ran goes as
 * the timer would have let it go (logged, and taken off the disk, before the change that replaces it). */
static void binding_expired_now(struct loc *l, const struct aor *a, const struct binding *b)
{
	struct store_change c;

	if (!l->expired_h)
		return;
	expired_change(&c, a, b);
	l->expired_h(&c, 1, l->arg);
}

int loc_set_locked(const struct loc_held *h, const struct store_binding *sb, size_t n, int64_t now)
{
	struct loc *l = h->l;
	struct loc_shard *s = shard_of(l, h->hash);
	struct aor *a = aor_find(s, h->aor, h->hash);
	struct binding *fresh = NULL, **tail = &fresh;

	if (!a && n == 0)
		return 0;
	if (!a && !(a = aor_new(l, s, h->aor, h->hash)))
		return ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct binding *b = binding_new(l, s, a, &sb[i], now);

		if (!b) {
			while (fresh) {
				struct binding *next = fresh->next;

				binding_free(l, fresh);
				fresh = next;
			}
			aor_remove_if_empty(l, s, a);
			return ENOMEM;
		}
		*tail = b;
		tail = &b->next;
	}
	while (a->head) {
		struct binding *b = a->head;

		a->head = b->next;
		if (b->expires <= now)
			binding_expired_now(l, a, b); /* its timer has not run yet: expired all the same */
		binding_free(l, b);
	}
	a->head = fresh;
	aor_remove_if_empty(l, s, a);
	return 0;
}

size_t loc_lookup(struct loc *l, const char *aor, struct store_binding *out, size_t max, int64_t now)
{
	struct loc_held h = loc_lock(l, aor);
	size_t n = loc_get_locked(&h, out, max, now);

	loc_unlock(&h);
	return n;
}

int loc_put(struct loc *l, const struct store_binding *b, int64_t now)
{
	uint32_t h = aor_hash(b->aor);
	struct loc_shard *s = shard_of(l, h);
	struct aor *a;
	struct binding *nb;
	int err = 0;

	if (b->expires <= now)
		return 0;
	pthread_mutex_lock(&s->lock);
	a = aor_find(s, b->aor, h);
	if (!a)
		a = aor_new(l, s, b->aor, h);
	if (!a || !(nb = binding_new(l, s, a, b, now))) {
		err = ENOMEM;
	} else {
		nb->next = a->head;
		a->head = nb;
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

void loc_foreach(struct loc *l, store_binding_h *cb, void *arg)
{
	struct store_binding *sb = malloc(sizeof(*sb));
	int64_t now = (int64_t)time(NULL);

	for (unsigned i = 0; sb && i < LOC_SHARDS; i++) {
		struct loc_shard *s = &l->shards[i];

		pthread_mutex_lock(&s->lock);
		for (struct htab_link *k = htab_next(&s->aors, NULL); k; k = htab_next(&s->aors, k)) {
			const struct aor *a = (const struct aor *)k;

			for (struct binding *b = a->head; b; b = b->next)
				if (b->expires > now) {
					binding_export(b, a->name, sb);
					cb(sb, arg);
				}
		}
		pthread_mutex_unlock(&s->lock);
	}
	free(sb);
}

unsigned loc_shard_count(void)
{
	return LOC_SHARDS;
}

void loc_walk_shard(struct loc *l, unsigned shard, loc_walk_h *cb, void *arg)
{
	struct loc_shard *s = &l->shards[shard % LOC_SHARDS];
	int64_t now = (int64_t)time(NULL);

	pthread_mutex_lock(&s->lock);
	for (struct htab_link *k = htab_next(&s->aors, NULL); k; k = htab_next(&s->aors, k)) {
		const struct aor *a = (const struct aor *)k;

		for (const struct binding *b = a->head; b; b = b->next)
			if (b->expires > now)
				cb(a->name, b->contact, b->received, b->path, b->local, arg);
	}
	pthread_mutex_unlock(&s->lock);
}

size_t loc_count(struct loc *l)
{
	return atomic_load(&l->count);
}
