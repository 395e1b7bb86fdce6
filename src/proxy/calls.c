/* calls.c: call records in a sharded table keyed by Call-ID; one line per call in the log at its end. */
#include "proxy/calls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/htab.h"
#include "base/log.h"

#define CALL_SHARD_BITS 6
#define CALL_SHARDS (1u << CALL_SHARD_BITS) /* by the Call-ID hash's low bits; the chains use the rest */
#define CALL_BUCKETS_MAX (1u << 16)          /* per shard: 4M in all */

#define CALL_ID_MAX 256  /* a longer Call-ID (none a phone makes) is not recorded */
#define CALL_URI_MAX 256 /* From and To URIs kept for the log, cut there */
#define EXPIRE_PER_CALL 4 /* expired records taken each time a call starts or is answered */

struct call {
	struct htab_link link;      /* first: the shard's chain, and the Call-ID's hash */
	struct call *aprev, *anext; /* the shard's answered calls, oldest answer first; once out of the
				     * table, a list of records to log */
	struct timespec start, answer;
	time_t answer_mono;         /* for max_duration: not moved by changes of the wall clock */
	bool answered;
	/* per side (0 caller, 1 callee): the pin its peer's requests were signed toward, and where a
	 * target refresh moved it (calls_refresh); lengths 0 when unknown */
	char pin[2][CALLS_PIN_MAX], now[2][CALLS_PIN_MAX];
	uint8_t pin_len[2], now_len[2];
	char *call_id, *from, *to; /* into data */
	char data[];
};

struct call_shard {
	pthread_mutex_t lock;
	struct htab calls;          /* of struct call */
	struct call *ahead, *atail; /* answered calls in answer order */
};

struct calls {
	size_t max;
	unsigned max_duration;
	atomic_size_t active;
	atomic_size_t unrecorded;
	struct call_shard shards[CALL_SHARDS];
};

int calls_new(struct calls **cp, size_t max, unsigned max_duration_s)
{
	struct calls *c = calloc(1, sizeof(*c));

	if (!c)
		return ENOMEM;
	c->max = max;
	c->max_duration = max_duration_s;
	for (unsigned i = 0; i < CALL_SHARDS; i++) {
		if (htab_init(&c->shards[i].calls, 64, CALL_BUCKETS_MAX, CALL_SHARD_BITS)) {
			while (i--)
				htab_free(&c->shards[i].calls);
			free(c);
			return ENOMEM;
		}
		pthread_mutex_init(&c->shards[i].lock, NULL);
	}
	*cp = c;
	return 0;
}

void calls_free(struct calls *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CALL_SHARDS; i++) {
		struct htab *t = &c->shards[i].calls;

		for (struct htab_link *x = htab_next(t, NULL), *next; x; x = next) {
			next = htab_next(t, x);
			free(x);
		}
		htab_free(t);
		pthread_mutex_destroy(&c->shards[i].lock);
	}
	free(c);
}

/* Under s's lock. */
static struct call *find(struct call_shard *s, struct slice id, uint32_t h)
{
	for (struct htab_link *l = htab_chain(&s->calls, h); l; l = l->next)
		if (l->hash == h && slice_eq(slice_cstr(((struct call *)l)->call_id), id))
			return (struct call *)l;
	return NULL;
}

static time_t mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

static void answered_unlink(struct call_shard *s, struct call *x)
{
	if (x->aprev)
		x->aprev->anext = x->anext;
	else
		s->ahead = x->anext;
	if (x->anext)
		x->anext->aprev = x->aprev;
	else
		s->atail = x->aprev;
	x->aprev = x->anext = NULL;
}

static void answered_append(struct call_shard *s, struct call *x)
{
	x->aprev = s->atail;
	x->anext = NULL;
	if (s->atail)
		s->atail->anext = x;
	else
		s->ahead = x;
	s->atail = x;
}

/* Takes x out of its chain and, when answered, out of the answered list; under the lock. */
static void call_unlink(struct calls *c, struct call_shard *s, struct call *x)
{
	htab_remove(&s->calls, &x->link);
	if (x->answered)
		answered_unlink(s, x);
	atomic_fetch_sub(&c->active, 1);
}

static void log_unended(const struct call *x, const char *why)
{
	log_info("call: id=%s from=%s to=%s start=%lld answer=%lld end=unknown status=200 (%s)", x->call_id,
		 x->from, x->to, (long long)x->start.tv_sec, (long long)x->answer.tv_sec, why);
}

/* Up to EXPIRE_PER_CALL answered calls of s older than max_duration: taken out under the lock into
 * a list (linked by anext), to be logged and freed after it. */
static struct call *expired_take(struct calls *c, struct call_shard *s)
{
	struct call *out = NULL, *x;
	time_t now;

	if (!c->max_duration || !s->ahead)
		return NULL;
	now = mono_now();
	for (unsigned i = 0; i < EXPIRE_PER_CALL && (x = s->ahead) && now - x->answer_mono >= (time_t)c->max_duration;
	     i++) {
		call_unlink(c, s, x);
		x->anext = out;
		out = x;
	}
	return out;
}

static void expired_free(struct call *x)
{
	for (struct call *n; x; x = n) {
		n = x->anext;
		log_unended(x, "no BYE within max_call_duration");
		free(x);
	}
}

void calls_expire(struct calls *c)
{
	for (unsigned i = 0; i < CALL_SHARDS; i++) {
		struct call_shard *s = &c->shards[i];
		struct call *x;

		for (;;) {
			pthread_mutex_lock(&s->lock);
			x = expired_take(c, s);
			pthread_mutex_unlock(&s->lock);
			if (!x)
				break;
			expired_free(x);
		}
	}
}

void calls_start(struct calls *c, struct slice call_id, struct slice from, struct slice to)
{
	uint32_t h = slice_hash(call_id, 0xca11);
	struct call_shard *s = &c->shards[h % CALL_SHARDS];
	struct call *x;

	if (atomic_load(&c->active) >= c->max || call_id.l > CALL_ID_MAX) {
		atomic_fetch_add(&c->unrecorded, 1);
		return;
	}
	/* a record may live for max_call_duration (12 hours): its URIs are kept as the log shows them, cut
	 * to CALL_URI_MAX, so that calls with 40 kB From URIs cannot hold 40 kB each for that long */
	from.l = from.l > CALL_URI_MAX ? CALL_URI_MAX : from.l;
	to.l = to.l > CALL_URI_MAX ? CALL_URI_MAX : to.l;
	x = calloc(1, sizeof(*x) + call_id.l + from.l + to.l + 3);
	if (!x)
		return;
	x->link.hash = h;
	x->call_id = x->data;
	memcpy(x->call_id, call_id.p, call_id.l);
	x->from = x->call_id + call_id.l + 1;
	memcpy(x->from, from.p, from.l);
	x->to = x->from + from.l + 1;
	memcpy(x->to, to.p, to.l);
	clock_gettime(CLOCK_REALTIME, &x->start);
	pthread_mutex_lock(&s->lock);
	if (find(s, call_id, h)) {
		free(x); /* a second fork of the same call (a spiral): one record */
	} else {
		htab_add(&s->calls, &x->link);
		atomic_fetch_add(&c->active, 1);
	}
	x = expired_take(c, s);
	pthread_mutex_unlock(&s->lock);
	expired_free(x);
}

void calls_answered(struct calls *c, struct slice call_id, bool on_path)
{
	uint32_t h = slice_hash(call_id, 0xca11);
	struct call_shard *s = &c->shards[h % CALL_SHARDS];
	struct call *x, *gone = NULL, *expired;

	pthread_mutex_lock(&s->lock);
	if ((x = find(s, call_id, h)) && !x->answered) {
		clock_gettime(CLOCK_REALTIME, &x->answer);
		if (on_path) {
			x->answered = true;
			x->answer_mono = mono_now();
			answered_append(s, x);
		} else {
			call_unlink(c, s, x); /* its BYE will not come this way: logged below */
			gone = x;
		}
	}
	expired = expired_take(c, s);
	pthread_mutex_unlock(&s->lock);
	if (gone) {
		log_unended(gone, "no Record-Route: its BYE does not pass sipd");
		free(gone);
	}
	expired_free(expired);
}

/* Takes the record out of the table and logs its line. */
static void finish(struct calls *c, struct slice call_id, unsigned status, bool ended)
{
	uint32_t h = slice_hash(call_id, 0xca11);
	struct call_shard *s = &c->shards[h % CALL_SHARDS];
	struct call *x;
	struct timespec now;

	pthread_mutex_lock(&s->lock);
	x = find(s, call_id, h);
	if (x && (ended ? x->answered : !x->answered)) {
		call_unlink(c, s, x);
	} else {
		x = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (!x)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	if (ended)
		log_info("call: id=%s from=%s to=%s start=%lld answer=%lld end=%lld status=200 duration=%llds",
			 x->call_id, x->from, x->to, (long long)x->start.tv_sec, (long long)x->answer.tv_sec,
			 (long long)now.tv_sec, (long long)(now.tv_sec - x->answer.tv_sec));
	else
		log_info("call: id=%s from=%s to=%s start=%lld end=%lld status=%u (not answered)", x->call_id,
			 x->from, x->to, (long long)x->start.tv_sec, (long long)now.tv_sec, status);
	free(x);
}

void calls_failed(struct calls *c, struct slice call_id, unsigned status)
{
	finish(c, call_id, status, false);
}

void calls_ended(struct calls *c, struct slice call_id)
{
	finish(c, call_id, 200, true);
}

size_t calls_active(struct calls *c)
{
	return atomic_load(&c->active);
}

static bool pin_is(const char *pin, uint8_t len, struct slice s)
{
	return len && s.l == len && !memcmp(pin, s.p, len);
}

static void pin_set(char *pin, uint8_t *len, struct slice s)
{
	memcpy(pin, s.p, s.l);
	*len = (uint8_t)s.l;
}

void calls_signed_toward(struct calls *c, struct slice call_id, unsigned side, struct slice pin)
{
	uint32_t h = slice_hash(call_id, 0xca11);
	struct call_shard *s = &c->shards[h % CALL_SHARDS];
	struct call *x;

	if (side > 1 || !pin.l || pin.l > CALLS_PIN_MAX)
		return;
	pthread_mutex_lock(&s->lock);
	if ((x = find(s, call_id, h)) && !x->pin_len[side])
		pin_set(x->pin[side], &x->pin_len[side], pin);
	pthread_mutex_unlock(&s->lock);
}

bool calls_refresh(struct calls *c, struct slice call_id, struct slice target, struct slice contact)
{
	uint32_t h = slice_hash(call_id, 0xca11);
	struct call_shard *s = &c->shards[h % CALL_SHARDS];
	bool known = false;
	struct call *x;

	if (!contact.l || contact.l > CALLS_PIN_MAX)
		return false;
	pthread_mutex_lock(&s->lock);
	if ((x = find(s, call_id, h)) && x->pin_len[0] && x->pin_len[1]) {
		for (unsigned to = 0; to < 2 && !known; to++) {
			/* sent toward side to (where it began or where it moved): the sender is the other */
			if (pin_is(x->pin[to], x->pin_len[to], target) || pin_is(x->now[to], x->now_len[to], target)) {
				pin_set(x->now[1 - to], &x->now_len[1 - to], contact);
				known = true;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	return known;
}

size_t calls_moved(struct calls *c, struct slice call_id, struct slice target, char was[CALLS_PIN_MAX])
{
	uint32_t h = slice_hash(call_id, 0xca11);
	struct call_shard *s = &c->shards[h % CALL_SHARDS];
	size_t n = 0;
	struct call *x;

	pthread_mutex_lock(&s->lock);
	if ((x = find(s, call_id, h)))
		for (unsigned k = 0; k < 2 && !n; k++)
			if (pin_is(x->now[k], x->now_len[k], target) && x->pin_len[k]) {
				memcpy(was, x->pin[k], x->pin_len[k]);
				n = x->pin_len[k];
			}
	pthread_mutex_unlock(&s->lock);
	return n;
}
