/* transport.c: starting and stopping the workers, their SO_REUSEPORT sockets, tp_send's dispatch,
 * and the address helpers. UDP lives in udp.c, TCP in tcp.c.
 *
 * Every worker binds its own socket for every listener, so the kernel spreads datagrams and
 * connections over the workers and the receive path shares no lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/log.h"
#include "base/slice.h"
#include "net/net_private.h"

#define TP_DEFAULT_MAX_MSG 65535
#define TP_LISTEN_BACKLOG 1024
#define TP_UDP_RCVBUF (4 << 20)

_Thread_local struct tp_worker *tp__self;

/* The most recently started transport: where a send that names no worker and no connection
 * goes when it comes from a thread that is not a worker. */
static _Atomic(struct tp *) tp_last;

struct tp *tp__default(void)
{
	return tp__self ? tp__self->tp : atomic_load(&tp_last);
}

socklen_t tp__addr_len(const struct tp_addr *a)
{
	if (a->len)
		return a->len;
	return a->u.sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int sock_opt(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val)) < 0 ? errno : 0;
}

/* Binds a plain socket without SO_REUSEPORT and lets it go: SO_REUSEPORT would happily share
 * the port with another process of the same user, so "port in use" shows up only here. */
static int sock_probe(const struct tp_listen *l)
{
	char as[64];
	int fd, err = 0;

	fd = socket(l->addr.u.sa.sa_family, l->proto == TP_UDP ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0)
		return errno;
	if (l->proto == TP_TCP)
		sock_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1); /* TIME_WAIT leftovers are no conflict */
	if (l->addr.u.sa.sa_family == AF_INET6)
		sock_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	if (bind(fd, &l->addr.u.sa, tp__addr_len(&l->addr)) < 0) {
		err = errno;
		log_err("tp: cannot bind %s %s: %s", tp_proto_name(l->proto),
			tp_addr_str(&l->addr, as, sizeof(as)), strerror(err));
	}
	close(fd);
	return err;
}

static int sock_setup(int fd, const struct tp_listen *l)
{
	bool v6 = l->addr.u.sa.sa_family == AF_INET6;
	int err;

	err = sock_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!err)
		err = sock_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (!err && v6)
		err = sock_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	if (err || l->proto != TP_UDP)
		return err;
	err = v6 ? sock_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) : sock_opt(fd, IPPROTO_IP, IP_PKTINFO, 1);
	/* ICMP errors for what sipd sends (port or host unreachable) come back on the error queue */
	if (!err)
		err = v6 ? sock_opt(fd, IPPROTO_IPV6, IPV6_RECVERR, 1) : sock_opt(fd, IPPROTO_IP, IP_RECVERR, 1);
	if (sock_opt(fd, SOL_SOCKET, SO_RCVBUF, TP_UDP_RCVBUF))
		log_debug("tp: SO_RCVBUF not raised"); /* the default works, only bursts suffer */
	return err;
}

/* Opens, binds and registers one worker's socket for listener l. */
static int sock_open(struct tp_worker *w, struct tp_sock *s, const struct tp_listen *l)
{
	socklen_t len = sizeof(s->local.u);
	char as[64];
	int err;

	s->w = w;
	s->proto = l->proto;
	s->fd = socket(l->addr.u.sa.sa_family,
		       (l->proto == TP_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return errno;
	err = sock_setup(s->fd, l);
	if (!err && bind(s->fd, &l->addr.u.sa, tp__addr_len(&l->addr)) < 0) {
		err = errno;
		log_err("tp: cannot bind %s %s: %s", tp_proto_name(l->proto),
			tp_addr_str(&l->addr, as, sizeof(as)), strerror(err));
	}
	if (!err && l->proto == TP_TCP && listen(s->fd, TP_LISTEN_BACKLOG) < 0)
		err = errno;
	if (!err && getsockname(s->fd, &s->local.u.sa, &len) < 0)
		err = errno;
	s->local.len = len;
	s->wild = !err && l->proto == TP_UDP && tp_addr_is_any(&s->local);
	if (!err)
		err = loop_fd_add(w->loop, s->fd, EPOLLIN,
				  l->proto == TP_UDP ? tp__udp_recv_h : tp__tcp_accept_h, s);
	return err;
}

static int worker_init(struct tp *tp, struct tp_worker *w, unsigned idx)
{
	int err;

	w->tp = tp;
	w->idx = idx;
	w->udp4 = w->udp6 = -1;
	w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (unsigned i = 0; i < TP_LISTEN_MAX; i++)
		w->socks[i].fd = -1;
	err = loop_new(&w->loop);
	if (!err)
		err = tp__udp_init(w);
	if (!err) {
		w->scratch = malloc(TP_TCP_SCRATCH);
		err = w->scratch ? 0 : ENOMEM;
	}
	for (unsigned i = 0; !err && i < tp->cfg.nlisten; i++) {
		const struct tp_listen *l = &tp->cfg.listen[i];
		int *ufd = l->addr.u.sa.sa_family == AF_INET6 ? &w->udp6 : &w->udp4;

		err = sock_open(w, &w->socks[i], l);
		w->nsocks = i + 1;
		if (!err && l->proto == TP_UDP && *ufd < 0)
			*ufd = w->socks[i].fd;
	}
	return err;
}

/* After the thread (if any) has been joined. */
static void worker_free(struct tp_worker *w)
{
	for (unsigned i = 0; i < w->nsocks; i++)
		if (w->socks[i].fd >= 0)
			close(w->socks[i].fd);
	loop_free(w->loop); /* jobs still posted run now and let their references go */
	tp__udp_free(w);
	free(w->scratch);
	if (w->spare_fd >= 0)
		close(w->spare_fd);
}

static void *worker_main(void *arg)
{
	struct tp_worker *w = arg;
	const struct tp_config *cfg = &w->tp->cfg;

	pthread_setname_np(pthread_self(), "sipd-worker"); /* top -H, ps -L */

	tp__self = w;
	if (cfg->worker_start)
		cfg->worker_start(w, cfg->arg);
	loop_run(w->loop);
	tp__tcp_worker_close(w);
	if (cfg->worker_stop)
		cfg->worker_stop(w, cfg->arg);
	tp__self = NULL;
	return NULL;
}

/* Workers leave asynchronous signals (SIGTERM, SIGHUP, ...) to the main thread. Faults stay
 * unblocked: Linux resets the handler of a fault that arrives blocked, losing crash reports. */
static int workers_spawn(struct tp *tp)
{
	static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS };
	sigset_t all, old;
	int err = 0;

	sigfillset(&all);
	for (unsigned i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigdelset(&all, faults[i]);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; !err && i < tp->nworkers; i++) {
		err = pthread_create(&tp->workers[i].thread, NULL, worker_main, &tp->workers[i]);
		tp->workers[i].started = !err;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

static int config_check(const struct tp_config *cfg)
{
	if (!cfg->recv || !cfg->nlisten || cfg->nlisten > 16)
		return EINVAL;
	for (unsigned i = 0; i < cfg->nlisten; i++) {
		sa_family_t f = cfg->listen[i].addr.u.sa.sa_family;

		if (f != AF_INET && f != AF_INET6)
			return EAFNOSUPPORT;
		if (cfg->listen[i].proto == TP_TCP && !cfg->frame)
			return EINVAL;
		if (cfg->listen[i].proto != TP_UDP && cfg->listen[i].proto != TP_TCP)
			return EPROTONOSUPPORT;
	}
	return 0;
}

int tp_start(struct tp **tpp, const struct tp_config *cfg)
{
	struct tp *tp;
	long ncpu;
	int err;

	if (!tpp || !cfg)
		return EINVAL;
	err = config_check(cfg);
	if (err)
		return err;
	tp = calloc(1, sizeof(*tp));
	if (!tp)
		return ENOMEM;
	tp->cfg = *cfg;
	pthread_mutex_init(&tp->wild_lock, NULL);
	tp->max_msg = cfg->max_msg_size ? cfg->max_msg_size : TP_DEFAULT_MAX_MSG;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	tp->nworkers = cfg->workers ? cfg->workers : (ncpu > 0 ? (unsigned)ncpu : 1);
	err = tp__tcp_table_init(tp);
	if (err)
		goto out;
	tp->workers = calloc(tp->nworkers, sizeof(*tp->workers));
	if (!tp->workers) {
		err = ENOMEM;
		goto out;
	}
	for (unsigned i = 0; !err && i < cfg->nlisten; i++)
		err = sock_probe(&cfg->listen[i]);
	for (unsigned i = 0; !err && i < tp->nworkers; i++)
		err = worker_init(tp, &tp->workers[i], i);
	if (!err)
		err = workers_spawn(tp);
out:
	if (err) {
		tp_stop(tp);
		return err;
	}
	atomic_store(&tp_last, tp);
	*tpp = tp;
	return 0;
}

void tp_stop(struct tp *tp)
{
	struct tp *self = tp;

	if (!tp)
		return;
	atomic_compare_exchange_strong(&tp_last, &self, NULL);
	atomic_store(&tp->stopping, true);
	for (unsigned i = 0; tp->workers && i < tp->nworkers; i++)
		if (tp->workers[i].started)
			loop_stop(tp->workers[i].loop);
	for (unsigned i = 0; tp->workers && i < tp->nworkers; i++)
		if (tp->workers[i].started)
			pthread_join(tp->workers[i].thread, NULL);
	/* the upper layers end what still has timers on the workers' wheels while those exist */
	if (tp->cfg.stopped)
		tp->cfg.stopped(tp, tp->cfg.arg);
	for (unsigned i = 0; tp->workers && i < tp->nworkers; i++)
		if (tp->workers[i].tp)
			worker_free(&tp->workers[i]);
	tp__tcp_table_free(tp);
	pthread_mutex_destroy(&tp->wild_lock);
	free(tp->workers);
	free(tp);
}

int tp_send(struct tp_worker *w, enum tp_proto proto, struct tp_conn *conn, const struct tp_addr *dst,
	    const char *buf, size_t len)
{
	return tp_send_from(w, TP_LSN_ANY, proto, conn, dst, buf, len);
}

int tp_send_from(struct tp_worker *w, uint8_t lsn, enum tp_proto proto, struct tp_conn *conn,
		 const struct tp_addr *dst, const char *buf, size_t len)
{
	struct tp *tp;

	if (!buf && len)
		return EINVAL;
	tp = conn ? conn->w->tp : w ? w->tp : tp__default();
	if (!tp)
		return ENOTCONN;
	switch (proto) {
	case TP_UDP:
		if (!dst)
			return EINVAL;
		return tp__udp_send(tp__worker_in(tp, w), lsn, dst, buf, len);
	case TP_TCP:
		return tp__tcp_send(tp, w, conn, dst, buf, len);
	}
	return EPROTONOSUPPORT;
}

bool tp_addr_is_any(const struct tp_addr *a)
{
	if (a->u.sa.sa_family == AF_INET)
		return a->u.in.sin_addr.s_addr == htonl(INADDR_ANY);
	return a->u.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr);
}

static void addr_port_set(struct tp_addr *a, unsigned short port)
{
	if (a->u.sa.sa_family == AF_INET6)
		a->u.in6.sin6_port = htons(port);
	else
		a->u.in.sin_port = htons(port);
}

/* The source address routing picks for dst: a UDP socket's connect sends nothing and does not block. */
static int route_source(const struct tp_addr *dst, struct tp_addr *src)
{
	int fd = socket(dst->u.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;
	socklen_t len = sizeof(src->u);

	if (fd < 0)
		return errno;
	if (connect(fd, &dst->u.sa, tp__addr_len(dst)) < 0 || getsockname(fd, &src->u.sa, &len) < 0)
		err = errno;
	else
		src->len = len;
	close(fd);
	return err;
}

struct tp_worker *tp__worker_in(struct tp *tp, struct tp_worker *w)
{
	return w ? w : tp__self && tp__self->tp == tp ? tp__self : &tp->workers[0];
}

/* tp__worker_in of w's transport, or of the default one when w is NULL; NULL when none runs. */
static struct tp_worker *worker_or_default(struct tp_worker *w)
{
	struct tp *tp = w ? w->tp : tp__default();

	return tp ? tp__worker_in(tp, w) : NULL;
}

int tp_local_for(struct tp_worker *w, enum tp_proto proto, const struct tp_addr *dst, struct tp_addr *out)
{
	const struct tp_sock *pick = NULL;
	uint16_t port;
	int err;

	w = worker_or_default(w);
	if (!w || !dst)
		return ENOTCONN;
	for (unsigned i = 0; i < w->nsocks; i++) {
		const struct tp_sock *s = &w->socks[i];

		if (s->fd < 0 || s->local.u.sa.sa_family != dst->u.sa.sa_family)
			continue;
		if (s->proto == proto) {
			pick = s;
			break;
		}
		if (!pick)
			pick = s;
	}
	if (!pick)
		return EAFNOSUPPORT;
	if (w->tp->cfg.listen[pick - w->socks].advertise.len) {
		*out = w->tp->cfg.listen[pick - w->socks].advertise;
		return 0;
	}
	*out = pick->local;
	if (!tp_addr_is_any(out))
		return 0;
	port = tp_addr_port(out);
	if ((err = route_source(dst, out)))
		return err;
	addr_port_set(out, port);
	return 0;
}

/* Whether the host has address a: a socket can be bound to it (with port 0: no conflict). */
static bool addr_is_local(const struct tp_addr *a)
{
	struct tp_addr b = *a;
	int fd = socket(a->u.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	addr_port_set(&b, 0);
	ok = bind(fd, &b.u.sa, tp__addr_len(&b)) == 0;
	close(fd);
	return ok;
}

static uint8_t wild_find(struct tp *tp, uint8_t sock, const struct tp_addr *local, unsigned from, unsigned n)
{
	for (unsigned i = from; i < n; i++)
		if (tp->wild[i].sock == sock && tp_addr_eq(&tp->wild[i].addr, local))
			return (uint8_t)(TP_LISTEN_MAX + i);
	return TP_LSN_ANY;
}

uint8_t tp__wild_lsn(struct tp *tp, uint8_t sock, const struct tp_addr *local, bool known_local)
{
	unsigned n = atomic_load_explicit(&tp->nwild, memory_order_acquire), m;
	uint8_t lsn = wild_find(tp, sock, local, 0, n);

	if (lsn != TP_LSN_ANY)
		return lsn;
	if (tp_addr_is_any(local) || (!known_local && !addr_is_local(local)))
		return sock;
	pthread_mutex_lock(&tp->wild_lock);
	m = atomic_load_explicit(&tp->nwild, memory_order_relaxed);
	lsn = wild_find(tp, sock, local, n, m); /* another thread may have added it meanwhile */
	if (lsn == TP_LSN_ANY && m < TP_WILD_MAX) {
		tp->wild[m].sock = sock;
		tp->wild[m].addr = *local;
		atomic_store_explicit(&tp->nwild, m + 1, memory_order_release);
		lsn = (uint8_t)(TP_LISTEN_MAX + m);
	}
	pthread_mutex_unlock(&tp->wild_lock);
	return lsn == TP_LSN_ANY ? sock : lsn;
}

const struct tp_wild *tp__wild_of(struct tp *tp, uint8_t lsn)
{
	if (lsn < TP_LISTEN_MAX || lsn == TP_LSN_ANY ||
	    lsn - TP_LISTEN_MAX >= (int)atomic_load_explicit(&tp->nwild, memory_order_acquire))
		return NULL;
	return &tp->wild[lsn - TP_LISTEN_MAX];
}

bool tp_addr_seen(struct tp_worker *w, const struct tp_addr *a)
{
	unsigned n;

	w = worker_or_default(w);
	if (!w || !a)
		return false;
	n = atomic_load_explicit(&w->tp->nwild, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		struct tp_addr b = w->tp->wild[i].addr;

		addr_port_set(&b, tp_addr_port(a)); /* the port aside */
		if (tp_addr_eq(&b, a))
			return true;
	}
	return false;
}

uint8_t tp__lsn_sock(struct tp *tp, uint8_t lsn)
{
	const struct tp_wild *wl = tp__wild_of(tp, lsn);

	return wl ? wl->sock : lsn;
}

uint8_t tp_lsn_of(struct tp_worker *w, enum tp_proto proto, const struct tp_addr *local)
{
	uint8_t wild = TP_LSN_ANY;

	w = worker_or_default(w);
	if (!w || !local)
		return TP_LSN_ANY;
	for (unsigned i = 0; i < w->nsocks; i++) {
		const struct tp_sock *s = &w->socks[i];

		if (s->fd >= 0 && s->proto == proto && tp_addr_eq(&w->tp->cfg.listen[i].advertise, local))
			return (uint8_t)i;
		if (s->fd < 0 || s->proto != proto || s->local.u.sa.sa_family != local->u.sa.sa_family ||
		    tp_addr_port(&s->local) != tp_addr_port(local))
			continue;
		if (tp_addr_eq(&s->local, local))
			return (uint8_t)i;
		if (tp_addr_is_any(&s->local) && wild == TP_LSN_ANY)
			wild = (uint8_t)i;
	}
	return wild != TP_LSN_ANY && proto == TP_UDP ? tp__wild_lsn(w->tp, wild, local, false) : wild;
}

bool tp_lsn_is_default(struct tp_worker *w, uint8_t lsn, int family)
{
	w = worker_or_default(w);
	return w && lsn < w->nsocks && w->socks[lsn].fd >= 0 &&
	       w->socks[lsn].fd == (family == AF_INET6 ? w->udp6 : w->udp4);
}

bool tp_advertised(struct tp_worker *w, const struct tp_addr *local, struct tp_addr *out)
{
	uint8_t lsn;

	w = worker_or_default(w);
	if (!w || !local)
		return false;
	lsn = tp_lsn_of(w, TP_UDP, local);
	if (lsn == TP_LSN_ANY)
		lsn = tp_lsn_of(w, TP_TCP, local);
	if (lsn == TP_LSN_ANY)
		return false;
	lsn = tp__lsn_sock(w->tp, lsn);
	if (!w->tp->cfg.listen[lsn].advertise.len)
		return false;
	*out = w->tp->cfg.listen[lsn].advertise;
	return true;
}

struct loop *tp_worker_loop(struct tp_worker *w)
{
	return w ? w->loop : NULL;
}

unsigned tp_worker_index(const struct tp_worker *w)
{
	return w ? w->idx : 0;
}

unsigned tp_worker_count(const struct tp *tp)
{
	return tp ? tp->nworkers : 0;
}

struct tp_worker *tp_worker_at(struct tp *tp, unsigned i)
{
	return tp && i < tp->nworkers ? &tp->workers[i] : NULL;
}

static int addr_port_parse(const char *s, unsigned short *port)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return EINVAL;
	*port = (unsigned short)v;
	return 0;
}

static int addr_host_set(struct tp_addr *a, const char *host, unsigned short port)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &a->u.in.sin_addr) == 1) {
		a->u.in.sin_family = AF_INET;
		a->u.in.sin_port = htons(port);
		a->len = sizeof(a->u.in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a->u.in6.sin6_addr) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr)) {
			/* ::ffff:192.0.2.1 is an IPv4 node (RFC 4291 2.5.5.2): reached, and bound, over IPv4 */
			uint32_t v4;

			memcpy(&v4, &a->u.in6.sin6_addr.s6_addr[12], sizeof(v4));
			memset(a, 0, sizeof(*a));
			a->u.in.sin_family = AF_INET;
			a->u.in.sin_addr.s_addr = v4;
			a->u.in.sin_port = htons(port);
			a->len = sizeof(a->u.in);
			return 0;
		}
		a->u.in6.sin6_family = AF_INET6;
		a->u.in6.sin6_port = htons(port);
		a->len = sizeof(a->u.in6);
		return 0;
	}
	return EINVAL;
}

int tp_addr_set(struct tp_addr *a, struct slice host, unsigned short port)
{
	char h[INET6_ADDRSTRLEN];

	if (!a)
		return EINVAL;
	if (host.l >= 2 && host.p[0] == '[' && host.p[host.l - 1] == ']')
		host = slice_make(host.p + 1, host.l - 2);
	if (host.l == 0 || host.l >= sizeof(h))
		return EINVAL;
	memcpy(h, host.p, host.l);
	h[host.l] = '\0';
	return addr_host_set(a, h, port);
}

/* "1.2.3.4", "1.2.3.4:5060", "[::1]", "[::1]:5060", or a bare "::1" (no port: its colons are its own). */
int tp_addr_parse(struct tp_addr *a, const char *s, unsigned short def_port)
{
	unsigned short port = def_port;
	const char *hs = s, *he, *colon;
	int err;

	if (!a || !s)
		return EINVAL;
	if (*s == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (!he || (he[1] && he[1] != ':'))
			return EINVAL;
		if (he[1] == ':' && (err = addr_port_parse(he + 2, &port)))
			return err;
	} else {
		colon = strchr(s, ':');
		if (colon && !strchr(colon + 1, ':')) {
			he = colon;
			if ((err = addr_port_parse(colon + 1, &port)))
				return err;
		} else {
			he = s + strlen(s);
		}
	}
	return tp_addr_set(a, slice_make(hs, (size_t)(he - hs)), port);
}

/* Dotted quad without stdio: this runs for every request (the received parameter). */
static char *ipv4_str(uint32_t ip, char *buf)
{
	char *p = buf;

	for (int i = 3; i >= 0; i--) {
		unsigned o = (ip >> (8 * i)) & 0xff;

		if (o >= 100)
			*p++ = (char)('0' + o / 100);
		if (o >= 10)
			*p++ = (char)('0' + o / 10 % 10);
		*p++ = (char)('0' + o % 10);
		if (i)
			*p++ = '.';
	}
	*p = '\0';
	return buf;
}

char *tp_addr_host(const struct tp_addr *a, char *buf, size_t n)
{
	const void *src = NULL;

	if (!buf || !n)
		return buf;
	buf[0] = '\0';
	if (!a)
		return buf;
	if (a->u.sa.sa_family == AF_INET && n >= INET_ADDRSTRLEN)
		return ipv4_str(ntohl(a->u.in.sin_addr.s_addr), buf);
	if (a->u.sa.sa_family == AF_INET)
		src = &a->u.in.sin_addr;
	else if (a->u.sa.sa_family == AF_INET6)
		src = &a->u.in6.sin6_addr;
	if (!src || !inet_ntop(a->u.sa.sa_family, src, buf, (socklen_t)n))
		snprintf(buf, n, "?");
	return buf;
}

char *tp_addr_str(const struct tp_addr *a, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN];

	if (!buf || !n)
		return buf;
	tp_addr_host(a, host, sizeof(host));
	if (a && a->u.sa.sa_family == AF_INET6)
		snprintf(buf, n, "[%s]:%u", host, tp_addr_port(a));
	else
		snprintf(buf, n, "%s:%u", host, tp_addr_port(a));
	return buf;
}

unsigned short tp_addr_port(const struct tp_addr *a)
{
	if (!a)
		return 0;
	if (a->u.sa.sa_family == AF_INET)
		return ntohs(a->u.in.sin_port);
	if (a->u.sa.sa_family == AF_INET6)
		return ntohs(a->u.in6.sin6_port);
	return 0;
}

bool tp_addr_eq(const struct tp_addr *a, const struct tp_addr *b)
{
	if (!a || !b || a->u.sa.sa_family != b->u.sa.sa_family)
		return false;
	if (a->u.sa.sa_family == AF_INET)
		return a->u.in.sin_port == b->u.in.sin_port && a->u.in.sin_addr.s_addr == b->u.in.sin_addr.s_addr;
	if (a->u.sa.sa_family == AF_INET6)
		return a->u.in6.sin6_port == b->u.in6.sin6_port &&
		       a->u.in6.sin6_scope_id == b->u.in6.sin6_scope_id &&
		       memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, sizeof(struct in6_addr)) == 0;
	return false;
}

uint32_t tp_addr_hash(const struct tp_addr *a, uint32_t seed)
{
	if (a->u.sa.sa_family == AF_INET)
		return slice_hash(slice_make((const char *)&a->u.in.sin_addr, sizeof(a->u.in.sin_addr)),
				  seed ^ a->u.in.sin_port);
	if (a->u.sa.sa_family == AF_INET6)
		return slice_hash(slice_make((const char *)&a->u.in6.sin6_addr, sizeof(a->u.in6.sin6_addr)),
				  seed ^ a->u.in6.sin6_port ^ a->u.in6.sin6_scope_id);
	return seed;
}

const char *tp_proto_name(enum tp_proto p)
{
	switch (p) {
	case TP_UDP:
		return "UDP";
	case TP_TCP:
		return "TCP";
	}
	return "?";
}
