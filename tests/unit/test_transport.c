/* test_transport.c: the event loop, the address helpers, and the transport over real loopback
 * sockets: UDP echo, TCP framing (several messages per read, one message over several reads),
 * oversize, garbage, keep-alive pings, the connection limit, the idle timeout and a connection kept
 * past it (tp_conn_keep), a client that half-closes after its request, sends from other threads,
 * outbound connections, a peer that reads slowly and one that never reads, running out of file descriptors, port conflicts and IPv6. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"
#include "base/mem.h"
#include "net/loop.h"
#include "net/transport.h"

#define MAX_MSG 1000

/* ---- what the transport delivered, recorded by the callback on the worker threads ---- */

struct rec {
	enum tp_proto proto;
	char data[2048];
	size_t len;
	bool oversize;
	bool unframed;
	struct tp_addr src, local;
	uint8_t lsn;
	unsigned worker;
	bool had_conn;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rec recs[512];
	unsigned n;
	struct tp_conn *kept; /* a connection the test holds a reference to */
	atomic_uint starts, stops;
} rx = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void rx_reset(void)
{
	pthread_mutex_lock(&rx.lock);
	rx.n = 0;
	rx.kept = NULL;
	pthread_mutex_unlock(&rx.lock);
	atomic_store(&rx.starts, 0);
	atomic_store(&rx.stops, 0);
}

static unsigned rx_count(void)
{
	unsigned n;

	pthread_mutex_lock(&rx.lock);
	n = rx.n;
	pthread_mutex_unlock(&rx.lock);
	return n;
}

/* Waits until n messages were delivered (or timeout_ms passed); returns how many were. */
static unsigned rx_wait(unsigned n, int timeout_ms)
{
	struct timespec until;
	unsigned got;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&rx.lock);
	while (rx.n < n && pthread_cond_timedwait(&rx.cond, &rx.lock, &until) == 0)
		;
	got = rx.n;
	pthread_mutex_unlock(&rx.lock);
	return got;
}

/* The connection of the last KEEP message, which the test now holds a reference to. */
static struct tp_conn *kept_conn(void)
{
	struct tp_conn *c;

	pthread_mutex_lock(&rx.lock);
	c = rx.kept;
	pthread_mutex_unlock(&rx.lock);
	assert_non_null(c);
	return c;
}

/* The layer above, as the test plays it: echo every message, answer 413 to oversize ones,
 * keep a reference to the connection of a message starting with KEEP, keep open for 2 s (tp_conn_keep,
 * as the registrar does) the connection of one starting with HOLD (as holder 7), HLD8 (holder 8) or
 * HANY (holder 0, which only lengthens), and let holder 7's keep go on FREE. */
static void on_recv(struct tp_msg *msg, void *arg)
{
	struct rec *r = NULL;

	(void)arg;
	pthread_mutex_lock(&rx.lock);
	if (rx.n < sizeof(rx.recs) / sizeof(rx.recs[0]))
		r = &rx.recs[rx.n];
	if (r) {
		r->proto = msg->proto;
		r->len = msg->len;
		memcpy(r->data, msg->buf, msg->len < sizeof(r->data) ? msg->len : sizeof(r->data));
		r->oversize = msg->oversize;
		r->unframed = msg->unframed;
		r->src = msg->src;
		r->local = msg->local;
		r->lsn = msg->lsn;
		r->worker = tp_worker_index(msg->worker);
		r->had_conn = msg->conn != NULL;
	}
	if (msg->conn && msg->len >= 4 && memcmp(msg->buf, "KEEP", 4) == 0)
		rx.kept = mem_ref(msg->conn);
	if (msg->conn && msg->len >= 4 && memcmp(msg->buf, "HOLD", 4) == 0)
		tp_conn_keep(msg->conn, 7, 2);
	if (msg->conn && msg->len >= 4 && memcmp(msg->buf, "HLD8", 4) == 0)
		tp_conn_keep(msg->conn, 8, 2);
	if (msg->conn && msg->len >= 4 && memcmp(msg->buf, "HANY", 4) == 0)
		tp_conn_keep(msg->conn, 0, 2);
	if (msg->conn && msg->len >= 4 && memcmp(msg->buf, "FREE", 4) == 0)
		tp_conn_keep(msg->conn, 7, 0);
	if (msg->len > 7 && msg->len < 32 && memcmp(msg->buf, "FRAT ", 5) == 0) {
		char peer[48] = "127.0.0.1:";
		struct tp_addr at;

		memcpy(peer + 10, msg->buf + 5, msg->len - 7); /* the port, without the closing "\n\n" */
		peer[10 + msg->len - 7] = '\0';
		if (tp_addr_parse(&at, peer, 0) == 0) /* holder 7 of 127.0.0.1:port lets go */
			tp_conn_keep_at(msg->worker, &at, 7, 0);
	}
	/* counted before answering: once the peer has the answer, its next message takes the next slot */
	rx.n += r != NULL;
	pthread_cond_broadcast(&rx.cond);
	pthread_mutex_unlock(&rx.lock);

	if (msg->oversize)
		tp_send(msg->worker, msg->proto, msg->conn, &msg->src, "413\n\n", 5);
	else if (msg->unframed)
		tp_send(msg->worker, msg->proto, msg->conn, &msg->src, "400\n\n", 5);
	else /* from where it came, as sipd answers */
		tp_send_from(msg->worker, msg->lsn, msg->proto, msg->conn, &msg->src, msg->buf, msg->len);
}

/* Test framing: a message ends with an empty line ("\n\n"); '!' cannot start one. */
static long frame(const char *buf, size_t len, size_t max)
{
	if (len && buf[0] == '!')
		return TP_FRAME_BAD;
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] == '\n' && buf[i + 1] == '\n')
			return i + 2 > max ? TP_FRAME_TOO_BIG : (long)(i + 2);
	}
	return len >= max ? TP_FRAME_TOO_BIG : 0;
}

static void on_worker_start(struct tp_worker *w, void *arg)
{
	(void)arg;
	assert_non_null(tp_worker_loop(w));
	atomic_fetch_add(&rx.starts, 1);
}

static void on_worker_stop(struct tp_worker *w, void *arg)
{
	(void)w;
	(void)arg;
	atomic_fetch_add(&rx.stops, 1);
}

/* ---- starting the transport on a free port ---- */

static void cfg_init(struct tp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 2;
	cfg->max_msg_size = MAX_MSG;
	cfg->frame = frame;
	cfg->recv = on_recv;
	cfg->worker_start = on_worker_start;
	cfg->worker_stop = on_worker_stop;
}

static void cfg_listen(struct tp_config *cfg, enum tp_proto proto, const char *host)
{
	struct tp_listen *l = &cfg->listen[cfg->nlisten++];

	l->proto = proto;
	assert_int_equal(tp_addr_parse(&l->addr, host, 0), 0);
}

static void cfg_port(struct tp_config *cfg, unsigned short port)
{
	for (unsigned i = 0; i < cfg->nlisten; i++) {
		struct tp_addr *a = &cfg->listen[i].addr;

		if (a->u.sa.sa_family == AF_INET6)
			a->u.in6.sin6_port = htons(port);
		else
			a->u.in.sin_port = htons(port);
	}
}

/* Port 0 cannot be shared by SO_REUSEPORT workers, so pick random high ports until one is free. */
static unsigned short tp_start_any(struct tp **tpp, struct tp_config *cfg)
{
	for (int tries = 0; tries < 50; tries++) {
		unsigned short port = (unsigned short)(20000 + rand() % 40000);
		int err;

		cfg_port(cfg, port);
		err = tp_start(tpp, cfg);
		if (err == EADDRINUSE)
			continue;
		assert_int_equal(err, 0);
		return port;
	}
	fail_msg("no free port");
	return 0;
}

/* TCP only, on an idle timeout of idle_s seconds. */
static unsigned short start_tcp_idle(struct tp **tpp, struct tp_config *cfg, unsigned idle_s)
{
	rx_reset();
	cfg_init(cfg);
	cfg->tcp_idle_timeout_s = idle_s;
	cfg_listen(cfg, TP_TCP, "127.0.0.1");
	return tp_start_any(tpp, cfg);
}

static unsigned short start_default(struct tp **tpp, struct tp_config *cfg)
{
	rx_reset();
	cfg_init(cfg);
	cfg_listen(cfg, TP_UDP, "127.0.0.1");
	cfg_listen(cfg, TP_TCP, "127.0.0.1");
	return tp_start_any(tpp, cfg);
}

/* ---- plain client sockets ---- */

static void sock_timeout(int fd, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void addr_of(struct tp_addr *a, const char *host, unsigned short port)
{
	assert_int_equal(tp_addr_parse(a, host, port), 0);
}

static int client(int type, const char *host, unsigned short port)
{
	struct tp_addr a;
	int fd;

	addr_of(&a, host, port);
	fd = socket(a.u.sa.sa_family, type, 0);
	assert_true(fd >= 0);
	sock_timeout(fd, 3000);
	if (type == SOCK_STREAM)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	assert_int_equal(connect(fd, &a.u.sa, a.len), 0);
	return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);

		assert_true(k > 0);
		s += k;
		n -= (size_t)k;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* Reads exactly n bytes (or fails the test on timeout/EOF). */
static void recv_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = recv(fd, buf + got, n - got, 0);

		if (k <= 0)
			fail_msg("recv: got %zu of %zu bytes (%s)", got, n, k ? strerror(errno) : "EOF");
		got += (size_t)k;
	}
}

static void expect_bytes(int fd, const char *want)
{
	char buf[4096];
	size_t n = strlen(want);

	assert_true(n < sizeof(buf));
	recv_exact(fd, buf, n);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

/* True when the peer closed (EOF or reset) within the socket's receive timeout. */
static bool closed_by_peer(int fd)
{
	char buf[256];

	for (;;) {
		ssize_t k = recv(fd, buf, sizeof(buf), 0);

		if (k == 0 || (k < 0 && errno == ECONNRESET))
			return true;
		if (k < 0)
			return false;
	}
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until the peer closes fd; the seconds from t0 to then. */
static double closed_after(int fd, double t0, const char *what)
{
	double dt;

	assert_true(closed_by_peer(fd));
	dt = mono_s() - t0;
	print_message("%s: closed after %.3f s\n", what, dt);
	return dt;
}

/* A TCP listener on a free loopback port, its address in *a: a peer sipd connects to. */
static int tcp_listener(struct tp_addr *a)
{
	struct sockaddr_in la = { .sin_family = AF_INET };
	socklen_t llen = sizeof(la);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(lfd >= 0);
	la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&la, sizeof(la)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	getsockname(lfd, (struct sockaddr *)&la, &llen);
	addr_of(a, "127.0.0.1", ntohs(la.sin_port));
	return lfd;
}

/* ---- the loop ---- */

struct loop_ctx {
	struct loop *l;
	unsigned seq[2];      /* next expected sequence number per posting thread */
	unsigned disorder;
	unsigned ran;
	bool current_ok;
	struct tmr t;
	uint64_t armed_at;
	uint64_t fired_at;
};

struct post_arg {
	struct loop_ctx *ctx;
	unsigned thread, seq;
};

static struct post_arg post_args[2][1000];

static void job_h(void *arg)
{
	struct post_arg *p = arg;

	if (p->seq != p->ctx->seq[p->thread]++)
		p->ctx->disorder++;
	p->ctx->ran++;
}

static void *poster(void *arg)
{
	struct post_arg *row = arg;

	for (unsigned i = 0; i < 1000; i++)
		assert_int_equal(loop_post(row[i].ctx->l, job_h, &row[i]), 0);
	return NULL;
}

static void stop_tmr_h(struct tmr *t, void *arg)
{
	struct loop_ctx *ctx = arg;

	(void)t;
	ctx->fired_at = loop_now(ctx->l);
	loop_stop(ctx->l);
}

static void arm_h(void *arg)
{
	struct loop_ctx *ctx = arg;

	ctx->current_ok = loop_current() == ctx->l;
	ctx->armed_at = loop_now(ctx->l);
	tmr_start(loop_timers(ctx->l), &ctx->t, 50, stop_tmr_h, ctx);
}

static void *loop_thread(void *arg)
{
	struct loop_ctx *ctx = arg;

	loop_run(ctx->l);
	return NULL;
}

/* Two threads hand the loop 1000 numbered jobs each through send, and end. */
static void jobs_from_two_threads(struct loop_ctx *ctx, void *(*send)(void *))
{
	pthread_t pt[2];

	for (unsigned t = 0; t < 2; t++) {
		for (unsigned i = 0; i < 1000; i++)
			post_args[t][i] = (struct post_arg){ ctx, t, i };
		assert_int_equal(pthread_create(&pt[t], NULL, send, post_args[t]), 0);
	}
	for (unsigned t = 0; t < 2; t++)
		pthread_join(pt[t], NULL);
}

/* Every job ran once, in its thread's order, and the timer armed as the loop stopped it on time. */
static void check_jobs_and_free(struct loop_ctx *ctx)
{
	assert_int_equal(ctx->ran, 2000);
	assert_int_equal(ctx->disorder, 0);
	assert_true(ctx->current_ok);
	assert_true(ctx->fired_at >= ctx->armed_at + 49);
	loop_free(ctx->l);
}

static void test_loop(void **state)
{
	struct loop_ctx ctx = { 0 };
	pthread_t lt;

	(void)state;
	assert_int_equal(loop_new(&ctx.l), 0);
	assert_null(loop_current());
	assert_int_equal(pthread_create(&lt, NULL, loop_thread, &ctx), 0);
	jobs_from_two_threads(&ctx, poster);
	/* posted after the 2000 jobs: runs after them, then a timer stops the loop */
	assert_int_equal(loop_post(ctx.l, arm_h, &ctx), 0);
	pthread_join(lt, NULL);
	check_jobs_and_free(&ctx);
}

/* loop_run_as from threads other than the loop's: each job runs exactly once, in each thread's order,
 * whether run there (the loop asleep, nothing posted) or posted; the loop's state is touched by one
 * thread at a time (TSan checks ran and seq, which only the run lock guards). */
static void *run_as_poster(void *arg)
{
	struct post_arg *row = arg;

	for (unsigned i = 0; i < 1000; i++) {
		if (loop_run_as(row[i].ctx->l, job_h, &row[i]))
			continue;
		assert_int_equal(loop_post(row[i].ctx->l, job_h, &row[i]), 0);
		if (i % 64 == 0)
			sleep_ms(1); /* let the loop go back to sleep now and then */
	}
	return NULL;
}

static void arm_from_outside_h(void *arg)
{
	struct loop_ctx *ctx = arg;

	arm_h(ctx);
}

static void test_loop_run_as(void **state)
{
	struct loop_ctx ctx = { 0 };
	pthread_t lt;

	(void)state;
	assert_int_equal(loop_new(&ctx.l), 0);
	assert_int_equal(pthread_create(&lt, NULL, loop_thread, &ctx), 0);
	sleep_ms(20); /* asleep, no timer: it would sleep for ever */
	jobs_from_two_threads(&ctx, run_as_poster);
	sleep_ms(20);
	/* run here, as the loop: loop_current() is the loop, and the timer it starts wakes the sleeper,
	 * which would otherwise never look at its wheel again */
	while (!loop_run_as(ctx.l, arm_from_outside_h, &ctx))
		sleep_ms(1);
	assert_null(loop_current());
	pthread_join(lt, NULL);
	check_jobs_and_free(&ctx);
}

/* Stop from another thread while the loop sleeps with no timer; jobs left over run in free. */
static void test_loop_stop(void **state)
{
	struct loop_ctx ctx = { 0 };
	struct post_arg p = { &ctx, 0, 0 };
	pthread_t lt;

	(void)state;
	assert_int_equal(loop_new(&ctx.l), 0);
	assert_int_equal(pthread_create(&lt, NULL, loop_thread, &ctx), 0);
	sleep_ms(20);
	loop_stop(ctx.l);
	pthread_join(lt, NULL);
	assert_int_equal(loop_post(ctx.l, job_h, &p), 0);
	loop_free(ctx.l);
	assert_int_equal(ctx.ran, 1);
}

/* ---- address helpers ---- */

static void test_addr(void **state)
{
	struct tp_addr a, b;
	char buf[64];

	(void)state;
	assert_int_equal(tp_addr_parse(&a, "127.0.0.1:5080", 5060), 0);
	assert_int_equal(tp_addr_port(&a), 5080);
	assert_string_equal(tp_addr_str(&a, buf, sizeof(buf)), "127.0.0.1:5080");
	assert_string_equal(tp_addr_host(&a, buf, sizeof(buf)), "127.0.0.1");
	assert_int_equal(tp_addr_parse(&b, "127.0.0.1", 5080), 0);
	assert_true(tp_addr_eq(&a, &b));
	assert_int_equal(tp_addr_parse(&b, "0.0.0.0", 5060), 0);
	assert_int_equal(tp_addr_port(&b), 5060);
	assert_false(tp_addr_eq(&a, &b));

	assert_int_equal(tp_addr_parse(&a, "[::1]:5061", 5060), 0);
	assert_int_equal(a.u.sa.sa_family, AF_INET6);
	assert_string_equal(tp_addr_str(&a, buf, sizeof(buf)), "[::1]:5061");
	assert_string_equal(tp_addr_host(&a, buf, sizeof(buf)), "::1");
	assert_int_equal(tp_addr_parse(&b, "::1", 5061), 0);
	assert_true(tp_addr_eq(&a, &b));
	assert_int_equal(tp_addr_parse(&b, "[2001:db8::5]", 5060), 0);
	assert_int_equal(tp_addr_port(&b), 5060);
	/* an IPv4-mapped address is an IPv4 node (RFC 4291 2.5.5.2): sent to, and bound, over IPv4 */
	assert_int_equal(tp_addr_parse(&a, "[::ffff:127.0.0.1]:5062", 5060), 0);
	assert_int_equal(a.u.sa.sa_family, AF_INET);
	assert_string_equal(tp_addr_str(&a, buf, sizeof(buf)), "127.0.0.1:5062");
	assert_int_equal(tp_addr_parse(&b, "127.0.0.1:5062", 5060), 0);
	assert_true(tp_addr_eq(&a, &b));

	assert_int_equal(tp_addr_parse(&a, "", 5060), EINVAL);
	assert_int_equal(tp_addr_parse(&a, "1.2.3.4:", 5060), EINVAL);
	assert_int_equal(tp_addr_parse(&a, "1.2.3.4:70000", 5060), EINVAL);
	assert_int_equal(tp_addr_parse(&a, "1.2.3.4:50x", 5060), EINVAL);
	assert_int_equal(tp_addr_parse(&a, "[::1", 5060), EINVAL);
	assert_int_equal(tp_addr_parse(&a, "[::1]x", 5060), EINVAL);
	assert_int_equal(tp_addr_parse(&a, "example.com", 5060), EINVAL);
	assert_int_equal(tp_addr_parse(&a, "1.2.3.4.5", 5060), EINVAL);
	assert_string_equal(tp_proto_name(TP_UDP), "UDP");
	assert_string_equal(tp_proto_name(TP_TCP), "TCP");
}

/* tp_addr_set: hosts as URIs and Vias write them, a port apart; an unbracketed IPv6 received= too. */
static void test_addr_set(void **state)
{
	struct tp_addr a, b;
	char buf[64];

	(void)state;
	assert_int_equal(tp_addr_set(&a, SLICE_LIT("192.0.2.7"), 5070), 0);
	assert_string_equal(tp_addr_str(&a, buf, sizeof(buf)), "192.0.2.7:5070");
	assert_int_equal(tp_addr_set(&a, SLICE_LIT("[2001:db8::5]"), 5062), 0);
	assert_string_equal(tp_addr_str(&a, buf, sizeof(buf)), "[2001:db8::5]:5062");
	assert_int_equal(tp_addr_set(&b, SLICE_LIT("2001:db8::5"), 5062), 0);
	assert_true(tp_addr_eq(&a, &b));
	/* only the slice counts, not what follows it in the buffer */
	assert_int_equal(tp_addr_set(&a, slice_make("10.0.0.1;rport", 8), 5060), 0);
	assert_string_equal(tp_addr_str(&a, buf, sizeof(buf)), "10.0.0.1:5060");

	assert_int_equal(tp_addr_set(&a, SLICE_LIT("example.com"), 5060), EINVAL);
	assert_int_equal(tp_addr_set(&a, SLICE_LIT(""), 5060), EINVAL);
	assert_int_equal(tp_addr_set(&a, SLICE_LIT("[]"), 5060), EINVAL);
	assert_int_equal(tp_addr_set(&a, SLICE_LIT("[::1"), 5060), EINVAL);
	assert_int_equal(tp_addr_set(&a, SLICE_LIT("1.2.3.4:5060"), 5060), EINVAL);
	assert_int_equal(tp_addr_set(&a, SLICE_LIT("1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa"), 5060),
			 EINVAL);
}

/* ---- UDP ---- */

static void test_udp(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port = start_default(&tp, &cfg);
	struct sockaddr_in me;
	socklen_t mlen = sizeof(me);
	char big[1500], buf[2048];
	int fd = client(SOCK_DGRAM, "127.0.0.1", port);
	ssize_t k;

	(void)state;
	assert_int_equal(tp_worker_count(tp), 2);
	getsockname(fd, (struct sockaddr *)&me, &mlen);

	send_str(fd, "hello\n\n");
	k = recv(fd, buf, sizeof(buf), 0);
	assert_int_equal(k, 7);
	assert_memory_equal(buf, "hello\n\n", 7);
	assert_int_equal(rx_wait(1, 2000), 1);
	assert_int_equal(rx.recs[0].proto, TP_UDP);
	assert_false(rx.recs[0].had_conn);
	assert_false(rx.recs[0].oversize);
	assert_int_equal(tp_addr_port(&rx.recs[0].local), port);
	assert_string_equal(tp_addr_host(&rx.recs[0].local, buf, sizeof(buf)), "127.0.0.1");
	assert_int_equal(tp_addr_port(&rx.recs[0].src), ntohs(me.sin_port));
	assert_true(rx.recs[0].worker < 2);

	/* a bare CRLF keep-alive is not delivered */
	send_str(fd, "\r\n\r\n");
	/* larger than max_msg_size: delivered whole, flagged; the test layer answers 413 */
	memset(big, 'u', sizeof(big));
	send_all(fd, big, sizeof(big));
	k = recv(fd, buf, sizeof(buf), 0);
	assert_int_equal(k, 5);
	assert_memory_equal(buf, "413\n\n", 5);
	assert_int_equal(rx_wait(2, 2000), 2);
	assert_true(rx.recs[1].oversize);
	assert_int_equal(rx.recs[1].len, sizeof(big));

	/* a burst: recvmmsg batches, every datagram answered */
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "m%03d\n\n", i);
		send_str(fd, buf);
	}
	for (int i = 0; i < 100; i++) {
		k = recv(fd, buf, sizeof(buf), 0);
		assert_int_equal(k, 6);
	}
	assert_int_equal(rx_wait(102, 2000), 102);
	close(fd);
	tp_stop(tp);
	assert_int_equal(atomic_load(&rx.starts), 2);
	assert_int_equal(atomic_load(&rx.stops), 2);
}

/* tp_send from a thread that is no worker, naming neither worker nor connection. */
static void test_udp_send_foreign(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	struct tp_addr dst;
	struct sockaddr_in me = { .sin_family = AF_INET };
	socklen_t mlen = sizeof(me);
	char buf[64];
	int fd;

	(void)state;
	start_default(&tp, &cfg);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	sock_timeout(fd, 3000);
	me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
	getsockname(fd, (struct sockaddr *)&me, &mlen);
	addr_of(&dst, "127.0.0.1", ntohs(me.sin_port));
	assert_int_equal(tp_send(NULL, TP_UDP, NULL, &dst, "ping\n\n", 6), 0);
	assert_int_equal(tp_send(tp_worker_at(tp, 1), TP_UDP, NULL, &dst, "pong\n\n", 6), 0);
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "ping\n\n", 6);
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 6);
	assert_memory_equal(buf, "pong\n\n", 6);
	addr_of(&dst, "::1", 5060);
	assert_int_equal(tp_send(NULL, TP_UDP, NULL, &dst, "x", 1), EAFNOSUPPORT); /* no v6 socket */
	close(fd);
	tp_stop(tp);
}

static bool have_ipv6(void)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* A datagram from fd to to:port is echoed back from to:port. */
static void ping_answered_from(int fd, const char *to, unsigned short port)
{
	struct tp_addr a;
	struct sockaddr_in from;
	socklen_t flen = sizeof(from);
	char buf[64], host[64];

	addr_of(&a, to, port);
	assert_int_equal(sendto(fd, "ping\n\n", 6, 0, &a.u.sa, a.len), 6);
	assert_int_equal(recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen), 6);
	assert_string_equal(inet_ntop(AF_INET, &from.sin_addr, host, sizeof(host)), to);
	assert_int_equal(ntohs(from.sin_port), port);
}

/* An answer leaves from the listener its request came to (RFC 3581 4: a NAT lets in only what comes
 * from where its client sent to), not from the family's first; tp_lsn_of finds a listener by address. */
static void test_udp_reply_from(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	struct tp_addr a, b;
	unsigned short port;
	uint8_t lsn5;
	struct sockaddr_in me = { .sin_family = AF_INET }, from;
	socklen_t flen;
	char buf[64], host[64];
	int fd;

	(void)state;
	rx_reset();
	cfg_init(&cfg);
	cfg_listen(&cfg, TP_UDP, "127.0.0.1");
	cfg_listen(&cfg, TP_TCP, "127.0.0.1");
	cfg_listen(&cfg, TP_UDP, "127.0.0.2");
	port = tp_start_any(&tp, &cfg);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	sock_timeout(fd, 3000);
	me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
	for (unsigned i = 0; i < 2; i++) {
		const char *to = i ? "127.0.0.1" : "127.0.0.2";

		ping_answered_from(fd, to, port);
		assert_int_equal(rx_wait(i + 1, 2000), i + 1);
		assert_int_equal(rx.recs[i].lsn, i ? 0 : 2);
	}
	/* sent by another thread, naming the listener */
	getsockname(fd, (struct sockaddr *)&me, &(socklen_t){ sizeof(me) });
	addr_of(&a, "127.0.0.1", ntohs(me.sin_port));
	assert_int_equal(tp_send_from(NULL, 2, TP_UDP, NULL, &a, "pong\n\n", 6), 0);
	flen = sizeof(from);
	assert_int_equal(recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen), 6);
	assert_string_equal(inet_ntop(AF_INET, &from.sin_addr, host, sizeof(host)), "127.0.0.2");
	/* a TCP listener, or none, stands for the family's first UDP one */
	for (uint8_t lsn = 1; lsn != 4; lsn = lsn == 1 ? TP_LSN_ANY : 4) {
		assert_int_equal(tp_send_from(tp_worker_at(tp, 1), lsn, TP_UDP, NULL, &a, "pong\n\n", 6), 0);
		assert_int_equal(recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen), 6);
		assert_string_equal(inet_ntop(AF_INET, &from.sin_addr, host, sizeof(host)), "127.0.0.1");
	}
	/* the family's first UDP listener is where datagrams leave from when none is named */
	assert_true(tp_lsn_is_default(NULL, 0, AF_INET));
	assert_false(tp_lsn_is_default(tp_worker_at(tp, 1), 2, AF_INET));
	assert_false(tp_lsn_is_default(NULL, 1, AF_INET));
	assert_false(tp_lsn_is_default(NULL, 0, AF_INET6));
	assert_false(tp_lsn_is_default(NULL, TP_LSN_ANY, AF_INET));
	addr_of(&a, "127.0.0.2", port);
	assert_int_equal(tp_lsn_of(NULL, TP_UDP, &a), 2);
	assert_int_equal(tp_lsn_of(tp_worker_at(tp, 1), TP_TCP, &a), TP_LSN_ANY);
	addr_of(&a, "127.0.0.1", port);
	assert_int_equal(tp_lsn_of(NULL, TP_UDP, &a), 0);
	assert_int_equal(tp_lsn_of(NULL, TP_TCP, &a), 1);
	addr_of(&a, "127.0.0.1", port + 1);
	assert_int_equal(tp_lsn_of(NULL, TP_UDP, &a), TP_LSN_ANY);
	addr_of(&a, "127.0.0.3", port);
	assert_int_equal(tp_lsn_of(NULL, TP_UDP, &a), TP_LSN_ANY);
	close(fd);
	tp_stop(tp);

	/* a wildcard listener stands for every address of its family at its port, each a listener of its
	 * own: an answer leaves from the address its request came to (IP_PKTINFO), where routing would
	 * pick 127.0.0.1 for a peer at 127.0.0.1 */
	rx_reset();
	cfg_init(&cfg);
	cfg_listen(&cfg, TP_TCP, "127.0.0.1");
	cfg_listen(&cfg, TP_UDP, "0.0.0.0");
	port = tp_start_any(&tp, &cfg);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	sock_timeout(fd, 3000);
	me.sin_port = 0;
	assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
	for (unsigned i = 0; i < 3; i++) {
		const char *to = i == 1 ? "127.0.0.1" : "127.0.0.2";

		ping_answered_from(fd, to, port);
		assert_int_equal(rx_wait(i + 1, 2000), i + 1);
		assert_string_equal(tp_addr_host(&rx.recs[i].local, host, sizeof(host)), to);
	}
	assert_true(rx.recs[0].lsn > 1 && rx.recs[0].lsn != TP_LSN_ANY);
	assert_int_equal(rx.recs[2].lsn, rx.recs[0].lsn);
	assert_true(rx.recs[1].lsn > 1 && rx.recs[1].lsn != TP_LSN_ANY && rx.recs[1].lsn != rx.recs[0].lsn);
	assert_false(tp_lsn_is_default(NULL, rx.recs[0].lsn, AF_INET)); /* bindings keep it */
	/* sent by another thread, naming it */
	getsockname(fd, (struct sockaddr *)&me, &(socklen_t){ sizeof(me) });
	addr_of(&b, "127.0.0.1", ntohs(me.sin_port));
	assert_int_equal(tp_send_from(tp_worker_at(tp, 1), rx.recs[0].lsn, TP_UDP, NULL, &b, "pong\n\n", 6), 0);
	assert_int_equal(recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen), 6);
	assert_string_equal(inet_ntop(AF_INET, &from.sin_addr, host, sizeof(host)), "127.0.0.2");
	/* by address: one that came is found, one of the host's that has not come yet is added (a binding
	 * stored before a restart), one that is not the host's stands at the wildcard socket */
	addr_of(&a, "127.0.0.2", port);
	assert_int_equal(tp_lsn_of(NULL, TP_UDP, &a), rx.recs[0].lsn);
	addr_of(&a, "127.0.0.5", port);
	lsn5 = tp_lsn_of(NULL, TP_UDP, &a);
	assert_true(lsn5 > 1 && lsn5 != TP_LSN_ANY && lsn5 != rx.recs[0].lsn && lsn5 != rx.recs[1].lsn);
	assert_int_equal(tp_lsn_of(tp_worker_at(tp, 1), TP_UDP, &a), lsn5);
	assert_false(tp_advertised(NULL, &a, &a));
	assert_int_equal(tp_send_from(NULL, lsn5, TP_UDP, NULL, &b, "pong\n\n", 6), 0);
	assert_int_equal(recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen), 6);
	assert_string_equal(inet_ntop(AF_INET, &from.sin_addr, host, sizeof(host)), "127.0.0.5");
	addr_of(&a, "127.0.0.2", 5060); /* sipd's own, whatever the port */
	assert_true(tp_addr_seen(NULL, &a));
	addr_of(&a, "127.0.0.9", port); /* the host's, but nothing came to it */
	assert_false(tp_addr_seen(NULL, &a));
	addr_of(&a, "192.0.2.1", port);
	assert_int_equal(tp_lsn_of(NULL, TP_UDP, &a), 1);
	assert_false(tp_addr_seen(NULL, &a));
	addr_of(&a, "0.0.0.0", port);
	assert_int_equal(tp_lsn_of(NULL, TP_UDP, &a), 1);
	close(fd);
	addr_of(&a, "127.0.0.5", port + 1);
	assert_int_equal(tp_lsn_of(NULL, TP_UDP, &a), TP_LSN_ANY);
	if (have_ipv6()) {
		addr_of(&a, "::1", port);
		assert_int_equal(tp_lsn_of(NULL, TP_UDP, &a), TP_LSN_ANY);
	}
	tp_stop(tp);
}

/* ---- TCP ---- */

static void test_tcp_framing(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port = start_default(&tp, &cfg);
	int fd = client(SOCK_STREAM, "127.0.0.1", port);

	(void)state;
	/* two messages in one write */
	send_str(fd, "one\n\ntwo\n\n");
	expect_bytes(fd, "one\n\ntwo\n\n");
	assert_int_equal(rx_wait(2, 2000), 2);
	assert_int_equal(rx.recs[0].len, 5);
	assert_memory_equal(rx.recs[0].data, "one\n\n", 5);
	assert_memory_equal(rx.recs[1].data, "two\n\n", 5);
	assert_int_equal(rx.recs[0].proto, TP_TCP);
	assert_true(rx.recs[0].had_conn);
	assert_int_equal(tp_addr_port(&rx.recs[0].local), port);

	/* one message over three writes */
	send_str(fd, "spl");
	sleep_ms(40);
	send_str(fd, "it\n");
	sleep_ms(40);
	assert_int_equal(rx_count(), 2);
	send_str(fd, "\n");
	expect_bytes(fd, "split\n\n");
	assert_int_equal(rx_wait(3, 2000), 3);
	assert_int_equal(rx.recs[2].len, 7);

	/* a complete message and the start of the next in one read */
	send_str(fd, "a\n\nb");
	sleep_ms(40);
	send_str(fd, "c\n\n");
	expect_bytes(fd, "a\n\nbc\n\n");
	assert_int_equal(rx_wait(5, 2000), 5);
	assert_memory_equal(rx.recs[4].data, "bc\n\n", 4);

	/* a message close to the limit, in pieces */
	{
		char msg[MAX_MSG];

		memset(msg, 'y', sizeof(msg));
		msg[MAX_MSG - 2] = msg[MAX_MSG - 1] = '\n';
		send_all(fd, msg, 300);
		sleep_ms(20);
		send_all(fd, msg + 300, sizeof(msg) - 300);
		assert_int_equal(rx_wait(6, 2000), 6);
		assert_int_equal(rx.recs[5].len, MAX_MSG);
		assert_false(rx.recs[5].oversize);
		recv_exact(fd, msg, sizeof(msg));
	}
	close(fd);
	tp_stop(tp);
}

static void test_tcp_keepalive(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port = start_default(&tp, &cfg);
	int fd = client(SOCK_STREAM, "127.0.0.1", port);

	(void)state;
	send_str(fd, "\r\n\r\n");
	expect_bytes(fd, "\r\n");
	send_str(fd, "\r\n");
	sleep_ms(20);
	send_str(fd, "\r\n"); /* a ping split over two writes */
	expect_bytes(fd, "\r\n");
	send_str(fd, "\r\nhi\n\n"); /* a stray CRLF before a message is skipped */
	expect_bytes(fd, "hi\n\n");
	assert_int_equal(rx_wait(1, 2000), 1);
	assert_int_equal(rx.recs[0].len, 4);
	close(fd);
	tp_stop(tp);
}

/* Too big: delivered flagged, answered, closed; garbage: closed silently; others unaffected. */
static void test_tcp_oversize_and_garbage(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port = start_default(&tp, &cfg);
	int good = client(SOCK_STREAM, "127.0.0.1", port);
	int big = client(SOCK_STREAM, "127.0.0.1", port);
	int bad = client(SOCK_STREAM, "127.0.0.1", port);
	char junk[3000];

	(void)state;
	send_str(good, "first\n\n");
	expect_bytes(good, "first\n\n");

	memset(junk, 'x', sizeof(junk));
	send_all(big, junk, sizeof(junk));
	expect_bytes(big, "413\n\n");
	assert_true(closed_by_peer(big));
	assert_int_equal(rx_wait(2, 2000), 2);
	assert_true(rx.recs[1].oversize);
	assert_true(rx.recs[1].len >= MAX_MSG);

	/* bytes that cannot be framed reach the callback once, flagged, so that it can answer; what it
	 * answers is written before the close, and nothing after them is read */
	send_str(bad, "!garbage\n\nnext\n\n");
	expect_bytes(bad, "400\n\n");
	assert_true(closed_by_peer(bad));
	assert_int_equal(rx_wait(3, 2000), 3);
	assert_true(rx.recs[2].unframed);
	assert_false(rx.recs[2].oversize);
	assert_memory_equal(rx.recs[2].data, "!garbage", 8);
	assert_int_equal(rx_count(), 3);

	send_str(good, "still\n\n");
	expect_bytes(good, "still\n\n");
	close(good);
	close(big);
	close(bad);
	tp_stop(tp);
}

static void test_tcp_conn_limit(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port;
	int fds[3], extra;

	(void)state;
	rx_reset();
	cfg_init(&cfg);
	cfg.tcp_max_conns = 3;
	cfg_listen(&cfg, TP_TCP, "127.0.0.1");
	port = tp_start_any(&tp, &cfg);
	for (int i = 0; i < 3; i++) {
		fds[i] = client(SOCK_STREAM, "127.0.0.1", port);
		send_str(fds[i], "in\n\n");
		expect_bytes(fds[i], "in\n\n"); /* accepted and counted */
	}
	extra = client(SOCK_STREAM, "127.0.0.1", port); /* the kernel completes the handshake */
	assert_true(closed_by_peer(extra));
	close(extra);

	close(fds[0]);
	sleep_ms(100); /* the worker sees the FIN and frees the slot */
	extra = client(SOCK_STREAM, "127.0.0.1", port);
	send_str(extra, "again\n\n");
	expect_bytes(extra, "again\n\n");
	close(extra);
	close(fds[1]);
	close(fds[2]);
	tp_stop(tp);
}

static void test_tcp_idle_timeout(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port;
	double t0, dt;
	int fd;

	(void)state;
	port = start_tcp_idle(&tp, &cfg, 1);
	fd = client(SOCK_STREAM, "127.0.0.1", port);
	send_str(fd, "x\n\n");
	expect_bytes(fd, "x\n\n");
	sleep_ms(600);
	send_str(fd, "y\n\n"); /* traffic restarts the clock */
	expect_bytes(fd, "y\n\n");
	t0 = mono_s();
	dt = closed_after(fd, t0, "idle");
	assert_true(dt > 0.8 && dt < 1.6);
	close(fd);
	tp_stop(tp);
}

/* A message that trickles in a byte every 100 ms (slowloris) is cut off tcp_msg_timeout_ms after its
 * first byte, although each byte restarts the idle clock (2 s); a whole message before it, and one
 * sent at once after a pause, do not count against it. */
static void test_tcp_message_deadline(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port;
	double t0, dt = -1;
	int fd;

	(void)state;
	rx_reset();
	cfg_init(&cfg);
	cfg.tcp_idle_timeout_s = 2;
	cfg.tcp_msg_timeout_ms = 500;
	cfg_listen(&cfg, TP_TCP, "127.0.0.1");
	port = tp_start_any(&tp, &cfg);
	fd = client(SOCK_STREAM, "127.0.0.1", port);
	send_str(fd, "a\n\n");
	expect_bytes(fd, "a\n\n");
	sleep_ms(700); /* longer than the deadline, with nothing begun: no matter */
	send_str(fd, "b\n\n");
	expect_bytes(fd, "b\n\n");
	t0 = mono_s();
	for (int i = 0; i < 30 && dt < 0; i++) {
		char c;
		ssize_t k;

		send(fd, "x", 1, MSG_NOSIGNAL); /* fails once sipd closed it: the recv below tells */
		sleep_ms(100);
		k = recv(fd, &c, 1, MSG_DONTWAIT);
		if (k == 0 || (k < 0 && errno == ECONNRESET))
			dt = mono_s() - t0;
	}
	print_message("trickling message: closed after %.3f s\n", dt);
	assert_true(dt > 0.4 && dt < 1.2);
	close(fd);
	tp_stop(tp);
}

static unsigned local_port(int fd)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &len), 0);
	return ntohs(me.sin_port);
}

/* Sends s on fd and reads its echo. */
static void echoed(int fd, const char *s)
{
	send_str(fd, s);
	expect_bytes(fd, s);
}

/* The kernel's view of sipd's end of the connection from client port cport to server port sport
 * (/proc/net/tcp): its timer ("tr": 2 is the keep-alive timer) and the clock ticks until it fires. */
static bool tcp_timer_of(unsigned short sport, unsigned short cport, unsigned *tr, unsigned long *when)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	bool found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned lport, rport;

		if (sscanf(line, " %*d: %*x:%x %*x:%x %*x %*x:%*x %x:%lx", &lport, &rport, tr, when) == 4 &&
		    lport == sport && rport == cport)
			found = true;
	}
	fclose(f);
	return found;
}

/* A connection to port, one message echoed and ACKed, then the kernel's timer on sipd's end of it. */
static unsigned keepalive_timer(unsigned short port, unsigned long *when)
{
	int fd = client(SOCK_STREAM, "127.0.0.1", port);
	unsigned tr;

	echoed(fd, "x\n\n");
	sleep_ms(50); /* the echo's ACK in: no retransmission timer left */
	assert_true(tcp_timer_of(port, (unsigned short)local_port(fd), &tr, when));
	close(fd);
	return tr;
}

/* tcp_keepalive_s: the kernel probes a silent connection after that many seconds (its keep-alive timer
 * armed on sipd's end, due in about that time); 0 arms none. */
static void test_tcp_keepalive_probes(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port;
	unsigned long when;

	(void)state;
	rx_reset();
	cfg_init(&cfg);
	cfg.tcp_keepalive_s = 7;
	cfg_listen(&cfg, TP_TCP, "127.0.0.1");
	port = tp_start_any(&tp, &cfg);
	assert_int_equal(keepalive_timer(port, &when), 2);
	print_message("keep-alive 7 s: due in %lu ticks\n", when);
	assert_true(when > 600 && when <= 700);
	tp_stop(tp);

	port = start_tcp_idle(&tp, &cfg, 300); /* tcp_keepalive_s 0 */
	assert_int_equal(keepalive_timer(port, &when), 0);
	tp_stop(tp);
}

/* tp_conn_keep: a connection kept for 2 s outlives the 1 s idle timeout, and is closed once the keep
 * is over (the idle timeout having passed too); one beside it, not kept, goes at 1 s. With 0 seconds a
 * holder lets its keep go (an un-REGISTER): a connection held by holder 7 alone then goes at the idle
 * timeout, one also held by holder 8 stays for 8's 2 s, and holder 0's keep is let go by no one; a holder
 * lets go of a connection named by its peer's address (tp_conn_keep_at) as of the connection itself. */
static void test_tcp_keep(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port;
	double t0, dt;
	int held, plain, freed, other, any, away;
	char frat[32];

	(void)state;
	port = start_tcp_idle(&tp, &cfg, 1);
	held = client(SOCK_STREAM, "127.0.0.1", port);
	plain = client(SOCK_STREAM, "127.0.0.1", port);
	freed = client(SOCK_STREAM, "127.0.0.1", port);
	other = client(SOCK_STREAM, "127.0.0.1", port);
	any = client(SOCK_STREAM, "127.0.0.1", port);
	away = client(SOCK_STREAM, "127.0.0.1", port);
	t0 = mono_s();
	echoed(held, "HOLD\n\n");
	echoed(plain, "x\n\n");
	echoed(freed, "HOLD\n\n");
	echoed(other, "HOLD\n\n");
	echoed(other, "HLD8\n\n");
	echoed(any, "HANY\n\n");
	echoed(away, "HOLD\n\n");
	echoed(freed, "FREE\n\n");
	echoed(other, "FREE\n\n");
	echoed(any, "FREE\n\n");
	/* away's hold let go through its address, by a message on another connection (tp_conn_keep_at) */
	snprintf(frat, sizeof(frat), "FRAT %u\n\n", local_port(away));
	echoed(plain, frat);
	dt = closed_after(plain, t0, "unkept");
	assert_true(dt > 0.8 && dt < 1.6);
	dt = closed_after(freed, t0, "held, then let go");
	assert_true(dt > 0.8 && dt < 1.6);
	dt = closed_after(away, t0, "held, then let go through its address");
	assert_true(dt > 0.8 && dt < 1.6);
	dt = closed_after(held, t0, "kept 2 s");
	assert_true(dt > 1.9 && dt < 2.8);
	dt = closed_after(other, t0, "held by another holder too");
	assert_true(dt > 1.9 && dt < 2.8);
	dt = closed_after(any, t0, "held by holder 0");
	assert_true(dt > 1.9 && dt < 2.8);
	close(held);
	close(plain);
	close(freed);
	close(other);
	close(any);
	close(away);
	tp_stop(tp);
}

/* A hold let go after the idle timeout passed, while the idle timer waits for the hold's old end (2 s):
 * the connection closes at once (1.3 s), not at that end. A REGISTER's release through another
 * connection, or sipctl's, comes long after the last traffic on the registration's connection. */
static void test_tcp_keep_let_go_late(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port;
	char frat[32];
	double t0, dt;
	int held, other;

	(void)state;
	port = start_tcp_idle(&tp, &cfg, 1);
	held = client(SOCK_STREAM, "127.0.0.1", port);
	t0 = mono_s();
	echoed(held, "HOLD\n\n");
	sleep_ms(1300);
	other = client(SOCK_STREAM, "127.0.0.1", port);
	snprintf(frat, sizeof(frat), "FRAT %u\n\n", local_port(held));
	echoed(other, frat);
	dt = closed_after(held, t0, "held, let go after the idle timeout");
	assert_true(dt > 1.2 && dt < 1.7);
	close(held);
	close(other);
	tp_stop(tp);
}

/* Another thread writes 512 KiB and a short message on a connection whose peer is not reading yet:
 * both arrive whole and in order (on loopback the kernel's send buffer takes all of it; the
 * connection's own buffer is test_tcp_slow_reader's); a close from another thread is seen as EOF. */
static void test_tcp_send_foreign(void **state)
{
	enum { BIG = 512 * 1024 };
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port = start_default(&tp, &cfg);
	int fd = client(SOCK_STREAM, "127.0.0.1", port);
	char *out = malloc(BIG), *in = malloc(BIG);
	struct tp_conn *c;

	(void)state;
	send_str(fd, "KEEP\n\n");
	expect_bytes(fd, "KEEP\n\n");
	c = kept_conn();
	for (size_t i = 0; i < BIG; i++)
		out[i] = (char)('a' + i % 26);
	assert_int_equal(tp_send(NULL, TP_TCP, c, NULL, out, BIG), 0);
	assert_int_equal(tp_send(NULL, TP_TCP, c, NULL, "tail\n\n", 6), 0);
	sleep_ms(50);
	recv_exact(fd, in, BIG);
	assert_memory_equal(in, out, BIG);
	expect_bytes(fd, "tail\n\n");

	/* closing from another thread: the peer sees EOF, later sends fail */
	tp_conn_close(c);
	assert_true(closed_by_peer(fd));
	assert_int_equal(tp_send(NULL, TP_TCP, c, NULL, "late", 4), ENOTCONN);
	mem_deref(c);
	close(fd);
	free(out);
	free(in);
	tp_stop(tp);
}

/* Sends that name only a destination open one connection and reuse it; the peer's answers
 * arrive on it as input. */
static void test_tcp_outbound(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	struct tp_addr dst;
	struct pollfd pfd;
	int lfd, fd;

	(void)state;
	start_default(&tp, &cfg);
	lfd = tcp_listener(&dst);

	assert_int_equal(tp_send(NULL, TP_TCP, NULL, &dst, "out1\n\n", 6), 0);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	sock_timeout(fd, 3000);
	expect_bytes(fd, "out1\n\n");
	assert_int_equal(tp_send(tp_worker_at(tp, 1), TP_TCP, NULL, &dst, "out2\n\n", 6), 0);
	expect_bytes(fd, "out2\n\n");
	pfd = (struct pollfd){ .fd = lfd, .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 100), 0); /* no second connection */

	send_str(fd, "reply\n\n"); /* arrives as input on the outbound connection, echoed on it */
	expect_bytes(fd, "reply\n\n");
	assert_int_equal(rx_wait(1, 2000), 1);
	assert_true(tp_addr_eq(&rx.recs[0].src, &dst));

	/* a refused connect fails quietly on the worker */
	close(fd);
	close(lfd);
	sleep_ms(50);
	assert_int_equal(tp_send(NULL, TP_TCP, NULL, &dst, "void\n\n", 6), 0);
	sleep_ms(50);
	tp_stop(tp);
}

/* Connections sipd opens count against tcp_max_conns apart from the accepted ones: past it no new one
 * is opened (each to a new address would take a descriptor for the idle timeout); one closed makes room. */
static void test_tcp_outbound_limit(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	struct tp_addr dst[3];
	struct pollfd pfd;
	int lfd[3], fd[3];

	(void)state;
	rx_reset();
	cfg_init(&cfg);
	cfg.tcp_max_conns = 2;
	cfg_listen(&cfg, TP_UDP, "127.0.0.1");
	cfg_listen(&cfg, TP_TCP, "127.0.0.1");
	tp_start_any(&tp, &cfg);
	for (int i = 0; i < 3; i++)
		lfd[i] = tcp_listener(&dst[i]);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(tp_send(NULL, TP_TCP, NULL, &dst[i], "out\n\n", 5), 0);
		fd[i] = accept(lfd[i], NULL, NULL);
		assert_true(fd[i] >= 0);
		sock_timeout(fd[i], 3000);
		expect_bytes(fd[i], "out\n\n");
	}
	/* a third address: no connection (the send fails on the worker, told as unreachable) */
	assert_int_equal(tp_send(NULL, TP_TCP, NULL, &dst[2], "out\n\n", 5), 0);
	pfd = (struct pollfd){ .fd = lfd[2], .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 300), 0);
	/* one of the two closes: its slot is free again */
	close(fd[0]);
	sleep_ms(100);
	assert_int_equal(tp_send(NULL, TP_TCP, NULL, &dst[2], "out\n\n", 5), 0);
	fd[2] = accept(lfd[2], NULL, NULL);
	assert_true(fd[2] >= 0);
	sock_timeout(fd[2], 3000);
	expect_bytes(fd[2], "out\n\n");
	close(fd[1]);
	close(fd[2]);
	for (int i = 0; i < 3; i++)
		close(lfd[i]);
	tp_stop(tp);
}

/* ---- transport errors told to the layer above (tp_config.unreachable) ---- */

static struct {
	pthread_mutex_t lock;
	enum tp_proto proto;
	struct tp_addr peer;
	int err;
	bool lost;
	unsigned n;
} ur = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_unreachable(enum tp_proto proto, const struct tp_addr *peer, int err, bool lost, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&ur.lock);
	ur.proto = proto;
	ur.peer = *peer;
	ur.err = err;
	ur.lost = lost;
	ur.n++;
	pthread_mutex_unlock(&ur.lock);
}

static void ur_reset(void)
{
	pthread_mutex_lock(&ur.lock);
	ur.n = 0;
	pthread_mutex_unlock(&ur.lock);
}

/* TCP only, the peers it cannot reach or loses told to on_unreachable, from a count of none. */
static unsigned short start_tcp_told(struct tp **tpp, struct tp_config *cfg)
{
	ur_reset();
	rx_reset();
	cfg_init(cfg);
	cfg_listen(cfg, TP_TCP, "127.0.0.1");
	cfg->unreachable = on_unreachable;
	return tp_start_any(tpp, cfg);
}

/* Waits up to 2 s for callback number n; true when it came. */
static bool ur_wait(unsigned n)
{
	for (int i = 0; i < 200; i++) {
		unsigned got;

		pthread_mutex_lock(&ur.lock);
		got = ur.n;
		pthread_mutex_unlock(&ur.lock);
		if (got >= n)
			return true;
		sleep_ms(10);
	}
	return false;
}

/* An outbound connection that was up and that the peer closes (FIN) or resets (RST) is told as lost
 * (RFC 3261 17.1.4), a refused connect as not lost; a connection the transport closes itself (the peer
 * sent bytes it cannot frame: EPROTO, told as lost) differs from one closed on request (tp_conn_close:
 * not told at all). */
static void test_tcp_lost(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	struct tp_addr dst;
	struct tp_conn *c;
	unsigned short port;
	int lfd, fd;

	(void)state;
	port = start_tcp_told(&tp, &cfg);
	lfd = tcp_listener(&dst);

	/* the peer reads the request and closes: lost, EPIPE standing for its FIN */
	assert_int_equal(tp_send(NULL, TP_TCP, NULL, &dst, "req1\n\n", 6), 0);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	sock_timeout(fd, 3000);
	expect_bytes(fd, "req1\n\n");
	close(fd);
	assert_true(ur_wait(1));
	assert_int_equal(ur.proto, TP_TCP);
	assert_true(tp_addr_eq(&ur.peer, &dst));
	assert_int_equal(ur.err, EPIPE);
	assert_true(ur.lost);

	/* the peer resets it: lost, ECONNRESET */
	assert_int_equal(tp_send(NULL, TP_TCP, NULL, &dst, "req2\n\n", 6), 0);
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	sock_timeout(fd, 3000);
	expect_bytes(fd, "req2\n\n");
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ .l_onoff = 1, .l_linger = 0 }, sizeof(struct linger));
	close(fd);
	assert_true(ur_wait(2));
	assert_int_equal(ur.err, ECONNRESET);
	assert_true(ur.lost);

	/* nothing listens any more: a connect refused is not a lost connection */
	close(lfd);
	if (tp_send(NULL, TP_TCP, NULL, &dst, "req3\n\n", 6) == 0) {
		assert_true(ur_wait(3));
		assert_int_equal(ur.err, ECONNREFUSED);
		assert_false(ur.lost);
		assert_true(tp_addr_eq(&ur.peer, &dst));
	}
	ur_reset();

	/* an inbound connection closed on request is not told; one whose bytes cannot be framed is */
	fd = client(SOCK_STREAM, "127.0.0.1", port);
	send_str(fd, "KEEP\n\n");
	expect_bytes(fd, "KEEP\n\n");
	c = kept_conn();
	tp_conn_close(c);
	assert_true(closed_by_peer(fd));
	close(fd);
	mem_deref(c);
	assert_false(ur_wait(1));
	fd = client(SOCK_STREAM, "127.0.0.1", port);
	send_str(fd, "!garbage\n\n");
	assert_true(closed_by_peer(fd));
	close(fd);
	assert_true(ur_wait(1));
	assert_int_equal(ur.err, EPROTO);
	assert_true(ur.lost);
	tp_stop(tp);
}

/* A client that half-closes after its request (shutdown(SHUT_WR)) still gets what is owed it: the
 * FIN is told as lost (nothing sent on the connection will be answered), the connection leaves the
 * table (not standing: a new request to that peer would open another), a late answer on it (a
 * REGISTER's 200 once durable) arrives, one that may go elsewhere (where the client's Via says it
 * listens) goes there, and it closes once the last holder lets it go. A message cut short by the FIN
 * is not delivered. */
static void test_tcp_half_close(void **state)
{
	struct sockaddr_in ca;
	socklen_t clen = sizeof(ca);
	struct tp_config cfg;
	struct tp_addr peer, there;
	struct tp_conn *c;
	struct tp *tp;
	unsigned short port;
	double t0, dt;
	int fd, lfd, lc;

	(void)state;
	port = start_tcp_told(&tp, &cfg);
	fd = client(SOCK_STREAM, "127.0.0.1", port);
	getsockname(fd, (struct sockaddr *)&ca, &clen);
	addr_of(&peer, "127.0.0.1", ntohs(ca.sin_port));
	send_str(fd, "KEEP\n\n");
	expect_bytes(fd, "KEEP\n\n");
	c = kept_conn();
	assert_true(tp_conn_standing(NULL, &peer));
	send_str(fd, "cut sh"); /* a message the FIN leaves unfinished */
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	assert_true(ur_wait(1));
	assert_int_equal(ur.err, EPIPE);
	assert_true(ur.lost);
	assert_true(tp_addr_eq(&ur.peer, &peer));
	assert_false(tp_conn_standing(NULL, &peer));

	sleep_ms(600); /* past two of the checks that close a connection no one holds */
	assert_int_equal(tp_send(NULL, TP_TCP, c, &peer, "late\n\n", 6), 0);
	expect_bytes(fd, "late\n\n");
	assert_false(ur_wait(2)); /* the FIN told once */
	/* an answer that may go where the client listens (its Via's sent-by) goes there instead */
	lfd = tcp_listener(&there);
	assert_int_equal(tp_send(NULL, TP_TCP, c, &there, "there\n\n", 7), 0);
	sock_timeout(lfd, 3000);
	lc = accept(lfd, NULL, NULL);
	assert_true(lc >= 0);
	sock_timeout(lc, 3000);
	expect_bytes(lc, "there\n\n");
	close(lc);
	close(lfd);
	assert_true(ur_wait(2)); /* that connection, closed by its peer */
	assert_true(tp_addr_eq(&ur.peer, &there));
	t0 = mono_s();
	mem_deref(c);
	dt = closed_after(fd, t0, "half-closed, let go");
	assert_true(dt < 1.0);
	close(fd);
	assert_int_equal(rx_count(), 1); /* KEEP only */
	tp_stop(tp);
}

/* What the kernel and sipd took for a peer that never reads, before the send that failed (set by
 * test_tcp_reader_never_reads): about the kernel's send buffer plus TP_TCP_OUT_MAX. */
static size_t never_read_total;

/* A client with a small receive buffer, connected to the transport's TCP side; the connection sipd
 * holds for it (the KEEP message's), in *c. */
static int slow_client(unsigned short port, struct tp_conn **c)
{
	struct tp_addr a;
	int fd;

	addr_of(&a, "127.0.0.1", port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ 4096 }, sizeof(int)); /* before connect: the window */
	sock_timeout(fd, 3000);
	assert_int_equal(connect(fd, &a.u.sa, a.len), 0);
	send_str(fd, "KEEP\n\n");
	expect_bytes(fd, "KEEP\n\n");
	*c = kept_conn();
	return fd;
}

/* A peer that never reads is not fed sipd's memory: once about 1 MB waits unsent (TP_TCP_OUT_MAX) the
 * send fails with ENOBUFS and the connection is closed, told as lost; later sends find it gone, and
 * other clients are served as before. */
static void test_tcp_reader_never_reads(void **state)
{
	enum { CHUNK = 64 * 1024, MAX_TOTAL = 64 * 1024 * 1024 };
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port;
	struct tp_conn *c;
	char *out = calloc(1, CHUNK);
	size_t total = 0;
	int fd, fd2, err = 0;

	(void)state;
	port = start_tcp_told(&tp, &cfg);
	fd = slow_client(port, &c);
	assert_non_null(out);
	memset(out, 'x', CHUNK);
	while (total < MAX_TOTAL && (err = tp_send(NULL, TP_TCP, c, NULL, out, CHUNK)) == 0)
		total += CHUNK;
	assert_int_equal(err, ENOBUFS);
	assert_true(total >= 1024 * 1024); /* what the kernel took, then 1 MB held */
	never_read_total = total;
	assert_int_equal(tp_send(NULL, TP_TCP, c, NULL, out, 16), ENOTCONN);
	assert_true(ur_wait(1));
	assert_int_equal(ur.err, ENOBUFS);
	assert_true(ur.lost);
	assert_true(closed_by_peer(fd));
	fd2 = client(SOCK_STREAM, "127.0.0.1", port);
	send_str(fd2, "ping\n\n");
	expect_bytes(fd2, "ping\n\n");
	close(fd2);
	mem_deref(c);
	close(fd);
	free(out);
	tp_stop(tp);
}

/* All connections together hold no more than tcp_max_conns x 64 kB unsent: with tcp_max_conns = 4
 * (256 kB), a peer that never reads is closed with ENOBUFS about 768 kB sooner than under the
 * connection's own 1 MB (test_tcp_reader_never_reads, which runs first, measured that total). */
static void test_tcp_queued_total(void **state)
{
	enum { CHUNK = 64 * 1024, MAX_TOTAL = 64 * 1024 * 1024 };
	struct tp_config cfg;
	struct tp *tp;
	struct tp_conn *c;
	char *out = calloc(1, CHUNK);
	size_t total = 0;
	int fd, err = 0;

	(void)state;
	assert_true(never_read_total > 0);
	ur_reset();
	rx_reset();
	cfg_init(&cfg);
	cfg.tcp_max_conns = 4;
	cfg_listen(&cfg, TP_TCP, "127.0.0.1");
	cfg.unreachable = on_unreachable;
	fd = slow_client(tp_start_any(&tp, &cfg), &c);
	assert_non_null(out);
	memset(out, 'x', CHUNK);
	while (total < MAX_TOTAL && (err = tp_send(NULL, TP_TCP, c, NULL, out, CHUNK)) == 0)
		total += CHUNK;
	assert_int_equal(err, ENOBUFS);
	if (total + 512 * 1024 > never_read_total)
		fail_msg("%zu bytes taken under a 256 kB total, %zu under 1 MB alone", total, never_read_total);
	assert_true(ur_wait(1));
	assert_int_equal(ur.err, ENOBUFS);
	assert_true(closed_by_peer(fd));
	mem_deref(c);
	close(fd);
	free(out);
	tp_stop(tp);
}

/* A peer that reads slowly: what its socket cannot take now waits in the connection's own buffer and
 * goes out as the peer reads (EPOLLOUT), whole and in order. Sent: 768 kB less than a peer that never
 * reads was sent before its connection failed, so that about 256 kB wait in sipd's buffer whatever
 * the kernel's send buffer is here. */
static void test_tcp_slow_reader(void **state)
{
	enum { CHUNK = 64 * 1024 };
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port = start_default(&tp, &cfg);
	struct tp_conn *c;
	int fd = slow_client(port, &c);
	char *out = malloc(CHUNK), *in = malloc(CHUNK);
	size_t n = (never_read_total > 1024 * 1024 ? never_read_total - 768 * 1024 : 2 * 1024 * 1024) / CHUNK;

	(void)state;
	assert_non_null(out);
	assert_non_null(in);
	for (unsigned k = 0; k < n; k++) {
		for (size_t i = 0; i < CHUNK; i++)
			out[i] = (char)('a' + (i + k) % 26);
		assert_int_equal(tp_send(NULL, TP_TCP, c, NULL, out, CHUNK), 0);
	}
	sleep_ms(50);
	for (unsigned k = 0; k < n; k++) {
		recv_exact(fd, in, CHUNK);
		for (size_t i = 0; i < CHUNK; i++)
			if (in[i] != (char)('a' + (i + k) % 26))
				fail_msg("chunk %u byte %zu: '%c'", k, i, in[i]);
		if (k % 16 == 0)
			sleep_ms(5); /* a slow reader */
	}
	/* the connection still serves: an echo comes after all that */
	send_str(fd, "ping\n\n");
	expect_bytes(fd, "ping\n\n");
	mem_deref(c);
	close(fd);
	free(out);
	free(in);
	tp_stop(tp);
}

/* Out of file descriptors (EMFILE), a connection the transport cannot take is accepted on the
 * worker's spare descriptor and closed at once, so that the listener does not fire again and again
 * for it; the connections already open are served, and once descriptors are free again a new one is
 * taken. The clients' sockets are made before the limit is lowered: only the transport needs more. */
static struct rlimit nofile; /* the limit before test_tcp_out_of_fds, put back by its teardown */

static int nofile_restore(void **state)
{
	(void)state;
	return setrlimit(RLIMIT_NOFILE, &nofile);
}

static void test_tcp_out_of_fds(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	struct tp_addr a;
	struct rlimit low;
	int cl[4], burn[256], nburn = 0, fd;
	unsigned short port;

	(void)state;
	rx_reset();
	cfg_init(&cfg);
	cfg.workers = 1;
	cfg_listen(&cfg, TP_TCP, "127.0.0.1");
	port = tp_start_any(&tp, &cfg);
	addr_of(&a, "127.0.0.1", port);
	for (int i = 0; i < 4; i++) {
		cl[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(cl[i] >= 0);
		sock_timeout(cl[i], 3000);
	}
	low = nofile;
	low.rlim_cur = (rlim_t)cl[3] + 32;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nburn < 256 && (fd = dup(cl[3])) >= 0)
		burn[nburn++] = fd;
	assert_int_equal(errno, EMFILE);
	assert_true(nburn >= 2);
	close(burn[--nburn]);
	close(burn[--nburn]); /* two descriptors left: for the transport's first two connections */

	assert_int_equal(connect(cl[0], &a.u.sa, a.len), 0);
	send_str(cl[0], "one\n\n");
	expect_bytes(cl[0], "one\n\n");
	assert_int_equal(connect(cl[1], &a.u.sa, a.len), 0);
	send_str(cl[1], "two\n\n");
	expect_bytes(cl[1], "two\n\n");
	assert_int_equal(connect(cl[2], &a.u.sa, a.len), 0); /* the kernel completes it; sipd cannot take it */
	assert_true(closed_by_peer(cl[2]));
	send_str(cl[1], "still\n\n"); /* the others are served as before */
	expect_bytes(cl[1], "still\n\n");

	close(cl[0]); /* its descriptor here, then sipd's once it reads the EOF */
	sleep_ms(100);
	assert_int_equal(connect(cl[3], &a.u.sa, a.len), 0);
	send_str(cl[3], "four\n\n");
	expect_bytes(cl[3], "four\n\n");

	assert_int_equal(setrlimit(RLIMIT_NOFILE, &nofile), 0);
	while (nburn)
		close(burn[--nburn]);
	for (int i = 1; i < 4; i++)
		close(cl[i]);
	tp_stop(tp);
}

/* Many clients at once on both protocols, to shake the threads. */
struct storm_arg {
	unsigned short port;
	unsigned id;
};

static void *storm_client(void *arg)
{
	struct storm_arg *a = arg;
	int fds[8], u = client(SOCK_DGRAM, "127.0.0.1", a->port);
	char msg[64], buf[64];

	for (int i = 0; i < 8; i++)
		fds[i] = client(SOCK_STREAM, "127.0.0.1", a->port);
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 8; i++) {
			int n = snprintf(msg, sizeof(msg), "c%u-%d-%d\n\n", a->id, i, round);

			send_all(fds[i], msg, (size_t)n);
			recv_exact(fds[i], buf, (size_t)n);
			assert_memory_equal(buf, msg, (size_t)n);
		}
		send_str(u, "u\n\n");
		assert_int_equal(recv(u, buf, sizeof(buf), 0), 3);
	}
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	close(u);
	return NULL;
}

static void test_storm(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port = start_default(&tp, &cfg);
	struct storm_arg args[4];
	pthread_t th[4];

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		args[i] = (struct storm_arg){ port, i };
		assert_int_equal(pthread_create(&th[i], NULL, storm_client, &args[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	tp_stop(tp);
}

/* Stop with connections open and data in flight: everything is closed and freed (ASan checks). */
static void test_stop_with_conns(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	unsigned short port = start_default(&tp, &cfg);
	int fds[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		fds[i] = client(SOCK_STREAM, "127.0.0.1", port);
		send_str(fds[i], i == 0 ? "KEEP\n\n" : i % 2 ? "partial" : "done\n\n");
	}
	assert_int_equal(rx_wait(2, 2000), 2);
	tp_stop(tp);
	for (int i = 0; i < 4; i++) {
		assert_true(closed_by_peer(fds[i]));
		close(fds[i]);
	}
	pthread_mutex_lock(&rx.lock);
	rx.kept = mem_deref(rx.kept); /* a reference outliving tp_stop is still safe to drop */
	pthread_mutex_unlock(&rx.lock);
}

static void test_port_in_use(void **state)
{
	struct tp_config cfg, cfg2;
	struct tp *tp, *tp2 = NULL;
	unsigned short port = start_default(&tp, &cfg);

	(void)state;
	cfg2 = cfg;
	cfg_port(&cfg2, port);
	assert_int_equal(tp_start(&tp2, &cfg2), EADDRINUSE);
	assert_null(tp2);
	tp_stop(tp);
}

/* Where sipd sends from, per family and transport: a concrete listener as bound, a wildcard one as
 * routing picks for the destination, the other transport's listener when the family has none of this
 * one, and EAFNOSUPPORT for a family without listeners. */
static void test_local_for(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	struct tp_addr dst, out;
	unsigned short port;
	char buf[64], want[64];

	(void)state;
	rx_reset();
	cfg_init(&cfg);
	cfg_listen(&cfg, TP_UDP, "127.0.0.1");
	cfg_listen(&cfg, TP_TCP, "0.0.0.0");
	if (have_ipv6())
		cfg_listen(&cfg, TP_UDP, "::1");
	port = tp_start_any(&tp, &cfg);

	addr_of(&dst, "127.0.0.2", 5060);
	assert_int_equal(tp_local_for(NULL, TP_UDP, &dst, &out), 0);
	snprintf(want, sizeof(want), "127.0.0.1:%u", port);
	assert_string_equal(tp_addr_str(&out, buf, sizeof(buf)), want);
	addr_of(&dst, "127.0.0.3", 5060);
	assert_int_equal(tp_local_for(tp_worker_at(tp, 1), TP_TCP, &dst, &out), 0);
	snprintf(want, sizeof(want), "127.0.0.1:%u", port); /* routing: src 127.0.0.1 */
	assert_string_equal(tp_addr_str(&out, buf, sizeof(buf)), want);
	addr_of(&dst, "::1", 5060);
	if (have_ipv6()) {
		assert_int_equal(tp_local_for(NULL, TP_TCP, &dst, &out), 0); /* no TCP on IPv6: the UDP one */
		snprintf(want, sizeof(want), "[::1]:%u", port);
		assert_string_equal(tp_addr_str(&out, buf, sizeof(buf)), want);
	}
	tp_stop(tp);

	start_default(&tp, &cfg);
	assert_int_equal(tp_local_for(NULL, TP_UDP, &dst, &out), EAFNOSUPPORT);
	tp_stop(tp);

	/* behind a 1:1 NAT ([general] advertise): sipd names itself by the advertised address, and a message
	 * naming that address is known as this listener's */
	rx_reset();
	cfg_init(&cfg);
	cfg_listen(&cfg, TP_UDP, "127.0.0.1");
	addr_of(&cfg.listen[0].advertise, "203.0.113.5", 5080);
	port = tp_start_any(&tp, &cfg);
	addr_of(&dst, "192.0.2.1", 5060);
	assert_int_equal(tp_local_for(NULL, TP_UDP, &dst, &out), 0);
	assert_string_equal(tp_addr_str(&out, buf, sizeof(buf)), "203.0.113.5:5080");
	addr_of(&dst, "127.0.0.1", port);
	assert_true(tp_advertised(NULL, &dst, &out));
	assert_string_equal(tp_addr_str(&out, buf, sizeof(buf)), "203.0.113.5:5080");
	addr_of(&dst, "203.0.113.5", 5080);
	assert_int_equal(tp_lsn_of(NULL, TP_UDP, &dst), 0);
	addr_of(&dst, "127.0.0.2", port);
	assert_false(tp_advertised(NULL, &dst, &out));
	tp_stop(tp);
}

static void test_ipv6(void **state)
{
	struct tp_config cfg;
	struct tp *tp;
	struct tp_addr me, from;
	unsigned short port;
	char buf[64];
	int u, t;

	(void)state;
	if (!have_ipv6())
		skip();
	rx_reset();
	cfg_init(&cfg);
	cfg_listen(&cfg, TP_UDP, "::1");
	cfg_listen(&cfg, TP_TCP, "::1");
	cfg_listen(&cfg, TP_UDP, "127.0.0.1");
	port = tp_start_any(&tp, &cfg);

	u = client(SOCK_DGRAM, "::1", port);
	send_str(u, "six\n\n");
	assert_int_equal(recv(u, buf, sizeof(buf), 0), 5);
	assert_int_equal(rx_wait(1, 2000), 1);
	assert_int_equal(rx.recs[0].local.u.sa.sa_family, AF_INET6);
	assert_string_equal(tp_addr_host(&rx.recs[0].local, buf, sizeof(buf)), "::1");

	t = client(SOCK_STREAM, "::1", port);
	send_str(t, "tcp6\n\n");
	expect_bytes(t, "tcp6\n\n");
	assert_int_equal(rx_wait(2, 2000), 2);
	assert_int_equal(rx.recs[1].src.u.sa.sa_family, AF_INET6);
	close(u);
	close(t);
	tp_stop(tp);

	/* a wildcard [::]: ::1 a listener of its own, its answers sent with IPV6_PKTINFO */
	rx_reset();
	cfg_init(&cfg);
	cfg_listen(&cfg, TP_UDP, "::");
	port = tp_start_any(&tp, &cfg);
	u = client(SOCK_DGRAM, "::1", port);
	send_str(u, "six\n\n");
	assert_int_equal(recv(u, buf, sizeof(buf), 0), 5);
	assert_int_equal(rx_wait(1, 2000), 1);
	assert_true(rx.recs[0].lsn > 0 && rx.recs[0].lsn != TP_LSN_ANY);
	getsockname(u, &me.u.sa, &(socklen_t){ sizeof(me.u) });
	me.len = sizeof(me.u.in6);
	assert_int_equal(tp_send_from(NULL, rx.recs[0].lsn, TP_UDP, NULL, &me, "pong\n\n", 6), 0);
	assert_int_equal(recvfrom(u, buf, sizeof(buf), 0, &from.u.sa, &(socklen_t){ sizeof(from.u) }), 6);
	from.len = sizeof(from.u.in6);
	assert_string_equal(tp_addr_host(&from, buf, sizeof(buf)), "::1");
	assert_int_equal(tp_addr_port(&from), port);
	assert_true(tp_addr_seen(NULL, &me));
	close(u);
	tp_stop(tp);
}

int main(void)
{
	if (getrlimit(RLIMIT_NOFILE, &nofile))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_loop_run_as),
		cmocka_unit_test(test_loop_stop),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_addr_set),
		cmocka_unit_test(test_udp),
		cmocka_unit_test(test_udp_send_foreign),
		cmocka_unit_test(test_udp_reply_from),
		cmocka_unit_test(test_tcp_framing),
		cmocka_unit_test(test_tcp_keepalive),
		cmocka_unit_test(test_tcp_keepalive_probes),
		cmocka_unit_test(test_tcp_oversize_and_garbage),
		cmocka_unit_test(test_tcp_conn_limit),
		cmocka_unit_test(test_tcp_outbound_limit),
		cmocka_unit_test(test_tcp_idle_timeout),
		cmocka_unit_test(test_tcp_message_deadline),
		cmocka_unit_test(test_tcp_keep),
		cmocka_unit_test(test_tcp_keep_let_go_late),
		cmocka_unit_test(test_tcp_send_foreign),
		cmocka_unit_test(test_tcp_outbound),
		cmocka_unit_test(test_tcp_lost),
		cmocka_unit_test(test_tcp_half_close),
		cmocka_unit_test(test_tcp_reader_never_reads),
		cmocka_unit_test(test_tcp_queued_total),
		cmocka_unit_test(test_tcp_slow_reader),
		cmocka_unit_test_teardown(test_tcp_out_of_fds, nofile_restore),
		cmocka_unit_test(test_storm),
		cmocka_unit_test(test_stop_with_conns),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_local_for),
		cmocka_unit_test(test_ipv6),
	};

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
