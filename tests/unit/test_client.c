/* test_client.c: client transactions (RFC 3261 17.1) on a fake clock: Timers A and B of an INVITE and E
 * and F of a non-INVITE to the millisecond, what a provisional response changes, the ACK of a non-2xx
 * final and Timer D, Timer K, responses that do not belong to the request (8.2.6.2), transport errors
 * (8.1.3.1), a TU that lets go, and a response received by one thread for a transaction another thread
 * owns. Requests leave through a real transport (one UDP worker on 127.0.0.1) for a socket of the test's,
 * the next hop, which reads them as they were sent; the loop whose wheel runs the timers is never run:
 * the test advances it, and reads the next hop's socket after each step. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "base/mem.h"
#include "base/timer.h"
#include "net/loop.h"
#include "net/transport.h"
#include "sip/msg.h"
#include "txn/txn.h"

#define T1 500u
#define T2 4000u
#define T4 5000u
#define CRLF "\r\n"
#define MAX_HEARD 8

/* What the TU heard: each callback's code, when, and the To tag of the response (none: NULL resp). */
struct heard {
	unsigned code;
	uint64_t at;
	bool resp;
	char to_tag[32];
	struct loop *on;  /* loop_current() in the callback */
};

static struct fx {
	struct tp *tp;
	struct tp_worker *w;
	int hop;                 /* the next hop's socket */
	struct tp_addr dst;      /* its address */
	struct loop *l;
	struct txn_table *tt;
	uint64_t base;
	struct heard heard[MAX_HEARD];
	atomic_uint nheard;
	char last[2048];         /* the last datagram the next hop read */
	unsigned passed;         /* 2xx handed to accepted_2xx (RFC 6026 8.4) */
	char passed_tag[32];     /* the To tag of the last of them */
} fx;

static uint64_t now_ms(void)
{
	return tmr_wheel_now(loop_timers(fx.l)) - fx.base;
}

/* When a lazy timer (tmr_start_lazy) due at ms fires: the next multiple of TMR_LAZY_MS of wheel time. */
static uint64_t lazy_due(uint64_t ms)
{
	return (fx.base + ms + TMR_LAZY_MS - 1) / TMR_LAZY_MS * TMR_LAZY_MS - fx.base;
}

static void on_tu(struct txn_client *ct, unsigned code, const struct sip_msg *resp, void *arg)
{
	unsigned i = atomic_load(&fx.nheard);

	(void)ct;
	assert_ptr_equal(arg, &fx);
	assert_true(i < MAX_HEARD);
	fx.heard[i] = (struct heard){ .code = code, .at = now_ms(), .resp = resp != NULL, .on = loop_current() };
	if (resp && resp->to.tag.p)
		snprintf(fx.heard[i].to_tag, sizeof(fx.heard[i].to_tag), "%.*s", (int)resp->to.tag.l, resp->to.tag.p);
	atomic_store(&fx.nheard, i + 1);
}

/* The table's accepted_2xx: a 2xx that an Accepted INVITE transaction matched. */
static void on_2xx(const struct sip_msg *resp, void *arg)
{
	assert_ptr_equal(arg, &fx);
	fx.passed++;
	snprintf(fx.passed_tag, sizeof(fx.passed_tag), "%.*s", (int)resp->to.tag.l, resp->to.tag.p);
}

/* The server side's send, which no test here uses. */
static int on_server_send(struct txn *t, const char *buf, size_t len, void *arg)
{
	(void)t, (void)buf, (void)len, (void)arg;
	fail_msg("a server transaction sent");
	return 0;
}

static long frame_none(const char *buf, size_t len, size_t max)
{
	(void)buf, (void)max;
	return (long)len;
}

static void recv_none(struct tp_msg *msg, void *arg)
{
	(void)msg, (void)arg;
}

static int group_setup(void **state)
{
	struct tp_config cfg = { .workers = 1, .max_msg_size = 65535, .frame = frame_none, .recv = recv_none };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	(void)state;
	cfg.listen[0].proto = TP_UDP;
	cfg.nlisten = 1;
	if (tp_addr_parse(&cfg.listen[0].addr, "127.0.0.1", 0) || tp_start(&fx.tp, &cfg))
		return -1;
	fx.w = tp_worker_at(fx.tp, 0);
	fx.hop = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!fx.w || fx.hop < 0 || bind(fx.hop, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fx.hop, (struct sockaddr *)&a, &alen))
		return -1;
	return tp_addr_parse(&fx.dst, "127.0.0.1", ntohs(a.sin_port)) ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tp_stop(fx.tp);
	close(fx.hop);
	return 0;
}

static void table_make(bool single_thread)
{
	struct txn_table_config cfg = {
		.timers = { T1, T2, T4 },
		.send = on_server_send,
		.accepted_2xx = on_2xx,
		.single_thread = single_thread,
		.arg = &fx,
	};

	assert_int_equal(txn_table_new(&fx.tt, &cfg), 0);
}

static int setup(void **state)
{
	(void)state;
	atomic_store(&fx.nheard, 0);
	memset(fx.heard, 0, sizeof(fx.heard));
	fx.passed = 0;
	fx.passed_tag[0] = '\0';
	if (loop_new(&fx.l))
		return -1;
	fx.base = tmr_wheel_now(loop_timers(fx.l));
	table_make(true);
	return 0;
}

static int teardown(void **state)
{
	char junk[2048];

	(void)state;
	txn_table_free(fx.tt);
	fx.tt = NULL;
	loop_free(fx.l);
	fx.l = NULL;
	while (recv(fx.hop, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		; /* what a failed test left for the next one */
	return 0;
}

/* ---- the next hop's side ---- */

/* The datagrams waiting at the next hop, read (the last one kept in fx.last). wait_ms: how long to wait
 * for the first: the transport sends on the test's thread, so a datagram is there when tp_send returns,
 * and the wait only makes room for a slow machine. */
static unsigned hop_read(int wait_ms)
{
	unsigned n = 0;
	struct pollfd p = { fx.hop, POLLIN, 0 };

	while (poll(&p, 1, n ? 0 : wait_ms) == 1) {
		ssize_t got = recv(fx.hop, fx.last, sizeof(fx.last) - 1, MSG_DONTWAIT);

		if (got <= 0)
			break;
		fx.last[got] = '\0';
		n++;
	}
	return n;
}

static void advance_to(uint64_t ms)
{
	tmr_wheel_advance(loop_timers(fx.l), fx.base + ms);
	assert_int_equal(now_ms(), ms);
}

/* Nothing reaches the next hop until ms; then exactly one datagram, starting with what. */
static void sent_at(uint64_t ms, const char *what)
{
	advance_to(ms - 1);
	assert_int_equal(hop_read(0), 0);
	advance_to(ms);
	assert_int_equal(hop_read(1000), 1);
	assert_memory_equal(fx.last, what, strlen(what));
}

/* Nothing reaches the next hop up to ms. */
static void quiet_until(uint64_t ms)
{
	advance_to(ms);
	assert_int_equal(hop_read(0), 0);
}

/* ---- requests and responses ---- */

#define BRANCH "z9hG4bK-ct-1"
#define CALL_ID "ct-1@127.0.0.1"

static struct txn_client *send_request(const char *method, enum tp_proto proto)
{
	char buf[512];
	struct txn_client *ct = NULL;
	int n = snprintf(buf, sizeof(buf),
			 "%s sip:bob@127.0.0.1 SIP/2.0" CRLF
			 "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=" BRANCH CRLF
			 "Max-Forwards: 70" CRLF
			 "From: <sip:alice@127.0.0.1>;tag=ft-1" CRLF
			 "To: <sip:bob@127.0.0.1>" CRLF
			 "Call-ID: " CALL_ID CRLF
			 "CSeq: 7 %s" CRLF
			 "Content-Length: 0" CRLF CRLF,
			 method, method);

	assert_int_equal(txn_client_send(&ct, fx.tt, fx.l, buf, (size_t)n, NULL, fx.w, TP_LSN_ANY, proto, &fx.dst, on_tu, &fx), 0);
	assert_non_null(ct);
	if (proto == TP_UDP) {
		assert_int_equal(hop_read(1000), 1);
		assert_memory_equal(fx.last, buf, (size_t)n);
	}
	return ct;
}

/* A response as the next hop sends it; NULL fields take the request's values. */
struct rs {
	unsigned code;
	const char *method;  /* of the CSeq */
	unsigned cseq;
	const char *to_tag;  /* "" for none */
	const char *call_id;
};

/* Builds r into buf and parses it into m (which points into buf). */
static void resp_make(struct sip_msg *m, char *buf, size_t cap, struct rs r)
{
	struct sip_error err;
	char to_tag[48] = "";
	int n;

	if (!r.to_tag)
		r.to_tag = "tt-1";
	if (r.to_tag[0])
		snprintf(to_tag, sizeof(to_tag), ";tag=%s", r.to_tag);
	n = snprintf(buf, cap,
		     "SIP/2.0 %u Whatever" CRLF
		     "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=" BRANCH CRLF
		     "From: <sip:alice@127.0.0.1>;tag=ft-1" CRLF
		     "To: <sip:bob@127.0.0.1>%s" CRLF
		     "Call-ID: %s" CRLF
		     "CSeq: %u %s" CRLF
		     "Content-Length: 0" CRLF CRLF,
		     r.code, to_tag, r.call_id ? r.call_id : CALL_ID, r.cseq ? r.cseq : 7, r.method ? r.method : "INVITE");
	assert_true(n > 0 && (size_t)n < cap);
	assert_int_equal(sip_msg_parse(m, buf, (size_t)n, &err), 0);
	assert_int_equal(sip_msg_check(m, &err), 0);
}

/* The response r arriving from the network: 0 when a client transaction took it, ENOENT if none. */
static int respond(struct rs r)
{
	char buf[1024];
	struct sip_msg m;

	resp_make(&m, buf, sizeof(buf), r);
	return txn_client_recv(fx.tt, &m, NULL);
}

static void assert_heard(unsigned i, unsigned code, uint64_t at, bool resp)
{
	assert_true(i < atomic_load(&fx.nheard));
	assert_int_equal(fx.heard[i].code, code);
	assert_int_equal(fx.heard[i].at, at);
	assert_int_equal(fx.heard[i].resp, resp);
}

/* The ACK the next hop got last (17.1.1.3): the INVITE's Request-URI, top Via (same branch), From and
 * Call-ID, the response's To (with its tag), CSeq with the INVITE's number and ACK. */
static void assert_ack(const char *to_tag)
{
	char to[96];

	snprintf(to, sizeof(to), "To: <sip:bob@127.0.0.1>;tag=%s" CRLF, to_tag);
	assert_memory_equal(fx.last, "ACK sip:bob@127.0.0.1 SIP/2.0" CRLF, 31);
	assert_non_null(strstr(fx.last, "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=" BRANCH CRLF));
	assert_non_null(strstr(fx.last, "From: <sip:alice@127.0.0.1>;tag=ft-1" CRLF));
	assert_non_null(strstr(fx.last, to));
	assert_non_null(strstr(fx.last, "Call-ID: " CALL_ID CRLF));
	assert_non_null(strstr(fx.last, "CSeq: 7 ACK" CRLF));
}

/* ---- INVITE (17.1.1) ---- */

/* Timer A doubles from T1 (sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s); Timer B ends the
 * transaction at 64*T1 with a 408 to the TU, and nothing is sent after. */
static void test_invite_timer_a_then_b(void **state)
{
	static const uint64_t retx[] = { 500, 1500, 3500, 7500, 15500, 31500 };
	struct txn_client *ct;

	(void)state;
	ct = send_request("INVITE", TP_UDP);
	for (size_t i = 0; i < sizeof(retx) / sizeof(retx[0]); i++)
		sent_at(retx[i], "INVITE ");
	advance_to(31999);
	assert_int_equal(atomic_load(&fx.nheard), 0);
	advance_to(32000);
	assert_int_equal(atomic_load(&fx.nheard), 1);
	assert_heard(0, 408, 32000, false);
	assert_true(txn_client_final(ct));
	quiet_until(100000);
	assert_int_equal(respond((struct rs){ .code = 486 }), ENOENT);
	assert_int_equal(atomic_load(&fx.nheard), 1);
	mem_deref(ct);
}

/* A provisional response stops Timer A and Timer B (17.1.1.2: ringing is bounded by the proxy's Timer
 * C, not B); a first 100 is passed to the TU (a CANCEL may go once it came, 9.1), a second one not, a
 * 180 is. The final still comes through, ACKed. */
static void test_invite_provisional_stops_a_and_b(void **state)
{
	struct txn_client *ct;

	(void)state;
	ct = send_request("INVITE", TP_UDP);
	advance_to(100);
	assert_int_equal(respond((struct rs){ .code = 100, .to_tag = "" }), 0);
	assert_heard(0, 100, 100, true);
	assert_int_equal(respond((struct rs){ .code = 100, .to_tag = "" }), 0);
	assert_int_equal(atomic_load(&fx.nheard), 1);
	quiet_until(400);
	assert_int_equal(respond((struct rs){ .code = 180 }), 0);
	assert_heard(1, 180, 400, true);
	assert_string_equal(fx.heard[1].to_tag, "tt-1");
	quiet_until(100000);
	assert_int_equal(atomic_load(&fx.nheard), 2);
	assert_false(txn_client_final(ct));
	assert_int_equal(respond((struct rs){ .code = 486 }), 0);
	assert_heard(2, 486, 100000, true);
	assert_int_equal(hop_read(1000), 1);
	assert_ack("tt-1");
	mem_deref(ct);
}

/* A non-2xx final: the TU hears it once, the ACK goes out at once and again for each retransmission of
 * the final, the INVITE is never sent again, and Timer D (32 s over UDP) ends the transaction. */
static void test_invite_486_ack_and_timer_d(void **state)
{
	struct txn_client *ct;

	(void)state;
	ct = send_request("INVITE", TP_UDP);
	advance_to(100);
	assert_int_equal(respond((struct rs){ .code = 486, .to_tag = "busy" }), 0);
	assert_heard(0, 486, 100, true);
	assert_int_equal(hop_read(1000), 1);
	assert_ack("busy");
	assert_true(txn_client_final(ct));
	quiet_until(5000);
	assert_int_equal(respond((struct rs){ .code = 486, .to_tag = "busy" }), 0);
	assert_int_equal(hop_read(1000), 1);
	assert_ack("busy");
	assert_int_equal(atomic_load(&fx.nheard), 1);
	quiet_until(lazy_due(32100) - 1);
	assert_int_equal(respond((struct rs){ .code = 486, .to_tag = "busy" }), 0); /* still absorbed */
	assert_int_equal(hop_read(1000), 1);
	advance_to(lazy_due(32100));
	assert_int_equal(respond((struct rs){ .code = 486, .to_tag = "busy" }), ENOENT);
	assert_int_equal(hop_read(0), 0);
	assert_int_equal(atomic_load(&fx.nheard), 1);
	mem_deref(ct);
}

/* A 2xx leaves the INVITE transaction Accepted until Timer M, 64*T1 (RFC 6026 8.4): the TU hears the
 * first 2xx; every later valid one (a retransmission, another fork's with its own To tag) goes to the
 * table's accepted_2xx; a 1xx, a non-2xx final or a 2xx that does not answer the request is absorbed.
 * Nothing is sent: no ACK (the 2xx's is end to end), no retransmission of the INVITE. After Timer M
 * nothing matches (a transaction-stateful proxy then drops the response, RFC 6026 7.3). */
static void test_invite_2xx_accepted_until_timer_m(void **state)
{
	struct txn_client *ct;

	(void)state;
	ct = send_request("INVITE", TP_UDP);
	advance_to(300);
	assert_int_equal(respond((struct rs){ .code = 200 }), 0);
	assert_heard(0, 200, 300, true);
	assert_true(txn_client_final(ct));
	assert_int_equal(fx.passed, 0);
	assert_int_equal(respond((struct rs){ .code = 200 }), 0);
	assert_int_equal(fx.passed, 1);
	assert_string_equal(fx.passed_tag, "tt-1");
	assert_int_equal(respond((struct rs){ .code = 202, .to_tag = "tt-2" }), 0);
	assert_int_equal(fx.passed, 2);
	assert_string_equal(fx.passed_tag, "tt-2");
	assert_int_equal(respond((struct rs){ .code = 486, .to_tag = "busy" }), 0);
	assert_int_equal(respond((struct rs){ .code = 180 }), 0);
	assert_int_equal(respond((struct rs){ .code = 200, .call_id = "other@127.0.0.1" }), 0);
	assert_int_equal(respond((struct rs){ .code = 200, .cseq = 8 }), 0);
	assert_int_equal(fx.passed, 2);
	quiet_until(lazy_due(300 + 64 * T1) - 1);
	assert_int_equal(respond((struct rs){ .code = 200, .to_tag = "tt-3" }), 0);
	assert_int_equal(fx.passed, 3);
	advance_to(lazy_due(300 + 64 * T1));
	assert_int_equal(respond((struct rs){ .code = 200 }), ENOENT);
	assert_int_equal(fx.passed, 3);
	quiet_until(lazy_due(300 + 64 * T1) + 40000);
	assert_int_equal(atomic_load(&fx.nheard), 1);
	mem_deref(ct);
}

/* The Accepted record of an answered INVITE stands alone once the TU has let go of the transaction,
 * still matching another fork's 2xx; the table, freed while it holds the record, frees it too
 * (LeakSanitizer would tell). */
static void test_invite_2xx_record_freed_with_table(void **state)
{
	struct txn_client *ct;

	(void)state;
	ct = send_request("INVITE", TP_UDP);
	assert_int_equal(respond((struct rs){ .code = 200 }), 0);
	mem_deref(ct); /* the TU lets go at once: the record stands alone */
	advance_to(1000);
	assert_int_equal(respond((struct rs){ .code = 200, .to_tag = "fork" }), 0);
	assert_int_equal(fx.passed, 1);
	assert_string_equal(fx.passed_tag, "fork");
}

/* ---- non-INVITE (17.1.2) ---- */

/* Timer E doubles from T1 up to T2 (sends at 0, 0.5, 1.5, 3.5, 7.5, then every 4 s to 31.5); Timer F
 * ends the transaction at 64*T1 with a 408. */
static void test_non_invite_timer_e_then_f(void **state)
{
	static const uint64_t retx[] = { 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500 };
	struct txn_client *ct;

	(void)state;
	ct = send_request("OPTIONS", TP_UDP);
	for (size_t i = 0; i < sizeof(retx) / sizeof(retx[0]); i++)
		sent_at(retx[i], "OPTIONS ");
	advance_to(31999);
	assert_int_equal(atomic_load(&fx.nheard), 0);
	advance_to(32000);
	assert_heard(0, 408, 32000, false);
	quiet_until(100000);
	assert_int_equal(atomic_load(&fx.nheard), 1);
	mem_deref(ct);
}

/* After a provisional (Proceeding) Timer E fires at T2 (17.1.2.2); the 200 stops it, the TU hears it
 * once, and Timer K (T4) absorbs its retransmissions without a word to the TU or the network. */
static void test_non_invite_proceeding_then_timer_k(void **state)
{
	struct txn_client *ct;

	(void)state;
	ct = send_request("BYE", TP_UDP);
	sent_at(500, "BYE ");
	advance_to(700);
	assert_int_equal(respond((struct rs){ .code = 100, .method = "BYE", .to_tag = "" }), 0);
	assert_heard(0, 100, 700, true);
	sent_at(1500, "BYE "); /* E was due: it fires, then comes back at T2 */
	sent_at(5500, "BYE ");
	sent_at(9500, "BYE ");
	advance_to(10000);
	assert_int_equal(respond((struct rs){ .code = 200, .method = "BYE" }), 0);
	assert_heard(1, 200, 10000, true);
	quiet_until(lazy_due(15000) - 1);
	assert_int_equal(respond((struct rs){ .code = 200, .method = "BYE" }), 0);
	assert_int_equal(hop_read(0), 0); /* no ACK for a non-INVITE */
	advance_to(lazy_due(15000));
	assert_int_equal(respond((struct rs){ .code = 200, .method = "BYE" }), ENOENT);
	quiet_until(40000);
	assert_int_equal(atomic_load(&fx.nheard), 2); /* the 100 and the 200 */
	mem_deref(ct);
}

/* Over a reliable transport nothing is sent again, and a final ends the transaction at once (Timers D
 * and K are zero, 17.1.1.2 and 17.1.2.2). The request goes to a closed TCP port: Timer B still bounds
 * the wait when no error is reported, and it is the one told here, since the transport's connection
 * failure goes to the core, not to the table. */
static void test_reliable_no_retransmission(void **state)
{
	struct txn_client *ct;

	(void)state;
	ct = send_request("INVITE", TP_TCP);
	quiet_until(31999);
	assert_int_equal(atomic_load(&fx.nheard), 0);
	advance_to(32000);
	assert_heard(0, 408, 32000, false);
	mem_deref(ct);

	ct = send_request("OPTIONS", TP_TCP);
	advance_to(33000);
	assert_int_equal(respond((struct rs){ .code = 200, .method = "OPTIONS" }), 0);
	assert_heard(1, 200, 33000, true);
	assert_int_equal(respond((struct rs){ .code = 200, .method = "OPTIONS" }), ENOENT);
	mem_deref(ct);
}

/* ---- responses that do not belong (8.2.6.2) ---- */

/* A provisional with another CSeq number is dropped (the INVITE keeps being sent); a final with another
 * Call-ID ends the transaction as an invalid answer: the TU hears 502 (no response), the final is ACKed. */
static void test_invalid_responses(void **state)
{
	struct txn_client *ct;

	(void)state;
	ct = send_request("INVITE", TP_UDP);
	advance_to(100);
	assert_int_equal(respond((struct rs){ .code = 180, .cseq = 8 }), 0);
	assert_int_equal(atomic_load(&fx.nheard), 0);
	sent_at(500, "INVITE "); /* still Calling: Timer A runs on */
	advance_to(600);
	assert_int_equal(respond((struct rs){ .code = 486, .to_tag = "x", .call_id = "other@127.0.0.1" }), 0);
	assert_heard(0, 502, 600, false);
	assert_int_equal(hop_read(1000), 1);
	assert_ack("x");
	quiet_until(20000);
	mem_deref(ct);

	/* a final without a To tag cannot make a dialog, nor end a non-INVITE honestly */
	ct = send_request("OPTIONS", TP_UDP);
	assert_int_equal(respond((struct rs){ .code = 200, .method = "OPTIONS", .to_tag = "" }), 0);
	assert_heard(1, 502, 20000, false);
	quiet_until(21000);
	mem_deref(ct);
}

/* ---- transport errors (8.1.3.1, 17.1.4) and a TU that lets go ---- */

/* A connection failure (or an ICMP error) toward the next hop ends every transaction sent there that had
 * no response yet as a 503 at once; one that already heard a provisional goes on. */
static void test_transport_error_is_503(void **state)
{
	struct txn_client *ringing, *waiting;
	char buf[512];
	int n;

	(void)state;
	ringing = send_request("INVITE", TP_UDP);
	assert_int_equal(respond((struct rs){ .code = 180 }), 0);
	n = snprintf(buf, sizeof(buf),
		     "OPTIONS sip:bob@127.0.0.1 SIP/2.0" CRLF
		     "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ct-2" CRLF
		     "From: <sip:alice@127.0.0.1>;tag=ft-2" CRLF
		     "To: <sip:bob@127.0.0.1>" CRLF
		     "Call-ID: ct-2@127.0.0.1" CRLF
		     "CSeq: 1 OPTIONS" CRLF CRLF);
	assert_int_equal(txn_client_send(&waiting, fx.tt, fx.l, buf, (size_t)n, NULL, fx.w, TP_LSN_ANY, TP_UDP, &fx.dst, on_tu, &fx), 0);
	assert_int_equal(hop_read(1000), 1);
	advance_to(200);
	txn_client_conn_failed(fx.tt, TP_UDP, &fx.dst, ECONNREFUSED, false);
	assert_int_equal(atomic_load(&fx.nheard), 2);
	assert_heard(1, 503, 200, false);
	assert_false(txn_client_conn_lost(waiting));
	assert_true(txn_client_final(waiting));
	assert_false(txn_client_final(ringing));
	quiet_until(40000); /* neither is sent again */
	assert_int_equal(respond((struct rs){ .code = 200 }), 0);
	assert_heard(2, 200, 40000, true);
	mem_deref(ringing);
	mem_deref(waiting);
}

/* Detached, a transaction tells its TU nothing more, yet still ACKs a non-2xx final; abandoned (16.8), it
 * ends at once: nothing is sent again and its responses match nothing. */
static void test_detach_and_abandon(void **state)
{
	struct txn_client *ct;

	(void)state;
	ct = send_request("INVITE", TP_UDP);
	txn_client_detach(ct);
	assert_int_equal(respond((struct rs){ .code = 603, .to_tag = "no" }), 0);
	assert_int_equal(hop_read(1000), 1);
	assert_ack("no");
	assert_int_equal(atomic_load(&fx.nheard), 0);
	advance_to(lazy_due(32000));
	mem_deref(ct);

	ct = send_request("INVITE", TP_UDP);
	assert_int_equal(respond((struct rs){ .code = 180 }), 0);
	assert_int_equal(atomic_load(&fx.nheard), 1);
	txn_client_abandon(ct);
	assert_true(txn_client_final(ct));
	assert_int_equal(respond((struct rs){ .code = 200 }), ENOENT);
	quiet_until(lazy_due(32000) + 40000);
	assert_int_equal(atomic_load(&fx.nheard), 1);
	mem_deref(ct);
}

/* ---- a response for a transaction another thread owns ---- */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool busy, release;
	struct txn_client *ct;
} own = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, NULL };

static void *owner_main(void *arg)
{
	loop_run(arg);
	return NULL;
}

static void owner_send(void *arg)
{
	struct txn_client *ct = send_request("INVITE", TP_UDP);

	(void)arg;
	pthread_mutex_lock(&own.lock);
	own.ct = ct;
	pthread_cond_broadcast(&own.cond);
	pthread_mutex_unlock(&own.lock);
}

/* A job that keeps the owner's loop busy (it holds the loop's run lock while it runs) until released. */
static void owner_block(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&own.lock);
	own.busy = true;
	pthread_cond_broadcast(&own.cond);
	while (!own.release)
		pthread_cond_wait(&own.cond, &own.lock);
	pthread_mutex_unlock(&own.lock);
}

static void wait_heard(unsigned n)
{
	for (int i = 0; i < 5000 && atomic_load(&fx.nheard) < n; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&fx.nheard), n);
}

/* The owner busy: the response is handed over (a copy: the receiver's buffer is gone by the time the
 * owner reads it) and the TU hears it on the owner's loop. The owner idle again: the TU hears the final
 * as the owner too (run by the receiving thread under the owner's run lock, or handed over if the owner
 * happens to be awake), and the ACK goes out. */
static void test_response_for_another_thread(void **state)
{
	struct loop *owner;
	pthread_t th;
	char buf[1024];
	struct sip_msg m;

	(void)state;
	txn_table_free(fx.tt);
	table_make(false);
	assert_int_equal(loop_new(&owner), 0);
	assert_int_equal(pthread_create(&th, NULL, owner_main, owner), 0);
	/* the transaction's timers belong to the owner's wheel: it is sent from there */
	loop_free(fx.l);
	fx.l = owner;
	fx.base = tmr_wheel_now(loop_timers(owner));
	assert_int_equal(loop_post(owner, owner_send, NULL), 0);
	assert_int_equal(loop_post(owner, owner_block, NULL), 0);
	pthread_mutex_lock(&own.lock);
	while (!own.ct || !own.busy)
		pthread_cond_wait(&own.cond, &own.lock);
	pthread_mutex_unlock(&own.lock);
	resp_make(&m, buf, sizeof(buf), (struct rs){ .code = 180, .to_tag = "posted" });
	assert_int_equal(txn_client_recv(fx.tt, &m, NULL), 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(atomic_load(&fx.nheard), 0);
	pthread_mutex_lock(&own.lock);
	own.release = true;
	pthread_cond_broadcast(&own.cond);
	pthread_mutex_unlock(&own.lock);
	wait_heard(1);
	assert_int_equal(fx.heard[0].code, 180);
	assert_string_equal(fx.heard[0].to_tag, "posted");
	assert_ptr_equal(fx.heard[0].on, owner);

	usleep(20000); /* most likely the owner is back in epoll_wait, its run lock free */
	resp_make(&m, buf, sizeof(buf), (struct rs){ .code = 486, .to_tag = "posted" });
	assert_int_equal(txn_client_recv(fx.tt, &m, NULL), 0);
	wait_heard(2);
	assert_int_equal(fx.heard[1].code, 486);
	assert_ptr_equal(fx.heard[1].on, owner);
	assert_int_equal(hop_read(1000), 1);
	assert_ack("posted");

	loop_stop(owner);
	pthread_join(th, NULL);
	mem_deref(own.ct);
	txn_table_free(fx.tt); /* only once no thread runs its transactions */
	fx.tt = NULL;
}

/* A client transaction's request counts in the table's held bytes ([limits] max_transactions x 2 kB)
 * while it keeps it, and so do the bytes a TU holds (txn_table_hold, a proxy's copies per branch):
 * past max_held a new one is refused with ENOBUFS, and the final that frees the request makes room. */
static void test_held_bytes(void **state)
{
	struct txn_table_config cfg = {
		.timers = { T1, T2, T4 },
		.send = on_server_send,
		.accepted_2xx = on_2xx,
		.single_thread = true,
		.max_held = 1, /* the first holder takes the table past it */
		.arg = &fx,
	};
	static const char req[] = "OPTIONS sip:bob@127.0.0.1 SIP/2.0" CRLF
				  "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ct-2" CRLF
				  "Max-Forwards: 70" CRLF "From: <sip:alice@127.0.0.1>;tag=ft-2" CRLF
				  "To: <sip:bob@127.0.0.1>" CRLF "Call-ID: ct-2@127.0.0.1" CRLF "CSeq: 1 OPTIONS" CRLF
				  "Content-Length: 0" CRLF CRLF;
	struct txn_client *ct, *refused = NULL;

	(void)state;
	txn_table_free(fx.tt);
	assert_int_equal(txn_table_new(&fx.tt, &cfg), 0);
	ct = send_request("INVITE", TP_UDP);
	assert_int_equal(txn_client_send(&refused, fx.tt, fx.l, req, sizeof(req) - 1, NULL, fx.w, TP_LSN_ANY, TP_UDP, &fx.dst,
					 on_tu, &fx), ENOBUFS);
	assert_null(refused);
	assert_int_equal(hop_read(0), 0); /* nothing sent */
	assert_int_equal(txn_table_hold(fx.tt, 100), ENOBUFS);
	/* the final frees the INVITE (Completed keeps only what absorbs retransmissions): room again */
	assert_int_equal(respond((struct rs){ .code = 486, .to_tag = "busy" }), 0);
	assert_int_equal(hop_read(1000), 1); /* the ACK */
	assert_int_equal(txn_table_hold(fx.tt, 100), 0);
	assert_int_equal(txn_table_hold(fx.tt, 100), ENOBUFS);
	txn_table_unhold(fx.tt, 100);
	assert_int_equal(txn_client_send(&refused, fx.tt, fx.l, req, sizeof(req) - 1, NULL, fx.w, TP_LSN_ANY, TP_UDP, &fx.dst,
					 on_tu, &fx), 0);
	assert_int_equal(hop_read(1000), 1);
	mem_deref(refused);
	mem_deref(ct);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_invite_timer_a_then_b, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invite_provisional_stops_a_and_b, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invite_486_ack_and_timer_d, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invite_2xx_accepted_until_timer_m, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invite_2xx_record_freed_with_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_invite_timer_e_then_f, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_invite_proceeding_then_timer_k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reliable_no_retransmission, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_responses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transport_error_is_503, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detach_and_abandon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_for_another_thread, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
