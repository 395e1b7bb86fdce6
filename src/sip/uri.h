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
/* u's user part decoded into dst as a C string (n bytes with its NUL): its length (0 for none), or -1 when
 * its escaped form is not shorter than n or an escape is bad. */
long sip_uri_user(const struct sip_uri *u, char *dst, size_t n);
/* RFC 3261 19.1.4 comparison of two sip/sips URIs. */
bool sip_uri_equal(const struct sip_uri *a, const struct sip_uri *b);

#define SIP_HOST_MAX 256 /* a buffer for sip_host_canon: any host sipd compares by more than its text */
/* host as compared (RFC 3261 19.1.4 with RFC 5954 4: the same address written otherwise is the same
 * host): an IPv6 reference as RFC 5952 writes it, in brackets ([0:0::1] is [::1]), an IPv4-mapped one as
 * its IPv4 address, a name in lower case without the final dot of a fully qualified name. The length
 * written into out (with its NUL), 0 when it does not fit n. */
size_t sip_host_canon(struct slice host, char *out, size_t n);
/* Whether hosts a and b are one host by sip_host_canon. */
bool sip_host_eq(struct slice a, struct slice b);

#endif
