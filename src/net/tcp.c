/* tcp.c: TCP connections: accept, lifetime, framing of the byte stream into messages, the idle
 * timeout. What goes out (writes from any thread, connects) is in tcp_out.c.
 *
 * Ownership: a connection belongs to the worker that accepted or opened it. Only that worker
 * reads it, runs its idle timer and closes its fd (conn_drop); other threads only write to it,
 * under the connection's lock, and ask the owner to act by posting conn_update to its loop.
 * The owner's list holds one reference; every other holder (a posted job, the layer above)
 * takes its own with mem_ref.
 *
 * Input: a connection with no partial message pending reads into its worker's scratch buffer
 * and frames messages in place; only a trailing partial message is copied into the
 * connection's own buffer, which grows up to max_msg_size and no further. Idle connections
 * therefore cost no buffer at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "net/net_private.h"

#define TCP_IBUF_MIN 4096     /* smallest input buffer; larger ones are given back once empty */
#define TCP_ACCEPTS 64        /* per wake-up */
#define TCP_READS 8           /* per wake-up, so one busy peer cannot starve the rest */
#define TCP_LINGER_MS 2000    /* how long a closing connection waits for the peer's FIN */
#define TCP_MSG_MS 32000      /* default tcp_msg_timeout_ms: 64*T1 at the default T1 */
#define TCP_HALF_CHECK_MS 250 /* after the peer's FIN: how often to look whether anything is still owed */

static void conn_update(struct tp_conn *c);

static bool conn_on_owner(const struct tp_conn *c)
{
	return tp__self == c->w;
}

static void conn_destroy(void *arg)
{
	struct tp_conn *c = arg;

	if (c->fd >= 0) /* NEVER: conn_drop closes it, conn_new's failure path too */
		close(c->fd);
	free(c->ibuf);
	free(c->obuf);
	pthread_mutex_destroy(&c->lock);
}

static void conn_idle_h(struct tmr *t, void *arg);

static void conn_idle_arm(struct tp_conn *c, uint64_t ms)
{
	if (ms)
		tmr_start_lazy(loop_timers(c->w->loop), &c->idle, ms, conn_idle_h, c); /* no one waits on it */
}

static uint64_t conn_idle_ms(const struct tp_conn *c)
{
	return (uint64_t)c->w->tp->cfg.tcp_idle_timeout_s * 1000;
}

static uint64_t conn_msg_ms(const struct tp_conn *c)
{
	unsigned ms = c->w->tp->cfg.tcp_msg_timeout_ms;

	return ms ? ms : TCP_MSG_MS;
}

/* When the unfinished message must have ended (loop ms), 0 when there is none. */
static uint64_t conn_msg_end(const struct tp_conn *c)
{
	return c->partial_since ? c->partial_since + conn_msg_ms(c) : 0;
}

/* Owner thread, after a read: the idle time counts from now, but a message begun and not finished must
 * end within conn_msg_ms of its first byte, however slowly its bytes come (a slowloris client would
 * otherwise hold its connection, and its buffer of up to max_message_size, for ever with a byte now
 * and then). */
static void conn_after_read(struct tp_conn *c)
{
	uint64_t now = loop_now(c->w->loop), idle = conn_idle_ms(c), end, left;

	if (!c->ilen) {
		c->partial_since = 0;
		conn_idle_arm(c, idle);
		return;
	}
	if (!c->partial_since)
		c->partial_since = now;
	end = conn_msg_end(c);
	left = end > now ? end - now : 1;
	conn_idle_arm(c, left < idle ? left : idle);
}

/* Under lock: see net_private.h. */
void tp__conn_fail(struct tp_conn *c, int err)
{
	if (!c->err)
		c->err = err;
	c->kill = true;
}

/* Owner thread, no lock held: tells the layer above that c failed (lost: it was up, RFC 3261 17.1.4). */
static void conn_tell(struct tp_conn *c, int err, bool lost)
{
	struct tp *tp = c->w->tp;

	if (tp->cfg.unreachable && !atomic_load(&tp->stopping))
		tp->cfg.unreachable(TP_TCP, &c->peer, err, lost, tp->cfg.arg);
}

/* Owner thread: closes now, output or not, and lets the owner's reference go. A connection that failed
 * (c->err) is told to the layer above: one that never connected as unreachable, one that was up as lost
 * (RFC 3261 17.1.4: what was sent on it and not answered yet will not be). Not one sipd was closing on
 * purpose: it left the table already, and a new connection to that peer may carry requests of its own. */
static void conn_drop(struct tp_conn *c)
{
	struct tp_worker *w = c->w;
	char as[64];
	bool lost;
	int err;

	pthread_mutex_lock(&c->lock);
	if (c->fd < 0) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	loop_fd_del(w->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	atomic_fetch_sub(&w->tp->tcp_queued, c->olen);
	c->olen = 0;
	err = c->closing || c->peer_done ? 0 : c->err; /* a peer_done one was told at the FIN */
	lost = !c->connecting;
	pthread_mutex_unlock(&c->lock);

	tp__tcp_table_remove(w->tp, c);
	tmr_cancel(&c->idle);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	atomic_fetch_sub(c->inbound ? &w->tp->tcp_inbound : &w->tp->tcp_outbound, 1);
	log_debug("tcp: %s closed%s%s", tp_addr_str(&c->peer, as, sizeof(as)), err ? ": " : "",
		  err ? strerror(err) : "");
	if (err)
		conn_tell(c, err, lost);
	mem_deref(c);
}

static void conn_update_job(void *arg)
{
	struct tp_conn *c = arg;

	/* when the loop is being freed the owner has dropped every connection already */
	if (conn_on_owner(c))
		conn_update(c);
	mem_deref(c);
}

/* Any thread: have the owner look at c's state (closing, kill) on its next iteration. */
void tp__conn_poke(struct tp_conn *c)
{
	if (loop_post(c->w->loop, conn_update_job, mem_ref(c))) {
		/* the idle timer or the next I/O event will see the state instead */
		log_warn("tcp: cannot post to worker %u", c->w->idx);
		mem_deref(c);
	}
}

/* The kernel probes a silent connection after idle seconds, then every idle/4 (at least 1 s, at most
 * 30 s), and gives up after 3 unanswered probes: a phone that vanished without a FIN (powered off, its
 * NAT's mapping gone) fails its connection in about idle + 3 intervals instead of at the next write's
 * retransmission timeout, and a NAT on the way sees traffic on a registered phone's idle flow. */
static void keepalive_set(int fd, unsigned idle)
{
	int intvl = (int)(idle / 4 < 1 ? 1 : idle / 4 > 30 ? 30 : idle / 4);

	if (!idle)
		return;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &(int){ 1 }, sizeof(int));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &(int){ (int)idle }, sizeof(int));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(int));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &(int){ 3 }, sizeof(int));
}

/* Owner thread, under lock, output all written: half-close and keep reading for a moment.
 * Closing a socket with unread input makes the kernel send RST, and a RST can destroy the
 * response still in flight (the 413 to a peer that sent too much); waiting for the peer's FIN,
 * discarding what it still sends, lets that response arrive. */
static void conn_linger(struct tp_conn *c)
{
	if (c->lingering)
		return;
	c->lingering = true;
	shutdown(c->fd, SHUT_WR);
	if (loop_fd_mod(c->w->loop, c->fd, EPOLLIN) == 0)
		c->events = EPOLLIN;
	tmr_start(loop_timers(c->w->loop), &c->idle, TCP_LINGER_MS, conn_idle_h, c);
}

/* Owner thread: brings epoll's interest in line with the state, or closes. */
static void conn_update(struct tp_conn *c)
{
	bool drop = false;
	uint32_t want;

	pthread_mutex_lock(&c->lock);
	if (c->fd < 0) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (c->kill) {
		drop = true;
	} else if (c->closing && !c->olen) {
		conn_linger(c);
	} else {
		want = (c->closing || c->peer_done ? 0 : EPOLLIN) | (c->olen || c->connecting ? EPOLLOUT : 0);
		if (want != c->events && loop_fd_mod(c->w->loop, c->fd, want) == 0)
			c->events = want;
	}
	pthread_mutex_unlock(&c->lock);
	if (drop)
		conn_drop(c);
}

static bool conn_readable(struct tp_conn *c)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = c->fd >= 0 && !c->closing && !c->kill && !c->peer_done;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* The connection in the table for peer, referenced, or NULL. */
static struct tp_conn *conn_of_peer(struct tp_worker *w, const struct tp_addr *peer)
{
	struct tp *tp = w ? w->tp : tp__default();

	return tp && peer ? tp__tcp_table_lookup(tp, peer) : NULL;
}

bool tp_conn_standing(struct tp_worker *w, const struct tp_addr *peer)
{
	struct tp_conn *c = conn_of_peer(w, peer);
	bool up = c && conn_readable(c);

	mem_deref(c);
	return up;
}

void tp_conn_keep_at(struct tp_worker *w, const struct tp_addr *peer, uint32_t holder, unsigned seconds)
{
	struct tp_conn *c = conn_of_peer(w, peer);

	tp_conn_keep(c, holder, seconds);
	mem_deref(c);
}

static void conn_deliver(struct tp_conn *c, char *p, size_t len, bool oversize, bool unframed)
{
	struct tp *tp = c->w->tp;
	struct tp_msg msg;

	msg.buf = p;
	msg.len = len;
	msg.proto = TP_TCP;
	msg.src = c->peer;
	msg.local = c->local;
	msg.lsn = TP_LSN_ANY; /* the connection is the way back */
	msg.conn = c;
	msg.worker = c->w;
	msg.oversize = oversize;
	msg.unframed = unframed;
	tp->cfg.recv(&msg, tp->cfg.arg);
}

/* RFC 5626 4.4.1: a client pings with CRLFCRLF and expects CRLF back; RFC 3261 7.5 lets stray
 * CRLFs precede a message. Returns the bytes to skip (4 for a ping), 0 to wait for more, or -1
 * when p starts with something else. */
static int crlf_skip(const char *p, size_t n)
{
	static const char ping[4] = { '\r', '\n', '\r', '\n' };
	size_t k = n < 4 ? n : 4;

	if (p[0] != '\r')
		return -1;
	if (memcmp(p, ping, k) == 0)
		return k == 4 ? 4 : 0;
	return n >= 2 && p[1] == '\n' ? 2 : -1;
}

/* Owner thread: delivers every complete message at the start of buf. Returns the bytes used, or
 * -1 when the connection stops reading (closed, closing, or told to close by a callback). */
static long conn_frame(struct tp_conn *c, char *buf, size_t len)
{
	struct tp *tp = c->w->tp;
	size_t off = 0;

	while (off < len) {
		char *p = buf + off;
		size_t rest = len - off;
		int skip = crlf_skip(p, rest);
		long r;

		if (skip == 0)
			break;
		if (skip > 0) {
			if (skip == 4)
				tp__conn_write(c, "\r\n", 2);
			off += (size_t)skip;
			continue;
		}
		r = tp->cfg.frame(p, rest, tp->max_msg);
		if (r == 0 && rest >= tp->max_msg)
			r = TP_FRAME_TOO_BIG; /* no message may need more than max_msg_size bytes */
		if (r == 0)
			break;
		if (r > 0 && (size_t)r <= rest) {
			conn_deliver(c, p, (size_t)r, false, false);
			off += (size_t)r;
			if (!conn_readable(c))
				return -1;
			continue;
		}
		if (r == TP_FRAME_TOO_BIG) {
			/* the layer above answers (413) on c; then c closes once that is written */
			conn_deliver(c, p, rest, true, false);
			tp_conn_close(c);
			return -1;
		}
		/* TP_FRAME_BAD, or a framer claiming bytes that are not there: where the next message starts is
		 * unknown, so nothing more is read. The layer above may answer what arrived (a 400 naming the
		 * defect); what it sent is written before the close, and the connection counts as lost. */
		conn_deliver(c, p, rest, false, true);
		conn_tell(c, EPROTO, true);
		tp_conn_close(c);
		return -1;
	}
	return (long)off;
}

/* Owner thread: keeps the tail of a read that holds a partial message (len < max_msg). */
static int conn_keep(struct tp_conn *c, const char *p, size_t len)
{
	size_t max = c->w->tp->max_msg;

	if (c->isize < len) {
		size_t size = len < TCP_IBUF_MIN ? TCP_IBUF_MIN : len * 2;
		char *b;

		if (size > max)
			size = max;
		b = malloc(size);
		if (!b)
			return ENOMEM;
		free(c->ibuf);
		c->ibuf = b;
		c->isize = size;
	}
	memmove(c->ibuf, p, len);
	c->ilen = len;
	return 0;
}

/* Owner thread: room to read into: the scratch buffer, or the tail of the pending message. */
static int conn_room(struct tp_conn *c, char **p, size_t *room)
{
	size_t max = c->w->tp->max_msg;

	if (!c->ilen) {
		*p = c->w->scratch;
		*room = TP_TCP_SCRATCH;
		return 0;
	}
	if (c->isize - c->ilen < TCP_IBUF_MIN && c->isize < max) {
		size_t size = c->isize * 2 < max ? c->isize * 2 : max;
		char *b = realloc(c->ibuf, size);

		if (!b)
			return ENOMEM;
		c->ibuf = b;
		c->isize = size;
	}
	*p = c->ibuf + c->ilen;
	*room = c->isize - c->ilen; /* >= 1: conn_frame never leaves max_msg bytes pending */
	return 0;
}

/* Owner thread: frames what the last read brought (n bytes at p) and keeps any partial tail. */
static int conn_consume(struct tp_conn *c, char *p, size_t n)
{
	char *buf = c->ilen ? c->ibuf : p;
	size_t len = c->ilen ? c->ilen + n : n;
	long used = conn_frame(c, buf, len);

	if (used < 0)
		return EPIPE;
	if ((size_t)used == len) {
		c->ilen = 0;
		if (c->isize > TCP_IBUF_MIN) {
			free(c->ibuf);
			c->ibuf = NULL;
			c->isize = 0;
		}
		return 0;
	}
	return conn_keep(c, buf + used, len - (size_t)used);
}

/* Owner thread, at the peer's FIN and every TCP_HALF_CHECK_MS after: closes once nothing is queued and
 * no one but the owner's list (and the caller, caller_refs) holds the connection (out of the table, no
 * one can take a new reference: each transaction that may still answer on it holds one), or once it has
 * been idle for the idle timeout. */
static void conn_half_check(struct tp_conn *c, unsigned caller_refs)
{
	uint64_t now = loop_now(c->w->loop), tx = atomic_load(&c->tx_ms), idle = conn_idle_ms(c);
	bool queued;

	pthread_mutex_lock(&c->lock);
	queued = c->olen != 0;
	pthread_mutex_unlock(&c->lock);
	if ((!queued && mem_nrefs(c) == 1 + caller_refs) || (idle && now > tx && now - tx >= idle)) {
		conn_drop(c);
		return;
	}
	conn_idle_arm(c, TCP_HALF_CHECK_MS);
}

/* Owner thread: the peer's FIN. It sends nothing more, but may still read: a client that half-closes
 * after its request (shutdown(SHUT_WR), as `nc -N` does) waits for the answer, and 18.2.2 sends a
 * response on the connection its request came on while that is open (unless it may go where the client
 * listens instead: tp__tcp_send). So the connection leaves the table (a new request to that peer opens
 * a new connection), the layer above hears that nothing sent on it will be answered (17.1.4: client
 * transactions on it fail now, not at their timeout), and it stays open for writing until no
 * transaction holds it any more and its output is written (conn_half_check). A message begun and not
 * finished is lost. */
static void conn_peer_done(struct tp_conn *c)
{
	char as[64];

	pthread_mutex_lock(&c->lock);
	c->peer_done = true;
	if (c->events & EPOLLIN && loop_fd_mod(c->w->loop, c->fd, c->events & ~(uint32_t)EPOLLIN) == 0)
		c->events &= ~(uint32_t)EPOLLIN;
	pthread_mutex_unlock(&c->lock);
	if (c->ilen)
		log_debug("tcp: %s closed its side within a message of %zu bytes", tp_addr_str(&c->peer, as, sizeof(as)),
			  c->ilen);
	free(c->ibuf); /* nothing more is read into it */
	c->ibuf = NULL;
	c->ilen = c->isize = 0;
	c->partial_since = 0;
	atomic_store(&c->tx_ms, loop_now(c->w->loop)); /* conn_half_check's idle time counts from the FIN */
	tp__tcp_table_remove(c->w->tp, c);
	conn_tell(c, EPIPE, true);
	conn_half_check(c, 1); /* most often no one holds it (a peer that closed, owed nothing): closed now */
}

static void conn_read(struct tp_conn *c)
{
	for (unsigned i = 0; i < TCP_READS && conn_readable(c); i++) {
		size_t room;
		ssize_t n;
		char *p;

		if (conn_room(c, &p, &room))
			goto kill;
		n = recv(c->fd, p, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0) {
			conn_peer_done(c);
			return;
		}
		if (n < 0) {
			/* reset: what the peer had not finished is lost, and so is what sipd still owes it */
			int err = errno;

			pthread_mutex_lock(&c->lock);
			tp__conn_fail(c, err);
			pthread_mutex_unlock(&c->lock);
			conn_drop(c);
			return;
		}
		if (conn_consume(c, p, (size_t)n) == ENOMEM)
			goto kill;
		if (c->fd >= 0)
			conn_after_read(c);
		if ((size_t)n < room)
			return; /* drained for now */
	}
	return;
kill:
	pthread_mutex_lock(&c->lock);
	tp__conn_fail(c, ENOMEM);
	pthread_mutex_unlock(&c->lock);
}

/* Owner thread, lingering: discards input until the peer's FIN (or an error) ends it. */
static void conn_linger_read(struct tp_conn *c)
{
	for (unsigned i = 0; i < TCP_READS; i++) {
		ssize_t n = recv(c->fd, c->w->scratch, TP_TCP_SCRATCH, 0);

		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_drop(c);
		return;
	}
}

static void conn_io_h(int fd, uint32_t events, void *arg)
{
	struct tp_conn *c = mem_ref(arg); /* callbacks may close it under us */

	(void)fd;
	if (c->lingering) {
		conn_linger_read(c);
		mem_deref(c);
		return;
	}
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		tp__conn_flush(c);
	if (c->peer_done && events & (EPOLLERR | EPOLLHUP)) {
		conn_drop(c); /* reset after its FIN: nothing owed can reach it; not read, so not seen otherwise */
		mem_deref(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_read(c);
	conn_update(c);
	mem_deref(c);
}

static void conn_idle_h(struct tmr *t, void *arg)
{
	struct tp_conn *c = arg;
	char as[64];

	(void)t;
	if (c->peer_done && !c->lingering) {
		conn_half_check(c, 0);
		return;
	}
	/* writes from other threads cannot touch the timer, so they leave their time instead */
	if (!c->lingering) {
		uint64_t idle = conn_idle_ms(c), now = loop_now(c->w->loop), tx = atomic_load(&c->tx_ms);
		uint64_t since = now > tx ? now - tx : 0; /* another thread's clock may be ahead */
		uint64_t keep = atomic_load(&c->keep_ms);
		/* open until the idle time or the keep ends, whichever is later; looked at again then */
		uint64_t idle_left = since < idle ? idle - since : 0, keep_left = keep > now ? keep - now : 0;
		uint64_t left = idle_left > keep_left ? idle_left : keep_left;
		uint64_t end = conn_msg_end(c);

		if (end && now >= end) {
			log_info("tcp: %s left a message unfinished for %llu ms, closing",
				 tp_addr_str(&c->peer, as, sizeof(as)), (unsigned long long)conn_msg_ms(c));
			conn_drop(c);
			return;
		}
		if (left) {
			conn_idle_arm(c, end && end - now < left ? end - now : left);
			return;
		}
	}
	log_debug("tcp: %s %s, closing", tp_addr_str(&c->peer, as, sizeof(as)),
		  c->lingering ? "gave no FIN" : "idle");
	conn_drop(c);
}

/* Owner thread: a holder let go of the connection from another thread (tp_conn_keep), while its idle
 * timer waits for the old end of the keep: the timer is looked at again now. */
static void conn_keep_job(void *arg)
{
	struct tp_conn *c = arg;
	bool open;

	if (conn_on_owner(c)) {
		pthread_mutex_lock(&c->lock);
		open = c->fd >= 0 && !c->closing && !c->kill;
		pthread_mutex_unlock(&c->lock);
		if (open && !c->peer_done && !c->lingering)
			conn_idle_h(&c->idle, c);
	}
	mem_deref(c);
}

void tp__conn_keep_lowered(struct tp_conn *c)
{
	if (loop_post(c->w->loop, conn_keep_job, mem_ref(c)))
		mem_deref(c); /* the keep's old end comes, and the idle timer sees the lower keep then */
}

/* Owner thread: wraps a connected (or connecting) socket; takes fd in every case. */
int tp__conn_new(struct tp_worker *w, int fd, const struct tp_addr *peer, bool inbound, bool connecting,
		 struct tp_conn **cp)
{
	socklen_t alen = sizeof(((struct tp_addr *)0)->u);
	struct tp_conn *c;
	int err;

	c = mem_zalloc(sizeof(*c), conn_destroy);
	if (!c) {
		close(fd);
		return ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->w = w;
	c->fd = fd;
	c->peer = *peer;
	c->connecting = connecting;
	c->events = EPOLLIN | (connecting ? EPOLLOUT : 0);
	if (getsockname(fd, &c->local.u.sa, &alen) == 0)
		c->local.len = alen;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	keepalive_set(fd, w->tp->cfg.tcp_keepalive_s);
	err = loop_fd_add(w->loop, fd, c->events, conn_io_h, c);
	if (err) {
		mem_deref(c); /* closes fd */
		return err;
	}
	c->inbound = inbound;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	tp__tcp_table_insert(w->tp, c);
	conn_idle_arm(c, conn_idle_ms(c));
	*cp = c;
	return 0;
}

/* EMFILE: accept with the spare fd and close at once, so the listener stops firing for a
 * connection we cannot take. accept fails with EMFILE before it looks at the queue, so the accept
 * after the one that took the last descriptor fails too: only a connection taken here is refused. */
static void accept_shed(struct tp_worker *w, int lfd)
{
	int fd;

	if (w->spare_fd < 0 && (w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		return; /* another thread took the descriptor it gave back: the next wake-up tries again */
	close(w->spare_fd);
	fd = accept(lfd, NULL, NULL);
	if (fd >= 0) {
		/* a flood of them would flood the log: one line a second per worker, with the count */
		static _Thread_local uint64_t logged_ms;
		static _Thread_local unsigned refused;
		uint64_t now = loop_now(w->loop);

		close(fd);
		refused++;
		if (now - logged_ms >= 1000) {
			log_warn("tcp: out of file descriptors, refused %u connection(s)", refused);
			logged_ms = now;
			refused = 0;
		}
	}
	w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_one(struct tp_worker *w, int fd, const struct tp_addr *peer)
{
	struct tp *tp = w->tp;
	unsigned max = tp->cfg.tcp_max_conns;
	struct tp_conn *c;
	char as[64];

	if (!tp__conn_slot_take(&tp->tcp_inbound, max)) {
		close(fd);
		log_debug("tcp: %s refused, %u connections open", tp_addr_str(peer, as, sizeof(as)), max);
		return;
	}
	if (tp__conn_new(w, fd, peer, true, false, &c)) {
		atomic_fetch_sub(&tp->tcp_inbound, 1);
		return;
	}
	log_debug("tcp: %s accepted by worker %u", tp_addr_str(peer, as, sizeof(as)), w->idx);
}

void tp__tcp_accept_h(int fd, uint32_t events, void *arg)
{
	struct tp_sock *s = arg;

	(void)events;
	for (unsigned i = 0; i < TCP_ACCEPTS; i++) {
		struct tp_addr peer = { .len = sizeof(peer.u) };
		int cfd = accept4(fd, &peer.u.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd >= 0) {
			accept_one(s->w, cfd, &peer);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE)
			accept_shed(s->w, fd);
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			log_warn("tcp: accept: %s", strerror(errno));
		return;
	}
}

void tp__tcp_worker_close(struct tp_worker *w)
{
	while (w->conns)
		conn_drop(w->conns);
}
