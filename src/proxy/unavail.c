/* unavail.c: next hops left alone after 503 with Retry-After. A linear table of UNAVAIL_MAX entries
 * under one mutex: it is touched only by branches to next hops located by DNS, and a scan of 64
 * entries costs less than the DNS cache lookup before it. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "proxy/unavail.h"

struct hop {
	struct tp_addr addr;
	enum tp_proto proto;
	uint64_t until_ms; /* 0: a free slot */
};

struct unavail {
	pthread_mutex_t lock;
	struct hop hops[UNAVAIL_MAX];
};

int unavail_new(struct unavail **up)
{
	struct unavail *u = calloc(1, sizeof(*u));
	int err;

	if (!u)
		return ENOMEM;
	err = pthread_mutex_init(&u->lock, NULL);
	if (err) {
		free(u);
		return err;
	}
	*up = u;
	return 0;
}

void unavail_free(struct unavail *u)
{
	if (!u)
		return;
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static bool same_hop(const struct hop *h, enum tp_proto proto, const struct tp_addr *addr)
{
	return h->until_ms && h->proto == proto && tp_addr_eq(&h->addr, addr);
}

void unavail_mark(struct unavail *u, enum tp_proto proto, const struct tp_addr *addr, uint64_t until_ms)
{
	struct hop *slot = NULL;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < UNAVAIL_MAX; i++) {
		struct hop *h = &u->hops[i];

		if (same_hop(h, proto, addr)) {
			slot = h;
			break;
		}
		/* otherwise the free slot, or the one whose wait ends first (an ended wait ends first) */
		if (!slot || h->until_ms < slot->until_ms)
			slot = h;
	}
	*slot = (struct hop){ .addr = *addr, .proto = proto, .until_ms = until_ms };
	pthread_mutex_unlock(&u->lock);
}

uint64_t unavail_left(struct unavail *u, enum tp_proto proto, const struct tp_addr *addr, uint64_t now_ms)
{
	uint64_t left = 0;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < UNAVAIL_MAX; i++) {
		struct hop *h = &u->hops[i];

		if (!same_hop(h, proto, addr))
			continue;
		if (h->until_ms > now_ms)
			left = h->until_ms - now_ms;
		else
			h->until_ms = 0; /* its wait is over: the slot is free again */
		break;
	}
	pthread_mutex_unlock(&u->lock);
	return left;
}
