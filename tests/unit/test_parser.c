/* test_parser.c: the SIP message engine (sip/msg.h): header ids and compact forms, exact value slices,
 * folding, list splitting, the Via / name-addr / Contact / CSeq value parsers, the RFC 3261 8.2.2
 * checks and stream framing. Every message is parsed from a heap block of exactly its size. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/msg.h"

static bool slice_is(struct slice s, const char *want)
{
	size_t l = strlen(want);

	if (s.l == l && (l == 0 || (s.p && memcmp(s.p, want, l) == 0)))
		return true;
	print_error("slice '%.*s' (len %zu), want '%s' (len %zu)\n", (int)s.l, s.p ? s.p : "", s.l, want, l);
	return false;
}

#define assert_slice(s, want) assert_true(slice_is((s), (want)))

/* Messages are written with \n; msg() turns them into CRLF in an exact-size heap block. */
static char *held[64];
static size_t nheld;
static struct sip_msg M; /* the header table is large: keep it off the stack */

static const char *crlf(const char *text, size_t *lenp)
{
	size_t l = strlen(text), n = l, o = 0;
	char *p;

	for (size_t i = 0; i < l; i++)
		n += text[i] == '\n';
	p = malloc(n ? n : 1);
	assert_non_null(p);
	for (size_t i = 0; i < l; i++) {
		if (text[i] == '\n')
			p[o++] = '\r';
		p[o++] = text[i];
	}
	assert_true(nheld < sizeof(held) / sizeof(held[0]));
	held[nheld++] = p;
	*lenp = n;
	return p;
}

static int parse(const char *text, struct sip_error *err)
{
	size_t len;
	const char *buf = crlf(text, &len);

	return sip_msg_parse(&M, buf, len, err);
}

/* parse + check; returns the status of the failure, or -1 when both pass */
static int verdict(const char *text)
{
	struct sip_error err = { 999, NULL };
	int rc = parse(text, &err);

	if (rc == 0)
		rc = sip_msg_check(&M, &err);
	if (rc == 0)
		return -1;
	assert_int_equal(rc, EBADMSG);
	if (err.status >= 400)
		assert_true(err.reason && err.reason[0]);
	return err.status;
}

static int release(void **state)
{
	(void)state;
	while (nheld)
		free(held[--nheld]);
	return 0;
}

#define BASE_VIA "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKunit1\n"
#define BASE_FROM "From: <sip:ana@example.com>;tag=f1\n"
#define BASE_TO "To: <sip:bo@example.com>\n"
#define BASE_CID "Call-ID: unit-1@example.com\n"
#define BASE_CSEQ "CSeq: 1 OPTIONS\n"
#define BASE_MF "Max-Forwards: 70\n"
#define BASE_CL "Content-Length: 0\n"
#define OPT_LINE "OPTIONS sip:bo@example.com SIP/2.0\n"

/* ---- names, ids, methods ---- */

static void test_hdr_lookup(void **state)
{
	static const struct {
		const char *name;
		enum sip_hdr_id id;
	} t[] = {
		{ "Via", SIP_HDR_VIA }, { "vIA", SIP_HDR_VIA }, { "v", SIP_HDR_VIA }, { "V", SIP_HDR_VIA },
		{ "From", SIP_HDR_FROM }, { "f", SIP_HDR_FROM }, { "To", SIP_HDR_TO }, { "t", SIP_HDR_TO },
		{ "Call-ID", SIP_HDR_CALL_ID }, { "call-id", SIP_HDR_CALL_ID }, { "i", SIP_HDR_CALL_ID },
		{ "CSeq", SIP_HDR_CSEQ }, { "CSEQ", SIP_HDR_CSEQ }, { "Max-Forwards", SIP_HDR_MAX_FORWARDS },
		{ "Content-Length", SIP_HDR_CONTENT_LENGTH }, { "l", SIP_HDR_CONTENT_LENGTH },
		{ "Content-Type", SIP_HDR_CONTENT_TYPE }, { "c", SIP_HDR_CONTENT_TYPE },
		{ "Content-Encoding", SIP_HDR_CONTENT_ENCODING }, { "e", SIP_HDR_CONTENT_ENCODING },
		{ "Contact", SIP_HDR_CONTACT }, { "m", SIP_HDR_CONTACT }, { "M", SIP_HDR_CONTACT },
		{ "Subject", SIP_HDR_SUBJECT }, { "s", SIP_HDR_SUBJECT },
		{ "Supported", SIP_HDR_SUPPORTED }, { "k", SIP_HDR_SUPPORTED },
		{ "Event", SIP_HDR_EVENT }, { "o", SIP_HDR_EVENT },
		{ "Allow-Events", SIP_HDR_ALLOW_EVENTS }, { "u", SIP_HDR_ALLOW_EVENTS },
		{ "Refer-To", SIP_HDR_REFER_TO }, { "r", SIP_HDR_REFER_TO },
		{ "Referred-By", SIP_HDR_REFERRED_BY }, { "b", SIP_HDR_REFERRED_BY },
		{ "Session-Expires", SIP_HDR_SESSION_EXPIRES }, { "x", SIP_HDR_SESSION_EXPIRES },
		{ "Identity", SIP_HDR_IDENTITY }, { "y", SIP_HDR_IDENTITY },
		{ "Record-Route", SIP_HDR_RECORD_ROUTE }, { "Route", SIP_HDR_ROUTE },
		{ "WWW-Authenticate", SIP_HDR_WWW_AUTHENTICATE }, { "www-authenticate", SIP_HDR_WWW_AUTHENTICATE },
		{ "Proxy-Authorization", SIP_HDR_PROXY_AUTHORIZATION }, { "Min-Expires", SIP_HDR_MIN_EXPIRES },
		{ "Proxy-Require", SIP_HDR_PROXY_REQUIRE }, { "Require", SIP_HDR_REQUIRE },
		{ "Unsupported", SIP_HDR_UNSUPPORTED }, { "Path", SIP_HDR_PATH }, { "Expires", SIP_HDR_EXPIRES },
		{ "X-Via", SIP_HDR_OTHER }, { "Vi", SIP_HDR_OTHER }, { "Viaa", SIP_HDR_OTHER },
		{ "z", SIP_HDR_OTHER }, { "", SIP_HDR_OTHER }, { "Content", SIP_HDR_OTHER },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		enum sip_hdr_id id = sip_hdr_lookup(slice_cstr(t[i].name));

		if (id != t[i].id)
			print_error("'%s' -> %d, want %d\n", t[i].name, id, t[i].id);
		assert_int_equal(id, t[i].id);
	}
	/* every long name, in upper case too; a one-byte change anywhere makes it another (or no) name,
	 * whatever word of the comparison the byte falls in */
	for (int id = 1; id < SIP_HDR_COUNT; id++) {
		char buf[32];
		size_t n = strlen(sip_hdr_name((enum sip_hdr_id)id));

		assert_true(n < sizeof(buf));
		memcpy(buf, sip_hdr_name((enum sip_hdr_id)id), n);
		assert_int_equal(sip_hdr_lookup(slice_make(buf, n)), id);
		for (size_t k = 0; k < n; k++)
			buf[k] = (char)toupper((unsigned char)buf[k]);
		assert_int_equal(sip_hdr_lookup(slice_make(buf, n)), id);
		for (size_t k = 0; k < n; k++) {
			char keep = buf[k];

			buf[k] = buf[k] == 'Q' ? 'Z' : 'Q';
			assert_int_not_equal(sip_hdr_lookup(slice_make(buf, n)), id);
			buf[k] = keep;
		}
		buf[n] = 'S';
		assert_int_not_equal(sip_hdr_lookup(slice_make(buf, n + 1)), id);
	}
	assert_string_equal(sip_hdr_name(SIP_HDR_CALL_ID), "Call-ID");
	assert_string_equal(sip_hdr_name(SIP_HDR_CSEQ), "CSeq");
	assert_string_equal(sip_hdr_name(SIP_HDR_WWW_AUTHENTICATE), "WWW-Authenticate");
	assert_string_equal(sip_hdr_name(SIP_HDR_MAX_FORWARDS), "Max-Forwards");
}

static void test_method_lookup(void **state)
{
	(void)state;
	assert_int_equal(sip_method_lookup(SLICE_LIT("INVITE")), SIP_METHOD_INVITE);
	assert_int_equal(sip_method_lookup(SLICE_LIT("REGISTER")), SIP_METHOD_REGISTER);
	assert_int_equal(sip_method_lookup(SLICE_LIT("UPDATE")), SIP_METHOD_UPDATE);
	/* RFC 3261 7.1: the method is case-sensitive */
	assert_int_equal(sip_method_lookup(SLICE_LIT("invite")), SIP_METHOD_UNKNOWN);
	assert_int_equal(sip_method_lookup(SLICE_LIT("INVITEX")), SIP_METHOD_UNKNOWN);
	assert_int_equal(sip_method_lookup(SLICE_LIT("INVIT")), SIP_METHOD_UNKNOWN);
	assert_int_equal(sip_method_lookup(SLICE_LIT("")), SIP_METHOD_UNKNOWN);
	/* every method by its name, and the names that share a first letter kept apart */
	for (int m = SIP_METHOD_UNKNOWN + 1; m < SIP_METHOD_COUNT; m++)
		assert_int_equal(sip_method_lookup(slice_cstr(sip_method_name((enum sip_method)m))), m);
	assert_int_equal(sip_method_lookup(SLICE_LIT("INFORM")), SIP_METHOD_UNKNOWN);
	assert_int_equal(sip_method_lookup(SLICE_LIT("PRACKS")), SIP_METHOD_UNKNOWN);
	assert_int_equal(sip_method_lookup(SLICE_LIT("REFERS")), SIP_METHOD_UNKNOWN);
	assert_int_equal(sip_method_lookup(SLICE_LIT("ACKS")), SIP_METHOD_UNKNOWN);
	assert_string_equal(sip_method_name(SIP_METHOD_PRACK), "PRACK");
	assert_string_equal(sip_method_name(SIP_METHOD_OPTIONS), "OPTIONS");
}

static void test_token_valid(void **state)
{
	(void)state;
	assert_true(sip_token_valid(SLICE_LIT("timer")));
	assert_true(sip_token_valid(SLICE_LIT("100rel")));
	assert_true(sip_token_valid(SLICE_LIT("a.b-c!%*_+`'~")));
	assert_false(sip_token_valid(SLICE_LIT("")));
	assert_false(sip_token_valid(SLICE_LIT("a b")));
	assert_false(sip_token_valid(SLICE_LIT("a,b")));
	assert_false(sip_token_valid(SLICE_LIT("a;b")));
	assert_false(sip_token_valid(SLICE_LIT("a\"b")));
	assert_false(sip_token_valid(SLICE_LIT("a/b")));
	assert_false(sip_token_valid(slice_make("a\0b", 3)));
}

/* ---- whole messages ---- */

static void test_request_fields(void **state)
{
	struct sip_error err;
	const char *text = "INVITE sip:bo@example.com;transport=udp SIP/2.0\n"
			   "Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK74bf9;rport\n"
			   "Max-Forwards: 69\n"
			   "From: \"Ana A.\" <sip:ana@example.com>;tag=9fxced76sl\n"
			   "To: Bo <sip:bo@example.com>\n"
			   "Call-ID: 3848276298220188511@192.0.2.1\n"
			   "CSeq: 314 INVITE\n"
			   "Contact: <sip:ana@192.0.2.1:5062>\n"
			   "Content-Type: text/plain\n"
			   "Content-Length: 5\n"
			   "\n"
			   "hello";

	(void)state;
	assert_int_equal(parse(text, &err), 0);
	assert_int_equal(sip_msg_check(&M, &err), 0);
	assert_true(M.is_request);
	assert_slice(M.method, "INVITE");
	assert_int_equal(M.mid, SIP_METHOD_INVITE);
	assert_slice(M.ruri, "sip:bo@example.com;transport=udp");
	assert_slice(M.version, "SIP/2.0");
	assert_int_equal(M.nhdrs, 9);
	assert_int_equal(M.hdrs[0].id, SIP_HDR_VIA);
	assert_slice(M.hdrs[0].name, "Via");
	assert_slice(M.hdrs[0].value, "SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK74bf9;rport");
	assert_int_equal(M.first[SIP_HDR_VIA], 1);
	assert_int_equal(M.first[SIP_HDR_CONTACT], 7);
	assert_int_equal(M.first[SIP_HDR_ROUTE], 0);
	assert_int_equal(M.count[SIP_HDR_CSEQ], 1);
	assert_slice(M.via.transport, "UDP");
	assert_slice(M.via.host, "192.0.2.1");
	assert_int_equal(M.via.port, 5062);
	assert_slice(M.via.branch, "z9hG4bK74bf9");
	assert_true(M.via.has_rport);
	assert_int_equal(M.via.rport.l, 0);
	assert_slice(M.call_id, "3848276298220188511@192.0.2.1");
	assert_int_equal(M.cseq.num, 314);
	assert_slice(M.cseq.method, "INVITE");
	assert_int_equal(M.cseq.mid, SIP_METHOD_INVITE);
	assert_slice(M.from.display, "Ana A.");
	assert_slice(M.from.uri, "sip:ana@example.com");
	assert_slice(M.from.tag, "9fxced76sl");
	assert_slice(M.to.display, "Bo");
	assert_slice(M.to.uri, "sip:bo@example.com");
	assert_int_equal(M.to.tag.l, 0);
	assert_int_equal(M.max_forwards, 69);
	assert_int_equal(M.content_length, 5);
	assert_slice(M.body, "hello");
	assert_int_equal(M.hdr_len, M.len - 5);
	assert_ptr_equal(sip_msg_hdr(&M, SIP_HDR_CONTENT_TYPE), &M.hdrs[7]);
	assert_null(sip_msg_hdr(&M, SIP_HDR_ROUTE));
}

static void test_response_fields(void **state)
{
	struct sip_error err;

	(void)state;
	assert_int_equal(parse("SIP/2.0 486 Busy Here Right Now\n" BASE_VIA BASE_FROM
			       "To: <sip:bo@example.com>;tag=t2\n" BASE_CID BASE_CSEQ BASE_CL "\n", &err), 0);
	assert_int_equal(sip_msg_check(&M, &err), 0);
	assert_false(M.is_request);
	assert_int_equal(M.status, 486);
	assert_slice(M.reason, "Busy Here Right Now");
	assert_slice(M.version, "SIP/2.0");
	assert_slice(M.to.tag, "t2");
	assert_int_equal(M.max_forwards, -1);

	/* Reason-Phrase may be empty, but the SP before it is not optional */
	assert_int_equal(parse("SIP/2.0 180 \n" BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n", &err), 0);
	assert_int_equal(M.status, 180);
	assert_int_equal(M.reason.l, 0);
	assert_int_equal(M.content_length, -1);
}

static void test_response_bad_status_dropped(void **state)
{
	static const char *const lines[] = {
		"SIP/2.0 99 Low\n", "SIP/2.0 700 High\n", "SIP/2.0 2000 Long\n", "SIP/2.0 2x0 OK\n",
		"SIP/2.0  200 OK\n", "SIP/2.0\n", "SIP/7.0 200 OK\n",
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		snprintf(text, sizeof(text), "%s" BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ BASE_CL "\n", lines[i]);
		int st = verdict(text);

		if (st != 0)
			print_error("'%s' -> %d, want 0 (never answer a response)\n", lines[i], st);
		assert_int_equal(st, 0);
	}
}

/* 700 to 999 parse (the Via and CSeq still name a client transaction, which takes the answer as
 * invalid: 502 from the proxy) but fail the check, without a status to answer with */
static void test_response_status_out_of_range(void **state)
{
	struct sip_error err;

	(void)state;
	assert_int_equal(parse("SIP/2.0 700 High\n" BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ BASE_CL "\n", &err), 0);
	assert_false(M.is_request);
	assert_int_equal(M.status, 700);
	assert_slice(M.via.branch, "z9hG4bKunit1");
	assert_int_equal(sip_msg_check(&M, &err), EBADMSG);
	assert_int_equal(err.status, 0);
	assert_string_equal(err.reason, "Status code out of range");
	assert_int_equal(parse("SIP/2.0 999 Higher\n" BASE_VIA "\n", &err), 0);
	assert_int_equal(M.status, 999);
}

static void test_compact_message(void **state)
{
	struct sip_error err;
	const struct sip_hdr *h;
	const char *text = "MESSAGE sip:bo@example.com SIP/2.0\n"
			   "v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKc1\n"
			   "f: <sip:ana@example.com>;tag=a\n"
			   "t: <sip:bo@example.com>\n"
			   "i: compact@example.com\n"
			   "CSeq: 2 MESSAGE\n"
			   "m: <sip:ana@192.0.2.1>\n"
			   "k: path\n"
			   "s: hi\n"
			   "c: text/plain\n"
			   "e: identity\n"
			   "l: 2\n"
			   "\n"
			   "ok";

	(void)state;
	assert_int_equal(parse(text, &err), 0);
	assert_int_equal(sip_msg_check(&M, &err), 0);
	assert_slice(M.via.branch, "z9hG4bKc1");
	assert_slice(M.call_id, "compact@example.com");
	assert_int_equal(M.content_length, 2);
	assert_slice(M.body, "ok");
	assert_int_equal(M.hdrs[0].id, SIP_HDR_VIA);
	assert_slice(M.hdrs[0].name, "v");
	assert_int_equal(M.hdrs[9].id, SIP_HDR_CONTENT_ENCODING);
	/* compact forms and long names find each other */
	h = sip_msg_hdr_byname(&M, SLICE_LIT("Via"));
	assert_ptr_equal(h, &M.hdrs[0]);
	h = sip_msg_hdr_byname(&M, SLICE_LIT("content-type"));
	assert_ptr_equal(h, &M.hdrs[8]);
	h = sip_msg_hdr_byname(&M, SLICE_LIT("S"));
	assert_ptr_equal(h, &M.hdrs[7]);
	assert_slice(h->value, "hi");
	assert_null(sip_msg_hdr_byname(&M, SLICE_LIT("Route")));
}

static void test_folding_and_whitespace(void **state)
{
	struct sip_error err;
	const struct sip_hdr *h;
	const char *text = "REGISTER sip:example.com SIP/2.0\n"
			   "Via: SIP/2.0/UDP 192.0.2.1\n"
			   " ;branch=z9hG4bKfold\n"
			   "From\t:\t<sip:ana@example.com>\n"
			   "\t;tag=ff\n"
			   "To :<sip:ana@example.com>\n"
			   "Call-ID:   fold@example.com   \n"
			   "CSeq: 9\n"
			   "  REGISTER\n"
			   "Subject: one\n"
			   " two\n"
			   "\tthree\n"
			   "Contact: <sip:ana@192.0.2.1>,\n"
			   " <sip:ana@192.0.2.2>\n"
			   "Organization:\n"
			   "Content-Length:\t0\t\n"
			   "\n";

	(void)state;
	assert_int_equal(parse(text, &err), 0);
	assert_int_equal(sip_msg_check(&M, &err), 0);
	assert_int_equal(M.nhdrs, 9);
	assert_slice(M.via.host, "192.0.2.1");
	assert_slice(M.via.branch, "z9hG4bKfold");
	assert_slice(M.hdrs[1].name, "From");
	assert_slice(M.from.tag, "ff");
	assert_slice(M.hdrs[2].name, "To");
	assert_slice(M.hdrs[2].value, "<sip:ana@example.com>");
	assert_slice(M.call_id, "fold@example.com");
	assert_int_equal(M.cseq.num, 9);
	assert_slice(M.cseq.method, "REGISTER");
	h = sip_msg_hdr(&M, SIP_HDR_SUBJECT);
	assert_non_null(h);
	/* folded values keep their CRLF+WSP; value parsers read it as LWS */
	assert_slice(h->value, "one\r\n two\r\n\tthree");
	h = sip_msg_hdr_byname(&M, SLICE_LIT("organization"));
	assert_non_null(h);
	assert_int_equal(h->value.l, 0);
	assert_int_equal(M.content_length, 0);

	struct sip_list_iter it;
	struct slice e;
	sip_list_begin(&it, &M, SIP_HDR_CONTACT);
	assert_true(sip_list_iter_next(&it, &e));
	assert_slice(e, "<sip:ana@192.0.2.1>");
	assert_true(sip_list_iter_next(&it, &e));
	assert_slice(e, "<sip:ana@192.0.2.2>");
	assert_false(sip_list_iter_next(&it, &e));
}

static void test_unknown_and_repeated_headers(void **state)
{
	struct sip_error err;
	const struct sip_hdr *h;
	struct sip_list_iter it;
	struct slice e;
	const char *text = OPT_LINE BASE_VIA
			   "Route: <sip:p1.example.net;lr>\n"
			   "X-Odd: keep \"all\" of <this>, exactly ; as=is\n"
			   BASE_FROM BASE_TO
			   "Route: \"edge, two\" <sip:p2.example.net;lr>, <sip:p3.example.net;lr>\n"
			   BASE_CID BASE_CSEQ
			   "x-odd: again\n"
			   "Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKsecond\n"
			   BASE_MF BASE_CL "\n";

	(void)state;
	assert_int_equal(parse(text, &err), 0);
	assert_int_equal(sip_msg_check(&M, &err), 0);
	h = sip_msg_hdr_byname(&M, SLICE_LIT("X-ODD"));
	assert_non_null(h);
	assert_int_equal(h->id, SIP_HDR_OTHER);
	assert_slice(h->name, "X-Odd");
	assert_slice(h->value, "keep \"all\" of <this>, exactly ; as=is");
	assert_slice(M.hdrs[8].name, "x-odd");
	assert_slice(M.hdrs[8].value, "again");

	assert_int_equal(M.count[SIP_HDR_ROUTE], 2);
	assert_int_equal(M.count[SIP_HDR_VIA], 2);
	h = sip_msg_hdr(&M, SIP_HDR_ROUTE);
	assert_ptr_equal(h, &M.hdrs[1]);
	h = sip_msg_hdr_next(&M, h);
	assert_ptr_equal(h, &M.hdrs[5]);
	assert_null(sip_msg_hdr_next(&M, h));
	/* the topmost Via is the first element of the first Via field */
	assert_slice(M.via.branch, "z9hG4bKunit1");

	sip_list_begin(&it, &M, SIP_HDR_ROUTE);
	assert_true(sip_list_iter_next(&it, &e));
	assert_slice(e, "<sip:p1.example.net;lr>");
	assert_true(sip_list_iter_next(&it, &e));
	assert_slice(e, "\"edge, two\" <sip:p2.example.net;lr>");
	assert_true(sip_list_iter_next(&it, &e));
	assert_slice(e, "<sip:p3.example.net;lr>");
	assert_false(sip_list_iter_next(&it, &e));

	sip_list_begin(&it, &M, SIP_HDR_RECORD_ROUTE);
	assert_false(sip_list_iter_next(&it, &e));
	/* sip_list_count gives what the iterator gives: a line without a comma is one element */
	assert_int_equal(sip_list_count(&M, SIP_HDR_ROUTE), 3);
	assert_int_equal(sip_list_count(&M, SIP_HDR_VIA), 2);
	assert_int_equal(sip_list_count(&M, SIP_HDR_RECORD_ROUTE), 0);
}

static void test_list_next(void **state)
{
	struct slice rest = SLICE_LIT("\"a, b\" <sip:x@example.com>;q=1, <sip:p,q@example.com>, ,  sip:z@example.com ,"
				      "\"say \\\"hi, there\\\"\" <sip:w@example.com>,<sip:v@example.com;x=\"1,2\">");
	struct slice e;

	(void)state;
	assert_true(sip_list_next(&rest, &e));
	assert_slice(e, "\"a, b\" <sip:x@example.com>;q=1");
	assert_true(sip_list_next(&rest, &e));
	assert_slice(e, "<sip:p,q@example.com>");
	assert_true(sip_list_next(&rest, &e)); /* the empty element is skipped */
	assert_slice(e, "sip:z@example.com");
	assert_true(sip_list_next(&rest, &e));
	assert_slice(e, "\"say \\\"hi, there\\\"\" <sip:w@example.com>");
	assert_true(sip_list_next(&rest, &e));
	assert_slice(e, "<sip:v@example.com;x=\"1,2\">");
	assert_false(sip_list_next(&rest, &e));

	rest = SLICE_LIT("  ,, ");
	assert_false(sip_list_next(&rest, &e));
	rest = SLICE_LIT("");
	assert_false(sip_list_next(&rest, &e));
	rest = SLICE_LIT("SIP/2.0/UDP a;branch=z9hG4bK1 ,SIP/2.0/UDP b;branch=z9hG4bK2");
	assert_true(sip_list_next(&rest, &e));
	assert_slice(e, "SIP/2.0/UDP a;branch=z9hG4bK1");
	assert_true(sip_list_next(&rest, &e));
	assert_slice(e, "SIP/2.0/UDP b;branch=z9hG4bK2");
	assert_false(sip_list_next(&rest, &e));
}

/* ---- Via ---- */

static void test_via_fields(void **state)
{
	struct sip_via v;
	struct slice s = SLICE_LIT("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776;received=192.0.2.99;"
				   "rport=5062;maddr=224.0.0.1;ttl=16");

	(void)state;
	assert_int_equal(sip_via_parse(&v, s), 0);
	assert_slice(v.proto, "SIP/2.0");
	assert_slice(v.transport, "UDP");
	assert_slice(v.host, "192.0.2.1");
	assert_int_equal(v.port, 5060);
	assert_slice(v.params, "branch=z9hG4bK776;received=192.0.2.99;rport=5062;maddr=224.0.0.1;ttl=16");
	assert_slice(v.branch, "z9hG4bK776");
	assert_slice(v.received, "192.0.2.99");
	assert_true(v.has_rport);
	assert_slice(v.rport, "5062");
	assert_slice(v.maddr, "224.0.0.1");
	assert_slice(v.ttl, "16");
	assert_ptr_equal(v.raw.p, s.p);
	assert_int_equal(v.raw.l, s.l);
}

static void test_via_rport_and_hosts(void **state)
{
	struct sip_via v;

	(void)state;
	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/TCP host.example.com;rport;branch=z9hG4bKa")), 0);
	assert_slice(v.host, "host.example.com");
	assert_int_equal(v.port, 0);
	assert_true(v.has_rport);
	assert_int_equal(v.rport.l, 0);
	assert_slice(v.branch, "z9hG4bKa");

	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/UDP host.example.com;branch=z9hG4bKb")), 0);
	assert_false(v.has_rport);
	assert_int_equal(v.received.l, 0);

	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKc;"
						     "received=2001:db8::9;maddr=[2001:db8::2]")), 0);
	assert_slice(v.host, "[2001:db8::1]");
	assert_int_equal(v.port, 5070);
	assert_slice(v.received, "2001:db8::9");
	assert_slice(v.maddr, "[2001:db8::2]");

	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/TLS [2001:db8::3];branch=z9hG4bKd")), 0);
	assert_slice(v.host, "[2001:db8::3]");
	assert_int_equal(v.port, 0);

	/* LWS is allowed around '/', ';' and '=' and between protocol and sent-by */
	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP / 2.0 / TLS   proxy.example.net:5061 ; branch = z9hG4bKe ;rport")), 0);
	assert_slice(v.transport, "TLS");
	assert_slice(v.host, "proxy.example.net");
	assert_int_equal(v.port, 5061);
	assert_slice(v.branch, "z9hG4bKe");
	assert_true(v.has_rport);

	/* and around the colon of sent-by (COLON = SWS ":" SWS, RFC 3261 25.1), IPv6 too */
	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/UDP 192.0.2.6 : 5072;branch=z9hG4bKg")), 0);
	assert_slice(v.host, "192.0.2.6");
	assert_int_equal(v.port, 5072);
	assert_slice(v.branch, "z9hG4bKg");
	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/TCP [2001:db8::6]\t:\r\n 5073")), 0);
	assert_slice(v.host, "[2001:db8::6]");
	assert_int_equal(v.port, 5073);

	/* folded onto a continuation line */
	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/UDP 192.0.2.4\r\n ;branch=z9hG4bKf")), 0);
	assert_slice(v.host, "192.0.2.4");
	assert_slice(v.branch, "z9hG4bKf");

	/* without a branch (RFC 2543 peers) the Via is still well-formed */
	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/UDP 192.0.2.5:5060")), 0);
	assert_int_equal(v.branch.l, 0);
	assert_int_equal(v.port, 5060);
}

static void test_via_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"SIP/2.0 host;branch=z9hG4bK1",
		"SIP/2.0/UDP",
		"SIP/2.0/UDP ;branch=z9hG4bK1",
		"SIP/2.0/UDP host:99999;branch=z9hG4bK1",
		"SIP/2.0/UDP host:abc;branch=z9hG4bK1",
		"SIP/2.0/UDP host:;branch=z9hG4bK1",
		"SIP/2.0/UDP host : ;branch=z9hG4bK1",
		"SIP/2.0/UDP host :",
		"SIP/2.0/UDP host:5060 : 5061",
		"SIP/2.0/UDP host : 0",
		"SIP/2.0/UDP host;branch=",
		"SIP/2.0/UDP [2001:db8::1;branch=z9hG4bK1",
		"SIP/2.0/UDP [1::2::3]:5060;branch=z9hG4bK1", /* RFC 5954 3: not an IPv6address */
		"SIP/2.0/UDP [12345::1];branch=z9hG4bK1",
		"SIP/2.0/UDP [1:2:3:4:5:6:7:8:9];branch=z9hG4bK1",
		"SIP/2.0/UDP [1.2.3.4];branch=z9hG4bK1",
		"SIP/2.0/UDP host;rport=abc",
		"SIP/2.0/UDP host;rport=70000",
		"SIP/2.0/UDP host junk",
		"SIP/2.0/U<P host",
	};
	struct sip_via v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = sip_via_parse(&v, slice_cstr(bad[i]));

		if (rc != EBADMSG)
			print_error("'%s' -> %d, want EBADMSG\n", bad[i], rc);
		assert_int_equal(rc, EBADMSG);
	}
}

/* ---- name-addr / addr-spec ---- */

static void test_addr_forms(void **state)
{
	struct sip_addr a;

	(void)state;
	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("\"Ana \\\"Al\\\" Smith, Jr.\" <sip:ana@example.com>;tag=88a")), 0);
	assert_slice(a.display, "Ana \\\"Al\\\" Smith, Jr."); /* without quotes, escapes kept */
	assert_slice(a.uri, "sip:ana@example.com");
	assert_slice(a.params, "tag=88a");
	assert_slice(a.tag, "88a");
	assert_false(a.star);

	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("Bo  Q. Public <sips:bo@example.com;transport=tcp>")), 0);
	assert_slice(a.display, "Bo  Q. Public");
	assert_slice(a.uri, "sips:bo@example.com;transport=tcp");
	assert_int_equal(a.params.l, 0);
	assert_int_equal(a.tag.l, 0);

	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("<sip:cy@example.com>")), 0);
	assert_int_equal(a.display.l, 0);
	assert_slice(a.uri, "sip:cy@example.com");

	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("\"\" <sip:cy@example.com>")), 0);
	assert_int_equal(a.display.l, 0);

	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("\"Di\"<sip:di@example.com>;tag=x")), 0);
	assert_slice(a.display, "Di");
	assert_slice(a.tag, "x");

	/* addr-spec: parameters after the URI belong to the header (RFC 3261 20) */
	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("sip:ed@example.com;tag=x1;foo=bar")), 0);
	assert_slice(a.uri, "sip:ed@example.com");
	assert_slice(a.params, "tag=x1;foo=bar");
	assert_slice(a.tag, "x1");

	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("tel:+12015550100;tag=t")), 0);
	assert_slice(a.uri, "tel:+12015550100");
	assert_slice(a.tag, "t");

	/* a quoted parameter value hiding "tag=" must not be taken for the tag */
	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("<sip:fi@example.com>;note=\"tag=fake;x\";tag=real")), 0);
	assert_slice(a.tag, "real");

	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("<sip:fi@example.com> ; tag = spaced")), 0);
	assert_slice(a.tag, "spaced");

	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("*")), 0);
	assert_true(a.star);
	assert_int_equal(sip_addr_parse(&a, SLICE_LIT(" * ")), 0);
	assert_true(a.star);
}

static void test_addr_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"\"unterminated <sip:a@example.com>",
		"<sip:a@example.com",
		"Name sip:a@example.com",
		"<sip:a@example.com>;tag=",
		"<sip:a@example.com> junk",
		"Bo@Home <sip:a@example.com>",   /* display-name = *(token LWS) / quoted-string */
		"Bo, Jr. <sip:a@example.com>",
		"<>",
		"<nocolon>",
		"\"x\" sip:a@example.com",
	};
	struct sip_addr a;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = sip_addr_parse(&a, slice_cstr(bad[i]));

		if (rc != EBADMSG)
			print_error("'%s' -> %d, want EBADMSG\n", bad[i], rc);
		assert_int_equal(rc, EBADMSG);
	}
}

/* ---- Contact ---- */

static void contact(const char *s, int want_rc, long want_exp, int want_q)
{
	struct sip_addr a;
	long exp = -7;
	int q = -7;
	int rc = sip_contact_parse(&a, &exp, &q, slice_cstr(s));

	if (rc != want_rc || (rc == 0 && (exp != want_exp || q != want_q)))
		print_error("'%s' -> rc %d expires %ld q %d; want rc %d expires %ld q %d\n", s, rc, exp, q, want_rc,
			    want_exp, want_q);
	assert_int_equal(rc, want_rc);
	if (rc == 0) {
		assert_int_equal(exp, want_exp);
		assert_int_equal(q, want_q);
	}
}

static void test_contact_params(void **state)
{
	(void)state;
	contact("<sip:a@192.0.2.1>", 0, -1, -1);
	contact("<sip:a@192.0.2.1>;q=0.5;expires=60", 0, 60, 500);
	contact("<sip:a@192.0.2.1>;q=1", 0, -1, 1000);
	contact("<sip:a@192.0.2.1>;q=1.000", 0, -1, 1000);
	contact("<sip:a@192.0.2.1>;q=1.", 0, -1, 1000);
	contact("<sip:a@192.0.2.1>;q=0", 0, -1, 0);
	contact("<sip:a@192.0.2.1>;q=0.125", 0, -1, 125);
	contact("<sip:a@192.0.2.1>;q=0.05", 0, -1, 50);
	contact("<sip:a@192.0.2.1>;Q=0.7;EXPIRES=0", 0, 0, 700);
	contact("<sip:a@192.0.2.1> ; q = 0.25 ; expires = 30", 0, 30, 250);
	contact("<sip:a@192.0.2.1>;expires=4294967295", 0, 4294967295L, -1);
	/* RFC 3261 20.19: a larger value is taken as 2**32-1 */
	contact("<sip:a@192.0.2.1>;expires=99999999999999", 0, 4294967295L, -1);
	contact("sip:a@192.0.2.1;expires=10;q=0.9", 0, 10, 900);
	contact("\"x;q=0.1\" <sip:a@192.0.2.1;q=0.2>;q=0.3", 0, -1, 300);
	contact("*", 0, -1, -1);

	contact("<sip:a@192.0.2.1>;q=1.5", EBADMSG, 0, 0);
	contact("<sip:a@192.0.2.1>;q=1.001", EBADMSG, 0, 0);
	contact("<sip:a@192.0.2.1>;q=2", EBADMSG, 0, 0);
	contact("<sip:a@192.0.2.1>;q=0.1234", EBADMSG, 0, 0);
	contact("<sip:a@192.0.2.1>;q=.5", EBADMSG, 0, 0);
	contact("<sip:a@192.0.2.1>;q=-0.5", EBADMSG, 0, 0);
	contact("<sip:a@192.0.2.1>;q=abc", EBADMSG, 0, 0);
	contact("<sip:a@192.0.2.1>;q=", EBADMSG, 0, 0);
	/* RFC 3261 20.10: "Malformed values SHOULD be treated as equivalent to 3600" */
	contact("<sip:a@192.0.2.1>;expires=soon", 0, 3600, -1);
	contact("<sip:a@192.0.2.1>;expires=-1;q=0.5", 0, 3600, 500);
	contact("<sip:a@192.0.2.1>;expires=", 0, 3600, -1);
	contact("<sip:a@192.0.2.1>;expires", 0, 3600, -1);
	contact("<sip:a@192.0.2.1", EBADMSG, 0, 0);
}

/* ---- CSeq ---- */

static void test_cseq(void **state)
{
	struct sip_cseq c;

	(void)state;
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("101 INVITE")), 0);
	assert_int_equal(c.num, 101);
	assert_slice(c.method, "INVITE");
	assert_int_equal(c.mid, SIP_METHOD_INVITE);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("0 ACK")), 0);
	assert_int_equal(c.num, 0);
	assert_int_equal(c.mid, SIP_METHOD_ACK);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("2147483647 BYE")), 0);
	assert_int_equal(c.num, 2147483647u);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("  7\t OPTIONS  ")), 0);
	assert_int_equal(c.num, 7);
	assert_slice(c.method, "OPTIONS");
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("8\r\n  REGISTER")), 0);
	assert_slice(c.method, "REGISTER");
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("3 FROB")), 0);
	assert_slice(c.method, "FROB");
	assert_int_equal(c.mid, SIP_METHOD_UNKNOWN);

	/* RFC 3261 8.1.1.5: less than 2**31 */
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("2147483648 BYE")), EBADMSG);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("99999999999 BYE")), EBADMSG);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("-1 BYE")), EBADMSG);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("+1 BYE")), EBADMSG);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("one BYE")), EBADMSG);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("12")), EBADMSG);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("12INVITE")), EBADMSG);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("1 INV ITE")), EBADMSG);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("1 INV;ITE")), EBADMSG);
	assert_int_equal(sip_cseq_parse(&c, SLICE_LIT("")), EBADMSG);
}

/* ---- RFC 3261 8.2.2 checks ---- */

static void test_check_mandatory(void **state)
{
	(void)state;
	/* each mandatory header missing, then doubled */
	assert_int_equal(verdict(OPT_LINE BASE_FROM BASE_TO BASE_CID BASE_CSEQ BASE_MF BASE_CL "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_TO BASE_CID BASE_CSEQ BASE_MF BASE_CL "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_CID BASE_CSEQ BASE_MF BASE_CL "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CSEQ BASE_MF BASE_CL "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_MF BASE_CL "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_FROM BASE_TO BASE_CID BASE_CSEQ BASE_CL "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO "t: <sip:x@example.com>\n" BASE_CID BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID "i: other@example.com\n" BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "CSeq: 2 OPTIONS\n" "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ BASE_MF BASE_MF "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ BASE_CL BASE_CL "\n"), 400);
	/* Max-Forwards and Content-Length may be absent (UDP) */
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), -1);
	/* a response missing Call-ID is dropped, never answered */
	assert_int_equal(verdict("SIP/2.0 200 OK\n" BASE_VIA BASE_FROM BASE_TO BASE_CSEQ BASE_CL "\n"), 0);
}

/* A Call-ID is read 16 bytes at a time: a space or an octet over 0x7e anywhere in a long one. Each
 * verdict holds its buffer until the teardown: a few per round, the rounds in groups. */
static void test_check_callid_long(void **state)
{
	(void)state;
	for (size_t at = 1; at < 39; at++) {
		char msg[512], cid[41];

		memset(cid, 'c', 40);
		cid[40] = '\0';
		snprintf(msg, sizeof(msg), OPT_LINE BASE_VIA BASE_FROM BASE_TO "Call-ID: %s\n" BASE_CSEQ "\n", cid);
		assert_int_equal(verdict(msg), -1);
		cid[at] = ' ';
		snprintf(msg, sizeof(msg), OPT_LINE BASE_VIA BASE_FROM BASE_TO "Call-ID: %s\n" BASE_CSEQ "\n", cid);
		assert_int_equal(verdict(msg), 400);
		cid[at] = (char)0xc3;
		snprintf(msg, sizeof(msg), OPT_LINE BASE_VIA BASE_FROM BASE_TO "Call-ID: %s\n" BASE_CSEQ "\n", cid);
		assert_int_equal(verdict(msg), 400);
		release(NULL);
	}
}

static void test_check_values(void **state)
{
	(void)state;
	assert_int_equal(verdict("INVITE sip:bo@example.com SIP/2.0\n" BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID "CSeq: 1 options\n" "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID "CSeq: 2147483648 OPTIONS\n" "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO "Call-ID: two words\n" BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO "Call-ID: tab\there\n" BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO "Call-ID:\n" BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "Max-Forwards: 256\n" "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "Max-Forwards: x\n" "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "Max-Forwards: 255\n" "\n"), -1);
	assert_int_equal(verdict(OPT_LINE "Via: SIP/2.0/UDP\n" BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE "Via:\n" BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA "From: sip:ana@example.com;tag=\n" BASE_TO BASE_CID BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM "To: <sip:bo@example.com\n" BASE_CID BASE_CSEQ "\n"), 400);
	/* RFC 3261 7.1: the version is case-insensitive; another version is 505 */
	assert_int_equal(verdict("OPTIONS sip:bo@example.com sip/2.0\n" BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), -1);
	assert_int_equal(verdict("OPTIONS sip:bo@example.com SIP/3.0\n" BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), 505);
}

static void test_check_content_length(void **state)
{
	struct sip_error err;
	const char *head = "MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA BASE_FROM BASE_TO BASE_CID "CSeq: 1 MESSAGE\n";
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text), "%sContent-Length: 10\n\nshort", head);
	assert_int_equal(verdict(text), 400);
	snprintf(text, sizeof(text), "%sContent-Length: -1\n\nshort", head);
	assert_int_equal(verdict(text), 400);
	snprintf(text, sizeof(text), "%sContent-Length: 5x\n\nshort", head);
	assert_int_equal(verdict(text), 400);

	/* RFC 3261 18.3: bytes past Content-Length in a datagram are discarded */
	snprintf(text, sizeof(text), "%sContent-Length: 3\n\nshort", head);
	assert_int_equal(parse(text, &err), 0);
	assert_int_equal(sip_msg_check(&M, &err), 0);
	assert_slice(M.body, "sho");

	/* without Content-Length the body runs to the end of the datagram, CRLFs included */
	snprintf(text, sizeof(text), "%s\nline1\n\nline3\n", head);
	assert_int_equal(parse(text, &err), 0);
	assert_int_equal(sip_msg_check(&M, &err), 0);
	assert_int_equal(M.content_length, -1);
	assert_slice(M.body, "line1\r\n\r\nline3\r\n");

	snprintf(text, sizeof(text), "%sl: 0\n\n", head);
	assert_int_equal(parse(text, &err), 0);
	assert_int_equal(sip_msg_check(&M, &err), 0);
	assert_int_equal(M.content_length, 0);
	assert_int_equal(M.body.l, 0);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *start; /* start line, or a whole message when it has no "\n\n" */
		int status;
	} t[] = {
		{ "OPTIONS  sip:bo@example.com SIP/2.0\n", 400 },
		{ "OPTIONS sip:bo@example.com  SIP/2.0\n", 400 },
		/* RFC 4475 3.1.2.11: trailing SP is rejected (400) or ignored, never a silent drop */
		{ "OPTIONS sip:bo@example.com SIP/2.0 \n", 400 },
		{ "OPTIONS sip:bo@example.com SIP/2.0\t\n", 400 },
		/* no SIP-Version at all: not a SIP request line, nothing to answer */
		{ "OPTIONS sip:bo@example.com\n", 0 },
		{ "OPTIONS\n", 0 },
		{ "\n", 0 },
	};
	char text[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(text, sizeof(text), "%s" BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n", t[i].start);
		int st = verdict(text);

		if (st != t[i].status)
			print_error("'%s' -> %d, want %d\n", t[i].start, st, t[i].status);
		assert_int_equal(st, t[i].status);
	}
	assert_int_equal(verdict(OPT_LINE BASE_VIA "Subject no colon\n" BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE BASE_VIA ": no name\n" BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), 400);
	assert_int_equal(verdict(OPT_LINE " folded: first\n" BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), 400);
	/* the header block must end with an empty line */
	assert_int_equal(verdict(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ), 400);
	assert_int_equal(verdict("\n\n"), 0);
	assert_int_equal(verdict(""), 0);
}

static void test_parse_nul_and_limits(void **state)
{
	struct sip_error err = { 999, NULL };
	size_t l1, l2, len, o;
	const char *pre = crlf(OPT_LINE BASE_VIA, &l1);
	const char *post = crlf(BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n", &l2);
	char *buf;

	(void)state;
	/* a NUL inside a header value */
	len = l1 + 14 + l2;
	buf = malloc(len);
	assert_non_null(buf);
	memcpy(buf, pre, l1);
	memcpy(buf + l1, "Subject: a\0b\r\n", 14);
	memcpy(buf + l1 + 14, post, l2);
	if (sip_msg_parse(&M, buf, len, &err) == 0)
		assert_int_not_equal(sip_msg_check(&M, &err), 0);
	assert_int_equal(err.status, 400);
	free(buf);

	/* more header fields than SIP_MAX_HEADERS */
	len = 64 + (SIP_MAX_HEADERS + 10) * 16;
	buf = malloc(len);
	assert_non_null(buf);
	o = (size_t)snprintf(buf, len, "OPTIONS sip:bo@example.com SIP/2.0\r\n");
	for (int i = 0; i < SIP_MAX_HEADERS + 10; i++)
		o += (size_t)snprintf(buf + o, len - o, "X-N%03d: %d\r\n", i, i);
	o += (size_t)snprintf(buf + o, len - o, "\r\n");
	assert_true(o < len);
	err.status = 999;
	assert_int_equal(sip_msg_parse(&M, buf, o, &err), EBADMSG);
	assert_true(err.status == 400 || err.status == 0);
	free(buf);
}

/* A CR that no LF follows, inside a header line: 400, so that nothing sipd forwards as one header can
 * be read as two further on (a Route it never saw); CRLF and lone-LF lines still read as before.
 * (parse() writes each \n as CRLF: a \r in these texts stays bare.) */
static void test_control_chars(void **state)
{
	struct sip_error err = { 999, NULL };
	/* a field over 16 bytes: the control character found by the vector loop, then by the tail loop */
	static const char *const refused[] = {
		"Subject: a subject over sixteen bytes \x01 long\n",
		"Subject: hi\x1b[2J\n",
		"Subject: one\n two\x0bthree\n", /* in a folded continuation line */
		"X-Quoted: \"ab\" \x02\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text), "%s%s%s%s%s%s%s\n", OPT_LINE, BASE_VIA, refused[i], BASE_FROM, BASE_TO,
			 BASE_CID, BASE_CSEQ);
		err.status = 999;
		assert_int_equal(parse(text, &err), EBADMSG);
		assert_int_equal(err.status, 400);
		assert_string_equal(err.reason, "Control character in header field");
		assert_true(M.ctl_in_headers);
		/* the block was read to its end: the 400 can be addressed */
		assert_true(slice_eq(M.call_id, SLICE_LIT("unit-1@example.com")));
	}
	/* in the last bytes of the datagram, which the scalar loop reads */
	err.status = 999;
	assert_int_equal(parse(OPT_LINE BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "X: \x01\n\n", &err), EBADMSG);
	assert_string_equal(err.reason, "Control character in header field");
	/* HTAB is whitespace; a CTL escaped as a quoted-pair is allowed (RFC 3261 25.1) */
	assert_int_equal(verdict(OPT_LINE BASE_VIA "Subject:\ttabbed\tvalue over sixteen\n" BASE_FROM BASE_TO BASE_CID
				 BASE_CSEQ "\n"), -1);
	assert_int_equal(verdict(OPT_LINE BASE_VIA "X-Name: \"a\\\x01b, long enough for the vector\"\n" BASE_FROM BASE_TO
				 BASE_CID BASE_CSEQ "\n"), -1);
	assert_false(M.ctl_in_headers);
	/* a NUL alone is refused (test_parse_nul_and_limits); escaped, as RFC 4475 3.1.1.2's To has it, it
	 * is a quoted-pair too */
	{
		static const char intmeth[] = "OPTIONS sip:bo@example.com SIP/2.0\r\n"
					      "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKunit1\r\n"
					      "From: <sip:ana@example.com>;tag=f1\r\n"
					      "To: \"BEL:\\\x07 NUL:\\\0 DEL:\\\x7f\" <sip:bo@example.com>\r\n"
					      "Call-ID: unit-1@example.com\r\nCSeq: 1 OPTIONS\r\n\r\n";

		err.status = 999;
		assert_int_equal(sip_msg_parse(&M, intmeth, sizeof(intmeth) - 1, &err), 0);
		assert_int_equal(sip_msg_check(&M, &err), 0);
		assert_false(M.ctl_in_headers);
		assert_int_equal(M.to.display.l, 20); /* the quoted-pairs kept as they came */
	}
	/* in a response's reason phrase: read to the end, status kept, so that its transaction takes it as
	 * invalid (a proxy answers 502) rather than relaying the control character */
	err.status = 999;
	assert_int_equal(parse("SIP/2.0 180 Ring\x07ing\n" BASE_VIA BASE_FROM BASE_TO BASE_CID "CSeq: 1 INVITE\n\n", &err),
			 EBADMSG);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.reason, "Control character in reason phrase");
	assert_int_equal(M.status, 180);
	assert_true(slice_eq(M.call_id, SLICE_LIT("unit-1@example.com")));
	/* DEL passes (see sip__is_ctl), and UTF-8 is not a control character */
	assert_int_equal(verdict(OPT_LINE BASE_VIA "Subject: del\x7f\n" BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"), -1);
	assert_int_equal(verdict(OPT_LINE BASE_VIA "Subject: caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 over sixteen\n" BASE_FROM
				 BASE_TO BASE_CID BASE_CSEQ "\n"), -1);
}

static void test_bare_cr(void **state)
{
	static const char mixed[] = "OPTIONS sip:bo@example.com SIP/2.0\r\n"
				    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKunit1\n"
				    "Subject: a subject longer than sixteen\r\n"
				    "From: <sip:ana@example.com>;tag=f1\nTo: <sip:bo@example.com>\n"
				    "Call-ID: unit-1@example.com\r\nCSeq: 1 OPTIONS\n"
				    "X-Long-Header-Name-Over-Thirty-Two-Bytes: v\n\r\n";
	struct sip_error err = { 999, NULL };
	size_t cut;

	(void)state;
	assert_int_equal(parse(OPT_LINE BASE_VIA "Subject: hi\rRoute: <sip:evil.example.com;lr>\n" BASE_FROM BASE_TO
			       BASE_CID BASE_CSEQ "\n", &err), EBADMSG);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.reason, "Bare CR in header field");
	assert_null(sip_msg_hdr(&M, SIP_HDR_ROUTE));
	/* in a folded continuation line */
	err.status = 999;
	assert_int_equal(parse(OPT_LINE BASE_VIA "Subject: one\n two\rthree\n" BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n", &err),
			 EBADMSG);
	assert_string_equal(err.reason, "Bare CR in header field");
	/* at the start of a line */
	err.status = 999;
	assert_int_equal(parse(OPT_LINE BASE_VIA "\rX: y\n" BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n", &err), EBADMSG);
	assert_int_equal(err.status, 400);
	/* in the request line: the request line's own 400, as before */
	assert_int_equal(verdict("OPTIONS sip:bo@example.com SIP/2.0\rx\n" BASE_VIA BASE_FROM BASE_TO BASE_CID BASE_CSEQ "\n"),
			 400);
	/* lines longer than 16 and 32 bytes, ending in CRLF or a lone LF, mixed: read as before */
	assert_int_equal(sip_msg_parse(&M, mixed, sizeof(mixed) - 1, &err), 0);
	assert_int_equal(sip_msg_check(&M, &err), 0);
	assert_int_equal(M.nhdrs, 7);
	assert_true(slice_eq(sip_msg_hdr(&M, SIP_HDR_SUBJECT)->value, SLICE_LIT("a subject longer than sixteen")));
	assert_true(slice_eq(sip_msg_hdr(&M, SIP_HDR_CALL_ID)->value, SLICE_LIT("unit-1@example.com")));
	/* a CR at the very end of a datagram: the header block is not terminated */
	err.status = 999;
	cut = (size_t)(strstr(mixed, "sixteen\r\n") - mixed) + 8;
	assert_int_equal(mixed[cut - 1], '\r');
	assert_int_equal(sip_msg_parse(&M, mixed, cut, &err), EBADMSG);
}

/* ---- stream framing ---- */

static void test_frame(void **state)
{
	size_t l1, l2;
	const char *one = crlf("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Content-Length: 5\n\nhello", &l1);
	const char *compact = crlf("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "l: 3\n\nabc", &l2);
	char two[1024];

	(void)state;
	assert_int_equal(sip_frame(one, l1, 65536), (long)l1);
	assert_int_equal(sip_frame(compact, l2, 65536), (long)l2);
	/* partial: in the headers, at the empty line, in the body */
	assert_int_equal(sip_frame(one, 20, 65536), 0);
	assert_int_equal(sip_frame(one, l1 - 7, 65536), 0);
	assert_int_equal(sip_frame(one, l1 - 1, 65536), 0);
	assert_int_equal(sip_frame(one, 0, 65536), 0);
	/* several messages in the stream: only the first */
	memcpy(two, one, l1);
	memcpy(two + l1, compact, l2);
	assert_int_equal(sip_frame(two, l1 + l2, 65536), (long)l1);
	assert_int_equal(sip_frame(two + l1, l2, 65536), (long)l2);
	assert_int_equal(sip_frame(two, l1 + 10, 65536), (long)l1);
	/* too large: the header block does not end within max, or Content-Length takes it past max */
	assert_int_equal(sip_frame(one, l1, 40), -2);
	size_t l3;
	const char *big = crlf("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Content-Length: 100000\n\nx", &l3);
	assert_int_equal(sip_frame(big, l3, 65536), -2);
	/* cannot be a message: Content-Length is not a number */
	size_t l4;
	const char *bad = crlf("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Content-Length: five\n\nhello", &l4);
	assert_int_equal(sip_frame(bad, l4, 65536), -1);
	size_t l5;
	const char *neg = crlf("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Content-Length: -5\n\nhello", &l5);
	assert_int_equal(sip_frame(neg, l5, 65536), -1);
	/* nor without Content-Length (18.3: a MUST on a stream): taken as no body, a request in its body
	 * would run on its own */
	size_t l6;
	const char *none = crlf("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "\nOPTIONS sip:x SIP/2.0\n", &l6);
	assert_int_equal(sip_frame(none, l6, 65536), -1);
	assert_int_equal(sip_frame(none, 30, 65536), 0); /* until its header block ends, it may come */
}

/* The stream is cut where the parser says the message ends: framing reads the fields as sip_msg_parse
 * does (else a request hides in a body: a smuggled request past a proxy that frames by the RFC). */
static void frame_as_parsed(const char *text, long want_body)
{
	size_t l;
	const char *buf = crlf(text, &l);
	long framed = sip_frame(buf, l, 65536);
	struct sip_msg m;
	struct sip_error e;

	assert_int_equal(sip_msg_parse(&m, buf, l, &e), 0);
	assert_int_equal(m.content_length, want_body);
	if (framed != (long)(m.hdr_len + (size_t)want_body))
		print_error("framed %ld, parsed %zu + %ld: %s\n", framed, m.hdr_len, want_body, text);
	assert_int_equal(framed, (long)(m.hdr_len + (size_t)want_body));
}

static void test_frame_as_parsed(void **state)
{
	size_t l;
	const char *twice;

	(void)state;
	/* a continuation line is no field of its own (7.3.1), whatever it says */
	frame_as_parsed("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Subject: hi\n Content-Length: 0\n"
			"Content-Length: 5\n\nhello", 5);
	frame_as_parsed("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Subject: hi\n\tl: 0\nl: 5\n\nhello", 5);
	/* a folded Content-Length is the whole of its lines */
	frame_as_parsed("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Content-Length:\n 5\n\nhello", 5);
	frame_as_parsed("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Content-Length :\n\t 5 \n  \n\nhello", 5);
	/* the start line is no field */
	frame_as_parsed("MESSAGE sip:l:0@example.com SIP/2.0\n" BASE_VIA "l: 5\n\nhello", 5);
	/* given twice: the parser refuses it (400), and framing will not guess which one cuts the stream */
	twice = crlf("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Content-Length: 0\nl: 5\n\nhello", &l);
	assert_int_equal(sip_frame(twice, l, 65536), -1);
	twice = crlf("MESSAGE sip:bo@example.com SIP/2.0\n" BASE_VIA "Content-Length: 5\nContent-Length: 5\n\nhello", &l);
	assert_int_equal(sip_frame(twice, l, 65536), -1);
}

/* Any pointer-sized value in the struct that points into [from, from + len]: a slice sip_msg_copy
 * missed. Scanned word by word, independent of the field list in sip_msg_copy. */
static bool points_into(const struct sip_msg *m, const char *from, size_t len)
{
	const unsigned char *raw = (const unsigned char *)m;

	for (size_t off = 0; off + sizeof(uintptr_t) <= sizeof(*m); off += sizeof(void *)) {
		uintptr_t v;

		memcpy(&v, raw + off, sizeof(v));
		if (v >= (uintptr_t)from && v <= (uintptr_t)from + len) {
			print_error("offset %zu of struct sip_msg still points into the old bytes\n", off);
			return true;
		}
	}
	return false;
}

static bool same_slice(struct slice a, struct slice b)
{
	return a.l == b.l && (a.l == 0 || a.p == b.p);
}

/* sip_msg_copy gives what parsing the copy of the bytes gives: every slice at the same place in the
 * copy, none left in the old bytes, and the accessors read the copy. */
static void test_copy(void **state)
{
	static const char *const texts[] = {
		"INVITE sips:bob:pw@[2001:db8::1]:5061;transport=tcp;maddr=192.0.2.9;user=phone;method=INVITE;"
		"ttl=3;lr?subject=hi SIP/2.0\n" BASE_VIA "To: Bob <sip:bob@example.com>\n"
		"From: \"Alice A\" <sip:alice@example.com>;tag=1928301774\nCall-ID: a84b4c76e66710\n"
		"CSeq: 314159 INVITE\nMax-Forwards: 70\nContact: <sip:alice@pc33.example.com>;expires=30;q=0.5\n"
		"Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>\nX-Custom: folded\n value\n"
		"Content-Type: application/sdp\nContent-Length: 4\n\nv=0\n",
		"SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK776;received=192.0.2.1;rport=5062;"
		"maddr=224.2.0.1;ttl=16\nVia: SIP/2.0/UDP 10.0.0.1\nTo: <sip:bob@example.com>;tag=a6c85cf\n"
		"From: <sip:alice@example.com>;tag=1928301774\nCall-ID: a84b4c76e66710\nCSeq: 314159 INVITE\n"
		"Record-Route: <sip:p1.example.com;lr>\nContent-Length: 0\n\n",
		/* refused, but parsed as far as it goes (the proxy hands invalid responses on too) */
		"SIP/2.0 200 OK\nVia: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bK9\nCSeq: 1 INVITE\nContent-Length: x\n\n",
		"OPTIONS nosuch:thing SIP/2.0\n" BASE_VIA "\n",
	};
	static struct sip_msg again, C; /* static: the unused header slots are zero, not garbage */

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		size_t len;
		const char *buf = crlf(texts[i], &len);
		struct sip_error e1, e2;
		int rc = sip_msg_parse(&M, buf, len, &e1);
		char *copy = malloc(len);

		assert_non_null(copy);
		memcpy(copy, buf, len);
		sip_msg_copy(&C, &M, copy);
		assert_false(points_into(&C, buf, len));
		assert_int_equal(sip_msg_parse(&again, copy, len, &e2), rc);
		assert_ptr_equal(C.buf, copy);
		assert_true(same_slice(C.method, again.method) && same_slice(C.ruri, again.ruri));
		assert_true(same_slice(C.ruri_uri.host, again.ruri_uri.host) &&
			    same_slice(C.ruri_uri.params, again.ruri_uri.params) &&
			    same_slice(C.ruri_uri.scheme_s, again.ruri_uri.scheme_s));
		assert_true(same_slice(C.reason, again.reason) && same_slice(C.version, again.version));
		assert_int_equal(C.nhdrs, again.nhdrs);
		for (unsigned h = 0; h < C.nhdrs; h++)
			assert_true(same_slice(C.hdrs[h].name, again.hdrs[h].name) &&
				    same_slice(C.hdrs[h].value, again.hdrs[h].value) && C.hdrs[h].id == again.hdrs[h].id &&
				    C.hdrs[h].next == again.hdrs[h].next && C.hdrs[h].line_len == again.hdrs[h].line_len);
		assert_memory_equal(C.first, again.first, sizeof(C.first));
		assert_memory_equal(C.count, again.count, sizeof(C.count));
		assert_true(C.is_request == again.is_request && C.mid == again.mid && C.status == again.status &&
			    C.ruri_err == again.ruri_err && C.max_forwards == again.max_forwards &&
			    C.content_length == again.content_length && C.hdr_len == again.hdr_len &&
			    C.cseq.num == again.cseq.num && C.via.port == again.via.port);
		assert_true(same_slice(C.via.branch, again.via.branch) && same_slice(C.via.raw, again.via.raw) &&
			    same_slice(C.via.received, again.via.received) && same_slice(C.via.ttl, again.via.ttl));
		assert_true(same_slice(C.cseq.method, again.cseq.method) && same_slice(C.call_id, again.call_id));
		assert_true(same_slice(C.from.tag, again.from.tag) && same_slice(C.to.uri, again.to.uri) &&
			    same_slice(C.from.display, again.from.display));
		assert_true(same_slice(C.body, again.body));
		if (i == 0)
			assert_ptr_equal(sip_msg_hdr(&C, SIP_HDR_CONTACT)->value.p,
					 sip_msg_hdr(&again, SIP_HDR_CONTACT)->value.p);
		free(copy);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hdr_lookup),
		cmocka_unit_test(test_method_lookup),
		cmocka_unit_test(test_token_valid),
		cmocka_unit_test_teardown(test_request_fields, release),
		cmocka_unit_test_teardown(test_response_fields, release),
		cmocka_unit_test_teardown(test_response_bad_status_dropped, release),
		cmocka_unit_test_teardown(test_response_status_out_of_range, release),
		cmocka_unit_test_teardown(test_compact_message, release),
		cmocka_unit_test_teardown(test_folding_and_whitespace, release),
		cmocka_unit_test_teardown(test_unknown_and_repeated_headers, release),
		cmocka_unit_test(test_list_next),
		cmocka_unit_test(test_via_fields),
		cmocka_unit_test(test_via_rport_and_hosts),
		cmocka_unit_test(test_via_malformed),
		cmocka_unit_test(test_addr_forms),
		cmocka_unit_test(test_addr_malformed),
		cmocka_unit_test(test_contact_params),
		cmocka_unit_test(test_cseq),
		cmocka_unit_test_teardown(test_check_mandatory, release),
		cmocka_unit_test_teardown(test_check_values, release),
		cmocka_unit_test_teardown(test_check_callid_long, release),
		cmocka_unit_test_teardown(test_check_content_length, release),
		cmocka_unit_test_teardown(test_parse_errors, release),
		cmocka_unit_test_teardown(test_parse_nul_and_limits, release),
		cmocka_unit_test_teardown(test_control_chars, release),
		cmocka_unit_test_teardown(test_bare_cr, release),
		cmocka_unit_test_teardown(test_frame, release),
		cmocka_unit_test_teardown(test_frame_as_parsed, release),
		cmocka_unit_test_teardown(test_copy, release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
