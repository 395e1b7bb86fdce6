/* test_uri.c: sip:, sips: and tel: URI parsing (RFC 3261 19.1, 25.1; RFC 3966), parameters, %HH
 * unescaping and the RFC 3261 19.1.4 comparison rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/uri.h"

/* A slice equals a C string; prints both on a mismatch. */
static bool slice_is(struct slice s, const char *want)
{
	size_t l = strlen(want);

	if (s.l == l && (l == 0 || (s.p && memcmp(s.p, want, l) == 0)))
		return true;
	print_error("slice '%.*s' (len %zu), want '%s' (len %zu)\n", (int)s.l, s.p ? s.p : "", s.l, want, l);
	return false;
}

#define assert_slice(s, want) assert_true(slice_is((s), (want)))

/* Parses a URI from a heap copy of exactly its size, so that a read past the end is caught. */
static char *held[64];
static size_t nheld;

static int parse(struct sip_uri *u, const char *text)
{
	size_t l = strlen(text);
	char *p = malloc(l ? l : 1);

	assert_non_null(p);
	memcpy(p, text, l);
	assert_true(nheld < sizeof(held) / sizeof(held[0]));
	held[nheld++] = p;
	return sip_uri_parse(u, slice_make(p, l));
}

static int release(void **state)
{
	(void)state;
	while (nheld)
		free(held[--nheld]);
	return 0;
}

static void test_uri_every_component(void **state)
{
	struct sip_uri u;

	(void)state;
	assert_int_equal(parse(&u, "sip:alice:s3cr%65t@example.com:5061;transport=tcp;lr;maddr=192.0.2.1;"
				   "user=phone;method=INVITE;ttl=5?Subject=hi%20there&Priority=urgent"), 0);
	assert_int_equal(u.scheme, SIP_SCHEME_SIP);
	assert_slice(u.scheme_s, "sip");
	assert_slice(u.user, "alice");
	assert_slice(u.password, "s3cr%65t");
	assert_slice(u.host, "example.com");
	assert_int_equal(u.port, 5061);
	assert_slice(u.params, "transport=tcp;lr;maddr=192.0.2.1;user=phone;method=INVITE;ttl=5");
	assert_slice(u.headers, "Subject=hi%20there&Priority=urgent");
	assert_slice(u.transport, "tcp");
	assert_slice(u.maddr, "192.0.2.1");
	assert_slice(u.user_param, "phone");
	assert_slice(u.method, "INVITE");
	assert_slice(u.ttl, "5");
	assert_true(u.lr);
	assert_false(u.ipv6);
}

static void test_uri_host_only(void **state)
{
	struct sip_uri u;

	(void)state;
	assert_int_equal(parse(&u, "sip:proxy.example.net"), 0);
	assert_int_equal(u.scheme, SIP_SCHEME_SIP);
	assert_int_equal(u.user.l, 0);
	assert_int_equal(u.password.l, 0);
	assert_slice(u.host, "proxy.example.net");
	assert_int_equal(u.port, 0);
	assert_int_equal(u.params.l, 0);
	assert_int_equal(u.headers.l, 0);
	assert_int_equal(u.transport.l, 0);
	assert_false(u.lr);

	assert_int_equal(parse(&u, "sip:192.0.2.7:5080;lr"), 0);
	assert_slice(u.host, "192.0.2.7");
	assert_int_equal(u.port, 5080);
	assert_true(u.lr);
	assert_false(u.ipv6);
}

static void test_uri_scheme_case_and_sips(void **state)
{
	struct sip_uri u;

	(void)state;
	assert_int_equal(parse(&u, "SIPS:Bob@Example.COM"), 0);
	assert_int_equal(u.scheme, SIP_SCHEME_SIPS);
	assert_slice(u.scheme_s, "SIPS");
	assert_slice(u.user, "Bob");
	assert_slice(u.host, "Example.COM"); /* kept as written */

	assert_int_equal(parse(&u, "Sip:bob@example.com"), 0);
	assert_int_equal(u.scheme, SIP_SCHEME_SIP);
}

static void test_uri_ipv6(void **state)
{
	struct sip_uri u;

	(void)state;
	assert_int_equal(parse(&u, "sip:[2001:db8::1]:5060;transport=udp"), 0);
	assert_slice(u.host, "[2001:db8::1]");
	assert_int_equal(u.port, 5060);
	assert_true(u.ipv6);
	assert_slice(u.transport, "udp");

	assert_int_equal(parse(&u, "sips:carol@[2001:db8:0:0:1::2]"), 0);
	assert_slice(u.user, "carol");
	assert_slice(u.host, "[2001:db8:0:0:1::2]");
	assert_int_equal(u.port, 0);
	assert_true(u.ipv6);

	assert_int_equal(parse(&u, "sip:[::ffff:192.0.2.1]"), 0);
	assert_slice(u.host, "[::ffff:192.0.2.1]");

	assert_int_equal(parse(&u, "sip:[2001:db8::1"), EBADMSG);
	assert_int_equal(parse(&u, "sip:[2001:db8::1]x"), EBADMSG);
	assert_int_equal(parse(&u, "sip:[2001:db8::1]:"), EBADMSG);
	assert_int_equal(parse(&u, "sip:[zz::1]"), EBADMSG);
	assert_int_equal(parse(&u, "sip:2001:db8::1"), EBADMSG); /* RFC 3261 19.1.1: brackets required */
	/* RFC 5954 3 / RFC 5118 4.8: what the characters allow and the address grammar does not */
	assert_int_equal(parse(&u, "sip:[1::2::3]"), EBADMSG);
	assert_int_equal(parse(&u, "sip:[12345::1]"), EBADMSG);
	assert_int_equal(parse(&u, "sip:[:::1]"), EBADMSG);
	assert_int_equal(parse(&u, "sip:[1:2:3:4:5:6:7:8:9]"), EBADMSG);
	assert_int_equal(parse(&u, "sip:[1.2.3.4]"), EBADMSG);
	assert_int_equal(parse(&u, "sip:[::1.2.3]"), EBADMSG);
	assert_int_equal(parse(&u, "sip:[::1:42060]"), EBADMSG); /* the port inside the brackets */
	assert_int_equal(parse(&u, "sip:[1:2:3:4:5:6:7:8]"), 0);
	assert_int_equal(parse(&u, "sip:[::192.0.2.1]"), 0);
}

/* Hosts as compared: one spelling per IPv6 address, IPv4-mapped as IPv4, names lowered, final dot off. */
static void test_host_canon(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "[0:0:0:0:0:0:0:1]", "[::1]" },     { "[::1]", "[::1]" },
		{ "[2001:0DB8:0:0::000A]", "[2001:db8::a]" }, { "[::FFFF:127.0.0.1]", "127.0.0.1" },
		{ "[::ffff:7f00:1]", "127.0.0.1" },   { "::1", "[::1]" },
		{ "Example.COM.", "example.com" },    { "192.0.2.1", "192.0.2.1" },
		{ "[1.2.3.4]", "[1.2.3.4]" }, /* no address: as written, lowered */
	};
	char out[SIP_HOST_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = sip_host_canon(slice_cstr(cases[i].in), out, sizeof(out));

		if (n != strlen(cases[i].out) || strcmp(out, cases[i].out))
			print_error("%s -> '%s', want '%s'\n", cases[i].in, n ? out : "", cases[i].out);
		assert_string_equal(out, cases[i].out);
		assert_int_equal(n, strlen(cases[i].out));
	}
	assert_int_equal(sip_host_canon(SLICE_LIT("[2001:db8::a]"), out, 10), 0); /* does not fit */
	assert_true(sip_host_eq(SLICE_LIT("[::1]"), SLICE_LIT("[0::1]")));
	assert_false(sip_host_eq(SLICE_LIT("[::1]"), SLICE_LIT("[::2]")));
	assert_false(sip_host_eq(SLICE_LIT("[::1]"), SLICE_LIT("127.0.0.1")));
}

static void test_uri_escaped_user(void **state)
{
	struct sip_uri u;
	char buf[32];
	long n;

	(void)state;
	assert_int_equal(parse(&u, "sip:%41lice@example.com"), 0);
	assert_slice(u.user, "%41lice"); /* still escaped */
	n = sip_unescape(buf, sizeof(buf), u.user);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "Alice", 5);

	assert_int_equal(parse(&u, "sip:a%20b%2c@example.com"), 0);
	assert_slice(u.user, "a%20b%2c");

	assert_int_equal(parse(&u, "sip:%G1ice@example.com"), EBADMSG);
	assert_int_equal(parse(&u, "sip:ab%4@example.com"), EBADMSG);
	assert_int_equal(parse(&u, "sip:ab%@example.com"), EBADMSG);
	assert_int_equal(parse(&u, "sip:bob@example.com;x=%zz"), EBADMSG);
	assert_int_equal(parse(&u, "sip:bob@example.com?h=%4"), EBADMSG);
	assert_int_equal(parse(&u, "sip:bob:p%q@example.com"), EBADMSG);
}

static void test_uri_user_part_punctuation(void **state)
{
	struct sip_uri u;

	(void)state;
	/* user-unreserved (RFC 3261 25.1) lets ; = + ? / & $ , into the user part */
	assert_int_equal(parse(&u, "sip:+1-201-555-0100;npdi;rn=+12015550000@example.com;user=phone"), 0);
	assert_slice(u.user, "+1-201-555-0100;npdi;rn=+12015550000");
	assert_slice(u.host, "example.com");
	assert_slice(u.params, "user=phone");
	assert_slice(u.user_param, "phone");

	assert_int_equal(parse(&u, "sip:a?b/c&d=e+f$g,h@example.com"), 0);
	assert_slice(u.user, "a?b/c&d=e+f$g,h");
	assert_int_equal(u.headers.l, 0);
}

static void test_uri_tel(void **state)
{
	struct sip_uri u;

	(void)state;
	assert_int_equal(parse(&u, "tel:+1-201-555-0123"), 0);
	assert_int_equal(u.scheme, SIP_SCHEME_TEL);
	assert_slice(u.scheme_s, "tel");
	assert_slice(u.user, "+1-201-555-0123");
	assert_int_equal(u.host.l, 0);

	assert_int_equal(parse(&u, "TEL:555.0123;phone-context=example.com;ext=22"), 0);
	assert_int_equal(u.scheme, SIP_SCHEME_TEL);
	assert_slice(u.user, "555.0123");
	assert_slice(u.params, "phone-context=example.com;ext=22");

	assert_int_equal(parse(&u, "tel:"), EBADMSG);
	assert_int_equal(parse(&u, "tel:;phone-context=x"), EBADMSG);
	assert_int_equal(parse(&u, "tel:+1+2"), EBADMSG);
	assert_int_equal(parse(&u, "tel:+1 201"), EBADMSG);
}

static void test_uri_other_scheme(void **state)
{
	struct sip_uri u;

	(void)state;
	assert_int_equal(parse(&u, "http://example.com/a"), ENOTSUP);
	assert_int_equal(u.scheme, SIP_SCHEME_OTHER);
	assert_slice(u.scheme_s, "http");
	assert_int_equal(parse(&u, "urn:service:sos"), ENOTSUP);
	assert_slice(u.scheme_s, "urn");
	assert_int_equal(parse(&u, "im:fred@example.com"), ENOTSUP);
}

static void test_uri_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"sip:",
		":bob@example.com",
		"sip",
		"1sip:bob@example.com",
		"s_p:bob@example.com",
		"sip:bob@",
		"sip:@example.com",            /* user = 1*(...) */
		"sip:bob@exa mple.com",
		"sip:bob @example.com",
		"sip:bob@example.com:99999",
		"sip:bob@example.com:",
		"sip:bob@example.com:50a",
		"sip:bob@<example.com>",
		"sip:bob@example.com;transport=tcp x",
		"sip:bob@example.com;x=\"q\"",
		"sip:bob@exam_ple.com",
		"sip:bob@example.com\r\n",
		"<sip:bob@example.com>",
	};
	struct sip_uri u;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(&u, bad[i]);

		if (rc != EBADMSG)
			print_error("'%s' -> %d, want EBADMSG\n", bad[i], rc);
		assert_int_equal(rc, EBADMSG);
	}
}

static void test_uri_no_nul_needed(void **state)
{
	/* a URI inside a longer buffer: the parser must stop at the slice end */
	const char *text = "sip:dan@example.com;lr>;tag=1";
	struct sip_uri u;

	(void)state;
	assert_int_equal(sip_uri_parse(&u, slice_make(text, 22)), 0);
	assert_slice(u.host, "example.com");
	assert_slice(u.params, "lr");
	assert_true(u.lr);
}

static void test_param_find(void **state)
{
	struct slice params = SLICE_LIT("transport=TCP;lr;maddr=192.0.2.1;x-empty=;Q=0.5");
	struct slice v;

	(void)state;
	assert_true(sip_param_find(params, "transport", &v));
	assert_slice(v, "TCP");
	assert_true(sip_param_find(params, "TRANSPORT", &v));
	assert_slice(v, "TCP");
	assert_true(sip_param_find(params, "lr", &v));
	assert_int_equal(v.l, 0);
	assert_true(sip_param_find(params, "maddr", &v));
	assert_slice(v, "192.0.2.1");
	assert_true(sip_param_find(params, "q", &v));
	assert_slice(v, "0.5");
	assert_false(sip_param_find(params, "user", &v));
	assert_false(sip_param_find(params, "l", &v));   /* no prefix match */
	assert_false(sip_param_find(params, "lrx", &v));
	assert_false(sip_param_find(params, "trans", &v));
	assert_false(sip_param_find(SLICE_LIT(""), "lr", &v));

	/* header parameters may be quoted strings with ';' and '=' inside (RFC 3261 25.1 gen-value) */
	assert_true(sip_param_find(SLICE_LIT("note=\"tag=fake;lr\";tag=real"), "tag", &v));
	assert_slice(v, "real");
	assert_false(sip_param_find(SLICE_LIT("note=\"x;lr\""), "lr", &v));

	/* LWS around ';' and '=' (SEMI, EQUAL) */
	assert_true(sip_param_find(SLICE_LIT("a = 1 ;  branch = z9hG4bKx ; rport"), "branch", &v));
	assert_slice(v, "z9hG4bKx");
	assert_true(sip_param_find(SLICE_LIT("a = 1 ;  branch = z9hG4bKx ; rport"), "rport", &v));
	assert_int_equal(v.l, 0);
}

static void test_param_next(void **state)
{
	struct slice rest = SLICE_LIT("a=1;b;c=three;D=\"q;v\"");
	struct slice n, v;

	(void)state;
	assert_true(sip_param_next(&rest, &n, &v));
	assert_slice(n, "a");
	assert_slice(v, "1");
	assert_true(sip_param_next(&rest, &n, &v));
	assert_slice(n, "b");
	assert_int_equal(v.l, 0);
	assert_true(sip_param_next(&rest, &n, &v));
	assert_slice(n, "c");
	assert_slice(v, "three");
	assert_true(sip_param_next(&rest, &n, &v));
	assert_slice(n, "D");
	assert_slice(v, "\"q;v\"");
	assert_false(sip_param_next(&rest, &n, &v));
	assert_int_equal(rest.l, 0);
}

static void test_unescape(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(sip_unescape(buf, sizeof(buf), SLICE_LIT("%41%62c")), 3);
	assert_memory_equal(buf, "Abc", 3);
	assert_int_equal(sip_unescape(buf, sizeof(buf), SLICE_LIT("%4a%4A")), 2);
	assert_memory_equal(buf, "JJ", 2);
	assert_int_equal(sip_unescape(buf, sizeof(buf), SLICE_LIT("plain")), 5);
	assert_memory_equal(buf, "plain", 5);
	assert_int_equal(sip_unescape(buf, sizeof(buf), SLICE_LIT("a%00b")), 3);
	assert_memory_equal(buf, "a\0b", 3);
	assert_int_equal(sip_unescape(buf, sizeof(buf), SLICE_LIT("")), 0);
	assert_int_equal(sip_unescape(buf, sizeof(buf), SLICE_LIT("%4")), -1);
	assert_int_equal(sip_unescape(buf, sizeof(buf), SLICE_LIT("abc%")), -1);
	assert_int_equal(sip_unescape(buf, sizeof(buf), SLICE_LIT("%GG")), -1);
	assert_int_equal(sip_unescape(buf, sizeof(buf), SLICE_LIT("%4G")), -1);
	assert_int_equal(sip_unescape(buf, 4, SLICE_LIT("abcd")), 4);       /* fits exactly */
	assert_int_equal(sip_unescape(buf, 3, SLICE_LIT("abcd")), -1);      /* overflow */
	assert_int_equal(sip_unescape(buf, 2, SLICE_LIT("%41%42%43")), -1);
}

/* A URI's user part as a C string: decoded and NUL-terminated, 0 for none, -1 when its escaped form does
 * not fit (the check every caller made before) or an escape is bad. */
static void test_uri_user(void **state)
{
	struct sip_uri u;
	char buf[8];

	(void)state;
	assert_int_equal(sip_uri_parse(&u, SLICE_LIT("sip:%41lice@example.com")), 0);
	assert_int_equal(sip_uri_user(&u, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "Alice");
	assert_int_equal(sip_uri_parse(&u, SLICE_LIT("sip:example.com")), 0);
	assert_int_equal(sip_uri_user(&u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(sip_uri_parse(&u, SLICE_LIT("sip:%41%42%43%44@example.com")), 0); /* 12 escaped, 4 decoded */
	assert_int_equal(sip_uri_user(&u, buf, sizeof(buf)), -1);
	assert_int_equal(sip_uri_parse(&u, SLICE_LIT("sip:1234567@example.com")), 0);
	assert_int_equal(sip_uri_user(&u, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "1234567");
	assert_int_equal(sip_uri_parse(&u, SLICE_LIT("sip:12345678@example.com")), 0);
	assert_int_equal(sip_uri_user(&u, buf, sizeof(buf)), -1);
}

static void expect_equal(const char *a, const char *b, bool want)
{
	struct sip_uri ua, ub;

	assert_int_equal(parse(&ua, a), 0);
	assert_int_equal(parse(&ub, b), 0);
	if (sip_uri_equal(&ua, &ub) != want || sip_uri_equal(&ub, &ua) != want)
		print_error("'%s' vs '%s': want %s\n", a, b, want ? "equal" : "different");
	assert_true(sip_uri_equal(&ua, &ub) == want);
	assert_true(sip_uri_equal(&ub, &ua) == want);
}

static void test_uri_equal_matches(void **state)
{
	(void)state;
	/* RFC 3261 19.1.4: host and parameters are case-insensitive */
	expect_equal("sip:kim@Example.ORG;transport=TCP", "sip:kim@example.org;TRANSPORT=tcp", true);
	/* unreserved characters equal their %HH form */
	expect_equal("sip:%6bim@example.org", "sip:kim@example.org", true);
	expect_equal("sip:kim:p%61ss@example.org", "sip:kim:pass@example.org", true);
	/* a parameter other than user/ttl/method/maddr/transport in only one URI is ignored */
	expect_equal("sip:kim@example.org;x-foo=1", "sip:kim@example.org", true);
	expect_equal("sip:kim@example.org;lr", "sip:kim@example.org", true);
	/* the order of parameters and of header fields is not significant */
	expect_equal("sip:kim@example.org;x=1;transport=udp", "sip:kim@example.org;transport=udp;x=1", true);
	expect_equal("sip:kim@example.org?a=1&b=2", "sip:kim@example.org?b=2&a=1", true);
	expect_equal("sip:kim@example.org;x-foo=ABC", "sip:kim@example.org;x-foo=abc", true);
	expect_equal("sips:[2001:db8::1]:5061", "sips:[2001:DB8::1]:5061", true);
	/* RFC 5954 4: the same IP address written otherwise is the same host */
	expect_equal("sip:alice@[::1]", "sip:alice@[0:0:0:0:0:0:0:1]", true);
	expect_equal("sip:alice@[2001:db8::a]:5070", "sip:alice@[2001:0db8:0:0:0:0:0:000A]:5070", true);
	expect_equal("sip:alice@[::ffff:192.0.2.1]", "sip:alice@192.0.2.1", true);
	expect_equal("sip:alice@example.com.", "sip:alice@EXAMPLE.com", true);
}

static void test_uri_equal_differs(void **state)
{
	(void)state;
	expect_equal("sip:Kim@example.org", "sip:kim@example.org", false);          /* userinfo is case-sensitive */
	expect_equal("sip:kim:pw@example.org", "sip:kim:PW@example.org", false);
	expect_equal("sip:kim@example.org", "sips:kim@example.org", false);
	expect_equal("sip:kim@example.org", "sip:kim@example.org:5060", false);     /* default port is not absent */
	expect_equal("sip:kim@example.org", "sip:kim@example.org;transport=udp", false);
	expect_equal("sip:kim@example.org", "sip:kim@example.org;user=phone", false);
	expect_equal("sip:kim@example.org", "sip:kim@example.org;ttl=1", false);
	expect_equal("sip:kim@example.org", "sip:kim@example.org;method=INVITE", false);
	expect_equal("sip:kim@example.org", "sip:kim@example.org;maddr=192.0.2.1", false);
	expect_equal("sip:kim@example.org;x-foo=1", "sip:kim@example.org;x-foo=2", false);
	expect_equal("sip:kim@example.org?Subject=a", "sip:kim@example.org", false);
	expect_equal("sip:kim@example.org?Subject=a", "sip:kim@example.org?Subject=b", false);
	expect_equal("sip:kim@example.org", "sip:kim@192.0.2.1", false);
	expect_equal("sip:kim@example.org", "sip:example.org", false);
	expect_equal("sip:kim@example.org:5060", "sip:kim@example.org:5070", false);
	expect_equal("sip:kim@[::1]", "sip:kim@[::2]", false);
	expect_equal("sip:kim@[::1]", "sip:kim@127.0.0.1", false);
	/* reserved characters are not equivalent to their escaped form */
	expect_equal("sip:a;b@example.org", "sip:a%3Bb@example.org", false);
}

static void test_uri_equal_long_user(void **state)
{
	static char text[1200];
	struct sip_uri a, b;

	(void)state;
	/* a Request-URI up to sipd's 1024-character limit must still equal itself */
	memcpy(text, "sip:", 4);
	memset(text + 4, 'u', 900);
	memcpy(text + 904, "@example.org", 13);
	assert_int_equal(parse(&a, text), 0);
	assert_int_equal(parse(&b, text), 0);
	assert_true(sip_uri_equal(&a, &b));
}

static void test_uri_equal_tel_is_not_sip(void **state)
{
	struct sip_uri a, b;

	(void)state;
	assert_int_equal(parse(&a, "tel:+12015550123"), 0);
	assert_int_equal(parse(&b, "sip:+12015550123@example.org;user=phone"), 0);
	assert_false(sip_uri_equal(&a, &b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_uri_every_component, release),
		cmocka_unit_test_teardown(test_uri_host_only, release),
		cmocka_unit_test_teardown(test_uri_scheme_case_and_sips, release),
		cmocka_unit_test_teardown(test_uri_ipv6, release),
		cmocka_unit_test_teardown(test_uri_escaped_user, release),
		cmocka_unit_test_teardown(test_uri_user_part_punctuation, release),
		cmocka_unit_test_teardown(test_uri_tel, release),
		cmocka_unit_test_teardown(test_uri_other_scheme, release),
		cmocka_unit_test_teardown(test_uri_malformed, release),
		cmocka_unit_test_teardown(test_uri_no_nul_needed, release),
		cmocka_unit_test(test_host_canon),
		cmocka_unit_test(test_param_find),
		cmocka_unit_test(test_param_next),
		cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_uri_user),
		cmocka_unit_test_teardown(test_uri_equal_matches, release),
		cmocka_unit_test_teardown(test_uri_equal_differs, release),
		cmocka_unit_test_teardown(test_uri_equal_long_user, release),
		cmocka_unit_test_teardown(test_uri_equal_tel_is_not_sip, release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
