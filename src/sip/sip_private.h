/* sip_private.h: scanning helpers shared by the files of src/sip only; not part of its interface. */
#ifndef SIPD_SIP_PRIVATE_H
#define SIPD_SIP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"

/* Character classes, one table lookup instead of strchr per byte. */
enum {
	SIP_C_TOKEN = 1,  /* RFC 3261 token */
	SIP_C_HOST = 2,   /* hostname / IPv4 characters */
	SIP_C_HEX = 4,
	SIP_C_UNRES = 8,  /* URI unreserved */
	SIP_C_LWS = 16,
	SIP_C_PEND = 32,      /* what ends a parameter value: ';' or LWS */
	SIP_C_PNAME_END = 64, /* '=', which also ends a parameter name (with SIP_C_PEND) */
};
extern const uint8_t sip__ctype[256];

static inline bool sip__is(char c, uint8_t cls)
{
	return (sip__ctype[(uint8_t)c] & cls) != 0;
}

/* LWS inside values: SP, HT, and the CR LF of folded lines. */
static inline bool sip__is_lws(char c)
{
	return sip__is(c, SIP_C_LWS);
}

static inline size_t sip__skip_lws(struct slice s, size_t i)
{
	while (i < s.l && sip__is_lws(s.p[i]))
		i++;
	return i;
}

/* The first index from i on whose byte is (stop_in) or is not (!stop_in) in cls, or s.l: four bytes
 * a round, for the long runs (header names, branches, tags) that headers hold. */
static inline size_t sip__scan(struct slice s, size_t i, uint8_t cls, bool stop_in)
{
	for (; i + 4 <= s.l; i += 4) {
		if (sip__is(s.p[i], cls) == stop_in)
			return i;
		if (sip__is(s.p[i + 1], cls) == stop_in)
			return i + 1;
		if (sip__is(s.p[i + 2], cls) == stop_in)
			return i + 2;
		if (sip__is(s.p[i + 3], cls) == stop_in)
			return i + 3;
	}
	while (i < s.l && sip__is(s.p[i], cls) != stop_in)
		i++;
	return i;
}

/* To the first byte in cls. */
static inline size_t sip__scan_to(struct slice s, size_t i, uint8_t cls)
{
	return sip__scan(s, i, cls, true);
}

/* Past the bytes in cls. */
static inline size_t sip__span(struct slice s, size_t i, uint8_t cls)
{
	return sip__scan(s, i, cls, false);
}

static inline bool sip__is_hex(char c)
{
	return sip__is(c, SIP_C_HEX);
}

/* End of a quoted string starting at s.p[i] == '"': index after the closing quote, or 0 if unterminated. */
size_t sip__quoted_end(struct slice s, size_t i);

/* A control character that has no place in a header field (RFC 3261 25.1: CTLs only in a quoted-pair):
 * any below 0x20 but HTAB, CR and LF. DEL (0x7f), a CTL too, passes: it breaks no line and drives no
 * terminal, and the line scan finds the others at no cost while it looks for CR and LF. */
static inline bool sip__is_ctl(unsigned char c)
{
	return c < 0x20 && c != '\t' && c != '\r' && c != '\n';
}

/* Whether p[0, len) holds one, escaped or not (NUL included). */
bool sip__has_ctl(const char *p, size_t len);
/* host[:port] starting at s.p[i], in one pass: the index just after it, 0 when malformed. What follows
 * is the caller's to judge. */
size_t sip__hostport_at(struct slice s, size_t i, struct slice *host, uint16_t *port, bool *ipv6);

#endif
