/* msg.h: the SIP message engine: a zero-copy parser of requests and responses into header slices,
 * typed accessors for the headers sipd reasons about, and stream framing. */
#ifndef SIPD_SIP_MSG_H
#define SIPD_SIP_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "base/slice.h"
#include "sip/uri.h"

#define SIP_MAX_HEADERS 160 /* more header fields than this: 400 / dropped */

enum sip_method {
	SIP_METHOD_UNKNOWN = 0,
	SIP_METHOD_INVITE,
	SIP_METHOD_ACK,
	SIP_METHOD_BYE,
	SIP_METHOD_CANCEL,
	SIP_METHOD_OPTIONS,
	SIP_METHOD_REGISTER,
	SIP_METHOD_PRACK,
	SIP_METHOD_SUBSCRIBE,
	SIP_METHOD_NOTIFY,
	SIP_METHOD_PUBLISH,
	SIP_METHOD_INFO,
	SIP_METHOD_REFER,
	SIP_METHOD_MESSAGE,
	SIP_METHOD_UPDATE,
	SIP_METHOD_COUNT
};

/* Header ids: the rest of sipd compares integers, not names. Compact forms map to the same id. */
enum sip_hdr_id {
	SIP_HDR_OTHER = 0,
	SIP_HDR_VIA,
	SIP_HDR_FROM,
	SIP_HDR_TO,
	SIP_HDR_CALL_ID,
	SIP_HDR_CSEQ,
	SIP_HDR_MAX_FORWARDS,
	SIP_HDR_CONTENT_LENGTH,
	SIP_HDR_CONTENT_TYPE,
	SIP_HDR_CONTENT_ENCODING,
	SIP_HDR_CONTENT_LANGUAGE,
	SIP_HDR_CONTENT_DISPOSITION,
	SIP_HDR_CONTACT,
	SIP_HDR_EXPIRES,
	SIP_HDR_REQUIRE,
	SIP_HDR_PROXY_REQUIRE,
	SIP_HDR_SUPPORTED,
	SIP_HDR_UNSUPPORTED,
	SIP_HDR_ROUTE,
	SIP_HDR_RECORD_ROUTE,
	SIP_HDR_AUTHORIZATION,
	SIP_HDR_PROXY_AUTHORIZATION,
	SIP_HDR_WWW_AUTHENTICATE,
	SIP_HDR_PROXY_AUTHENTICATE,
	SIP_HDR_ALLOW,
	SIP_HDR_ACCEPT,
	SIP_HDR_ACCEPT_ENCODING,
	SIP_HDR_ACCEPT_LANGUAGE,
	SIP_HDR_USER_AGENT,
	SIP_HDR_SERVER,
	SIP_HDR_DATE,
	SIP_HDR_RETRY_AFTER,
	SIP_HDR_MIN_EXPIRES,
	SIP_HDR_PATH,
	SIP_HDR_TIMESTAMP,
	SIP_HDR_SUBJECT,
	SIP_HDR_EVENT,
	SIP_HDR_ALLOW_EVENTS,
	SIP_HDR_REFER_TO,
	SIP_HDR_REFERRED_BY,
	SIP_HDR_SESSION_EXPIRES,
	SIP_HDR_IDENTITY,
	SIP_HDR_WARNING,
	SIP_HDR_COUNT
};

struct sip_hdr {
	struct slice name;  /* as written */
	struct slice value; /* trimmed; may contain folded CRLF+WSP, which value parsers treat as LWS */
	uint8_t id;         /* enum sip_hdr_id */
	uint8_t next;       /* index+1 of the next header with the same id, 0 at the end */
	uint16_t line_len;  /* the field as received, from name to line end (CRLF included), folded lines
			     * too; 0 when over 65535 bytes */
};

struct sip_via {
	struct slice proto;     /* "SIP/2.0" */
	struct slice transport; /* "UDP", "TCP", ... */
	struct slice host;      /* sent-by host (IPv6 with brackets) */
	uint16_t port;          /* sent-by port, 0 when absent */
	struct slice params;    /* raw, without the first ';' */
	struct slice branch, received, rport, maddr, ttl;
	bool has_rport;         /* ;rport present, with or without value */
	struct slice raw;       /* the whole via-parm */
};

struct sip_addr {
	struct slice display;   /* without quotes */
	struct slice uri;       /* the URI text */
	struct slice params;    /* header params after the URI, without the first ';' */
	struct slice tag;
	bool star;              /* Contact: * */
};

struct sip_cseq {
	uint32_t num;
	struct slice method;
	enum sip_method mid;
};

/* Parse failures carry the status to answer with and a reason phrase naming the defect. */
struct sip_error {
	unsigned short status; /* 400, 505, 414, 513, ... ; 0 = drop silently */
	const char *reason;
};

struct sip_msg {
	const char *buf;
	size_t len;              /* the whole message including body */
	bool is_request;
	/* request line */
	struct slice method;
	enum sip_method mid;
	struct slice ruri;
	struct sip_uri ruri_uri;      /* the Request-URI parsed once for everyone: valid when ruri_err is 0 */
	int ruri_err;                 /* sip_uri_parse's answer: 0, EBADMSG, or ENOTSUP (another scheme) */
	/* status line */
	unsigned short status;   /* 100 to 999 once a status line was read (sip_msg_check refuses 700 up); 0 else */
	struct slice reason;
	struct slice version;
	/* headers, in order */
	struct sip_hdr hdrs[SIP_MAX_HEADERS];
	unsigned nhdrs;
	uint8_t first[SIP_HDR_COUNT]; /* index+1 of the first header of each id, 0 if none */
	uint8_t count[SIP_HDR_COUNT]; /* header fields (lines) per id, saturating at 255 */
	/* filled by sip_msg_parse from the mandatory headers when present and well-formed */
	struct sip_via via;           /* topmost Via value */
	struct sip_cseq cseq;
	struct slice call_id;
	struct sip_addr from, to;
	/* A request's From and To URIs parsed once for everyone (the check, the registrar, the proxy):
	 * sip_uri_parse's answer in *_uri_err (0, EBADMSG, ENOTSUP); EINVAL, and zeroed, when not parsed
	 * (a response, whose From and To are echoed as they came, or a header absent or malformed). */
	struct sip_uri from_uri, to_uri;
	int from_uri_err, to_uri_err;
	int max_forwards;             /* -1 when absent */
	long content_length;          /* -1 when absent */
	struct slice body;
	size_t hdr_len;               /* start-line + headers + empty line */
	bool ctl_in_headers;          /* a NUL or another control character in the header block (refused; also
	                                 * when found early, anywhere in the message): not copied into a 400 */
};

/* Parses a whole message (a datagram, or one framed stream message). Zero allocation.
 * 0: parsed; the mandatory headers may still be missing, see sip_msg_check.
 * EBADMSG: err says what to answer (status 0 means the bytes are not SIP enough to answer: drop). */
int sip_msg_parse(struct sip_msg *m, const char *buf, size_t len, struct sip_error *err);
/* RFC 3261 8.2.2 / 16.3 step 1 checks of a parsed request or response: mandatory headers present
 * exactly once and well-formed, CSeq method matching the request method, Content-Length agreeing
 * with the body. 0, or EBADMSG with err set. */
int sip_msg_check(const struct sip_msg *m, struct sip_error *err);

/* dst = src, for a copy of src's bytes at buf (src->len of them, which outlive src->buf): every slice
 * of dst points into buf, as sip_msg_parse(dst, buf, ...) would give, without parsing again. Only the
 * header fields in use are copied; slices outside the old bytes (string literals) are kept as they are. */
void sip_msg_copy(struct sip_msg *dst, const struct sip_msg *src, const char *buf);

/* Header access */
/* The first header field of id, or NULL. Inline: a dozen lookups a request, each a load or two. */
static inline const struct sip_hdr *sip_msg_hdr(const struct sip_msg *m, enum sip_hdr_id id)
{
	unsigned i = (unsigned)id < SIP_HDR_COUNT ? m->first[id] : 0;

	return i ? &m->hdrs[i - 1] : NULL;
}
const struct sip_hdr *sip_msg_hdr_next(const struct sip_msg *m, const struct sip_hdr *h);
/* Finds a header by name (for unknown ones); case-insensitive; compact forms match their long names. */
const struct sip_hdr *sip_msg_hdr_byname(const struct sip_msg *m, struct slice name);
enum sip_hdr_id sip_hdr_lookup(struct slice name);
const char *sip_hdr_name(enum sip_hdr_id id);

/* Splits a comma-separated header value into elements (not inside quotes or <>).
 * Call with *rest = the value; returns false when no element is left. Empty elements are skipped. */
bool sip_list_next(struct slice *rest, struct slice *elem);
/* Iterates every element of every header field with this id, across lines. */
struct sip_list_iter {
	const struct sip_msg *m;
	const struct sip_hdr *h;
	struct slice rest;
};
void sip_list_begin(struct sip_list_iter *it, const struct sip_msg *m, enum sip_hdr_id id);
bool sip_list_iter_next(struct sip_list_iter *it, struct slice *elem);
/* How many elements sip_list_iter_next would give for id, without splitting a line that holds no comma. */
unsigned sip_list_count(const struct sip_msg *m, enum sip_hdr_id id);

/* Typed value parsers: 0 or EBADMSG. */
int sip_via_parse(struct sip_via *v, struct slice s);
int sip_addr_parse(struct sip_addr *a, struct slice s);
int sip_cseq_parse(struct sip_cseq *c, struct slice s);
/* Contact element: addr plus expires (-1 absent) and q in thousandths (-1 absent). */
int sip_contact_parse(struct sip_addr *a, long *expires, int *q1000, struct slice s);
/* Option tag lists (Require, Proxy-Require, Supported, Unsupported): a token check per element. */
bool sip_token_valid(struct slice s);

enum sip_method sip_method_lookup(struct slice s);
const char *sip_method_name(enum sip_method m);

/* Stream framing (net's tp_frame_h): the full length of the first message in buf, 0 if incomplete,
 * -1 if it cannot be a message, -2 if it will exceed max. Leading CRLFs are not skipped here. */
long sip_frame(const char *buf, size_t len, size_t max);

#endif
