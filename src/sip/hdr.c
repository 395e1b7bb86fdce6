/* hdr.c: typed parsers for header values: lists, Via, name-addr, CSeq, Contact. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "sip/msg.h"
#include "sip/sip_private.h"
#include "sip/uri.h"

size_t sip__quoted_end(struct slice s, size_t i)
{
	for (i++; i < s.l; i++) {
		if (s.p[i] == '\\') {
			i++; /* quoted-pair: skip the escaped byte */
			continue;
		}
		if (s.p[i] == '"')
			return i + 1;
	}
	return 0;
}

bool sip_list_next(struct slice *rest, struct slice *elem)
{
	struct slice s = *rest;
	size_t i = 0, start;
	int angle = 0;

	/* skip empty elements and separators */
	while (i < s.l && (sip__is_lws(s.p[i]) || s.p[i] == ','))
		i++;
	if (i >= s.l) {
		*rest = slice_make(s.p + s.l, 0);
		return false;
	}
	start = i;
	/* A value with no comma left is one element, whatever quotes and brackets it holds (most Route,
	 * Record-Route and Contact values). Otherwise most elements (every Via, most Contacts) hold no
	 * quote and no '<' before the next comma: then that comma ends the element, found by memchr rather
	 * than a byte at a time. */
	{
		const char *comma = memchr(s.p + i, ',', s.l - i);
		size_t end = comma ? (size_t)(comma - s.p) : s.l;

		if (!comma || (!memchr(s.p + i, '"', end - i) && !memchr(s.p + i, '<', end - i)))
			i = end;
	}
	while (i < s.l) {
		char c = s.p[i];

		if (c == '"') {
			size_t e = sip__quoted_end(s, i);

			i = e ? e : s.l; /* unterminated: the element runs to the end; its parser refuses it */
			continue;
		}
		if (c == '<')
			angle++;
		else if (c == '>' && angle)
			angle--;
		else if (c == ',' && !angle)
			break;
		i++;
	}
	*elem = slice_trim(slice_make(s.p + start, i - start));
	*rest = slice_make(s.p + i, s.l - i);
	return true;
}

/* An IPv6 reference as sent-by and URIs write it: "[" IPv6address "]" (RFC 3261 25.1 as RFC 5954 3
 * corrects it): no more than eight groups of up to four hex digits, one "::" at most, an IPv4 address
 * only as the last 32 bits; no zone. */
static bool ipv6_ref_valid(struct slice h)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a;

	if (h.l < 4 || h.l - 2 >= sizeof(buf) || h.p[0] != '[' || h.p[h.l - 1] != ']')
		return false;
	for (size_t i = 1; i < h.l - 1; i++)
		if (!sip__is_hex(h.p[i]) && h.p[i] != ':' && h.p[i] != '.')
			return false;
	memcpy(buf, h.p + 1, h.l - 2);
	buf[h.l - 2] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

static size_t port_at(struct slice s, size_t i, uint16_t *port);

/* The IPv6 reference at s.p[i] == '[' into *host: the index after its ']', 0 if malformed. Out of line:
 * inlined, its address buffer made every host[:port] save and restore six registers. */
__attribute__((noinline)) static size_t ipv6_ref_at(struct slice s, size_t i, struct slice *host)
{
	const char *rb = memchr(s.p + i, ']', s.l - i);
	size_t end;

	if (!rb)
		return 0;
	end = (size_t)(rb - s.p) + 1;
	*host = slice_make(s.p + i, end - i);
	return ipv6_ref_valid(*host) ? end : 0;
}

size_t sip__hostport_at(struct slice s, size_t i, struct slice *host, uint16_t *port, bool *ipv6)
{
	size_t hs = i;

	*port = 0;
	if (i < s.l && s.p[i] == '[') {
		if (!(i = ipv6_ref_at(s, i, host)))
			return 0;
		*ipv6 = true;
	} else {
		/* one pass: the span of host characters is the host, already checked but for its ends */
		i = sip__span(s, i, SIP_C_HOST);
		if (i == hs || s.p[hs] == '.' || s.p[hs] == '-')
			return 0;
		*host = slice_make(s.p + hs, i - hs);
		*ipv6 = false;
	}
	if (i >= s.l || s.p[i] != ':')
		return i;
	return port_at(s, i + 1, port);
}

/* The port's digits at i, read as they are scanned: 1 to 10 of them (as slice_to_u32), 1 to 65535.
 * Returns the index after them, 0 if malformed. */
static size_t port_at(struct slice s, size_t i, uint16_t *port)
{
	size_t ps = i;
	uint64_t n = 0;

	for (; i < s.l && (unsigned)(s.p[i] - '0') <= 9; i++)
		if (i - ps < 10)
			n = n * 10 + (uint64_t)(s.p[i] - '0');
	if (i == ps || i - ps > 10 || n == 0 || n > 65535)
		return 0;
	*port = (uint16_t)n;
	return i;
}

/* "SIP" LWS "/" LWS "2.0" LWS "/" LWS transport: protocol name and version as one slice when written
 * without spaces; returns the index after the transport, 0 if malformed. */
static size_t via_proto(struct sip_via *v, struct slice s)
{
	size_t i = 0, a, parts[3][2];

	/* as nearly every Via writes it: "SIP/2.0/" (SIP in any case), the transport, then LWS */
	if (s.l > 8 && (s.p[0] | 0x20) == 's' && (s.p[1] | 0x20) == 'i' && (s.p[2] | 0x20) == 'p' &&
	    memcmp(s.p + 3, "/2.0/", 5) == 0) {
		i = sip__span(s, 8, SIP_C_TOKEN);
		if (i > 8 && i < s.l && sip__is_lws(s.p[i])) {
			v->proto = slice_make(s.p, 7);
			v->transport = slice_make(s.p + 8, i - 8);
			return sip__skip_lws(s, i);
		}
		i = 0; /* anything else: the general reading below */
	}

	for (int k = 0; k < 3; k++) {
		i = sip__skip_lws(s, i);
		a = i;
		while (i < s.l && !sip__is_lws(s.p[i]) && s.p[i] != '/')
			i++;
		if (i == a)
			return 0;
		parts[k][0] = a;
		parts[k][1] = i;
		i = sip__skip_lws(s, i);
		if (k < 2) {
			if (i >= s.l || s.p[i] != '/')
				return 0;
			i++;
		}
	}
	if (!sip_token_valid(slice_make(s.p + parts[0][0], parts[0][1] - parts[0][0])) ||
	    !sip_token_valid(slice_make(s.p + parts[1][0], parts[1][1] - parts[1][0])))
		return 0;
	v->proto = slice_make(s.p + parts[0][0], parts[1][1] - parts[0][0]);
	v->transport = slice_make(s.p + parts[2][0], parts[2][1] - parts[2][0]);
	return sip_token_valid(v->transport) ? i : 0;
}

/* One pass over the parameters: their syntax, and the ones sipd reasons about. */
static bool via_params(struct sip_via *v)
{
	struct slice rest = v->params, name, value;

	while (sip_param_next(&rest, &name, &value)) {
		struct slice *dst = NULL;

		if (!sip_token_valid(name))
			return false;
		switch (name.l) {
		case 3:
			if (slice_caseeq_lit(name, "ttl"))
				dst = &v->ttl;
			break;
		case 5:
			if (slice_caseeq_lit(name, "rport")) {
				v->has_rport = true;
				dst = &v->rport;
			} else if (slice_caseeq_lit(name, "maddr")) {
				dst = &v->maddr;
			}
			break;
		case 6:
			if (slice_caseeq_lit(name, "branch"))
				dst = &v->branch;
			break;
		case 8:
			if (slice_caseeq_lit(name, "received"))
				dst = &v->received;
			break;
		}
		/* the first occurrence wins, as sip_param_find would have it */
		if (dst && !dst->p)
			*dst = value.p ? value : slice_make(name.p + name.l, 0);
	}
	return sip__skip_lws(rest, 0) == rest.l;
}

int sip_via_parse(struct sip_via *v, struct slice s)
{
	size_t i;
	bool ipv6;

	memset(v, 0, sizeof(*v));
	v->raw = s;
	i = via_proto(v, s);
	if (!i)
		return EBADMSG;
	i = sip__skip_lws(s, i);
	i = sip__hostport_at(s, i, &v->host, &v->port, &ipv6);
	if (!i)
		return EBADMSG;
	i = sip__skip_lws(s, i);
	/* sent-by = host [ COLON port ], and COLON = SWS ":" SWS (RFC 3261 25.1): white space around
	 * the colon is rare but valid (a URI's hostport allows none) */
	if (!v->port && i < s.l && s.p[i] == ':') {
		if (!(i = port_at(s, sip__skip_lws(s, i + 1), &v->port)))
			return EBADMSG;
		i = sip__skip_lws(s, i);
	}
	if (i < s.l) {
		if (s.p[i] != ';')
			return EBADMSG;
		v->params = slice_make(s.p + i + 1, s.l - i - 1);
		if (!via_params(v))
			return EBADMSG;
	}
	if (v->branch.p && v->branch.l == 0)
		return EBADMSG;
	if (v->rport.l) {
		uint32_t n;

		if (!slice_to_u32(v->rport, 65535, &n))
			return EBADMSG;
	}
	return 0;
}

/* One pass over the header parameters of a name-addr: their syntax, and the first tag, which must
 * have a value. */
static bool addr_params(struct sip_addr *a)
{
	struct slice rest = a->params, name, value;

	while (sip_param_next(&rest, &name, &value)) {
		if (!sip_token_valid(name))
			return false;
		if (!a->tag.p && slice_caseeq_lit(name, "tag")) {
			if (value.l == 0)
				return false;
			a->tag = value;
		}
	}
	return sip__skip_lws(rest, 0) == rest.l;
}

/* display-name = *(token LWS) / quoted-string, then '<'. Returns index of '<' or 0 if not a name-addr. */
static size_t addr_display(struct sip_addr *a, struct slice s, size_t i, bool *bad)
{
	size_t start = i;

	if (i < s.l && s.p[i] == '"') {
		size_t e = sip__quoted_end(s, i);

		if (!e) {
			*bad = true;
			return 0;
		}
		a->display = slice_make(s.p + i + 1, e - i - 2);
		i = sip__skip_lws(s, e);
		if (i >= s.l || s.p[i] != '<') {
			*bad = true;
			return 0;
		}
		return i;
	}
	while (i < s.l && s.p[i] != '<') {
		if (s.p[i] == ':' || s.p[i] == ';' || s.p[i] == '"' || s.p[i] == '>')
			return 0; /* an addr-spec (or junk that its parser will judge) */
		i++;
	}
	if (i >= s.l)
		return 0;
	/* RFC 3261 25.1: an unquoted display-name is *(token LWS) */
	for (size_t k = start; k < i; k++) {
		if (!sip__is(s.p[k], SIP_C_TOKEN | SIP_C_LWS)) {
			*bad = true;
			return 0;
		}
	}
	a->display = slice_trim(slice_make(s.p + start, i - start));
	return i;
}

int sip_addr_parse(struct sip_addr *a, struct slice s)
{
	size_t i, lt;
	bool bad = false;

	memset(a, 0, sizeof(*a));
	s = slice_trim(s);
	if (s.l == 0)
		return EBADMSG;
	if (s.l == 1 && s.p[0] == '*') {
		a->star = true;
		return 0;
	}
	lt = addr_display(a, s, 0, &bad);
	if (bad)
		return EBADMSG;
	if (lt || (s.l && s.p[0] == '<')) {
		const char *gt = memchr(s.p + lt, '>', s.l - lt);

		if (!gt)
			return EBADMSG;
		a->uri = slice_trim(slice_make(s.p + lt + 1, (size_t)(gt - s.p) - lt - 1));
		i = sip__skip_lws(s, (size_t)(gt - s.p) + 1);
	} else {
		/* addr-spec: the URI ends at the first ';' (RFC 3261 20: its params are header params) */
		i = sip__scan_to(s, 0, SIP_C_PEND);
		a->uri = slice_make(s.p, i);
		i = sip__skip_lws(s, i);
	}
	if (a->uri.l == 0 || memchr(a->uri.p, ':', a->uri.l) == NULL)
		return EBADMSG;
	if (i < s.l) {
		if (s.p[i] != ';')
			return EBADMSG;
		a->params = slice_make(s.p + i + 1, s.l - i - 1);
		if (!addr_params(a))
			return EBADMSG;
	}
	return 0;
}

int sip_cseq_parse(struct sip_cseq *c, struct slice s)
{
	size_t i = 0;
	uint32_t n;
	enum sip_method mid;

	memset(c, 0, sizeof(*c));
	s = slice_trim(s);
	while (i < s.l && s.p[i] >= '0' && s.p[i] <= '9')
		i++;
	/* RFC 3261 8.1.1.5: the sequence number is less than 2**31 */
	if (!slice_to_u32(slice_make(s.p, i), 0x7fffffff, &n))
		return EBADMSG;
	if (i >= s.l || !sip__is_lws(s.p[i]))
		return EBADMSG;
	i = sip__skip_lws(s, i);
	c->method = slice_make(s.p + i, s.l - i);
	mid = sip_method_lookup(c->method);
	if (mid == SIP_METHOD_UNKNOWN && !sip_token_valid(c->method))
		return EBADMSG; /* every known method is a token: only another name needs the check */
	c->num = n;
	c->mid = mid;
	return 0;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
static int parse_q(struct slice v)
{
	int q = 0, scale = 100;

	if (v.l == 0 || (v.p[0] != '0' && v.p[0] != '1') || v.l > 5)
		return -1;
	q = (v.p[0] - '0') * 1000;
	if (v.l == 1)
		return q;
	if (v.p[1] != '.')
		return -1;
	for (size_t i = 2; i < v.l; i++, scale /= 10) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -1;
		q += (v.p[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

static bool all_digits(struct slice v)
{
	for (size_t i = 0; i < v.l; i++)
		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
	return v.l > 0;
}

int sip_contact_parse(struct sip_addr *a, long *expires, int *q1000, struct slice s)
{
	struct slice v;
	uint32_t n;
	int err = sip_addr_parse(a, s);

	*expires = -1;
	*q1000 = -1;
	if (err)
		return err;
	if (sip_param_find(a->params, "expires", &v)) {
		/* RFC 3261 20.10: values over 2**32-1 are taken as 2**32-1, and "malformed values SHOULD be
		 * treated as equivalent to 3600" (as 20.19 says of the Expires header) */
		if (v.l > 10 && all_digits(v))
			*expires = 0xffffffffL;
		else if (slice_to_u32(v, 0xffffffffu, &n))
			*expires = (long)n;
		else
			*expires = 3600;
	}
	if (sip_param_find(a->params, "q", &v)) {
		*q1000 = parse_q(v);
		if (*q1000 < 0)
			return EBADMSG;
	}
	return 0;
}
