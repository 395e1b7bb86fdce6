/* core.c: the life of a request inside sipd, from bytes to the answer. */
#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/mem.h"
#include "net/loop.h"
#include "sip/build.h"
#include "sip/msg.h"
#include "sip/status.h"
#include "txn/txn.h"

#define OUT_MAX (1 << 16)

/* What sipd serves as a UAS today; grows with the registrar and the proxy. */
#define ALLOW_METHODS "INVITE, ACK, CANCEL, BYE, OPTIONS"

struct core {
	struct config cfg;
	char options_hdrs[1024]; /* what a 200 to OPTIONS carries, built once */
	struct txn_table *txns;
	int fault_txn_alloc;
};

/* Per worker thread: the parsed message and the output buffer, so the hot path allocates nothing. */
struct worker_ctx {
	struct sip_msg msg;
	char out[OUT_MAX];
};
static _Thread_local struct worker_ctx *wctx;

/* Where and how one request arrived, and where its responses go (RFC 3261 18.2.2). */
struct origin {
	struct tp_worker *worker;
	enum tp_proto proto;
	struct tp_conn *conn;
	struct tp_addr src;
	struct tp_addr dst;
	char src_host[64];
	uint16_t src_port;
};

/* The request an INVITE transaction answers, kept so that a later 487 or final answer can be built. */
struct invite_ctx {
	struct core *core;
	struct txn *tx;        /* referenced while the ring timer runs */
	struct origin org;
	struct tmr ring;
	char *req;
	size_t req_len;
};

/* ---- sending ---- */

static void origin_init(struct origin *o, const struct tp_msg *tm, const struct sip_msg *req)
{
	o->worker = tm->worker;
	o->proto = tm->proto;
	o->conn = tm->conn;
	o->src = tm->src;
	o->dst = tm->src;
	tp_addr_host(&tm->src, o->src_host, sizeof(o->src_host));
	o->src_port = tp_addr_port(&tm->src);
	/* UDP without rport: the sent-by port at the source address (18.2.2, RFC 3581 4) */
	if (tm->proto == TP_UDP && req && req->via.raw.p && !req->via.has_rport) {
		uint16_t port = req->via.port ? req->via.port : 5060;

		if (o->dst.u.sa.sa_family == AF_INET)
			o->dst.u.in.sin_port = htons(port);
		else if (o->dst.u.sa.sa_family == AF_INET6)
			o->dst.u.in6.sin6_port = htons(port);
	}
}

static void to_tag_of(const struct sip_msg *req, char buf[static 11])
{
	/* Deterministic, so a retransmission answered statelessly carries the same tag. */
	static const char hex[] = "0123456789abcdef";
	uint32_t h = slice_hash(req->call_id, 0x5ed);

	h = slice_hash(req->from.tag, h);
	h = slice_hash(req->via.branch, h);
	buf[0] = 's';
	buf[1] = 'd';
	for (int i = 0; i < 8; i++)
		buf[2 + i] = hex[(h >> (28 - 4 * i)) & 15];
	buf[10] = '\0';
}

/* Writes the response into the worker's buffer; returns its length, 0 if it could not be built. */
static size_t build_response(struct core *c, const struct sip_msg *req, const struct origin *o, unsigned code,
			     const char *reason, const char *extra)
{
	struct sbuf b;
	char tag[16];
	struct sip_resp r = {
		.code = code,
		.reason = reason,
		.src_host = slice_cstr(o->src_host),
		.src_port = o->src_port,
		.server = c->cfg.server_name[0] ? c->cfg.server_name : NULL,
		.extra = extra,
	};

	to_tag_of(req, tag);
	r.to_tag = slice_cstr(tag);
	sbuf_init(&b, wctx->out, sizeof(wctx->out));
	if (sip_resp_write(&b, req, &r)) {
		log_warn("response %u does not fit in %zu bytes", code, sizeof(wctx->out));
		return 0;
	}
	return b.len;
}

static void send_stateless(struct core *c, const struct sip_msg *req, const struct origin *o, unsigned code,
			   const char *reason, const char *extra)
{
	size_t len = build_response(c, req, o, code, reason, extra);

	if (len)
		tp_send(o->worker, o->proto, o->conn, &o->dst, wctx->out, len);
}

/* Through the transaction when there is one; else statelessly (RFC 3261 8.2.7): sipd answers a
 * non-INVITE request at once and deterministically (the To tag included), so a retransmission is
 * answered by regenerating the same response, with no state kept for 64*T1. */
static void send_txn(struct core *c, struct txn *tx, const struct sip_msg *req, const struct origin *o,
		     unsigned code, const char *reason, const char *extra)
{
	size_t len;

	if (!tx) {
		send_stateless(c, req, o, code, reason, extra);
		return;
	}
	len = build_response(c, req, o, code, reason, extra);
	if (len)
		txn_respond(tx, code, wctx->out, len);
}

static int txn_send(struct txn *tx, const char *buf, size_t len, void *arg)
{
	struct tp_worker *w;
	enum tp_proto proto;
	struct tp_conn *conn;
	const struct tp_addr *dst;

	(void)arg;
	txn_get_dest(tx, &w, &proto, &conn, &dst);
	return tp_send(w, proto, conn, dst, buf, len);
}

/* ---- checks of RFC 3261 8.2 ---- */

static bool list_has(const char *list, struct slice item)
{
	const char *p = list;

	while (*p) {
		size_t n;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		n = strcspn(p, ", \t");
		if (n && slice_caseeq(item, slice_make(p, n)))
			return true;
		p += n;
	}
	return false;
}

/* 8.2.2.3: every option tag in Require that sipd does not support, as an Unsupported header. */
static bool unsupported_required(struct core *c, const struct sip_msg *req, enum sip_hdr_id id, char *extra,
				 size_t n)
{
	struct sip_list_iter it;
	struct slice tag;
	struct sbuf b;

	sbuf_init(&b, extra, n - 1);
	sip_list_begin(&it, req, id);
	while (sip_list_iter_next(&it, &tag)) {
		if (list_has(c->cfg.supported, tag))
			continue;
		sbuf_adds(&b, b.len ? ", " : "Unsupported: ");
		sbuf_addsl(&b, tag);
	}
	if (!b.len)
		return false;
	sbuf_adds(&b, "\r\n");
	b.p[b.overflow ? 0 : b.len] = '\0';
	return !b.overflow;
}

/* 8.2.3: a body sipd cannot take (type, coding or language): 415 with the header that says what it takes. */
static bool unsupported_content(struct core *c, const struct sip_msg *req, char *extra, size_t n)
{
	const struct sip_hdr *h;
	struct sip_list_iter it;
	struct slice v;

	if (req->body.l == 0)
		return false;
	if ((h = sip_msg_hdr(req, SIP_HDR_CONTENT_TYPE))) {
		long semi = slice_chr(h->value, ';');
		struct slice type = slice_trim(semi >= 0 ? slice_make(h->value.p, (size_t)semi) : h->value);

		if (!list_has(c->cfg.accept, type)) {
			snprintf(extra, n, "Accept: %s\r\n", c->cfg.accept);
			return true;
		}
	}
	sip_list_begin(&it, req, SIP_HDR_CONTENT_ENCODING);
	while (sip_list_iter_next(&it, &v)) {
		if (!list_has(c->cfg.accept_encoding, v)) {
			snprintf(extra, n, "Accept-Encoding: %s\r\n", c->cfg.accept_encoding);
			return true;
		}
	}
	if (!c->cfg.accept_language[0])
		return false;
	sip_list_begin(&it, req, SIP_HDR_CONTENT_LANGUAGE);
	while (sip_list_iter_next(&it, &v)) {
		if (!list_has(c->cfg.accept_language, v)) {
			snprintf(extra, n, "Accept-Language: %s\r\n", c->cfg.accept_language);
			return true;
		}
	}
	return false;
}

static void options_extra(struct core *c, char *extra, size_t n)
{
	int w = snprintf(extra, n, "Allow: %s\r\nAccept: %s\r\nAccept-Encoding: %s\r\n", ALLOW_METHODS,
			 c->cfg.accept, c->cfg.accept_encoding);

	if (w > 0 && (size_t)w < n && c->cfg.accept_language[0])
		w += snprintf(extra + w, n - (size_t)w, "Accept-Language: %s\r\n", c->cfg.accept_language);
	if (w > 0 && (size_t)w < n)
		snprintf(extra + w, n - (size_t)w, "Supported: %s\r\n", c->cfg.supported);
}

static void retry_after(struct core *c, char *extra, size_t n)
{
	snprintf(extra, n, "Retry-After: %u\r\n", c->cfg.retry_after);
}

/* ---- INVITE: kept request, ringing, CANCEL ---- */

static void invite_ctx_free(void *data)
{
	struct invite_ctx *ic = data;

	mem_deref(ic->org.conn);
	free(ic->req);
	free(ic);
}

static struct worker_ctx *worker_ctx_get(void)
{
	if (!wctx)
		wctx = calloc(1, sizeof(*wctx));
	return wctx;
}

/* Rebuilds the INVITE from its copy and answers it: used off its receive path (timer, CANCEL).
 * The copy is parsed into its own sip_msg: the worker's may hold the CANCEL being handled. */
static void invite_answer(struct invite_ctx *ic, unsigned code, const char *reason)
{
	struct sip_msg *m = malloc(sizeof(*m));
	struct sip_error err;

	if (m && worker_ctx_get() && sip_msg_parse(m, ic->req, ic->req_len, &err) == 0)
		send_txn(ic->core, ic->tx, m, &ic->org, code, reason, NULL);
	free(m);
}

/* The ring timer holds no reference: txn_end cancels it on the owner loop when the transaction ends. */
static void ring_expired(struct tmr *t, void *arg)
{
	struct invite_ctx *ic = arg;

	(void)t;
	if (!txn_has_final(ic->tx))
		invite_answer(ic, ic->core->cfg.unrouted_code, NULL);
}

static void txn_end(struct txn *tx, const char *why, void *arg)
{
	struct invite_ctx *ic = txn_tu(tx);

	(void)arg;
	(void)why;
	if (ic)
		tmr_cancel(&ic->ring);
}

static struct invite_ctx *invite_keep(struct core *c, struct txn *tx, const struct tp_msg *tm,
				      const struct origin *o)
{
	struct invite_ctx *ic = calloc(1, sizeof(*ic));

	if (!ic || !(ic->req = malloc(tm->len))) {
		free(ic);
		return NULL;
	}
	memcpy(ic->req, tm->buf, tm->len);
	ic->req_len = tm->len;
	ic->core = c;
	ic->tx = tx;
	ic->org = *o;
	ic->org.conn = mem_ref(o->conn);
	txn_set_tu(tx, ic, invite_ctx_free);
	return ic;
}

static void handle_cancel(struct core *c, struct txn *tx, const struct sip_msg *req, const struct origin *o)
{
	struct txn *inv = txn_server_match_cancelled(c->txns, req);

	if (!inv) {
		/* 9.2: nothing to cancel */
		send_txn(c, tx, req, o, 481, NULL, NULL);
		return;
	}
	send_txn(c, tx, req, o, 200, NULL, NULL);
	/* 9.2: the INVITE, still pending, is answered 487 */
	if (!txn_has_final(inv) && txn_tu(inv))
		invite_answer(txn_tu(inv), 487, NULL);
	mem_deref(inv);
}

/* ---- the request path ---- */

static void handle_request(struct core *c, struct tp_msg *tm, struct sip_msg *req, struct origin *o)
{
	char extra[1024];
	struct txn *tx = NULL;
	struct sip_uri uri;
	int err;

	/* 17.2.3: a retransmission goes to its transaction, never processed twice */
	tx = txn_server_match(c->txns, req);
	if (tx) {
		txn_server_recv(tx, req->mid == SIP_METHOD_ACK);
		mem_deref(tx);
		return;
	}
	if (req->mid == SIP_METHOD_ACK)
		return; /* ACK for a 2xx or for nothing: not ours to answer, ever */

	/* Only the INVITE outlives this call (100 now, a final later, Timer G until the ACK); every other
	 * request sipd answers here and now, statelessly. */
	if (req->mid == SIP_METHOD_INVITE) {
		err = c->fault_txn_alloc ? ENOMEM
					 : txn_server_new(&tx, c->txns, loop_current(), req, tm->proto != TP_UDP);
		if (err) {
			/* overload: refuse at once with a time to come back, rather than pile up */
			retry_after(c, extra, sizeof(extra));
			send_stateless(c, req, o, err == EAGAIN ? 503 : 500, NULL, extra);
			return;
		}
		txn_set_dest(tx, o->worker, o->proto, o->conn, &o->dst);
		send_txn(c, tx, req, o, 100, NULL, NULL); /* 17.2.1: at once */
		if (!invite_keep(c, tx, tm, o)) {
			retry_after(c, extra, sizeof(extra));
			send_txn(c, tx, req, o, 500, NULL, extra);
			goto out;
		}
	}

	/* 8.2.1: the method */
	if (req->mid == SIP_METHOD_UNKNOWN) {
		send_txn(c, tx, req, o, 501, NULL, NULL);
		goto out;
	}
	/* 8.2.2.1: the Request-URI */
	err = sip_uri_parse(&uri, req->ruri);
	if (err == ENOTSUP) {
		send_txn(c, tx, req, o, 416, NULL, NULL);
		goto out;
	}
	if (err) {
		send_txn(c, tx, req, o, 400, "Malformed Request-URI", NULL);
		goto out;
	}
	if (req->mid == SIP_METHOD_CANCEL) {
		handle_cancel(c, tx, req, o);
		goto out;
	}
	/* RFC 3261 11 and 16.3: an OPTIONS sipd answers itself may arrive with Max-Forwards 0 */
	if (req->max_forwards == 0 && req->mid != SIP_METHOD_OPTIONS) {
		send_txn(c, tx, req, o, 483, NULL, NULL);
		goto out;
	}
	/* 8.2.2.3 */
	if (unsupported_required(c, req, SIP_HDR_REQUIRE, extra, sizeof(extra))) {
		send_txn(c, tx, req, o, 420, NULL, extra);
		goto out;
	}
	/* 8.2.3 */
	if (req->body.l > c->cfg.max_body_size) {
		send_txn(c, tx, req, o, 413, NULL, NULL);
		goto out;
	}
	if (req->body.l && !sip_msg_hdr(req, SIP_HDR_CONTENT_TYPE)) {
		send_txn(c, tx, req, o, 400, "Missing Content-Type header field for message body", NULL);
		goto out;
	}
	if (unsupported_content(c, req, extra, sizeof(extra))) {
		send_txn(c, tx, req, o, 415, NULL, extra);
		goto out;
	}

	switch (req->mid) {
	case SIP_METHOD_OPTIONS:
		send_txn(c, tx, req, o, 200, NULL, c->options_hdrs);
		break;
	case SIP_METHOD_INVITE:
		if (c->cfg.unrouted_delay_ms) {
			struct invite_ctx *ic = txn_tu(tx);

			tmr_start(loop_timers(loop_current()), &ic->ring, c->cfg.unrouted_delay_ms, ring_expired,
				  ic);
		} else {
			send_txn(c, tx, req, o, c->cfg.unrouted_code, NULL, NULL);
		}
		break;
	case SIP_METHOD_BYE:
		send_txn(c, tx, req, o, 481, NULL, NULL); /* no dialogs yet: none can match */
		break;
	default:
		snprintf(extra, sizeof(extra), "Allow: %s\r\n", ALLOW_METHODS);
		send_txn(c, tx, req, o, 405, NULL, extra);
		break;
	}
out:
	mem_deref(tx);
}


void core_on_message(struct tp_msg *tm, void *arg)
{
	struct core *c = arg;
	struct sip_error perr = { 0, NULL };
	struct sip_msg *m;
	struct origin o;
	int rc;

	if (!worker_ctx_get())
		return;
	m = &wctx->msg;
	rc = sip_msg_parse(m, tm->buf, tm->len, &perr);
	if (rc == 0 && !m->is_request)
		return; /* responses: sipd sends no requests yet, so none can match; never answered */
	origin_init(&o, tm, rc == 0 || m->is_request ? m : NULL);
	if (tm->oversize || tm->len > c->cfg.max_message_size) {
		if (m->is_request && m->hdr_len)
			send_stateless(c, m, &o, 513, NULL, NULL);
		if (tm->conn)
			tp_conn_close(tm->conn);
		return;
	}
	if (rc == 0)
		rc = sip_msg_check(m, &perr);
	if (rc == 0 && tm->proto != TP_UDP && m->content_length < 0) {
		rc = EBADMSG;
		perr = (struct sip_error){ 400, "Missing Content-Length header field" };
	}
	if (rc == 0 && m->ruri.l > c->cfg.max_request_uri_length) {
		rc = EBADMSG;
		perr = (struct sip_error){ 414, NULL };
	}
	if (rc) {
		/* RFC 4475 3.1.2.18: answer 400 where possible, even without the header that is missing;
		 * the answer goes to the source address (origin_init) and carries what the request had */
		if (perr.status && m->is_request && m->mid != SIP_METHOD_ACK)
			send_stateless(c, m, &o, perr.status, perr.reason, NULL);
		else
			log_debug("dropped a message: %s", perr.reason ? perr.reason : "malformed");
		return;
	}
	handle_request(c, tm, m, &o);
}

void core_worker_stop(struct tp_worker *w, void *arg)
{
	(void)w;
	(void)arg;
	free(wctx);
	wctx = NULL;
}

long core_frame(const char *buf, size_t len, size_t max)
{
	return sip_frame(buf, len, max);
}

int core_new(struct core **cp, const struct config *cfg)
{
	struct core *c = calloc(1, sizeof(*c));
	struct txn_table_config tc = { 0 };
	int err;

	if (!c)
		return ENOMEM;
	c->cfg = *cfg;
	options_extra(c, c->options_hdrs, sizeof(c->options_hdrs));
	tc.max_live = cfg->max_transactions;
	tc.timers = (struct txn_timers){ cfg->t1, cfg->t2, cfg->t4 };
	tc.send = txn_send;
	tc.end = txn_end;
	tc.arg = c;
	err = txn_table_new(&c->txns, &tc);
	if (err) {
		free(c);
		return err;
	}
	*cp = c;
	return 0;
}

void core_stopped(struct tp *tp, void *arg)
{
	struct core *c = arg;

	(void)tp;
	txn_table_free(c->txns);
	c->txns = NULL;
}

void core_free(struct core *c)
{
	if (!c)
		return;
	txn_table_free(c->txns);
	free(c);
}

void core_fault_txn_alloc(struct core *c, int on)
{
	c->fault_txn_alloc = on;
}
