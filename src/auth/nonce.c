/* nonce.c: nonces sipd verifies without storing them (a keyed MAC, SipHash-2-4, over a timestamp, a
 * unique counter and the realm), and the bounded table of nonce-counts that refuses replays. */
#include "auth/digest.h"
#include "auth/digest_private.h"
#include "base/siphash.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define NONCE_RAW 32           /* timestamp 8 | counter 8 | SipHash-2-4-128 16 */
#define NONCE_TEXT 43          /* base64url of 32 bytes, no padding */
#define NONCE_SKEW_S 5         /* a nonce this far in the future is still fresh (clock stepped back) */

/* ---- Nonces ------------------------------------------------------------------------------------- */

struct nonce_entry {
	struct htab_link link;             /* first: its bucket chain and hash */
	struct nonce_entry *older, *newer; /* first-use order, for expiry and eviction */
	uint8_t raw[NONCE_RAW];            /* decoded; decoding is strict, so one text per nonce */
	uint64_t ts;                       /* the nonce's own timestamp */
	uint32_t nc;                       /* the highest seen */
};

struct nonce_shard {
	pthread_mutex_t lock;
	struct htab buckets;     /* buckets.count: entries held */
	size_t cap;
	struct nonce_entry *oldest, *newest;
	uint64_t floor; /* newest timestamp of a still-fresh entry evicted for room */
	bool has_floor; /* ... unknown nonces that old are then STALE, never a fresh start */
};

struct digest_nonces {
	unsigned char secret[16]; /* SipHash key, from RAND_bytes; nonces die with the process */
	unsigned lifetime;
	uint32_t seed;
	size_t nshards;
	atomic_uint_fast64_t counter; /* the unique middle of each nonce, from a random start */
	struct nonce_shard shards[SHARDS_MAX];
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Three bytes to four characters, ten times, then the last two bytes to three (nonce_decode's groups). */
static void nonce_encode(const uint8_t raw[NONCE_RAW], char out[DIGEST_NONCE_MAX])
{
	size_t o = 0, i = 0;
	uint32_t v;

	for (; i < 30; i += 3, o += 4) {
		v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
		out[o] = b64url[v >> 18];
		out[o + 1] = b64url[(v >> 12) & 63];
		out[o + 2] = b64url[(v >> 6) & 63];
		out[o + 3] = b64url[v & 63];
	}
	v = (uint32_t)raw[30] << 8 | raw[31]; /* 16 bits: 6 + 6 + 4, the spare 2 bits zero */
	out[o] = b64url[v >> 10];
	out[o + 1] = b64url[(v >> 4) & 63];
	out[o + 2] = b64url[(v << 2) & 63];
	out[o + 3] = '\0';
}

/* Each byte's value in b64url, or -1: one load per character of the nonces sipd checks. */
static int8_t b64url_rev[256];

__attribute__((constructor)) static void b64url_rev_build(void)
{
	memset(b64url_rev, -1, sizeof(b64url_rev));
	for (int i = 0; i < 64; i++)
		b64url_rev[(unsigned char)b64url[i]] = (int8_t)i;
}

/* Strict: exactly 43 characters of the alphabet, and the 2 spare bits zero, so that no second
 * spelling of a nonce decodes to the same bytes (it would otherwise get a fresh nc history). */
static bool nonce_decode(struct slice s, uint8_t raw[NONCE_RAW])
{
	const unsigned char *p = (const unsigned char *)s.p;
	int32_t a, b, c, d, v, bad = 0;
	size_t o = 0;

	_Static_assert(NONCE_TEXT == 43 && NONCE_RAW == 32, "10 groups of 4 characters, then 3");
	if (s.l != NONCE_TEXT)
		return false;
	for (size_t i = 0; i < 40; i += 4, o += 3) { /* four characters, three bytes */
		a = b64url_rev[p[i]];
		b = b64url_rev[p[i + 1]];
		c = b64url_rev[p[i + 2]];
		d = b64url_rev[p[i + 3]];
		bad |= a | b | c | d;
		v = a * (1 << 18) + b * (1 << 12) + c * (1 << 6) + d;
		raw[o] = (uint8_t)(v >> 16);
		raw[o + 1] = (uint8_t)(v >> 8);
		raw[o + 2] = (uint8_t)v;
	}
	/* three characters, 18 bits: two bytes and the 2 spare bits, which must be zero */
	a = b64url_rev[p[40]];
	b = b64url_rev[p[41]];
	c = b64url_rev[p[42]];
	bad |= a | b | c;
	v = a * (1 << 12) + b * (1 << 6) + c;
	raw[o] = (uint8_t)(v >> 10);
	raw[o + 1] = (uint8_t)(v >> 2);
	return bad >= 0 && (v & 3) == 0; /* any character out of the alphabet is -1: bad goes negative */
}

static uint64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* SipHash-2-4 with its 128-bit output (base/siphash). It replaced a truncated HMAC-SHA256, which cost
 * about 6 400 instructions per MAC, and then OpenSSL's EVP_MAC of the same function, about 1 000 (a
 * registration makes one nonce and checks one); the same bytes come out, so nonces and Record-Route
 * signatures made before an upgrade still verify. */
bool digest_mac(const uint8_t key[DIGEST_MAC_KEY], struct slice a, struct slice b, uint8_t mac[DIGEST_MAC_LEN])
{
	siphash128(key, a.p, a.l, b.p, b.l, mac);
	return true;
}

/* RFC 7616 asks of a nonce only that the server can tell its own; a PRF keyed with 128 random bits
 * does, and a forged MAC is a 2^-128 guess per request. */
static bool nonce_mac(const struct digest_nonces *n, const uint8_t head[16], struct slice realm, uint8_t mac[16])
{
	return digest_mac(n->secret, slice_make((const char *)head, 16), realm, mac);
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

/* Where the nonce counter starts: random, so that nonces of two runs of sipd do not repeat. */
static uint64_t counter_start(void)
{
	uint64_t start;

	if (RAND_bytes((unsigned char *)&start, sizeof(start)) != 1)
		start = (uint64_t)time(NULL) << 24;
	return start;
}

int digest_nonces_new(struct digest_nonces **np, unsigned lifetime_s, size_t max_tracked)
{
	struct digest_nonces *n;
	size_t per;

	if (!np || !lifetime_s || !max_tracked)
		return EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return ENOMEM;
	if (RAND_bytes(n->secret, sizeof(n->secret)) != 1) {
		free(n);
		return EIO;
	}
	n->lifetime = lifetime_s;
	n->seed = digest__random_seed();
	n->nshards = digest__shard_count(max_tracked);
	per = max_tracked / n->nshards;
	atomic_init(&n->counter, counter_start());
	for (size_t i = 0; i < n->nshards; i++) {
		struct nonce_shard *s = &n->shards[i];

		pthread_mutex_init(&s->lock, NULL);
		s->cap = per;
		if (digest__buckets_init(&s->buckets)) {
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
	struct nonce_entry *e = s->oldest;

	s->oldest = e->newer;
	if (s->oldest)
		s->oldest->older = NULL;
	else
		s->newest = NULL;
	htab_remove(&s->buckets, &e->link);
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
		htab_free(&s->buckets);
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
	/* A counter from a random start: unique, so nc histories stay apart (RFC 7616 3.3 wants
	 * uniqueness); the MAC, not these bytes, makes a nonce unforgeable. RAND_bytes per challenge
	 * cost a quarter of the challenge. */
	uint64_t c = atomic_fetch_add(&n->counter, 1);

	memcpy(raw + 8, &c, 8);
	if (nonce_mac(n, raw, realm, raw + 16))
		nonce_encode(raw, out);
}

/* The MAC and the age of a decoded nonce. */
static enum digest_verdict check_raw(struct digest_nonces *n, struct slice realm, const uint8_t raw[NONCE_RAW],
				     uint64_t now_s)
{
	uint8_t mac[16];

	if (!nonce_mac(n, raw, realm, mac) || CRYPTO_memcmp(mac, raw + 16, 16))
		return DIGEST_NONCE_BAD;
	return nonce_fresh(n->lifetime, be64_get(raw), now_s) ? DIGEST_NONCE_OK : DIGEST_NONCE_STALE;
}

enum digest_verdict digest_nonce_check(struct digest_nonces *n, struct slice realm, struct slice nonce,
				       uint64_t now_s)
{
	uint8_t raw[NONCE_RAW];

	if (!n || !nonce_decode(nonce, raw))
		return DIGEST_NONCE_BAD;
	return check_raw(n, realm, raw, now_s);
}

static struct nonce_entry *nonce_find(struct nonce_shard *s, uint32_t h, const uint8_t raw[NONCE_RAW])
{
	for (struct htab_link *l = htab_chain(&s->buckets, h); l; l = l->next) {
		struct nonce_entry *e = (struct nonce_entry *)l;

		if (l->hash == h && !memcmp(e->raw, raw, NONCE_RAW))
			return e;
	}
	return NULL;
}

/* Remembers a first nc for a nonce, in *spare (an expired entry just unlinked, taken) when there is
 * one; false when no memory could be had at all. */
static bool nonce_insert(struct digest_nonces *n, struct nonce_shard *s, uint32_t h, const uint8_t raw[NONCE_RAW],
			 uint64_t ts, uint32_t nc, uint64_t now, struct nonce_entry **spare)
{
	struct nonce_entry *e = *spare;

	*spare = NULL;
	if (!e)
		e = s->buckets.count < s->cap ? malloc(sizeof(*e)) : NULL;

	if (!e && s->buckets.count) {
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
	e->link.hash = h;
	e->nc = nc;
	htab_add(&s->buckets, &e->link);
	e->newer = NULL;
	e->older = s->newest;
	if (s->newest)
		s->newest->newer = e;
	else
		s->oldest = e;
	s->newest = e;
	return true;
}

/* The nc of a decoded nonce, counted. */
static enum digest_verdict use_raw(struct digest_nonces *n, const uint8_t raw[NONCE_RAW], uint32_t nc, uint64_t now_s)
{
	struct nonce_entry *e, *spare = NULL;
	struct nonce_shard *s;
	enum digest_verdict v;
	uint64_t ts;
	uint32_t h;

	ts = be64_get(raw);
	if (!nonce_fresh(n->lifetime, ts, now_s))
		return DIGEST_NONCE_STALE;
	if (nc == 0) /* no qop (RFC 2069 client): nothing to count; replays live as long as the nonce */
		return DIGEST_NONCE_OK;
	h = slice_hash(slice_make((const char *)raw, NONCE_RAW), n->seed);
	s = &n->shards[h & (n->nshards - 1)];
	pthread_mutex_lock(&s->lock);
	/* Expired nonces are stale now: nothing left to guard. Under a steady load about one expires per
	 * first use, whose entry the new one takes: no malloc and free per nonce. */
	while (s->oldest && nonce_expired(n->lifetime, s->oldest->ts, now_s)) {
		free(spare);
		spare = nonce_unlink_oldest(s);
	}
	e = nonce_find(s, h, raw);
	if (e) {
		v = nc > e->nc ? DIGEST_NONCE_OK : DIGEST_NONCE_REPLAY;
		if (v == DIGEST_NONCE_OK)
			e->nc = nc;
	} else if (s->has_floor && ts <= s->floor) {
		v = DIGEST_NONCE_STALE;
	} else {
		v = nonce_insert(n, s, h, raw, ts, nc, now_s, &spare) ? DIGEST_NONCE_OK : DIGEST_NONCE_STALE;
	}
	pthread_mutex_unlock(&s->lock);
	free(spare);
	return v;
}

enum digest_verdict digest_nonce_use(struct digest_nonces *n, struct slice nonce, uint32_t nc, uint64_t now_s)
{
	uint8_t raw[NONCE_RAW];

	if (!n || !nonce_decode(nonce, raw))
		return DIGEST_NONCE_BAD;
	return use_raw(n, raw, nc, now_s);
}

enum digest_verdict digest_nonce_verify(struct digest_nonces *n, struct slice realm, struct slice nonce, uint32_t nc,
					uint64_t now_s)
{
	uint8_t raw[NONCE_RAW];
	enum digest_verdict v;

	if (!n || !nonce_decode(nonce, raw))
		return DIGEST_NONCE_BAD;
	if ((v = check_raw(n, realm, raw, now_s)) != DIGEST_NONCE_OK)
		return v;
	/* past the check, a nonce whose count cannot be kept is as good as replayed */
	return use_raw(n, raw, nc, now_s) == DIGEST_NONCE_OK ? DIGEST_NONCE_OK : DIGEST_NONCE_REPLAY;
}

size_t digest_nonces_tracked(struct digest_nonces *n)
{
	size_t total = 0;

	for (size_t i = 0; n && i < n->nshards; i++) {
		pthread_mutex_lock(&n->shards[i].lock);
		total += n->shards[i].buckets.count;
		pthread_mutex_unlock(&n->shards[i].lock);
	}
	return total;
}
