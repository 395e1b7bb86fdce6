/* auth.h: who sipd's subscribers are (the configuration's [user] sections and the store's users table)
 * and the digest exchange that proves a request comes from one of them. */
#ifndef SIPD_AUTH_AUTH_H
#define SIPD_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "sip/msg.h"
#include "store/store.h"

struct auth;

struct auth_user {
	char name[64];
	char ha1_md5[33];
	char ha1_sha256[65];
	char extension[32];
	char display_name[128];
	bool disabled;
};

enum auth_result {
	AUTH_OK,        /* credentials verified: *user is set */
	AUTH_CHALLENGE, /* answer 401 / 407 with the challenge lines written to extra */
	AUTH_FORBIDDEN, /* answer 403 with *reason (too many failures) */
	AUTH_BAD,       /* answer 400 with *reason (credentials for another request: RFC 7616 3.4.6) */
};

/* Loads the users of cfg and of the store at db (its own read connection, refreshed every few seconds
 * so that sipctl's changes are seen without a restart). db may be NULL. */
int auth_new(struct auth **ap, const struct config *cfg, const char *db);
void auth_free(struct auth *a);
/* What only time ends: the limiter's pairs that no longer matter. From the main thread, every few s. */
void auth_housekeeping(struct auth *a);
const char *auth_realm(const struct auth *a);
/* 0 or ENOENT. Thread-safe. */
int auth_user_find(struct auth *a, const char *name, struct auth_user *u);
/* Whether name is u's: its name, or its extension when calls to that extension reach u (a user in the
 * database may have been given another's name or extension: the one that calls reach is the only one
 * that may register or send as it). */
bool auth_user_answers_to(struct auth *a, const struct auth_user *u, const char *name);
/* The user that the user part of a Request-URI names: by name, else by extension. 0 or ENOENT. */
int auth_callee_find(struct auth *a, const char *user, struct auth_user *u);
/* Checks the credentials of req in hdr (SIP_HDR_AUTHORIZATION or SIP_HDR_PROXY_AUTHORIZATION); challenge
 * lines (WWW-Authenticate or Proxy-Authenticate to match) go into extra. source ("192.0.2.1") keys the
 * brute-force limiter. Why a request failed (unknown user, disabled, wrong password, stale or replayed
 * nonce) goes to the log, never on the wire. */
enum auth_result auth_check(struct auth *a, const struct sip_msg *req, enum sip_hdr_id hdr, const char *source,
			    struct auth_user *user, char *extra, size_t n, const char **reason);
/* Notes that user (a name or an extension) authenticated from source (an address, as auth_check's) at
 * Unix second when: a binding loaded at start, so that its phone is let try while guesses for the user
 * come from elsewhere (user_max_failures), as it was before the restart. Unknown users are ignored. */
void auth_trust_note(struct auth *a, const char *user, const char *source, int64_t when);
/* A block in force (sipctl show blocks): of one user from one address (max_failures), of a user from
 * the addresses it never authenticated from (user_max_failures), or of an address for the users that
 * never authenticated from it (source_max_failures). */
enum auth_block_kind { AUTH_BLOCK_PAIR, AUTH_BLOCK_USER, AUTH_BLOCK_SOURCE };
struct auth_block {
	enum auth_block_kind kind;
	char user[129];   /* as the credentials wrote it; "" for AUTH_BLOCK_SOURCE */
	char source[65];  /* an address, an IPv6 one as its /64; "" for AUTH_BLOCK_USER */
	int64_t until;    /* Unix second it ends */
	unsigned length;  /* seconds */
};
/* Calls fn for each block in force (with a lock of the limiter held: fn must not call auth); how many. */
size_t auth_blocks(struct auth *a, void (*fn)(void *arg, const struct auth_block *b), void *arg);
/* Lifts the blocks of user, of source, of both (NULL: any), and forgets their failures so far; the
 * number of blocks lifted. */
size_t auth_unblock(struct auth *a, const char *user, const char *source);
/* Reloads the users now (tests). */
int auth_reload(struct auth *a);
/* Replaces the configuration file's users with these (copied; SIGHUP) and reloads them with the store's. */
int auth_set_file_users(struct auth *a, const struct config_user *users, unsigned n);

#endif
