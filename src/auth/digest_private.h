/* digest_private.h: what digest.c, nonce.c and limiter.c share; private to src/auth. */
#ifndef SIPD_AUTH_DIGEST_PRIVATE_H
#define SIPD_AUTH_DIGEST_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "base/htab.h"

#define SHARDS_MAX 16          /* locks per table: enough for a handful of worker threads */
#define BUCKETS_MIN 16         /* per shard, at first */
#define BUCKETS_MAX (1u << 16) /* per shard; longer chains beyond that, never more memory */

/* Shards of a table of cap entries: a power of two, at most SHARDS_MAX and at most cap. */
size_t digest__shard_count(size_t cap);

/* The hash chains of one shard of the nonce and limiter tables (base/htab, under the shard's lock),
 * from BUCKETS_MIN buckets up to BUCKETS_MAX; the low 4 bits of a hash pick the shard. */
int digest__buckets_init(struct htab *t); /* 0 or ENOMEM */
uint32_t digest__random_seed(void);
EVP_MAC *digest__siphash(void);

/* What a thread keeps between hashes, since a registration computes several and a context made for
 * each cost an allocation, a free and a cleanse apiece: a digest context (digest.c), and a copy of
 * a SipHash context (nonce.c), keyed per nonce. Freed when the thread ends; NULL when no thread-exit
 * hook could be set. */
struct digest_thread {
	EVP_MD_CTX *md;
	EVP_MAC_CTX *mac;
};
struct digest_thread *digest__thread(void);

#endif
