/* digest.h: HTTP Digest authentication for SIP (RFC 3261 22, RFC 7616, RFC 8760): credentials,
 * challenges, nonces sipd verifies without storing them, nonce-count replay checks and the
 * brute-force limiter. */
#ifndef SIPD_AUTH_DIGEST_H
#define SIPD_AUTH_DIGEST_H

#include <stdbool.h>
#include <stdint.h>

#include "base/slice.h"
#include "sip/build.h"

enum digest_alg { DIGEST_MD5 = 0, DIGEST_SHA256 = 1 };
#define DIGEST_HEX_MAX 65   /* 64 hex digits of SHA-256 + NUL */
#define DIGEST_NONCE_MAX 96 /* a nonce as sipd writes it, + NUL */

/* An Authorization / Proxy-Authorization value, as slices into the message. */
struct digest_cred {
	struct slice username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc_text;
	enum digest_alg alg;  /* from algorithm=, MD5 when absent */
	uint32_t nc;          /* nonce-count, 0 when absent */
	bool has_qop;
};

/* 0; EBADMSG when malformed (missing username/realm/nonce/uri/response, qop without nc/cnonce, bad nc);
 * ENOTSUP when the scheme is not Digest or the algorithm unknown (e.g. MD5-sess, SHA-512-256). */
int digest_cred_parse(struct digest_cred *c, struct slice value);

/* HA1 = H(username ":" realm ":" password), lower-case hex. */
void digest_ha1(enum digest_alg alg, struct slice user, struct slice realm, struct slice password,
		char out[DIGEST_HEX_MAX]);
/* The response the client should have sent (RFC 7616 3.4.1; RFC 2069 form when qop is absent). */
void digest_expected(enum digest_alg alg, const char *ha1_hex, const struct digest_cred *c, struct slice method,
		     char out[DIGEST_HEX_MAX]);
/* Constant-time comparison of c->response with digest_expected. */
bool digest_check(enum digest_alg alg, const char *ha1_hex, const struct digest_cred *c, struct slice method);

/* SipHash-2-4 with its 128-bit output (base/siphash, the same bytes as OpenSSL's) over a then b, under a
 * 16-byte key: the MAC of what sipd writes and later reads back as its own (nonces, the proxy's
 * Record-Route signature). Kept as a bool for callers that fail closed; it cannot fail. */
#define DIGEST_MAC_KEY 16
#define DIGEST_MAC_LEN 16
bool digest_mac(const uint8_t key[DIGEST_MAC_KEY], struct slice a, struct slice b, uint8_t mac[DIGEST_MAC_LEN]);

/* Nonces: base64url(timestamp | counter | SipHash-2-4-128(key, timestamp | counter | realm));
 * verified by recomputing the MAC, so nothing is stored per challenge. nc values are tracked per nonce
 * (bounded memory, thread-safe) to refuse replays. */
struct digest_nonces;
enum digest_verdict { DIGEST_NONCE_OK, DIGEST_NONCE_STALE, DIGEST_NONCE_BAD, DIGEST_NONCE_REPLAY };

/* lifetime_s: a nonce older than this is stale. max_tracked: nonces whose nc is remembered (memory bound). */
int digest_nonces_new(struct digest_nonces **np, unsigned lifetime_s, size_t max_tracked);
void digest_nonces_free(struct digest_nonces *n);
void digest_nonce_make(struct digest_nonces *n, struct slice realm, uint64_t now_s, char out[DIGEST_NONCE_MAX]);
/* Checks the MAC and age; then, only when qop is in use, that nc is higher than any nc seen for this
 * nonce (REPLAY otherwise). Call digest_nonce_check only after the response itself verified, so that a
 * wrong guess cannot burn nonce counts of an honest client. */
enum digest_verdict digest_nonce_check(struct digest_nonces *n, struct slice realm, struct slice nonce,
				       uint64_t now_s);
enum digest_verdict digest_nonce_use(struct digest_nonces *n, struct slice nonce, uint32_t nc, uint64_t now_s);
/* Both in one, the nonce decoded once: the check's verdict when it is not OK (BAD, STALE), else OK or
 * REPLAY (the count did not go up, or could not be kept). Call it only after the response verified. */
enum digest_verdict digest_nonce_verify(struct digest_nonces *n, struct slice realm, struct slice nonce, uint32_t nc,
					uint64_t now_s);

/* Writes one challenge header line, e.g.
 * WWW-Authenticate: Digest realm="sipd", nonce="...", algorithm=SHA-256, qop="auth"[, stale=true]\r\n
 * The realm is escaped; the nonce, one of digest_nonce_make's, is written as it is. */
void digest_challenge_write(struct sbuf *b, const char *header, struct slice realm, const char *nonce,
			    enum digest_alg alg, bool stale);

/* Brute-force limiter. Failures are counted per (source address, username): after max_failures within
 * window_s that pair is refused for block_s (doubling on each new block, up to 1 hour). Honest clients
 * sharing an address (a NAT, an SBC) are not affected by another user's failures. Thread-safe,
 * bounded memory (max_entries, oldest evicted). */
struct digest_limiter;
int digest_limiter_new(struct digest_limiter **lp, unsigned max_failures, unsigned window_s, unsigned block_s,
		       size_t max_entries);
void digest_limiter_free(struct digest_limiter *l);
bool digest_limiter_blocked(struct digest_limiter *l, struct slice source, struct slice user, uint64_t now_s);
/* Counts a failure; the seconds of the block it starts, else 0. */
unsigned digest_limiter_failure(struct digest_limiter *l, struct slice source, struct slice user, uint64_t now_s);
void digest_limiter_success(struct digest_limiter *l, struct slice source, struct slice user);
/* Forgets the pairs that no longer matter (past their window, or an hour past their block), up to a few
 * thousand per shard, so that a flood's pairs go once it stops, not only as new failures come; the
 * number forgotten. Every few seconds, from the main thread (auth_housekeeping). */
size_t digest_limiter_sweep(struct digest_limiter *l, uint64_t now_s);
/* A pair blocked now, as digest_limiter_blocks shows it: its source and user as the limiter keys them
 * (an IPv6 source by its /64, cut to 64 bytes; the user as the credentials wrote it, cut to 128). */
struct digest_block {
	struct slice source, user;
	uint64_t until;  /* Unix second the block ends */
	uint32_t length; /* seconds, doubled at each block in a row */
};
/* Calls fn for each pair blocked at now_s, one shard's lock held (fn must not call the limiter); the
 * number of such pairs. For the control socket (sipctl show blocks). */
size_t digest_limiter_blocks(struct digest_limiter *l, uint64_t now_s,
			     void (*fn)(void *arg, const struct digest_block *b), void *arg);
/* Forgets the pairs of source and of user, failures, block and escalation alike (sipctl unblock); NULL
 * matches any. source is taken as digest_limiter_failure takes it (an IPv6 address by its /64). The number
 * of pairs that were blocked at now_s among those forgotten. */
size_t digest_limiter_forget(struct digest_limiter *l, const struct slice *source, const struct slice *user,
			     uint64_t now_s);

/* Where each user authenticated from (its last four addresses, an IPv6 one by its /64): when
 * guesses for a user come from many addresses, those are the addresses still let try. Only right
 * credentials note an address, so the table holds at most the users that exist (max_users: a full table
 * notes no new user). Thread-safe; about 64 bytes a user. */
struct digest_trust;
int digest_trust_new(struct digest_trust **tp, size_t max_users);
void digest_trust_free(struct digest_trust *t);
void digest_trust_note(struct digest_trust *t, struct slice source, struct slice user, uint64_t now_s);
bool digest_trust_has(struct digest_trust *t, struct slice source, struct slice user);
size_t digest_trust_size(struct digest_trust *t);

/* Clients given several challenges (one per algorithm) that come back without answering any: RFC
 * 8760 clients answer the first they support, older ones may fail on the others and just try again.
 * key identifies a client (its address, Via and From, hashed); thread-safe, lock-free, fixed memory
 * (about slots entries; a full bucket forgets its oldest). */
struct digest_unanswered;
int digest_unanswered_new(struct digest_unanswered **up, size_t slots);
void digest_unanswered_free(struct digest_unanswered *u);
/* A request from key without credentials. true: offer it one challenge (*newly: it is the request that
 * showed the client does not cope: several challenges, then this one again within 10 minutes);
 * false: several, and key is noted. A client found so is offered one challenge for a day. */
bool digest_unanswered_request(struct digest_unanswered *u, uint64_t key, uint64_t now_s, bool *newly);
/* Whether key is offered one challenge (for the challenges that answer wrong or stale credentials). */
bool digest_unanswered_single(struct digest_unanswered *u, uint64_t key, uint64_t now_s);
/* key's credentials verified: a pending note is dropped (a client found unable stays so). */
void digest_unanswered_answered(struct digest_unanswered *u, uint64_t key);

/* Added with the implementation. Quoted-string values in struct digest_cred keep their backslash escapes
 * (RFC 3261 25.1 quoted-pair; rare in practice): digest_unq_eq compares such a raw value with plain text,
 * digest_unq_copy writes it unescaped and NUL-terminated (0, or ENOSPC when it does not fit). */
bool digest_unq_eq(struct slice raw, struct slice plain);
int digest_unq_copy(char *dst, size_t n, struct slice raw);
/* How many nonces have their nc remembered (<= max_tracked), and how many (source, user) pairs the
 * limiter holds (<= max_entries): for statistics and tests. */
size_t digest_nonces_tracked(struct digest_nonces *n);
size_t digest_limiter_size(struct digest_limiter *l);

#endif
