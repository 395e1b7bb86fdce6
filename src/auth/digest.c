/* digest.c: Digest authentication for SIP (RFC 3261 22, RFC 7616, RFC 8760): the credentials parser,
 * the response computation, MAC'd nonces with a bounded nonce-count table, challenges, and the
 * per (source, user) brute-force limiter. Hashes and MACs come from OpenSSL's libcrypto. */
#include "auth/digest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define SHARDS_MAX 16          /* locks per table: enough for a handful of worker threads */
#define BUCKETS_MAX (1u << 16) /* per shard; longer chains beyond that, never more memory */
#define NONCE_RAW 32           /* timestamp 8 | random 8 | truncated HMAC-SHA256 16 */
#define NONCE_TEXT 43          /* base64url of 32 bytes, no padding */
#define NONCE_SKEW_S 5         /* a nonce this far in the future is still fresh (clock stepped back) */
#define LIM_SRC_MAX 64         /* limiter keys: longer sources / users are cut (same-prefix pairs share) */
#define LIM_USER_MAX 128
#define LIM_BLOCK_CAP_S 3600   /* blocks double up to this; a pair this long past its block starts over */

/* ---- Hashing ---------------------------------------------------------------------------------- */

static EVP_MD *md_md5, *md_sha256;
static EVP_MAC *mac_hmac;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

/* Fetched once: the implicit fetch behind EVP_md5() costs a store lookup on every init. Any of these
 * may be NULL (MD5 under a FIPS-only provider); the functions using them then fail closed. */
static void crypto_init(void)
{
	md_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static const EVP_MD *alg_md(enum digest_alg alg)
{
	pthread_once(&crypto_once, crypto_init);
	return alg == DIGEST_SHA256 ? md_sha256 : alg == DIGEST_MD5 ? md_md5 : NULL;
}

static size_t alg_hexlen(enum digest_alg alg)
{
	return alg == DIGEST_SHA256 ? 64 : 32;
}

/* Feeds s, dropping the backslash of each quoted-pair (RFC 3261 25.1), so that the digest covers
 * unq(value) as RFC 7616 3.4.1 asks. Tokens hold no backslash, so this is safe on them too. */
static bool md_update_unq(EVP_MD_CTX *ctx, struct slice s)
{
	size_t start = 0;

	for (size_t i = 0; i < s.l; i++) {
		if (s.p[i] != '\\')
			continue;
		if (i > start && !EVP_DigestUpdate(ctx, s.p + start, i - start))
			return false;
		start = ++i; /* the escaped character opens the next run */
	}
	return start >= s.l || EVP_DigestUpdate(ctx, s.p + start, s.l - start);
}

/* out = lower-case hex of H(parts joined by ':'), or "" when the digest is unavailable. */
static void hash_hex(enum digest_alg alg, const struct slice *parts, size_t n, bool unq, char out[DIGEST_HEX_MAX])
{
	static const char hex[] = "0123456789abcdef";
	const EVP_MD *md = alg_md(alg);
	EVP_MD_CTX *ctx = md ? EVP_MD_CTX_new() : NULL;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	bool ok = ctx && EVP_DigestInit_ex(ctx, md, NULL);

	for (size_t i = 0; ok && i < n; i++) {
		if (i)
			ok = EVP_DigestUpdate(ctx, ":", 1);
		if (unq)
			ok = ok && md_update_unq(ctx, parts[i]);
		else if (parts[i].l)
			ok = ok && EVP_DigestUpdate(ctx, parts[i].p, parts[i].l);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, d, &dl) && dl * 2 < DIGEST_HEX_MAX;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		dl = 0;
	for (unsigned i = 0; i < dl; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * dl] = '\0';
}

void digest_ha1(enum digest_alg alg, struct slice user, struct slice realm, struct slice password,
		char out[DIGEST_HEX_MAX])
{
	const struct slice a1[] = { user, realm, password };

	/* Plain text in, as the store provisions it: a password may well hold a backslash. */
	hash_hex(alg, a1, 3, false, out);
}

static bool is_hex(const char *s, size_t l)
{
	for (size_t i = 0; i < l; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

void digest_expected(enum digest_alg alg, const char *ha1_hex, const struct digest_cred *c, struct slice method,
		     char out[DIGEST_HEX_MAX])
{
	char ha2[DIGEST_HEX_MAX];
	size_t hl = alg_hexlen(alg);

	out[0] = '\0';
	/* An empty or short HA1 (a user without a hash for this algorithm) would make the response
	 * computable without the password: refuse it here rather than trust every caller. */
	if (!ha1_hex || !c || strnlen(ha1_hex, DIGEST_HEX_MAX) != hl || !is_hex(ha1_hex, hl))
		return;
	const struct slice a2[] = { method, c->uri };
	hash_hex(alg, a2, 2, true, ha2);
	if (!ha2[0])
		return;
	if (c->has_qop) { /* RFC 7616 3.4.1 */
		const struct slice r[] = { slice_make(ha1_hex, hl), c->nonce, c->nc_text, c->cnonce, c->qop,
					   slice_make(ha2, hl) };
		hash_hex(alg, r, 6, true, out);
	} else { /* RFC 2069 form, kept by RFC 2617 3.2.2.1 */
		const struct slice r[] = { slice_make(ha1_hex, hl), c->nonce, slice_make(ha2, hl) };
		hash_hex(alg, r, 3, true, out);
	}
}

bool digest_check(enum digest_alg alg, const char *ha1_hex, const struct digest_cred *c, struct slice method)
{
	char want[DIGEST_HEX_MAX], got[DIGEST_HEX_MAX];
	size_t l = alg_hexlen(alg);

	/* Lengths are public (they follow from the algorithm); only the digits are compared in constant time. */
	if (!c || c->alg != alg || c->response.l != l)
		return false;
	digest_expected(alg, ha1_hex, c, method, want);
	if (strlen(want) != l)
		return false;
	for (size_t i = 0; i < l; i++) { /* RFC 7616 asks for lower case; tolerate upper */
		char ch = c->response.p[i];

		got[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
	}
	return CRYPTO_memcmp(got, want, l) == 0;
}

/* ---- Credentials (RFC 7616 3.4, RFC 3261 25.1 grammar) ------------------------------------------ */

struct scan {
	const char *p, *end;
};

static bool is_token_char(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch && strchr("-.!%*_+`'~", ch) != NULL;
}

/* LWS = [*WSP CRLF] 1*WSP: blanks and folded lines; a bare CR or LF is left for the caller to refuse. */
static void scan_lws(struct scan *s)
{
	for (;;) {
		if (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
			s->p++;
		else if (s->end - s->p >= 3 && s->p[0] == '\r' && s->p[1] == '\n' && (s->p[2] == ' ' || s->p[2] == '\t'))
			s->p += 3;
		else
			return;
	}
}

static struct slice scan_token(struct scan *s)
{
	const char *start = s->p;

	while (s->p < s->end && is_token_char((unsigned char)*s->p))
		s->p++;
	return slice_make(start, (size_t)(s->p - start));
}

/* At the opening quote; *v gets the raw text between the quotes, escapes kept. */
static int scan_quoted(struct scan *s, struct slice *v)
{
	const char *start = ++s->p;

	while (s->p < s->end) {
		unsigned char ch = (unsigned char)*s->p;

		if (ch == '"') {
			*v = slice_make(start, (size_t)(s->p - start));
			s->p++;
			return 0;
		}
		if (ch == '\\') { /* quoted-pair: any 7-bit character but CR and LF (and NUL, refused here) */
			if (s->end - s->p < 2)
				return EBADMSG;
			ch = (unsigned char)s->p[1];
			if (ch == '\0' || ch == '\r' || ch == '\n' || ch > 0x7f)
				return EBADMSG;
			s->p += 2;
		} else if (ch == '\r') { /* only as a folded line */
			if (s->end - s->p < 3 || s->p[1] != '\n' || (s->p[2] != ' ' && s->p[2] != '\t'))
				return EBADMSG;
			s->p += 3;
		} else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			return EBADMSG;
		} else {
			s->p++;
		}
	}
	return EBADMSG; /* unterminated */
}

static const struct {
	const char *name;
	size_t off;
} cred_params[] = {
	{ "username", offsetof(struct digest_cred, username) },
	{ "realm", offsetof(struct digest_cred, realm) },
	{ "nonce", offsetof(struct digest_cred, nonce) },
	{ "uri", offsetof(struct digest_cred, uri) },
	{ "response", offsetof(struct digest_cred, response) },
	{ "algorithm", offsetof(struct digest_cred, algorithm) },
	{ "cnonce", offsetof(struct digest_cred, cnonce) },
	{ "opaque", offsetof(struct digest_cred, opaque) },
	{ "qop", offsetof(struct digest_cred, qop) },
	{ "nc", offsetof(struct digest_cred, nc_text) },
};

/* nc-value = 8LHEX (RFC 7616 3.4); upper case tolerated. */
static bool parse_nc(struct slice s, uint32_t *nc)
{
	uint32_t v = 0;

	if (s.l != 8)
		return false;
	for (size_t i = 0; i < 8; i++) {
		char ch = s.p[i];
		uint32_t d;

		if (ch >= '0' && ch <= '9')
			d = (uint32_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (uint32_t)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (uint32_t)(ch - 'A' + 10);
		else
			return false;
		v = v << 4 | d;
	}
	*nc = v;
	return true;
}

/* The comma-separated auth-params after the scheme. Known names are recorded (a repeat is EBADMSG);
 * others are skipped, except userhash=true, which sipd cannot serve (RFC 7616 3.4.4). */
static int cred_scan_params(struct digest_cred *c, struct scan *s, bool *userhash)
{
	unsigned seen = 0;

	while (s->p < s->end) {
		struct slice name, v;
		size_t i;
		int err;

		if (*s->p == ',') { /* empty list elements are allowed (RFC 7230 7) */
			s->p++;
			scan_lws(s);
			continue;
		}
		name = scan_token(s);
		if (!name.l)
			return EBADMSG;
		scan_lws(s);
		if (s->p >= s->end || *s->p != '=')
			return EBADMSG;
		s->p++;
		scan_lws(s);
		if (s->p < s->end && *s->p == '"') {
			err = scan_quoted(s, &v);
			if (err)
				return err;
		} else {
			v = scan_token(s);
			if (!v.l)
				return EBADMSG;
		}
		scan_lws(s);
		if (s->p < s->end) {
			if (*s->p != ',')
				return EBADMSG;
			s->p++;
			scan_lws(s);
		}
		for (i = 0; i < sizeof(cred_params) / sizeof(cred_params[0]); i++)
			if (slice_caseeq_cstr(name, cred_params[i].name))
				break;
		if (i == sizeof(cred_params) / sizeof(cred_params[0])) {
			if (slice_caseeq_cstr(name, "userhash") && slice_caseeq_cstr(v, "true"))
				*userhash = true;
			continue;
		}
		if (seen & (1u << i))
			return EBADMSG;
		seen |= 1u << i;
		*(struct slice *)(void *)((char *)c + cred_params[i].off) = v;
	}
	return 0;
}

int digest_cred_parse(struct digest_cred *c, struct slice value)
{
	struct scan s;
	struct slice scheme;
	bool userhash = false;
	int err;

	if (!c || (!value.p && value.l))
		return EINVAL;
	if (!value.p)
		value = slice_make("", 0); /* no arithmetic on NULL */
	s = (struct scan){ value.p, value.p + value.l };
	memset(c, 0, sizeof(*c));
	scan_lws(&s);
	scheme = scan_token(&s);
	if (!scheme.l)
		return EBADMSG;
	if (!slice_caseeq_cstr(scheme, "Digest"))
		return ENOTSUP; /* Basic, or a scheme sipd does not offer */
	if (s.p >= s.end || (*s.p != ' ' && *s.p != '\t' && *s.p != '\r'))
		return EBADMSG;
	scan_lws(&s);
	err = cred_scan_params(c, &s, &userhash);
	if (err)
		return err;

	/* What sipd cannot verify: the -sess variants and SHA-512-256 (RFC 7616 3.3, RFC 8760 2);
	 * userhash (the user would have to be found by hash); qop=auth-int (sipd challenges with
	 * qop="auth" only, and auth-int would need the body). */
	if (!slice_isset(c->algorithm) || slice_caseeq_cstr(c->algorithm, "MD5"))
		c->alg = DIGEST_MD5;
	else if (slice_caseeq_cstr(c->algorithm, "SHA-256"))
		c->alg = DIGEST_SHA256;
	else
		return ENOTSUP;
	if (userhash)
		return ENOTSUP;
	c->has_qop = slice_isset(c->qop);
	if (c->has_qop && !slice_caseeq_cstr(c->qop, "auth"))
		return ENOTSUP;

	if (!c->username.l || !slice_isset(c->realm) || !c->nonce.l || !c->uri.l || !c->response.l)
		return EBADMSG;
	if (slice_isset(c->nc_text) && !parse_nc(c->nc_text, &c->nc))
		return EBADMSG;
	if (c->has_qop) {
		/* nc 00000000 would read as "no qop" to digest_nonce_use and skip the replay check. */
		if (!slice_isset(c->nc_text) || !c->cnonce.l || c->nc == 0)
			return EBADMSG;
	} else {
		c->nc = 0; /* nc without qop means nothing (RFC 2617 3.2.2); 0 tells digest_nonce_use so */
	}
	return 0;
}

bool digest_unq_eq(struct slice raw, struct slice plain)
{
	size_t j = 0;

	for (size_t i = 0; i < raw.l; i++, j++) {
		if (raw.p[i] == '\\' && i + 1 < raw.l)
			i++;
		if (j >= plain.l || raw.p[i] != plain.p[j])
			return false;
	}
	return j == plain.l;
}

int digest_unq_copy(char *dst, size_t n, struct slice raw)
{
	size_t j = 0;

	if (!dst || !n)
		return EINVAL;
	for (size_t i = 0; i < raw.l; i++) {
		if (raw.p[i] == '\\' && i + 1 < raw.l)
			i++;
		if (j + 1 >= n) {
			dst[0] = '\0';
			return ENOSPC;
		}
		dst[j++] = raw.p[i];
	}
	dst[j] = '\0';
	return 0;
}

/* ---- Challenges --------------------------------------------------------------------------------- */

/* Writes s as quoted-string content: '"' and '\' escaped, control characters dropped, so that a
 * configured realm can never end the header early. */
static void sbuf_add_qcontent(struct sbuf *b, struct slice s)
{
	size_t start = 0;

	for (size_t i = 0; i < s.l; i++) {
		unsigned char ch = (unsigned char)s.p[i];
		bool esc = ch == '"' || ch == '\\';

		if (!esc && ch >= 0x20 && ch != 0x7f)
			continue;
		sbuf_add(b, s.p + start, i - start);
		if (esc) {
			sbuf_add(b, "\\", 1);
			sbuf_add(b, s.p + i, 1);
		}
		start = i + 1;
	}
	sbuf_add(b, s.p + start, s.l - start);
}

void digest_challenge_write(struct sbuf *b, const char *header, struct slice realm, const char *nonce,
			    enum digest_alg alg, bool stale)
{
	if (!b)
		return;
	sbuf_adds(b, header ? header : "WWW-Authenticate");
	sbuf_adds(b, ": Digest realm=\"");
	sbuf_add_qcontent(b, realm);
	sbuf_adds(b, "\", nonce=\"");
	sbuf_add_qcontent(b, slice_cstr(nonce));
	sbuf_adds(b, alg == DIGEST_SHA256 ? "\", algorithm=SHA-256, qop=\"auth\"" : "\", algorithm=MD5, qop=\"auth\"");
	if (stale)
		sbuf_adds(b, ", stale=true");
	sbuf_adds(b, "\r\n");
}

/* ---- Sharded tables ----------------------------------------------------------------------------- */

/* Shards: a power of two, at most SHARDS_MAX and at most cap, so that shards * (cap / shards) <= cap. */
static size_t shard_count(size_t cap)
{
	size_t n = 1;

	while (n * 2 <= SHARDS_MAX && n * 2 <= cap)
		n *= 2;
	return n;
}

static size_t bucket_count(size_t per_shard)
{
	size_t n = 16;

	while (n < per_shard && n < BUCKETS_MAX)
		n *= 2;
	return n;
}

/* Bucket index: the low bits pick the shard. */
static size_t bucket_of(uint32_t h, size_t nbuckets)
{
	return (h >> 4) & (nbuckets - 1);
}

static uint32_t random_seed(void)
{
	uint32_t seed = 0;

	if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
		seed = (uint32_t)(uintptr_t)&seed; /* hash seeds only spread keys; not a secret */
	return seed;
}

/* ---- Nonces ------------------------------------------------------------------------------------- */

struct nonce_entry {
	struct nonce_entry *chain;         /* next in the bucket */
	struct nonce_entry *older, *newer; /* first-use order, for expiry and eviction */
	uint8_t raw[NONCE_RAW];            /* decoded; decoding is strict, so one text per nonce */
	uint64_t ts;                       /* the nonce's own timestamp */
	uint32_t hash, nc;                 /* nc: the highest seen */
};

struct nonce_shard {
	pthread_mutex_t lock;
	struct nonce_entry **buckets;
	size_t nbuckets, count, cap;
	struct nonce_entry *oldest, *newest;
	uint64_t floor; /* newest timestamp of a still-fresh entry evicted for room */
	bool has_floor; /* ... unknown nonces that old are then STALE, never a fresh start */
};

struct digest_nonces {
	unsigned char secret[32]; /* HMAC key, from RAND_bytes; nonces die with the process */
	unsigned lifetime;
	uint32_t seed;
	size_t nshards;
	atomic_uint_fast64_t fallback; /* stands in for random bytes if RAND_bytes ever fails */
	struct nonce_shard shards[SHARDS_MAX];
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void nonce_encode(const uint8_t raw[NONCE_RAW], char out[DIGEST_NONCE_MAX])
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < NONCE_RAW; i++) {
		acc = (acc << 8 | raw[i]) & 0xffff;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = b64url[(acc << (6 - bits)) & 63];
	out[o] = '\0';
}

static int b64url_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	return ch == '-' ? 62 : ch == '_' ? 63 : -1;
}

/* Strict: exactly 43 characters of the alphabet, and the 2 spare bits zero, so that no second
 * spelling of a nonce decodes to the same bytes (it would otherwise get a fresh nc history). */
static bool nonce_decode(struct slice s, uint8_t raw[NONCE_RAW])
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (s.l != NONCE_TEXT)
		return false;
	for (size_t i = 0; i < s.l; i++) {
		int v = b64url_value(s.p[i]);

		if (v < 0)
			return false;
		acc = (acc << 6 | (uint32_t)v) & 0xffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[o++] = (uint8_t)(acc >> bits);
		}
	}
	return o == NONCE_RAW && (acc & ((1u << bits) - 1)) == 0;
}

static uint64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The first 16 bytes of HMAC-SHA256(secret, timestamp | random | realm). */
static bool nonce_mac(const struct digest_nonces *n, const uint8_t head[16], struct slice realm, uint8_t mac[16])
{
	EVP_MAC_CTX *ctx = mac_hmac ? EVP_MAC_CTX_new(mac_hmac) : NULL;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
				OSSL_PARAM_construct_end() };
	unsigned char full[EVP_MAX_MD_SIZE];
	size_t fl = 0;
	bool ok = ctx && EVP_MAC_init(ctx, n->secret, sizeof(n->secret), params) && EVP_MAC_update(ctx, head, 16) &&
		  (realm.l == 0 || EVP_MAC_update(ctx, (const unsigned char *)realm.p, realm.l)) &&
		  EVP_MAC_final(ctx, full, &fl, sizeof(full)) && fl >= 16;

	EVP_MAC_CTX_free(ctx);
	if (ok)
		memcpy(mac, full, 16);
	return ok;
}

static bool nonce_fresh(unsigned lifetime, uint64_t ts, uint64_t now)
{
	return ts > now ? ts - now <= NONCE_SKEW_S : now - ts <= lifetime;
}

/* For the nc table: past its lifetime, with NONCE_SKEW_S to spare. Not the negation of nonce_fresh:
 * threads read the clock at slightly different moments, and an entry must outlive its nonce for all
 * of them, or one lagging a second behind would take a replay for a first use. */
static bool nonce_expired(unsigned lifetime, uint64_t ts, uint64_t now)
{
	return now > ts && now - ts > (uint64_t)lifetime + NONCE_SKEW_S;
}

int digest_nonces_new(struct digest_nonces **np, unsigned lifetime_s, size_t max_tracked)
{
	struct digest_nonces *n;
	size_t per;

	if (!np || !lifetime_s || !max_tracked)
		return EINVAL;
	pthread_once(&crypto_once, crypto_init);
	if (!mac_hmac || !md_sha256)
		return ENOTSUP;
	n = calloc(1, sizeof(*n));
	if (!n)
		return ENOMEM;
	if (RAND_bytes(n->secret, sizeof(n->secret)) != 1) {
		free(n);
		return EIO;
	}
	n->lifetime = lifetime_s;
	n->seed = random_seed();
	n->nshards = shard_count(max_tracked);
	per = max_tracked / n->nshards;
	atomic_init(&n->fallback, 0);
	for (size_t i = 0; i < n->nshards; i++) {
		struct nonce_shard *s = &n->shards[i];

		pthread_mutex_init(&s->lock, NULL);
		s->cap = per;
		s->nbuckets = bucket_count(per);
		s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
		if (!s->buckets) {
			n->nshards = i + 1; /* free what was set up */
			digest_nonces_free(n);
			return ENOMEM;
		}
	}
	*np = n;
	return 0;
}

/* Takes the oldest entry out of the list and its bucket; the caller frees or reuses it. */
static struct nonce_entry *nonce_unlink_oldest(struct nonce_shard *s)
{
	struct nonce_entry *e = s->oldest, **pp;

	s->oldest = e->newer;
	if (s->oldest)
		s->oldest->older = NULL;
	else
		s->newest = NULL;
	for (pp = &s->buckets[bucket_of(e->hash, s->nbuckets)]; *pp != e; pp = &(*pp)->chain)
		;
	*pp = e->chain;
	s->count--;
	return e;
}

void digest_nonces_free(struct digest_nonces *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nshards; i++) {
		struct nonce_shard *s = &n->shards[i];

		while (s->oldest)
			free(nonce_unlink_oldest(s));
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	OPENSSL_cleanse(n->secret, sizeof(n->secret));
	free(n);
}

void digest_nonce_make(struct digest_nonces *n, struct slice realm, uint64_t now_s, char out[DIGEST_NONCE_MAX])
{
	uint8_t raw[NONCE_RAW];

	out[0] = '\0';
	if (!n)
		return;
	for (int i = 0; i < 8; i++)
		raw[i] = (uint8_t)(now_s >> (56 - 8 * i));
	if (RAND_bytes(raw + 8, 8) != 1) {
		/* Still unique, so nc histories stay apart; the MAC is what makes a nonce unforgeable. */
		uint64_t c = atomic_fetch_add(&n->fallback, 1) ^ (uint64_t)(uintptr_t)raw;

		memcpy(raw + 8, &c, 8);
	}
	if (nonce_mac(n, raw, realm, raw + 16))
		nonce_encode(raw, out);
}

enum digest_verdict digest_nonce_check(struct digest_nonces *n, struct slice realm, struct slice nonce,
				       uint64_t now_s)
{
	uint8_t raw[NONCE_RAW], mac[16];

	if (!n || !nonce_decode(nonce, raw) || !nonce_mac(n, raw, realm, mac) || CRYPTO_memcmp(mac, raw + 16, 16))
		return DIGEST_NONCE_BAD;
	return nonce_fresh(n->lifetime, be64_get(raw), now_s) ? DIGEST_NONCE_OK : DIGEST_NONCE_STALE;
}

static struct nonce_entry *nonce_find(struct nonce_shard *s, uint32_t h, const uint8_t raw[NONCE_RAW])
{
	struct nonce_entry *e = s->buckets[bucket_of(h, s->nbuckets)];

	while (e && (e->hash != h || memcmp(e->raw, raw, NONCE_RAW)))
		e = e->chain;
	return e;
}

/* Remembers a first nc for a nonce; false when no memory could be had at all. */
static bool nonce_insert(struct digest_nonces *n, struct nonce_shard *s, uint32_t h, const uint8_t raw[NONCE_RAW],
			 uint64_t ts, uint32_t nc, uint64_t now)
{
	struct nonce_entry *e = s->count < s->cap ? malloc(sizeof(*e)) : NULL;
	size_t b;

	if (!e && s->count) {
		e = nonce_unlink_oldest(s);
		/* A still-fresh nonce loses its nc history: from now on it, and any unknown nonce as old,
		 * is STALE, so that a replay of it can never pass as a first use. */
		if (!nonce_expired(n->lifetime, e->ts, now) && (!s->has_floor || e->ts > s->floor)) {
			s->floor = e->ts;
			s->has_floor = true;
		}
	}
	if (!e)
		return false;
	memcpy(e->raw, raw, NONCE_RAW);
	e->ts = ts;
	e->hash = h;
	e->nc = nc;
	b = bucket_of(h, s->nbuckets);
	e->chain = s->buckets[b];
	s->buckets[b] = e;
	e->newer = NULL;
	e->older = s->newest;
	if (s->newest)
		s->newest->newer = e;
	else
		s->oldest = e;
	s->newest = e;
	s->count++;
	return true;
}

enum digest_verdict digest_nonce_use(struct digest_nonces *n, struct slice nonce, uint32_t nc, uint64_t now_s)
{
	uint8_t raw[NONCE_RAW];
	struct nonce_shard *s;
	struct nonce_entry *e;
	enum digest_verdict v;
	uint64_t ts;
	uint32_t h;

	if (!n || !nonce_decode(nonce, raw))
		return DIGEST_NONCE_BAD;
	ts = be64_get(raw);
	if (!nonce_fresh(n->lifetime, ts, now_s))
		return DIGEST_NONCE_STALE;
	if (nc == 0) /* no qop (RFC 2069 client): nothing to count; replays live as long as the nonce */
		return DIGEST_NONCE_OK;
	h = slice_hash(slice_make((const char *)raw, NONCE_RAW), n->seed);
	s = &n->shards[h & (n->nshards - 1)];
	pthread_mutex_lock(&s->lock);
	while (s->oldest && nonce_expired(n->lifetime, s->oldest->ts, now_s))
		free(nonce_unlink_oldest(s)); /* its nonce is stale now: nothing left to guard */
	e = nonce_find(s, h, raw);
	if (e) {
		v = nc > e->nc ? DIGEST_NONCE_OK : DIGEST_NONCE_REPLAY;
		if (v == DIGEST_NONCE_OK)
			e->nc = nc;
	} else if (s->has_floor && ts <= s->floor) {
		v = DIGEST_NONCE_STALE;
	} else {
		v = nonce_insert(n, s, h, raw, ts, nc, now_s) ? DIGEST_NONCE_OK : DIGEST_NONCE_STALE;
	}
	pthread_mutex_unlock(&s->lock);
	return v;
}

size_t digest_nonces_tracked(struct digest_nonces *n)
{
	size_t total = 0;

	for (size_t i = 0; n && i < n->nshards; i++) {
		pthread_mutex_lock(&n->shards[i].lock);
		total += n->shards[i].count;
		pthread_mutex_unlock(&n->shards[i].lock);
	}
	return total;
}

/* ---- Brute-force limiter ------------------------------------------------------------------------ */

struct lim_entry {
	struct lim_entry *chain;      /* next in the bucket */
	struct lim_entry *prev, *next; /* in its shard's counting or blocked list, least recent first */
	uint64_t window_start, blocked_until;
	uint32_t hash, block_len;     /* block_len: the last block's length, 0 before the first */
	unsigned fails;               /* within the window starting at window_start */
	uint16_t src_l, user_l;
	bool in_blocked;
	char key[];                   /* source then user */
};

struct lim_list {
	struct lim_entry *head, *tail;
};

struct lim_shard {
	pthread_mutex_t lock;
	struct lim_entry **buckets;
	size_t nbuckets, count, cap;
	/* Room is not made from pairs still blocked while others remain: a flood of fresh (source, user)
	 * pairs cannot push a blocked pair out without getting a shard's worth of pairs blocked itself. */
	struct lim_list counting, blocked;
};

struct digest_limiter {
	unsigned max_failures, window_s, block_s;
	uint32_t seed;
	size_t nshards;
	struct lim_shard shards[SHARDS_MAX];
};

static void lim_list_remove(struct lim_list *l, struct lim_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		l->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		l->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lim_list_append(struct lim_list *l, struct lim_entry *e)
{
	e->next = NULL;
	e->prev = l->tail;
	if (l->tail)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
}

static struct lim_list *lim_list_of(struct lim_shard *s, struct lim_entry *e)
{
	return e->in_blocked ? &s->blocked : &s->counting;
}

static void lim_remove(struct lim_shard *s, struct lim_entry *e)
{
	struct lim_entry **pp = &s->buckets[bucket_of(e->hash, s->nbuckets)];

	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	lim_list_remove(lim_list_of(s, e), e);
	s->count--;
	free(e);
}

int digest_limiter_new(struct digest_limiter **lp, unsigned max_failures, unsigned window_s, unsigned block_s,
		       size_t max_entries)
{
	struct digest_limiter *l;
	size_t per;

	if (!lp || !max_failures || !window_s || !block_s || !max_entries)
		return EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return ENOMEM;
	l->max_failures = max_failures;
	l->window_s = window_s;
	l->block_s = block_s;
	l->seed = random_seed();
	l->nshards = shard_count(max_entries);
	per = max_entries / l->nshards;
	for (size_t i = 0; i < l->nshards; i++) {
		struct lim_shard *s = &l->shards[i];

		pthread_mutex_init(&s->lock, NULL);
		s->cap = per;
		s->nbuckets = bucket_count(per);
		s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
		if (!s->buckets) {
			l->nshards = i + 1;
			digest_limiter_free(l);
			return ENOMEM;
		}
	}
	*lp = l;
	return 0;
}

void digest_limiter_free(struct digest_limiter *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nshards; i++) {
		struct lim_shard *s = &l->shards[i];

		while (s->counting.head)
			lim_remove(s, s->counting.head);
		while (s->blocked.head)
			lim_remove(s, s->blocked.head);
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(l);
}

/* Finds the pair's shard and hash; source and user are cut to their key limits. */
static struct lim_shard *lim_shard_of(struct digest_limiter *l, struct slice *src, struct slice *user, uint32_t *h)
{
	if (src->l > LIM_SRC_MAX)
		src->l = LIM_SRC_MAX;
	if (user->l > LIM_USER_MAX)
		user->l = LIM_USER_MAX;
	*h = slice_hash(*user, slice_hash(*src, l->seed));
	return &l->shards[*h & (l->nshards - 1)];
}

static struct lim_entry *lim_find(struct lim_shard *s, uint32_t h, struct slice src, struct slice user)
{
	struct lim_entry *e = s->buckets[bucket_of(h, s->nbuckets)];

	for (; e; e = e->chain)
		if (e->hash == h && e->src_l == src.l && e->user_l == user.l && (!src.l || !memcmp(e->key, src.p, src.l)) &&
		    (!user.l || !memcmp(e->key + src.l, user.p, user.l)))
			return e;
	return NULL;
}

/* Whom to forget when the shard is full: a pair whose block is over (it only remembers the escalation),
 * else the least recently failing counting pair, else the earliest block. */
static struct lim_entry *lim_victim(struct lim_shard *s, uint64_t now)
{
	if (s->blocked.head && now >= s->blocked.head->blocked_until)
		return s->blocked.head;
	return s->counting.head ? s->counting.head : s->blocked.head;
}

void digest_limiter_failure(struct digest_limiter *l, struct slice source, struct slice user, uint64_t now_s)
{
	struct lim_shard *s;
	struct lim_entry *e;
	uint32_t h;

	if (!l)
		return;
	s = lim_shard_of(l, &source, &user, &h);
	pthread_mutex_lock(&s->lock);
	e = lim_find(s, h, source, user);
	if (!e) {
		if (s->count >= s->cap)
			lim_remove(s, lim_victim(s, now_s));
		e = calloc(1, sizeof(*e) + source.l + user.l);
		if (!e) /* out of memory: this failure goes uncounted */
			goto out;
		e->hash = h;
		e->src_l = (uint16_t)source.l;
		e->user_l = (uint16_t)user.l;
		if (source.l)
			memcpy(e->key, source.p, source.l);
		if (user.l)
			memcpy(e->key + source.l, user.p, user.l);
		e->chain = s->buckets[bucket_of(h, s->nbuckets)];
		s->buckets[bucket_of(h, s->nbuckets)] = e;
		lim_list_append(&s->counting, e);
		s->count++;
	}
	if (now_s < e->blocked_until) /* refused anyway; a block is not stretched by more tries */
		goto out;
	if (e->fails == 0 || now_s < e->window_start || now_s - e->window_start >= l->window_s) {
		e->fails = 0;
		e->window_start = now_s;
	}
	lim_list_remove(lim_list_of(s, e), e);
	if (++e->fails >= l->max_failures) {
		uint64_t cap = l->block_s > LIM_BLOCK_CAP_S ? l->block_s : LIM_BLOCK_CAP_S;

		/* Each new block doubles the last, unless the pair kept quiet for an hour since. */
		if (e->block_len == 0 || now_s >= e->blocked_until + LIM_BLOCK_CAP_S)
			e->block_len = l->block_s;
		else
			e->block_len = (uint32_t)(2ull * e->block_len < cap ? 2ull * e->block_len : cap);
		e->blocked_until = now_s + e->block_len;
		e->fails = 0;
		e->in_blocked = true;
	}
	lim_list_append(lim_list_of(s, e), e);
out:
	pthread_mutex_unlock(&s->lock);
}

bool digest_limiter_blocked(struct digest_limiter *l, struct slice source, struct slice user, uint64_t now_s)
{
	struct lim_shard *s;
	struct lim_entry *e;
	uint32_t h;
	bool blocked;

	if (!l)
		return false;
	s = lim_shard_of(l, &source, &user, &h);
	pthread_mutex_lock(&s->lock);
	e = lim_find(s, h, source, user);
	blocked = e && now_s < e->blocked_until;
	pthread_mutex_unlock(&s->lock);
	return blocked;
}

void digest_limiter_success(struct digest_limiter *l, struct slice source, struct slice user)
{
	struct lim_shard *s;
	struct lim_entry *e;
	uint32_t h;

	if (!l)
		return;
	s = lim_shard_of(l, &source, &user, &h);
	pthread_mutex_lock(&s->lock);
	e = lim_find(s, h, source, user);
	if (e)
		lim_remove(s, e);
	pthread_mutex_unlock(&s->lock);
}

size_t digest_limiter_size(struct digest_limiter *l)
{
	size_t total = 0;

	for (size_t i = 0; l && i < l->nshards; i++) {
		pthread_mutex_lock(&l->shards[i].lock);
		total += l->shards[i].count;
		pthread_mutex_unlock(&l->shards[i].lock);
	}
	return total;
}
