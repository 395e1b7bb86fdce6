/* tcp_table.c: TCP connections by peer address, so that a send naming only a destination reuses
 * an open connection (RFC 3261 18.1.1: reuse the connection to the same address and port).
 *
 * One mutex guards it. It is touched when a connection opens or closes and when a send names no
 * connection, never on the receive path. The table holds no reference: a connection leaves it
 * before its owner lets the last owner reference go, so finding it under the lock is enough to
 * take one.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "base/mem.h"
#include "base/slice.h"
#include "net/net_private.h"

#define TABLE_MIN 1024

static uint32_t addr_hash(const struct tp_addr *a, uint32_t seed)
{
	struct slice host, port;

	if (a->u.sa.sa_family == AF_INET6) {
		host = slice_make((const char *)&a->u.in6.sin6_addr, sizeof(a->u.in6.sin6_addr));
		port = slice_make((const char *)&a->u.in6.sin6_port, sizeof(a->u.in6.sin6_port));
	} else {
		host = slice_make((const char *)&a->u.in.sin_addr, sizeof(a->u.in.sin_addr));
		port = slice_make((const char *)&a->u.in.sin_port, sizeof(a->u.in.sin_port));
	}
	return slice_hash(port, slice_hash(host, seed));
}

int tp__tcp_table_init(struct tp *tp)
{
	struct tp_conn_table *t = &tp->conns;

	pthread_mutex_init(&t->lock, NULL);
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)tp;
	t->buckets = calloc(TABLE_MIN, sizeof(*t->buckets));
	if (!t->buckets)
		return ENOMEM;
	t->nbuckets = TABLE_MIN;
	return 0;
}

/* After every connection is gone. */
void tp__tcp_table_free(struct tp *tp)
{
	free(tp->conns.buckets);
	tp->conns.buckets = NULL;
	pthread_mutex_destroy(&tp->conns.lock);
}

/* Under lock: doubles the buckets; on failure the chains just grow longer. */
static void table_grow(struct tp_conn_table *t)
{
	size_t n = t->nbuckets * 2;
	struct tp_conn **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct tp_conn *c = t->buckets[i];
			size_t j = addr_hash(&c->peer, t->seed) & (n - 1);

			t->buckets[i] = c->hnext;
			c->hnext = b[j];
			b[j] = c;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

void tp__tcp_table_insert(struct tp *tp, struct tp_conn *c)
{
	struct tp_conn_table *t = &tp->conns;
	size_t i;

	pthread_mutex_lock(&t->lock);
	if (t->count >= t->nbuckets * 2)
		table_grow(t);
	i = addr_hash(&c->peer, t->seed) & (t->nbuckets - 1);
	c->hnext = t->buckets[i];
	t->buckets[i] = c;
	c->in_table = true;
	t->count++;
	pthread_mutex_unlock(&t->lock);
}

void tp__tcp_table_remove(struct tp *tp, struct tp_conn *c)
{
	struct tp_conn_table *t = &tp->conns;

	pthread_mutex_lock(&t->lock);
	if (c->in_table) {
		struct tp_conn **pp = &t->buckets[addr_hash(&c->peer, t->seed) & (t->nbuckets - 1)];

		while (*pp && *pp != c)
			pp = &(*pp)->hnext;
		if (*pp) /* ALWAYS */
			*pp = c->hnext;
		c->hnext = NULL;
		c->in_table = false;
		t->count--;
	}
	pthread_mutex_unlock(&t->lock);
}

struct tp_conn *tp__tcp_table_lookup(struct tp *tp, const struct tp_addr *peer)
{
	struct tp_conn_table *t = &tp->conns;
	struct tp_conn *c;

	pthread_mutex_lock(&t->lock);
	c = t->buckets[addr_hash(peer, t->seed) & (t->nbuckets - 1)];
	while (c && !tp_addr_eq(&c->peer, peer))
		c = c->hnext;
	mem_ref(c);
	pthread_mutex_unlock(&t->lock);
	return c;
}
