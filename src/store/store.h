/* store.h: users and location bindings behind one interface (SQLite now, PostgreSQL and Redis later).
 * Calls block: sipd makes them from the store's own writer thread or at start-up, never on an event loop. */
#ifndef SIPD_STORE_STORE_H
#define SIPD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct store;

struct store_user {
	char name[64];
	char ha1_md5[33];      /* lower-case hex; empty when unknown */
	char ha1_sha256[65];
	char extension[32];
	char display_name[128];
	bool disabled;
};

struct store_binding {
	char aor[256];         /* "sip:alice@example.com" */
	char contact[512];     /* the Contact URI as registered */
	char received[128];    /* where the REGISTER came from: "udp:192.0.2.1:5060" */
	char path[1024];       /* Path header values, comma-separated, in order (RFC 3327) */
	char call_id[256];
	char user_agent[256];
	char instance[160];    /* +sip.instance, when given */
	char local[64];        /* the listener it registered through: "udp:192.0.2.7:5060"; requests to the
	                        * phone leave from there ('' when unknown: the first of the family) */
	uint32_t cseq;
	int q;                 /* thousandths; -1 = none */
	int64_t expires;       /* absolute, Unix seconds: the first second it is gone (store_binding_end) */
	int64_t updated;       /* Unix seconds */
	int64_t seq;           /* its row, for life (store_seq_next); 0: none given, the store finds the
	                        * row by aor and contact, reading the whole table */
};

/* A binding granted n seconds at Unix second now ends at now + n + 1: time is kept in whole seconds,
 * and now + n would cut up to a second off the grant (a phone refreshing just in time would find its
 * binding gone). It lives while the clock's second is below its end. */
static inline int64_t store_binding_end(int64_t now, int64_t n)
{
	return now + n + 1;
}

/* The seconds a binding has left, as a 200 or sipctl shows them: n at its grant, at least 1 while it
 * lives, 0 once it is gone. */
static inline int64_t store_binding_left(int64_t end, int64_t now)
{
	if (end <= now)
		return 0;
	return end - now - 1 > 0 ? end - now - 1 : 1;
}

/* Copies src's used bytes: each string through its NUL (a whole array when it has none, for the store
 * to refuse as before), and the numbers; the rest of dst's arrays is left as it was, since every reader
 * stops at the NUL. A whole copy is 2.7 kB of mostly empty arrays, written to memory twice a REGISTER. */
static inline void store_binding_copy(struct store_binding *dst, const struct store_binding *src)
{
#define STORE_COPY_STR(f)                                                   \
	do {                                                                \
		size_t l_ = strnlen(src->f, sizeof(src->f));                  \
		memcpy(dst->f, src->f, l_ < sizeof(src->f) ? l_ + 1 : l_);  \
	} while (0)
	STORE_COPY_STR(aor);
	STORE_COPY_STR(contact);
	STORE_COPY_STR(received);
	STORE_COPY_STR(path);
	STORE_COPY_STR(call_id);
	STORE_COPY_STR(user_agent);
	STORE_COPY_STR(instance);
	STORE_COPY_STR(local);
#undef STORE_COPY_STR
	dst->cseq = src->cseq;
	dst->q = src->q;
	dst->expires = src->expires;
	dst->updated = src->updated;
	dst->seq = src->seq;
}
/* A field added to struct store_binding needs its line in store_binding_copy: this fails until then. */
_Static_assert(sizeof(struct store_binding) == 256 + 512 + 128 + 1024 + 256 + 256 + 160 + 64 + 4 + 4 + 8 + 8 + 8,
	       "store_binding_copy names every field");

enum store_op { STORE_BINDING_PUT, STORE_BINDING_DEL, STORE_AOR_DEL };

/* One change. With a row number (the registrar's): PUT writes row b.seq (a new binding's appended at the
 * table's end, a refresh's rewritten where it is), DEL deletes row b.seq; the store never searches. Without
 * (b.seq 0): PUT replaces, and DEL deletes, the binding with the same (aor, contact), found by reading the
 * table; AOR_DEL deletes the AOR's bindings so. */
struct store_change {
	enum store_op op;
	struct store_binding b; /* DEL uses aor + contact (or seq); AOR_DEL uses aor */
};

typedef int (store_user_h)(const struct store_user *u, void *arg);       /* non-zero stops */
typedef int (store_binding_h)(const struct store_binding *b, void *arg); /* non-zero stops */

/* The file a database URL names: "sqlite:PATH", "sqlite://PATH" (so "sqlite:///var/lib/sipd.db" is
 * absolute) or a plain PATH; NULL for any other "scheme:" (postgres:, redis:; a plain path that starts
 * like a scheme is written "./a:b.db"). */
const char *store_file(const char *url);
/* "sqlite:PATH" or a plain PATH. Creates the schema if missing. 0 or an errno; *errmsg (static) says why. */
int store_open(struct store **sp, const char *url, bool sync_full, const char **errmsg);
void store_close(struct store *s);

int store_user_get(struct store *s, const char *name, struct store_user *u); /* 0, ENOENT, EIO */
int store_user_put(struct store *s, const struct store_user *u);             /* insert or replace */
int store_user_del(struct store *s, const char *name);                       /* 0, ENOENT */
int store_user_list(struct store *s, store_user_h *cb, void *arg);
/* A number that changes whenever the users table is written (by any program): poll it, then list. */
int store_users_generation(struct store *s, int64_t *gen);

/* Every binding with expires > now (and deletes the expired ones). */
int store_bindings_load(struct store *s, int64_t now, store_binding_h *cb, void *arg);
/* Every binding with expires > now, ordered by AOR then contact; deletes nothing (sipctl, reports).
 * 0, EIO, or the callback's non-zero value. */
int store_bindings_list(struct store *s, int64_t now, store_binding_h *cb, void *arg);
/* The bindings of one AOR with expires > now, as the file holds them (what a failed write left: the
 * registrar sets its memory back to them). 0, EIO, or the callback's non-zero value. */
int store_bindings_of(struct store *s, const char *aor, int64_t now, store_binding_h *cb, void *arg);
/* The secret stored under name, len bytes, into out: the one stored already, else fresh (random bytes the
 * caller drew), stored now. Every process on one database gets the same, and it outlives restarts. 0, EIO,
 * or EINVAL when the stored one has another length. */
int store_secret(struct store *s, const char *name, const uint8_t *fresh, size_t len, uint8_t *out);
/* An administrator's removal (sipctl unregister): the bindings of aor whose contact is the one given (NULL
 * or "": every one) deleted, and, when there were any, a request left for a running sipd to drop them from
 * its memory too (store_unbinds_take), in one transaction. *removed: how many rows went. 0, EINVAL, EIO. */
int store_unbind(struct store *s, const char *aor, const char *contact, size_t *removed);
struct store_unbind {
	char aor[256];
	char contact[512]; /* "": every binding of the AOR */
};
/* sipd: up to max of the requests store_unbind left, oldest first, into out (*n of them), forgotten in the
 * same transaction. 0, EINVAL, EIO (then *n is 0 and they stay for the next call). */
int store_unbinds_take(struct store *s, struct store_unbind *out, size_t max, size_t *n);

/* A row number for a new binding, above every one in the file when it was opened and every one given
 * before, from a range another process on the same file does not use (by the clock at opening); the
 * binding keeps it for life (store_change). Thread-safe. */
int64_t store_seq_next(struct store *s);

/* All changes in one transaction, durable when it returns 0 (WAL; fsync per sync_full). */
int store_apply(struct store *s, const struct store_change *changes, size_t n);

/* Group commit: a thread that takes changes from any thread, applies every change waiting in one
 * transaction, then calls each submitter's done(err, arg) from the writer thread. */
struct store_writer;
typedef void (store_done_h)(int err, void *arg);
/* delay_us (commit_delay): how long a submission that finds the writer idle waits for others to
 * share its transaction and fsync, when the last transaction was shared too (else nobody is coming: a
 * lone submission commits at once); 0 commits at once always. */
int store_writer_new(struct store_writer **wp, struct store *s, size_t max_pending, unsigned delay_us);
/* Flushes what is pending, stops the thread, frees. */
void store_writer_free(struct store_writer *w);
/* Copies the changes. 0, or EAGAIN when max_pending changes wait already (the caller answers 503 with
 * Retry-After), ENOMEM. */
int store_writer_submit(struct store_writer *w, const struct store_change *changes, size_t n, store_done_h *done,
			void *arg);
/* Only from a done callback, on the writer thread: each change for aor submitted after the submission
 * being told, in submit order (those still to be written: a memory set back to the file after a failed
 * write adds them again). */
void store_writer_later_of(struct store_writer *w, const char *aor, void (*cb)(const struct store_change *c, void *arg),
			   void *arg);
/* Batches committed and changes written, for the logs and the benchmark. */
void store_writer_stats(const struct store_writer *w, uint64_t *batches, uint64_t *changes);

#endif
