/* test_build.c: responses built from parsed requests (RFC 3261 8.2.6, 18.2.1; RFC 3581 4): status
 * line, Via copying with received/rport, To tag, copied headers, body, and the bounded buffer. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/build.h"
#include "sip/msg.h"
#include "sip/status.h"

#define CRLF "\r\n"

/* An INVITE through two proxies (three Via lines, the last holding two values), with Timestamp. */
static const char invite_text[] =
	"INVITE sip:bob@biloxi.example.com SIP/2.0" CRLF
	"Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK776asdhds;rport" CRLF
	"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1" CRLF
	"Via: SIP/2.0/TCP p2.example.com:5070;branch=z9hG4bKp2 , SIP/2.0/UDP p3.example.com;branch=z9hG4bKp3" CRLF
	"Max-Forwards: 70" CRLF
	"To: Bob <sip:bob@biloxi.example.com>" CRLF
	"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774" CRLF
	"Call-ID: a84b4c76e66710@pc33.atlanta.example.com" CRLF
	"CSeq: 314159 INVITE" CRLF
	"Timestamp: 54" CRLF
	"Contact: <sip:alice@pc33.atlanta.example.com>" CRLF
	"Content-Length: 0" CRLF
	CRLF;

/* The Via, From, To, Call-ID and CSeq lines a response to invite_text carries, top Via rewritten. */
#define INVITE_VIAS \
	"Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK776asdhds;rport=5062;received=10.0.0.9" CRLF \
	"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1" CRLF \
	"Via: SIP/2.0/TCP p2.example.com:5070;branch=z9hG4bKp2 , SIP/2.0/UDP p3.example.com;branch=z9hG4bKp3" CRLF
#define INVITE_FROM "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774" CRLF
#define INVITE_CALLID_CSEQ "Call-ID: a84b4c76e66710@pc33.atlanta.example.com" CRLF "CSeq: 314159 INVITE" CRLF

static char out[4096];

static void parse(struct sip_msg *m, const char *text)
{
	struct sip_error err;

	assert_int_equal(sip_msg_parse(m, text, strlen(text), &err), 0);
	assert_int_equal(sip_msg_check(m, &err), 0);
}

/* Writes the response into out, NUL-terminated for string compares. */
static const char *write_resp(const struct sip_msg *req, const struct sip_resp *r)
{
	struct sbuf b;

	sbuf_init(&b, out, sizeof(out) - 1);
	assert_int_equal(sip_resp_write(&b, req, r), 0);
	assert_false(b.overflow);
	out[b.len] = '\0';
	return out;
}

/* The value of the first "Name: " line of a written message, or NULL. */
static const char *line_of(const char *msg, const char *name, char *buf, size_t n)
{
	size_t nl = strlen(name);

	for (const char *p = msg; p && *p; p = strstr(p, CRLF) ? strstr(p, CRLF) + 2 : NULL) {
		if (strncmp(p, CRLF, 2) == 0)
			break; /* end of headers */
		if (strncmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *e = strstr(p, CRLF);

			snprintf(buf, n, "%.*s", (int)(e - p), p);
			return buf;
		}
	}
	return NULL;
}

static void test_full_486(void **state)
{
	struct sip_msg m;
	struct sip_resp r = {
		.code = 486,
		.to_tag = SLICE_LIT("as83kd9bs"),
		.src_host = SLICE_LIT("10.0.0.9"),
		.src_port = 5062,
	};

	(void)state;
	parse(&m, invite_text);
	assert_string_equal(write_resp(&m, &r),
			    "SIP/2.0 486 Busy Here" CRLF
			    INVITE_VIAS
			    INVITE_FROM
			    "To: Bob <sip:bob@biloxi.example.com>;tag=as83kd9bs" CRLF
			    INVITE_CALLID_CSEQ
			    "Content-Length: 0" CRLF
			    CRLF);
}

/* RFC 3261 8.2.6.1: 100 carries the Timestamp; 8.2.6.2: and no To tag is added to it. */
static void test_100_timestamp_no_tag(void **state)
{
	struct sip_msg m;
	struct sip_resp r = {
		.code = 100,
		.to_tag = SLICE_LIT("as83kd9bs"),
		.src_host = SLICE_LIT("10.0.0.9"),
		.src_port = 5062,
	};

	(void)state;
	parse(&m, invite_text);
	assert_string_equal(write_resp(&m, &r),
			    "SIP/2.0 100 Trying" CRLF
			    INVITE_VIAS
			    INVITE_FROM
			    "To: Bob <sip:bob@biloxi.example.com>" CRLF
			    INVITE_CALLID_CSEQ
			    "Timestamp: 54" CRLF
			    "Content-Length: 0" CRLF
			    CRLF);
}

/* Every other code takes the tag (1xx too) and never copies Timestamp. */
static void test_tag_and_no_timestamp_on_others(void **state)
{
	static const unsigned codes[] = { 180, 183, 200, 302, 404, 487, 500, 603 };
	struct sip_msg m;
	char line[256];

	(void)state;
	parse(&m, invite_text);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct sip_resp r = { .code = codes[i], .to_tag = SLICE_LIT("t1") };
		const char *s = write_resp(&m, &r);
		char status[64];

		snprintf(status, sizeof(status), "SIP/2.0 %u %s" CRLF, codes[i], sip_status_reason(codes[i]));
		assert_int_equal(strncmp(s, status, strlen(status)), 0);
		assert_string_equal(line_of(s, "To", line, sizeof(line)),
				    "To: Bob <sip:bob@biloxi.example.com>;tag=t1");
		assert_null(line_of(s, "Timestamp", line, sizeof(line)));
	}
}

static void test_catalogue_and_custom_reason(void **state)
{
	struct sip_msg m;
	struct sip_resp r = { .code = 180 };

	(void)state;
	parse(&m, invite_text);
	assert_int_equal(strncmp(write_resp(&m, &r), "SIP/2.0 180 Ringing" CRLF, 21), 0);
	r.code = 200;
	assert_int_equal(strncmp(write_resp(&m, &r), "SIP/2.0 200 OK" CRLF, 16), 0);
	r.code = 487;
	assert_int_equal(strncmp(write_resp(&m, &r), "SIP/2.0 487 Request Terminated" CRLF, 32), 0);
	r.code = 499; /* unknown: the class's x00 phrase */
	assert_int_equal(strncmp(write_resp(&m, &r), "SIP/2.0 499 Bad Request" CRLF, 25), 0);
	r.code = 400;
	r.reason = "Missing Call-ID header field";
	assert_int_equal(strncmp(write_resp(&m, &r), "SIP/2.0 400 Missing Call-ID header field" CRLF, 42), 0);
}

/* A To that already has a tag (a request inside a dialog) keeps it and gets no second one. */
static void test_to_with_tag_kept(void **state)
{
	static const char bye[] = "BYE sip:alice@pc33.atlanta.example.com SIP/2.0" CRLF
				  "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10" CRLF
				  "Max-Forwards: 70" CRLF
				  "From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf" CRLF
				  "To: Alice <sip:alice@atlanta.example.com>;tag=1928301774" CRLF
				  "Call-ID: a84b4c76e66710" CRLF
				  "CSeq: 231 BYE" CRLF
				  "Content-Length: 0" CRLF
				  CRLF;
	struct sip_msg m;
	struct sip_resp r = { .code = 200, .to_tag = SLICE_LIT("other"), .src_host = SLICE_LIT("192.0.2.4"),
			      .src_port = 5060 };

	(void)state;
	parse(&m, bye);
	assert_string_equal(write_resp(&m, &r),
			    "SIP/2.0 200 OK" CRLF
			    "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10" CRLF
			    "From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf" CRLF
			    "To: Alice <sip:alice@atlanta.example.com>;tag=1928301774" CRLF
			    "Call-ID: a84b4c76e66710" CRLF
			    "CSeq: 231 BYE" CRLF
			    "Content-Length: 0" CRLF
			    CRLF);
}

/* 18.2.1: received only when the sent-by host differs from the source (no rport in the request). */
static void test_received_rules(void **state)
{
	static const char fmt[] = "OPTIONS sip:bob@example.com SIP/2.0" CRLF
				  "Via: SIP/2.0/UDP %s" CRLF
				  "From: <sip:alice@example.com>;tag=1" CRLF
				  "To: <sip:bob@example.com>" CRLF
				  "Call-ID: c1" CRLF
				  "CSeq: 1 OPTIONS" CRLF
				  "Content-Length: 0" CRLF
				  CRLF;
	static const struct {
		const char *via, *src;
		uint16_t port;
		const char *want;
	} cases[] = {
		/* same address, no rport: copied as is */
		{ "10.0.0.9:5062;branch=z9hG4bK1", "10.0.0.9", 5062,
		  "Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK1" },
		/* a NAT rewrote the address: received */
		{ "10.0.0.9:5062;branch=z9hG4bK1", "203.0.113.7", 40000,
		  "Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK1;received=203.0.113.7" },
		/* a domain name in sent-by always differs from the packet's address */
		{ "pc33.example.com;branch=z9hG4bK1", "10.0.0.9", 5060,
		  "Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=10.0.0.9" },
		/* rport: both, even when the host matches (RFC 3581 4) */
		{ "10.0.0.9:5062;rport;branch=z9hG4bK1", "10.0.0.9", 5062,
		  "Via: SIP/2.0/UDP 10.0.0.9:5062;rport=5062;branch=z9hG4bK1;received=10.0.0.9" },
		{ "10.0.0.9;branch=z9hG4bK1;rport", "198.51.100.1", 61000,
		  "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1;rport=61000;received=198.51.100.1" },
		/* a stale received from the client is replaced, not doubled */
		{ "10.0.0.9;received=1.1.1.1;branch=z9hG4bK1", "198.51.100.1", 5060,
		  "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1;received=198.51.100.1" },
		/* no source known: untouched */
		{ "10.0.0.9;branch=z9hG4bK1;rport", "", 0, "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1;rport" },
		/* no params at all */
		{ "10.0.0.9", "10.0.0.1", 5060, "Via: SIP/2.0/UDP 10.0.0.9;received=10.0.0.1" },
		/* case of a host name does not matter */
		{ "PC33.Example.COM;branch=z9hG4bK1", "pc33.example.com", 5060,
		  "Via: SIP/2.0/UDP PC33.Example.COM;branch=z9hG4bK1" },
		/* IPv6: received carries the bare address */
		{ "[2001:db8::9]:5062;branch=z9hG4bK1", "[2001:db8::1]", 5062,
		  "Via: SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bK1;received=2001:db8::1" },
	};
	char text[1024], line[512];
	struct sip_msg m;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sip_resp r = { .code = 200, .src_host = slice_cstr(cases[i].src),
				      .src_port = cases[i].port };

		snprintf(text, sizeof(text), fmt, cases[i].via);
		parse(&m, text);
		if (!cases[i].src[0])
			r.src_host = SLICE_NULL;
		assert_string_equal(line_of(write_resp(&m, &r), "Via", line, sizeof(line)), cases[i].want);
	}
}

/* Compact forms in the request come back under their full names; every Via line, in order. */
static void test_compact_request(void **state)
{
	static const char text[] = "MESSAGE sip:bob@example.com SIP/2.0" CRLF
				   "v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKc1;rport" CRLF
				   "v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKc2" CRLF
				   "f: <sip:alice@example.com>;tag=ff" CRLF
				   "t: <sip:bob@example.com>" CRLF
				   "i: compact-call-id" CRLF
				   "CSeq: 9 MESSAGE" CRLF
				   "c: text/plain" CRLF
				   "l: 5" CRLF
				   CRLF
				   "hello";
	struct sip_msg m;
	struct sip_resp r = { .code = 202, .reason = "Accepted", .to_tag = SLICE_LIT("tt"),
			      .src_host = SLICE_LIT("10.0.0.1"), .src_port = 5999 };

	(void)state;
	parse(&m, text);
	assert_string_equal(write_resp(&m, &r),
			    "SIP/2.0 202 Accepted" CRLF
			    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKc1;rport=5999;received=10.0.0.1" CRLF
			    "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKc2" CRLF
			    "From: <sip:alice@example.com>;tag=ff" CRLF
			    "To: <sip:bob@example.com>;tag=tt" CRLF
			    "Call-ID: compact-call-id" CRLF
			    "CSeq: 9 MESSAGE" CRLF
			    "Content-Length: 0" CRLF
			    CRLF);
}

/* A top Via header holding several values: only the first is rewritten, the rest follow as received. */
static void test_top_via_list(void **state)
{
	static const char text[] = "OPTIONS sip:bob@example.com SIP/2.0" CRLF
				   "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa;rport, "
				   "SIP/2.0/TCP 10.0.0.2;branch=z9hG4bKb" CRLF
				   "Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKc" CRLF
				   "From: <sip:alice@example.com>;tag=1" CRLF
				   "To: <sip:bob@example.com>" CRLF
				   "Call-ID: c1" CRLF
				   "CSeq: 1 OPTIONS" CRLF
				   CRLF;
	struct sip_msg m;
	struct sip_resp r = { .code = 200, .src_host = SLICE_LIT("10.0.0.1"), .src_port = 5070 };
	const char *s;

	(void)state;
	parse(&m, text);
	s = write_resp(&m, &r);
	assert_non_null(strstr(s, CRLF
				  "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa;rport=5070;received=10.0.0.1, "
				  "SIP/2.0/TCP "
				  "10.0.0.2;branch=z9hG4bKb" CRLF
				  "Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKc" CRLF
				  "From: "));
}

/* A request of n Via fields (one value each) and the four other mandatory ones, and its 200, parsed back:
 * the number of Via lines the 200 has. */
static unsigned vias_in_response(unsigned n)
{
	static char req[16384], resp[16384];
	struct sip_msg m, back;
	struct sip_error err;
	struct sip_resp r = { .code = 200, .src_host = SLICE_LIT("10.0.0.1"), .src_port = 5070 };
	struct sbuf b;
	size_t len = 0;
	unsigned lines = 0;

	len += (size_t)snprintf(req + len, sizeof(req) - len, "OPTIONS sip:bob@example.com SIP/2.0" CRLF);
	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(req + len, sizeof(req) - len, "Via: SIP/2.0/UDP 10.0.%u.%u;branch=z9hG4bK%u" CRLF,
					i / 250, i % 250 + 1, i);
	len += (size_t)snprintf(req + len, sizeof(req) - len,
				"From: <sip:alice@example.com>;tag=1" CRLF "To: <sip:bob@example.com>" CRLF
				"Call-ID: c1" CRLF "CSeq: 1 OPTIONS" CRLF CRLF);
	assert_true(len < sizeof(req));
	assert_int_equal(sip_msg_parse(&m, req, len, &err), 0);
	sbuf_init(&b, resp, sizeof(resp) - 1);
	assert_int_equal(sip_resp_write(&b, &m, &r), 0);
	assert_false(b.overflow);
	resp[b.len] = '\0'; /* for strstr */
	assert_int_equal(sip_msg_parse(&back, resp, b.len, &err), 0); /* sipd reads what it sends */
	assert_int_equal(sip_msg_check(&back, &err), 0);
	assert_int_equal(sip_list_count(&back, SIP_HDR_VIA), n); /* every value, in order */
	assert_memory_equal(back.via.branch.p, "z9hG4bK0", 8);
	for (const char *p = resp; (p = strstr(p, CRLF "Via: ")); p++)
		lines++;
	return lines;
}

/* 8.2.6.2: a response copies every Via. Past half of SIP_MAX_HEADERS they go as one comma-separated line
 * (7.3.1), or a request of 155 Vias would get a response of more header fields than any request may have
 * (the fuzzer found sipd's 400 "Too many header fields" refused by its own parser). */
static void test_many_vias(void **state)
{
	(void)state;
	assert_int_equal(vias_in_response(3), 3);
	assert_int_equal(vias_in_response(80), 80);
	assert_int_equal(vias_in_response(81), 1);
	assert_int_equal(vias_in_response(155), 1);
}

/* Server, extra header lines, Content-Type and the body, with its length. */
static void test_extra_and_body(void **state)
{
	static const char sdp[] = "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\n";
	struct sip_msg m;
	struct sip_resp r = {
		.code = 200,
		.to_tag = SLICE_LIT("xyz"),
		.src_host = SLICE_LIT("10.0.0.9"),
		.src_port = 5062,
		.server = "sipd/test",
		.extra = "Contact: <sip:bob@10.0.0.1>" CRLF "Allow: INVITE, ACK, BYE" CRLF,
		.body = SLICE_LIT(sdp),
		.content_type = "application/sdp",
	};
	char want[1024];

	(void)state;
	parse(&m, invite_text);
	snprintf(want, sizeof(want),
		 "SIP/2.0 200 OK" CRLF
		 INVITE_VIAS
		 INVITE_FROM
		 "To: Bob <sip:bob@biloxi.example.com>;tag=xyz" CRLF
		 INVITE_CALLID_CSEQ
		 "Server: sipd/test" CRLF
		 "Contact: <sip:bob@10.0.0.1>" CRLF
		 "Allow: INVITE, ACK, BYE" CRLF
		 "Content-Type: application/sdp" CRLF
		 "Content-Length: %zu" CRLF
		 CRLF
		 "%s",
		 strlen(sdp), sdp);
	assert_string_equal(write_resp(&m, &r), want);

	/* what was written parses back as a response with that body */
	{
		struct sip_msg resp;
		struct sip_error err;

		assert_int_equal(sip_msg_parse(&resp, out, strlen(out), &err), 0);
		assert_int_equal(sip_msg_check(&resp, &err), 0);
		assert_false(resp.is_request);
		assert_int_equal(resp.status, 200);
		assert_int_equal(resp.content_length, (long)strlen(sdp));
		assert_int_equal(resp.body.l, strlen(sdp));
		assert_memory_equal(resp.body.p, sdp, strlen(sdp));
		assert_int_equal(resp.cseq.num, 314159);
		assert_true(slice_eq(resp.to.tag, SLICE_LIT("xyz")));
		assert_true(slice_eq(resp.via.received, SLICE_LIT("10.0.0.9")));
		assert_true(slice_eq(resp.via.rport, SLICE_LIT("5062")));
	}
}

/* Every buffer shorter than the response fails with ENOSPC without writing past it; the exact size fits. */
static void test_overflow(void **state)
{
	struct sip_msg m;
	struct sip_resp r = {
		.code = 200,
		.to_tag = SLICE_LIT("xyz"),
		.src_host = SLICE_LIT("10.0.0.9"),
		.src_port = 5062,
		.server = "sipd/test",
		.extra = "Allow: INVITE" CRLF,
		.body = SLICE_LIT("body"),
		.content_type = "text/plain",
	};
	struct sbuf b;
	size_t full;
	char *mem;

	(void)state;
	parse(&m, invite_text);
	sbuf_init(&b, out, sizeof(out));
	assert_int_equal(sip_resp_write(&b, &m, &r), 0);
	full = b.len;
	for (size_t cap = 0; cap < full; cap++) {
		mem = malloc(cap ? cap : 1); /* exact size: ASan sees any write past cap */
		assert_non_null(mem);
		sbuf_init(&b, mem, cap);
		assert_int_equal(sip_resp_write(&b, &m, &r), ENOSPC);
		assert_true(b.overflow);
		assert_true(b.len <= cap);
		assert_memory_equal(mem, out, b.len); /* what did fit is the response's beginning */
		free(mem);
	}
	mem = malloc(full);
	assert_non_null(mem);
	sbuf_init(&b, mem, full);
	assert_int_equal(sip_resp_write(&b, &m, &r), 0);
	assert_int_equal(b.len, full);
	assert_memory_equal(mem, out, full);
	free(mem);
}

/* The 400 to a request with NUL bytes in its headers copies those headers without them: sipd sends
 * nothing a parser refuses (found by fuzz_core), and copies the rest of each value as it came. */
static void test_400_drops_nul(void **state)
{
	static const char text[] =
		"OPTIONS sip:127.0.0.1 SIP/2.0" CRLF
		"Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bKnul\0x" CRLF
		"From: <sip:a@example.com>;tag=f1" CRLF
		"To: <sip:127.0.0.1:\0\0\0" "5060>" CRLF
		"Call-ID: nul@example.com" CRLF
		"CSeq: 1 OPTIONS" CRLF
		"Content-Length: 0" CRLF CRLF;
	struct sip_resp r = { .code = 400, .reason = "NUL byte in header field", .to_tag = SLICE_LIT("t9"),
			      .src_host = SLICE_LIT("10.0.0.9"), .src_port = 5062 };
	struct sip_msg m, resp;
	struct sip_error err;
	struct sbuf b;
	char buf[256];

	(void)state;
	assert_int_equal(sip_msg_parse(&m, text, sizeof(text) - 1, &err), EBADMSG);
	assert_int_equal(err.status, 400);
	assert_true(m.ctl_in_headers);
	sbuf_init(&b, out, sizeof(out) - 1);
	assert_int_equal(sip_resp_write(&b, &m, &r), 0);
	assert_null(memchr(out, '\0', b.len));
	out[b.len] = '\0';
	assert_int_equal(sip_msg_parse(&resp, out, b.len, &err), 0);
	assert_int_equal(resp.status, 400);
	assert_string_equal(line_of(out, "To", buf, sizeof(buf)), "To: <sip:127.0.0.1:5060>;tag=t9");
	assert_string_equal(line_of(out, "From", buf, sizeof(buf)), "From: <sip:a@example.com>;tag=f1");
	assert_non_null(strstr(out, "branch=z9hG4bKnulx"));

	/* refused at a later line (no colon) before the look for NUL at the end of the header block */
	static const char early[] =
		"OPTIONS sip:127.0.0.1 SIP/2.0" CRLF
		"Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bKnul2" CRLF
		"From: <sip:a@example.com>;tag=f\0\0" "2" CRLF
		"To: <sip:127.0.0.1>" CRLF
		"Max-Forwards 70" CRLF CRLF;
	assert_int_equal(sip_msg_parse(&m, early, sizeof(early) - 1, &err), EBADMSG);
	assert_string_equal(err.reason, "Malformed header line: missing colon");
	assert_true(m.ctl_in_headers);
	sbuf_init(&b, out, sizeof(out) - 1);
	assert_int_equal(sip_resp_write(&b, &m, &r), 0);
	assert_null(memchr(out, '\0', b.len));
	out[b.len] = '\0';
	assert_string_equal(line_of(out, "From", buf, sizeof(buf)), "From: <sip:a@example.com>;tag=f2");

	parse(&m, invite_text); /* a request without NUL: copied byte for byte, as before */
	assert_false(m.ctl_in_headers);

	/* other control characters: refused, and not copied into the 400 either */
	static const char ctl[] =
		"OPTIONS sip:127.0.0.1 SIP/2.0" CRLF
		"Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bKctl" CRLF
		"From: \"iv\x1b[2Jan\" <sip:a@example.com>;tag=f3" CRLF
		"To: <sip:127.0.0.1>" CRLF
		"Call-ID: ctl\x01@example.com" CRLF
		"CSeq: 1 OPTIONS" CRLF
		"Subject: \x07" CRLF CRLF;
	r.reason = "Control character in header field";
	assert_int_equal(sip_msg_parse(&m, ctl, sizeof(ctl) - 1, &err), EBADMSG);
	assert_string_equal(err.reason, "Control character in header field");
	assert_true(m.ctl_in_headers);
	sbuf_init(&b, out, sizeof(out) - 1);
	assert_int_equal(sip_resp_write(&b, &m, &r), 0);
	out[b.len] = '\0';
	assert_string_equal(line_of(out, "From", buf, sizeof(buf)), "From: \"iv[2Jan\" <sip:a@example.com>;tag=f3");
	assert_string_equal(line_of(out, "Call-ID", buf, sizeof(buf)), "Call-ID: ctl@example.com");
	assert_int_equal(sip_msg_parse(&resp, out, b.len, &err), 0);
	assert_false(resp.ctl_in_headers);
}

/* The hop-by-hop ACK of an invalid final response (17.1.1.3) takes that response's To: without its NUL
 * bytes, so that the ACK itself parses (found by fuzz_core). */
static void test_hop_ack_drops_nul(void **state)
{
	static const char to[] = "<sip:bob@biloxi.example.com>;tag=\0\0" "b1";
	struct sip_msg m, ack;
	struct sip_error err;
	struct sbuf b;
	char buf[256];

	(void)state;
	parse(&m, invite_text);
	sbuf_init(&b, out, sizeof(out) - 1);
	assert_int_equal(sip_hop_request_write(&b, &m, "ACK", slice_make(to, sizeof(to) - 1)), 0);
	assert_null(memchr(out, '\0', b.len));
	out[b.len] = '\0';
	assert_int_equal(sip_msg_parse(&ack, out, b.len, &err), 0);
	assert_int_equal(sip_msg_check(&ack, &err), 0);
	assert_string_equal(line_of(out, "To", buf, sizeof(buf)), "To: <sip:bob@biloxi.example.com>;tag=b1");
	assert_string_equal(line_of(out, "CSeq", buf, sizeof(buf)), "CSeq: 314159 ACK");
}

/* RFC 3261 16.4: what a proxy forwards once a Request-URI's maddr named it. */
static void check_without_maddr(const char *in, const char *want)
{
	struct sip_uri u;
	char mem[256];
	struct sbuf b;

	assert_int_equal(sip_uri_parse(&u, slice_cstr(in)), 0);
	sbuf_init(&b, mem, sizeof(mem));
	sip_uri_write_without_maddr(&b, &u);
	assert_false(b.overflow);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(mem, want, b.len);
}

static void test_uri_without_maddr(void **state)
{
	(void)state;
	/* the maddr and a port other than 5060 go; another transport than UDP goes; the rest stays */
	check_without_maddr("sip:bob@example.test:5070;x=1;maddr=10.0.0.1;transport=udp",
			    "sip:bob@example.test;x=1;transport=udp");
	check_without_maddr("sip:bob@example.test;MADDR=10.0.0.1;Transport=TCP;lr", "sip:bob@example.test;lr");
	/* the default port stays as written, a password, a valueless parameter and URI headers too */
	check_without_maddr("sip:bob:secret@[2001:db8::1]:5060;maddr=[2001:db8::2];user=ip;ob?Subject=hi",
			    "sip:bob:secret@[2001:db8::1]:5060;user=ip;ob?Subject=hi");
	/* no user part */
	check_without_maddr("SIP:example.test:5099;maddr=example.test", "SIP:example.test");
}

/* RFC 3261 16.6 step 2 and 19.1.1 (table 1): a Contact as a Request-URI loses its method parameter and
 * its headers; every other part stays as written, a port too. */
static void test_uri_as_ruri(void **state)
{
	static const char *const cases[][2] = {
		{ "sip:alice@127.0.0.1:15533;method=INVITE?Subject=hi&X-Priv=1", "sip:alice@127.0.0.1:15533" },
		{ "sip:bob:pw@[2001:db8::1]:5060;transport=tcp;METHOD=REGISTER;lr;x=y", "sip:bob:pw@[2001:db8::1]:5060;transport=tcp;lr;x=y" },
		{ "sips:example.test;maddr=10.0.0.1?h=v", "sips:example.test;maddr=10.0.0.1" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sip_uri u;
		char mem[256];
		struct sbuf b;

		assert_int_equal(sip_uri_parse(&u, slice_cstr(cases[i][0])), 0);
		sbuf_init(&b, mem, sizeof(mem));
		sip_uri_write_as_ruri(&b, &u);
		assert_false(b.overflow);
		mem[b.len] = '\0';
		assert_string_equal(mem, cases[i][1]);
	}
}

static void test_sbuf(void **state)
{
	char mem[16];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_adds(&b, "abc");
	sbuf_addu(&b, 0);
	sbuf_addu(&b, 4294967295u);
	sbuf_addsl(&b, SLICE_NULL);
	assert_false(b.overflow);
	assert_int_equal(b.len, 14);
	assert_memory_equal(mem, "abc04294967295", 14);
	sbuf_printf(&b, "%d", 12); /* 16 bytes with the NUL: does not fit */
	assert_true(b.overflow);
	assert_int_equal(b.len, 14);
	sbuf_adds(&b, "x"); /* latched */
	assert_int_equal(b.len, 14);

	sbuf_init(&b, mem, sizeof(mem));
	sbuf_printf(&b, "%s-%u", "ab", 7u);
	assert_false(b.overflow);
	assert_int_equal(b.len, 4);
	assert_memory_equal(mem, "ab-7", 4);
}

/* sbuf_addu against printf's %lu around every power of ten, and at the edge of the buffer: a number
 * that fits exactly is written whole, one a byte too long writes nothing and latches. */
static void test_sbuf_addu(void **state)
{
	char mem[32], want[32];
	struct sbuf b;
	unsigned long v = 1;

	(void)state;
	for (int k = 0; k < 20; k++, v *= 10) {
		const unsigned long around[] = { v - 1, v, v + 1, ULONG_MAX - v };

		for (size_t j = 0; j < 4; j++) {
			int n = snprintf(want, sizeof(want), "%lu", around[j]);

			sbuf_init(&b, mem, (size_t)n);
			sbuf_addu(&b, around[j]);
			assert_false(b.overflow);
			assert_int_equal(b.len, n);
			assert_memory_equal(mem, want, (size_t)n);
			sbuf_init(&b, mem, (size_t)n - 1);
			sbuf_addu(&b, around[j]);
			assert_true(b.overflow);
			assert_int_equal(b.len, 0);
		}
	}
	sbuf_init(&b, mem, sizeof(mem));
	sbuf_addu(&b, ULONG_MAX);
	snprintf(want, sizeof(want), "%lu", ULONG_MAX);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(mem, want, b.len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_486),
		cmocka_unit_test(test_100_timestamp_no_tag),
		cmocka_unit_test(test_tag_and_no_timestamp_on_others),
		cmocka_unit_test(test_catalogue_and_custom_reason),
		cmocka_unit_test(test_to_with_tag_kept),
		cmocka_unit_test(test_received_rules),
		cmocka_unit_test(test_compact_request),
		cmocka_unit_test(test_top_via_list),
		cmocka_unit_test(test_many_vias),
		cmocka_unit_test(test_extra_and_body),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_400_drops_nul),
		cmocka_unit_test(test_hop_ack_drops_nul),
		cmocka_unit_test(test_sbuf),
		cmocka_unit_test(test_sbuf_addu),
		cmocka_unit_test(test_uri_without_maddr),
		cmocka_unit_test(test_uri_as_ruri),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
