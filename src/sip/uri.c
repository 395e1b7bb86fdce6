/* uri.c: sip:, sips: and tel: URIs (RFC 3261 19.1, 25.1; RFC 3966), zero-copy. */
#include "sip/uri.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sip/sip_private.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_unreserved(char c)
{
	return is_alnum(c) || strchr("-_.!~*'()", c);
}

/* What each URI component allows besides unreserved characters and %HH escapes (RFC 3261 25.1). */
enum { U_USER = 1, U_PASSWORD = 2, U_PARAMS = 4, U_HEADERS = 8 };
static uint8_t uri_allowed[256];
/* Never in a URI, whatever the component: controls, space, DEL and above, and the characters that
 * delimit a URI in a header ('<', '>', '"'). */
static bool uri_forbidden[256];

__attribute__((constructor)) static void uri_allowed_build(void)
{
	static const struct {
		uint8_t cls;
		const char *extra;
	} sets[] = { { U_USER, "&=+$,;?/" }, { U_PASSWORD, "&=+$," }, { U_PARAMS, "[]/:&+$;=" },
		     { U_HEADERS, "[]/?:+$=&" } };

	for (unsigned c = 1; c < 256; c++)
		if (is_unreserved((char)c))
			uri_allowed[c] = U_USER | U_PASSWORD | U_PARAMS | U_HEADERS;
	for (size_t k = 0; k < sizeof(sets) / sizeof(sets[0]); k++)
		for (const char *e = sets[k].extra; *e; e++)
			uri_allowed[(uint8_t)*e] |= sets[k].cls;
	for (unsigned c = 0; c < 256; c++)
		uri_forbidden[c] = c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"';
}

/* The first index from i on whose byte the component (cls) does not take as it is ('%' included, which
 * no component does), or s.l: four bytes a round, as sip__scan. */
static inline size_t uri_span(struct slice s, size_t i, uint8_t cls)
{
	for (; i + 4 <= s.l; i += 4) {
		if (!(uri_allowed[(uint8_t)s.p[i]] & cls))
			return i;
		if (!(uri_allowed[(uint8_t)s.p[i + 1]] & cls))
			return i + 1;
		if (!(uri_allowed[(uint8_t)s.p[i + 2]] & cls))
			return i + 2;
		if (!(uri_allowed[(uint8_t)s.p[i + 3]] & cls))
			return i + 3;
	}
	while (i < s.l && (uri_allowed[(uint8_t)s.p[i]] & cls))
		i++;
	return i;
}

/* Every byte is allowed in the component (cls) or a valid %HH escape: the spans between escapes at a
 * table lookup a byte, the escapes (rare) one by one. */
static inline bool chars_valid(struct slice s, uint8_t cls)
{
	for (size_t i = uri_span(s, 0, cls); i < s.l; i = uri_span(s, i + 3, cls))
		if (s.p[i] != '%' || i + 2 >= s.l || !sip__is_hex(s.p[i + 1]) || !sip__is_hex(s.p[i + 2]))
			return false;
	return true;
}

bool sip_param_next(struct slice *rest, struct slice *name, struct slice *value)
{
	struct slice s = *rest;
	size_t i = sip__skip_lws(s, 0), ns, ne;

	if (i < s.l && s.p[i] == ';')
		i = sip__skip_lws(s, i + 1);
	if (i >= s.l)
		return false;
	ns = i;
	i = sip__scan_to(s, i, SIP_C_PEND | SIP_C_PNAME_END);
	ne = i;
	*name = slice_make(s.p + ns, ne - ns);
	*value = SLICE_NULL;
	i = sip__skip_lws(s, i);
	if (i < s.l && s.p[i] == '=') {
		size_t vs = sip__skip_lws(s, i + 1), ve;

		if (vs < s.l && s.p[vs] == '"') {
			ve = sip__quoted_end(s, vs);
			if (!ve)
				return false; /* rest stays non-empty: the caller sees the list is malformed */
		} else {
			ve = sip__scan_to(s, vs, SIP_C_PEND);
		}
		*value = slice_make(s.p + vs, ve - vs);
		i = sip__skip_lws(s, ve);
	}
	if (i < s.l && s.p[i] != ';')
		return false;
	*rest = slice_make(s.p + i, s.l - i);
	if (name->l == 0)
		return false;
	return true;
}

bool sip_param_find(struct slice params, const char *pname, struct slice *value)
{
	struct slice rest = params, name, v, want = slice_cstr(pname);

	while (sip_param_next(&rest, &name, &v)) {
		if (slice_caseeq(name, want)) {
			if (value)
				*value = v.p ? v : slice_make(name.p + name.l, 0);
			return true;
		}
	}
	return false;
}

long sip_unescape(char *dst, size_t n, struct slice s)
{
	size_t o = 0;

	for (size_t i = 0; i < s.l; i++) {
		char c = s.p[i];

		if (c == '%') {
			if (i + 2 >= s.l || !sip__is_hex(s.p[i + 1]) || !sip__is_hex(s.p[i + 2]))
				return -1;
			c = (char)(slice_hex_digit(s.p[i + 1]) * 16 + slice_hex_digit(s.p[i + 2]));
			i += 2;
		}
		if (o >= n)
			return -1;
		dst[o++] = c;
	}
	return (long)o;
}

long sip_uri_user(const struct sip_uri *u, char *dst, size_t n)
{
	long l = u->user.l < n ? sip_unescape(dst, n - 1, u->user) : -1;

	if (l >= 0)
		dst[l] = '\0';
	return l;
}

static void uri_known_params(struct sip_uri *u)
{
	struct slice rest = u->params, name, value;

	while (sip_param_next(&rest, &name, &value)) {
		if (slice_caseeq_lit(name, "transport"))
			u->transport = value;
		else if (slice_caseeq_lit(name, "maddr"))
			u->maddr = value;
		else if (slice_caseeq_lit(name, "user"))
			u->user_param = value;
		else if (slice_caseeq_lit(name, "method"))
			u->method = value;
		else if (slice_caseeq_lit(name, "ttl"))
			u->ttl = value;
		else if (slice_caseeq_lit(name, "lr"))
			u->lr = true;
	}
}

/* uri-parameters and headers after the host: ";p=v;q?h=v&h2=v" */
static int uri_tail(struct sip_uri *u, struct slice s)
{
	long q = slice_chr(s, '?');
	struct slice params = q >= 0 ? slice_make(s.p, (size_t)q) : s;

	if (q >= 0) {
		u->headers = slice_make(s.p + q + 1, s.l - (size_t)q - 1);
		if (!chars_valid(u->headers, U_HEADERS))
			return EBADMSG;
	}
	if (params.l) {
		if (params.p[0] != ';')
			return EBADMSG;
		u->params = slice_make(params.p + 1, params.l - 1);
		if (!chars_valid(u->params, U_PARAMS))
			return EBADMSG;
		uri_known_params(u);
	}
	return 0;
}

static int parse_sip(struct sip_uri *u, struct slice s)
{
	const char *at = memchr(s.p, '@', s.l);
	size_t i = 0;

	if (at) {
		struct slice ui = slice_make(s.p, (size_t)(at - s.p));
		long colon = slice_chr(ui, ':');

		u->user = colon >= 0 ? slice_make(ui.p, (size_t)colon) : ui;
		if (colon >= 0) {
			u->password = slice_make(ui.p + colon + 1, ui.l - (size_t)colon - 1);
			if (!chars_valid(u->password, U_PASSWORD))
				return EBADMSG;
		}
		if (u->user.l == 0 || !chars_valid(u->user, U_USER))
			return EBADMSG;
		i = (size_t)(at - s.p) + 1;
	}
	i = sip__hostport_at(s, i, &u->host, &u->port, &u->ipv6);
	if (!i || (i < s.l && s.p[i] != ';' && s.p[i] != '?'))
		return EBADMSG;
	return uri_tail(u, slice_make(s.p + i, s.l - i));
}

/* tel: global (+digits) or local number with visual separators, then parameters (RFC 3966). */
static int parse_tel(struct sip_uri *u, struct slice s)
{
	size_t i = 0;

	while (i < s.l && s.p[i] != ';')
		i++;
	u->user = slice_make(s.p, i);
	if (u->user.l == 0)
		return EBADMSG;
	for (size_t k = 0; k < u->user.l; k++) {
		char c = u->user.p[k];

		if (!(sip__is_hex(c) || (c && strchr("+-.()*#pPwW", c))) || (c == '+' && k != 0))
			return EBADMSG;
	}
	if (i < s.l) {
		u->params = slice_make(s.p + i + 1, s.l - i - 1);
		if (!chars_valid(u->params, U_PARAMS))
			return EBADMSG;
	}
	return 0;
}

/* A scheme sipd does not serve: ENOTSUP (416) when the URI is well-formed as far as the generic
 * syntax goes (scheme = ALPHA *(ALPHA / DIGIT / "+" / "-" / "."), no byte a URI never holds), else
 * EBADMSG (400). */
static int other_scheme(struct slice scheme, struct slice rest)
{
	if (!is_alnum(scheme.p[0]) || (scheme.p[0] >= '0' && scheme.p[0] <= '9'))
		return EBADMSG;
	for (size_t i = 1; i < scheme.l; i++)
		if (!is_alnum(scheme.p[i]) && scheme.p[i] != '+' && scheme.p[i] != '-' && scheme.p[i] != '.')
			return EBADMSG;
	for (size_t i = 0; i < rest.l; i++)
		if (uri_forbidden[(uint8_t)rest.p[i]])
			return EBADMSG;
	return ENOTSUP;
}

/* "sip:" (any case) and more at s.p: the scheme as nearly every URI writes it, told without a search
 * for its colon (none of the three letters is one). */
static bool sip_colon(struct slice s)
{
	return s.l > 4 && (s.p[0] | 0x20) == 's' && (s.p[1] | 0x20) == 'i' && (s.p[2] | 0x20) == 'p' && s.p[3] == ':';
}

int sip_uri_parse(struct sip_uri *u, struct slice s)
{
	long colon;

	memset(u, 0, sizeof(*u));
	if (sip_colon(s)) {
		u->scheme_s = slice_make(s.p, 3);
		u->scheme = SIP_SCHEME_SIP;
		return parse_sip(u, slice_make(s.p + 4, s.l - 4));
	}
	colon = slice_chr(s, ':');
	if (colon <= 0)
		return EBADMSG;
	u->scheme_s = slice_make(s.p, (size_t)colon);
	s = slice_make(s.p + colon + 1, s.l - (size_t)colon - 1);
	if (s.l == 0)
		return EBADMSG;
	if (slice_caseeq_lit(u->scheme_s, "sip"))
		u->scheme = SIP_SCHEME_SIP;
	else if (slice_caseeq_lit(u->scheme_s, "sips"))
		u->scheme = SIP_SCHEME_SIPS;
	else if (slice_caseeq_lit(u->scheme_s, "tel"))
		u->scheme = SIP_SCHEME_TEL;
	else
		return other_scheme(u->scheme_s, s);
	/* every byte after the scheme is judged by the component that holds it */
	return u->scheme == SIP_SCHEME_TEL ? parse_tel(u, s) : parse_sip(u, s);
}

/* One character of a URI component: decoded, and whether it was written as %HH. */
static size_t uri_char(struct slice s, size_t i, char *c, bool *escaped)
{
	if (s.p[i] == '%' && i + 2 < s.l && sip__is_hex(s.p[i + 1]) && sip__is_hex(s.p[i + 2])) {
		*c = (char)(slice_hex_digit(s.p[i + 1]) * 16 + slice_hex_digit(s.p[i + 2]));
		*escaped = true;
		return i + 3;
	}
	*c = s.p[i];
	*escaped = false;
	return i + 1;
}

static char fold(char c, bool nocase)
{
	return nocase && c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* RFC 3261 19.1.4: %41 equals A, but an escaped reserved character differs from the plain one.
 * Streams both sides: no buffer, no length limit. */
static bool escaped_eq(struct slice a, struct slice b, bool nocase)
{
	size_t i = 0, j = 0;

	while (i < a.l && j < b.l) {
		char ca, cb;
		bool ea, eb;

		i = uri_char(a, i, &ca, &ea);
		j = uri_char(b, j, &cb, &eb);
		if (fold(ca, nocase) != fold(cb, nocase))
			return false;
		if (ea != eb && !is_unreserved(ca))
			return false;
	}
	return i == a.l && j == b.l;
}

/* A parameter in either URI among these must be in both with the same value. */
static const char *const strict_params[] = { "user", "ttl", "method", "maddr", "transport" };

/* The value of the first parameter of this name, as sip_param_find would; false if absent. */
static bool param_first(struct slice params, struct slice name, struct slice *value)
{
	struct slice rest = params, n, v;

	while (sip_param_next(&rest, &n, &v)) {
		if (slice_caseeq(n, name)) {
			*value = v;
			return true;
		}
	}
	return false;
}

static bool params_match(struct slice pa, struct slice pb)
{
	struct slice rest = pa, name, va, vb, first;

	for (size_t k = 0; k < sizeof(strict_params) / sizeof(strict_params[0]); k++) {
		bool ha = sip_param_find(pa, strict_params[k], &va);
		bool hb = sip_param_find(pb, strict_params[k], &vb);

		if (ha != hb || (ha && !escaped_eq(va, vb, true)))
			return false;
	}
	/* other parameters are compared only when both have them; a repeated name counts once */
	while (sip_param_next(&rest, &name, &va)) {
		if (param_first(pa, name, &first) && first.p != va.p)
			continue;
		if (param_first(pb, name, &vb) && !escaped_eq(va, vb, true))
			return false;
	}
	return true;
}

/* Next "name=value" of a URI's headers ('&'-separated). */
static bool hdr_next(struct slice *rest, struct slice *name, struct slice *value)
{
	const char *amp, *eq;
	struct slice item;

	if (rest->l == 0)
		return false;
	amp = memchr(rest->p, '&', rest->l);
	item = slice_make(rest->p, amp ? (size_t)(amp - rest->p) : rest->l);
	*rest = amp ? slice_make(amp + 1, rest->l - item.l - 1) : slice_make(rest->p + rest->l, 0);
	eq = memchr(item.p, '=', item.l);
	*name = slice_make(item.p, eq ? (size_t)(eq - item.p) : item.l);
	*value = eq ? slice_make(eq + 1, item.l - name->l - 1) : slice_make(item.p + item.l, 0);
	return true;
}

/* Every header of a is in b with an equal value (names case-insensitive), in any order. */
static bool headers_within(struct slice a, struct slice b)
{
	struct slice ra = a, na, va;

	while (hdr_next(&ra, &na, &va)) {
		struct slice rb = b, nb, vb;
		bool found = false;

		while (!found && hdr_next(&rb, &nb, &vb))
			found = escaped_eq(na, nb, true) && escaped_eq(va, vb, false);
		if (!found)
			return false;
	}
	return true;
}

size_t sip_host_canon(struct slice host, char *out, size_t n)
{
	struct slice h = host;
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a6;
	size_t k;

	if (h.l >= 2 && h.p[0] == '[' && h.p[h.l - 1] == ']')
		h = slice_make(h.p + 1, h.l - 2);
	if (h.l < sizeof(buf) && memchr(h.p, ':', h.l)) {
		memcpy(buf, h.p, h.l);
		buf[h.l] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) == 1) {
			bool mapped = IN6_IS_ADDR_V4MAPPED(&a6);

			if (!(mapped ? inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof(buf))
				     : inet_ntop(AF_INET6, &a6, buf, sizeof(buf))))
				return 0;
			k = strlen(buf);
			if (k + 3 > n)
				return 0;
			if (mapped)
				memcpy(out, buf, k + 1);
			else
				k = (size_t)snprintf(out, n, "[%s]", buf);
			return k;
		}
	}
	k = host.l > 1 && host.p[host.l - 1] == '.' ? host.l - 1 : host.l; /* "example.com." */
	if (k >= n)
		return 0;
	slice_lower_copy(out, host.p, k);
	out[k] = '\0';
	return k;
}

bool sip_host_eq(struct slice a, struct slice b)
{
	char ca[SIP_HOST_MAX], cb[SIP_HOST_MAX];
	size_t la, lb;

	if (slice_caseeq(a, b))
		return true;
	la = sip_host_canon(a, ca, sizeof(ca));
	lb = sip_host_canon(b, cb, sizeof(cb));
	return la && la == lb && !memcmp(ca, cb, la);
}

bool sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b)
{
	if (a->scheme != b->scheme || a->scheme == SIP_SCHEME_OTHER)
		return false;
	if (!escaped_eq(a->user, b->user, a->scheme == SIP_SCHEME_TEL) ||
	    !escaped_eq(a->password, b->password, false))
		return false;
	if (!sip_host_eq(a->host, b->host) || a->port != b->port)
		return false;
	if (!params_match(a->params, b->params))
		return false;
	/* headers: every component must match, in any order */
	return headers_within(a->headers, b->headers) && headers_within(b->headers, a->headers);
}
