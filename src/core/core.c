/* core.c: the life of a request inside sipd, from bytes to the answer. */
#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/scratch.h"
#include "net/loop.h"
#include "sip/build.h"
#include "sip/msg.h"
#include "sip/status.h"
#include "txn/txn.h"
#include "auth/auth.h"
#include "registrar/registrar.h"
#include "proxy/proxy.h"


/* What sipd serves as a UAS today; grows with the registrar and the proxy. */
#define ALLOW_METHODS "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"

struct core {
	struct config cfg;
	struct auth *auth;
	struct registrar *registrar;
	struct proxy *proxy;
	char options_hdrs[1024]; /* what a 200 to OPTIONS carries, built once */
	struct txn_table *txns;
	int fault_txn_alloc;
	enum { RPORT_NO, RPORT_NAT, RPORT_YES } force_rport; /* [sip] force_rport, read once */
};

/* Per worker thread: the parsed message, so the hot path allocates nothing. */
static _Thread_local struct sip_msg *wmsg;

/* An INVITE sipd rings before its final answer; the transaction keeps the request itself. */
static const char invite_kind = 'I';

struct invite_ctx {
	const char *kind; /* &invite_kind: the proxy keeps its own contexts in this slot */
	struct core *core;
	struct txn *tx;
	struct tmr ring;
};

/* ---- sending ---- */

/* Through the transaction when there is one; else statelessly (RFC 3261 8.2.7): sipd answers a
 * non-INVITE request at once and deterministically (the To tag included), so a retransmission is
 * answered by regenerating the same response, with no state kept for 64*T1. */
static void reply(struct core *c, struct txn *tx, const struct sip_msg *req, const struct txn_origin *o,
		  unsigned code, const char *reason, const char *extra)
{
	if (tx)
		txn_reply(tx, req, code, reason, extra);
	else
		txn_reply_stateless(c->txns, req, o, code, reason, extra);
}

/* [sip] force_rport: a request over UDP read as if its top Via asked for rport (RFC 3581), so that its
 * answers go to the port it came from (and its Via says so, rport=, going on and coming back): "yes"
 * always (Asterisk's nat=force_rport); "nat" when its sent-by is not the address it came from, a phone
 * behind a NAT that does not ask, whose sent-by port is its private one (Kamailio's force_rport() after
 * nat_uac_test); "no": RFC 3261 18.2.2, the sent-by port. */
static void rport_force(const struct core *c, struct sip_msg *m, const struct tp_msg *tm)
{
	struct tp_addr sent_by;

	if (c->force_rport == RPORT_NO || tm->proto != TP_UDP || !m->is_request || !m->via.raw.p || m->via.has_rport)
		return;
	if (c->force_rport == RPORT_NAT && tp_addr_set(&sent_by, m->via.host, tp_addr_port(&tm->src)) == 0 &&
	    tp_addr_eq(&sent_by, &tm->src))
		return;
	m->via.has_rport = true;
}

static int txn_send(struct txn *tx, const char *buf, size_t len, void *arg)
{
	struct tp_worker *w;
	uint8_t lsn;
	enum tp_proto proto;
	struct tp_conn *conn;
	const struct tp_addr *dst;

	(void)arg;
	txn_get_dest(tx, &w, &lsn, &proto, &conn, &dst);
	return tp_send_from(w, lsn, proto, conn, dst, buf, len);
}

/* ---- checks of RFC 3261 8.2 ---- */

/* 20.11: a body whose Content-Disposition says handling=optional may be ignored when not understood
 * ("required" when the parameter is absent). */
static bool body_optional(const struct sip_msg *req)
{
	const struct sip_hdr *h = sip_msg_hdr(req, SIP_HDR_CONTENT_DISPOSITION);
	struct slice v;
	long semi;

	if (!h || (semi = slice_chr(h->value, ';')) < 0)
		return false;
	return sip_param_find(slice_make(h->value.p + semi + 1, h->value.l - (size_t)semi - 1), "handling", &v) &&
	       slice_caseeq_lit(v, "optional");
}

/* Whether the comma-separated language ranges of list take the language tag: equal to a range, or the
 * range a prefix of it followed by "-" (20.3, after HTTP/1.1 14.4: "en" takes "en-US"), or "*". */
static bool language_taken(const char *list, struct slice tag)
{
	const char *p = list;

	while (*p) {
		size_t n;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		n = strcspn(p, ", \t;");
		if ((n == 1 && *p == '*') || (n && slice_caseeq(tag, slice_make(p, n))) ||
		    (n && tag.l > n && tag.p[n] == '-' && slice_caseeq(slice_make(tag.p, n), slice_make(p, n))))
			return true;
		p += n;
		p += strcspn(p, ","); /* past any ;q= */
	}
	return false;
}

/* Whether every element of req's header id is taken by list (with taken(list, element)). */
static bool all_listed(const struct sip_msg *req, enum sip_hdr_id id, const char *list,
		       bool (*taken)(const char *, struct slice))
{
	struct sip_list_iter it;
	struct slice v;

	sip_list_begin(&it, req, id);
	while (sip_list_iter_next(&it, &v))
		if (!taken(list, v))
			return false;
	return true;
}

/* A content coding is taken when listed, and identity always is (no coding at all: RFC 9110 12.5.3). */
static bool coding_taken(const char *list, struct slice coding)
{
	return slice_caseeq_lit(slice_trim(coding), "identity") || sip_token_list_has(list, coding);
}

/* 8.2.3: a body sipd cannot take: 415 with an Accept, Accept-Encoding and Accept-Language for each of
 * type, coding and language that is the cause. A body marked optional is ignored instead. */
static bool unsupported_content(struct core *c, const struct sip_msg *req, char *extra, size_t n)
{
	const struct sip_hdr *h;
	struct sbuf b;

	if (req->body.l == 0)
		return false;
	sbuf_init(&b, extra, n - 1);
	if ((h = sip_msg_hdr(req, SIP_HDR_CONTENT_TYPE))) {
		long semi = slice_chr(h->value, ';');
		struct slice type = slice_trim(semi >= 0 ? slice_make(h->value.p, (size_t)semi) : h->value);

		if (!sip_token_list_has(c->cfg.accept, type))
			sbuf_printf(&b, "Accept: %s\r\n", c->cfg.accept);
	}
	if (!all_listed(req, SIP_HDR_CONTENT_ENCODING, c->cfg.accept_encoding, coding_taken))
		sbuf_printf(&b, "Accept-Encoding: %s\r\n", c->cfg.accept_encoding);
	if (c->cfg.accept_language[0] &&
	    !all_listed(req, SIP_HDR_CONTENT_LANGUAGE, c->cfg.accept_language, language_taken))
		sbuf_printf(&b, "Accept-Language: %s\r\n", c->cfg.accept_language);
	if (!b.len || body_optional(req))
		return false;
	extra[b.overflow ? 0 : b.len] = '\0';
	return true;
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

/* ---- INVITE: ringing, CANCEL ---- */

/* The ring timer holds no reference: txn_end cancels it on the owner loop when the transaction ends. */
static void ring_expired(struct tmr *t, void *arg)
{
	struct invite_ctx *ic = arg;

	(void)t;
	if (!txn_has_final(ic->tx))
		txn_reply(ic->tx, NULL, ic->core->cfg.unrouted_code, NULL, NULL);
}

static bool is_invite_ctx(struct txn *tx)
{
	struct invite_ctx *ic = txn_tu(tx);

	return ic && ic->kind == &invite_kind;
}

static void txn_end(struct txn *tx, const char *why, void *arg)
{
	struct core *c = arg;

	(void)why;
	if (is_invite_ctx(tx))
		tmr_cancel(&((struct invite_ctx *)txn_tu(tx))->ring);
	else if (c->proxy)
		proxy_txn_end(c->proxy, tx);
}

static void handle_cancel(struct core *c, const struct sip_msg *req, const struct txn_origin *o)
{
	bool answered;
	struct txn *inv = txn_server_match_cancelled(c->txns, req, &answered);

	if (!inv) {
		/* 9.2: no such transaction (481), or one whose 2xx went and whose TU has gone, Accepted until
		 * Timer L (200: the CANCEL matched, and changes nothing) */
		reply(c, NULL, req, o, answered ? 200 : 481, NULL, NULL);
		return;
	}
	reply(c, NULL, req, o, 200, NULL, NULL);
	/* 16.10: a proxied INVITE's branches are cancelled and their 487 goes up; 9.2: an INVITE sipd
	 * answers itself, still pending, is answered 487 (from its own kept copy). A CANCEL of a non-INVITE
	 * gets its 200 and changes nothing (9.1: it cannot cancel one) */
	if (txn_is_invite(inv) && !txn_has_final(inv) && !proxy_cancel(c->proxy, inv))
		txn_reply(inv, NULL, 487, NULL, NULL);
	mem_deref(inv);
}

static struct txn *invite_begin(struct core *c, const struct tp_msg *tm, const struct sip_msg *req,
				const struct txn_origin *o)
{
	struct invite_ctx *ic = NULL;
	char extra[64];
	struct txn *tx = NULL;
	int err = c->fault_txn_alloc ? ENOMEM : txn_server_new(&tx, c->txns, loop_current(), req, tm->proto != TP_UDP);

	if (!err && txn_keep(tx, o, tm->buf, tm->len))
		err = ENOMEM;
	if (!err && !(ic = calloc(1, sizeof(*ic))))
		err = ENOMEM;
	if (err) {
		/* overload: refuse at once with a time to come back, rather than pile up */
		retry_after(c, extra, sizeof(extra));
		if (err != EAGAIN && tx && !c->fault_txn_alloc) {
			txn_reply(tx, req, 500, NULL, extra);
			mem_deref(tx);
		} else {
			reply(c, NULL, req, o, err == EAGAIN ? 503 : 500, NULL, extra);
		}
		return NULL;
	}
	ic->kind = &invite_kind;
	ic->core = c;
	ic->tx = tx;
	txn_set_tu(tx, ic, free);
	txn_reply(tx, req, 100, NULL, NULL); /* 17.2.1: at once */
	return tx;
}

/* ---- the request path ---- */

/* The methods sipd takes as the UAS (ALLOW_METHODS): a known other one is 405. */
static bool method_allowed(enum sip_method m)
{
	return m == SIP_METHOD_INVITE || m == SIP_METHOD_ACK || m == SIP_METHOD_CANCEL || m == SIP_METHOD_BYE ||
	       m == SIP_METHOD_OPTIONS || m == SIP_METHOD_REGISTER;
}

static void method_not_allowed(struct core *c, struct txn *tx, const struct sip_msg *req, const struct txn_origin *o)
{
	reply(c, tx, req, o, 405, NULL, "Allow: " ALLOW_METHODS "\r\n");
}

/* The checks before a request sipd answers itself, the first that fails answering. own_uri: sipd is the
 * UAS (its own URI, or a REGISTER): RFC 3261 8.2.1 to 8.2.3 in the RFC's order, the method first (501,
 * 405), then the Request-URI and the headers (Require), then the body (413, 415). Otherwise the request
 * is for a user of sipd's domains that nothing routed, and sipd stands as a proxy whose target set came
 * out empty: 16.3's checks alone (scheme, Max-Forwards, Proxy-Require), then dispatch's 404 (16.5; 8.2.2.1
 * puts it before Require and the body too). A proxy needs to know neither the method nor the body. */
static bool uas_checks(struct core *c, struct txn *tx, const struct sip_msg *req, const struct txn_origin *o,
		       bool own_uri)
{
	char extra[1024], *unsupported;
	bool nomem;
	int err;

	if (own_uri && req->mid == SIP_METHOD_UNKNOWN) {
		reply(c, tx, req, o, 501, NULL, NULL);
		return false;
	}
	if (own_uri && !method_allowed(req->mid)) {
		method_not_allowed(c, tx, req, o);
		return false;
	}
	err = req->ruri_err;
	if (err) {
		reply(c, tx, req, o, err == ENOTSUP ? 416 : 400, err == ENOTSUP ? NULL : "Malformed Request-URI",
		      NULL);
		return false;
	}
	if (req->mid == SIP_METHOD_CANCEL)
		return true; /* 9.2: a CANCEL is matched, not inspected */
	/* RFC 3261 11 and 16.3: an OPTIONS sipd answers itself may arrive with Max-Forwards 0 */
	if (req->max_forwards == 0 && req->mid != SIP_METHOD_OPTIONS) {
		reply(c, tx, req, o, 483, NULL, NULL);
		return false;
	}
	/* 8.2.2.3 (a UAS reads Require) or 16.3 step 5 (a proxy reads Proxy-Require): every tag sipd does not
	 * support is named, however long the list; a proxy supports none */
	unsupported = sip_unsupported_line(req, own_uri ? SIP_HDR_REQUIRE : SIP_HDR_PROXY_REQUIRE,
					   own_uri ? c->cfg.supported : NULL, &nomem);
	if (unsupported || nomem) {
		reply(c, tx, req, o, unsupported ? 420 : 500, NULL, unsupported);
		scratch_give(unsupported);
		return false;
	}
	if (req->body.l > c->cfg.max_body_size) {
		/* 21.4.11: the server MAY close the connection to stop the client sending more such bodies
		 * (the seed: close TCP); what was answered is written first */
		reply(c, tx, req, o, 413, NULL, NULL);
		if (o->proto != TP_UDP && o->conn)
			tp_conn_close(o->conn);
		return false;
	}
	if (req->body.l && !sip_msg_hdr(req, SIP_HDR_CONTENT_TYPE)) {
		reply(c, tx, req, o, 400, "Missing Content-Type header field for message body", NULL);
		return false;
	}
	if (own_uri && unsupported_content(c, req, extra, sizeof(extra))) {
		reply(c, tx, req, o, 415, NULL, extra);
		return false;
	}
	return true;
}

/* A REGISTER is answered once its bindings are on disk: it needs a transaction to absorb retransmissions
 * meanwhile and to answer from the worker later. */
static struct txn *register_begin(struct core *c, const struct tp_msg *tm, const struct sip_msg *req,
				  const struct txn_origin *o)
{
	struct txn *tx = NULL;
	char extra[64];
	int err = txn_server_new(&tx, c->txns, loop_current(), req, tm->proto != TP_UDP);

	if (!err && (err = txn_keep(tx, o, tm->buf, tm->len)))
		tx = mem_deref(tx);
	if (err) {
		retry_after(c, extra, sizeof(extra));
		reply(c, NULL, req, o, err == EAGAIN ? 503 : 500, NULL, extra);
		return NULL;
	}
	return tx;
}

/* An INVITE that nothing routes: unrouted_code, at once or after unrouted_delay_ms of ringing. */
static void unrouted_invite(struct core *c, struct txn *tx, const struct sip_msg *req, const struct txn_origin *o)
{
	if (c->cfg.unrouted_delay_ms) {
		struct invite_ctx *ic = txn_tu(tx);

		tmr_start(loop_timers(loop_current()), &ic->ring, c->cfg.unrouted_delay_ms, ring_expired, ic);
	} else {
		reply(c, tx, req, o, c->cfg.unrouted_code, NULL, NULL);
	}
}

/* own_uri: as for uas_checks. A request for a user nothing routed (no such user of sipd's domains) gets
 * unrouted_code whatever its method, OPTIONS too (RFC 3261 11: what an INVITE would have got), and one
 * inside a dialog 481 (12.2.2: sipd, keeping no dialog as a UAS, has none it could match). */
static void dispatch(struct core *c, struct txn *tx, const struct sip_msg *req, const struct txn_origin *o,
		     bool own_uri)
{
	if (req->mid == SIP_METHOD_CANCEL) {
		handle_cancel(c, req, o);
		return;
	}
	/* a BYE is always in a dialog (15.1.2); an OPTIONS to sipd asks for its capabilities, in a dialog or not */
	if (req->mid == SIP_METHOD_BYE ||
	    (req->to.tag.p && req->mid != SIP_METHOD_REGISTER && !(own_uri && req->mid == SIP_METHOD_OPTIONS))) {
		reply(c, tx, req, o, 481, NULL, NULL);
		return;
	}
	if (!own_uri) {
		if (req->mid == SIP_METHOD_INVITE)
			unrouted_invite(c, tx, req, o);
		else
			reply(c, tx, req, o, c->cfg.unrouted_code, NULL, NULL);
		return;
	}
	switch (req->mid) {
	case SIP_METHOD_REGISTER:
		registrar_handle(c->registrar, tx, req, o);
		break;
	case SIP_METHOD_OPTIONS:
		reply(c, tx, req, o, 200, NULL, c->options_hdrs);
		break;
	case SIP_METHOD_INVITE:
		unrouted_invite(c, tx, req, o); /* sipd itself takes no calls */
		break;
	default:
		method_not_allowed(c, tx, req, o); /* uas_checks answered it already */
		break;
	}
}

static void handle_request(struct core *c, struct tp_msg *tm, struct sip_msg *req, const struct txn_origin *o)
{
	struct txn *tx = NULL;
	enum proxy_verdict verdict;
	bool absorbed;

	/* A request sipd answers itself and statelessly (an OPTIONS ping, a BYE for nothing) never has a
	 * transaction to match, nor anything for the proxy: only an INVITE or a REGISTER gets one here,
	 * an ACK or a CANCEL belongs to an INVITE's. */
	if (req->mid != SIP_METHOD_INVITE && req->mid != SIP_METHOD_REGISTER && req->mid != SIP_METHOD_ACK &&
	    req->mid != SIP_METHOD_CANCEL && proxy_for_sipd(c->proxy, req)) {
		if (uas_checks(c, NULL, req, o, true))
			dispatch(c, NULL, req, o, true);
		return;
	}
	/* 17.2.3: a retransmission goes to its transaction, never processed twice */
	tx = txn_server_match(c->txns, req, &absorbed);
	if (absorbed)
		return;
	if (tx) {
		if (req->mid == SIP_METHOD_ACK || txn_server_same_request(tx, req))
			txn_server_recv(tx, req->mid == SIP_METHOD_ACK);
		else
			log_debug("a request of its transaction but not its length (no retransmission): dropped");
		mem_deref(tx);
		return;
	}
	verdict = proxy_route(c->proxy, tm, req, o);
	if (verdict == PROXY_TAKEN)
		return;
	if (req->mid == SIP_METHOD_ACK)
		return; /* ACK for a 2xx or for nothing: not ours to answer, ever */
	/* Only the INVITE outlives this call (100 now, a final later, Timer G until the ACK); every other
	 * request sipd answers here and now, statelessly. */
	if (req->mid == SIP_METHOD_INVITE && !(tx = invite_begin(c, tm, req, o)))
		return;
	if (req->mid == SIP_METHOD_REGISTER) {
		/* the core's checks first (they answer statelessly too), then a challenge without state */
		if (!uas_checks(c, NULL, req, o, true) || registrar_challenge(c->registrar, c->txns, req, o))
			return;
		if (!(tx = register_begin(c, tm, req, o)))
			return;
		registrar_handle(c->registrar, tx, req, o);
		mem_deref(tx);
		return;
	}
	/* what the proxy did not take: a request for sipd itself, or for a user it does not have */
	if (uas_checks(c, tx, req, o, verdict == PROXY_SELF))
		dispatch(c, tx, req, o, verdict == PROXY_SELF);
	mem_deref(tx);
}

void core_on_message(struct tp_msg *tm, void *arg)
{
	struct core *c = arg;
	struct sip_error perr = { 0, NULL };
	struct sip_msg *m;
	struct txn_origin o;
	int rc;

	if (!wmsg && !(wmsg = malloc(sizeof(*wmsg))))
		return;
	m = wmsg;
	rc = sip_msg_parse(m, tm->buf, tm->len, &perr);
	if (!m->is_request && m->status) {
		/* a response: to a client transaction, never answered. A malformed one whose top Via and
		 * CSeq still name a client transaction is handed to it as invalid (the proxy makes that branch a
		 * 502, 16.7). One that matches no transaction is dropped (RFC 6026 7.3: a transaction-stateful
		 * proxy forwards no stray response, not even a 2xx: those of an answered INVITE still match
		 * its client transaction, Accepted, until Timer M) */
		const char *invalid;

		if (rc == 0)
			rc = sip_msg_check(m, &perr);
		invalid = rc ? (perr.reason ? perr.reason : "malformed") : NULL;
		if (txn_client_recv(c->txns, m, invalid) == ENOENT &&
		    (invalid || !registrar_keepalive_answer(c->registrar, m)))
			log_debug("dropped a response %u that matches no transaction%s%s", m->status,
				  invalid ? ": " : "", invalid ? invalid : "");
		return;
	}
	if (rc == 0)
		rport_force(c, m, tm);
	txn_origin_init(&o, tm, rc == 0 || m->is_request ? m : NULL, c->cfg.via_maddr);
	if (tm->oversize || tm->len > c->cfg.max_message_size) {
		/* answered from the header fields that arrived whole, also when the block itself never ended
		 * (a stream's header field longer than the limit); an ACK gets no response, ever */
		if (m->is_request && m->mid != SIP_METHOD_ACK)
			reply(c, NULL, m, &o, 513, NULL, NULL);
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
	if (tm->unframed) {
		/* a stream whose next message cannot be found (no Content-Length, two, one that is no number):
		 * the request is never processed, since its end is a guess; it is answered when it can be, and
		 * the transport closes the connection */
		if (m->is_request && m->hdr_len && m->mid != SIP_METHOD_ACK)
			reply(c, NULL, m, &o, 400, rc && perr.status == 400 && perr.reason ? perr.reason :
					    "Content-Length does not frame the message", NULL);
		return;
	}
	if (rc == 0 && m->ruri.l > c->cfg.max_request_uri_length) {
		rc = EBADMSG;
		perr = (struct sip_error){ 414, NULL };
	}
	if (rc) {
		/* RFC 4475 3.1.2.18: answer 400 where possible, even without the header that is missing;
		 * the answer goes to the source address and carries what the request had */
		if (perr.status && m->is_request && m->mid != SIP_METHOD_ACK)
			reply(c, NULL, m, &o, perr.status, perr.reason, NULL);
		else
			log_debug("dropped a message: %s", perr.reason ? perr.reason : "malformed");
		return;
	}
	handle_request(c, tm, m, &o);
}

/* The second and later 2xx to an INVITE that sipd forwarded (RFC 6026 8.4): the proxy passes them on. */
static void accepted_2xx(const struct sip_msg *resp, void *arg)
{
	struct core *c = arg;

	proxy_relay_2xx(c->proxy, resp);
}

void core_unreachable(enum tp_proto proto, const struct tp_addr *peer, int err, bool lost, void *arg)
{
	struct core *c = arg;

	txn_client_conn_failed(c->txns, proto, peer, err, lost);
}

void core_worker_stop(struct tp_worker *w, void *arg)
{
	(void)w;
	(void)arg;
	free(wmsg);
	wmsg = NULL;
	txn_thread_cleanup();
}

long core_frame(const char *buf, size_t len, size_t max)
{
	return sip_frame(buf, len, max);
}

void core_housekeeping(struct core *c)
{
	if (c->proxy)
		proxy_housekeeping(c->proxy);
	auth_housekeeping(c->auth);
}

int core_reload_users(struct core *c, const struct config_user *users, unsigned n)
{
	return auth_set_file_users(c->auth, users, n);
}

int core_new(struct core **cp, const struct config *cfg)
{
	struct core *c = calloc(1, sizeof(*c));
	struct txn_table_config tc = { 0 };
	int err;

	if (!c)
		return ENOMEM;
	c->cfg = *cfg;
	c->force_rport = !strcasecmp(cfg->force_rport, "yes") ? RPORT_YES
			 : !strcasecmp(cfg->force_rport, "nat") ? RPORT_NAT : RPORT_NO;
	options_extra(c, c->options_hdrs, sizeof(c->options_hdrs));
	tc.max_live = cfg->max_transactions;
	tc.max_echoes = cfg->max_answered;
	/* the counts bound memory only with bytes beside them: a request may be 64 kB (a long Via list),
	 * and its answer copies it. 2 kB a transaction and 512 bytes an echo on average, as the docs say */
	tc.max_held = (size_t)cfg->max_transactions * 2048;
	tc.max_echo_bytes = (size_t)cfg->max_answered * 512;
	tc.timers = (struct txn_timers){ cfg->t1, cfg->t2, cfg->t4 };
	tc.send = txn_send;
	tc.server_name = c->cfg.server_name[0] ? c->cfg.server_name : NULL;
	tc.end = txn_end;
	tc.accepted_2xx = accepted_2xx;
	tc.arg = c;
	err = txn_table_new(&c->txns, &tc);
	if (!err)
		err = auth_new(&c->auth, &c->cfg, c->cfg.db_path);
	if (!err)
		err = registrar_new(&c->registrar, &c->cfg, c->auth);
	if (!err)
		err = proxy_new(&c->proxy, &c->cfg, c->txns, c->registrar, c->auth);
	if (err) {
		core_free(c);
		return err;
	}
	*cp = c;
	return 0;
}

void core_stopped(struct tp *tp, void *arg)
{
	struct core *c = arg;

	(void)tp;
	registrar_shutdown(c->registrar);
	proxy_stopped(c->proxy);
	txn_table_free(c->txns);
	c->txns = NULL;
}

void core_free(struct core *c)
{
	if (!c)
		return;
	txn_table_free(c->txns);
	proxy_free(c->proxy);
	registrar_free(c->registrar);
	auth_free(c->auth);
	free(c);
}

struct auth *core_auth(struct core *c)
{
	return c->auth;
}

void core_fault_txn_alloc(struct core *c, int on)
{
	c->fault_txn_alloc = on;
}
