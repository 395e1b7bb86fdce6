/* fuzz_digest.c: libFuzzer harness for what sipd reads out of an Authorization or Proxy-Authorization
 * value: the credentials parser, the unescaping of quoted values, the hashes and their constant-time
 * check, the nonce decoder and replay table, the challenge writer fed with hostile text, and the
 * brute-force limiter and the table of where users authenticated from, keyed by hostile names. Besides the sanitizers it asserts: every slice lies
 * inside the input; an unescaped value compares equal to its raw form; a response equal to the
 * expected one verifies; a nonce sipd did not make is never accepted; tables stay within their bounds.
 * Seeds: tests/fuzz/corpus-digest/. Built and run by `make fuzz`. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/digest.h"

#define TRACKED 64
#define LIMITED 64

static const char *in_p;
static size_t in_l;
static struct digest_nonces *nonces;
static struct digest_limiter *limiter;
static struct digest_trust *trust;

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_digest: %s\n", why);
	abort();
}

static void inside(struct slice s)
{
	if (!s.p) {
		if (s.l)
			fail("NULL slice with a length");
		return;
	}
	if (s.p < in_p || s.p > in_p + in_l || s.l > (size_t)(in_p + in_l - s.p))
		fail("slice outside the input");
}

/* Unescaping then comparing gives back equality; a buffer too small is refused, never overrun. */
static void unquote(struct slice raw)
{
	char big[1024], small[8];

	inside(raw);
	if (digest_unq_copy(small, sizeof(small), raw) == 0 && strlen(small) >= sizeof(small))
		fail("digest_unq_copy overran");
	if (digest_unq_copy(big, sizeof(big), raw) != 0 || memchr(raw.p ? raw.p : "", '\0', raw.l))
		return;
	if (!digest_unq_eq(raw, slice_cstr(big)))
		fail("an unescaped value differs from its raw form");
}

static void hashes(const struct digest_cred *c)
{
	static const char *ha1[] = { "0123456789abcdef0123456789abcdef",
				     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" };
	char expected[DIGEST_HEX_MAX];
	struct digest_cred ok = *c;

	(void)digest_check(c->alg, ha1[c->alg], c, slice_cstr("REGISTER"));
	digest_expected(c->alg, ha1[c->alg], c, slice_cstr("INVITE"), expected);
	if (!expected[0])
		return; /* no digest available (OpenSSL refused): nothing to compare */
	ok.response = slice_cstr(expected);
	if (!digest_check(c->alg, ha1[c->alg], &ok, slice_cstr("INVITE")))
		fail("the expected response does not verify");
}

static void nonce(const struct digest_cred *c)
{
	enum digest_verdict v = digest_nonce_check(nonces, c->realm, c->nonce, 1000000);

	/* a nonce sipd never made cannot carry a valid MAC (its key is random per instance) */
	if (v == DIGEST_NONCE_OK || v == DIGEST_NONCE_STALE)
		fail("a forged nonce passed the MAC check");
	(void)digest_nonce_use(nonces, c->nonce, c->nc, 1000000);
	if (digest_nonces_tracked(nonces) > TRACKED)
		fail("nonce table over its bound");
}

static void challenge(const struct digest_cred *c)
{
	char mem[512], made[DIGEST_NONCE_MAX];
	struct sbuf b;

	sbuf_init(&b, mem, sizeof(mem));
	digest_challenge_write(&b, "WWW-Authenticate", c->realm, "n", c->alg, c->nc & 1);
	if (b.len > sizeof(mem))
		fail("challenge past its buffer");
	/* a realm of any content gets a nonce that verifies for that realm, and only for it */
	digest_nonce_make(nonces, c->realm, 1000000, made);
	if (digest_nonce_check(nonces, c->realm, slice_cstr(made), 1000000) != DIGEST_NONCE_OK)
		fail("a nonce sipd made does not verify");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct digest_cred c;
	struct slice v = slice_make((const char *)data, size);
	size_t before;
	int rc;

	if (!nonces && (digest_nonces_new(&nonces, 300, TRACKED) ||
			digest_limiter_new(&limiter, 3, 60, 30, LIMITED) || digest_trust_new(&trust, LIMITED)))
		fail("set-up");
	in_p = v.p;
	in_l = v.l;
	rc = digest_cred_parse(&c, v);
	if (rc != 0 && rc != EBADMSG && rc != ENOTSUP)
		fail("unexpected error code");
	if (rc != 0)
		return 0;
	if (c.alg != DIGEST_MD5 && c.alg != DIGEST_SHA256)
		fail("unknown algorithm accepted");
	if (!c.username.l || !c.nonce.l || !c.uri.l || !c.response.l)
		fail("accepted without a mandatory parameter");
	unquote(c.username);
	unquote(c.realm);
	unquote(c.nonce);
	unquote(c.uri);
	unquote(c.response);
	unquote(c.cnonce);
	unquote(c.opaque);
	inside(c.algorithm);
	inside(c.qop);
	inside(c.nc_text);
	hashes(&c);
	nonce(&c);
	challenge(&c);
	if (!digest_limiter_blocked(limiter, c.cnonce, c.username, 1000))
		digest_limiter_failure(limiter, c.cnonce, c.username, 1000);
	if (digest_limiter_size(limiter) > LIMITED)
		fail("limiter over its bound");
	/* where a user authenticated from, keyed by hostile names and sources: noted, then found */
	before = digest_trust_size(trust);
	digest_trust_note(trust, c.cnonce, c.username, 1000);
	if (digest_trust_size(trust) > before && !digest_trust_has(trust, c.cnonce, c.username))
		fail("an address noted for a new user is not found");
	if (digest_trust_size(trust) > LIMITED)
		fail("trust table over its bound");
	return 0;
}
