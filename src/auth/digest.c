/* digest.c: Digest authentication for SIP (RFC 3261 22, RFC 7616, RFC 8760): the credentials parser,
 * the response computation and challenges; nonces are in nonce.c, the brute-force limiter in
 * limiter.c. Hashes and MACs come from OpenSSL's libcrypto. */
/* Before any OpenSSL header: MD5_Init and SHA256_Init are deprecated since OpenSSL 3.0 but kept, and
 * used here (see struct hasher). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "auth/digest.h"
#include "auth/digest_private.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/sha.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif


/* ---- Hashing ---------------------------------------------------------------------------------- */

static EVP_MD *md_md5, *md_sha256;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

/* Fetched once: the implicit fetch behind EVP_md5() costs a store lookup on every init. Any of these
 * may be NULL (MD5 under a FIPS-only provider); the functions using them then fail closed. */
static void crypto_init(void)
{
	md_md5 = EVP_MD_fetch(NULL, "MD5", NULL);
	md_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
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

/* What each thread keeps between hashes (see digest_private.h), freed when the thread ends: the
 * key's value is the thread's own struct, so that its destructor runs at thread exit. */
static _Thread_local struct digest_thread thread_state;
static _Thread_local bool thread_registered;
static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;
static bool thread_key_ok;

static void thread_state_free(void *arg)
{
	struct digest_thread *t = arg;

	EVP_MD_CTX_free(t->md);
	*t = (struct digest_thread){ 0 };
}

static void thread_key_init(void)
{
	thread_key_ok = pthread_key_create(&thread_key, thread_state_free) == 0;
}

struct digest_thread *digest__thread(void)
{
	if (!thread_registered) {
		pthread_once(&thread_once, thread_key_init);
		if (!thread_key_ok || pthread_setspecific(thread_key, &thread_state))
			return NULL;
		thread_registered = true;
	}
	return &thread_state;
}

static EVP_MD_CTX *hash_ctx(void)
{
	struct digest_thread *t = digest__thread();

	if (t && !t->md)
		t->md = EVP_MD_CTX_new();
	return t ? t->md : NULL;
}

/* One hash being computed. OpenSSL's low-level MD5 and SHA-256 functions cost about 100 instructions a
 * hash besides the hashing itself, the EVP interface about 750 (its provider dispatch and context
 * checks), a sixth of a registration's digest work. They are used only once the EVP fetch of the same
 * algorithm has succeeded, so that a provider refusing MD5 (FIPS) still has sipd refuse it; without
 * them (an OpenSSL built with no deprecated API) the EVP context does the work. */
struct hasher {
	enum digest_alg alg;
	EVP_MD_CTX *evp; /* NULL: the low-level context below */
	union {
#ifndef OPENSSL_NO_DEPRECATED_3_0
		MD5_CTX md5;
		SHA256_CTX sha256;
#endif
		char none;
	} u;
};

static bool hasher_init(struct hasher *h, enum digest_alg alg)
{
	const EVP_MD *md = alg_md(alg);

	h->alg = alg;
	h->evp = NULL;
	if (!md)
		return false;
#ifndef OPENSSL_NO_DEPRECATED_3_0
	if (alg == DIGEST_MD5)
		return MD5_Init(&h->u.md5) == 1;
	if (alg == DIGEST_SHA256)
		return SHA256_Init(&h->u.sha256) == 1;
#endif
	h->evp = hash_ctx();
	return h->evp && EVP_DigestInit_ex(h->evp, md, NULL);
}

static bool hasher_update(struct hasher *h, const void *p, size_t l)
{
	if (h->evp)
		return EVP_DigestUpdate(h->evp, p, l);
#ifndef OPENSSL_NO_DEPRECATED_3_0
	if (h->alg == DIGEST_MD5)
		return MD5_Update(&h->u.md5, p, l) == 1;
	return SHA256_Update(&h->u.sha256, p, l) == 1;
#else
	return false;
#endif
}

/* The digest's length in bytes, 0 on failure. */
static unsigned hasher_final(struct hasher *h, unsigned char d[EVP_MAX_MD_SIZE])
{
	unsigned dl = 0;

	if (h->evp)
		return EVP_DigestFinal_ex(h->evp, d, &dl) ? dl : 0;
#ifndef OPENSSL_NO_DEPRECATED_3_0
	if (h->alg == DIGEST_MD5)
		return MD5_Final(d, &h->u.md5) == 1 ? MD5_DIGEST_LENGTH : 0;
	return SHA256_Final(d, &h->u.sha256) == 1 ? SHA256_DIGEST_LENGTH : 0;
#else
	return 0;
#endif
}

/* Feeds s, dropping the backslash of each quoted-pair (RFC 3261 25.1), so that the digest covers
 * unq(value) as RFC 7616 3.4.1 asks. Tokens hold no backslash, so this is safe on them too. */
static bool hasher_update_unq(struct hasher *h, struct slice s)
{
	size_t start = 0;

	for (size_t i = 0; i < s.l; i++) {
		if (s.p[i] != '\\')
			continue;
		if (i > start && !hasher_update(h, s.p + start, i - start))
			return false;
		start = ++i; /* the escaped character opens the next run */
	}
	return start >= s.l || hasher_update(h, s.p + start, s.l - start);
}

/* parts joined by ':' into buf; the length, or 0 when they must be fed one by one: too long for buf,
 * all empty, or (unq) holding a quoted-pair, which md_update_unq's path unescapes. */
static size_t join_parts(char *buf, size_t cap, const struct slice *parts, size_t n, bool unq)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (o + 1 + parts[i].l > cap || (unq && parts[i].l && memchr(parts[i].p, '\\', parts[i].l)))
			return 0;
		if (i)
			buf[o++] = ':';
		if (parts[i].l)
			memcpy(buf + o, parts[i].p, parts[i].l);
		o += parts[i].l;
	}
	return o;
}

/* out = lower-case hex of H(parts joined by ':'), or "" when the digest is unavailable. */
static void hash_hex(enum digest_alg alg, const struct slice *parts, size_t n, bool unq, char out[DIGEST_HEX_MAX])
{
	static const char hex[] = "0123456789abcdef";
	struct hasher h;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	char joined[512];
	size_t jl = join_parts(joined, sizeof(joined), parts, n, unq);
	bool ok = hasher_init(&h, alg);

	if (jl) { /* one update: through EVP each costs a few hundred instructions besides the hashing */
		ok = ok && hasher_update(&h, joined, jl);
	} else {
		for (size_t i = 0; ok && i < n; i++) {
			if (i)
				ok = hasher_update(&h, ":", 1);
			if (unq)
				ok = ok && hasher_update_unq(&h, parts[i]);
			else if (parts[i].l)
				ok = ok && hasher_update(&h, parts[i].p, parts[i].l);
		}
	}
	if (ok)
		dl = hasher_final(&h, d);
	if (dl * 2 >= DIGEST_HEX_MAX)
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

/* Eight bytes at a time (hex digests are 32 or 64 characters): a byte loop cost about 8 instructions a
 * character. */
static bool is_hex(const char *s, size_t l)
{
	size_t i = 0;

	for (; i + 8 <= l; i += 8) {
		uint64_t w, hex;

		memcpy(&w, s + i, 8);
		/* OR 0x20 takes A-F to a-f, and nothing else into a-f */
		hex = slice__bytes_in(w, '0', '9') | slice__bytes_in(w | SLICE__BYTES_01 * 0x20, 'a', 'f');
		if (hex != SLICE__BYTES_80)
			return false;
	}
	for (; i < l; i++)
		if (slice_hex_digit(s[i]) < 0)
			return false;
	return true;
}

/* ha2 = H(method:uri), from the thread's last one when method and uri are the same bytes: the key holds
 * them as written, so that a quoted-pair in uri makes another key and the hash is of the same text. */
static void ha2_hex(enum digest_alg alg, struct slice method, struct slice uri, char ha2[DIGEST_HEX_MAX])
{
	const struct slice a2[] = { method, uri };
	struct digest_thread *t = digest__thread();
	size_t kl = method.l + 1 + uri.l;
	bool keep = t && kl <= sizeof(t->ha2_key);

	if (keep && t->ha2_key_len == kl && t->ha2_alg == alg && slice_eq(slice_make(t->ha2_key, method.l), method) &&
	    t->ha2_key[method.l] == ':' && slice_eq(slice_make(t->ha2_key + method.l + 1, uri.l), uri)) {
		memcpy(ha2, t->ha2, alg_hexlen(alg) + 1);
		return;
	}
	hash_hex(alg, a2, 2, true, ha2);
	if (!keep || !ha2[0])
		return;
	if (method.l)
		memcpy(t->ha2_key, method.p, method.l);
	t->ha2_key[method.l] = ':';
	if (uri.l)
		memcpy(t->ha2_key + method.l + 1, uri.p, uri.l);
	t->ha2_key_len = kl;
	memcpy(t->ha2, ha2, alg_hexlen(alg) + 1);
	t->ha2_alg = alg;
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
	ha2_hex(alg, method, c->uri, ha2);
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

/* libcrypto's CRYPTO_memcmp on x86-64 compares 16 bytes in one vector step and any other length a byte
 * at a time (about 7 instructions each): a digest or a nonce goes as 16-byte pieces, all of them
 * compared whatever the first ones say, then the rest. */
bool digest__ct_eq(const void *a, const void *b, size_t l)
{
	const unsigned char *x = a, *y = b;
	int diff = 0;
	size_t i = 0;

	for (; i + 16 <= l; i += 16)
		diff |= CRYPTO_memcmp(x + i, y + i, 16);
	if (i < l)
		diff |= CRYPTO_memcmp(x + i, y + i, l - i);
	return diff == 0;
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
	slice_lower_copy(got, c->response.p, l); /* RFC 7616 asks for lower case; tolerate upper */
	return digest__ct_eq(got, want, l);
}

/* ---- Credentials (RFC 7616 3.4, RFC 3261 25.1 grammar) ------------------------------------------ */

struct scan {
	const char *p, *end;
};

/* Character classes of the credentials' grammar, one load per character. */
enum { CH_TOKEN = 1, CH_QDTEXT = 2 }; /* QDTEXT: taken as is inside a quoted-string */
static uint8_t cred_class[256];

__attribute__((constructor)) static void cred_class_build(void)
{
	for (int ch = 0; ch < 256; ch++) {
		bool token = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			     (ch && strchr("-.!%*_+`'~", ch) != NULL);
		bool qdtext = ch == '\t' || (ch >= 0x20 && ch != 0x7f && ch != '"' && ch != '\\');

		cred_class[ch] = (uint8_t)((token ? CH_TOKEN : 0) | (qdtext ? CH_QDTEXT : 0));
	}
}

static bool is_token_char(unsigned char ch)
{
	return cred_class[ch] & CH_TOKEN;
}

/* LWS = [*WSP CRLF] 1*WSP: blanks and folded lines; a bare CR or LF is left for the caller to refuse. */
static void scan_lws_slow(struct scan *s)
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

/* Most calls find a printable character at once: only a blank or a CR goes to the loop. */
static inline void scan_lws(struct scan *s)
{
	if (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r'))
		scan_lws_slow(s);
}

/* Locals, not s->p, in the loops: a char load may alias the struct, which would keep the pointer in
 * memory, loaded and stored at every character. */
static struct slice scan_token(struct scan *s)
{
	const char *start = s->p, *p = s->p, *end = s->end;

	while (p < end && is_token_char((unsigned char)*p))
		p++;
	s->p = p;
	return slice_make(start, (size_t)(p - start));
}

/* The first byte at or after p that a quoted-string's loop must look at: a quote, a backslash, a
 * control character (HTAB too, though it is qdtext) or DEL; 16 bytes at a time, the rest left to it. */
static const char *qdtext_skip(const char *p, const char *end)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), below = _mm_set1_epi8(0x1f),
		      del = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
					   _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, below), v), _mm_cmpeq_epi8(v, del)));
		unsigned m = (unsigned)_mm_movemask_epi8(hit);

		if (m)
			return p + __builtin_ctz(m);
		p += 16;
	}
#else
	(void)end;
#endif
	return p;
}

/* At the opening quote; *v gets the raw text between the quotes, escapes kept. */
static int scan_quoted(struct scan *s, struct slice *v)
{
	const char *start = s->p + 1, *p = start, *end = s->end;

	while (p < end) {
		unsigned char ch;

		p = qdtext_skip(p, end);
		if (p >= end)
			break;
		ch = (unsigned char)*p;
		if (cred_class[ch] & CH_QDTEXT) { /* the tail under 16 bytes, and HTAB */
			p++;
			continue;
		}
		if (ch == '"') {
			*v = slice_make(start, (size_t)(p - start));
			s->p = p + 1;
			return 0;
		}
		if (ch == '\\') { /* quoted-pair: any 7-bit character but CR and LF (and NUL, refused here) */
			if (end - p < 2)
				return EBADMSG;
			ch = (unsigned char)p[1];
			if (ch == '\0' || ch == '\r' || ch == '\n' || ch > 0x7f)
				return EBADMSG;
			p += 2;
		} else if (ch == '\r') { /* only as a folded line */
			if (end - p < 3 || p[1] != '\n' || (p[2] != ' ' && p[2] != '\t'))
				return EBADMSG;
			p += 3;
		} else {
			return EBADMSG; /* any other control character, or DEL */
		}
	}
	return EBADMSG; /* unterminated */
}

#define CRED(n, field) { { n, sizeof(n) - 1 }, offsetof(struct digest_cred, field) }
static const struct {
	struct slice name; /* with its length: most names differ from most others in length alone */
	size_t off;
} cred_params[] = {
	CRED("username", username),
	CRED("realm", realm),
	CRED("nonce", nonce),
	CRED("uri", uri),
	CRED("response", response),
	CRED("algorithm", algorithm),
	CRED("cnonce", cnonce),
	CRED("opaque", opaque),
	CRED("qop", qop),
	CRED("nc", nc_text),
};
#undef CRED
#define CRED_PARAMS (sizeof(cred_params) / sizeof(cred_params[0]))
#define CRED_NAME_MAX 9 /* "algorithm" */

/* cred_params' indexes by the length of their names, CRED_PARAMS after the last: a name is compared
 * with the one or two of its length only. A longer name added to cred_params would never be found:
 * test_parse_good reads every one. */
static uint8_t cred_by_len[CRED_NAME_MAX + 1][CRED_PARAMS + 1];

__attribute__((constructor)) static void cred_by_len_build(void)
{
	for (size_t l = 0; l <= CRED_NAME_MAX; l++) {
		size_t k = 0;

		for (size_t i = 0; i < CRED_PARAMS; i++)
			if (cred_params[i].name.l == l)
				cred_by_len[l][k++] = (uint8_t)i;
		while (k <= CRED_PARAMS)
			cred_by_len[l][k++] = (uint8_t)CRED_PARAMS;
	}
}

/* The index in cred_params of name (a token, any case), or CRED_PARAMS for another name. The names of
 * cred_params are lower-case letters, as slice_token_eq_lc wants them, and of name's length. */
static size_t cred_param_index(struct slice name)
{
	if (name.l > CRED_NAME_MAX)
		return CRED_PARAMS;
	for (const uint8_t *i = cred_by_len[name.l]; *i < CRED_PARAMS; i++)
		if (slice_token_eq_lc(name, cred_params[*i].name.p))
			return *i;
	return CRED_PARAMS;
}

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
		i = cred_param_index(name);
		if (i == CRED_PARAMS) {
			if (slice_caseeq_lit(name, "userhash") && slice_caseeq_lit(v, "true"))
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
	if (!slice_caseeq_lit(scheme, "Digest"))
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
	if (!slice_isset(c->algorithm) || slice_caseeq_lit(c->algorithm, "MD5"))
		c->alg = DIGEST_MD5;
	else if (slice_caseeq_lit(c->algorithm, "SHA-256"))
		c->alg = DIGEST_SHA256;
	else
		return ENOTSUP;
	if (userhash)
		return ENOTSUP;
	c->has_qop = slice_isset(c->qop);
	if (c->has_qop && !slice_caseeq_lit(c->qop, "auth"))
		return ENOTSUP;
	/* RFC 7616 3.3, which brought SHA-256: qop "MUST be used by all implementations". Only the RFC 2069
	 * form that RFC 3261 22.4 keeps goes without it, and that is MD5; without qop there is no nonce count,
	 * and so no replay protection */
	if (c->alg == DIGEST_SHA256 && !c->has_qop)
		return EBADMSG;

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
	sbuf_adds(b, nonce); /* sipd's own, base64url (nonce.c): nothing in it to escape */
	sbuf_adds(b, alg == DIGEST_SHA256 ? "\", algorithm=SHA-256, qop=\"auth\"" : "\", algorithm=MD5, qop=\"auth\"");
	if (stale)
		sbuf_adds(b, ", stale=true");
	sbuf_adds(b, "\r\n");
}


/* ---- Sharded tables ----------------------------------------------------------------------------- */

/* Shards: a power of two, at most SHARDS_MAX and at most cap, so that shards * (cap / shards) <= cap. */
size_t digest__shard_count(size_t cap)
{
	size_t n = 1;

	while (n * 2 <= SHARDS_MAX && n * 2 <= cap)
		n *= 2;
	return n;
}

int digest__buckets_init(struct htab *t)
{
	return htab_init(t, BUCKETS_MIN, BUCKETS_MAX, 4);
}

uint32_t digest__random_seed(void)
{
	uint32_t seed = 0;

	if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
		seed = (uint32_t)(uintptr_t)&seed; /* hash seeds only spread keys; not a secret */
	return seed;
}
