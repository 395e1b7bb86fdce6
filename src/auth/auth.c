/* auth.c: the subscribers' table and the digest policy of RFC 3261 22 over digest.c. */
#include "auth/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "auth/digest.h"
#include "auth/digest_private.h"
#include "base/log.h"
#include "sip/build.h"

#define USER_SHARDS 64
#define RELOAD_SECONDS 2

struct user_node {
	struct user_node *next;
	uint32_t hash;
	bool alias;        /* keyed by the user's extension, for auth_callee_find alone */
	struct auth_user u;
};

static const char *node_key(const struct user_node *n)
{
	return n->alias ? n->u.extension : n->u.name;
}

/* A shard of the users table: a lock and its own bucket array, sized at each reload to its users. */
struct user_shard {
	pthread_mutex_t lock;
	struct user_node **buckets;
	size_t nbuckets; /* a power of two */
};

struct auth {
	char realm[128];
	enum digest_alg algs[2];
	unsigned nalgs;
	const struct config *cfg;
	struct digest_nonces *nonces;
	struct digest_limiter *limiter;       /* failures per (source, user) */
	struct digest_limiter *user_limiter;  /* failures per user, from any source; NULL: no such rule */
	struct digest_limiter *src_limiter;   /* failures per source, for any user; NULL: no such rule */
	struct digest_trust *trust;           /* where each user authenticated from */
	struct digest_unanswered *unanswered; /* NULL with one algorithm: nothing to fall back to */
	uint32_t key_seed[2];
	struct user_shard shards[USER_SHARDS];
	char db[CONFIG_STR];
	struct store *users_db;  /* open while sipd runs: the reloader polls its users generation */
	int64_t users_gen;       /* of the last reload */
	pthread_mutex_t reload_lock;   /* one reload at a time: the reloader's, a SIGHUP's */
	struct config_user *file_users; /* the configuration file's [user] sections, a copy (SIGHUP swaps it) */
	unsigned nfile_users;
	pthread_t reloader;
	bool reloader_running;
	atomic_bool stopping;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
};

static uint64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

static uint32_t user_hash(const char *name)
{
	return slice_hash(slice_cstr(name), 0);
}

/* The shard takes the hash's low bits modulo USER_SHARDS, the bucket the bits above them. */
static size_t user_bucket(uint32_t hash, size_t nbuckets)
{
	return (hash / USER_SHARDS) & (nbuckets - 1);
}

/* ---- the users table ---- */

/* Replaces the whole table with the users of the configuration plus those of the store. */
struct user_list {
	struct user_node *head;
	unsigned n;
};

static int collect_store_user(const struct store_user *su, void *arg)
{
	struct user_list *l = arg;
	struct user_node *n = calloc(1, sizeof(*n));

	if (!n)
		return ENOMEM;
	snprintf(n->u.name, sizeof(n->u.name), "%s", su->name);
	memcpy(n->u.ha1_md5, su->ha1_md5, sizeof(n->u.ha1_md5));
	memcpy(n->u.ha1_sha256, su->ha1_sha256, sizeof(n->u.ha1_sha256));
	memcpy(n->u.extension, su->extension, sizeof(n->u.extension));
	memcpy(n->u.display_name, su->display_name, sizeof(n->u.display_name));
	n->u.disabled = su->disabled;
	n->next = l->head;
	l->head = n;
	l->n++;
	return 0;
}

static int collect_config_users(struct auth *a, struct user_list *l)
{
	for (unsigned i = 0; i < a->nfile_users; i++) {
		const struct config_user *cu = &a->file_users[i];
		struct user_node *n = calloc(1, sizeof(*n));
		struct slice name = slice_cstr(cu->name), realm = slice_cstr(a->realm);

		if (!n)
			return ENOMEM;
		snprintf(n->u.name, sizeof(n->u.name), "%s", cu->name);
		if (cu->password[0]) {
			char md5[DIGEST_HEX_MAX];

			digest_ha1(DIGEST_MD5, name, realm, slice_cstr(cu->password), md5);
			memcpy(n->u.ha1_md5, md5, sizeof(n->u.ha1_md5) - 1);
			digest_ha1(DIGEST_SHA256, name, realm, slice_cstr(cu->password), n->u.ha1_sha256);
		}
		if (cu->ha1[0])
			snprintf(n->u.ha1_md5, sizeof(n->u.ha1_md5), "%s", cu->ha1);
		if (cu->ha1_sha256[0])
			snprintf(n->u.ha1_sha256, sizeof(n->u.ha1_sha256), "%s", cu->ha1_sha256);
		memcpy(n->u.extension, cu->extension, sizeof(n->u.extension));
		memcpy(n->u.display_name, cu->display_name, sizeof(n->u.display_name));
		n->u.disabled = cu->disabled;
		n->next = l->head;
		l->head = n;
		l->n++;
	}
	return 0;
}

static void free_nodes(struct user_node *n)
{
	while (n) {
		struct user_node *next = n->next;

		free(n);
		n = next;
	}
}

static void free_buckets(struct user_node **buckets, size_t nbuckets)
{
	for (size_t i = 0; buckets && i < nbuckets; i++)
		free_nodes(buckets[i]);
	free(buckets);
}

/* Spreads the list over fresh bucket arrays, then swaps each shard's in. Within a bucket the list's
 * order is reversed, so that the last match of a name is the [user] of the file (added last). */
static int users_install(struct auth *a, struct user_list *l)
{
	struct user_node **fresh[USER_SHARDS];
	size_t count[USER_SHARDS] = { 0 }, nb[USER_SHARDS];

	for (struct user_node *n = l->head; n; n = n->next)
		count[(n->hash = user_hash(node_key(n))) % USER_SHARDS]++;
	for (unsigned s = 0; s < USER_SHARDS; s++) {
		for (nb[s] = 1; nb[s] < count[s]; nb[s] *= 2)
			;
		fresh[s] = calloc(nb[s], sizeof(*fresh[s]));
		if (!fresh[s]) {
			while (s--)
				free(fresh[s]);
			return ENOMEM;
		}
	}
	for (struct user_node *n = l->head, *next; n; n = next) {
		unsigned s = n->hash % USER_SHARDS;
		struct user_node **b = &fresh[s][user_bucket(n->hash, nb[s])];

		next = n->next;
		n->next = *b;
		*b = n;
	}
	l->head = NULL;
	for (unsigned s = 0; s < USER_SHARDS; s++) {
		struct user_node **old;
		size_t oldn;

		pthread_mutex_lock(&a->shards[s].lock);
		old = a->shards[s].buckets;
		oldn = a->shards[s].nbuckets;
		a->shards[s].buckets = fresh[s];
		a->shards[s].nbuckets = nb[s];
		pthread_mutex_unlock(&a->shards[s].lock);
		free_buckets(old, oldn);
	}
	return 0;
}

/* A second node for each user with an extension, keyed by it: a call to sip:100@ finds its user. The
 * aliases go to the list's end, which users_install puts first in each bucket, so that a user's own
 * name wins over another's extension (the last match wins). */
static int add_extension_aliases(struct user_list *l)
{
	struct user_node *aliases = NULL, **tail = &aliases, **end = &l->head;

	for (struct user_node *n = l->head; n; n = n->next) {
		struct user_node *x;

		if (!n->u.extension[0])
			continue;
		if (!(x = malloc(sizeof(*x)))) {
			free_nodes(aliases);
			return ENOMEM;
		}
		*x = *n;
		x->alias = true;
		x->next = NULL;
		*tail = x;
		tail = &x->next;
	}
	while (*end)
		end = &(*end)->next;
	*end = aliases;
	return 0;
}

static int reload_locked(struct auth *a);

int auth_reload(struct auth *a)
{
	int err;

	pthread_mutex_lock(&a->reload_lock);
	err = reload_locked(a);
	pthread_mutex_unlock(&a->reload_lock);
	return err;
}

/* A copy of n [user] sections (n may be 0); NULL only when out of memory. */
static struct config_user *users_copy(const struct config_user *users, unsigned n)
{
	struct config_user *c = malloc((n ? n : 1) * sizeof(*c));

	if (c && n)
		memcpy(c, users, n * sizeof(*c));
	return c;
}

int auth_set_file_users(struct auth *a, const struct config_user *users, unsigned n)
{
	struct config_user *fresh = users_copy(users, n), *old;
	unsigned old_n;
	int err;

	if (!fresh)
		return ENOMEM;
	pthread_mutex_lock(&a->reload_lock);
	old = a->file_users;
	old_n = a->nfile_users;
	a->file_users = fresh;
	a->nfile_users = n;
	err = reload_locked(a);
	pthread_mutex_unlock(&a->reload_lock);
	explicit_bzero(old, old_n * sizeof(*old)); /* plain passwords */
	free(old);
	return err;
}

static int reload_locked(struct auth *a)
{
	struct user_list l = { NULL, 0 };
	const char *why = NULL;
	int64_t gen = 0;
	int err = 0;

	/* the store's users first, so that a [user] of the file wins over a row of the same name; the
	 * generation before the rows: a change in between makes the next poll read them again */
	if (a->db[0] && !a->users_db)
		err = store_open(&a->users_db, a->db, false, &why);
	if (!err && a->users_db && (err = store_users_generation(a->users_db, &gen)) == 0)
		err = store_user_list(a->users_db, collect_store_user, &l);
	if (err) {
		log_warn("auth: cannot read users from %s: %s", a->db, why ? why : strerror(err));
		free_nodes(l.head);
		return err;
	}
	if ((err = collect_config_users(a, &l)) || (err = add_extension_aliases(&l))) {
		free_nodes(l.head);
		return err;
	}
	err = users_install(a, &l);
	if (err) {
		free_nodes(l.head);
		return err;
	}
	a->users_gen = gen;
	return 0;
}

/* Reads the users again only when the table changed since the last reload (under the reload lock: a
 * SIGHUP's reload shares the store's connection and the generation). */
static void reload_if_changed(struct auth *a)
{
	int64_t gen;
	int err;

	pthread_mutex_lock(&a->reload_lock);
	err = store_users_generation(a->users_db, &gen);
	if (err)
		log_warn("auth: cannot poll users in %s: %s", a->db, strerror(err));
	else if (gen != a->users_gen)
		reload_locked(a);
	pthread_mutex_unlock(&a->reload_lock);
}

static int user_lookup(struct auth *a, const char *key, bool aliases, struct auth_user *u)
{
	uint32_t h = user_hash(key);
	struct user_shard *s = &a->shards[h % USER_SHARDS];
	struct user_node *n;
	int err = ENOENT;

	pthread_mutex_lock(&s->lock);
	for (n = s->buckets ? s->buckets[user_bucket(h, s->nbuckets)] : NULL; n; n = n->next) {
		/* the last node of a key wins: the file's [user] was added after the store's row, a name after
		 * the aliases */
		if (n->hash == h && (aliases || !n->alias) && !strcmp(node_key(n), key)) {
			*u = n->u;
			err = 0;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

int auth_user_find(struct auth *a, const char *name, struct auth_user *u)
{
	return user_lookup(a, name, false, u);
}

bool auth_user_answers_to(struct auth *a, const struct auth_user *u, const char *name)
{
	struct auth_user callee;

	if (!strcmp(name, u->name))
		return true;
	return u->extension[0] && !strcmp(name, u->extension) && auth_callee_find(a, name, &callee) == 0 &&
	       !strcmp(callee.name, u->name);
}

int auth_callee_find(struct auth *a, const char *user, struct auth_user *u)
{
	return user_lookup(a, user, true, u);
}

static void *reloader_main(void *arg)
{
	struct auth *a = arg;

	pthread_setname_np(pthread_self(), "sipd-users"); /* top -H, ps -L */

	pthread_mutex_lock(&a->stop_lock);
	while (!atomic_load(&a->stopping)) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += RELOAD_SECONDS;
		pthread_cond_timedwait(&a->stop_cond, &a->stop_lock, &until);
		if (atomic_load(&a->stopping))
			break;
		pthread_mutex_unlock(&a->stop_lock);
		reload_if_changed(a);
		pthread_mutex_lock(&a->stop_lock);
	}
	pthread_mutex_unlock(&a->stop_lock);
	return NULL;
}

/* ---- set-up ---- */

/* The challenges offered, in the order the configuration lists them (RFC 8760: preferred first). */
static void parse_algorithms(struct auth *a, const char *list)
{
	char buf[64], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ", \t", &save); tok && a->nalgs < 2; tok = strtok_r(NULL, ", \t", &save)) {
		enum digest_alg alg;

		if (!strcasecmp(tok, "SHA-256"))
			alg = DIGEST_SHA256;
		else if (!strcasecmp(tok, "MD5"))
			alg = DIGEST_MD5;
		else
			continue;
		if (a->nalgs == 0 || a->algs[0] != alg)
			a->algs[a->nalgs++] = alg;
	}
	if (!a->nalgs)
		a->algs[a->nalgs++] = DIGEST_SHA256;
}

int auth_new(struct auth **ap, const struct config *cfg, const char *db)
{
	struct auth *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return ENOMEM;
	a->cfg = cfg;
	if (cfg->realm[0])
		snprintf(a->realm, sizeof(a->realm), "%s", cfg->realm);
	else if (cfg->domain[0])
		snprintf(a->realm, sizeof(a->realm), "%.*s", (int)strcspn(cfg->domain, ", \t"), cfg->domain);
	else
		snprintf(a->realm, sizeof(a->realm), "sipd");
	parse_algorithms(a, cfg->algorithms);
	for (unsigned s = 0; s < USER_SHARDS; s++)
		pthread_mutex_init(&a->shards[s].lock, NULL);
	pthread_mutex_init(&a->stop_lock, NULL);
	pthread_cond_init(&a->stop_cond, NULL);
	pthread_mutex_init(&a->reload_lock, NULL);
	if (!(a->file_users = users_copy(cfg->users, cfg->nusers))) {
		free(a);
		return ENOMEM;
	}
	a->nfile_users = cfg->nusers;
	if (db)
		snprintf(a->db, sizeof(a->db), "%s", db);
	err = digest_nonces_new(&a->nonces, cfg->nonce_lifetime, 1u << 20);
	if (!err)
		err = digest_limiter_new(&a->limiter, cfg->max_failures, cfg->failure_window, cfg->block_time,
					 1u << 20);
	if (!err && cfg->user_max_failures)
		err = digest_limiter_new(&a->user_limiter, cfg->user_max_failures, cfg->failure_window,
					 cfg->block_time, 1u << 18);
	if (!err && cfg->source_max_failures)
		err = digest_limiter_new(&a->src_limiter, cfg->source_max_failures, cfg->failure_window,
					 cfg->block_time, 1u << 18);
	if (!err && (cfg->user_max_failures || cfg->source_max_failures))
		err = digest_trust_new(&a->trust, 1u << 20);
	if (!err && a->nalgs > 1) {
		err = digest_unanswered_new(&a->unanswered, 1u << 14);
		a->key_seed[0] = digest__random_seed();
		a->key_seed[1] = digest__random_seed();
	}
	if (!err)
		err = auth_reload(a);
	if (!err && a->users_db) {
		err = pthread_create(&a->reloader, NULL, reloader_main, a);
		a->reloader_running = err == 0;
	}
	if (err) {
		auth_free(a);
		return err;
	}
	*ap = a;
	return 0;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	if (a->reloader_running) {
		pthread_mutex_lock(&a->stop_lock);
		atomic_store(&a->stopping, true);
		pthread_cond_signal(&a->stop_cond);
		pthread_mutex_unlock(&a->stop_lock);
		pthread_join(a->reloader, NULL);
	}
	for (unsigned s = 0; s < USER_SHARDS; s++) {
		free_buckets(a->shards[s].buckets, a->shards[s].nbuckets);
		pthread_mutex_destroy(&a->shards[s].lock);
	}
	store_close(a->users_db);
	digest_nonces_free(a->nonces);
	digest_limiter_free(a->limiter);
	digest_limiter_free(a->user_limiter);
	digest_limiter_free(a->src_limiter);
	digest_trust_free(a->trust);
	digest_unanswered_free(a->unanswered);
	pthread_mutex_destroy(&a->stop_lock);
	pthread_cond_destroy(&a->stop_cond);
	pthread_mutex_destroy(&a->reload_lock);
	if (a->file_users)
		explicit_bzero(a->file_users, a->nfile_users * sizeof(*a->file_users));
	free(a->file_users);
	free(a);
}

void auth_housekeeping(struct auth *a)
{
	uint64_t now = now_s();
	size_t n = a ? digest_limiter_sweep(a->limiter, now) + digest_limiter_sweep(a->user_limiter, now) +
			      digest_limiter_sweep(a->src_limiter, now)
		     : 0;

	if (n)
		log_debug("auth: %zu (source, user) failure record(s) past their time forgotten", n);
}

const char *auth_realm(const struct auth *a)
{
	return a->realm;
}

/* ---- the check ---- */

/* The algorithm of a single challenge: MD5, which every client knows, when it is offered. */
static enum digest_alg single_alg(const struct auth *a)
{
	for (unsigned i = 0; i < a->nalgs; i++)
		if (a->algs[i] == DIGEST_MD5)
			return DIGEST_MD5;
	return a->algs[0];
}

/* One request's check: what the helpers below share, the clock read once for all of them. */
struct attempt {
	struct auth *a;
	enum sip_hdr_id hdr;  /* Authorization or Proxy-Authorization */
	struct slice src;     /* the source address, as the limiters and the trust table key it */
	uint64_t key;         /* client_key, for the memory of unanswered challenges */
	uint64_t now;         /* seconds */
	char *extra;          /* the challenge's header fields go here, n bytes */
	size_t n;
};

static void challenge(const struct attempt *t, bool stale, bool single)
{
	struct auth *a = t->a;
	const char *name = t->hdr == SIP_HDR_PROXY_AUTHORIZATION ? "Proxy-Authenticate" : "WWW-Authenticate";
	char nonce[DIGEST_NONCE_MAX];
	struct sbuf b;

	/* RFC 8760 2.4: one challenge per algorithm, the preferred first, one nonce for all */
	digest_nonce_make(a->nonces, slice_cstr(a->realm), t->now, nonce);
	sbuf_init(&b, t->extra, t->n - 1);
	if (single)
		digest_challenge_write(&b, name, slice_cstr(a->realm), nonce, single_alg(a), stale);
	else
		for (unsigned i = 0; i < a->nalgs; i++)
			digest_challenge_write(&b, name, slice_cstr(a->realm), nonce, a->algs[i], stale);
	t->extra[b.overflow ? 0 : b.len] = '\0';
}

/* Who a client is, for the memory of unanswered challenges: the address its request came from, the
 * sent-by of its Via and its From URI (a phone behind a NAT shares the first with its neighbours). */
static uint64_t client_key(const struct auth *a, const struct sip_msg *req, struct slice src)
{
	uint64_t key = 0;

	for (unsigned i = 0; i < 2; i++) {
		uint32_t h = slice_hash(src, a->key_seed[i]);

		h = slice_hash(req->via.host, h ^ req->via.port);
		h = slice_hash(req->from.uri, h);
		key = key << 32 | h;
	}
	return key;
}

/* Whether the client of key is to get one challenge; a request without credentials also tells. */
static bool single_challenge(const struct attempt *t, bool uncredentialed)
{
	struct auth *a = t->a;
	bool newly;

	if (!a->unanswered)
		return false;
	if (!uncredentialed)
		return digest_unanswered_single(a->unanswered, t->key, t->now);
	if (!digest_unanswered_request(a->unanswered, t->key, t->now, &newly))
		return false;
	if (newly)
		log_info("auth: a client at %.*s answered none of %u challenges and asked again: from now on it is "
			 "challenged with %s alone", SLICE_ARG(t->src), a->nalgs,
			 single_alg(a) == DIGEST_MD5 ? "MD5" : "SHA-256");
	return true;
}

/* The credentials for our realm among the request's Authorization headers (RFC 3261 22.4). The realm
 * is compared unescaped: a realm holding '"' or '\\' is sent as a quoted-pair (RFC 3261 25.1). */
static bool find_cred(struct auth *a, const struct sip_msg *req, enum sip_hdr_id hdr, struct digest_cred *c)
{
	for (const struct sip_hdr *h = sip_msg_hdr(req, hdr); h; h = sip_msg_hdr_next(req, h))
		if (digest_cred_parse(c, h->value) == 0 && digest_unq_eq(c->realm, slice_cstr(a->realm)))
			return true;
	return false;
}

/* RFC 7616 3.4.6: the "uri" of the credentials names the resource of the Request-Line: the same URI by
 * the comparison rules of RFC 3261 19.1.4 (scheme and host in any case, parameters in any order), so
 * that a client writing "SIP:" or a host in capitals is not refused for it. */
static bool cred_uri_matches(const struct digest_cred *c, const struct sip_msg *req)
{
	struct sip_uri u;

	if (slice_eq(c->uri, req->ruri))
		return true;
	return !req->ruri_err && sip_uri_parse(&u, c->uri) == 0 && sip_uri_equal(&u, &req->ruri_uri);
}

static bool alg_offered(const struct auth *a, enum digest_alg alg)
{
	for (unsigned i = 0; i < a->nalgs; i++)
		if (a->algs[i] == alg)
			return true;
	return false;
}

/* An HA1 of the algorithm's length that no password gives in practice: what the response of a user that
 * does not exist (or has no hash for the algorithm) is checked against, at a known user's cost. */
static const char *no_ha1(enum digest_alg alg)
{
	static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";

	return alg == DIGEST_SHA256 ? zeros : zeros + 32;
}

/* Credentials that do not pass: logged with why, and a new challenge. */
static enum auth_result rechallenge(const struct attempt *t, struct slice user, const char *why)
{
	log_info("auth: %s for user '%.*s' from %.*s", why, SLICE_ARG(user), SLICE_ARG(t->src));
	challenge(t, false, single_challenge(t, false));
	return AUTH_CHALLENGE;
}

/* As rechallenge, for a password tried and failed: it counts towards a lockout. */
static enum auth_result fail(const struct attempt *t, struct slice user, const char *why)
{
	struct auth *a = t->a;
	struct slice src = t->src;
	unsigned secs;

	/* a block that starts is a warning: what an administrator keeping only warnings wants to see */
	if ((secs = digest_limiter_failure(a->limiter, src, user, t->now)))
		log_warn("auth: '%.*s' from %.*s blocked for %u s: %u failed attempts within %u s", SLICE_ARG(user),
			 SLICE_ARG(src), secs, a->cfg->max_failures, a->cfg->failure_window);
	if ((secs = digest_limiter_failure(a->user_limiter, SLICE_LIT(""), user, t->now)))
		log_warn("auth: '%.*s' blocked for %u s from addresses it never authenticated from: %u failed attempts "
			 "within %u s", SLICE_ARG(user), secs, a->cfg->user_max_failures, a->cfg->failure_window);
	if ((secs = digest_limiter_failure(a->src_limiter, src, SLICE_LIT(""), t->now)))
		log_warn("auth: %.*s blocked for %u s for users that never authenticated from it: %u failed attempts "
			 "within %u s", SLICE_ARG(src), secs, a->cfg->source_max_failures, a->cfg->failure_window);
	return rechallenge(t, user, why);
}

/* Which spread of failures refuses these credentials from src: failures for the user from several
 * addresses, or from src for several users, and the user never authenticated from src; NULL: none. */
static const char *spread_block(const struct attempt *t, struct slice user, char *uname, size_t n)
{
	const struct auth *a = t->a;
	const char *why = NULL;

	if (digest_limiter_blocked(a->user_limiter, SLICE_LIT(""), user, t->now))
		why = "for the user from several addresses";
	else if (digest_limiter_blocked(a->src_limiter, t->src, SLICE_LIT(""), t->now))
		why = "from this address for several users";
	if (why && !digest_unq_copy(uname, n, user) && digest_trust_has(a->trust, t->src, slice_cstr(uname)))
		why = NULL;
	return why;
}

void auth_trust_note(struct auth *a, const char *user, const char *source, int64_t when)
{
	struct auth_user u;

	if (a->trust && when > 0 && auth_callee_find(a, user, &u) == 0)
		digest_trust_note(a->trust, slice_cstr(source), slice_cstr(u.name), (uint64_t)when);
}

struct blocks_walk {
	enum auth_block_kind kind;
	void (*fn)(void *arg, const struct auth_block *b);
	void *arg;
};

static void block_seen(void *arg, const struct digest_block *d)
{
	struct blocks_walk *w = arg;
	struct auth_block b = { .kind = w->kind, .until = (int64_t)d->until, .length = d->length };

	snprintf(b.user, sizeof(b.user), "%.*s", SLICE_ARG(d->user));
	snprintf(b.source, sizeof(b.source), "%.*s", SLICE_ARG(d->source));
	w->fn(w->arg, &b);
}

size_t auth_blocks(struct auth *a, void (*fn)(void *arg, const struct auth_block *b), void *arg)
{
	struct digest_limiter *const limiters[] = { a->limiter, a->user_limiter, a->src_limiter };
	const enum auth_block_kind kinds[] = { AUTH_BLOCK_PAIR, AUTH_BLOCK_USER, AUTH_BLOCK_SOURCE };
	uint64_t now = now_s();
	size_t total = 0;

	for (size_t i = 0; i < sizeof(limiters) / sizeof(limiters[0]); i++) {
		struct blocks_walk w = { kinds[i], fn, arg };

		total += digest_limiter_blocks(limiters[i], now, fn ? block_seen : NULL, &w);
	}
	return total;
}

size_t auth_unblock(struct auth *a, const char *user, const char *source)
{
	struct slice u = slice_cstr(user ? user : ""), src = slice_cstr(source ? source : "");
	const struct slice *up = user ? &u : NULL, *sp = source ? &src : NULL;
	uint64_t now = now_s();
	size_t n = digest_limiter_forget(a->limiter, sp, up, now);

	/* a user's count from any address, an address's for any user: lifted with the user or the address
	 * alone (or with everything), not with one pair of them */
	if (!source)
		n += digest_limiter_forget(a->user_limiter, NULL, up, now);
	if (!user)
		n += digest_limiter_forget(a->src_limiter, sp, NULL, now);
	log_warn("auth: blocks lifted by the administrator (user %s, address %s): %zu", user ? user : "any",
		 source ? source : "any", n);
	return n;
}

enum auth_result auth_check(struct auth *a, const struct sip_msg *req, enum sip_hdr_id hdr, const char *source,
			    struct auth_user *user, char *extra, size_t n, const char **reason)
{
	struct slice src = slice_cstr(source);
	const struct attempt t = { a, hdr, src, a->unanswered ? client_key(a, req, src) : 0, now_s(), extra, n };
	struct digest_cred c;
	char uname[64];
	const char *ha1;
	enum digest_verdict v;
	const char *why;
	bool right;

	*reason = NULL;
	if (!find_cred(a, req, hdr, &c)) {
		/* the first challenge of a request that carried none is not a failure */
		challenge(&t, false, single_challenge(&t, true));
		return AUTH_CHALLENGE;
	}
	if (digest_limiter_blocked(a->limiter, src, c.username, t.now)) {
		log_info("auth: '%.*s' from %s refused: too many failures", SLICE_ARG(c.username), source);
		*reason = "Too many failed authentication attempts";
		return AUTH_FORBIDDEN;
	}
	/* guesses for this user from many addresses, or from this address for many users (password spraying),
	 * each under the pair's limit: only a user and an address it authenticated from before may go on; the
	 * same 403, for names nobody has alike */
	if ((why = spread_block(&t, c.username, uname, sizeof(uname)))) {
		log_info("auth: '%.*s' from %s refused: too many failures %s, and it never authenticated from this "
			 "one", SLICE_ARG(c.username), source, why);
		*reason = "Too many failed authentication attempts";
		return AUTH_FORBIDDEN;
	}
	if (!alg_offered(a, c.alg)) /* no failure towards a lockout: no password was tried */
		return rechallenge(&t, c.username, "algorithm not offered");
	/* credentials made for another request: 400 (RFC 7616 3.4.6), neither a new challenge, which the
	 * client would answer the same way, nor a failure that counts towards a lockout: no password was
	 * tried. The user does not matter yet, so nothing is told about who exists. */
	if (!cred_uri_matches(&c, req)) {
		log_info("auth: the digest uri of '%.*s' from %s is not the Request-URI: 400", SLICE_ARG(c.username),
			 source);
		*reason = "Digest uri does not match the Request-URI";
		return AUTH_BAD;
	}
	/* the user name unescaped (a '\\' in it is sent as a quoted-pair), as the digest was computed */
	if (digest_unq_copy(uname, sizeof(uname), c.username) || auth_user_find(a, uname, user)) {
		/* the hashes computed all the same, so that the time of the answer tells nothing either */
		(void)digest_check(c.alg, no_ha1(c.alg), &c, req->method);
		return fail(&t, c.username, "unknown user");
	}
	ha1 = c.alg == DIGEST_SHA256 ? user->ha1_sha256 : user->ha1_md5;
	right = digest_check(c.alg, ha1[0] ? ha1 : no_ha1(c.alg), &c, req->method) && ha1[0];
	if (user->disabled)
		return fail(&t, c.username, "disabled user");
	if (!ha1[0])
		return fail(&t, c.username, "no HA1 for that algorithm");
	if (!right)
		return fail(&t, c.username, "wrong password");
	/* RFC 7616 3.3: the password was right; only the nonce is old, or from before a restart (the
	 * nonce key is made at start): a fresh challenge with stale=true, not a failure */
	v = digest_nonce_verify(a->nonces, slice_cstr(a->realm), c.nonce, c.has_qop ? c.nc : 0, t.now);
	if (v == DIGEST_NONCE_STALE || v == DIGEST_NONCE_BAD) {
		log_debug("auth: %s nonce for '%s'", v == DIGEST_NONCE_STALE ? "stale" : "unknown", user->name);
		challenge(&t, true, single_challenge(&t, false));
		return AUTH_CHALLENGE;
	}
	if (v != DIGEST_NONCE_OK)
		return fail(&t, c.username, "replayed nonce count");
	digest_limiter_success(a->limiter, src, c.username);
	digest_trust_note(a->trust, src, slice_cstr(user->name), t.now); /* by its name, as at start */
	if (a->unanswered)
		digest_unanswered_answered(a->unanswered, t.key);
	return AUTH_OK;
}
