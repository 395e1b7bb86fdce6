/* test_dns.c: net/dns against a DNS server in this process that answers what a hostile or broken
 * server would: more records than sipd keeps, NAPTR fields too long, a compression loop, a truncated
 * answer, NXDOMAIN, SERVFAIL, silence. Real c-ares, real UDP over loopback, a real event loop for the
 * answers; checks the bounds, the error mapping, the deadline, the TTL cache and cancellation. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"
#include "net/dns.h"
#include "net/loop.h"

/* ---- the server ---- */

static struct {
	int fd;
	uint16_t port;
	pthread_t thread;
	atomic_bool stop;
	atomic_uint asked[16]; /* questions per case, by the index in names[] */
} srv;

static const char *const names[] = { "many", "naptr", "loop", "trunc", "nx", "servfail", "silent", "ttl",
				     "zero", "neg", "ok" };

struct wbuf {
	uint8_t b[8192];
	size_t n;
};

static void w8(struct wbuf *w, unsigned v)
{
	w->b[w->n++] = (uint8_t)v;
}

static void w16(struct wbuf *w, unsigned v)
{
	w8(w, v >> 8);
	w8(w, v & 0xff);
}

static void w32(struct wbuf *w, uint32_t v)
{
	w16(w, v >> 16);
	w16(w, v & 0xffff);
}

static void wname(struct wbuf *w, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		w8(w, (unsigned)l);
		memcpy(w->b + w->n, name, l);
		w->n += l;
		name += l + (dot ? 1 : 0);
	}
	w8(w, 0);
}

static void wstr(struct wbuf *w, const char *s, size_t l)
{
	w8(w, (unsigned)l);
	memcpy(w->b + w->n, s, l);
	w->n += l;
}

/* An answer record's header, named by a pointer to the question's name; rdlength patched by rr_end. */
static size_t rr_begin(struct wbuf *w, unsigned type, uint32_t ttl)
{
	w16(w, 0xc00c);
	w16(w, type);
	w16(w, 1);
	w32(w, ttl);
	w16(w, 0);
	return w->n;
}

static void rr_end(struct wbuf *w, size_t start)
{
	w->b[start - 2] = (uint8_t)((w->n - start) >> 8);
	w->b[start - 1] = (uint8_t)((w->n - start) & 0xff);
}

static void answer(const uint8_t *q, size_t qlen, const struct sockaddr_in *from)
{
	struct wbuf w = { .n = 0 };
	char label[64] = "";
	unsigned rcode = 0, an = 0, which = 99;
	size_t start;

	if (qlen < 17 || q[12] == 0 || q[12] >= sizeof(label))
		return;
	memcpy(label, q + 13, q[12]);
	label[q[12]] = '\0';
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(label, names[i]))
			which = i;
	if (which == 99)
		return;
	atomic_fetch_add(&srv.asked[which], 1);
	if (!strcmp(label, "silent"))
		return;
	if (!strcmp(label, "nx"))
		rcode = 3;
	if (!strcmp(label, "servfail"))
		rcode = 2;
	if (!strcmp(label, "neg"))
		rcode = 3;
	w16(&w, (unsigned)q[0] << 8 | q[1]);
	w16(&w, 0x8180 | rcode);
	w16(&w, 1);
	w16(&w, 0); /* ancount, patched below */
	w16(&w, 0);
	w16(&w, 0);
	memcpy(w.b + w.n, q + 12, qlen - 12); /* the question as asked (no EDNS from c-ares here) */
	w.n += qlen - 12;
	if (!strcmp(label, "many") || !strcmp(label, "zero") || !strcmp(label, "ok")) {
		unsigned count = !strcmp(label, "many") ? 30 : 1; /* 30: still within 512 bytes */

		for (unsigned i = 0; i < count; i++) {
			start = rr_begin(&w, 1, !strcmp(label, "zero") ? 0 : 300);
			w32(&w, 0x7f000001 + i);
			rr_end(&w, start);
			an++;
		}
	} else if (!strcmp(label, "naptr")) {
		static const char longflags[] = "ssssssssssssssssssssssssssssssssssssssssssssss";

		start = rr_begin(&w, 35, 300); /* flags longer than any real one: dropped */
		w16(&w, 10);
		w16(&w, 10);
		wstr(&w, longflags, sizeof(longflags) - 1);
		wstr(&w, "SIP+D2U", 7);
		wstr(&w, "", 0);
		wname(&w, "_sip._udp.bad.test");
		rr_end(&w, start);
		start = rr_begin(&w, 35, 300); /* a regexp where SIP wants a replacement: dropped */
		w16(&w, 10);
		w16(&w, 20);
		wstr(&w, "s", 1);
		wstr(&w, "SIP+D2U", 7);
		wstr(&w, "!^.*$!sip:x@y!", 14);
		w8(&w, 0);
		rr_end(&w, start);
		start = rr_begin(&w, 35, 300);
		w16(&w, 20);
		w16(&w, 5);
		wstr(&w, "s", 1);
		wstr(&w, "SIP+D2T", 7);
		wstr(&w, "", 0);
		wname(&w, "_sip._tcp.good.test");
		rr_end(&w, start);
		an = 3;
	} else if (!strcmp(label, "ttl")) {
		start = rr_begin(&w, 33, 1);
		w16(&w, 10);
		w16(&w, 5);
		w16(&w, 5070);
		wname(&w, "target.test");
		rr_end(&w, start);
		an = 1;
	} else if (!strcmp(label, "loop")) {
		size_t self = w.n;

		w16(&w, 0xc000 | (unsigned)self); /* a name that points at itself */
		w16(&w, 33);
		w16(&w, 1);
		w32(&w, 300);
		w16(&w, 0);
		an = 1;
	} else if (!strcmp(label, "trunc")) {
		an = 1; /* says one answer, carries none */
	}
	w.b[6] = (uint8_t)(an >> 8);
	w.b[7] = (uint8_t)(an & 0xff);
	sendto(srv.fd, w.b, w.n, 0, (const struct sockaddr *)from, sizeof(*from));
}

static void *server_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&srv.stop)) {
		struct pollfd p = { .fd = srv.fd, .events = POLLIN };
		uint8_t q[512];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recvfrom(srv.fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n > 0)
			answer(q, (size_t)n, &from);
	}
	return NULL;
}

/* ---- the loop the answers come back on ---- */

static struct {
	struct loop *loop;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned got;
	struct dns_answer ans;
} lp = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *loop_main(void *arg)
{
	(void)arg;
	loop_run(lp.loop);
	return NULL;
}

static void on_answer(const struct dns_answer *ans, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lp.lock);
	memcpy(&lp.ans, ans, sizeof(*ans));
	lp.got++;
	pthread_cond_broadcast(&lp.cond);
	pthread_mutex_unlock(&lp.lock);
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Asks and waits for the answer (up to 5 s); returns its status, the answer in lp.ans. */
static int ask(struct dns *d, const char *name, enum dns_type type)
{
	struct timespec until;
	unsigned before;
	int rc;

	pthread_mutex_lock(&lp.lock);
	before = lp.got;
	pthread_mutex_unlock(&lp.lock);
	assert_int_equal(dns_query(d, lp.loop, name, type, on_answer, NULL, NULL), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&lp.lock);
	rc = 0;
	while (lp.got == before && rc == 0)
		rc = pthread_cond_timedwait(&lp.cond, &lp.lock, &until);
	pthread_mutex_unlock(&lp.lock);
	assert_int_equal(rc, 0);
	return lp.ans.status;
}

static struct dns *resolver(unsigned timeout_ms, unsigned max_queries)
{
	char servers[64];
	struct dns_config c = { .servers = servers, .timeout_ms = timeout_ms, .cache_size = 64, .max_ttl = 3600,
				.negative_ttl = 30, .max_queries = max_queries };
	struct dns *d = NULL;

	snprintf(servers, sizeof(servers), "127.0.0.1:%u", srv.port);
	assert_int_equal(dns_new(&d, &c), 0);
	return d;
}

static int setup(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	(void)state;
	log_set_level(LOG_WARN);
	srv.fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(srv.fd, (struct sockaddr *)&a, &al))
		return -1;
	srv.port = ntohs(a.sin_port);
	if (pthread_create(&srv.thread, NULL, server_main, NULL) || loop_new(&lp.loop) ||
	    pthread_create(&lp.thread, NULL, loop_main, NULL))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	atomic_store(&srv.stop, true);
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	loop_stop(lp.loop);
	pthread_join(lp.thread, NULL);
	loop_free(lp.loop);
	return 0;
}

/* ---- cases ---- */

static void test_records_bounded(void **state)
{
	struct dns *d = resolver(2000, 0);

	(void)state;
	assert_int_equal(ask(d, "many.test", DNS_A), 0); /* 30 A records: the first DNS_MAX_RR kept */
	assert_int_equal(lp.ans.n, DNS_MAX_RR);
	assert_int_equal(lp.ans.rr[0].u.a.family, AF_INET);
	assert_int_equal(lp.ans.rr[0].u.a.addr[0], 127);
	assert_int_equal(lp.ans.rr[0].ttl, 300);
	dns_free(d);
}

static void test_naptr_fields(void **state)
{
	struct dns *d = resolver(2000, 0);

	(void)state;
	assert_int_equal(ask(d, "naptr.test", DNS_NAPTR), 0);
	assert_int_equal(lp.ans.n, 1); /* the oversized flags and the regexp record are dropped */
	assert_string_equal(lp.ans.rr[0].u.naptr.service, "SIP+D2T");
	assert_string_equal(lp.ans.rr[0].u.naptr.flags, "s");
	assert_string_equal(lp.ans.rr[0].u.naptr.replacement, "_sip._tcp.good.test");
	assert_int_equal(lp.ans.rr[0].u.naptr.order, 20);
	assert_int_equal(lp.ans.rr[0].ttl, 300); /* walked by hand: c-ares 1.18 gives no NAPTR TTL */
	dns_free(d);
}

static void test_malformed_and_failures(void **state)
{
	struct dns *d = resolver(2000, 0);

	(void)state;
	assert_int_equal(ask(d, "loop.test", DNS_SRV), EIO);      /* compression loop */
	assert_int_equal(ask(d, "trunc.test", DNS_A), EIO);       /* an answer announced, none there */
	assert_int_equal(ask(d, "nx.test", DNS_A), ENOENT);       /* NXDOMAIN */
	assert_int_equal(ask(d, "servfail.test", DNS_A), EIO);    /* SERVFAIL */
	assert_int_equal(ask(d, "unknown.test", DNS_A), ETIMEDOUT); /* the server ignores it */
	dns_free(d);
}

static void test_deadline(void **state)
{
	struct dns *d = resolver(300, 0);
	uint64_t t0 = ms_now(), dt;

	(void)state;
	assert_int_equal(ask(d, "silent.test", DNS_NAPTR), ETIMEDOUT);
	dt = ms_now() - t0;
	assert_in_range(dt, 250, 1500);
	assert_true(atomic_load(&srv.asked[6]) >= 1);
	dns_free(d);
}

static void test_cache_ttl(void **state)
{
	struct dns *d = resolver(2000, 0);

	(void)state;
	assert_int_equal(ask(d, "ttl.test", DNS_SRV), 0);
	assert_int_equal(lp.ans.rr[0].u.srv.port, 5070);
	assert_string_equal(lp.ans.rr[0].u.srv.target, "target.test");
	assert_int_equal(lp.ans.rr[0].ttl, 1);
	assert_int_equal(ask(d, "TTL.test.", DNS_SRV), 0); /* same name: case and the root dot do not matter */
	assert_int_equal(atomic_load(&srv.asked[7]), 1);   /* from the cache */
	usleep(1100 * 1000);
	assert_int_equal(ask(d, "ttl.test", DNS_SRV), 0);  /* the TTL (1 s) ran out: asked again */
	assert_int_equal(atomic_load(&srv.asked[7]), 2);
	assert_int_equal(ask(d, "zero.test", DNS_A), 0);   /* TTL 0: never cached */
	assert_int_equal(ask(d, "zero.test", DNS_A), 0);
	assert_int_equal(atomic_load(&srv.asked[8]), 2);
	assert_int_equal(ask(d, "neg.test", DNS_A), ENOENT); /* NXDOMAIN kept negative_ttl seconds */
	assert_int_equal(ask(d, "neg.test", DNS_A), ENOENT);
	assert_int_equal(atomic_load(&srv.asked[9]), 1);
	dns_cache_flush(d);
	assert_int_equal(ask(d, "neg.test", DNS_A), ENOENT);
	assert_int_equal(atomic_load(&srv.asked[9]), 2);
	dns_free(d);
}

struct cancel_job {
	struct dns *d;
	int err;
	atomic_bool done;
};

static void cancel_on_loop(void *arg)
{
	struct cancel_job *j = arg;
	struct dns_query *q = NULL;

	j->err = dns_query(j->d, lp.loop, "silent.test", DNS_A, on_answer, NULL, &q);
	dns_cancel(q); /* on the loop, before any answer: the handler never runs */
	atomic_store(&j->done, true);
}

static void test_cancel_and_limit(void **state)
{
	struct dns *d = resolver(300, 2);
	struct cancel_job j = { .d = d };
	unsigned before;

	(void)state;
	pthread_mutex_lock(&lp.lock);
	before = lp.got;
	pthread_mutex_unlock(&lp.lock);
	assert_int_equal(loop_post(lp.loop, cancel_on_loop, &j), 0);
	while (!atomic_load(&j.done))
		usleep(1000);
	assert_int_equal(j.err, 0);
	usleep(600 * 1000); /* past the deadline: the ETIMEDOUT was posted, and dropped */
	pthread_mutex_lock(&lp.lock);
	assert_int_equal(lp.got, before);
	pthread_mutex_unlock(&lp.lock);
	/* two questions in flight at most: a third is refused at once */
	assert_int_equal(dns_query(d, lp.loop, "silent.test", DNS_A, on_answer, NULL, NULL), 0);
	assert_int_equal(dns_query(d, lp.loop, "silent.test", DNS_AAAA, on_answer, NULL, NULL), 0);
	assert_int_equal(dns_query(d, lp.loop, "silent.test", DNS_SRV, on_answer, NULL, NULL), EAGAIN);
	assert_int_equal(dns_query(d, lp.loop, "", DNS_A, on_answer, NULL, NULL), EINVAL);
	dns_free(d); /* with questions in flight: dropped, nothing leaks */
}

static void test_bad_servers(void **state)
{
	struct dns_config c = { .servers = "not-an-address", .timeout_ms = 100 };
	struct dns *d = NULL;

	(void)state;
	assert_int_equal(dns_new(&d, &c), EINVAL);
	assert_null(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_bounded),
		cmocka_unit_test(test_naptr_fields),
		cmocka_unit_test(test_malformed_and_failures),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_cache_ttl),
		cmocka_unit_test(test_cancel_and_limit),
		cmocka_unit_test(test_bad_servers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
