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

#include "base/htab.h"
#include "base/mem.h"
#include "base/slice.h"
#include "net/net_private.h"

#define TABLE_MIN 1024
#define TABLE_MAX (1u << 20) /* past a million connections the chains just get longer */

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

	pthread_mutex_init(&t->lock, NULL); /* first: tp__tcp_table_free runs on every way out */
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)tp;
	return htab_init(&t->map, TABLE_MIN, TABLE_MAX, 0);
}

/* After every connection is gone. */
void tp__tcp_table_free(struct tp *tp)
{
	htab_free(&tp->conns.map);
	pthread_mutex_destroy(&tp->conns.lock);
}

void tp__tcp_table_insert(struct tp *tp, struct tp_conn *c)
{
	struct tp_conn_table *t = &tp->conns;

	c->link.hash = addr_hash(&c->peer, t->seed);
	pthread_mutex_lock(&t->lock);
	htab_add(&t->map, &c->link);
	c->in_table = true;
	pthread_mutex_unlock(&t->lock);
}

void tp__tcp_table_remove(struct tp *tp, struct tp_conn *c)
{
	struct tp_conn_table *t = &tp->conns;

	pthread_mutex_lock(&t->lock);
	if (c->in_table) {
		htab_remove(&t->map, &c->link);
		c->in_table = false;
	}
	pthread_mutex_unlock(&t->lock);
}

struct tp_conn *tp__tcp_table_lookup(struct tp *tp, const struct tp_addr *peer)
{
	struct tp_conn_table *t = &tp->conns;
	uint32_t h = addr_hash(peer, t->seed);
	struct htab_link *l;

	pthread_mutex_lock(&t->lock);
	for (l = htab_chain(&t->map, h); l; l = l->next)
		if (l->hash == h && tp_addr_eq(&((struct tp_conn *)l)->peer, peer))
			break;
	mem_ref(l);
	pthread_mutex_unlock(&t->lock);
	return (struct tp_conn *)l;
}
