/* test_txn.c: server transactions (RFC 3261 17.2) on a fake clock: the INVITE and non-INVITE state
 * machines with Timers G, H, I, J, matching (17.2.3, with the RFC 2543 fallback), limits, a table of
 * 100,000 transactions, answers and retransmissions from other threads handed to the owner, and lookups
 * racing its growth. The loop is real but never run (but in test_other_threads): the test advances its
 * wheel. */
#include <errno.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "base/mem.h"
#include "base/timer.h"
#include "net/loop.h"
#include "sip/msg.h"
#include "txn/txn.h"

#define T1 500u
#define T2 4000u
#define T4 5000u
#define CRLF "\r\n"

#define MAX_SENT 64
#define MAX_ENDED 16

struct sent {
	struct txn *tx;
	uint64_t at;   /* fake ms since the test began */
	char *buf;
	size_t len;
};

struct ended {
	struct txn *tx;
	uint64_t at;
	char why[64];
};

/* One loop, one table, and everything the callbacks saw. */
static struct fx {
	struct loop *l;
	struct txn_table *tt;
	uint64_t base;           /* the wheel's time when the test began */
	struct sent sent[MAX_SENT];
	unsigned nsent;          /* recorded, up to MAX_SENT */
	unsigned long sends;     /* all of them */
	struct ended ended[MAX_ENDED];
	unsigned nended;
	unsigned long ends;
	uint8_t resent_lsn;      /* the listener of the last echo's resend */
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

static void advance_to(uint64_t ms)
{
	tmr_wheel_advance(loop_timers(fx.l), fx.base + ms);
	assert_int_equal(now_ms(), ms);
}

static int on_send(struct txn *tx, const char *buf, size_t len, void *arg)
{
	assert_ptr_equal(arg, &fx);
	fx.sends++;
	if (fx.nsent < MAX_SENT) {
		struct sent *s = &fx.sent[fx.nsent++];

		s->tx = tx;
		s->at = now_ms();
		s->buf = malloc(len);
		assert_non_null(s->buf);
		memcpy(s->buf, buf, len);
		s->len = len;
	}
	return 0;
}

/* An echo's response sent again: recorded as a send with no transaction. */
static int on_resend(struct tp_worker *w, uint8_t lsn, enum tp_proto proto, const struct tp_addr *dst,
		     const char *buf, size_t len, void *arg)
{
	(void)w;
	fx.resent_lsn = lsn;
	(void)proto;
	(void)dst;
	return on_send(NULL, buf, len, arg);
}

static void on_end(struct txn *tx, const char *why, void *arg)
{
	assert_ptr_equal(arg, &fx);
	assert_non_null(why);
	assert_true(why[0] != '\0');
	fx.ends++;
	if (fx.nended < MAX_ENDED) {
		struct ended *e = &fx.ended[fx.nended++];

		e->tx = tx;
		e->at = now_ms();
		snprintf(e->why, sizeof(e->why), "%s", why);
	}
}

/* The test's own references, dropped by the teardown even when an assertion ends the test early. */
static struct {
	struct txn **v;
	size_t n, cap;
} held;

static struct txn *hold(struct txn *tx)
{
	if (held.n == held.cap) {
		size_t cap = held.cap ? held.cap * 2 : 64;
		struct txn **v = realloc(held.v, cap * sizeof(*v));

		assert_non_null(v);
		held.v = v;
		held.cap = cap;
	}
	held.v[held.n++] = tx;
	return tx;
}

/* Drops the test's reference to tx now. */
static void drop(struct txn *tx)
{
	for (size_t i = held.n; i-- > 0;) {
		if (held.v[i] == tx) {
			held.v[i] = held.v[--held.n];
			mem_deref(tx);
			return;
		}
	}
	fail_msg("dropping a transaction the test does not hold");
}

static void sent_clear(void)
{
	for (unsigned i = 0; i < fx.nsent; i++)
		free(fx.sent[i].buf);
	fx.nsent = 0;
	fx.sends = 0;
}

static void table_make_full(unsigned shards, unsigned max_live, unsigned max_echoes, size_t max_held,
			    size_t max_echo_bytes)
{
	struct txn_table_config cfg = {
		.shards = shards,
		.max_live = max_live,
		.max_echoes = max_echoes,
		.max_held = max_held,
		.max_echo_bytes = max_echo_bytes,
		.timers = { T1, T2, T4 },
		.send = on_send,
		.end = on_end,
		.resend = on_resend,
		.single_thread = true,
		.arg = &fx,
	};

	txn_table_free(fx.tt);
	fx.tt = NULL;
	assert_int_equal(txn_table_new(&fx.tt, &cfg), 0);
}

static void table_make_echoes(unsigned shards, unsigned max_live, unsigned max_echoes)
{
	table_make_full(shards, max_live, max_echoes, 0, 0);
}

/* A table whose limits are in bytes: held by live transactions, and by echoes. */
static void table_make_bytes(size_t max_held, size_t max_echo_bytes)
{
	table_make_full(4, 0, 0, max_held, max_echo_bytes);
}

static void table_make(unsigned shards, unsigned max_live)
{
	table_make_echoes(shards, max_live, 0);
}

static int setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	if (loop_new(&fx.l))
		return -1;
	/* loop_new starts the wheel at the monotonic clock: every time below is relative to it */
	fx.base = tmr_wheel_now(loop_timers(fx.l));
	table_make(0, 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	txn_table_free(fx.tt);
	while (held.n)
		mem_deref(held.v[--held.n]);
	free(held.v);
	memset(&held, 0, sizeof(held));
	loop_free(fx.l);
	sent_clear();
	memset(&fx, 0, sizeof(fx));
	return 0;
}

/* ---- requests ---- */

/* A request as text; NULL fields take the defaults of one INVITE from 10.0.0.1. */
struct rq {
	const char *method;
	const char *ruri;
	const char *via;       /* the whole top Via value */
	const char *from_tag;
	const char *to_tag;
	const char *call_id;
	unsigned cseq;
	const char *cseq_method;
	bool no_call_id;
};

struct req {
	char text[1024];
	struct sip_msg m;
};

#define VIA_DEFAULT "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-inv1"

static void req_make(struct req *r, struct rq p)
{
	struct sip_error err;
	char call_id[128] = "";
	char to_tag[64] = "";
	int n;

	if (!p.method)
		p.method = "INVITE";
	if (!p.cseq_method)
		p.cseq_method = p.method;
	if (!p.cseq)
		p.cseq = 1;
	if (p.to_tag)
		snprintf(to_tag, sizeof(to_tag), ";tag=%s", p.to_tag);
	if (!p.no_call_id)
		snprintf(call_id, sizeof(call_id), "Call-ID: %s" CRLF, p.call_id ? p.call_id : "cid-1@10.0.0.1");
	n = snprintf(r->text, sizeof(r->text),
		     "%s %s SIP/2.0" CRLF
		     "Via: %s" CRLF
		     "Max-Forwards: 70" CRLF
		     "From: <sip:alice@example.com>;tag=%s" CRLF
		     "To: <sip:bob@example.com>%s" CRLF
		     "%s"
		     "CSeq: %u %s" CRLF
		     "Content-Length: 0" CRLF
		     CRLF,
		     p.method, p.ruri ? p.ruri : "sip:bob@example.com", p.via ? p.via : VIA_DEFAULT,
		     p.from_tag ? p.from_tag : "ft-1", to_tag, call_id, p.cseq, p.cseq_method);
	assert_true(n > 0 && (size_t)n < sizeof(r->text));
	assert_int_equal(sip_msg_parse(&r->m, r->text, (size_t)n, &err), 0);
	if (!p.no_call_id)
		assert_int_equal(sip_msg_check(&r->m, &err), 0);
}

/* A new server transaction for p; the test's reference is held until drop or the teardown. */
static struct txn *txn_make(struct rq p, bool reliable)
{
	struct req r;
	struct txn *tx = NULL;

	req_make(&r, p);
	assert_int_equal(txn_server_new(&tx, fx.tt, fx.l, &r.m, reliable), 0);
	assert_non_null(tx);
	return hold(tx);
}

/* txn_server_match for p: the transaction (its reference dropped at once) or NULL, and whether an echo
 * absorbed p (sending its response again). */
static struct txn *match_absorbed(struct rq p, bool *absorbed)
{
	struct req r;
	struct txn *tx;

	req_make(&r, p);
	tx = txn_server_match(fx.tt, &r.m, absorbed);
	assert_false(*absorbed && tx);
	mem_deref(tx); /* the caller keeps its own reference, so the pointer stays valid */
	return tx;
}

static struct txn *match(struct rq p)
{
	bool absorbed;

	return match_absorbed(p, &absorbed);
}

/* Whether p is absorbed as the retransmission of a request already answered (by the echo of its
 * transaction, which sends the response again). */
static bool absorbs(struct rq p)
{
	bool absorbed;

	match_absorbed(p, &absorbed);
	return absorbed;
}

/* The INVITE transaction a CANCEL p cancels; *answered (when given) says whether p matched an
 * INVITE's echo instead (answered 2xx, Accepted, its TU gone). */
static struct txn *match_cancelled_answered(struct rq p, bool *answered)
{
	struct req r;
	struct txn *tx;
	bool a;

	req_make(&r, p);
	tx = txn_server_match_cancelled(fx.tt, &r.m, &a);
	assert_false(tx && a);
	if (answered)
		*answered = a;
	mem_deref(tx);
	return tx;
}

static struct txn *match_cancelled(struct rq p)
{
	return match_cancelled_answered(p, NULL);
}

/* Feeds what the transport would: match p, then hand it to its transaction. */
static void deliver(struct txn *want, struct rq p)
{
	struct req r;
	struct txn *tx;

	bool absorbed;

	req_make(&r, p);
	tx = txn_server_match(fx.tt, &r.m, &absorbed);
	assert_false(absorbed);
	assert_ptr_equal(tx, want);
	txn_server_recv(tx, r.m.mid == SIP_METHOD_ACK);
	mem_deref(tx);
}

static int respond(struct txn *tx, unsigned code)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "SIP/2.0 %u Test" CRLF "Content-Length: 0" CRLF CRLF, code);

	return txn_respond(tx, code, buf, (size_t)n);
}

static void assert_sent(unsigned i, struct txn *tx, uint64_t at, unsigned code)
{
	char want[128];
	int n = snprintf(want, sizeof(want), "SIP/2.0 %u Test" CRLF "Content-Length: 0" CRLF CRLF, code);

	assert_true(i < fx.nsent);
	assert_ptr_equal(fx.sent[i].tx, tx);
	assert_int_equal(fx.sent[i].at, at);
	assert_int_equal(fx.sent[i].len, (size_t)n);
	assert_memory_equal(fx.sent[i].buf, want, (size_t)n);
}

static const struct rq ack = { .method = "ACK" };
static const struct rq invite = { .method = "INVITE" };

/* ---- INVITE server transaction (17.2.1) ---- */

static void test_invite_100_then_486(void **state)
{
	struct txn *tx = txn_make(invite, false);

	(void)state;
	assert_true(txn_is_invite(tx));
	assert_ptr_equal(txn_loop(tx), fx.l);
	assert_int_equal(txn_state(tx), TXN_PROCEEDING);
	assert_false(txn_has_final(tx));
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_int_equal(fx.nsent, 0);

	assert_int_equal(respond(tx, 100), 0);
	assert_int_equal(txn_state(tx), TXN_PROCEEDING);
	assert_int_equal(fx.nsent, 1);
	assert_sent(0, tx, 0, 100);

	advance_to(10);
	assert_int_equal(respond(tx, 486), 0);
	assert_int_equal(txn_state(tx), TXN_COMPLETED);
	assert_true(txn_has_final(tx));
	assert_int_equal(fx.nsent, 2);
	assert_sent(1, tx, 10, 486);
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_int_equal(fx.nended, 0);
	drop(tx);
}

/* Timer G: T1, 2T1, 4T1, ... capped at T2; Timer H at 64*T1 ends it without an ACK. */
static void test_invite_timer_g_then_h(void **state)
{
	static const uint64_t want[] = { 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500 };
	struct txn *tx = txn_make(invite, false);

	(void)state;
	assert_int_equal(respond(tx, 100), 0);
	assert_int_equal(respond(tx, 486), 0);
	assert_int_equal(fx.nsent, 2);
	/* one millisecond at a time: nothing early, nothing late */
	for (uint64_t ms = 1; ms < 64 * T1; ms++) {
		unsigned before = fx.nsent;

		advance_to(ms);
		if (fx.nsent != before)
			assert_int_equal(fx.sent[fx.nsent - 1].at, ms);
	}
	assert_int_equal(fx.nsent, 2 + sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_sent(2 + (unsigned)i, tx, want[i], 486);
	assert_int_equal(txn_state(tx), TXN_COMPLETED);
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_int_equal(fx.nended, 0);

	advance_to(64 * T1);
	assert_int_equal(txn_state(tx), TXN_TERMINATED);
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_int_equal(fx.nended, 1);
	assert_ptr_equal(fx.ended[0].tx, tx);
	assert_int_equal(fx.ended[0].at, 64 * T1);
	assert_non_null(strstr(fx.ended[0].why, "H"));
	assert_null(match(invite));

	advance_to(200000);
	assert_int_equal(fx.nsent, 12);
	assert_int_equal(fx.nended, 1);
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 0);
	drop(tx);
}

/* ACK: Confirmed, retransmissions stop, Timer I (T4) ends it; ACKs and INVITEs meanwhile are absorbed. */
static void test_invite_ack_confirmed_timer_i(void **state)
{
	struct txn *tx = txn_make(invite, false);

	(void)state;
	assert_int_equal(respond(tx, 100), 0);
	assert_int_equal(respond(tx, 486), 0);
	advance_to(1000); /* G fired once, at 500 */
	assert_int_equal(fx.nsent, 3);
	assert_sent(2, tx, 500, 486);

	deliver(tx, ack);
	assert_int_equal(txn_state(tx), TXN_CONFIRMED);
	assert_int_equal(fx.nsent, 3);
	deliver(tx, ack);    /* a retransmitted ACK */
	deliver(tx, invite); /* a late INVITE retransmission */
	assert_int_equal(fx.nsent, 3);
	assert_int_equal(txn_state(tx), TXN_CONFIRMED);

	advance_to(1000 + T4 - 1);
	assert_int_equal(fx.nsent, 3);
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_int_equal(fx.nended, 0);
	advance_to(lazy_due(1000 + T4) - 1); /* Timer I is lazy: not before its time, late by < 64 ms */
	assert_int_equal(txn_table_live(fx.tt), 1);
	advance_to(lazy_due(1000 + T4));
	assert_int_equal(txn_state(tx), TXN_TERMINATED);
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_int_equal(fx.nended, 1);
	assert_ptr_equal(fx.ended[0].tx, tx);
	assert_int_equal(fx.ended[0].at, lazy_due(1000 + T4));
	assert_non_null(strstr(fx.ended[0].why, "I"));

	advance_to(100000); /* Timer H was cancelled with the rest */
	assert_int_equal(fx.nsent, 3);
	assert_int_equal(fx.nended, 1);
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 0);
	drop(tx);
}

/* An ACK before any final response belongs to nothing the transaction does. */
static void test_invite_ack_in_proceeding_ignored(void **state)
{
	struct txn *tx = txn_make(invite, false);

	(void)state;
	assert_int_equal(respond(tx, 180), 0);
	deliver(tx, ack);
	assert_int_equal(txn_state(tx), TXN_PROCEEDING);
	assert_int_equal(fx.nsent, 1);
	assert_int_equal(respond(tx, 603), 0);
	assert_int_equal(txn_state(tx), TXN_COMPLETED);
	drop(tx);
}

/* A retransmitted INVITE: nothing before any response, the last provisional in Proceeding,
 * the final in Completed. */
static void test_invite_retransmission(void **state)
{
	struct txn *tx = txn_make(invite, false);

	(void)state;
	deliver(tx, invite);
	assert_int_equal(fx.nsent, 0);
	assert_int_equal(respond(tx, 100), 0);
	advance_to(20);
	deliver(tx, invite);
	assert_int_equal(fx.nsent, 2);
	assert_sent(1, tx, 20, 100);
	assert_int_equal(respond(tx, 180), 0);
	advance_to(30);
	deliver(tx, invite);
	assert_int_equal(fx.nsent, 4);
	assert_sent(3, tx, 30, 180);
	assert_int_equal(txn_state(tx), TXN_PROCEEDING);

	assert_int_equal(respond(tx, 480), 0);
	advance_to(40);
	deliver(tx, invite);
	assert_int_equal(fx.nsent, 6);
	assert_sent(5, tx, 40, 480);
	assert_int_equal(txn_state(tx), TXN_COMPLETED);
	/* the retransmission did not disturb Timer G: still T1 after the final (sent at 30) */
	advance_to(30 + T1);
	assert_int_equal(fx.nsent, 7);
	assert_sent(6, tx, 30 + T1, 480);
	/* txn_server_same_request: the INVITE again is its request; the same key in other bytes is not
	 * (the core drops it rather than send the 480 again) */
	{
		struct req r;

		req_make(&r, invite);
		assert_true(txn_server_same_request(tx, &r.m));
		req_make(&r, (struct rq){ .call_id = "another-and-longer-call-id@10.0.0.1" });
		assert_ptr_equal(match((struct rq){ .call_id = "another-and-longer-call-id@10.0.0.1" }), tx);
		assert_false(txn_server_same_request(tx, &r.m));
	}
	drop(tx);
}

/* Reliable transport: no Timer G; Timer H still 64*T1; the ACK ends it at once (Timer I = 0). */
static void test_invite_reliable(void **state)
{
	struct txn *a = txn_make(invite, true);
	struct txn *b = txn_make((struct rq){ .via = "SIP/2.0/TCP 10.0.0.2:5060;branch=z9hG4bK-tcp2" }, true);

	(void)state;
	assert_int_equal(respond(a, 486), 0);
	assert_int_equal(respond(b, 486), 0);
	assert_int_equal(fx.nsent, 2);
	advance_to(100);
	deliver(a, ack);
	assert_int_equal(txn_state(a), TXN_TERMINATED);
	assert_int_equal(fx.nended, 1);
	assert_ptr_equal(fx.ended[0].tx, a);
	assert_int_equal(fx.ended[0].at, 100);
	assert_int_equal(txn_table_live(fx.tt), 1);

	advance_to(64 * T1 - 1);
	assert_int_equal(fx.nsent, 2); /* no retransmission of b's 486 either */
	assert_int_equal(txn_state(b), TXN_COMPLETED);
	advance_to(64 * T1);
	assert_int_equal(txn_state(b), TXN_TERMINATED);
	assert_int_equal(fx.nended, 2);
	assert_ptr_equal(fx.ended[1].tx, b);
	assert_non_null(strstr(fx.ended[1].why, "H"));
	assert_int_equal(txn_table_live(fx.tt), 0);
	drop(a);
	drop(b);
}

static unsigned tu_freed;

static void tu_destroy(void *data)
{
	assert_ptr_equal(data, &tu_freed);
	tu_freed++;
}

/* RFC 6026 7.1 (updating 17.2.1): a 2xx leaves the INVITE transaction Accepted until Timer L (64*T1): a
 * retransmission of the INVITE is absorbed (no 2xx sent again: the UAS retransmits it, not the
 * transaction), an ACK reusing the INVITE's branch is not taken (it is the TU's), no second final goes.
 * Whole while its TU holds it; once txn_release_tu lets the TU go (on the next turn), an echo with no
 * response (over UDP) absorbs the INVITE until it ends, and still no ACK. */
static void test_invite_2xx_accepted(void **state)
{
	struct txn *tx = txn_make(invite, false);
	bool absorbed = true;

	(void)state;
	tu_freed = 0;
	txn_set_tu(tx, &tu_freed, tu_destroy);
	txn_release_tu(tx); /* Proceeding: nothing */
	advance_to(1);
	assert_int_equal(tu_freed, 0);
	assert_int_equal(respond(tx, 100), 0);
	assert_int_equal(respond(tx, 200), 0);
	assert_int_equal(fx.nsent, 2);
	assert_sent(1, tx, 1, 200);
	assert_int_equal(txn_state(tx), TXN_ACCEPTED);
	assert_true(txn_has_final(tx));
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_int_equal(fx.nended, 0);
	assert_ptr_equal(match(invite), tx);
	deliver(tx, invite); /* absorbed */
	assert_int_equal(fx.nsent, 2);
	assert_null(match_absorbed(ack, &absorbed));
	assert_false(absorbed);
	assert_int_equal(respond(tx, 200), EINVAL);
	advance_to(1000);
	assert_int_equal(txn_state(tx), TXN_ACCEPTED); /* the TU holds it */
	txn_release_tu(tx);
	assert_int_equal(tu_freed, 0); /* not under the caller's feet */
	advance_to(1001);
	assert_int_equal(tu_freed, 1);
	assert_null(txn_tu(tx));
	assert_int_equal(txn_state(tx), TXN_TERMINATED); /* reduced to its echo */
	assert_int_equal(fx.nended, 1);
	assert_ptr_equal(fx.ended[0].tx, tx);
	assert_non_null(strstr(fx.ended[0].why, "timer L"));
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_null(match_absorbed(invite, &absorbed));
	assert_true(absorbed);
	assert_null(match_absorbed(ack, &absorbed));
	assert_false(absorbed);
	assert_int_equal(fx.nsent, 2); /* nothing sent for either */
	advance_to(lazy_due(1001 + 64 * T1));
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_null(match_absorbed(invite, &absorbed));
	assert_false(absorbed);
	advance_to(100000);
	assert_int_equal(fx.nsent, 2);
	drop(tx);
}

/* The same over TCP: no INVITE retransmission comes over a reliable transport, so once its TU is gone the
 * Accepted transaction ends (no echo); without a TU at all, at once. */
static void test_invite_2xx_accepted_reliable(void **state)
{
	struct txn *a = txn_make(invite, true);
	struct txn *b = txn_make((struct rq){ .method = "INVITE", .via = "SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-inv2" },
				 true);

	(void)state;
	tu_freed = 0;
	txn_set_tu(a, &tu_freed, tu_destroy);
	assert_int_equal(respond(a, 200), 0);
	assert_int_equal(respond(b, 200), 0);
	assert_int_equal(txn_state(a), TXN_ACCEPTED);
	assert_int_equal(txn_state(b), TXN_TERMINATED);
	txn_release_tu(a);
	advance_to(1);
	assert_int_equal(tu_freed, 1);
	assert_int_equal(txn_state(a), TXN_TERMINATED);
	assert_int_equal(txn_table_live(fx.tt), 0);
	drop(a);
	drop(b);
}

/* ---- non-INVITE server transaction (17.2.2) ---- */

static const struct rq options = { .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-opt1" };

static void test_non_invite_udp(void **state)
{
	struct txn *tx = txn_make(options, false);

	(void)state;
	assert_false(txn_is_invite(tx));
	assert_int_equal(txn_state(tx), TXN_TRYING);
	deliver(tx, options); /* Trying absorbs retransmissions */
	deliver(tx, options);
	assert_int_equal(fx.nsent, 0);
	assert_int_equal(txn_state(tx), TXN_TRYING);

	/* the listener the request came to (RFC 3581 4): the echo's resends leave from it too */
	txn_set_dest(tx, NULL, 3, TP_UDP, NULL, &(struct tp_addr){ .len = sizeof(struct sockaddr_in) });
	advance_to(50);
	assert_int_equal(respond(tx, 200), 0);
	assert_int_equal(fx.nsent, 1);
	assert_sent(0, tx, 50, 200);
	/* Completed: the transaction itself ends (TU told), its echo keeps the state until Timer J */
	assert_int_equal(txn_state(tx), TXN_TERMINATED);
	assert_int_equal(fx.nended, 1);
	assert_ptr_equal(fx.ended[0].tx, tx);
	assert_int_equal(fx.ended[0].at, 50);
	assert_non_null(strstr(fx.ended[0].why, "timer J"));
	assert_int_equal(txn_table_live(fx.tt), 1);
	advance_to(60);
	fx.resent_lsn = TP_LSN_ANY;
	assert_true(absorbs(options)); /* a retransmission: the 200 again, byte for byte */
	assert_int_equal(fx.nsent, 2);
	assert_sent(1, NULL, 60, 200);
	assert_int_equal(fx.resent_lsn, 3);
	/* what is not a retransmission of it is not absorbed */
	assert_false(absorbs((struct rq){ .method = "BYE", .via = options.via }));
	assert_false(absorbs((struct rq){ .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-opt1" }));
	assert_false(absorbs((struct rq){ .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-opt2" }));
	assert_false(absorbs(ack));
	assert_int_equal(fx.nsent, 2);
	/* the same key with other bytes (another length: From tag, Call-ID, CSeq do not count with the
	 * magic cookie) is no retransmission: absorbed, and the 200 not sent again */
	assert_true(absorbs((struct rq){ .method = "OPTIONS", .via = options.via, .call_id = "a-much-longer-call-id" }));
	assert_int_equal(fx.nsent, 2);

	/* no retransmission of its own: only on request */
	advance_to(50 + 64 * T1 - 1);
	assert_int_equal(fx.nsent, 2);
	assert_int_equal(txn_table_live(fx.tt), 1);
	advance_to(lazy_due(50 + 64 * T1) - 1);
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_true(absorbs(options));
	advance_to(lazy_due(50 + 64 * T1)); /* Timer J, lazy */
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_false(absorbs(options));
	assert_int_equal(fx.nsent, 3);
	assert_int_equal(fx.nended, 1);
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 0);
	drop(tx);
}

static void test_non_invite_provisional(void **state)
{
	struct txn *tx = txn_make(options, false);

	(void)state;
	assert_int_equal(respond(tx, 100), 0);
	assert_int_equal(txn_state(tx), TXN_PROCEEDING);
	deliver(tx, options); /* Proceeding: the provisional again */
	assert_int_equal(fx.nsent, 2);
	assert_sent(1, tx, 0, 100);
	assert_int_equal(respond(tx, 404), 0);
	assert_sent(2, tx, 0, 404);
	assert_true(absorbs(options));
	assert_int_equal(fx.nsent, 4);
	assert_sent(3, NULL, 0, 404);
	drop(tx);
}

/* Timer J is zero on a reliable transport. */
static void test_non_invite_tcp(void **state)
{
	struct txn *tx = txn_make(options, true);

	(void)state;
	advance_to(5);
	assert_int_equal(respond(tx, 200), 0);
	assert_int_equal(fx.nsent, 1);
	assert_int_equal(txn_state(tx), TXN_TERMINATED);
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_int_equal(fx.nended, 1);
	assert_int_equal(fx.ended[0].at, 5);
	assert_null(match(options));
	drop(tx);
}

/* Only one final response per transaction; no provisional after it. */
static void test_respond_after_final(void **state)
{
	struct txn *inv = txn_make(invite, false);
	struct txn *opt = txn_make(options, false);

	(void)state;
	assert_int_equal(respond(inv, 486), 0);
	assert_int_equal(respond(inv, 500), EINVAL);
	assert_int_equal(respond(inv, 180), EINVAL);
	assert_int_equal(respond(opt, 200), 0);
	assert_int_equal(respond(opt, 200), EINVAL);
	assert_int_equal(respond(opt, 100), EINVAL);
	assert_int_equal(fx.nsent, 2);
	assert_int_equal(txn_state(inv), TXN_COMPLETED);
	assert_int_equal(txn_state(opt), TXN_TERMINATED); /* its echo absorbs */
	drop(inv);
	drop(opt);
}

/* ---- matching (17.2.3) ---- */

static void test_match_branch_sent_by_method(void **state)
{
	struct txn *tx = txn_make(invite, false);

	(void)state;
	assert_ptr_equal(match(invite), tx);
	/* the other fields do not matter when the branch has the magic cookie */
	assert_ptr_equal(match((struct rq){ .ruri = "sip:other@example.com", .from_tag = "x", .call_id = "other",
					    .cseq = 99 }),
			 tx);
	/* nor do the other Via parameters */
	assert_ptr_equal(match((struct rq){ .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-inv1;rport" }), tx);
	assert_null(match((struct rq){ .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-inv2" }));
	assert_null(match((struct rq){ .via = "SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK-inv1" }));
	assert_null(match((struct rq){ .via = "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-inv1" }));
	assert_null(match((struct rq){ .via = "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-inv1" }));
	/* same branch, another method: another transaction */
	assert_null(match((struct rq){ .method = "OPTIONS" }));
	assert_null(match((struct rq){ .method = "BYE" }));
	drop(tx);
}

static void test_match_host_case(void **state)
{
	struct txn *tx = txn_make((struct rq){ .via = "SIP/2.0/UDP PC33.Example.com:5060;branch=z9hG4bK-h" },
				  false);

	(void)state;
	assert_ptr_equal(match((struct rq){ .via = "SIP/2.0/UDP pc33.example.COM:5060;branch=z9hG4bK-h" }), tx);
	drop(tx);
}

/* The ACK for a non-2xx has the INVITE's branch (17.1.1.3); the ACK for a 2xx a new one. */
static void test_match_ack(void **state)
{
	struct txn *tx = txn_make(invite, false);

	(void)state;
	assert_ptr_equal(match(ack), tx);
	assert_ptr_equal(match((struct rq){ .method = "ACK", .to_tag = "tt" }), tx);
	assert_null(match((struct rq){ .method = "ACK",
				       .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-ack2xx" }));
	drop(tx);
}

/* CANCEL is a transaction of its own (9.2), which finds the INVITE it cancels. */
static void test_match_cancel(void **state)
{
	const struct rq cancel = { .method = "CANCEL" };
	struct txn *inv = txn_make(invite, false);
	struct txn *can;

	(void)state;
	assert_null(match(cancel));
	assert_ptr_equal(match_cancelled(cancel), inv);
	assert_null(match_cancelled((struct rq){ .method = "CANCEL",
						 .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-other" }));
	assert_null(match_cancelled((struct rq){ .method = "CANCEL",
						 .via = "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-inv1" }));

	can = txn_make(cancel, false);
	assert_ptr_equal(match(cancel), can);
	assert_ptr_equal(match(invite), inv);
	assert_ptr_equal(match_cancelled(cancel), inv);
	assert_int_equal(txn_table_live(fx.tt), 2);

	/* once the INVITE has answered 2xx (with no TU, its Accepted state is an echo at once: RFC 6026)
	 * there is nothing left to cancel, yet the CANCEL still matched (9.2: 200), until Timer L */
	bool answered = false;

	assert_int_equal(respond(inv, 200), 0);
	assert_null(match_cancelled_answered(cancel, &answered));
	assert_true(answered);
	assert_null(match_cancelled_answered((struct rq){ .method = "CANCEL",
							  .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-other" },
					     &answered));
	assert_false(answered);
	assert_ptr_equal(match(cancel), can);
	drop(can);
	advance_to(lazy_due(64 * T1));
	assert_null(match_cancelled_answered(cancel, &answered));
	assert_false(answered);
	drop(inv);
}

/* 9.2: a CANCEL matches "assuming that the request method is anything but CANCEL or ACK": a pending
 * MESSAGE is found (the core answers 200 and leaves it be), never a CANCEL's own transaction. */
static void test_match_cancel_non_invite(void **state)
{
	const struct rq message = { .method = "MESSAGE" };
	const struct rq cancel = { .method = "CANCEL" };
	const struct rq lone = { .method = "CANCEL", .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-lone" };
	struct txn *msg = txn_make(message, false);
	struct txn *can = txn_make(cancel, false);
	struct txn *lone_can = txn_make(lone, false);

	(void)state;
	assert_ptr_equal(match_cancelled(cancel), msg);
	assert_false(txn_is_invite(msg));
	assert_null(match_cancelled((struct rq){ .method = "CANCEL",
						 .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-other" }));
	/* a CANCEL's own transaction is no match for another CANCEL */
	assert_ptr_equal(match(lone), lone_can);
	assert_null(match_cancelled(lone));
	drop(msg);
	drop(can);
	drop(lone_can);
}

/* RFC 2543 peers (no magic cookie): Request-URI, From tag, Call-ID, CSeq and the top Via decide. */
static void rfc2543_matching(const char *via)
{
	const struct rq inv = { .via = via };
	struct txn *tx = txn_make(inv, false);

	assert_ptr_equal(match(inv), tx);
	assert_null(match((struct rq){ .via = via, .ruri = "sip:carol@example.com" }));
	assert_null(match((struct rq){ .via = via, .from_tag = "ft-2" }));
	assert_null(match((struct rq){ .via = via, .call_id = "cid-2@10.0.0.1" }));
	assert_null(match((struct rq){ .via = via, .cseq = 2 }));
	assert_null(match((struct rq){ .via = "SIP/2.0/UDP 10.0.0.7:5060" }));
	assert_null(match((struct rq){ .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-inv1" }));
	assert_null(match((struct rq){ .via = via, .method = "OPTIONS" }));
	/* the ACK: same Request-URI, From tag, Call-ID, CSeq number and top Via, with the To tag of
	 * our response */
	assert_ptr_equal(match((struct rq){ .via = via, .method = "ACK", .to_tag = "resp-tag" }), tx);
	assert_null(match((struct rq){ .via = via, .method = "ACK", .to_tag = "resp-tag", .cseq = 2 }));
	/* CANCEL: its own transaction, which finds this INVITE (9.2) */
	assert_null(match((struct rq){ .via = via, .method = "CANCEL" }));
	assert_ptr_equal(match_cancelled((struct rq){ .via = via, .method = "CANCEL" }), tx);
	assert_null(match_cancelled((struct rq){ .via = via, .method = "CANCEL", .from_tag = "ft-9" }));
	drop(tx);
}

/* The echo of an answered RFC 2543 non-INVITE keeps its whole key (Request-URI, tags, Call-ID, CSeq,
 * top Via; some of it found in its response, some not) and matches on all of it. */
static void test_echo_rfc2543(void **state)
{
	const char *via = "SIP/2.0/UDP 10.0.0.1:5060;branch=1234abcd";
	const struct rq opt = { .method = "OPTIONS", .via = via };
	struct txn *tx = txn_make(opt, false);

	(void)state;
	assert_int_equal(respond(tx, 200), 0);
	assert_int_equal(txn_state(tx), TXN_TERMINATED); /* the echo stays */
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_true(absorbs(opt));
	assert_int_equal(fx.nsent, 2);
	assert_sent(1, NULL, 0, 200);
	assert_false(absorbs((struct rq){ .method = "OPTIONS", .via = via, .ruri = "sip:carol@example.com" }));
	assert_false(absorbs((struct rq){ .method = "OPTIONS", .via = via, .from_tag = "ft-2" }));
	assert_false(absorbs((struct rq){ .method = "OPTIONS", .via = via, .call_id = "cid-2@10.0.0.1" }));
	assert_false(absorbs((struct rq){ .method = "OPTIONS", .via = via, .cseq = 2 }));
	assert_false(absorbs((struct rq){ .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=1234abce" }));
	assert_false(absorbs((struct rq){ .method = "BYE", .via = via }));
	assert_int_equal(fx.nsent, 2);
	assert_true(absorbs(opt));
	assert_int_equal(fx.nsent, 3);
}

static void test_match_rfc2543_branch_without_cookie(void **state)
{
	(void)state;
	rfc2543_matching("SIP/2.0/UDP 10.0.0.1:5060;branch=1234abcd");
}

static void test_match_rfc2543_no_branch(void **state)
{
	(void)state;
	rfc2543_matching("SIP/2.0/UDP 10.0.0.1:5060");
}

/* 17.2.3: for an RFC 2543 INVITE the To tag is part of the match too. */
static void test_match_rfc2543_to_tag(void **state)
{
	const char *via = "SIP/2.0/UDP 10.0.0.1:5060;branch=1234abcd";
	struct txn *tx = txn_make((struct rq){ .via = via, .to_tag = "a" }, false);

	(void)state;
	assert_ptr_equal(match((struct rq){ .via = via, .to_tag = "a" }), tx);
	/* BUG (src/txn/txn.c, key_from_msg/key_eq): the RFC 2543 key leaves the To tag out, so an INVITE
	 * that differs only in its To tag matches this transaction. RFC 3261 17.2.3: "The INVITE request
	 * matches a transaction if the Request-URI, To tag, From tag, Call-ID, CSeq, and top Via header
	 * field match". */
	assert_null(match((struct rq){ .via = via, .to_tag = "b" }));
	assert_null(match((struct rq){ .via = via }));
	drop(tx);
}

/* A request that cannot be keyed (no cookie and no Call-ID, as sip_msg_parse allows) is refused. */
static void __attribute__((noinline)) stack_zero(void)
{
	volatile char junk[4096];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = 0;
}

static void test_new_unkeyable(void **state)
{
	struct req r;
	struct txn *tx = NULL;
	int err;

	(void)state;
	req_make(&r, (struct rq){ .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=old", .no_call_id = true });
	assert_null(r.m.call_id.p);
	/* BUG (src/txn/txn.c, txn_server_new): when key_from_msg fails, the || short-circuits before
	 * mem_zalloc and "!tx ? ENOMEM : EINVAL" reads tx uninitialised (undefined behaviour). Zeroing the
	 * stack first makes the garbage NULL, so the call answers ENOMEM where EINVAL is meant. */
	stack_zero();
	err = txn_server_new(&tx, fx.tt, fx.l, &r.m, false);
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_null(tx);
	assert_int_equal(err, EINVAL);
	assert_null(txn_server_match(fx.tt, &r.m, &(bool){ false }));
}

/* ---- limits and the table ---- */

static void test_max_live(void **state)
{
	struct txn *a, *b, *c = NULL;
	struct req r;

	(void)state;
	table_make(4, 2);
	a = txn_make(options, true);
	b = txn_make(invite, false);
	req_make(&r, (struct rq){ .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK-third" });
	assert_int_equal(txn_server_new(&c, fx.tt, fx.l, &r.m, false), EAGAIN);
	assert_null(c);
	assert_int_equal(txn_table_live(fx.tt), 2);
	assert_null(match((struct rq){ .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK-third" }));
	/* room again once one has ended */
	assert_int_equal(respond(a, 200), 0);
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_int_equal(txn_server_new(&c, fx.tt, fx.l, &r.m, false), 0);
	hold(c);
	assert_int_equal(txn_table_live(fx.tt), 2);
	/* an echo is counted apart: its transaction's room is free at once */
	assert_int_equal(respond(c, 200), 0);
	assert_int_equal(txn_state(c), TXN_TERMINATED);
	assert_int_equal(txn_table_live(fx.tt), 2); /* b and the echo */
	req_make(&r, (struct rq){ .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK-fourth" });
	assert_int_equal(txn_server_new(&c, fx.tt, fx.l, &r.m, false), 0);
	hold(c);
	assert_int_equal(txn_table_live(fx.tt), 3);
	advance_to(lazy_due(64 * T1));
	assert_int_equal(txn_table_live(fx.tt), 2);
	drop(a);
	drop(b);
}

/* Past max_echoes an answered transaction stays whole until Timer J, and counts in max_live. */
static void test_max_echoes(void **state)
{
	struct txn *a, *b, *c = NULL;
	struct req r;

	(void)state;
	table_make_echoes(4, 2, 1);
	a = txn_make(options, false);
	b = txn_make((struct rq){ .method = "BYE", .via = "SIP/2.0/UDP 10.0.0.4:5060;branch=z9hG4bK-bye" }, false);
	assert_int_equal(respond(a, 200), 0);
	assert_int_equal(txn_state(a), TXN_TERMINATED); /* the one echo */
	assert_int_equal(respond(b, 200), 0);
	assert_int_equal(txn_state(b), TXN_COMPLETED); /* no room for a second: whole, Timer J */
	assert_int_equal(txn_table_live(fx.tt), 2);
	assert_true(absorbs(options));
	deliver(b, (struct rq){ .method = "BYE", .via = "SIP/2.0/UDP 10.0.0.4:5060;branch=z9hG4bK-bye" });
	assert_int_equal(fx.nsent, 4);
	assert_sent(2, NULL, 0, 200);
	assert_sent(3, b, 0, 200);
	/* b counts in max_live: one more fits, not two */
	req_make(&r, (struct rq){ .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-5" });
	assert_int_equal(txn_server_new(&c, fx.tt, fx.l, &r.m, false), 0);
	hold(c);
	req_make(&r, (struct rq){ .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.6:5060;branch=z9hG4bK-6" });
	assert_int_equal(txn_server_new(&c, fx.tt, fx.l, &r.m, false), EAGAIN);
	advance_to(lazy_due(64 * T1));
	assert_int_equal(txn_state(b), TXN_TERMINATED);
	assert_int_equal(txn_table_live(fx.tt), 1);
	drop(a);
	drop(b);
}

static void test_bad_shards(void **state)
{
	struct txn_table *t = NULL;
	struct txn_table_config cfg = { .shards = 3, .send = on_send };

	(void)state;
	assert_int_equal(txn_table_new(&t, &cfg), EINVAL);
	assert_null(t);
}

/* The TU's slot is freed with the transaction; the destination comes back as set. */
static void test_tu_and_dest(void **state)
{
	struct txn *tx = txn_make(invite, false);
	struct tp_addr dst = { .len = sizeof(struct sockaddr_in) };
	const struct tp_addr *got_dst;
	struct tp_worker *w;
	struct tp_conn *conn;
	enum tp_proto proto;
	uint8_t lsn;

	(void)state;
	tu_freed = 0;
	txn_set_tu(tx, &tu_freed, tu_destroy);
	assert_ptr_equal(txn_tu(tx), &tu_freed);
	dst.u.in.sin_family = AF_INET;
	dst.u.in.sin_port = htons(5062);
	txn_set_dest(tx, NULL, 5, TP_TCP, NULL, &dst);
	txn_get_dest(tx, &w, &lsn, &proto, &conn, &got_dst);
	assert_null(w);
	assert_int_equal(lsn, 5);
	assert_int_equal(proto, TP_TCP);
	assert_null(conn);
	assert_int_equal(got_dst->u.in.sin_port, htons(5062));
	assert_int_equal(respond(tx, 200), 0);
	advance_to(lazy_due(64 * T1)); /* Timer L: terminated, the table let go */
	assert_int_equal(txn_state(tx), TXN_TERMINATED);
	assert_int_equal(tu_freed, 0); /* we still hold it */
	drop(tx);
	assert_int_equal(tu_freed, 1);
}

/* A non-INVITE transaction's TU goes once the final response is out (on the next turn of the loop, not
 * inside txn_respond), and the transaction with it, its echo staying to answer retransmissions until
 * Timer J. An INVITE's stays with it: a late CANCEL still finds it. */
static void test_tu_released_after_final(void **state)
{
	struct txn *tx = txn_make(options, false), *inv;

	(void)state;
	tu_freed = 0;
	txn_set_tu(tx, &tu_freed, tu_destroy);
	assert_int_equal(respond(tx, 100), 0);
	advance_to(10);
	assert_int_equal(tu_freed, 0); /* provisional: still the TU's */
	assert_int_equal(respond(tx, 200), 0);
	assert_int_equal(tu_freed, 0); /* not under the caller's feet */
	assert_ptr_equal(txn_tu(tx), &tu_freed);
	assert_ptr_equal(match(options), tx); /* until then, the transaction answers retransmissions */
	assert_int_equal(fx.nsent, 2);
	deliver(tx, options);
	assert_sent(2, tx, 10, 200);
	assert_int_equal(fx.nended, 0);
	advance_to(11);
	assert_int_equal(tu_freed, 1);
	assert_null(txn_tu(tx));
	assert_int_equal(txn_state(tx), TXN_TERMINATED);
	assert_int_equal(fx.nended, 1);
	assert_int_equal(fx.ended[0].at, 10); /* the zero-delay timer runs at the time it was started */
	assert_true(absorbs(options)); /* a retransmission still gets the 200, from the echo */
	assert_int_equal(fx.nsent, 4);
	assert_sent(3, NULL, 11, 200);
	assert_int_equal(txn_table_live(fx.tt), 1);
	advance_to(lazy_due(11 + 64 * T1));
	assert_int_equal(txn_table_live(fx.tt), 0);
	drop(tx);
	assert_int_equal(tu_freed, 1); /* once */

	inv = txn_make(invite, false);
	tu_freed = 0;
	txn_set_tu(inv, &tu_freed, tu_destroy);
	assert_int_equal(respond(inv, 486), 0);
	advance_to(lazy_due(11 + 64 * T1) + 1);
	assert_int_equal(tu_freed, 0);
	assert_ptr_equal(txn_tu(inv), &tu_freed);
	drop(inv);
}

/* RFC 4320 4.1: a non-INVITE the TU gives up on ends with no response at all. Over UDP the transaction
 * stays Completed 64*T1, answering nothing to a retransmission (not processed again); its TU goes at
 * once, and no final can follow. An INVITE cannot be given up. */
static void test_give_up(void **state)
{
	struct txn *tx = txn_make(options, false), *inv;

	(void)state;
	tu_freed = 0;
	txn_set_tu(tx, &tu_freed, tu_destroy);
	assert_int_equal(respond(tx, 100), 0);
	advance_to(10);
	assert_int_equal(txn_server_give_up(tx), 0);
	assert_int_equal(txn_server_give_up(tx), EINVAL);
	assert_int_equal(respond(tx, 200), EINVAL);
	assert_true(txn_has_final(tx));
	assert_int_equal(txn_state(tx), TXN_COMPLETED);
	assert_int_equal(tu_freed, 0); /* not under the caller's feet */
	advance_to(11);
	assert_int_equal(tu_freed, 1);
	assert_ptr_equal(match(options), tx);
	deliver(tx, options); /* not even the 100 again */
	assert_int_equal(fx.nsent, 1);
	assert_int_equal(fx.nended, 0);
	advance_to(lazy_due(10 + 64 * T1));
	assert_int_equal(txn_state(tx), TXN_TERMINATED);
	assert_int_equal(fx.nended, 1);
	assert_non_null(strstr(fx.ended[0].why, "timer J"));
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_null(match(options));
	assert_int_equal(fx.nsent, 1);
	drop(tx);
	assert_int_equal(tu_freed, 1);

	tx = txn_make(options, true); /* reliable: ends at once */
	assert_int_equal(txn_server_give_up(tx), 0);
	assert_int_equal(txn_state(tx), TXN_TERMINATED);
	assert_int_equal(txn_table_live(fx.tt), 0);
	drop(tx);

	inv = txn_make(invite, false);
	assert_int_equal(txn_server_give_up(inv), EINVAL);
	assert_int_equal(respond(inv, 486), 0);
	drop(inv);
}

/* p as a transport would hand it over from ip:port (host order), and where its answers go (18.2.2). */
static void origin_make(struct req *r, struct tp_msg *tm, struct txn_origin *o, struct rq p, uint32_t ip, uint16_t port)
{
	req_make(r, p);
	memset(tm, 0, sizeof(*tm));
	tm->proto = TP_UDP;
	tm->buf = r->text;
	tm->len = strlen(r->text);
	tm->src.len = sizeof(struct sockaddr_in);
	tm->src.u.in.sin_family = AF_INET;
	tm->src.u.in.sin_port = htons(port);
	tm->src.u.in.sin_addr.s_addr = htonl(ip);
	txn_origin_init(o, tm, &r->m, true);
}

/* Keeps p's bytes in tx, as the TUs do (txn_keep), so that the transaction can build responses itself. */
static void keep(struct txn *tx, struct rq p)
{
	struct tp_msg tm;
	struct txn_origin o;
	struct req r;

	origin_make(&r, &tm, &o, p, 0xc0000207, 5060);
	assert_int_equal(txn_keep(tx, &o, tm.buf, tm.len), 0);
}

/* Counts bound memory only with bytes beside them (a request may be 64 kB): past max_held a new
 * transaction is refused (EAGAIN: the core's 503) until an answer lets a kept request go; past
 * max_echo_bytes an answered transaction stays whole until Timer J, as past max_echoes. */
static void test_max_bytes(void **state)
{
	struct txn *a, *b, *c = NULL;
	struct req r;

	(void)state;
	table_make_bytes(100, 1);
	a = txn_make(invite, false);
	keep(a, invite); /* about 250 bytes held */
	req_make(&r, (struct rq){ .via = "SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK-7" });
	assert_int_equal(txn_server_new(&c, fx.tt, fx.l, &r.m, false), EAGAIN);
	assert_int_equal(respond(a, 200), 0); /* Accepted: neither the request nor the 2xx is kept */
	assert_int_equal(txn_server_new(&c, fx.tt, fx.l, &r.m, false), 0);
	hold(c);
	b = txn_make(options, false);
	assert_int_equal(respond(b, 200), 0);
	assert_int_equal(txn_state(b), TXN_COMPLETED); /* no echo in 1 byte: whole, Timer J */
	assert_true(match(options) == b);
	advance_to(lazy_due(64 * T1));
	assert_int_equal(txn_state(b), TXN_TERMINATED);
	drop(a);
	drop(b);
}

static bool sent_is(unsigned i, const char *start)
{
	return i < fx.nsent && fx.sent[i].len >= strlen(start) && !memcmp(fx.sent[i].buf, start, strlen(start));
}

/* RFC 4320 4.1: a non-INVITE still unanswered when the client's Timer E reaches T2 (T1 + 2*T1 + 4*T1:
 * 3.5 s) gets a 100 from the transaction, over any transport, and none before; its retransmissions then
 * get the 100 again (Proceeding), and the final still follows. One answered in time never sees a 100,
 * nor does an INVITE (its TU sends its 100 at once), nor a transaction with no request kept. */
static void test_trying_at_t2(void **state)
{
	struct rq msg = { .method = "MESSAGE", .via = "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-msg1" };
	struct rq msg2 = { .method = "MESSAGE", .via = "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-msg2" };
	struct rq msg3 = { .method = "MESSAGE", .via = "SIP/2.0/TCP 192.0.2.7:5060;branch=z9hG4bK-msg3" };
	struct rq msg4 = { .method = "MESSAGE", .via = "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-msg4" };
	struct txn *a = txn_make(msg, false), *b = txn_make(msg2, false), *c = txn_make(msg3, true);
	struct txn *d = txn_make(msg4, false), *inv = txn_make(invite, false);

	(void)state;
	keep(a, msg);
	keep(b, msg2);
	keep(c, msg3);
	keep(inv, invite); /* d keeps nothing */
	deliver(a, msg); /* Trying: a retransmission is absorbed, nothing sent */
	advance_to(1000);
	assert_int_equal(respond(b, 200), 0);
	assert_int_equal(fx.nsent, 1);
	advance_to(3499);
	assert_int_equal(fx.nsent, 1);
	assert_int_equal(txn_state(a), TXN_TRYING);
	advance_to(3500);
	assert_int_equal(fx.nsent, 3); /* a's and c's 100 */
	assert_ptr_equal(fx.sent[1].tx, a);
	assert_ptr_equal(fx.sent[2].tx, c);
	assert_true(sent_is(1, "SIP/2.0 100 Trying" CRLF));
	assert_true(sent_is(2, "SIP/2.0 100 Trying" CRLF));
	assert_non_null(memmem(fx.sent[1].buf, fx.sent[1].len, "CSeq: 1 MESSAGE" CRLF, 17));
	assert_int_equal(txn_state(a), TXN_PROCEEDING);
	assert_int_equal(txn_state(d), TXN_TRYING);
	deliver(a, msg); /* Proceeding: the 100 again */
	assert_int_equal(fx.nsent, 4);
	assert_true(sent_is(3, "SIP/2.0 100 Trying" CRLF));
	assert_int_equal(respond(a, 200), 0);
	assert_int_equal(respond(c, 404), 0);
	assert_int_equal(fx.nsent, 6);
	advance_to(10000);
	assert_int_equal(fx.nsent, 6); /* b (answered at 1 s), d (nothing kept) and the INVITE: no 100 */
	assert_int_equal(respond(d, 200), 0);
	assert_int_equal(respond(inv, 486), 0);
	drop(a);
	drop(b);
	drop(c);
	drop(d);
	drop(inv);
}

/* txn_reply_prepare builds what txn_reply would send (8.2.6: the Via with received, the To with a tag,
 * the extra lines), sends nothing, and the TU sends it later with txn_respond. */
static void test_reply_prepare(void **state)
{
	struct rq p = { .method = "REGISTER", .via = "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-reg1;rport" };
	struct txn *tx = txn_make(p, false);
	struct txn_origin o;
	struct tp_msg tm;
	struct req r;
	char *out = NULL;
	size_t len = 0;

	(void)state;
	origin_make(&r, &tm, &o, p, 0x0a000001, 40000); /* 10.0.0.1: behind a NAT, as received= says */
	assert_int_equal(txn_reply_prepare(tx, &r.m, 200, NULL, NULL, &out, &len), EINVAL); /* nothing kept */
	assert_null(out);
	assert_int_equal(txn_keep(tx, &o, tm.buf, tm.len), 0);
	assert_int_equal(txn_reply_prepare(tx, NULL, 200, NULL, NULL, &out, &len), EINVAL);
	assert_int_equal(txn_reply_prepare(tx, &r.m, 200, NULL, "Contact: <sip:alice@192.0.2.7>;expires=60" CRLF, &out,
					   &len),
			 0);
	assert_non_null(out);
	assert_int_equal(fx.nsent, 0); /* built, not sent */
	assert_true(len > 16 && !memcmp(out, "SIP/2.0 200 OK" CRLF, 16));
	assert_non_null(memmem(out, len, "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-reg1;rport=40000;received=10.0.0.1" CRLF, 83));
	assert_non_null(memmem(out, len, "To: <sip:bob@example.com>;tag=", 30));
	assert_non_null(memmem(out, len, "CSeq: 1 REGISTER" CRLF, 18));
	assert_non_null(memmem(out, len, "Contact: <sip:alice@192.0.2.7>;expires=60" CRLF, 43));
	assert_int_equal(txn_respond(tx, 200, out, len), 0);
	assert_int_equal(fx.nsent, 1);
	assert_int_equal(fx.sent[0].len, len);
	assert_memory_equal(fx.sent[0].buf, out, len);
	free(out);
	drop(tx);
}

/* Freeing the table with transactions live and their timers running frees everything (ASan checks). */
static void test_free_with_live(void **state)
{
	struct txn *a = txn_make(invite, false), *b = txn_make(options, false);

	(void)state;
	tu_freed = 0;
	txn_set_tu(a, &tu_freed, tu_destroy);
	assert_int_equal(respond(a, 486), 0); /* G and H running */
	assert_int_equal(respond(b, 200), 0); /* J running */
	txn_make((struct rq){ .via = "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK-x" }, false); /* Proceeding */
	drop(a);
	drop(b);
	assert_int_equal(txn_table_live(fx.tt), 3);
	txn_table_free(fx.tt);
	fx.tt = NULL;
	assert_int_equal(tu_freed, 1);
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 0);
	advance_to(100000); /* nothing left to fire */
}

#define MANY 100000u

/* 100,000 transactions in a table that starts with 64 buckets: all found, none confused, all freed. */
static void test_many(void **state)
{
	struct txn **txs = calloc(MANY, sizeof(*txs));
	char via[96];

	(void)state;
	assert_non_null(txs);
	table_make(1, 0); /* one shard: every insert lands in the same growing bucket array */
	for (unsigned i = 0; i < MANY; i++) {
		snprintf(via, sizeof(via), "SIP/2.0/UDP 10.%u.%u.%u:5060;branch=z9hG4bK-%08x", (i >> 16) & 255,
			 (i >> 8) & 255, i & 255, i * 2654435761u);
		txs[i] = txn_make((struct rq){ .method = i % 2 ? "OPTIONS" : "INVITE", .via = via }, i % 2 == 1);
	}
	assert_int_equal(txn_table_live(fx.tt), MANY);
	for (unsigned i = 0; i < MANY; i++) {
		snprintf(via, sizeof(via), "SIP/2.0/UDP 10.%u.%u.%u:5060;branch=z9hG4bK-%08x", (i >> 16) & 255,
			 (i >> 8) & 255, i & 255, i * 2654435761u);
		if (match((struct rq){ .method = i % 2 ? "OPTIONS" : "INVITE", .via = via }) != txs[i])
			fail_msg("transaction %u not found", i);
		if (i % 2 == 0 && match((struct rq){ .method = "ACK", .via = via }) != txs[i])
			fail_msg("ACK of transaction %u not matched", i);
	}
	assert_null(match((struct rq){ .via = "SIP/2.0/UDP 10.0.0.0:5060;branch=z9hG4bK-none" }));

	/* end every other one now: OPTIONS over TCP at once; INVITEs later by Timer H */
	for (unsigned i = 0; i < MANY; i++)
		assert_int_equal(respond(txs[i], i % 2 ? 200 : 486), 0);
	assert_int_equal(txn_table_live(fx.tt), MANY / 2);
	assert_int_equal(fx.ends, MANY / 2);
	advance_to(64 * T1);
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_int_equal(fx.ends, MANY);
	/* each INVITE: its 486 and ten Timer G retransmissions */
	assert_int_equal(fx.sends, MANY / 2 + (MANY / 2) * 11);
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 0);

	/* a second population, left for txn_table_free to reclaim */
	for (unsigned i = 0; i < MANY; i++) {
		snprintf(via, sizeof(via), "SIP/2.0/UDP 10.%u.%u.%u:5060;branch=z9hG4bK-2nd-%u", (i >> 16) & 255,
			 (i >> 8) & 255, i & 255, i);
		txn_make((struct rq){ .method = "BYE", .via = via }, false);
	}
	assert_int_equal(txn_table_live(fx.tt), MANY);
	free(txs);
}

/* Answers a transaction of p with a 200 as a UAS writes it: p's Via and method in it. */
static void respond_echoing(struct txn *tx, struct rq p)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "SIP/2.0 200 OK" CRLF "Via: %s" CRLF "CSeq: 1 %s" CRLF "Content-Length: 0"
			 CRLF CRLF, p.via, p.method);

	assert_int_equal(txn_respond(tx, 200, buf, (size_t)n), 0);
}

/* The echoes of one shard end each at its own Timer J, oldest first, with one timer for them all; a
 * key read from the response (the branch in its Via) matches only the same branch, not a prefix. */
static void test_echoes_end_in_turn(void **state)
{
	const struct rq a = { .method = "REGISTER", .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a12" };
	const struct rq b = { .method = "REGISTER", .via = "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-b12" };
	const struct rq c = { .method = "OPTIONS", .via = "SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK-c12" };

	(void)state;
	table_make(1, 0);
	respond_echoing(txn_make(a, false), a);
	advance_to(1000);
	respond_echoing(txn_make(b, false), b);
	advance_to(5000);
	respond_echoing(txn_make(c, false), c);
	assert_int_equal(txn_table_live(fx.tt), 3);
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 1);
	assert_true(absorbs(a));
	assert_false(absorbs((struct rq){ .method = "REGISTER", .via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a1" }));
	assert_false(absorbs((struct rq){ .method = "REGISTER", .via = "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-a12" }));
	assert_false(absorbs((struct rq){ .method = "REGISTE", .via = a.via }));

	advance_to(lazy_due(64 * T1));
	assert_int_equal(txn_table_live(fx.tt), 2);
	assert_false(absorbs(a));
	assert_true(absorbs(b));
	assert_true(absorbs(c));
	advance_to(lazy_due(1000 + 64 * T1));
	assert_int_equal(txn_table_live(fx.tt), 1);
	assert_false(absorbs(b));
	assert_true(absorbs(c));
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 1);
	advance_to(lazy_due(5000 + 64 * T1));
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 0);

	/* an echo in the emptied shard starts its timer again */
	respond_echoing(txn_make(a, false), a);
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 1);
	assert_true(absorbs(a));
	advance_to(lazy_due(lazy_due(5000 + 64 * T1) + 64 * T1));
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_false(absorbs(a));
}

/* 100,000 answered non-INVITE transactions in one shard: each echo, found among the others as its
 * bucket array grows, sends its own response again; all end at Timer J, or with the table. */
static void test_many_echoes(void **state)
{
	char via[96], resp[96];

	(void)state;
	table_make(1, 0);
	for (unsigned i = 0; i < MANY; i++) {
		struct txn *tx;
		int n;

		snprintf(via, sizeof(via), "SIP/2.0/UDP 10.%u.%u.%u:5060;branch=z9hG4bK-e%u", (i >> 16) & 255,
			 (i >> 8) & 255, i & 255, i);
		tx = txn_make((struct rq){ .method = "BYE", .via = via }, false);
		n = snprintf(resp, sizeof(resp), "SIP/2.0 200 OK %u" CRLF "Content-Length: 0" CRLF CRLF, i);
		assert_int_equal(txn_respond(tx, 200, resp, (size_t)n), 0);
		drop(tx);
	}
	assert_int_equal(txn_table_live(fx.tt), MANY);
	assert_int_equal(fx.ends, MANY);
	sent_clear();
	for (unsigned i = 0; i < MANY; i += 7) {
		int n;

		snprintf(via, sizeof(via), "SIP/2.0/UDP 10.%u.%u.%u:5060;branch=z9hG4bK-e%u", (i >> 16) & 255,
			 (i >> 8) & 255, i & 255, i);
		if (!absorbs((struct rq){ .method = "BYE", .via = via }))
			fail_msg("retransmission %u not absorbed", i);
		n = snprintf(resp, sizeof(resp), "SIP/2.0 200 OK %u" CRLF "Content-Length: 0" CRLF CRLF, i);
		assert_int_equal(fx.sent[fx.nsent - 1].len, (size_t)n);
		assert_memory_equal(fx.sent[fx.nsent - 1].buf, resp, (size_t)n);
		sent_clear();
	}
	assert_false(absorbs((struct rq){ .method = "BYE", .via = "SIP/2.0/UDP 10.0.0.0:5060;branch=z9hG4bK-e1" }));
	advance_to(lazy_due(64 * T1));
	assert_int_equal(txn_table_live(fx.tt), 0);
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 0);

	/* a second population, left for txn_table_free to reclaim with its timers */
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(via, sizeof(via), "SIP/2.0/UDP 10.0.%u.%u:5060;branch=z9hG4bK-f%u", i >> 8, i & 255, i);
		assert_int_equal(respond(txn_make((struct rq){ .method = "BYE", .via = via }, false), 200), 0);
	}
	assert_int_equal(txn_table_live(fx.tt), 1000);
	txn_table_free(fx.tt);
	fx.tt = NULL;
	assert_int_equal(tmr_wheel_count(loop_timers(fx.l)), 0);
}

/* The table is shared by the workers (txn.h): lookups on one thread while another thread's inserts
 * make the shard grow. */
static atomic_bool matcher_stop;
static atomic_ulong matcher_rounds;

static void *matcher(void *arg)
{
	struct req *r = arg;
	unsigned long found = 0;

	while (!atomic_load(&matcher_stop)) {
		bool absorbed;
		struct txn *tx = txn_server_match(fx.tt, &r->m, &absorbed);

		found += tx != NULL;
		mem_deref(tx);
		atomic_fetch_add(&matcher_rounds, 1);
		sched_yield(); /* on two cores a no-op; under valgrind (one thread at a time) the inserts' turn */
	}
	return (void *)found;
}

/* Until the matcher has looked up at least once more: a scheduler (or valgrind, which runs one thread
 * at a time) may otherwise let the inserts finish before it ever runs. */
static void matcher_wait_round(void)
{
	unsigned long seen = atomic_load(&matcher_rounds);

	while (atomic_load(&matcher_rounds) == seen)
		sched_yield();
}

static void test_match_while_growing(void **state)
{
	static struct req r; /* read by the matcher thread */
	pthread_t th;
	char via[96];
	void *found;

	(void)state;
	table_make(1, 0);
	txn_make((struct rq){ .via = "SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-watched" }, false);
	req_make(&r, (struct rq){ .via = "SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-watched" });
	atomic_store(&matcher_stop, false);
	atomic_store(&matcher_rounds, 0);
	assert_int_equal(pthread_create(&th, NULL, matcher, &r), 0);
	matcher_wait_round();
	/* BUG (src/txn/txn.c, lookup, table_unlink, txn_server_new): shard_of() picks the bucket from
	 * s->buckets and s->nbuckets before pthread_mutex_lock(&s->lock). A thread that waits on the
	 * lock while shard_grow() replaces the array then reads (lookup) or writes (insert, unlink) the
	 * freed array: ASan reports a heap-use-after-free here. */
	for (unsigned i = 0; i < MANY; i++) {
		snprintf(via, sizeof(via), "SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bK-grow-%u", i);
		txn_make((struct rq){ .method = "OPTIONS", .via = via }, false);
	}
	matcher_wait_round();
	atomic_store(&matcher_stop, true);
	assert_int_equal(pthread_join(th, &found), 0);
	assert_true((unsigned long)found > 0);
	assert_int_equal(txn_table_live(fx.tt), MANY + 1);
}

/* ---- a transaction owned by a loop that runs on its own thread ---- */

/* What the owner sent, recorded under a lock: the code of each response and whether the owner's loop
 * was the one sending. */
static struct {
	pthread_mutex_t lock;
	unsigned n;
	unsigned code[8];
	bool on_owner[8];
	struct loop *owner;
	struct txn *tx;
	enum txn_state state;
	bool state_read;
} xt = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int xt_send(struct txn *tx, const char *buf, size_t len, void *arg)
{
	char line[16] = "";
	unsigned code = 0;

	(void)tx, (void)arg;
	memcpy(line, buf, len < sizeof(line) - 1 ? len : sizeof(line) - 1); /* buf has no NUL */
	sscanf(line, "SIP/2.0 %u", &code);
	pthread_mutex_lock(&xt.lock);
	if (xt.n < 8) {
		xt.code[xt.n] = code;
		xt.on_owner[xt.n] = loop_current() == xt.owner;
	}
	xt.n++;
	pthread_mutex_unlock(&xt.lock);
	return 0;
}

static void *xt_run(void *arg)
{
	loop_run(arg);
	return NULL;
}

static void xt_new(void *arg)
{
	struct req *r = arg;
	struct txn *tx = NULL;

	txn_server_new(&tx, fx.tt, xt.owner, &r->m, false);
	pthread_mutex_lock(&xt.lock);
	xt.tx = tx;
	pthread_mutex_unlock(&xt.lock);
}

static void xt_read_state(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&xt.lock);
	xt.state = txn_state(xt.tx);
	xt.state_read = true;
	pthread_mutex_unlock(&xt.lock);
}

/* Polls (5 s at most) until cond holds under xt.lock. */
#define XT_WAIT(cond)                                                                                          \
	do {                                                                                                   \
		bool ok_ = false;                                                                              \
		for (int i_ = 0; i_ < 5000 && !ok_; i_++) {                                                    \
			pthread_mutex_lock(&xt.lock);                                                          \
			ok_ = (cond);                                                                          \
			pthread_mutex_unlock(&xt.lock);                                                        \
			if (!ok_)                                                                              \
				usleep(1000);                                                                  \
		}                                                                                              \
		assert_true(ok_);                                                                              \
	} while (0)

/* The TU answers from another thread (a registrar's writer, a DNS result) and retransmissions and the
 * ACK come in on another worker: each is handed to the owner's loop, which runs them in order: the 180,
 * the 486, the 486 again for the retransmitted INVITE, then the ACK moves the transaction to Confirmed. */
static void test_other_threads(void **state)
{
	struct txn_table_config cfg = {
		.timers = { 10000, 40000, 50000 }, /* no timer fires while the test runs, however slow */
		.send = xt_send,
		.arg = &fx,
	};
	static struct req r;
	pthread_t th;

	(void)state;
	txn_table_free(fx.tt);
	fx.tt = NULL;
	assert_int_equal(txn_table_new(&fx.tt, &cfg), 0);
	xt.n = 0;
	xt.tx = NULL;
	xt.state_read = false;
	assert_int_equal(loop_new(&xt.owner), 0);
	assert_int_equal(pthread_create(&th, NULL, xt_run, xt.owner), 0);
	req_make(&r, invite);
	assert_int_equal(loop_post(xt.owner, xt_new, &r), 0);
	XT_WAIT(xt.tx != NULL);

	assert_int_equal(respond(xt.tx, 180), 0);
	assert_int_equal(respond(xt.tx, 486), 0);
	assert_int_equal(respond(xt.tx, 200), EINVAL); /* a final after the final, at once, from here */
	txn_server_recv(xt.tx, false);
	txn_server_recv(xt.tx, true);
	XT_WAIT(xt.n >= 3);
	assert_int_equal(loop_post(xt.owner, xt_read_state, NULL), 0);
	XT_WAIT(xt.state_read);
	pthread_mutex_lock(&xt.lock);
	assert_int_equal(xt.n, 3);
	assert_int_equal(xt.code[0], 180);
	assert_int_equal(xt.code[1], 486);
	assert_int_equal(xt.code[2], 486);
	for (unsigned i = 0; i < 3; i++)
		assert_true(xt.on_owner[i]);
	assert_int_equal(xt.state, TXN_CONFIRMED);
	pthread_mutex_unlock(&xt.lock);

	loop_stop(xt.owner);
	assert_int_equal(pthread_join(th, NULL), 0);
	mem_deref(xt.tx);
	txn_table_free(fx.tt); /* before the loop its timers are on */
	fx.tt = NULL;
	loop_free(xt.owner);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_invite_100_then_486),
		TEST(test_invite_timer_g_then_h),
		TEST(test_invite_ack_confirmed_timer_i),
		TEST(test_invite_ack_in_proceeding_ignored),
		TEST(test_invite_retransmission),
		TEST(test_invite_reliable),
		TEST(test_invite_2xx_accepted),
		TEST(test_invite_2xx_accepted_reliable),
		TEST(test_non_invite_udp),
		TEST(test_non_invite_provisional),
		TEST(test_non_invite_tcp),
		TEST(test_respond_after_final),
		TEST(test_match_branch_sent_by_method),
		TEST(test_match_host_case),
		TEST(test_match_ack),
		TEST(test_match_cancel),
		TEST(test_match_cancel_non_invite),
		TEST(test_echo_rfc2543),
		TEST(test_match_rfc2543_branch_without_cookie),
		TEST(test_match_rfc2543_no_branch),
		TEST(test_match_rfc2543_to_tag),
		TEST(test_new_unkeyable),
		TEST(test_max_live),
		TEST(test_max_echoes),
		TEST(test_max_bytes),
		TEST(test_bad_shards),
		TEST(test_tu_and_dest),
		TEST(test_tu_released_after_final),
	TEST(test_give_up),
		TEST(test_trying_at_t2),
		TEST(test_reply_prepare),
		TEST(test_free_with_live),
		TEST(test_many),
		TEST(test_echoes_end_in_turn),
		TEST(test_many_echoes),
		TEST(test_other_threads),
		TEST(test_match_while_growing), /* last: ASan aborts the run if the race hits */
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
