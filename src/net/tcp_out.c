/* tcp_out.c: what goes out on TCP: writes from any thread (direct when the socket takes them,
 * else queued and flushed by the owner on EPOLLOUT), outbound connects, and tp_send's TCP half.
 *
 * A message is written whole under the connection's lock, so messages from several threads
 * never interleave. A connection is opened by the worker that will own it; another thread
 * hands the bytes over in a posted job.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/timer.h"
#include "net/net_private.h"

#define TCP_OBUF_KEEP 16384 /* output buffers above this are given back once flushed */

/* Under lock: queues bytes that the socket did not take. A connection may hold TP_TCP_OUT_MAX, and all
 * together tcp_max_conns times TP_TCP_OUT_SHARE: a thousand peers that do not read cannot make sipd hold
 * a thousand megabytes; the one that would pass either is closed. */
static int conn_obuf_append(struct tp_conn *c, const char *buf, size_t len)
{
	struct tp *tp = c->w->tp;
	size_t all = (size_t)tp->cfg.tcp_max_conns * TP_TCP_OUT_SHARE;

	if (c->olen + len > TP_TCP_OUT_MAX || (all && atomic_load(&tp->tcp_queued) + len > all))
		return ENOBUFS;
	if (c->ooff + c->olen + len > c->osize) {
		if (c->ooff) {
			memmove(c->obuf, c->obuf + c->ooff, c->olen);
			c->ooff = 0;
		}
		if (c->olen + len > c->osize) {
			size_t size = c->osize ? c->osize : 4096;
			char *p;

			while (size < c->olen + len)
				size *= 2;
			p = realloc(c->obuf, size);
			if (!p)
				return ENOMEM;
			c->obuf = p;
			c->osize = size;
		}
	}
	memcpy(c->obuf + c->ooff + c->olen, buf, len);
	c->olen += len;
	atomic_fetch_add(&tp->tcp_queued, len);
	return 0;
}

/* Any thread: writes what the socket takes now, queues the rest for EPOLLOUT. A message is
 * written whole under the lock, so messages from several threads never interleave. elsewhere: the
 * message may go to another address instead (tp__tcp_send), so a connection whose peer has sent its
 * FIN answers ENOTCONN: a client that closed altogether looks the same on the wire as one that only
 * stopped sending, and one that listens elsewhere (its Via's sent-by port) is reached there (18.2.2),
 * where the bytes cannot be lost to its RST. */
static int conn_write(struct tp_conn *c, const char *buf, size_t len, bool elsewhere)
{
	bool poke = false;
	int err = 0;

	pthread_mutex_lock(&c->lock);
	if (c->fd < 0 || c->closing || c->kill || (elsewhere && c->peer_done)) {
		err = ENOTCONN;
		goto out;
	}
	while (len && !c->olen && !c->connecting) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			err = errno;
			goto fail;
		}
		buf += n;
		len -= (size_t)n;
		atomic_store(&c->tx_ms, tmr_clock_ms());
	}
	if (!len)
		goto out;
	err = conn_obuf_append(c, buf, len);
	if (err)
		goto fail; /* a peer that does not read gets closed rather than fed our memory */
	if (!(c->events & EPOLLOUT) && loop_fd_mod(c->w->loop, c->fd, c->events | EPOLLOUT) == 0)
		c->events |= EPOLLOUT;
	goto out;
fail:
	tp__conn_fail(c, err);
	poke = true;
out:
	pthread_mutex_unlock(&c->lock);
	if (poke)
		tp__conn_poke(c);
	return err;
}

int tp__conn_write(struct tp_conn *c, const char *buf, size_t len)
{
	return conn_write(c, buf, len, false);
}

/* Owner thread, on EPOLLOUT (or an error): finishes a connect, writes queued output. */
void tp__conn_flush(struct tp_conn *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->fd < 0)
		goto out;
	if (c->connecting) {
		socklen_t len = sizeof(int), alen = sizeof(c->local.u);
		int soerr = 0;

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			char as[64];

			log_debug("tcp: connect to %s: %s", tp_addr_str(&c->peer, as, sizeof(as)), strerror(soerr));
			tp__conn_fail(c, soerr);
			goto out;
		}
		c->connecting = false;
		if (getsockname(c->fd, &c->local.u.sa, &alen) == 0)
			c->local.len = alen;
	}
	while (c->olen) {
		ssize_t n = send(c->fd, c->obuf + c->ooff, c->olen, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				tp__conn_fail(c, errno);
			break;
		}
		c->ooff += (size_t)n;
		c->olen -= (size_t)n;
		atomic_fetch_sub(&c->w->tp->tcp_queued, (size_t)n);
		atomic_store(&c->tx_ms, tmr_clock_ms());
	}
	if (!c->olen) {
		c->ooff = 0;
		if (c->osize > TCP_OBUF_KEEP) {
			free(c->obuf);
			c->obuf = NULL;
			c->osize = 0;
		}
	}
out:
	pthread_mutex_unlock(&c->lock);
}

/* Owner thread: a new outbound connection to dst, carrying buf once it is up. Those sipd opens count
 * against tcp_max_conns as the accepted ones do, apart: a request routed to a new address each time
 * (in-dialog requests name any next hop) must not take every descriptor. */
static int conn_connect_send(struct tp_worker *w, const struct tp_addr *dst, const char *buf, size_t len)
{
	unsigned max = w->tp->cfg.tcp_max_conns;
	struct tp_conn *c;
	bool connecting = false;
	char as[64];
	int fd, err;

	if (!tp__conn_slot_take(&w->tp->tcp_outbound, max)) {
		log_debug("tcp: no connection to %s: %u opened already", tp_addr_str(dst, as, sizeof(as)), max);
		return EMFILE;
	}
	fd = socket(dst->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = errno;
		goto give_back;
	}
	if (connect(fd, &dst->u.sa, tp__addr_len(dst)) < 0) {
		if (errno != EINPROGRESS) {
			err = errno;
			close(fd);
			log_debug("tcp: connect to %s: %s", tp_addr_str(dst, as, sizeof(as)), strerror(err));
			goto give_back;
		}
		connecting = true;
	}
	err = tp__conn_new(w, fd, dst, false, connecting, &c);
	if (err)
		goto give_back;
	return tp__conn_write(c, buf, len);
give_back:
	atomic_fetch_sub(&w->tp->tcp_outbound, 1);
	return err;
}

/* Owner thread: sends on the connection to dst, opening one if there is none. */
static int conn_send_to(struct tp_worker *w, const struct tp_addr *dst, const char *buf, size_t len)
{
	struct tp_conn *c = tp__tcp_table_lookup(w->tp, dst);
	int err = ENOTCONN;

	if (c) {
		err = tp__conn_write(c, buf, len);
		mem_deref(c);
	}
	if (err == ENOTCONN)
		err = conn_connect_send(w, dst, buf, len);
	return err;
}

struct connect_job {
	struct tp_worker *w;
	struct tp_addr dst;
	size_t len;
	char data[];
};

static void connect_job_h(void *arg)
{
	struct connect_job *j = arg;

	/* run by loop_free after the worker stopped: nothing to do but free */
	if (tp__self == j->w && !atomic_load(&j->w->tp->stopping))
		conn_send_to(j->w, &j->dst, j->data, j->len);
	free(j);
}

/* Connections are opened by their owner, so another thread hands the bytes over. */
static int connect_post(struct tp_worker *w, const struct tp_addr *dst, const char *buf, size_t len)
{
	struct connect_job *j = malloc(sizeof(*j) + len);
	int err;

	if (!j)
		return ENOMEM;
	j->w = w;
	j->dst = *dst;
	j->len = len;
	if (len)
		memcpy(j->data, buf, len);
	err = loop_post(w->loop, connect_job_h, j);
	if (err)
		free(j);
	return err;
}

int tp__tcp_send(struct tp *tp, struct tp_worker *w, struct tp_conn *conn, const struct tp_addr *dst,
		 const char *buf, size_t len)
{
	struct tp_conn *c;
	int err;

	if (conn) {
		err = conn_write(conn, buf, len, dst && !tp_addr_eq(dst, &conn->peer));
		if (err != ENOTCONN || !dst)
			return err;
	}
	if (!dst)
		return EINVAL;
	c = tp__tcp_table_lookup(tp, dst);
	if (c) {
		err = tp__conn_write(c, buf, len);
		mem_deref(c);
		if (err != ENOTCONN)
			return err;
	}
	if (atomic_load(&tp->stopping))
		return ESHUTDOWN;
	w = tp__worker_in(tp, w);
	if (tp__self == w)
		return conn_connect_send(w, dst, buf, len);
	return connect_post(w, dst, buf, len);
}

/* Under lock: the holder's entry, or NULL; entries past their time are dropped on the way. */
static struct tp_keeper *keeper_find(struct tp_conn *c, uint32_t holder, uint64_t now)
{
	struct tp_keeper *found = NULL;

	for (unsigned k = 0; k < c->nkeepers;) {
		if (c->keepers[k].until <= now && c->keepers[k].holder != holder) {
			c->keepers[k] = c->keepers[--c->nkeepers];
			continue;
		}
		if (c->keepers[k].holder == holder)
			found = &c->keepers[k];
		k++;
	}
	return found;
}

void tp_conn_keep(struct tp_conn *c, uint32_t holder, unsigned seconds)
{
	uint64_t now = tmr_clock_ms(), until = now + (uint64_t)seconds * 1000, keep, before;
	struct tp_keeper *e;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	before = atomic_load(&c->keep_ms);
	e = holder ? keeper_find(c, holder, now) : NULL;
	if (e && seconds)
		e->until = until;
	else if (e)
		*e = c->keepers[--c->nkeepers];
	else if (holder && seconds && c->nkeepers < TP_CONN_KEEPERS)
		c->keepers[c->nkeepers++] = (struct tp_keeper){ holder, until };
	else if (seconds && until > c->keep_any)
		c->keep_any = until;
	keep = c->keep_any;
	for (unsigned k = 0; k < c->nkeepers; k++)
		if (c->keepers[k].until > keep)
			keep = c->keepers[k].until;
	atomic_store(&c->keep_ms, keep);
	pthread_mutex_unlock(&c->lock);
	if (keep < before && before > now)
		tp__conn_keep_lowered(c); /* the idle timer may be waiting for the old end */
}

void tp_conn_close(struct tp_conn *c)
{
	bool now = false;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->fd >= 0 && !c->closing) {
		c->closing = true;
		now = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (!now)
		return;
	tp__tcp_table_remove(c->w->tp, c); /* new sends to this peer get a new connection */
	tp__conn_poke(c);
}
