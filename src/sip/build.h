/* build.h: writing SIP messages: a bounded output buffer, and the response built from a request (RFC 3261 8.2.6). */
#ifndef SIPD_SIP_BUILD_H
#define SIPD_SIP_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/slice.h"
#include "sip/msg.h"

/* Writes into caller memory; never reallocates. 'overflow' latches when a write did not fit. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool overflow;
};

void sbuf_init(struct sbuf *b, char *mem, size_t cap);
/* Inline: a response is some thirty of these, most of a few bytes. */
static inline void sbuf_add(struct sbuf *b, const char *s, size_t l)
{
	if (l == 0)
		return;
	if (b->overflow || l > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, s, l);
	b->len += l;
}
/* Inline, so that a literal's length is known at compile time rather than counted at each call. */
static inline void sbuf_adds(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}
/* A string literal, its length known at compile time. */
#define sbuf_addlit(b, lit) sbuf_add((b), (lit), sizeof(lit) - 1)
static inline void sbuf_addsl(struct sbuf *b, struct slice s)
{
	sbuf_add(b, s.p, s.l);
}
void sbuf_addu(struct sbuf *b, unsigned long v);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct sip_resp {
	unsigned code;
	const char *reason;      /* NULL: the catalogue's phrase */
	struct slice to_tag;     /* added to To when the request's To has none (not on 100) */
	struct slice src_host;   /* where the request came from: received= / rport= on the top Via */
	uint16_t src_port;
	const char *server;      /* Server header value, NULL for none */
	const char *extra;       /* further header lines, each ending in CRLF, or NULL */
	struct slice body;
	const char *content_type;
};

/* A Via element with received= (and rport=<port> when it asked for rport) filled from where the message
 * came from (RFC 3261 18.2.1, RFC 3581 4). */
void sip_via_write_received(struct sbuf *b, const struct sip_via *v, struct slice src_host, uint16_t src_port);
/* A request derived from orig on the same hop (RFC 3261 9.1 CANCEL, 17.1.1.3 ACK for a non-2xx): orig's
 * Request-URI, top Via, Route set, From, Call-ID and CSeq number, with method and the given To value.
 * 0, or ENOSPC. */
int sip_hop_request_write(struct sbuf *b, const struct sip_msg *orig, const char *method, struct slice to);
/* u as RFC 3261 16.4 leaves it once its maddr names this element: without the maddr, and without a
 * port or transport= other than the defaults (5060, UDP), "as if those values had not been present";
 * the rest as written. */
void sip_uri_write_without_maddr(struct sbuf *b, const struct sip_uri *u);
/* u as a Request-URI may hold it (RFC 3261 19.1.1, table 1; 16.6 step 2): without its method parameter
 * and its headers, which a Contact may carry; the rest as written. */
void sip_uri_write_as_ruri(struct sbuf *b, const struct sip_uri *u);
/* Writes the response to req into b. 0, or ENOSPC when it did not fit. */
int sip_resp_write(struct sbuf *b, const struct sip_msg *req, const struct sip_resp *r);

/* Whether the comma-separated list (option tags, media types: "a, b/c") holds item, in any case. */
bool sip_token_list_has(const char *list, struct slice item);
/* "Unsupported: a, b\r\n" naming every option tag of req's header id (Require, Proxy-Require) that the
 * list supported (NULL: none) does not hold (RFC 3261 8.2.2.3, 16.3 step 5), however many: memory from
 * scratch_take, for scratch_give. NULL when every tag is supported, or out of memory (*nomem set). */
char *sip_unsupported_line(const struct sip_msg *req, enum sip_hdr_id id, const char *supported, bool *nomem);

#endif
