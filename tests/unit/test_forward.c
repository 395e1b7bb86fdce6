/* test_forward.c: the messages the proxy sends on (src/proxy/forward.c): a request rebuilt for its next
 * hop (RFC 3261 16.6 steps 2-8) and a response going upstream without sipd's Via (16.7 step 3), each
 * compared with the exact bytes the RFC asks for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/forward.h"

#define CRLF "\r\n"

static struct sip_msg msg;

static const struct sip_msg *parse(const char *text)
{
	struct sip_error err;

	assert_int_equal(sip_msg_parse(&msg, text, strlen(text), &err), 0);
	return &msg;
}

static void assert_bytes(const char *got, size_t len, const char *want)
{
	if (len != strlen(want) || memcmp(got, want, len)) {
		print_error("got:\n%.*s\nwant:\n%s\n", (int)len, got, want);
		fail();
	}
}

static const char invite[] =
	"INVITE sip:bob@example.com SIP/2.0" CRLF
	"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a;rport" CRLF
	"Max-Forwards: 10" CRLF
	"Route: <sip:192.0.2.1:5060;lr>, <sip:p2.example.com;lr>" CRLF
	"From: <sip:alice@example.com>;tag=1" CRLF
	"To: <sip:bob@example.com>" CRLF
	"i: c1@10.0.0.1" CRLF
	"CSeq: 1 INVITE" CRLF
	"X-Odd:  value" CRLF
	" folded" CRLF
	"l: 4" CRLF
	CRLF
	"body";

/* 16.6: the new Request-URI, sipd's Via on top (branch, rport), a Record-Route for each side when the
 * transport changes (RFC 5658), the Route set as it goes on where the request's Route was (16.6 step 1:
 * the order of the header fields kept), the sender's Via with received and rport
 * (18.2.1, RFC 3581), Max-Forwards less one, every other field as it came (compact names and folds
 * too), Content-Length of the body sent. */
static void test_request_transport_change(void **state)
{
	struct fwd_routes rs = { .r = { SLICE_LIT("<sip:p2.example.com;lr>") }, .n = 1 };
	struct fwd f = {
		.target = SLICE_LIT("sip:bob@192.0.2.9:5070;transport=tcp"),
		.routes = &rs,
		.src_host = SLICE_LIT("203.0.113.5"),
		.src_port = 40000,
		.record_route = true,
		.proto = TP_TCP,
		.in_proto = TP_UDP,
		.local = "192.0.2.1:5060",
		.branch = "z9hG4bK-out",
	};
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(fwd_request_build(parse(invite), &f, &out, &len), 0);
	assert_bytes(out, len,
		     "INVITE sip:bob@192.0.2.9:5070;transport=tcp SIP/2.0" CRLF
		     "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-out;rport" CRLF
		     "Record-Route: <sip:192.0.2.1:5060;transport=tcp;lr>" CRLF
		     "Record-Route: <sip:192.0.2.1:5060;lr>" CRLF
		     "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a;rport=40000;received=203.0.113.5" CRLF
		     "Max-Forwards: 9" CRLF
		     "Route: <sip:p2.example.com;lr>" CRLF
		     "From: <sip:alice@example.com>;tag=1" CRLF
		     "To: <sip:bob@example.com>" CRLF
		     "i: c1@10.0.0.1" CRLF
		     "CSeq: 1 INVITE" CRLF
		     "X-Odd:  value" CRLF
		     " folded" CRLF
		     "Content-Length: 4" CRLF
		     CRLF
		     "body");
	free(out);
}

/* 16.6 step 6 (and 16.12.1.2): the next hop is a strict router (its Route has no lr): the Request-URI
 * becomes that Route's URI, the Request-URI goes to the end of the Route set. */
static void test_request_strict_next_hop(void **state)
{
	struct fwd_routes rs = { .r = { SLICE_LIT("<sip:127.0.0.1:15530>"), SLICE_LIT("<sip:p3.example.com;lr>") },
				 .n = 2 };
	struct fwd_routes one = { .r = { SLICE_LIT("Strict <sip:p2.example.com;transport=tcp>") }, .n = 1 };
	struct fwd f = {
		.target = SLICE_LIT("sip:dave@127.0.0.1:15599"),
		.routes = &rs,
		.src_host = SLICE_LIT("10.0.0.1"),
		.src_port = 5060,
		.proto = TP_UDP,
		.in_proto = TP_UDP,
		.local = "192.0.2.1:5060",
		.branch = "z9hG4bK-out",
	};
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(fwd_request_build(parse(invite), &f, &out, &len), 0);
	assert_true(len > 60);
	assert_memory_equal(out, "INVITE sip:127.0.0.1:15530 SIP/2.0\r\n", 36);
	assert_non_null(strstr(out, "\r\nRoute: <sip:p3.example.com;lr>, <sip:dave@127.0.0.1:15599>\r\n"));
	free(out);
	f.routes = &one; /* the only Route: it becomes the Request-URI, the Request-URI the Route */
	assert_int_equal(fwd_request_build(parse(invite), &f, &out, &len), 0);
	assert_memory_equal(out, "INVITE sip:p2.example.com;transport=tcp SIP/2.0\r\n", 49);
	assert_non_null(strstr(out, "\r\nRoute: <sip:dave@127.0.0.1:15599>\r\n"));
	free(out);
}

/* No Max-Forwards: 70 is added (16.6 step 3). One transport, one Record-Route, carrying the flow token
 * of the connection the branch goes over; the binding's Path becomes the first Route (RFC 3327 5.3);
 * no Route set, no Route header. */
static void test_request_path_and_flow(void **state)
{
	static const char msg_in[] =
		"MESSAGE sip:bob@example.com SIP/2.0" CRLF
		"Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-b" CRLF
		"From: <sip:alice@example.com>;tag=1" CRLF
		"To: <sip:bob@example.com>" CRLF
		"Call-ID: c2" CRLF
		"CSeq: 7 MESSAGE" CRLF
		"Content-Length: 0" CRLF
		CRLF;
	struct fwd_routes none = { .n = 0 };
	struct fwd f = {
		.target = SLICE_LIT("sip:callee@10.0.0.9:5062"),
		.path = "<sip:edge.example.com;lr>",
		.routes = &none,
		.src_host = SLICE_LIT("10.0.0.1"),
		.src_port = 5060,
		.record_route = true,
		.proto = TP_TCP,
		.in_proto = TP_TCP,
		.flow = SLICE_LIT(";flow=abc"),
		.local = "192.0.2.1:5060",
		.branch = "z9hG4bK-m",
	};
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(fwd_request_build(parse(msg_in), &f, &out, &len), 0);
	assert_bytes(out, len,
		     "MESSAGE sip:callee@10.0.0.9:5062 SIP/2.0" CRLF
		     "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-m;rport" CRLF
		     "Record-Route: <sip:192.0.2.1:5060;transport=tcp;lr;flow=abc>" CRLF
		     "Route: <sip:edge.example.com;lr>" CRLF
		     "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK-b" CRLF
		     "From: <sip:alice@example.com>;tag=1" CRLF
		     "To: <sip:bob@example.com>" CRLF
		     "Call-ID: c2" CRLF
		     "CSeq: 7 MESSAGE" CRLF
		     "Max-Forwards: 70" CRLF
		     "Content-Length: 0" CRLF
		     CRLF);
	free(out);
}

/* With a key, both Record-Routes of a change of transport carry the dialog's signature (rrsig.c: the
 * first 8 bytes of SipHash-2-4-128 of the Call-ID, here under key 00..0f), before the flow token. */
static void test_request_signed_record_route(void **state)
{
	static const uint8_t key[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	static const char msg_in[] =
		"INVITE sip:bob@example.com SIP/2.0" CRLF
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-s" CRLF
		"From: <sip:alice@example.com>;tag=1" CRLF
		"To: <sip:bob@example.com>" CRLF
		"Call-ID: a84b4c76e66710@pc33.atlanta.com" CRLF
		"CSeq: 1 INVITE" CRLF
		"Content-Length: 0" CRLF
		CRLF;
	struct fwd_routes none = { .n = 0 };
	struct fwd f = {
		.target = SLICE_LIT("sip:bob@10.0.0.9:5062;transport=tcp"),
		.routes = &none,
		.src_host = SLICE_LIT("10.0.0.1"),
		.src_port = 5060,
		.record_route = true,
		.rr_key = key,
		.rr_pin = SLICE_LIT("\n10.0.0.1:5060"), /* the caller's Contact */
		.proto = TP_TCP,
		.in_proto = TP_UDP,
		.flow = SLICE_LIT(";flow=abc"),
		.local = "192.0.2.1:5060",
		.branch = "z9hG4bK-g",
	};
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(fwd_request_build(parse(msg_in), &f, &out, &len), 0);
	assert_bytes(out, len,
		     "INVITE sip:bob@10.0.0.9:5062;transport=tcp SIP/2.0" CRLF
		     "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK-g;rport" CRLF
		     "Record-Route: <sip:192.0.2.1:5060;transport=tcp;lr;sg=c92cafe3ad45c0cf;flow=abc>" CRLF
		     "Record-Route: <sip:192.0.2.1:5060;lr;sg=c92cafe3ad45c0cf>" CRLF
		     "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-s" CRLF
		     "From: <sip:alice@example.com>;tag=1" CRLF
		     "To: <sip:bob@example.com>" CRLF
		     "Call-ID: a84b4c76e66710@pc33.atlanta.com" CRLF
		     "CSeq: 1 INVITE" CRLF
		     "Max-Forwards: 70" CRLF
		     "Content-Length: 0" CRLF
		     CRLF);
	free(out);
}

/* RFC 3261 22.3: the credentials sipd checked (its realm, whatever the case of the header's name) are
 * consumed, those for another proxy's realm go on as they came; with no realm to consume, all go on. */
static void test_request_consumes_own_credentials(void **state)
{
	static const char inv[] =
		"INVITE sip:bob@example.com SIP/2.0" CRLF
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-c" CRLF
		"Max-Forwards: 70" CRLF
		"From: <sip:alice@example.com>;tag=1" CRLF
		"To: <sip:bob@example.com>" CRLF
		"Call-ID: c3" CRLF
		"CSeq: 2 INVITE" CRLF
		"Proxy-Authorization: Digest username=\"alice\", realm=\"far.example\", nonce=\"n1\", "
		"uri=\"sip:bob@example.com\", response=\"00\"" CRLF
		"proxy-authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n2\", "
		"uri=\"sip:bob@example.com\", response=\"11\"" CRLF
		"Content-Length: 0" CRLF
		CRLF;
	static const char head[] =
		"INVITE sip:bob@10.0.0.9 SIP/2.0" CRLF
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-p;rport" CRLF
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-c" CRLF
		"Max-Forwards: 69" CRLF
		"From: <sip:alice@example.com>;tag=1" CRLF
		"To: <sip:bob@example.com>" CRLF
		"Call-ID: c3" CRLF
		"CSeq: 2 INVITE" CRLF
		"Proxy-Authorization: Digest username=\"alice\", realm=\"far.example\", nonce=\"n1\", "
		"uri=\"sip:bob@example.com\", response=\"00\"" CRLF;
	struct fwd_routes none = { .n = 0 };
	struct fwd f = {
		.target = SLICE_LIT("sip:bob@10.0.0.9"),
		.routes = &none,
		.src_host = SLICE_LIT("10.0.0.1"),
		.src_port = 5060,
		.consume_realm = SLICE_LIT("example.com"),
		.proto = TP_UDP,
		.in_proto = TP_UDP,
		.local = "192.0.2.1:5060",
		.branch = "z9hG4bK-p",
	};
	char want[2048];
	char *out = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(fwd_request_build(parse(inv), &f, &out, &len), 0);
	snprintf(want, sizeof(want), "%s%s", head, "Content-Length: 0" CRLF CRLF);
	assert_bytes(out, len, want);
	free(out);
	f.consume_realm = SLICE_NULL;
	assert_int_equal(fwd_request_build(parse(inv), &f, &out, &len), 0);
	snprintf(want, sizeof(want), "%s%s", head,
		 "proxy-authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n2\", "
		 "uri=\"sip:bob@example.com\", response=\"11\"" CRLF "Content-Length: 0" CRLF CRLF);
	assert_bytes(out, len, want);
	free(out);
}

/* 16.7 step 3: sipd's Via goes, whether it has a line of its own or shares one with the next Via; the
 * CRLFs before the status line (7.5) are not passed on; the rest is unchanged. */
static void test_response_strip_via(void **state)
{
	static const char own_line[] =
		CRLF CRLF
		"SIP/2.0 180 Ringing" CRLF
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-out" CRLF
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a;rport=40000;received=203.0.113.5" CRLF
		"To: <sip:bob@example.com>;tag=b" CRLF
		"Content-Length: 0" CRLF
		CRLF;
	static const char shared[] =
		"SIP/2.0 200 OK" CRLF
		"v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-out ,SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a" CRLF
		"To: <sip:bob@example.com>;tag=b" CRLF
		"Content-Length: 2" CRLF
		CRLF
		"ok";
	size_t len = 0;
	char *out;

	(void)state;
	out = fwd_strip_via(parse(own_line), NULL, SLICE_NULL, &len);
	assert_non_null(out);
	assert_bytes(out, len,
		     "SIP/2.0 180 Ringing" CRLF
		     "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a;rport=40000;received=203.0.113.5" CRLF
		     "To: <sip:bob@example.com>;tag=b" CRLF
		     "Content-Length: 0" CRLF
		     CRLF);
	free(out);
	out = fwd_strip_via(parse(shared), NULL, SLICE_NULL, &len);
	assert_non_null(out);
	assert_bytes(out, len,
		     "SIP/2.0 200 OK" CRLF
		     "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a" CRLF
		     "To: <sip:bob@example.com>;tag=b" CRLF
		     "Content-Length: 2" CRLF
		     CRLF
		     "ok");
	free(out);
}

/* 16.7 step 4: the signatures of sipd's Record-Routes are written over in the copy going upstream,
 * wherever the Via removal moved them; the other values (another proxy's sg among them) stay as they came. */
static void test_response_patched_record_route(void **state)
{
	static const char resp[] =
		"SIP/2.0 200 OK" CRLF
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-out" CRLF
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a" CRLF
		"Record-Route: <sip:p2.example;lr;sg=1111111111111111>, <sip:192.0.2.1:5060;lr;sg=2222222222222222>" CRLF
		"Record-Route:   <sip:192.0.2.1:5060;transport=tcp;lr;sg=3333333333333333>" CRLF
		"To: <sip:bob@example.com>;tag=b" CRLF
		"Content-Length: 0" CRLF
		CRLF;
	const struct sip_msg *m = parse(resp);
	struct fwd_patches patches = { .n = 2 };
	size_t len = 0;
	char *out;

	(void)state;
	patches.p[0].at = strstr(m->buf, "2222");
	memcpy(patches.p[0].hex, "abcdef0123456789", RRSIG_HEX);
	patches.p[1].at = strstr(m->buf, "3333");
	memcpy(patches.p[1].hex, "0123456789abcdef", RRSIG_HEX);
	out = fwd_strip_via(m, &patches, SLICE_NULL, &len);
	assert_non_null(out);
	assert_bytes(out, len,
		     "SIP/2.0 200 OK" CRLF
		     "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a" CRLF
		     "Record-Route: <sip:p2.example;lr;sg=1111111111111111>, <sip:192.0.2.1:5060;lr;sg=abcdef0123456789>" CRLF
		     "Record-Route:   <sip:192.0.2.1:5060;transport=tcp;lr;sg=0123456789abcdef>" CRLF
		     "To: <sip:bob@example.com>;tag=b" CRLF
		     "Content-Length: 0" CRLF
		     CRLF);
	free(out);
}

/* 16.7 step 7: the best 407 goes up with every branch's challenge: its own Proxy-Authenticate lines are
 * dropped and the merged ones added at the end of the headers. */
static void test_response_merged_challenges(void **state)
{
	static const char resp[] =
		"SIP/2.0 407 Proxy Authentication Required" CRLF
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-out" CRLF
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a" CRLF
		"Proxy-Authenticate: Digest realm=\"a\", nonce=\"1\"" CRLF
		"To: <sip:bob@example.com>;tag=b" CRLF
		"Content-Length: 0" CRLF
		CRLF;
	const char *merged = "Proxy-Authenticate: Digest realm=\"a\", nonce=\"1\"" CRLF
			     "Proxy-Authenticate: Digest realm=\"b\", nonce=\"2\"" CRLF;
	size_t len = 0;
	char *out;

	(void)state;
	out = fwd_response_rewrite(parse(resp), false, SIP_HDR_PROXY_AUTHENTICATE, merged, NULL, SLICE_NULL, &len);
	assert_non_null(out);
	assert_bytes(out, len,
		     "SIP/2.0 407 Proxy Authentication Required" CRLF
		     "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-out" CRLF
		     "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a" CRLF
		     "To: <sip:bob@example.com>;tag=b" CRLF
		     "Content-Length: 0" CRLF
		     "Proxy-Authenticate: Digest realm=\"a\", nonce=\"1\"" CRLF
		     "Proxy-Authenticate: Digest realm=\"b\", nonce=\"2\"" CRLF
		     CRLF);
	free(out);
}

/* A party behind a NAT: the ;nat= token goes into its Contact's URI, which becomes a name-addr (what followed
 * an addr-spec were the field's parameters) and keeps its display name, URI parameters (the token before
 * the URI's headers) and field parameters; a field of two values, a Contact with a nat parameter of its
 * own, and a *, go as they came. Requests (16.6) and responses going upstream alike. */
static void test_contact_nat(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "<sip:bob@10.0.0.9:5060>", "<sip:bob@10.0.0.9:5060;nat=T>" },
		{ "sip:bob@10.0.0.9;transport=udp;expires=60", "<sip:bob@10.0.0.9;nat=T>;transport=udp;expires=60" },
		{ "\"Bob\" <sip:bob@10.0.0.9;ob?X-A=b>;+sip.instance=\"<urn:x>\"",
		  "\"Bob\" <sip:bob@10.0.0.9;ob;nat=T?X-A=b>;+sip.instance=\"<urn:x>\"" },
		{ "sip:bob@10.0.0.9", "<sip:bob@10.0.0.9;nat=T>" },
		{ "<sip:a@10.0.0.9>, <sip:b@10.0.0.8>", NULL },
		{ "<sip:bob@10.0.0.9;nat=X>", NULL },
		{ "*", NULL },
	};
	struct fwd f = {
		.target = SLICE_LIT("sip:bob@192.0.2.9"),
		.src_host = SLICE_LIT("203.0.113.5"),
		.src_port = 4000,
		.contact_nat = SLICE_LIT(";nat=T"),
		.local = "192.0.2.1:5060",
		.branch = "z9hG4bK-x",
	};
	char text[1024], want[256], *out;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
			 "INVITE sip:bob@example.com SIP/2.0" CRLF
			 "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a" CRLF
			 "From: <sip:alice@example.com>;tag=1" CRLF
			 "To: <sip:bob@example.com>" CRLF
			 "Call-ID: c1" CRLF
			 "CSeq: 1 INVITE" CRLF
			 "m: %s" CRLF
			 "Content-Length: 0" CRLF
			 CRLF,
			 cases[i].in);
		snprintf(want, sizeof(want), cases[i].out ? "Contact: %s" CRLF : "m: %s" CRLF,
			 cases[i].out ? cases[i].out : cases[i].in);
		assert_int_equal(fwd_request_build(parse(text), &f, &out, &len), 0);
		if (!memmem(out, len, want, strlen(want)))
			fail_msg("case %zu: no '%s' in\n%.*s", i, want, (int)len, out);
		free(out);
	}
	out = fwd_strip_via(parse("SIP/2.0 200 OK" CRLF
				  "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-x" CRLF
				  "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a" CRLF
				  "To: <sip:bob@example.com>;tag=b" CRLF
				  "Contact: <sip:bob@10.0.0.9:5060>;expires=60" CRLF
				  "Content-Length: 0" CRLF
				  CRLF),
			    NULL, SLICE_LIT(";nat=T"), &len);
	assert_non_null(out);
	assert_bytes(out, len,
		     "SIP/2.0 200 OK" CRLF
		     "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-a" CRLF
		     "To: <sip:bob@example.com>;tag=b" CRLF
		     "Contact: <sip:bob@10.0.0.9:5060;nat=T>;expires=60" CRLF
		     "Content-Length: 0" CRLF
		     CRLF);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contact_nat),
		cmocka_unit_test(test_request_transport_change),
		cmocka_unit_test(test_request_strict_next_hop),
		cmocka_unit_test(test_request_path_and_flow),
		cmocka_unit_test(test_request_signed_record_route),
		cmocka_unit_test(test_request_consumes_own_credentials),
		cmocka_unit_test(test_response_strip_via),
		cmocka_unit_test(test_response_patched_record_route),
		cmocka_unit_test(test_response_merged_challenges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
