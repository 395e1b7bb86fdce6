/* forward.c: the messages the proxy sends on, rebuilt from the parsed ones: a request for its next hop
 * (RFC 3261 16.6) and a response going upstream (16.7). Fields the proxy does not change are copied as
 * they came, in runs of adjacent lines. */
#include "proxy/forward.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/digest.h"
#include "proxy/rrsig.h"
#include "sip/build.h"

/* ---- a request for its next hop (16.6) ---- */

/* Writes "Name: value" CRLF, with sipd's name for a header it knows. */
static void hdr_write(struct sbuf *b, const struct sip_hdr *h, struct slice value)
{
	if (h->id == SIP_HDR_OTHER)
		sbuf_addsl(b, h->name);
	else
		sbuf_adds(b, sip_hdr_name((enum sip_hdr_id)h->id));
	sbuf_addlit(b, ": ");
	sbuf_addsl(b, value);
	sbuf_addlit(b, "\r\n");
}

/* h's field in m as it came (name as written, folds and all), when it ends in CRLF; else SLICE_NULL,
 * and hdr_write writes it again. A proxy forwards what it does not change as it received it. */
static struct slice verbatim_line(const struct sip_hdr *h)
{
	const char *end = h->name.p + h->line_len;

	if (h->line_len < 2 || end[-2] != '\r' || end[-1] != '\n')
		return SLICE_NULL;
	return slice_make(h->name.p, h->line_len);
}

static void run_flush(struct sbuf *b, struct slice *run)
{
	sbuf_addsl(b, *run);
	*run = SLICE_NULL;
}

/* Writes h unchanged. Fields copied as they came are gathered in *run while adjacent and copied at
 * once by run_flush (before anything else is written): one copy for most of a message rather than
 * four writes a header. */
static void hdr_copy(struct sbuf *b, struct slice *run, const struct sip_hdr *h)
{
	struct slice line = verbatim_line(h);

	if (line.p && run->p && run->p + run->l == line.p) {
		run->l += line.l;
		return;
	}
	run_flush(b, run);
	if (line.p)
		*run = line;
	else
		hdr_write(b, h, h->value);
}

/* A Contact with nat (";nat=TOKEN", flow.h) in its URI, written as a name-addr: the party is behind a
 * NAT, and the dialog's requests for it come back through sipd with the token, which names where its NAT
 * lets them in. A field of several values, a URI that carries a nat parameter already, or one that is no
 * SIP URI, goes as it came. */
static void contact_nat_write(struct sbuf *b, struct slice *run, const struct sip_hdr *h, struct slice nat)
{
	struct slice rest = h->value, el, more, v;
	struct sip_addr a;
	struct sip_uri u;
	const char *uri_end, *param_end;
	bool angle;

	if (!sip_list_next(&rest, &el) || sip_list_next(&rest, &more) || sip_addr_parse(&a, el) || a.star ||
	    sip_uri_parse(&u, a.uri) || sip_param_find(u.params, "nat", &v)) {
		hdr_copy(b, run, h);
		return;
	}
	run_flush(b, run);
	uri_end = a.uri.p + a.uri.l;
	param_end = u.headers.l ? u.headers.p - 1 : uri_end; /* URI parameters go before its '?headers' */
	angle = a.uri.p > el.p && a.uri.p[-1] == '<';
	sbuf_addlit(b, "Contact: ");
	sbuf_add(b, el.p, (size_t)(a.uri.p - el.p)); /* a display name, '<' */
	if (!angle)
		sbuf_addlit(b, "<");
	sbuf_add(b, a.uri.p, (size_t)(param_end - a.uri.p));
	sbuf_addsl(b, nat);
	sbuf_add(b, param_end, (size_t)(uri_end - param_end));
	if (!angle)
		sbuf_addlit(b, ">"); /* what followed an addr-spec were the header's parameters */
	sbuf_add(b, uri_end, (size_t)(el.p + el.l - uri_end));
	sbuf_addlit(b, "\r\n");
}

/* Whether h is a Proxy-Authorization whose credentials are for realm. A proxy consumes what was meant
 * for it: its users' digest responses reach no callee (Kamailio's consume_credentials() in its default
 * configuration), while those for a proxy further on go there (22.3: never consumed by a proxy of
 * another realm). */
static bool consumed(const struct sip_hdr *h, struct slice realm)
{
	struct digest_cred c;

	return h->id == SIP_HDR_PROXY_AUTHORIZATION && realm.l && digest_cred_parse(&c, h->value) == 0 &&
	       digest_unq_eq(c.realm, realm);
}

/* One Record-Route of ours, naming the transport of the side that will use it, with the dialog's
 * signature (and a flow token). */
static void record_route_write(struct sbuf *b, const char *local, enum tp_proto proto, struct slice sig,
			       struct slice flow)
{
	sbuf_addlit(b, "Record-Route: <sip:");
	sbuf_adds(b, local);
	sbuf_adds(b, proto == TP_TCP ? ";transport=tcp;lr" : ";lr");
	sbuf_addsl(b, sig);
	sbuf_addsl(b, flow);
	sbuf_addlit(b, ">\r\n");
}

/* The Route set as it goes on (r0: 1 when its first value became the Request-URI of a strict router,
 * which then takes the Request-URI as the last value, 16.6 step 6); nothing when it is empty. */
static void route_set_write(struct sbuf *b, const struct fwd *f, unsigned r0)
{
	if (!f->routes || !f->routes->n)
		return;
	sbuf_addlit(b, "Route: ");
	for (unsigned i = r0; i < f->routes->n; i++) {
		if (i > r0)
			sbuf_addlit(b, ", ");
		sbuf_addsl(b, f->routes->r[i]);
	}
	if (r0) {
		sbuf_adds(b, f->routes->n > 1 ? ", <" : "<");
		sbuf_addsl(b, f->target);
		sbuf_addlit(b, ">");
	}
	sbuf_addlit(b, "\r\n");
}

int fwd_request_build(const struct sip_msg *req, const struct fwd *f, char **out, size_t *outlen)
{
	size_t cap = req->len + f->target.l + (f->path ? strlen(f->path) : 0) + f->flow.l + f->contact_nat.l + 640;
	char *buf = malloc(cap);
	bool via_done = false, have_mf = false, routes_done = false;
	struct slice run = SLICE_NULL;
	struct sbuf b;

	struct slice ruri = f->target;
	unsigned r0 = 0; /* the first Route value written */
	struct sip_addr first;
	struct sip_uri fu;

	if (!buf)
		return ENOMEM;
	/* 16.6 step 6: a next hop that is a strict router (its Route has no lr) gets the Request-URI it
	 * expects, that Route's URI; the Request-URI goes to the end of the Route set */
	if (!(f->path && f->path[0]) && f->routes && f->routes->n && sip_addr_parse(&first, f->routes->r[0]) == 0 &&
	    sip_uri_parse(&fu, first.uri) == 0 && !fu.lr) {
		ruri = first.uri;
		r0 = 1;
	}
	sbuf_init(&b, buf, cap);
	sbuf_addsl(&b, req->method);
	sbuf_addlit(&b, " ");
	sbuf_addsl(&b, ruri);
	sbuf_addlit(&b, " SIP/2.0\r\nVia: SIP/2.0/");
	sbuf_adds(&b, f->proto == TP_TCP ? "TCP " : "UDP ");
	sbuf_adds(&b, f->local);
	sbuf_addlit(&b, ";branch=");
	sbuf_adds(&b, f->branch);
	sbuf_addlit(&b, ";rport\r\n");
	if (f->record_route) {
		/* RFC 5658 (as Kamailio's double Record-Route): when the transport or the address family
		 * changes, one for each side, so that each end reaches sipd over the transport and at the
		 * address it talks to: the next hop uses the top one, the caller (whose route set is the
		 * list reversed) the bottom one */
		const char *in_local = f->in_local ? f->in_local : f->local;
		char sig_buf[32];
		struct sbuf sb;
		struct slice sig;

		sbuf_init(&sb, sig_buf, sizeof(sig_buf));
		if (f->rr_key)
			rrsig_write(&sb, f->rr_key, req->call_id, f->rr_pin);
		sig = slice_make(sig_buf, sb.overflow ? 0 : sb.len);
		record_route_write(&b, f->local, f->proto, sig, f->flow);
		if (f->in_proto != f->proto || (in_local != f->local && strcmp(in_local, f->local)))
			record_route_write(&b, in_local, f->in_proto, sig, SLICE_NULL);
	}
	if (f->path && f->path[0]) {
		sbuf_addlit(&b, "Route: ");
		sbuf_adds(&b, f->path);
		sbuf_addlit(&b, "\r\n");
	}
	/* 16.6 step 1: "The copy SHOULD maintain the ordering of the header fields": the Route set goes on
	 * where the request's first Route was; on top only when it had none */
	if (!req->count[SIP_HDR_ROUTE])
		route_set_write(&b, f, r0);
	for (unsigned i = 0; i < req->nhdrs; i++) {
		const struct sip_hdr *h = &req->hdrs[i];

		if (h->id == SIP_HDR_ROUTE && !routes_done) {
			run_flush(&b, &run);
			route_set_write(&b, f, r0);
			routes_done = true;
		}
		if (h->id == SIP_HDR_ROUTE || h->id == SIP_HDR_CONTENT_LENGTH || consumed(h, f->consume_realm))
			continue; /* the route set as it goes on, written once; below, from the body we send */
		if (h->id == SIP_HDR_CONTACT && f->contact_nat.l && req->count[SIP_HDR_CONTACT] == 1) {
			contact_nat_write(&b, &run, h, f->contact_nat);
			continue;
		}
		if (h->id != SIP_HDR_MAX_FORWARDS && (h->id != SIP_HDR_VIA || via_done || !req->via.raw.p)) {
			hdr_copy(&b, &run, h);
			continue;
		}
		run_flush(&b, &run);
		if (h->id == SIP_HDR_VIA) {
			/* the sender's Via gets received and rport (18.2.1, RFC 3581 4) */
			const char *end = req->via.raw.p + req->via.raw.l;

			via_done = true;
			sbuf_addlit(&b, "Via: ");
			sip_via_write_received(&b, &req->via, f->src_host, f->src_port);
			sbuf_add(&b, end, (size_t)(h->value.p + h->value.l - end));
		} else {
			have_mf = true;
			sbuf_addlit(&b, "Max-Forwards: ");
			sbuf_addu(&b, req->max_forwards > 0 ? (unsigned long)req->max_forwards - 1 : 0);
		}
		sbuf_addlit(&b, "\r\n");
	}
	run_flush(&b, &run);
	if (!have_mf)
		sbuf_addlit(&b, "Max-Forwards: 70\r\n"); /* 16.6 step 3 */
	sbuf_addlit(&b, "Content-Length: ");
	sbuf_addu(&b, req->body.l);
	sbuf_addlit(&b, "\r\n\r\n");
	sbuf_addsl(&b, req->body);
	if (b.overflow) {
		free(buf);
		return ENOSPC;
	}
	*out = buf;
	*outlen = b.len;
	return 0;
}

/* ---- responses going upstream (16.7) ---- */

/* Copies h (a Record-Route) and writes the patches that fall in its value over the copy. */
static void hdr_copy_patched(struct sbuf *b, struct slice *run, const struct sip_hdr *h,
			     const struct fwd_patches *patches)
{
	bool verbatim = verbatim_line(h).p != NULL;
	size_t at, value_at;

	run_flush(b, run);
	at = b->len;
	hdr_copy(b, run, h);
	run_flush(b, run);
	/* where the value starts in the copy: as it came, or after "Name: " when hdr_copy wrote it again */
	value_at = at + (verbatim ? (size_t)(h->value.p - h->name.p)
				  : (h->id == SIP_HDR_OTHER ? h->name.l : strlen(sip_hdr_name((enum sip_hdr_id)h->id))) + 2);
	for (unsigned i = 0; i < patches->n; i++) {
		const char *p = patches->p[i].at;
		size_t off;

		if (p < h->value.p || p + RRSIG_HEX > h->value.p + h->value.l)
			continue;
		off = value_at + (size_t)(p - h->value.p);
		if (!b->overflow && off + RRSIG_HEX <= b->len)
			memcpy(b->p + off, patches->p[i].hex, RRSIG_HEX);
	}
}

char *fwd_response_rewrite(const struct sip_msg *resp, bool drop_via, enum sip_hdr_id drop_id, const char *extra,
			   const struct fwd_patches *patches, struct slice contact_nat, size_t *outlen)
{
	size_t cap = resp->len + (extra ? strlen(extra) : 0) + contact_nat.l + 64;
	char *buf = malloc(cap);
	bool first_via = drop_via;
	struct slice run = SLICE_NULL;
	struct sbuf b;
	/* the status line, which CRLFs may precede (7.5: ignored, and not passed on) */
	const char *start = resp->version.p;
	const char *eol = start ? memchr(start, '\n', resp->len - (size_t)(start - resp->buf)) : NULL;

	if (!buf || !eol) {
		free(buf);
		return NULL;
	}
	sbuf_init(&b, buf, cap);
	sbuf_add(&b, start, (size_t)(eol - start) + 1);
	for (unsigned i = 0; i < resp->nhdrs; i++) {
		const struct sip_hdr *h = &resp->hdrs[i];
		struct slice rest = h->value, top, value;

		if (drop_id != SIP_HDR_OTHER && h->id == drop_id)
			continue;
		if (h->id == SIP_HDR_RECORD_ROUTE && patches && patches->n) {
			hdr_copy_patched(&b, &run, h, patches);
			continue;
		}
		if (h->id == SIP_HDR_CONTACT && contact_nat.l && resp->count[SIP_HDR_CONTACT] == 1) {
			contact_nat_write(&b, &run, h, contact_nat);
			continue;
		}
		if (h->id != SIP_HDR_VIA || !first_via) {
			hdr_copy(&b, &run, h);
			continue;
		}
		first_via = false;
		sip_list_next(&rest, &top);
		value = slice_trim(rest);
		while (value.l && value.p[0] == ',')
			value = slice_trim(slice_make(value.p + 1, value.l - 1));
		run_flush(&b, &run);
		if (value.l)
			hdr_write(&b, h, value);
	}
	run_flush(&b, &run);
	if (extra)
		sbuf_adds(&b, extra);
	sbuf_addlit(&b, "\r\n");
	sbuf_add(&b, resp->buf + resp->hdr_len, resp->len - resp->hdr_len);
	if (b.overflow) {
		free(buf);
		return NULL;
	}
	*outlen = b.len;
	return buf;
}

char *fwd_strip_via(const struct sip_msg *resp, const struct fwd_patches *patches, struct slice contact_nat,
		    size_t *outlen)
{
	return fwd_response_rewrite(resp, true, SIP_HDR_OTHER, NULL, patches, contact_nat, outlen);
}
