/* reply.c: answering requests: where responses go (18.2.2) and how they are built (8.2.6). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/recycle.h"
#include "sip/build.h"
#include "txn/txn.h"
#include "txn/txn_private.h"

#define OUT_MAX (1 << 16)

/* Per thread: the output buffer, and a message to reparse kept requests into. */
struct reply_buf {
	char out[OUT_MAX];
	struct sip_msg msg;
};
static _Thread_local struct reply_buf *rbuf;

static struct reply_buf *reply_buf(void)
{
	if (!rbuf)
		rbuf = malloc(sizeof(*rbuf));
	return rbuf;
}

void txn_thread_cleanup(void)
{
	free(rbuf);
	rbuf = NULL;
}

static void set_port(struct tp_addr *a, uint16_t port)
{
	if (a->u.sa.sa_family == AF_INET)
		a->u.in.sin_port = htons(port);
	else if (a->u.sa.sa_family == AF_INET6)
		a->u.in6.sin6_port = htons(port);
}

void txn_origin_init(struct txn_origin *o, const struct tp_msg *tm, const struct sip_msg *req, bool via_maddr)
{
	o->worker = tm->worker;
	o->proto = tm->proto;
	o->conn = tm->conn;
	o->lsn = tm->lsn;
	o->local = tm->local;
	o->src = tm->src;
	o->dst = tm->src;
	tp_addr_host(&tm->src, o->src_host, sizeof(o->src_host));
	o->src_port = tp_addr_port(&tm->src);
	/* UDP without rport: the sent-by port at the source address (18.2.2, RFC 3581 4). TCP: the
	 * connection the request came on; should it be gone, a new one to the source address at the
	 * sent-by port (18.2.2), where the client listens, not to the port it connected from */
	if (req && req->via.raw.p && (tm->proto != TP_UDP || !req->via.has_rport))
		set_port(&o->dst, req->via.port ? req->via.port : 5060);
	/* UDP with maddr: that address at the sent-by port, rport or not (18.2.2, RFC 3581 4). A numeric
	 * one only: a name would need a DNS search (RFC 3263 5) on this thread. A multicast address goes
	 * with the socket's TTL of 1, which 18.2.2 asks when ttl is absent; a ttl given is not applied. */
	if (via_maddr && tm->proto == TP_UDP && req && req->via.maddr.l) {
		struct tp_addr m;

		if (tp_addr_set(&m, req->via.maddr, req->via.port ? req->via.port : 5060) == 0)
			o->dst = m;
	}
}

/* Deterministic, so a retransmission answered statelessly carries the same tag. */
static void to_tag_of(const struct sip_msg *req, char buf[static 11])
{
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

bool txn_is_own_tag(const struct sip_msg *req)
{
	char tag[11];

	if (req->to.tag.l != 10 || memcmp(req->to.tag.p, "sd", 2))
		return false; /* not of to_tag_of's form: no need to hash */
	to_tag_of(req, tag);
	return slice_eq(req->to.tag, slice_make(tag, 10));
}

static size_t build(const struct txn_table *t, const struct sip_msg *req, struct slice src_host, uint16_t src_port,
		    unsigned code, const char *reason, const char *extra, const char **out)
{
	struct reply_buf *rb = reply_buf();
	struct sbuf b;
	char tag[11];
	struct sip_resp r = {
		.code = code,
		.reason = reason,
		.src_host = src_host,
		.src_port = src_port,
		.server = t->cfg.server_name,
		.extra = extra,
	};

	if (!rb)
		return 0;
	to_tag_of(req, tag);
	r.to_tag = slice_make(tag, 10);
	sbuf_init(&b, rb->out, sizeof(rb->out));
	if (sip_resp_write(&b, req, &r))
		return 0;
	*out = rb->out;
	return b.len;
}

size_t txn_build_reply(const struct txn_table *t, const struct sip_msg *req, const struct txn_origin *o,
		       unsigned code, const char *reason, const char *extra, const char **out)
{
	return build(t, req, slice_cstr(o->src_host), o->src_port, code, reason, extra, out);
}

void txn_reply_stateless(const struct txn_table *t, const struct sip_msg *req, const struct txn_origin *o,
			 unsigned code, const char *reason, const char *extra)
{
	const char *out;
	size_t len = txn_build_reply(t, req, o, code, reason, extra, &out);

	if (len)
		tp_send_from(o->worker, o->lsn, o->proto, o->conn, &o->dst, out, len);
}

int txn_keep(struct txn *tx, const struct txn_origin *o, const char *req, size_t len)
{
	char *copy = recycle_alloc(len);

	if (!copy)
		return ENOMEM;
	memcpy(copy, req, len);
	txn__held_set(tx, &tx->req, &tx->req_len, copy, len);
	memcpy(tx->src_host, o->src_host, sizeof(tx->src_host));
	tx->src_port = o->src_port;
	txn_set_dest(tx, o->worker, o->lsn, o->proto, o->conn, &o->dst);
	return 0;
}

int txn_kept(const struct txn *tx, const char **buf, size_t *len)
{
	if (!tx->req)
		return ENOENT;
	*buf = tx->req;
	*len = tx->req_len;
	return 0;
}

int txn_reply_prepare(struct txn *tx, const struct sip_msg *req, unsigned code, const char *reason, const char *extra,
		      char **out, size_t *len)
{
	const char *built;
	size_t n;

	*out = NULL;
	*len = 0;
	if (!tx->req || !req)
		return EINVAL;
	n = build(tx->table, req, slice_cstr(tx->src_host), tx->src_port, code, reason, extra, &built);
	if (!n)
		return ENOSPC;
	if (!(*out = recycle_alloc(n)))
		return ENOMEM;
	memcpy(*out, built, n);
	*len = n;
	return 0;
}

int txn_reply(struct txn *tx, const struct sip_msg *req, unsigned code, const char *reason, const char *extra)
{
	struct reply_buf *rb = reply_buf();
	struct sip_error err;
	char *out;
	size_t len;
	int e;

	if (!tx->req || !rb)
		return !rb ? ENOMEM : EINVAL;
	if (!req) {
		if (sip_msg_parse(&rb->msg, tx->req, tx->req_len, &err))
			return EINVAL;
		req = &rb->msg;
	}
	if ((e = txn_reply_prepare(tx, req, code, reason, extra, &out, &len)))
		return e;
	return txn_respond_take(tx, code, out, len);
}
