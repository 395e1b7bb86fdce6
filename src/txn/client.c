/* client.c: client transactions (RFC 3261 17.1): INVITE (timers A, B, D, hop-by-hop ACK for a non-2xx
 * final; after a 2xx, the Accepted state of RFC 6026 until Timer M) and non-INVITE (timers E, F, K),
 * matched by the branch sipd put in its Via (17.1.3). A final response that is not a valid answer to the
 * request sent ends the transaction as a 502 (16.7); a TCP connection that cannot be set up, or that goes
 * away before they heard anything, ends those waiting on it as a 503 (8.1.3.1, 17.1.4). */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/htab.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/timer.h"
#include "net/loop.h"
#include "sip/build.h"
#include "txn/txn.h"
#include "txn/txn_private.h"

#define CSHARD_BITS 8
#define CSHARDS (1u << CSHARD_BITS) /* by the key hash's low bits; the chains use the rest */
#define CBUCKETS_MAX (1u << 14) /* per shard: 4M in all */

enum cstate { C_CALLING, C_PROCEEDING, C_COMPLETED, C_TERMINATED };

/* What a response must echo of the request sent (8.2.6.2): the CSeq number, the Call-ID and From tag
 * (hashed) and as many Via values. */
struct expect {
	uint32_t cseq;
	uint32_t id_hash;
	unsigned nvia;
};

/* What a client shard chains, first in each: a transaction, or the record an answered INVITE leaves. */
struct centry {
	struct htab_link link; /* first: the shard's chain, and the key's hash */
	bool accepted;         /* a struct accepted */
};

/* An INVITE client transaction after its first 2xx, for the Accepted state (RFC 6026 8.4): until
 * Timer M (64*T1, on every transport: a forking proxy downstream may send other 2xx late) it still
 * matches the 2xx that follow (the callee's retransmissions, another fork's answer), so that they go on,
 * while a response that matches no transaction is dropped (RFC 6026 7.3). That is all it does (the ACK
 * of a 2xx is end to end), so the transaction (request copy, timers, TU) ends with the first 2xx and this
 * record, a third of its size, stays: the branch and what a 2xx must echo. Owned by its shard; its timer,
 * on the loop that owned the transaction, ends it. */
struct accepted {
	struct centry e;       /* first */
	struct txn_table *table;
	struct tmr m;          /* Timer M */
	struct expect want;
	uint8_t branch_len;
	char branch[];
};

struct txn_client {
	struct centry e;       /* first */
	struct txn_client *wnext, *wprev; /* waiting: no response yet (under its wait shard's lock) */
	bool waiting;
	struct txn_table *table;
	char branch[48];
	char method[TXN_METHOD_MAX + 1]; /* CSeq method: INVITE and CANCEL share a branch, not a transaction */
	bool in_table, invite, reliable;
	bool invalid;          /* ended by an invalid final: its retransmissions are ACKed too */
	bool conn_lost;        /* ended by its connection going away once up (17.1.4) */
	enum cstate state;
	struct loop *loop;
	struct tmr tmr_retx;   /* A or E */
	struct tmr tmr_end;    /* B, D, F, K */
	unsigned retx;
	char *req, *ack;
	size_t req_len, ack_len;
	struct tp_worker *worker;
	uint8_t lsn;            /* the listener it sends from over UDP */
	enum tp_proto proto;
	struct tp_addr dst;
	struct expect want;    /* what a response must echo */
	txn_client_h *h;       /* NULL once detached */
	void *arg;
};

/* Client transactions that have heard nothing yet, by destination: a transport error for that
 * destination (a TCP connect that failed or a connection lost, an ICMP unreachable for UDP) ends them
 * (8.1.3.1). */
#define WSHARDS 64
struct wshard {
	pthread_mutex_t lock;
	struct txn_client *head;
};

struct cshard {
	pthread_mutex_t lock;
	struct htab clients;      /* of struct centry: transactions and Accepted records */
};

struct txn_ctable {
	struct cshard shards[CSHARDS];
	struct wshard wait[WSHARDS]; /* client transactions without a response yet, by destination */
};

static atomic_uint_fast64_t branch_counter;
static uint64_t branch_seed;

void txn_branch_new(char out[32])
{
	uint64_t n = atomic_fetch_add(&branch_counter, 1);

	if (!branch_seed)
		branch_seed = (uint64_t)(uintptr_t)&n ^ (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	uint64_t v = (n * 0x9e3779b97f4a7c15ull) ^ branch_seed;

	memcpy(out, MAGIC_COOKIE, 7); /* and 16 hex digits: one per forwarded request */
	slice_put_hex(out + 7, v, 16);
	out[23] = '\0';
}

int txn__ctable_new(struct txn_ctable **cp)
{
	struct txn_ctable *c = calloc(1, sizeof(*c));

	if (!c)
		return ENOMEM;
	for (unsigned i = 0; i < CSHARDS; i++) {
		if (htab_init(&c->shards[i].clients, 64, CBUCKETS_MAX, CSHARD_BITS)) {
			while (i--)
				htab_free(&c->shards[i].clients);
			free(c);
			return ENOMEM;
		}
		pthread_mutex_init(&c->shards[i].lock, NULL);
	}
	for (unsigned i = 0; i < WSHARDS; i++)
		pthread_mutex_init(&c->wait[i].lock, NULL);
	*cp = c;
	return 0;
}

static uint32_t key_hash(struct slice branch, struct slice method)
{
	return slice_hash(method, slice_hash(branch, 0xc1));
}

uint32_t txn_client_id_hash(const struct sip_msg *m)
{
	return slice_hash(m->from.tag, slice_hash(m->call_id, 0x1d));
}

/* How many Via values m carries. */
static unsigned txn_via_count(const struct sip_msg *m)
{
	return sip_list_count(m, SIP_HDR_VIA);
}

static struct cshard *cshard_of(struct txn_ctable *c, uint32_t h)
{
	return &c->shards[h % CSHARDS];
}

static void unlink_ct(struct txn_client *ct)
{
	struct cshard *s = cshard_of(ct->table->clients, ct->e.link.hash);

	pthread_mutex_lock(&s->lock);
	if (ct->in_table) {
		htab_remove(&s->clients, &ct->e.link);
		ct->in_table = false;
	}
	pthread_mutex_unlock(&s->lock);
}

static struct wshard *wshard_of(struct txn_ctable *c, enum tp_proto proto, const struct tp_addr *dst)
{
	return &c->wait[tp_addr_hash(dst, (uint32_t)proto) % WSHARDS];
}

static void wait_link(struct txn_client *ct)
{
	struct wshard *w = wshard_of(ct->table->clients, ct->proto, &ct->dst);

	pthread_mutex_lock(&w->lock);
	ct->wprev = NULL;
	ct->wnext = w->head;
	if (w->head)
		w->head->wprev = ct;
	w->head = ct;
	ct->waiting = true;
	pthread_mutex_unlock(&w->lock);
}

static void wait_unlink(struct txn_client *ct)
{
	struct wshard *w = wshard_of(ct->table->clients, ct->proto, &ct->dst);

	pthread_mutex_lock(&w->lock);
	if (ct->waiting) {
		if (ct->wprev)
			ct->wprev->wnext = ct->wnext;
		else
			w->head = ct->wnext;
		if (ct->wnext)
			ct->wnext->wprev = ct->wprev;
		ct->waiting = false;
	}
	pthread_mutex_unlock(&w->lock);
}

/* The request is counted in the table's held bytes while the transaction keeps it. */
static void ct_req_free(struct txn_client *ct)
{
	if (ct->req)
		txn_table_unhold(ct->table, ct->req_len);
	free(ct->req);
	ct->req = NULL;
	ct->req_len = 0;
}

static void ct_destroy(void *data)
{
	struct txn_client *ct = data;

	ct_req_free(ct);
	free(ct->ack);
}

/* Ends the transaction; the TU hears code (408 / 503) if no final reached it yet. */
static void ct_terminate(struct txn_client *ct, unsigned code)
{
	txn_client_h *h = ct->h;

	if (ct->state == C_TERMINATED)
		return;
	if (code && h && ct->state != C_COMPLETED) {
		ct->h = NULL;
		h(ct, code, NULL, ct->arg);
	}
	ct->state = C_TERMINATED;
	tmr_cancel(&ct->tmr_retx);
	tmr_cancel(&ct->tmr_end);
	unlink_ct(ct);
	wait_unlink(ct);
	mem_deref(ct); /* the table's reference */
}

void txn__ctable_free(struct txn_ctable *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < CSHARDS; i++) {
		for (size_t b = 0; b < c->shards[i].clients.n; b++) {
			struct htab_link *l;

			while ((l = c->shards[i].clients.v[b])) {
				if (((struct centry *)l)->accepted) {
					struct accepted *a = (struct accepted *)l;

					htab_remove(&c->shards[i].clients, l);
					tmr_cancel(&a->m);
					free(a);
					continue;
				}
				struct txn_client *ct = (struct txn_client *)l;

				ct->h = NULL;
				ct_terminate(ct, 0);
			}
		}
		htab_free(&c->shards[i].clients);
		pthread_mutex_destroy(&c->shards[i].lock);
	}
	for (unsigned i = 0; i < WSHARDS; i++)
		pthread_mutex_destroy(&c->wait[i].lock);
	free(c);
}

static int ct_send(struct txn_client *ct, const char *buf, size_t len)
{
	return tp_send_from(ct->worker, ct->lsn, ct->proto, NULL, &ct->dst, buf, len);
}

static void timer_retx(struct tmr *t, void *arg)
{
	struct txn_client *ct = arg;
	const struct txn_timers *T = &ct->table->cfg.timers;

	(void)t;
	if (ct_send(ct, ct->req, ct->req_len)) {
		ct_terminate(ct, 503);
		return;
	}
	/* A doubles until B ends it; E doubles up to T2, and stays at T2 once provisional came (17.1.2.2) */
	ct->retx *= 2;
	if (!ct->invite && (ct->retx > T->t2 || ct->state == C_PROCEEDING))
		ct->retx = T->t2;
	tmr_start(loop_timers(ct->loop), &ct->tmr_retx, ct->retx, timer_retx, ct);
}

static void timer_end(struct tmr *t, void *arg)
{
	struct txn_client *ct = arg;

	(void)t;
	/* B or F: no final in time (408); D or K: the Completed state has absorbed enough */
	ct_terminate(ct, ct->state == C_COMPLETED ? 0 : 408);
}

/* The ident of a request, read from it: for callers that have not kept it (a CANCEL). */
static int ident_parse(struct txn_client_ident *id, struct sip_msg *m, const char *req, size_t len)
{
	struct sip_error err;

	if (sip_msg_parse(m, req, len, &err))
		return EINVAL;
	*id = (struct txn_client_ident){ .branch = m->via.branch, .method = m->cseq.method, .cseq = m->cseq.num,
					 .id_hash = txn_client_id_hash(m), .nvia = txn_via_count(m) };
	return 0;
}

int txn_client_send(struct txn_client **ctp, struct txn_table *t, struct loop *loop, const char *req, size_t len,
		    const struct txn_client_ident *id, struct tp_worker *w, uint8_t lsn, enum tp_proto proto,
		    const struct tp_addr *dst, txn_client_h *h, void *arg)
{
	const struct txn_timers *T = &t->cfg.timers;
	struct txn_client *ct;
	struct txn_client_ident parsed;
	struct sip_msg *m = NULL;
	struct cshard *s;
	int rc;

	if (!id) {
		if (!(m = malloc(sizeof(*m))))
			return ENOMEM;
		if (ident_parse(&parsed, m, req, len)) {
			free(m);
			return EINVAL;
		}
		id = &parsed;
	}
#ifndef NDEBUG
	else { /* debug builds (the tests) check that the caller's ident is what the request says */
		struct sip_msg *chk = malloc(sizeof(*chk));

		if (chk && ident_parse(&parsed, chk, req, len) == 0) {
			assert(slice_eq(parsed.branch, id->branch) && slice_eq(parsed.method, id->method));
			assert(parsed.cseq == id->cseq && parsed.id_hash == id->id_hash && parsed.nvia == id->nvia);
		}
		free(chk);
	}
#endif
	if (!id->branch.l || id->branch.l >= sizeof(ct->branch) || !id->method.l || id->method.l >= sizeof(ct->method)) {
		free(m);
		return EINVAL;
	}
	if (txn_table_hold(t, len)) {
		free(m);
		return ENOBUFS;
	}
	ct = mem_zalloc(sizeof(*ct), ct_destroy);
	if (!ct || !(ct->req = malloc(len))) {
		txn_table_unhold(t, len);
		free(m);
		mem_deref(ct);
		return ENOMEM;
	}
	ct->table = t; /* before anything frees it: ct_req_free gives the bytes back to t */
	memcpy(ct->req, req, len);
	ct->req_len = len;
	slice_copy(ct->branch, sizeof(ct->branch), id->branch);
	slice_copy(ct->method, sizeof(ct->method), id->method);
	ct->invite = sip_method_lookup(id->method) == SIP_METHOD_INVITE;
	ct->want = (struct expect){ id->cseq, id->id_hash, id->nvia };
	free(m); /* the slices of id point into req or m: both done with */
	ct->loop = loop;
	ct->worker = w;
	ct->lsn = lsn;
	ct->proto = proto;
	ct->dst = *dst;
	ct->reliable = proto != TP_UDP;
	ct->h = h;
	ct->arg = arg;
	ct->e.link.hash = key_hash(slice_cstr(ct->branch), slice_cstr(ct->method));
	s = cshard_of(t->clients, ct->e.link.hash);
	pthread_mutex_lock(&s->lock);
	htab_add(&s->clients, &ct->e.link);
	ct->in_table = true;
	pthread_mutex_unlock(&s->lock);
	wait_link(ct); /* before the send: a connect may fail, an ICMP error come, on another worker at once */
	rc = ct_send(ct, req, len);
	if (rc) {
		ct->h = NULL; /* the caller hears the errno instead */
		ct_terminate(ct, 0);
		return rc;
	}
	if (!ct->reliable) {
		ct->retx = T->t1;
		tmr_start(loop_timers(loop), &ct->tmr_retx, T->t1, timer_retx, ct);
	}
	tmr_start(loop_timers(loop), &ct->tmr_end, 64u * T->t1, timer_end, ct);
	if (ctp)
		*ctp = mem_ref(ct);
	return 0;
}

/* 17.1.1.3: the ACK for a non-2xx final: Request-URI, Call-ID, From, the first Via and the Route of
 * the INVITE; the To of the response; CSeq with the INVITE's number and ACK. */
static void build_ack(struct txn_client *ct, const struct sip_msg *resp)
{
	struct sip_msg *inv = malloc(sizeof(*inv));
	const struct sip_hdr *to = sip_msg_hdr(resp, SIP_HDR_TO);
	struct sip_error err;
	char *buf = malloc(ct->req_len + 512);
	struct sbuf b;

	if (!inv || !buf || !to || sip_msg_parse(inv, ct->req, ct->req_len, &err)) {
		free(inv);
		free(buf);
		return;
	}
	sbuf_init(&b, buf, ct->req_len + 512);
	if (sip_hop_request_write(&b, inv, "ACK", to->value) == 0) {
		char *fit = realloc(buf, b.len ? b.len : 1); /* kept for Timer D: no spare room */

		ct->ack = fit ? fit : buf;
		ct->ack_len = b.len;
	} else {
		free(buf);
	}
	free(inv);
}

/* A non-2xx final (or an invalid one, told to the TU as code with tu_resp NULL): Completed. */
static void resp_final(struct txn_client *ct, unsigned code, const struct sip_msg *tu_resp,
		       const struct sip_msg *resp)
{
	txn_client_h *h = ct->h;

	ct->h = NULL;
	if (h)
		h(ct, code, tu_resp, ct->arg);
	ct->state = C_COMPLETED;
	tmr_cancel(&ct->tmr_retx);
	if (ct->invite) {
		build_ack(ct, resp);
		if (ct->ack)
			ct_send(ct, ct->ack, ct->ack_len);
	}
	/* Completed only absorbs retransmitted finals (and ACKs them): the request is never sent again */
	ct_req_free(ct);
	/* D: 32 s over UDP (at least 64*T1 would do for B's sake), K: T4; 0 over reliable transports */
	if (ct->reliable) {
		ct_terminate(ct, 0);
		return;
	}
	tmr_start_lazy(loop_timers(ct->loop), &ct->tmr_end, ct->invite ? 32000u : ct->table->cfg.timers.t4,
		       timer_end, ct);
}

static void accepted_end(struct tmr *t, void *arg)
{
	struct accepted *a = arg;
	struct cshard *s = cshard_of(a->table->clients, a->e.link.hash);

	(void)t;
	pthread_mutex_lock(&s->lock);
	htab_remove(&s->clients, &a->e.link);
	pthread_mutex_unlock(&s->lock);
	free(a);
}

/* The first 2xx to an INVITE: the transaction ends (17.1.1.2) and leaves its Accepted record (struct
 * accepted) until Timer M. Without memory for the record, the 2xx that follow are dropped. */
static void accept_2xx(struct txn_client *ct)
{
	size_t bl = strlen(ct->branch); /* under 48 */
	struct accepted *a = malloc(sizeof(*a) + bl);

	if (a) {
		struct cshard *s = cshard_of(ct->table->clients, ct->e.link.hash);

		a->e = (struct centry){ .link.hash = ct->e.link.hash, .accepted = true };
		a->table = ct->table;
		a->m = (struct tmr){ 0 };
		a->want = ct->want;
		a->branch_len = (uint8_t)bl;
		memcpy(a->branch, ct->branch, bl);
		pthread_mutex_lock(&s->lock);
		htab_add(&s->clients, &a->e.link); /* before the transaction goes: no moment without either */
		pthread_mutex_unlock(&s->lock);
		tmr_start_lazy(loop_timers(ct->loop), &a->m, 64u * ct->table->cfg.timers.t1, accepted_end, a);
	}
	ct_terminate(ct, 0);
}

/* Why resp cannot be the answer to the request sent (8.2.6.2: the same Call-ID, From, CSeq and Vias;
 * a To tag on every final), or NULL. */
static const char *resp_mismatch(const struct expect *want, const struct sip_msg *resp)
{
	if (resp->cseq.num != want->cseq)
		return "CSeq number differs from the request's";
	if (txn_client_id_hash(resp) != want->id_hash)
		return "Call-ID or From tag differs from the request's";
	if (txn_via_count(resp) != want->nvia)
		return "Via values differ in number from the request's";
	if (resp->status >= 200 && !resp->to.tag.p)
		return "final response without a To tag";
	return NULL;
}

/* RFC 6026 8.4: an Accepted INVITE passes every valid 2xx on (the table's accepted_2xx), from the
 * thread that received it; it absorbs anything else (a late 1xx, a non-2xx final that a broken UAS sends
 * after its 2xx, a 2xx that does not answer the request sent). */
static void accepted_recv(const struct txn_table *t, const struct expect *want, const struct sip_msg *resp,
			  const char *invalid)
{
	const struct txn_table_config *cfg = &t->cfg;

	if (!invalid && resp->status / 100 == 2)
		invalid = resp_mismatch(want, resp);
	else if (!invalid)
		invalid = "not a 2xx";
	if (invalid) {
		log_debug("txn: dropped a response %u to an answered INVITE: %s", resp->status, invalid);
		return;
	}
	if (cfg->accepted_2xx)
		cfg->accepted_2xx(resp, cfg->arg);
}

/* invalid: why the core found resp malformed, NULL when it passed the checks. */
static void recv_here(struct txn_client *ct, const struct sip_msg *resp, const char *invalid)
{
	unsigned code = resp->status;
	txn_client_h *h = ct->h;

	if (ct->state == C_TERMINATED)
		return; /* (a 2xx posted before the first one made it Accepted is dropped: one comes again) */
	if (ct->state == C_COMPLETED) {
		if (ct->invite && (code >= 300 || ct->invalid) && ct->ack)
			ct_send(ct, ct->ack, ct->ack_len); /* a retransmitted final: the ACK again */
		return;
	}
	if (ct->waiting)
		wait_unlink(ct); /* an answer came: the connection is up */
	if (!invalid)
		invalid = resp_mismatch(&ct->want, resp);
	if (invalid) {
		char as[64];

		/* a provisional is no commitment: dropped, the final (or Timer B / C) still comes. An invalid
		 * final ends the transaction like a non-2xx (ACKed where the To allows); the TU hears 502 */
		log_info("txn: %s response %u to %s from %s %s: %s", code < 200 ? "dropped an invalid" : "invalid final",
			 code, ct->method, tp_proto_name(ct->proto), tp_addr_str(&ct->dst, as, sizeof(as)), invalid);
		if (code < 200)
			return;
		ct->invalid = true;
		resp_final(ct, 502, NULL, resp);
		return;
	}
	if (code < 200) {
		bool first = ct->state != C_PROCEEDING;

		ct->state = C_PROCEEDING;
		if (ct->invite) {
			/* 17.1.1.2: no more A, and B only guards Calling: ringing is bounded by the proxy's Timer C */
			tmr_cancel(&ct->tmr_retx);
			tmr_cancel(&ct->tmr_end);
		}
		/* a 100 only when it is the first provisional: it lets a CANCEL go (9.1) */
		if (h && (code > 100 || first))
			h(ct, code, resp, ct->arg);
		return;
	}
	if (ct->invite && code < 300) {
		ct->h = NULL;
		if (h)
			h(ct, code, resp, ct->arg);
		if (ct->state != C_TERMINATED) /* (the caller's reference keeps ct; the TU may have abandoned it) */
			accept_2xx(ct);
		return;
	}
	resp_final(ct, code, resp, resp);
}

/* A response another worker received, handed to the owner as it was parsed there: the message and a
 * copy of its bytes in one block, the message's slices pointing into the copy (sip_msg_copy), so the
 * owner does not parse it again. */
struct posted {
	struct txn_client *ct;
	const char *invalid;   /* a string literal of the parser's */
	struct sip_msg m;
	char buf[];
};

static void recv_posted(void *arg)
{
	struct posted *p = arg;

	recv_here(p->ct, &p->m, p->invalid);
	mem_deref(p->ct);
	free(p);
}

struct recv_direct {
	struct txn_client *ct;
	const struct sip_msg *resp;
	const char *invalid;
};

static void recv_direct_h(void *arg)
{
	struct recv_direct *d = arg;

	recv_here(d->ct, d->resp, d->invalid);
}

int txn_client_recv(struct txn_table *t, const struct sip_msg *resp, const char *invalid)
{
	uint32_t h = key_hash(resp->via.branch, resp->cseq.method);
	struct cshard *s = cshard_of(t->clients, h);
	struct txn_client *ct = NULL;
	struct expect want;
	bool accepted = false;
	struct posted *p;

	if (!resp->via.branch.l || !resp->cseq.method.l)
		return ENOENT;
	pthread_mutex_lock(&s->lock);
	for (struct htab_link *l = htab_chain(&s->clients, h); l && !ct && !accepted; l = l->next) {
		if (l->hash != h)
			continue;
		if (((struct centry *)l)->accepted) {
			const struct accepted *a = (const struct accepted *)l;

			if (slice_eq(slice_make(a->branch, a->branch_len), resp->via.branch) &&
			    slice_eq(SLICE_LIT("INVITE"), resp->cseq.method)) {
				want = a->want; /* copied under the lock: Timer M may end the record at once */
				accepted = true;
			}
			continue;
		}
		struct txn_client *c = (struct txn_client *)l;

		if (slice_eq(slice_cstr(c->branch), resp->via.branch) && slice_eq(slice_cstr(c->method), resp->cseq.method))
			ct = c;
	}
	mem_ref(ct);
	pthread_mutex_unlock(&s->lock);
	if (accepted) {
		accepted_recv(t, &want, resp, invalid); /* on this thread: the record needs no owner */
		return 0;
	}
	if (!ct)
		return ENOENT;
	/* the owner's loop runs the state machine: here when this is the owner, or when it sleeps with
	 * nothing posted (no wake-up, no copy); else posted to it */
	struct recv_direct d = { ct, resp, invalid };

	if (t->cfg.single_thread) {
		recv_here(ct, resp, invalid);
		mem_deref(ct);
		return 0;
	}
	if (loop_run_as(ct->loop, recv_direct_h, &d)) {
		mem_deref(ct);
		return 0;
	}
	p = malloc(sizeof(*p) + resp->len);
	if (p) {
		p->ct = ct;
		p->invalid = invalid;
		memcpy(p->buf, resp->buf, resp->len);
		sip_msg_copy(&p->m, resp, p->buf);
		if (loop_post(ct->loop, recv_posted, p) == 0)
			return 0;
	}
	free(p);
	mem_deref(ct);
	return 0;
}

static void conn_failed_here(struct txn_client *ct, bool lost)
{
	if (ct->state != C_CALLING)
		return;
	ct->conn_lost = lost;
	ct_terminate(ct, 503); /* 8.1.3.1: a transport error is a 503 */
}

static void conn_failed_posted(void *arg)
{
	struct txn_client *ct = arg;

	conn_failed_here(ct, false);
	mem_deref(ct);
}

static void conn_lost_posted(void *arg)
{
	struct txn_client *ct = arg;

	conn_failed_here(ct, true);
	mem_deref(ct);
}

void txn_client_conn_failed(struct txn_table *t, enum tp_proto proto, const struct tp_addr *dst, int err,
			    bool lost)
{
	struct txn_ctable *c = t->clients;
	struct txn_client **hit = NULL, *ct;
	size_t n = 0, cap = 0;
	char as[64];

	struct wshard *w = wshard_of(c, proto, dst);

	pthread_mutex_lock(&w->lock);
	for (ct = w->head; ct; ct = ct->wnext) {
		if (ct->proto != proto || !tp_addr_eq(&ct->dst, dst))
			continue;
		if (n == cap) {
			struct txn_client **more = realloc(hit, (cap = cap ? cap * 2 : 8) * sizeof(*hit));

			if (!more)
				break; /* those left end on Timer B / F */
			hit = more;
		}
		hit[n++] = mem_ref(ct);
	}
	pthread_mutex_unlock(&w->lock);
	if (n)
		log_info("txn: %s connection to %s %s (%s): %zu client transaction(s) end as 503", tp_proto_name(proto),
			 tp_addr_str(dst, as, sizeof(as)), lost ? "lost" : "failed", strerror(err), n);
	for (size_t i = 0; i < n; i++) {
		ct = hit[i];
		if (loop_current() == ct->loop || t->cfg.single_thread) {
			conn_failed_here(ct, lost);
			mem_deref(ct);
		} else if (loop_post(ct->loop, lost ? conn_lost_posted : conn_failed_posted, ct)) {
			mem_deref(ct); /* it ends on Timer B / F */
		}
	}
	free(hit);
}

void txn_client_detach(struct txn_client *ct)
{
	if (ct)
		ct->h = NULL;
}

void txn_client_abandon(struct txn_client *ct)
{
	if (!ct)
		return;
	ct->h = NULL;
	ct_terminate(ct, 0);
}

bool txn_client_conn_lost(const struct txn_client *ct)
{
	return ct->conn_lost;
}

bool txn_client_final(const struct txn_client *ct)
{
	return ct->state == C_COMPLETED || ct->state == C_TERMINATED;
}
