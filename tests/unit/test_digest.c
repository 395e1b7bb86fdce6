/* test_digest.c: Digest authentication (RFC 3261 22, RFC 7616, RFC 8760): the RFC 7616 3.9.1 and
 * RFC 2617 3.5 vectors, credentials parsing, MAC'd nonces and nc replay, the nc table's memory bound,
 * the challenge line, the brute-force limiter, including four threads at once, and the memory of clients
 * that answer none of several challenges. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "auth/digest.h"

#define CRLF "\r\n"
#define S(lit) SLICE_LIT(lit)

static bool slice_is(struct slice s, const char *want)
{
	return s.p && s.l == strlen(want) && memcmp(s.p, want, s.l) == 0;
}

static int parse(struct digest_cred *c, const char *text)
{
	return digest_cred_parse(c, slice_cstr(text));
}

/* ---- RFC 7616 3.9.1 ---- */

#define RFC7616_NONCE "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
#define RFC7616_CNONCE "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
#define RFC7616_MD5_HA1 "3d78807defe7de2157e2b0b6573a855f"
#define RFC7616_MD5_RESPONSE "8ca523f5e9506fed4657c9700eebdbec"
#define RFC7616_SHA256_HA1 "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
#define RFC7616_SHA256_RESPONSE "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"

/* The RFC's Authorization header (3.9.1), with the algorithm and response given. */
static void rfc7616_header(char *buf, size_t n, const char *alg, const char *response)
{
	snprintf(buf, n,
		 "Digest username=\"Mufasa\"," CRLF " realm=\"http-auth@example.org\"," CRLF
		 " uri=\"/dir/index.html\"," CRLF " algorithm=%s," CRLF " nonce=\"" RFC7616_NONCE "\"," CRLF
		 " nc=00000001," CRLF " cnonce=\"" RFC7616_CNONCE "\"," CRLF " qop=auth," CRLF
		 " response=\"%s\"," CRLF " opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
		 alg, response);
}

static void test_rfc7616_md5(void **state)
{
	struct digest_cred c;
	char buf[1024], out[DIGEST_HEX_MAX];

	(void)state;
	digest_ha1(DIGEST_MD5, S("Mufasa"), S("http-auth@example.org"), S("Circle of Life"), out);
	assert_string_equal(out, RFC7616_MD5_HA1);
	rfc7616_header(buf, sizeof(buf), "MD5", RFC7616_MD5_RESPONSE);
	assert_int_equal(parse(&c, buf), 0);
	assert_int_equal(c.alg, DIGEST_MD5);
	digest_expected(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("GET"), out);
	assert_string_equal(out, RFC7616_MD5_RESPONSE);
	assert_true(digest_check(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("GET")));
	assert_false(digest_check(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("POST")));
	assert_false(digest_check(DIGEST_SHA256, RFC7616_SHA256_HA1, &c, S("GET"))); /* not what the client used */
}

static void test_rfc7616_sha256(void **state)
{
	struct digest_cred c;
	char buf[1024], out[DIGEST_HEX_MAX];

	(void)state;
	digest_ha1(DIGEST_SHA256, S("Mufasa"), S("http-auth@example.org"), S("Circle of Life"), out);
	assert_string_equal(out, RFC7616_SHA256_HA1);
	rfc7616_header(buf, sizeof(buf), "SHA-256", RFC7616_SHA256_RESPONSE);
	assert_int_equal(parse(&c, buf), 0);
	assert_int_equal(c.alg, DIGEST_SHA256);
	digest_expected(DIGEST_SHA256, RFC7616_SHA256_HA1, &c, S("GET"), out);
	assert_string_equal(out, RFC7616_SHA256_RESPONSE);
	assert_true(digest_check(DIGEST_SHA256, RFC7616_SHA256_HA1, &c, S("GET")));
}

/* H(method:uri) is kept per thread from one request to the next: another method, another URI of the
 * same length, or the other algorithm must each hash again, and the RFC's answer come back after them. */
static void test_ha2_kept(void **state)
{
	struct digest_cred c, other;
	char buf[1024], obuf[1024], out[DIGEST_HEX_MAX], first[DIGEST_HEX_MAX];

	(void)state;
	rfc7616_header(buf, sizeof(buf), "MD5", RFC7616_MD5_RESPONSE);
	assert_int_equal(parse(&c, buf), 0);
	digest_expected(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("PUT"), first);
	assert_string_not_equal(first, RFC7616_MD5_RESPONSE);
	digest_expected(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("GET"), out);
	assert_string_equal(out, RFC7616_MD5_RESPONSE);
	digest_expected(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("PUT"), out);
	assert_string_equal(out, first);

	rfc7616_header(obuf, sizeof(obuf), "MD5", RFC7616_MD5_RESPONSE);
	memcpy(strstr(obuf, "index.html"), "index.htmm", 10);
	assert_int_equal(parse(&other, obuf), 0);
	digest_expected(DIGEST_MD5, RFC7616_MD5_HA1, &other, S("GET"), out);
	assert_string_not_equal(out, RFC7616_MD5_RESPONSE);
	assert_true(digest_check(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("GET")));

	rfc7616_header(obuf, sizeof(obuf), "SHA-256", RFC7616_SHA256_RESPONSE);
	assert_int_equal(parse(&other, obuf), 0);
	assert_true(digest_check(DIGEST_SHA256, RFC7616_SHA256_HA1, &other, S("GET")));
	assert_true(digest_check(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("GET")));
}

/* The response is compared as a whole: one digit off, a short one, or upper case hex. */
static void test_check_compare(void **state)
{
	struct digest_cred c;
	char buf[1024], resp[DIGEST_HEX_MAX];

	(void)state;
	strcpy(resp, RFC7616_SHA256_RESPONSE);
	resp[63] = '0';
	rfc7616_header(buf, sizeof(buf), "SHA-256", resp);
	assert_int_equal(parse(&c, buf), 0);
	assert_false(digest_check(DIGEST_SHA256, RFC7616_SHA256_HA1, &c, S("GET")));

	resp[63] = '\0';
	rfc7616_header(buf, sizeof(buf), "SHA-256", resp);
	assert_int_equal(parse(&c, buf), 0);
	assert_false(digest_check(DIGEST_SHA256, RFC7616_SHA256_HA1, &c, S("GET")));

	rfc7616_header(buf, sizeof(buf), "SHA-256", "753927FA0E85D155564E2E272A28D1802CA10DAF4496794697CF8DB5856CB6C1");
	assert_int_equal(parse(&c, buf), 0);
	assert_true(digest_check(DIGEST_SHA256, RFC7616_SHA256_HA1, &c, S("GET")));
}

/* A user without a stored hash must never verify: H("" ":" nonce ...) needs no password. */
static void test_check_needs_ha1(void **state)
{
	struct digest_cred c;
	char buf[1024], out[DIGEST_HEX_MAX];

	(void)state;
	rfc7616_header(buf, sizeof(buf), "MD5", RFC7616_MD5_RESPONSE);
	assert_int_equal(parse(&c, buf), 0);
	digest_expected(DIGEST_MD5, "", &c, S("GET"), out);
	assert_string_equal(out, "");
	assert_false(digest_check(DIGEST_MD5, "", &c, S("GET")));
	assert_false(digest_check(DIGEST_MD5, NULL, &c, S("GET")));
	assert_false(digest_check(DIGEST_MD5, RFC7616_SHA256_HA1, &c, S("GET")));   /* wrong length */
	assert_false(digest_check(DIGEST_MD5, "3d78807defe7de2157e2b0b6573a855g", &c, S("GET"))); /* not hex */
}

/* RFC 2617 3.5 (testrealm@host.com): the RFC 2069 form without qop, and the same with qop=auth. */
static void test_rfc2617(void **state)
{
	static const char no_qop[] =
		"Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
		"uri=\"/dir/index.html\", response=\"670fd8c2df070c60b045671b8b24ff02\", "
		"opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
	static const char with_qop[] =
		"Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
		"uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", "
		"response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
	struct digest_cred c;
	char ha1[DIGEST_HEX_MAX], out[DIGEST_HEX_MAX];

	(void)state;
	digest_ha1(DIGEST_MD5, S("Mufasa"), S("testrealm@host.com"), S("Circle Of Life"), ha1);
	assert_string_equal(ha1, "939e7578ed9e3c518a452acee763bce9");

	assert_int_equal(parse(&c, no_qop), 0);
	assert_false(c.has_qop);
	assert_int_equal(c.nc, 0);
	assert_int_equal(c.alg, DIGEST_MD5);
	digest_expected(DIGEST_MD5, ha1, &c, S("GET"), out);
	assert_string_equal(out, "670fd8c2df070c60b045671b8b24ff02");
	assert_true(digest_check(DIGEST_MD5, ha1, &c, S("GET")));

	assert_int_equal(parse(&c, with_qop), 0);
	assert_true(c.has_qop);
	assert_int_equal(c.nc, 1);
	assert_true(digest_check(DIGEST_MD5, ha1, &c, S("GET")));
}

/* ---- Credentials ---- */

static void test_parse_good(void **state)
{
	struct digest_cred c;

	(void)state;
	assert_int_equal(parse(&c, "Digest username=\"bob\", realm=\"biloxi.com\", nonce=\"abc\", "
				   "uri=\"sip:bob@biloxi.com\", response=\"0123\", algorithm=SHA-256, cnonce=\"xyz\", "
				   "opaque=\"op\", qop=auth, nc=0000001f"),
			 0);
	assert_true(slice_is(c.username, "bob"));
	assert_true(slice_is(c.realm, "biloxi.com"));
	assert_true(slice_is(c.nonce, "abc"));
	assert_true(slice_is(c.uri, "sip:bob@biloxi.com"));
	assert_true(slice_is(c.response, "0123"));
	assert_true(slice_is(c.algorithm, "SHA-256"));
	assert_true(slice_is(c.cnonce, "xyz"));
	assert_true(slice_is(c.opaque, "op"));
	assert_true(slice_is(c.qop, "auth"));
	assert_true(slice_is(c.nc_text, "0000001f"));
	assert_int_equal(c.alg, DIGEST_SHA256);
	assert_int_equal(c.nc, 0x1f);
	assert_true(c.has_qop);

	/* Case-insensitive scheme, names and algorithm; tight spacing; quoted qop and algorithm; unknown
	 * params skipped; empty list elements and a trailing comma tolerated. */
	assert_int_equal(parse(&c, "digest USERNAME=\"bob\",Realm=\"r\",,NONCE=\"n\" , Uri=\"sip:r\",response=\"1\","
				   "algorithm=\"sha-256\",qop=\"auth\",nc=FFFFFFFF,cnonce=\"c\",foo=bar,baz=\"q\","),
			 0);
	assert_int_equal(c.alg, DIGEST_SHA256);
	assert_int_equal(c.nc, 0xffffffffu);
	assert_true(slice_is(c.realm, "r"));
	assert_false(slice_isset(c.opaque));

	/* algorithm absent: MD5 (RFC 7616 3.4). */
	assert_int_equal(parse(&c, "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"1\""), 0);
	assert_int_equal(c.alg, DIGEST_MD5);
	assert_false(c.has_qop);

	/* SHA-256 without qop: no such form (RFC 7616 3.3: qop is for all implementations; the RFC 2069 form
	 * without it is MD5's alone), so no credentials without a nonce count to replay */
	assert_int_equal(parse(&c, "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"1\", "
				   "algorithm=SHA-256"),
			 EBADMSG);
}

static void test_parse_folded(void **state)
{
	struct digest_cred c;

	(void)state;
	assert_int_equal(parse(&c, "Digest" CRLF " username=\"bob\"" CRLF "\t," CRLF "  realm=\"biloxi.com\"," CRLF
				   " nonce" CRLF " =" CRLF " \"n\", uri=\"sip:bob@biloxi.com\", response=\"0\""),
			 0);
	assert_true(slice_is(c.username, "bob"));
	assert_true(slice_is(c.realm, "biloxi.com"));
	assert_true(slice_is(c.nonce, "n"));
	/* A line break that is not a fold ends the header: malformed here. */
	assert_int_equal(parse(&c, "Digest username=\"bob\"," CRLF "realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\""),
			 EBADMSG);
	assert_int_equal(parse(&c, "Digest username=\"bob\",\n realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\""),
			 EBADMSG);
}

static void test_parse_escapes(void **state)
{
	struct digest_cred c;
	char buf[32];

	(void)state;
	assert_int_equal(parse(&c, "Digest username=\"bo\\\"b\\\\\", realm=\"a,b\", nonce=\"n\", uri=\"sip:x\", "
				   "response=\"0\""),
			 0);
	assert_true(slice_is(c.username, "bo\\\"b\\\\")); /* raw, escapes kept */
	assert_true(slice_is(c.realm, "a,b"));            /* a comma inside quotes is content */
	assert_true(digest_unq_eq(c.username, S("bo\"b\\")));
	assert_false(digest_unq_eq(c.username, S("bo\"b")));
	assert_false(digest_unq_eq(c.username, S("bo\\\"b\\\\")));
	assert_int_equal(digest_unq_copy(buf, sizeof(buf), c.username), 0);
	assert_string_equal(buf, "bo\"b\\");
	assert_int_equal(digest_unq_copy(buf, 5, c.username), ENOSPC);
	assert_int_equal(digest_unq_copy(buf, 6, c.username), 0);

	/* The hash covers unq(value): an escaped ordinary character counts as itself. */
	{
		char esc[1024], out[DIGEST_HEX_MAX];

		snprintf(esc, sizeof(esc),
			 "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/\\index.html\", "
			 "nonce=\"" RFC7616_NONCE "\", nc=00000001, cnonce=\"" RFC7616_CNONCE "\", qop=auth, "
			 "response=\"" RFC7616_MD5_RESPONSE "\"");
		assert_int_equal(parse(&c, esc), 0);
		digest_expected(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("GET"), out);
		assert_string_equal(out, RFC7616_MD5_RESPONSE);
	}

	/* Broken quoting. */
	assert_int_equal(parse(&c, "Digest username=\"bob, realm=\"r\""), EBADMSG);
	assert_int_equal(parse(&c, "Digest username=\"bob\\"), EBADMSG);
	assert_int_equal(parse(&c, "Digest username=\"b\001b\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\""),
			 EBADMSG);
	assert_int_equal(parse(&c, "Digest username=\"bob\"x, realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\""),
			 EBADMSG);
}

/* A quoted value is skipped 16 bytes at a time: a control character, DEL, an escape, a tab or the closing
 * quote at every offset of a long value is found where it is. */
static void test_parse_long_quoted(void **state)
{
	struct digest_cred c;
	char v[48], buf[256];

	(void)state;
	for (size_t at = 0; at < 40; at++) {
		static const struct {
			const char *put;
			int want;
		} cases[] = { { "\001", EBADMSG }, { "\177", EBADMSG }, { "\n", EBADMSG }, { "\\\"", 0 },
			      { "\t", 0 },       { "\\x", 0 },      { "\"", EBADMSG } };

		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			size_t pl = strlen(cases[k].put);

			memset(v, 'u', 40);
			memcpy(v + at, cases[k].put, pl);
			v[40 + pl] = '\0';
			memset(v + 40, 'u', pl);
			snprintf(buf, sizeof(buf), "Digest username=\"%s\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", "
				 "response=\"1\"", v);
			assert_int_equal(parse(&c, buf), cases[k].want);
			if (!cases[k].want)
				assert_true(slice_is(c.username, v));
		}
		/* the closing quote at every offset */
		memset(v, 'u', at);
		v[at] = '\0';
		snprintf(buf, sizeof(buf), "Digest username=\"%s\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"1\"", v);
		assert_int_equal(parse(&c, buf), at ? 0 : EBADMSG);
		if (at)
			assert_true(slice_is(c.username, v));
	}
}

/* Lower-case hex of H(text), computed here in one call, as the reference for the hashes sipd feeds
 * in pieces. */
static void ref_hex(const EVP_MD *md, const char *text, size_t len, char out[DIGEST_HEX_MAX])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;

	assert_true(EVP_Digest(text, len, d, &dl, md, NULL));
	for (unsigned i = 0; i < dl; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Parts of every length around the feed buffer's (512 bytes): the same hash as the parts joined by ':'
 * in one piece, escapes dropped where the hash covers unq(value). */
static void test_long_parts(void **state)
{
	static const size_t lens[] = { 0, 1, 255, 509, 510, 511, 512, 513, 1000, 1024, 3000 };
	static char user[3001], joined[8192], hdr[8192], uri[3100], plain_uri[3100];
	char out[DIGEST_HEX_MAX], want[DIGEST_HEX_MAX], ha2[DIGEST_HEX_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t l = lens[i];
		int n;

		memset(user, 'a' + (int)(i % 26), l);
		user[l] = '\0';
		digest_ha1(DIGEST_MD5, slice_make(user, l), S("sipd"), S("secret"), out);
		n = snprintf(joined, sizeof(joined), "%s:sipd:secret", user);
		ref_hex(EVP_md5(), joined, (size_t)n, want);
		assert_string_equal(out, want);
		digest_ha1(DIGEST_SHA256, S("alice"), slice_make(user, l), slice_make(user, l), out);
		n = snprintf(joined, sizeof(joined), "alice:%s:%s", user, user);
		ref_hex(EVP_sha256(), joined, (size_t)n, want);
		assert_string_equal(out, want);

		/* a long uri with a quoted-pair every 100 bytes: the hash covers it unescaped */
		size_t u = 0, pu = 0;

		for (size_t k = 0; k < l; k++) {
			if (k % 100 == 50) {
				uri[u++] = '\\';
			}
			uri[u++] = (char)('0' + k % 10);
			plain_uri[pu++] = (char)('0' + k % 10);
		}
		uri[u] = plain_uri[pu] = '\0';
		struct digest_cred c;

		snprintf(hdr, sizeof(hdr),
			 "Digest username=\"Mufasa\", realm=\"r\", uri=\"sip:%s\", nonce=\"" RFC7616_NONCE "\", "
			 "nc=00000001, cnonce=\"" RFC7616_CNONCE "\", qop=auth, response=\"0\"",
			 uri);
		assert_int_equal(parse(&c, hdr), 0);
		digest_expected(DIGEST_MD5, RFC7616_MD5_HA1, &c, S("REGISTER"), out);
		n = snprintf(joined, sizeof(joined), "REGISTER:sip:%s", plain_uri);
		ref_hex(EVP_md5(), joined, (size_t)n, ha2);
		n = snprintf(joined, sizeof(joined), RFC7616_MD5_HA1 ":" RFC7616_NONCE ":00000001:" RFC7616_CNONCE ":auth:%s",
			     ha2);
		ref_hex(EVP_md5(), joined, (size_t)n, want);
		assert_string_equal(out, want);
	}
}

static void test_parse_missing(void **state)
{
	static const char *const bad[] = {
		"Digest realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\"",
		"Digest username=\"a\", nonce=\"n\", uri=\"u\", response=\"0\"",
		"Digest username=\"a\", realm=\"r\", uri=\"u\", response=\"0\"",
		"Digest username=\"a\", realm=\"r\", nonce=\"n\", response=\"0\"",
		"Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\"",
		"Digest username=\"\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\"",
		/* qop without nc or cnonce */
		"Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", qop=auth, cnonce=\"c\"",
		"Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", qop=auth, nc=00000001",
		/* syntax */
		"", "Digest", "Digest ", "Digest ,", "Digest username", "Digest username=", "Digest =\"a\"",
		"Digestusername=\"a\"", "Digest username=\"a\" realm=\"r\"", "Digest username=a b",
	};
	struct digest_cred c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = parse(&c, bad[i]);

		if (i == 15) /* "Digestusername" is one token: some other scheme */
			assert_int_equal(err, ENOTSUP);
		else if (err != EBADMSG)
			fail_msg("case %zu (%s): %d", i, bad[i], err);
	}
	assert_int_equal(digest_cred_parse(&c, SLICE_NULL), EBADMSG);
	assert_int_equal(digest_cred_parse(NULL, S("Digest")), EINVAL);
}

static void test_parse_bad_nc(void **state)
{
	static const char *const nc[] = { "0000001", "000000001", "0000000g", "\"00000001\"x", "-0000001", "00000000" };
	struct digest_cred c;
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(nc) / sizeof(nc[0]); i++) {
		snprintf(buf, sizeof(buf),
			 "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", qop=auth, "
			 "cnonce=\"c\", nc=%s",
			 nc[i]);
		if (parse(&c, buf) != EBADMSG)
			fail_msg("nc=%s accepted", nc[i]);
	}
	/* nc without qop means nothing: reported as 0 so digest_nonce_use does not count it. */
	assert_int_equal(parse(&c, "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", "
				   "nc=00000005"),
			 0);
	assert_false(c.has_qop);
	assert_int_equal(c.nc, 0);
}

static void test_parse_duplicate(void **state)
{
	struct digest_cred c;

	(void)state;
	assert_int_equal(parse(&c, "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", "
				   "realm=\"other\""),
			 EBADMSG);
	assert_int_equal(parse(&c, "Digest username=\"a\", Username=\"b\", realm=\"r\", nonce=\"n\", uri=\"u\", "
				   "response=\"0\""),
			 EBADMSG);
	assert_int_equal(parse(&c, "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", "
				   "qop=auth, nc=00000001, cnonce=\"c\", nc=00000002"),
			 EBADMSG);
}

static void test_parse_unsupported(void **state)
{
	static const char *const algs[] = { "MD5-sess", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess", "SHA1",
					    "\"\"" };
	struct digest_cred c;
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		snprintf(buf, sizeof(buf),
			 "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", algorithm=%s", algs[i]);
		if (parse(&c, buf) != ENOTSUP)
			fail_msg("algorithm=%s not ENOTSUP", algs[i]);
	}
	assert_int_equal(parse(&c, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), ENOTSUP);
	assert_int_equal(parse(&c, "Bearer abc"), ENOTSUP);
	assert_int_equal(parse(&c, "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", "
				   "qop=auth-int, nc=00000001, cnonce=\"c\""),
			 ENOTSUP);
	assert_int_equal(parse(&c, "Digest username=\"5a8e\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", "
				   "userhash=true"),
			 ENOTSUP);
	assert_int_equal(parse(&c, "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\", "
				   "userhash=false"),
			 0);
}

/* ---- Nonces ---- */

#define LIFETIME 300
#define T0 1700000000u

static void test_nonce_roundtrip(void **state)
{
	struct digest_nonces *n, *other;
	char nonce[DIGEST_NONCE_MAX], nonce2[DIGEST_NONCE_MAX];

	(void)state;
	assert_int_equal(digest_nonces_new(&n, LIFETIME, 1000), 0);
	assert_int_equal(digest_nonces_new(&other, LIFETIME, 1000), 0);
	digest_nonce_make(n, S("sipd"), T0, nonce);
	digest_nonce_make(n, S("sipd"), T0, nonce2);
	assert_int_equal(strlen(nonce), 43);
	assert_string_not_equal(nonce, nonce2); /* random part */
	for (const char *p = nonce; *p; p++)     /* base64url: safe in a quoted-string and a URI */
		assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p) != NULL);

	assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(nonce), T0), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(nonce), T0 + LIFETIME), DIGEST_NONCE_OK);
	/* Another realm, or another server's secret (a restart): BAD. */
	assert_int_equal(digest_nonce_check(n, S("sipd2"), slice_cstr(nonce), T0), DIGEST_NONCE_BAD);
	assert_int_equal(digest_nonce_check(n, S(""), slice_cstr(nonce), T0), DIGEST_NONCE_BAD);
	assert_int_equal(digest_nonce_check(other, S("sipd"), slice_cstr(nonce), T0), DIGEST_NONCE_BAD);
	digest_nonces_free(other);
	digest_nonces_free(n);
}

static void test_nonce_tampered(void **state)
{
	static const char *const garbage[] = { "", "x", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
					       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
					       "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" };
	struct digest_nonces *n;
	char nonce[DIGEST_NONCE_MAX], t[DIGEST_NONCE_MAX];

	(void)state;
	assert_int_equal(digest_nonces_new(&n, LIFETIME, 1000), 0);
	digest_nonce_make(n, S("sipd"), T0, nonce);
	/* Every character changed in turn: the timestamp, the random part, the MAC. */
	for (size_t i = 0; i < strlen(nonce); i++) {
		strcpy(t, nonce);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		if (digest_nonce_check(n, S("sipd"), slice_cstr(t), T0) != DIGEST_NONCE_BAD)
			fail_msg("changed at %zu: %s accepted", i, t);
	}
	/* Same bits, another spelling: the last character's 2 spare bits set. */
	strcpy(t, nonce);
	t[42] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		[(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", t[42]) -
		  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") | 1];
	assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(t), T0), DIGEST_NONCE_BAD);
	assert_int_equal(digest_nonce_use(n, slice_cstr(t), 1, T0), DIGEST_NONCE_BAD);
	/* Truncated, extended, garbage. */
	strcpy(t, nonce);
	t[42] = '\0';
	assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(t), T0), DIGEST_NONCE_BAD);
	strcpy(t, nonce);
	strcat(t, "A");
	assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(t), T0), DIGEST_NONCE_BAD);
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
		assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(garbage[i]), T0), DIGEST_NONCE_BAD);
	assert_int_equal(digest_nonce_check(n, S("sipd"), SLICE_NULL, T0), DIGEST_NONCE_BAD);
	assert_int_equal(digest_nonce_use(n, S("garbage"), 1, T0), DIGEST_NONCE_BAD);
	digest_nonces_free(n);
}

static void test_nonce_stale(void **state)
{
	struct digest_nonces *n;
	char nonce[DIGEST_NONCE_MAX];

	(void)state;
	assert_int_equal(digest_nonces_new(&n, LIFETIME, 1000), 0);
	digest_nonce_make(n, S("sipd"), T0, nonce);
	assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(nonce), T0 + LIFETIME + 1), DIGEST_NONCE_STALE);
	assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(nonce), T0 + 86400), DIGEST_NONCE_STALE);
	assert_int_equal(digest_nonce_use(n, slice_cstr(nonce), 1, T0 + LIFETIME + 1), DIGEST_NONCE_STALE);
	/* From the future (the clock stepped back): a few seconds are fine, more are not. */
	assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(nonce), T0 - 2), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_check(n, S("sipd"), slice_cstr(nonce), T0 - 600), DIGEST_NONCE_STALE);
	digest_nonces_free(n);
}

/* digest_nonce_verify, the check and the count in one: the check's verdict first (a wrong realm or a
 * tampered nonce BAD, an old one STALE, neither touching the count), then REPLAY for a count that does
 * not go up, and for one that cannot be kept (the table full of fresh nonces): never a second use. */
static void test_nonce_verify(void **state)
{
	struct digest_nonces *n, *one;
	char nonce[DIGEST_NONCE_MAX], other[DIGEST_NONCE_MAX], bad[DIGEST_NONCE_MAX];
	struct slice s;

	(void)state;
	assert_int_equal(digest_nonces_new(&n, LIFETIME, 1000), 0);
	digest_nonce_make(n, S("sipd"), T0, nonce);
	s = slice_cstr(nonce);
	assert_int_equal(digest_nonce_verify(n, S("sipd"), s, 1, T0), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_verify(n, S("sipd"), s, 1, T0), DIGEST_NONCE_REPLAY);
	assert_int_equal(digest_nonce_verify(n, S("other"), s, 2, T0), DIGEST_NONCE_BAD);
	strcpy(bad, nonce);
	bad[5] = bad[5] == 'A' ? 'B' : 'A';
	assert_int_equal(digest_nonce_verify(n, S("sipd"), slice_cstr(bad), 2, T0), DIGEST_NONCE_BAD);
	assert_int_equal(digest_nonce_verify(n, S("sipd"), s, 2, T0 + LIFETIME + 1), DIGEST_NONCE_STALE);
	assert_int_equal(digest_nonce_verify(n, S("sipd"), s, 2, T0 + 1), DIGEST_NONCE_OK); /* none counted 2 */
	assert_int_equal(digest_nonce_verify(n, S("sipd"), s, 0, T0 + 1), DIGEST_NONCE_OK); /* no qop: uncounted */
	assert_int_equal(digest_nonce_verify(n, S("sipd"), s, 0, T0 + 1), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_verify(n, S("sipd"), SLICE_NULL, 1, T0), DIGEST_NONCE_BAD);
	digest_nonces_free(n);

	assert_int_equal(digest_nonces_new(&one, LIFETIME, 1), 0);
	digest_nonce_make(one, S("sipd"), T0, nonce);
	digest_nonce_make(one, S("sipd"), T0, other);
	assert_int_equal(digest_nonce_verify(one, S("sipd"), slice_cstr(nonce), 1, T0), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_verify(one, S("sipd"), slice_cstr(other), 1, T0), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_verify(one, S("sipd"), slice_cstr(nonce), 2, T0), DIGEST_NONCE_REPLAY);
	digest_nonces_free(one);
}

static void test_nonce_replay(void **state)
{
	struct digest_nonces *n;
	char nonce[DIGEST_NONCE_MAX], other[DIGEST_NONCE_MAX];
	struct slice s;

	(void)state;
	assert_int_equal(digest_nonces_new(&n, LIFETIME, 1000), 0);
	digest_nonce_make(n, S("sipd"), T0, nonce);
	digest_nonce_make(n, S("sipd"), T0, other);
	s = slice_cstr(nonce);
	assert_int_equal(digest_nonce_use(n, s, 1, T0), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_use(n, s, 2, T0 + 1), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_use(n, s, 2, T0 + 1), DIGEST_NONCE_REPLAY);
	assert_int_equal(digest_nonce_use(n, s, 1, T0 + 2), DIGEST_NONCE_REPLAY);
	assert_int_equal(digest_nonce_use(n, s, 5, T0 + 3), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_use(n, s, 4, T0 + 3), DIGEST_NONCE_REPLAY);
	/* Another nonce has its own count. */
	assert_int_equal(digest_nonce_use(n, slice_cstr(other), 1, T0), DIGEST_NONCE_OK);
	/* No qop (RFC 2069): nc 0, not counted, accepted while the nonce lives. */
	assert_int_equal(digest_nonce_use(n, s, 0, T0 + 4), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonce_use(n, s, 0, T0 + 4), DIGEST_NONCE_OK);
	assert_int_equal(digest_nonces_tracked(n), 2);
	/* Once the nonce is stale its entry goes, and the nonce stays refused. */
	assert_int_equal(digest_nonce_use(n, s, 6, T0 + LIFETIME + 1), DIGEST_NONCE_STALE);
	digest_nonce_make(n, S("sipd"), T0 + LIFETIME + 1, other);
	assert_int_equal(digest_nonce_use(n, slice_cstr(other), 1, T0 + LIFETIME + 1), DIGEST_NONCE_OK);
	assert_true(digest_nonces_tracked(n) <= 3); /* expiry is lazy, shard by shard */
	digest_nonces_free(n);
}

/* Entries of expired nonces are taken over by the next first uses (no free and malloc each): a nonce
 * counted in a reused entry is counted as itself, and its replays are still refused. Expiry is per
 * shard, at a first use in that shard, and the shard of a nonce follows from a random seed: OLD
 * nonces spread over the shards, then MANY later ones, enough that every shard sees a first use
 * (a shard missed by all of them has odds of 16 * (15/16)^1024, about 10^-27), so that every old
 * entry has gone, taken over or freed, and exactly the later ones are tracked. */
static void test_nonce_reuse(void **state)
{
	enum { OLD = 64, MANY = 1024 };
	struct digest_nonces *n;
	static char nonce[MANY][DIGEST_NONCE_MAX];
	const uint64_t later = T0 + 10 * LIFETIME;

	(void)state;
	assert_int_equal(digest_nonces_new(&n, LIFETIME, 100000), 0);
	for (int i = 0; i < OLD; i++) {
		digest_nonce_make(n, S("sipd"), T0, nonce[i]);
		assert_int_equal(digest_nonce_use(n, slice_cstr(nonce[i]), 1, T0), DIGEST_NONCE_OK);
	}
	assert_int_equal(digest_nonces_tracked(n), OLD);
	for (int i = 0; i < MANY; i++) {
		digest_nonce_make(n, S("sipd"), later, nonce[i]);
		assert_int_equal(digest_nonce_use(n, slice_cstr(nonce[i]), 3, later), DIGEST_NONCE_OK);
	}
	assert_int_equal(digest_nonces_tracked(n), MANY);
	for (int i = 0; i < MANY; i++) {
		assert_int_equal(digest_nonce_use(n, slice_cstr(nonce[i]), 3, later), DIGEST_NONCE_REPLAY);
		assert_int_equal(digest_nonce_use(n, slice_cstr(nonce[i]), 2, later), DIGEST_NONCE_REPLAY);
		assert_int_equal(digest_nonce_use(n, slice_cstr(nonce[i]), 4, later), DIGEST_NONCE_OK);
	}
	assert_int_equal(digest_nonces_tracked(n), MANY);
	digest_nonces_free(n);
}

/* More nonces than max_tracked: the table stays within its bound, and a nonce that lost its history
 * to make room is STALE (a fresh challenge), never a fresh start for a replayed request. */
static void test_nonce_bound(void **state)
{
	enum { MAX = 64, MANY = 5000 };
	struct digest_nonces *n;
	char first[DIGEST_NONCE_MAX], nonce[DIGEST_NONCE_MAX];
	unsigned ok = 0, stale = 0;

	(void)state;
	assert_int_equal(digest_nonces_new(&n, LIFETIME, MAX), 0);
	digest_nonce_make(n, S("sipd"), T0, first);
	assert_int_equal(digest_nonce_use(n, slice_cstr(first), 1, T0), DIGEST_NONCE_OK);
	/* One new nonce a second: the table turns over within the lifetime (eviction), then entries
	 * also age out (expiry). */
	for (unsigned i = 1; i <= MANY; i++) {
		digest_nonce_make(n, S("sipd"), T0 + i, nonce);
		assert_int_equal(digest_nonce_use(n, slice_cstr(nonce), 1, T0 + i), DIGEST_NONCE_OK);
		assert_true(digest_nonces_tracked(n) <= MAX);
	}
	assert_true(digest_nonces_tracked(n) >= MAX / 2);

	/* Overload: thousands of first uses within one second. Bounded, and some newcomers are told
	 * STALE (their second is the one being evicted); the next second works again. */
	for (unsigned i = 0; i < MANY; i++) {
		digest_nonce_make(n, S("sipd"), T0 + MANY + 1, nonce);
		switch (digest_nonce_use(n, slice_cstr(nonce), 1, T0 + MANY + 1)) {
		case DIGEST_NONCE_OK:
			ok++;
			break;
		case DIGEST_NONCE_STALE:
			stale++;
			break;
		default:
			fail();
		}
		assert_true(digest_nonces_tracked(n) <= MAX);
	}
	assert_true(ok >= MAX && stale > 0);
	digest_nonce_make(n, S("sipd"), T0 + MANY + 2, nonce);
	assert_int_equal(digest_nonce_use(n, slice_cstr(nonce), 1, T0 + MANY + 2), DIGEST_NONCE_OK);
	digest_nonces_free(n);

	/* The smallest table: one shard, one entry. Each first use evicts the last nonce, still fresh, whose
	 * history is gone: it is STALE from then on, at any count (a table of several shards evicts it too,
	 * but only once enough nonces landed in its shard, which a random seed decides). */
	assert_int_equal(digest_nonces_new(&n, LIFETIME, 1), 0);
	digest_nonce_make(n, S("sipd"), T0, first);
	assert_int_equal(digest_nonce_use(n, slice_cstr(first), 1, T0), DIGEST_NONCE_OK);
	for (unsigned i = 1; i <= 100; i++) {
		digest_nonce_make(n, S("sipd"), T0 + i, nonce);
		assert_int_equal(digest_nonce_use(n, slice_cstr(nonce), 1, T0 + i), DIGEST_NONCE_OK);
		assert_int_equal(digest_nonces_tracked(n), 1);
		assert_int_equal(digest_nonce_use(n, slice_cstr(first), 1 + i, T0 + i), DIGEST_NONCE_STALE);
	}
	digest_nonces_free(n);
	assert_int_equal(digest_nonces_new(&n, 0, 10), EINVAL);
	assert_int_equal(digest_nonces_new(&n, 10, 0), EINVAL);
}

/* ---- Challenges ---- */

static void test_challenge(void **state)
{
	char mem[256];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, mem, sizeof(mem));
	digest_challenge_write(&b, "WWW-Authenticate", S("sipd"), "abc-_", DIGEST_SHA256, false);
	digest_challenge_write(&b, "Proxy-Authenticate", S("biloxi.com"), "xyz", DIGEST_MD5, true);
	assert_false(b.overflow);
	assert_int_equal(b.len, strlen("WWW-Authenticate: Digest realm=\"sipd\", nonce=\"abc-_\", algorithm=SHA-256, "
				       "qop=\"auth\"" CRLF
				       "Proxy-Authenticate: Digest realm=\"biloxi.com\", nonce=\"xyz\", algorithm=MD5, "
				       "qop=\"auth\", stale=true" CRLF));
	assert_memory_equal(mem,
			    "WWW-Authenticate: Digest realm=\"sipd\", nonce=\"abc-_\", algorithm=SHA-256, qop=\"auth\"" CRLF
			    "Proxy-Authenticate: Digest realm=\"biloxi.com\", nonce=\"xyz\", algorithm=MD5, qop=\"auth\", "
			    "stale=true" CRLF,
			    b.len);

	/* A realm with quotes, a backslash or a line break cannot break out of its quoted-string. */
	sbuf_init(&b, mem, sizeof(mem));
	digest_challenge_write(&b, "WWW-Authenticate", S("a\"b\\c\r\nX: y"), "n", DIGEST_MD5, false);
	assert_int_equal(b.len, strlen("WWW-Authenticate: Digest realm=\"a\\\"b\\\\cX: y\", nonce=\"n\", algorithm=MD5, "
				       "qop=\"auth\"" CRLF));
	assert_memory_equal(mem, "WWW-Authenticate: Digest realm=\"a\\\"b\\\\cX: y\", nonce=\"n\"", 47);

	/* Too small: the buffer latches overflow. */
	sbuf_init(&b, mem, 20);
	digest_challenge_write(&b, "WWW-Authenticate", S("sipd"), "n", DIGEST_MD5, false);
	assert_true(b.overflow);
}

/* ---- Limiter ---- */

#define FAILS 5
#define WINDOW 60
#define BLOCK 30

static void fail_n(struct digest_limiter *l, const char *src, const char *user, unsigned n, uint64_t now)
{
	for (unsigned i = 0; i < n; i++)
		digest_limiter_failure(l, slice_cstr(src), slice_cstr(user), now);
}

static bool blocked(struct digest_limiter *l, const char *src, const char *user, uint64_t now)
{
	return digest_limiter_blocked(l, slice_cstr(src), slice_cstr(user), now);
}

static void test_limiter_block(void **state)
{
	struct digest_limiter *l;

	(void)state;
	assert_int_equal(digest_limiter_new(&l, FAILS, WINDOW, BLOCK, 1000), 0);
	fail_n(l, "192.0.2.1", "alice", FAILS - 2, T0);
	assert_int_equal(digest_limiter_failure(l, S("192.0.2.1"), S("alice"), T0), 0); /* no block starts */
	assert_false(blocked(l, "192.0.2.1", "alice", T0));
	/* the failure that starts the block says for how long */
	assert_int_equal(digest_limiter_failure(l, S("192.0.2.1"), S("alice"), T0 + 1), BLOCK);
	assert_true(blocked(l, "192.0.2.1", "alice", T0 + 1));
	assert_int_equal(digest_limiter_failure(l, S("192.0.2.1"), S("alice"), T0 + 2), 0); /* refused anyway */
	/* Only that pair: the same address for another user (a NAT), the user from elsewhere. */
	assert_false(blocked(l, "192.0.2.1", "bob", T0 + 1));
	assert_false(blocked(l, "192.0.2.2", "alice", T0 + 1));
	/* The block ends after block_s. */
	assert_true(blocked(l, "192.0.2.1", "alice", T0 + 1 + BLOCK - 1));
	assert_false(blocked(l, "192.0.2.1", "alice", T0 + 1 + BLOCK));

	/* Failures spread wider than the window never block. */
	for (unsigned i = 0; i < 3 * FAILS; i++)
		fail_n(l, "192.0.2.9", "carol", 1, T0 + i * (WINDOW / (FAILS - 1) + 1));
	assert_false(blocked(l, "192.0.2.9", "carol", T0 + 3 * FAILS * (WINDOW / (FAILS - 1) + 1)));
	digest_limiter_free(l);
	assert_int_equal(digest_limiter_new(&l, 0, WINDOW, BLOCK, 10), EINVAL);
	assert_int_equal(digest_limiter_new(&l, FAILS, WINDOW, BLOCK, 0), EINVAL);
}

struct seen_blocks {
	unsigned n;
	char keys[8][96];
	uint32_t length[8];
	uint64_t until[8];
};

static void note_block(void *arg, const struct digest_block *b)
{
	struct seen_blocks *s = arg;

	if (s->n < 8) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%.*s|%.*s", SLICE_ARG(b->source), SLICE_ARG(b->user));
		s->length[s->n] = b->length;
		s->until[s->n] = b->until;
	}
	s->n++;
}

/* What sipctl show blocks and unblock ask of a limiter: the pairs blocked now, listed; the pairs of a
 * user or of an address forgotten, their failures so far with them. */
static void test_limiter_list_forget(void **state)
{
	struct seen_blocks seen = { 0 };
	struct digest_limiter *l;
	struct slice alice = S("alice"), v6 = S("2001:db8:0:7::99"), src = S("192.0.2.1");

	(void)state;
	assert_int_equal(digest_limiter_new(&l, FAILS, WINDOW, BLOCK, 1000), 0);
	fail_n(l, "192.0.2.1", "alice", FAILS, T0);
	fail_n(l, "192.0.2.2", "alice", FAILS, T0);
	fail_n(l, "192.0.2.1", "bob", FAILS, T0);
	fail_n(l, "2001:db8:0:7::1", "carol", FAILS, T0);
	fail_n(l, "192.0.2.3", "dave", FAILS - 1, T0); /* counting, not blocked */
	assert_int_equal(digest_limiter_blocks(l, T0, note_block, &seen), 4);
	assert_int_equal(seen.n, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(seen.length[i], BLOCK);
		assert_int_equal(seen.until[i], T0 + BLOCK);
	}
	/* the IPv6 source as the limiter counts it: its /64 */
	assert_true(!strcmp(seen.keys[0], "2001:db8:0:7::/64|carol") || !strcmp(seen.keys[1], "2001:db8:0:7::/64|carol") ||
		    !strcmp(seen.keys[2], "2001:db8:0:7::/64|carol") || !strcmp(seen.keys[3], "2001:db8:0:7::/64|carol"));
	/* a block over is not listed */
	assert_int_equal(digest_limiter_blocks(l, T0 + BLOCK, NULL, NULL), 0);

	/* alice's pairs go, from both addresses; bob's from one of them stays */
	assert_int_equal(digest_limiter_forget(l, NULL, &alice, T0 + 1), 2);
	assert_false(blocked(l, "192.0.2.1", "alice", T0 + 1));
	assert_false(blocked(l, "192.0.2.2", "alice", T0 + 1));
	assert_true(blocked(l, "192.0.2.1", "bob", T0 + 1));
	/* forgotten with its escalation: the next block is block_s again, after max_failures again */
	fail_n(l, "192.0.2.1", "alice", FAILS - 1, T0 + 2);
	assert_false(blocked(l, "192.0.2.1", "alice", T0 + 2));
	assert_int_equal(digest_limiter_failure(l, src, alice, T0 + 2), BLOCK);
	/* an address: every user's pair from it; an IPv6 address by its /64 */
	assert_int_equal(digest_limiter_forget(l, &src, NULL, T0 + 3), 2);
	assert_false(blocked(l, "192.0.2.1", "bob", T0 + 3));
	assert_int_equal(digest_limiter_forget(l, &v6, NULL, T0 + 3), 1);
	assert_false(blocked(l, "2001:db8:0:7::1", "carol", T0 + 3));
	/* a counting pair is forgotten too, but is no block lifted */
	assert_int_equal(digest_limiter_forget(l, NULL, NULL, T0 + 3), 0);
	assert_int_equal(digest_limiter_size(l), 0);
	assert_int_equal(digest_limiter_forget(NULL, NULL, NULL, T0), 0);
	assert_int_equal(digest_limiter_blocks(NULL, T0, NULL, NULL), 0);
	digest_limiter_free(l);
}

/* An IPv6 host holds a /64: failures from addresses across it count as one source; the next /64 is
 * another source, and an IPv4-mapped address is its IPv4 address's own. */
static void test_limiter_ipv6_prefix(void **state)
{
	struct digest_limiter *l;
	char src[64];

	(void)state;
	assert_int_equal(digest_limiter_new(&l, FAILS, WINDOW, BLOCK, 1000), 0);
	for (unsigned i = 0; i < FAILS; i++) {
		snprintf(src, sizeof(src), "2001:db8:0:1::%x", 0x100 + i);
		assert_false(blocked(l, src, "carol", T0));
		fail_n(l, src, "carol", 1, T0);
	}
	assert_true(blocked(l, "2001:db8:0:1::100", "carol", T0));
	assert_true(blocked(l, "2001:db8:0:1:ffff:ffff:ffff:ffff", "carol", T0));
	assert_true(blocked(l, "2001:DB8:0:1:0:0:0:7", "carol", T0));
	assert_false(blocked(l, "2001:db8:0:2::100", "carol", T0));
	assert_false(blocked(l, "2001:db8:0:1::100", "alice", T0));
	fail_n(l, "::ffff:192.0.2.7", "dave", FAILS, T0);
	assert_true(blocked(l, "::ffff:192.0.2.7", "dave", T0));
	assert_false(blocked(l, "::ffff:192.0.2.8", "dave", T0));
	digest_limiter_free(l);
}

/* A flood of failures that stops leaves its pairs behind only until a sweep finds them past their time:
 * counting pairs after their window, a blocked pair an hour after its block. */
static void test_limiter_sweep(void **state)
{
	struct digest_limiter *l;
	char user[32];

	(void)state;
	assert_int_equal(digest_limiter_new(&l, FAILS, WINDOW, BLOCK, 100000), 0);
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(user, sizeof(user), "made-up-%u", i);
		fail_n(l, "192.0.2.66", user, 1, T0);
	}
	fail_n(l, "192.0.2.67", "alice", FAILS, T0);
	assert_true(blocked(l, "192.0.2.67", "alice", T0));
	assert_int_equal(digest_limiter_size(l), 5001);
	assert_int_equal(digest_limiter_sweep(l, T0 + WINDOW - 1), 0); /* all still count */
	assert_int_equal(digest_limiter_sweep(l, T0 + WINDOW), 5000);
	assert_int_equal(digest_limiter_size(l), 1); /* the blocked pair stays */
	assert_int_equal(digest_limiter_sweep(l, T0 + BLOCK + 3600), 1);
	assert_int_equal(digest_limiter_size(l), 0);
	digest_limiter_free(l);
}

static void test_limiter_doubling(void **state)
{
	struct digest_limiter *l;
	uint64_t t = T0;

	(void)state;
	assert_int_equal(digest_limiter_new(&l, FAILS, WINDOW, BLOCK, 1000), 0);
	fail_n(l, "192.0.2.1", "alice", FAILS, t);
	assert_true(blocked(l, "192.0.2.1", "alice", t + BLOCK - 1));
	t += BLOCK; /* first block over */
	assert_false(blocked(l, "192.0.2.1", "alice", t));
	fail_n(l, "192.0.2.1", "alice", FAILS, t);
	assert_true(blocked(l, "192.0.2.1", "alice", t + 2 * BLOCK - 1)); /* twice as long */
	assert_false(blocked(l, "192.0.2.1", "alice", t + 2 * BLOCK));
	t += 2 * BLOCK;
	fail_n(l, "192.0.2.1", "alice", FAILS, t);
	assert_true(blocked(l, "192.0.2.1", "alice", t + 4 * BLOCK - 1));
	assert_false(blocked(l, "192.0.2.1", "alice", t + 4 * BLOCK));
	/* Up to an hour, no more. */
	for (int i = 0; i < 10; i++) {
		t += 3600;
		fail_n(l, "192.0.2.1", "alice", FAILS, t);
	}
	assert_true(blocked(l, "192.0.2.1", "alice", t + 3599));
	assert_false(blocked(l, "192.0.2.1", "alice", t + 3600));
	/* Failures while blocked do not stretch the block. */
	fail_n(l, "192.0.2.1", "alice", 100, t + 10);
	assert_false(blocked(l, "192.0.2.1", "alice", t + 3600));
	/* Quiet for an hour after a block: back to block_s. */
	t += 3600 + 3600;
	fail_n(l, "192.0.2.1", "alice", FAILS, t);
	assert_true(blocked(l, "192.0.2.1", "alice", t + BLOCK - 1));
	assert_false(blocked(l, "192.0.2.1", "alice", t + BLOCK));
	digest_limiter_free(l);
}

static void test_limiter_success(void **state)
{
	struct digest_limiter *l;

	(void)state;
	assert_int_equal(digest_limiter_new(&l, FAILS, WINDOW, BLOCK, 1000), 0);
	fail_n(l, "192.0.2.1", "alice", FAILS - 1, T0);
	digest_limiter_success(l, S("192.0.2.1"), S("alice"));
	fail_n(l, "192.0.2.1", "alice", FAILS - 1, T0);
	assert_false(blocked(l, "192.0.2.1", "alice", T0));
	fail_n(l, "192.0.2.1", "alice", 1, T0);
	assert_true(blocked(l, "192.0.2.1", "alice", T0));
	digest_limiter_success(l, S("192.0.2.1"), S("alice"));
	assert_false(blocked(l, "192.0.2.1", "alice", T0));
	assert_int_equal(digest_limiter_size(l), 0);
	/* ...and the escalation with it: the next block is block_s again. */
	fail_n(l, "192.0.2.1", "alice", FAILS, T0 + 1);
	assert_false(blocked(l, "192.0.2.1", "alice", T0 + 1 + BLOCK));
	digest_limiter_success(l, S("192.0.2.7"), S("nobody")); /* unknown pair: nothing happens */
	digest_limiter_free(l);
}

/* Bounded memory; a flood of fresh pairs evicts counting pairs before a blocked one. */
static void test_limiter_bound(void **state)
{
	enum { MAX = 32 };
	struct digest_limiter *l;
	char user[32];
	char longname[600];

	(void)state;
	assert_int_equal(digest_limiter_new(&l, FAILS, WINDOW, BLOCK, MAX), 0);
	fail_n(l, "198.51.100.1", "victim", FAILS, T0);
	for (unsigned i = 0; i < 5000; i++) {
		snprintf(user, sizeof(user), "u%u", i);
		fail_n(l, "203.0.113.5", user, 1, T0 + 1);
		assert_true(digest_limiter_size(l) <= MAX);
	}
	/* Sharded: the victim's shard had room to spare only if the flood missed it; either way it stays
	 * blocked, since only counting pairs were evicted. */
	assert_true(blocked(l, "198.51.100.1", "victim", T0 + 2));
	/* Over-long keys are cut, not refused. */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	fail_n(l, longname, longname, FAILS, T0);
	assert_true(blocked(l, longname, longname, T0));
	digest_limiter_free(l);
}

/* Pairs that no longer matter are forgotten as new failures come, long before the table is full: a
 * steady trickle of fresh pairs (a scan over made-up users) holds one window's worth of them. */
static void test_limiter_prune(void **state)
{
	struct digest_limiter *l;
	char user[32];

	(void)state;
	assert_int_equal(digest_limiter_new(&l, FAILS, WINDOW, BLOCK, 1u << 16), 0);
	fail_n(l, "198.51.100.1", "victim", FAILS, T0);           /* blocked at T0, for BLOCK */
	fail_n(l, "198.51.100.2", "slow", FAILS - 1, T0);         /* counting, its window open to T0 + WINDOW */
	for (unsigned t = 0; t < 10 * WINDOW; t++) {
		for (unsigned i = 0; i < 10; i++) {
			snprintf(user, sizeof(user), "scan%u-%u", t, i);
			fail_n(l, "203.0.113.5", user, 1, T0 + t);
		}
		/* 10 new pairs a second, each forgotten once its window has passed: about one window's worth
		 * (a shard prunes when failures land in it, so a little more), never all 6000 */
		assert_true(digest_limiter_size(l) <= 10 * WINDOW * 5 / 4);
		if (t == WINDOW - 1) {
			/* a pair whose window is still open keeps its count: one more failure blocks it */
			assert_false(blocked(l, "198.51.100.2", "slow", T0 + t));
			fail_n(l, "198.51.100.2", "slow", 1, T0 + t);
			assert_true(blocked(l, "198.51.100.2", "slow", T0 + t));
		}
	}
	/* Blocked pairs are kept for an hour past their block (the next block would double), then
	 * forgotten like the rest: a thousand fresh pairs two hours on leave only themselves. */
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(user, sizeof(user), "later%u", i);
		fail_n(l, "203.0.113.6", user, 1, T0 + 2 * 3600);
	}
	assert_int_equal(digest_limiter_size(l), 1000);
	digest_limiter_free(l);
}

struct hammer {
	struct digest_limiter *l;
	struct digest_nonces *n;
	struct digest_trust *t;
	unsigned id;
	char nonce[DIGEST_NONCE_MAX];
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	static const char *const srcs[] = { "192.0.2.1", "192.0.2.2", "[2001:db8::1]:5060" };
	static const char *const users[] = { "alice", "bob", "carol", "dave", "erin" };
	uint32_t x = 2463534242u ^ h->id;

	for (unsigned i = 0; i < 20000; i++) {
		struct slice src, user;
		uint64_t now = T0 + i / 100;

		x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift: a cheap, repeatable mix */
		src = slice_cstr(srcs[x % 3]);
		user = slice_cstr(users[(x >> 8) % 5]);
		switch ((x >> 16) % 8) {
		case 0:
			digest_limiter_success(h->l, src, user);
			digest_trust_note(h->t, src, user, now);
			if (!digest_trust_has(h->t, src, user))
				return (void *)3; /* five users, room for 1000: noted, then found */
			break;
		case 1:
		case 2:
			(void)digest_limiter_blocked(h->l, src, user, now);
			break;
		default:
			digest_limiter_failure(h->l, src, user, now);
			break;
		}
		if (i % 4 == 0) {
			digest_nonce_make(h->n, S("sipd"), now, h->nonce);
			enum digest_verdict v;

			if (digest_nonce_check(h->n, S("sipd"), slice_cstr(h->nonce), now) != DIGEST_NONCE_OK)
				return (void *)1; /* a fresh nonce: its MAC must verify */
			/* 100 first uses a second in a 64-entry table: some are told STALE (see test_nonce_bound). */
			v = digest_nonce_use(h->n, slice_cstr(h->nonce), 1, now);
			if (v != DIGEST_NONCE_OK && v != DIGEST_NONCE_STALE)
				return (void *)2;
			/* The same nc again is never OK: REPLAY, or STALE if another thread evicted it meanwhile. */
			if (v == DIGEST_NONCE_OK && digest_nonce_use(h->n, slice_cstr(h->nonce), 1, now) == DIGEST_NONCE_OK)
				return (void *)3;
		}
	}
	return NULL;
}


static bool trusted(struct digest_trust *t, const char *src, const char *user)
{
	return digest_trust_has(t, slice_cstr(src), slice_cstr(user));
}

static void note(struct digest_trust *t, const char *src, const char *user, uint64_t now)
{
	digest_trust_note(t, slice_cstr(src), slice_cstr(user), now);
}

/* Where a user authenticated from: that user and those addresses only; its last four, the least
 * recently seen forgotten first; an IPv6 source by its /64; a full table notes no new user. */
static void test_trust(void **state)
{
	struct digest_trust *t;

	(void)state;
	assert_int_equal(digest_trust_new(&t, 1000), 0);
	assert_false(trusted(t, "192.0.2.1", "alice"));
	note(t, "192.0.2.1", "alice", T0);
	assert_true(trusted(t, "192.0.2.1", "alice"));
	assert_false(trusted(t, "192.0.2.2", "alice"));
	assert_false(trusted(t, "192.0.2.1", "bob"));
	assert_false(trusted(t, "192.0.2.1", "alicf"));
	note(t, "192.0.2.2", "alice", T0 + 1);
	note(t, "192.0.2.3", "alice", T0 + 2);
	note(t, "192.0.2.4", "alice", T0 + 3);
	note(t, "192.0.2.1", "alice", T0 + 4); /* seen again: now the most recent */
	note(t, "192.0.2.5", "alice", T0 + 5); /* a fifth: 192.0.2.2, seen least recently, goes */
	assert_true(trusted(t, "192.0.2.1", "alice"));
	assert_false(trusted(t, "192.0.2.2", "alice"));
	assert_true(trusted(t, "192.0.2.3", "alice"));
	assert_true(trusted(t, "192.0.2.4", "alice"));
	assert_true(trusted(t, "192.0.2.5", "alice"));
	assert_int_equal(digest_trust_size(t), 1);
	note(t, "2001:db8:0:1::100", "carol", T0);
	assert_true(trusted(t, "2001:db8:0:1::ffff", "carol"));
	assert_false(trusted(t, "2001:db8:0:2::100", "carol"));
	assert_int_equal(digest_trust_size(t), 2);
	digest_trust_free(t);

	assert_int_equal(digest_trust_new(&t, 1), 0);
	note(t, "192.0.2.1", "alice", T0);
	note(t, "192.0.2.1", "bob", T0);
	assert_true(trusted(t, "192.0.2.1", "alice"));
	assert_false(trusted(t, "192.0.2.1", "bob"));
	note(t, "192.0.2.9", "alice", T0 + 1); /* a known user still gets its new addresses */
	assert_true(trusted(t, "192.0.2.9", "alice"));
	digest_trust_free(t);
	assert_int_equal(digest_trust_new(&t, 0), EINVAL);
	assert_false(trusted(NULL, "192.0.2.1", "alice"));
}

/* The per-user rule is a limiter keyed by the user alone (auth.c counts every failure there too, with
 * an empty source): failures from many addresses add up, each address under the pair's limit. */
static void test_limiter_per_user(void **state)
{
	struct digest_limiter *l;

	(void)state;
	assert_int_equal(digest_limiter_new(&l, 20, WINDOW, BLOCK, 1000), 0);
	for (unsigned i = 0; i < 19; i++)
		fail_n(l, "", "alice", 1, T0 + i);
	assert_false(blocked(l, "", "alice", T0 + 19));
	fail_n(l, "", "alice", 1, T0 + 19);
	assert_true(blocked(l, "", "alice", T0 + 19));
	assert_false(blocked(l, "", "bob", T0 + 19));
	assert_false(blocked(l, "", "alice", T0 + 19 + BLOCK));
	/* no source at all (a NULL slice, as fuzz_digest found): counted under the empty one, no memchr on NULL */
	digest_limiter_failure(l, SLICE_NULL, slice_cstr("bob"), T0);
	assert_false(digest_limiter_blocked(l, SLICE_NULL, slice_cstr("bob"), T0));
	digest_limiter_free(l);
}
/* ---- clients that answer none of several challenges ---- */

static void test_unanswered_found(void **state)
{
	struct digest_unanswered *u;
	const uint64_t phone = 0x9e3779b97f4a7c15u, other = 0xc2b2ae3d27d4eb4fu, t = 1000000;
	bool newly;

	(void)state;
	assert_int_equal(digest_unanswered_new(&u, 1024), 0);
	/* several challenges, then the same client without credentials: one challenge from then on */
	assert_false(digest_unanswered_request(u, phone, t, &newly));
	assert_false(digest_unanswered_single(u, phone, t));
	assert_true(digest_unanswered_request(u, phone, t + 30, &newly));
	assert_true(newly);
	assert_true(digest_unanswered_single(u, phone, t + 31));
	assert_true(digest_unanswered_request(u, phone, t + 40, &newly));
	assert_false(newly);
	/* answering the single challenge does not bring the others back */
	digest_unanswered_answered(u, phone);
	assert_true(digest_unanswered_single(u, phone, t + 41));
	/* nobody else is touched */
	assert_false(digest_unanswered_single(u, other, t + 41));
	assert_false(digest_unanswered_request(u, other, t + 41, &newly));
	/* for a day, refreshed by each request */
	assert_true(digest_unanswered_single(u, phone, t + 40 + 86399));
	assert_false(digest_unanswered_single(u, phone, t + 40 + 86400));
	digest_unanswered_free(u);
}

static void test_unanswered_answering(void **state)
{
	struct digest_unanswered *u;
	const uint64_t phone = 0x0123456789abcdefu, t = 5000;
	bool newly;

	(void)state;
	assert_int_equal(digest_unanswered_new(&u, 64), 0);
	/* an RFC 8760 client: challenged, answers, and later asks without credentials again: still several */
	for (unsigned i = 0; i < 5; i++) {
		assert_false(digest_unanswered_request(u, phone, t + i * 60, &newly));
		digest_unanswered_answered(u, phone);
	}
	/* a second request without credentials over 10 minutes after the first is not the sign */
	assert_false(digest_unanswered_request(u, phone, t + 1000, &newly));
	assert_false(digest_unanswered_request(u, phone, t + 1600, &newly));
	assert_true(digest_unanswered_request(u, phone, t + 2199, &newly));
	/* a wrap of the 24-bit clock is no younger than it is */
	assert_false(digest_unanswered_single(u, 0xfedcba9876543210u, t));
	digest_unanswered_free(u);
}

static void test_unanswered_bound(void **state)
{
	struct digest_unanswered *u;
	const uint64_t t = 77;
	unsigned found = 0;
	bool newly;

	(void)state;
	/* 64 slots: a client found unable keeps its mark while a flood of first requests passes */
	assert_int_equal(digest_unanswered_new(&u, 64), 0);
	assert_false(digest_unanswered_request(u, 42, t, &newly));
	assert_true(digest_unanswered_request(u, 42, t + 1, &newly));
	for (uint64_t k = 1; k <= 100000; k++)
		(void)digest_unanswered_request(u, k * 0x9e3779b97f4a7c15u, t + 2, &newly);
	assert_true(digest_unanswered_single(u, 42, t + 3));
	/* and the table still works for the flood's clients */
	for (uint64_t k = 99990; k <= 100000; k++)
		found += digest_unanswered_request(u, k * 0x9e3779b97f4a7c15u, t + 4, &newly);
	assert_true(found > 0);
	digest_unanswered_free(u);
}

static void test_concurrent(void **state)
{
	enum { THREADS = 4 };
	struct digest_limiter *l;
	struct digest_nonces *n;
	struct digest_trust *tr;
	struct hammer h[THREADS];
	pthread_t t[THREADS];
	void *ret[THREADS];

	(void)state;
	/* Small tables so eviction runs under contention too. */
	assert_int_equal(digest_limiter_new(&l, 3, WINDOW, BLOCK, 8), 0);
	assert_int_equal(digest_nonces_new(&n, LIFETIME, 64), 0);
	assert_int_equal(digest_trust_new(&tr, 1000), 0);
	for (unsigned i = 0; i < THREADS; i++) {
		h[i] = (struct hammer){ .l = l, .n = n, .t = tr, .id = i + 1 };
		if (pthread_create(&t[i], NULL, hammer_main, &h[i]))
			abort(); /* cannot fail the test with threads already running */
	}
	for (unsigned i = 0; i < THREADS; i++) /* all joined before any assert can leave the test */
		assert_int_equal(pthread_join(t[i], &ret[i]), 0);
	for (unsigned i = 0; i < THREADS; i++)
		assert_int_equal((uintptr_t)ret[i], 0);
	assert_true(digest_limiter_size(l) <= 8);
	assert_true(digest_nonces_tracked(n) <= 64);
	assert_true(digest_trust_size(tr) <= 5);
	digest_limiter_free(l);
	digest_nonces_free(n);
	digest_trust_free(tr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7616_md5),
		cmocka_unit_test(test_rfc7616_sha256),
		cmocka_unit_test(test_ha2_kept),
		cmocka_unit_test(test_check_compare),
		cmocka_unit_test(test_check_needs_ha1),
		cmocka_unit_test(test_rfc2617),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_folded),
		cmocka_unit_test(test_parse_escapes),
		cmocka_unit_test(test_parse_long_quoted),
		cmocka_unit_test(test_long_parts),
		cmocka_unit_test(test_parse_missing),
		cmocka_unit_test(test_parse_bad_nc),
		cmocka_unit_test(test_parse_duplicate),
		cmocka_unit_test(test_parse_unsupported),
		cmocka_unit_test(test_nonce_roundtrip),
		cmocka_unit_test(test_nonce_tampered),
		cmocka_unit_test(test_nonce_stale),
		cmocka_unit_test(test_nonce_replay),
		cmocka_unit_test(test_nonce_verify),
		cmocka_unit_test(test_nonce_reuse),
		cmocka_unit_test(test_nonce_bound),
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_limiter_block),
		cmocka_unit_test(test_limiter_ipv6_prefix),
		cmocka_unit_test(test_limiter_list_forget),
		cmocka_unit_test(test_limiter_sweep),
		cmocka_unit_test(test_limiter_doubling),
		cmocka_unit_test(test_limiter_success),
		cmocka_unit_test(test_limiter_bound),
		cmocka_unit_test(test_limiter_prune),
		cmocka_unit_test(test_trust),
		cmocka_unit_test(test_limiter_per_user),
		cmocka_unit_test(test_unanswered_found),
		cmocka_unit_test(test_unanswered_answering),
		cmocka_unit_test(test_unanswered_bound),
		cmocka_unit_test(test_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
