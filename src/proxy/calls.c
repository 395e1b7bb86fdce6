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

struct call {
	struct call *next;
	uint32_t hash;
	struct timespec start, answer;
	bool answered;
	char *call_id, *from, *to; /* into data */
	char data[];
};

struct call_shard {
	pthread_mutex_t lock;
	struct call *b[CALL_BUCKETS];
};

struct calls {
	size_t max;
	atomic_size_t active;
	atomic_size_t unrecorded;
	struct call_shard shards[CALL_SHARDS];
};

int calls_new(struct calls **cp, size_t max)
{
	struct calls *c = calloc(1, sizeof(*c));

	if (!c)
		return ENOMEM;
	c->max = max;
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
	pthread_mutex_unlock(&s->lock);
}

void calls_answered(struct calls *c, struct slice call_id)
{
	uint32_t h = slice_hash(call_id, 0xca11);
	struct call_shard *s = &c->shards[h % CALL_SHARDS];
	struct call **pp;

	pthread_mutex_lock(&s->lock);
	pp = find(c, call_id, h, &s);
	if (*pp && !(*pp)->answered) {
		(*pp)->answered = true;
		clock_gettime(CLOCK_REALTIME, &(*pp)->answer);
	}
	pthread_mutex_unlock(&s->lock);
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
		*pp = x->next;
		atomic_fetch_sub(&c->active, 1);
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
