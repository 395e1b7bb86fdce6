/* calls.c: call records in a sharded table keyed by Call-ID; one line per call in the log at its end. */
#include "proxy/calls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

#define CALL_SHARDS 64
#define CALL_BUCKETS 256

#define EXPIRE_PER_CALL 4 /* expired records taken each time a call starts or is answered */

struct call {
	struct call *next;
	struct call *aprev, *anext; /* the shard's answered calls, oldest answer first */
	uint32_t hash;
	struct timespec start, answer;
	time_t answer_mono;         /* for max_duration: not moved by changes of the wall clock */
	bool answered;
	char *call_id, *from, *to; /* into data */
	char data[];
};

struct call_shard {
	pthread_mutex_t lock;
	struct call *b[CALL_BUCKETS];
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
	for (unsigned i = 0; i < CALL_SHARDS; i++)
		pthread_mutex_init(&c->shards[i].lock, NULL);
	*cp = c;
	return 0;
}

void calls_free(struct calls *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CALL_SHARDS; i++) {
		for (unsigned k = 0; k < CALL_BUCKETS; k++)
			for (struct call *x = c->shards[i].b[k], *n; x; x = n) {
				n = x->next;
				free(x);
			}
		pthread_mutex_destroy(&c->shards[i].lock);
	}
	free(c);
}

static struct call **find(struct calls *c, struct slice id, uint32_t h, struct call_shard **sp)
{
	struct call_shard *s = &c->shards[h % CALL_SHARDS];
	struct call **pp = &s->b[(h / CALL_SHARDS) % CALL_BUCKETS];

	*sp = s;
	while (*pp && !((*pp)->hash == h && slice_eq(slice_cstr((*pp)->call_id), id)))
		pp = &(*pp)->next;
	return pp;
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

/* The link of x's bucket chain that points at it (x is in the table). */
static struct call **link_of(struct call_shard *s, const struct call *x)
{
	struct call **pp = &s->b[(x->hash / CALL_SHARDS) % CALL_BUCKETS];

	while (*pp != x)
		pp = &(*pp)->next;
	return pp;
}

/* Takes the record *pp points at out of its bucket chain and, when answered, out of the answered list;
 * under the lock. */
static void call_unlink(struct calls *c, struct call_shard *s, struct call **pp)
{
	struct call *x = *pp;

	*pp = x->next;
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
 * *out (linked by next), to be logged and freed after it. */
static struct call *expired_take(struct calls *c, struct call_shard *s)
{
	struct call *out = NULL, *x;
	time_t now;

	if (!c->max_duration || !s->ahead)
		return NULL;
	now = mono_now();
	for (unsigned i = 0; i < EXPIRE_PER_CALL && (x = s->ahead) && now - x->answer_mono >= (time_t)c->max_duration;
	     i++) {
		call_unlink(c, s, link_of(s, x));
		x->next = out;
		out = x;
	}
	return out;
}

static void expired_free(struct call *x)
{
	for (struct call *n; x; x = n) {
		n = x->next;
		log_unended(x, "no BYE within max_call_duration");
		free(x);
	}
}

void calls_start(struct calls *c, struct slice call_id, struct slice from, struct slice to)
{
	uint32_t h = slice_hash(call_id, 0xca11);
	struct call_shard *s;
	struct call **pp, *x;

	if (atomic_load(&c->active) >= c->max) {
		atomic_fetch_add(&c->unrecorded, 1);
		return;
	}
	x = calloc(1, sizeof(*x) + call_id.l + from.l + to.l + 3);
	if (!x)
		return;
	x->hash = h;
	x->call_id = x->data;
	memcpy(x->call_id, call_id.p, call_id.l);
	x->from = x->call_id + call_id.l + 1;
	memcpy(x->from, from.p, from.l);
	x->to = x->from + from.l + 1;
	memcpy(x->to, to.p, to.l);
	clock_gettime(CLOCK_REALTIME, &x->start);
	s = &c->shards[h % CALL_SHARDS];
	pthread_mutex_lock(&s->lock);
	pp = find(c, call_id, h, &s);
	if (*pp) {
		free(x); /* a second fork of the same call (a spiral): one record */
	} else {
		*pp = x;
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
	struct call **pp, *x, *gone = NULL, *expired;

	pthread_mutex_lock(&s->lock);
	pp = find(c, call_id, h, &s);
	if ((x = *pp) && !x->answered) {
		clock_gettime(CLOCK_REALTIME, &x->answer);
		if (on_path) {
			x->answered = true;
			x->answer_mono = mono_now();
			answered_append(s, x);
		} else {
			call_unlink(c, s, pp); /* its BYE will not come this way: logged below */
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
	struct call **pp, *x;
	struct timespec now;

	pthread_mutex_lock(&s->lock);
	pp = find(c, call_id, h, &s);
	x = *pp;
	if (x && (ended ? x->answered : !x->answered)) {
		call_unlink(c, s, pp);
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
