/* uri.h: zero-copy parser for sip:, sips: and tel: URIs (RFC 3261 19.1, 25.1; RFC 3966) and their parameters. */
#ifndef SIPD_SIP_URI_H
#define SIPD_SIP_URI_H

#include <stdbool.h>
#include <stdint.h>

#include "base/slice.h"

enum sip_scheme { SIP_SCHEME_OTHER = 0, SIP_SCHEME_SIP, SIP_SCHEME_SIPS, SIP_SCHEME_TEL };

struct sip_uri {
	enum sip_scheme scheme;
	struct slice scheme_s; /* as written */
	struct slice user;     /* still escaped; for tel: the number */
	struct slice password;
	struct slice host;     /* IPv6 references keep their brackets */
	uint16_t port;         /* 0 when absent */
	struct slice params;   /* ";a=b;c" raw, without the first ';' */
	struct slice headers;  /* "a=b&c=d" raw, without the '?' */
	struct slice transport, maddr, user_param, method, ttl;
	bool lr;
	bool ipv6;
};

/* 0, or EBADMSG for a malformed URI; ENOTSUP for a scheme that is well-formed but not sip/sips/tel
 * (u->scheme is SIP_SCHEME_OTHER and scheme_s set). */
int sip_uri_parse(struct sip_uri *u, struct slice s);
/* Finds a ;name[=value] parameter in a raw parameter list (case-insensitive names). */
bool sip_param_find(struct slice params, const char *name, struct slice *value);
/* Iterates ;name[=value] parameters: rest is consumed; false at the end. */
bool sip_param_next(struct slice *rest, struct slice *name, struct slice *value);
/* Decodes %HH escapes into dst (size n); the decoded length, or -1 on a bad escape or overflow. */
long sip_unescape(char *dst, size_t n, struct slice s);
/* RFC 3261 19.1.4 comparison of two sip/sips URIs. */
bool sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b);

#endif
