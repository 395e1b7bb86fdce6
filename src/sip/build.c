/* build.c: output buffers and responses built from requests. */
#include "sip/build.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/scratch.h"
#include "sip/sip_private.h"
#include "sip/status.h"
#include "sip/uri.h"

void sbuf_init(struct sbuf *b, char *mem, size_t cap)
{
	b->p = mem;
	b->len = 0;
	b->cap = cap;
	b->overflow = false;
}

void sbuf_addu(struct sbuf *b, unsigned long v)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sbuf_add(b, tmp + i, sizeof(tmp) - i);
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len)
		b->overflow = true;
	else
		b->len += (size_t)n;
}

/* The top Via element with received/rport as RFC 3261 18.2.1 and RFC 3581 4 require. */
void sip_via_write_received(struct sbuf *b, const struct sip_via *v, struct slice src_host, uint16_t src_port)
{
	struct slice rest = v->params, name, value;
	struct slice host = v->host;
	bool add_received, rport_done = false;

	/* an IPv6 sent-by keeps its brackets; the source address has none */
	if (host.l > 2 && host.p[0] == '[')
		host = slice_make(host.p + 1, host.l - 2);
	add_received = src_host.l && (v->has_rport || !slice_caseeq(host, src_host));
	if (!add_received && !v->has_rport) {
		sbuf_addsl(b, v->raw); /* nothing to add or fill: as it came (the common case on a LAN) */
		return;
	}
	sbuf_addsl(b, slice_make(v->raw.p, (size_t)(v->params.p ? v->params.p - 1 - v->raw.p : (long)v->raw.l)));
	while (sip_param_next(&rest, &name, &value)) {
		if (add_received && slice_caseeq_lit(name, "received"))
			continue;
		sbuf_addlit(b, ";");
		sbuf_addsl(b, name);
		rport_done |= slice_caseeq_lit(name, "rport");
		if (slice_caseeq_lit(name, "rport") && value.l == 0 && src_port) {
			sbuf_addlit(b, "=");
			sbuf_addu(b, src_port);
		} else if (value.p) {
			sbuf_addlit(b, "=");
			sbuf_addsl(b, value);
		}
	}
	if (v->has_rport && !rport_done && src_port) { /* rport forced on a Via without it ([sip] force_rport) */
		sbuf_addlit(b, ";rport=");
		sbuf_addu(b, src_port);
	}
	if (add_received) {
		struct slice h = src_host;

		/* received carries a bare IPv6 address, without brackets */
		if (h.l > 2 && h.p[0] == '[')
			h = slice_make(h.p + 1, h.l - 2);
		sbuf_addlit(b, ";received=");
		sbuf_addsl(b, h);
	}
}

/* Every Via field as it came, one line each; a request with very many gets them as one comma-separated
 * line (RFC 3261 7.3.1 makes it the same list), so that the response, which must copy them all (8.2.6.2),
 * stays within the header fields a parser takes (SIP_MAX_HEADERS: a request of 160 Vias earned a 400
 * "Too many header fields" that had more than 160 itself). */
static void write_vias(struct sbuf *b, const struct sip_msg *req, const struct sip_resp *r)
{
	const struct sip_hdr *h = sip_msg_hdr(req, SIP_HDR_VIA);
	bool top = true, one_line = req->count[SIP_HDR_VIA] > SIP_MAX_HEADERS / 2;
	struct slice sep = SLICE_LIT("Via: "); /* what goes before the next field's value */

	for (; h; h = sip_msg_hdr_next(req, h)) {
		if (one_line && !top && !h->value.l)
			continue; /* an empty field is no element of the list */
		sbuf_addsl(b, sep);
		if (top && req->via.raw.p) {
			/* the parsed top Via is the first element of this value: what follows it is copied */
			const char *end = req->via.raw.p + req->via.raw.l;

			sip_via_write_received(b, &req->via, r->src_host, r->src_port);
			sbuf_add(b, end, (size_t)(h->value.p + h->value.l - end)); /* ", next-via..." as received */
		} else {
			sbuf_addsl(b, h->value);
		}
		top = false;
		sep = one_line ? SLICE_LIT(", ") : SLICE_LIT("\r\nVia: ");
	}
	if (!top)
		sbuf_addlit(b, "\r\n");
}

/* A header of the request copied into the response under its long name; prefix is "Name: ". */
static void write_copied(struct sbuf *b, const struct sip_msg *req, enum sip_hdr_id id, struct slice prefix)
{
	const struct sip_hdr *h = sip_msg_hdr(req, id);

	if (!h)
		return;
	sbuf_addsl(b, prefix);
	sbuf_addsl(b, h->value);
	sbuf_addlit(b, "\r\n");
}

/* Drops the control characters (NUL among them) that copied fields brought into b from start on: a
 * response that carries them back is one no strict parser takes. sipd's own text has none. */
static void drop_controls(struct sbuf *b, size_t start)
{
	size_t w = start;

	if (b->overflow)
		return;
	for (size_t i = start; i < b->len; i++)
		if (!sip__is_ctl((unsigned char)b->p[i]))
			b->p[w++] = b->p[i];
	b->len = w;
}

int sip_resp_write(struct sbuf *b, const struct sip_msg *req, const struct sip_resp *r)
{
	const struct sip_hdr *to = sip_msg_hdr(req, SIP_HDR_TO);
	size_t start = b->len;

	sbuf_addlit(b, "SIP/2.0 ");
	sbuf_addu(b, r->code);
	sbuf_addlit(b, " ");
	sbuf_adds(b, r->reason ? r->reason : sip_status_reason(r->code));
	sbuf_addlit(b, "\r\n");
	write_vias(b, req, r);
	write_copied(b, req, SIP_HDR_FROM, SLICE_LIT("From: "));
	if (to) {
		sbuf_addlit(b, "To: ");
		sbuf_addsl(b, to->value);
		/* RFC 3261 8.2.6.2: a tag on every response but 100 when the request had none */
		if (r->code > 100 && req->to.uri.p && !req->to.tag.p && r->to_tag.l) {
			sbuf_addlit(b, ";tag=");
			sbuf_addsl(b, r->to_tag);
		}
		sbuf_addlit(b, "\r\n");
	}
	write_copied(b, req, SIP_HDR_CALL_ID, SLICE_LIT("Call-ID: "));
	write_copied(b, req, SIP_HDR_CSEQ, SLICE_LIT("CSeq: "));
	if (r->code == 100)
		write_copied(b, req, SIP_HDR_TIMESTAMP, SLICE_LIT("Timestamp: ")); /* RFC 3261 8.2.6.1 */
	if (r->server) {
		sbuf_addlit(b, "Server: ");
		sbuf_adds(b, r->server);
		sbuf_addlit(b, "\r\n");
	}
	if (r->extra)
		sbuf_adds(b, r->extra);
	if (r->body.l && r->content_type) {
		sbuf_addlit(b, "Content-Type: ");
		sbuf_adds(b, r->content_type);
		sbuf_addlit(b, "\r\n");
	}
	if (req->ctl_in_headers)
		drop_controls(b, start);
	sbuf_addlit(b, "Content-Length: ");
	sbuf_addu(b, r->body.l);
	sbuf_addlit(b, "\r\n\r\n");
	sbuf_addsl(b, r->body);
	return b->overflow ? ENOSPC : 0;
}

int sip_hop_request_write(struct sbuf *b, const struct sip_msg *orig, const char *method, struct slice to)
{
	const struct sip_hdr *from = sip_msg_hdr(orig, SIP_HDR_FROM);
	size_t at;

	if (!from || !orig->via.raw.p)
		return EINVAL;
	sbuf_adds(b, method);
	sbuf_addlit(b, " ");
	sbuf_addsl(b, orig->ruri);
	sbuf_addlit(b, " SIP/2.0\r\nVia: ");
	sbuf_addsl(b, orig->via.raw);
	sbuf_addlit(b, "\r\n");
	for (const struct sip_hdr *h = sip_msg_hdr(orig, SIP_HDR_ROUTE); h; h = sip_msg_hdr_next(orig, h)) {
		sbuf_addlit(b, "Route: ");
		sbuf_addsl(b, h->value);
		sbuf_addlit(b, "\r\n");
	}
	sbuf_addlit(b, "Max-Forwards: 70\r\nFrom: ");
	sbuf_addsl(b, from->value);
	sbuf_addlit(b, "\r\nTo: ");
	at = b->len;
	sbuf_addsl(b, to);
	if (sip__has_ctl(to.p, to.l)) /* the To of an invalid response being ACKed */
		drop_controls(b, at);
	sbuf_addlit(b, "\r\nCall-ID: ");
	sbuf_addsl(b, orig->call_id);
	sbuf_printf(b, "\r\nCSeq: %u %s\r\nContent-Length: 0\r\n\r\n", orig->cseq.num, method);
	return b->overflow ? ENOSPC : 0;
}

/* "scheme:user:password@host", as written. */
static void uri_write_userhost(struct sbuf *b, const struct sip_uri *u)
{
	sbuf_addsl(b, u->scheme_s);
	sbuf_addlit(b, ":");
	if (u->user.l) {
		sbuf_addsl(b, u->user);
		if (u->password.l) {
			sbuf_addlit(b, ":");
			sbuf_addsl(b, u->password);
		}
		sbuf_addlit(b, "@");
	}
	sbuf_addsl(b, u->host);
}

void sip_uri_write_without_maddr(struct sbuf *b, const struct sip_uri *u)
{
	struct slice rest = u->params, name, value;

	uri_write_userhost(b, u);
	if (u->port == 5060)
		sbuf_addlit(b, ":5060");
	while (sip_param_next(&rest, &name, &value)) {
		if (slice_caseeq_cstr(name, "maddr") ||
		    (slice_caseeq_cstr(name, "transport") && !slice_caseeq_cstr(value, "udp")))
			continue;
		sbuf_addlit(b, ";");
		sbuf_add(b, name.p, (size_t)((value.p ? value.p + value.l : name.p + name.l) - name.p));
	}
	if (u->headers.l) {
		sbuf_addlit(b, "?");
		sbuf_addsl(b, u->headers);
	}
}

void sip_uri_write_as_ruri(struct sbuf *b, const struct sip_uri *u)
{
	struct slice rest = u->params, name, value;

	uri_write_userhost(b, u);
	if (u->port)
		sbuf_printf(b, ":%u", u->port);
	while (sip_param_next(&rest, &name, &value)) {
		if (slice_caseeq_cstr(name, "method"))
			continue;
		sbuf_addlit(b, ";");
		sbuf_add(b, name.p, (size_t)((value.p ? value.p + value.l : name.p + name.l) - name.p));
	}
}

bool sip_token_list_has(const char *list, struct slice item)
{
	const char *p = list;

	while (p && *p) {
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

char *sip_unsupported_line(const struct sip_msg *req, enum sip_hdr_id id, const char *supported, bool *nomem)
{
	struct sip_list_iter it;
	struct slice tag;
	struct sbuf b;
	size_t room = 32;
	char *line;
	bool any;

	*nomem = false;
	/* each tag written once, with ", " before it: never more than three times the values' bytes */
	for (const struct sip_hdr *h = sip_msg_hdr(req, id); h; h = sip_msg_hdr_next(req, h))
		room += 3 * h->value.l;
	sip_list_begin(&it, req, id);
	while ((any = sip_list_iter_next(&it, &tag)) && sip_token_list_has(supported, tag))
		;
	if (!any) /* every tag is supported, or there is none */
		return NULL;
	if (!(line = scratch_take(room))) {
		*nomem = true;
		return NULL;
	}
	sbuf_init(&b, line, room - 1);
	sip_list_begin(&it, req, id);
	while (sip_list_iter_next(&it, &tag)) {
		if (sip_token_list_has(supported, tag))
			continue;
		sbuf_adds(&b, b.len ? ", " : "Unsupported: ");
		sbuf_addsl(&b, tag);
	}
	sbuf_addlit(&b, "\r\n");
	line[b.len] = '\0';
	return line;
}
