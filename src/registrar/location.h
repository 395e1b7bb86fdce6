/* location.h: the location service: address-of-record to bindings, in memory for lookups on the hot path,
 * each binding expiring on time by its own timer. Durability is the registrar's (the store). */
#ifndef SIPD_REGISTRAR_LOCATION_H
#define SIPD_REGISTRAR_LOCATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct loc;

/* Told of bindings that expired, so the registrar can delete them from the store: on the expiry thread, or
 * in loc_set_locked when a change replaces one past its end before its timer ran; always under the AOR's
 * lock, so that the deletion reaches the store before any change to that AOR made after it. */
typedef void (loc_expired_h)(const struct store_change *dels, size_t n, void *arg);

int loc_new(struct loc **lp, loc_expired_h *expired, void *arg);
/* Stops the expiry thread and frees every binding. */
void loc_free(struct loc *l);
/* Starts the thread that expires bindings (after loading). */
int loc_start(struct loc *l);

/* An AOR whose shard is locked: from loc_lock to loc_unlock every call given it works on that AOR
 * atomically. The AOR is hashed once, by loc_lock, for all of them; its text must not change meanwhile. */
struct loc_held {
	struct loc *l;
	const char *aor;
	uint32_t hash;
};
struct loc_held loc_lock(struct loc *l, const char *aor);
void loc_unlock(const struct loc_held *h);
/* Under the lock: the AOR's live bindings copied into out (at most max); returns how many there are. */
size_t loc_get_locked(const struct loc_held *h, struct store_binding *out, size_t max, int64_t now);
/* Under the lock: replaces the AOR's bindings with these (n may be 0: the AOR goes). 0 or ENOMEM. */
int loc_set_locked(const struct loc_held *h, const struct store_binding *b, size_t n, int64_t now);

/* Takes the lock itself: for lookups (the proxy) and for loading at start. */
size_t loc_lookup(struct loc *l, const char *aor, struct store_binding *out, size_t max, int64_t now);
int loc_put(struct loc *l, const struct store_binding *b, int64_t now);
/* Every live binding (sipctl, tests); the callback runs under a shard lock. */
void loc_foreach(struct loc *l, store_binding_h *cb, void *arg);
size_t loc_count(struct loc *l);
/* The shards the AORs are spread over, and a walk of one shard's live bindings: the callback runs under
 * the shard's lock with the binding's own strings, so it must be quick (copy what it needs). */
typedef void (loc_walk_h)(const char *aor, const char *contact, const char *received, const char *path,
			  const char *local, void *arg);
unsigned loc_shard_count(void);
void loc_walk_shard(struct loc *l, unsigned shard, loc_walk_h *cb, void *arg);

#endif
