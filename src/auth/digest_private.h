/* digest_private.h: what digest.c, nonce.c, limiter.c and trust.c share; private to src/auth. */
#ifndef SIPD_AUTH_DIGEST_PRIVATE_H
#define SIPD_AUTH_DIGEST_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "auth/digest.h"
#include "base/htab.h"
#include "base/slice.h"

#define SHARDS_MAX 16          /* locks per table: enough for a handful of worker threads */
#define BUCKETS_MIN 16         /* per shard, at first */
#define BUCKETS_MAX (1u << 16) /* per shard; longer chains beyond that, never more memory */

/* Shards of a table of cap entries: a power of two, at most SHARDS_MAX and at most cap. */
size_t digest__shard_count(size_t cap);

/* The hash chains of one shard of the nonce and limiter tables (base/htab, under the shard's lock),
 * from BUCKETS_MIN buckets up to BUCKETS_MAX; the low 4 bits of a hash pick the shard. */
int digest__buckets_init(struct htab *t); /* 0 or ENOMEM */
uint32_t digest__random_seed(void);

/* A source address as the limiter and the trust table count it: an IPv6 source by its /64 (a host holds
 * a whole /64, RFC 4291 2.5.4, and a guesser that changes its address within it is one source still),
 * written into buf; any other as it is. */
#define DIGEST_SOURCE_MAX 52
struct slice digest__source(struct slice src, char buf[DIGEST_SOURCE_MAX]);

/* What a thread keeps between hashes, since a registration computes several and a context made for
 * each cost an allocation, a free and a cleanse apiece: a digest context (digest.c). Freed when the
 * thread ends; NULL when no thread-exit hook could be set. */
#define DIGEST_HA2_KEY_MAX 160 /* method:uri longer than this is hashed every time */
struct digest_thread {
	EVP_MD_CTX *md;
	/* The last HA2 = H(method:uri) computed, with what it was computed of (digest.c): the phones of a
	 * domain register to one Request-URI, so that most registrations need one hash, not two. */
	enum digest_alg ha2_alg;
	size_t ha2_key_len;               /* 0: nothing kept (a key holds its ':' at least) */
	char ha2_key[DIGEST_HA2_KEY_MAX]; /* method ':' uri, as in the request (escapes kept) */
	char ha2[DIGEST_HEX_MAX];         /* lower-case hex */
};
struct digest_thread *digest__thread(void);

/* CRYPTO_memcmp(a, b, l) == 0: constant time, in 16-byte pieces (see digest.c). */
bool digest__ct_eq(const void *a, const void *b, size_t l);

#endif
