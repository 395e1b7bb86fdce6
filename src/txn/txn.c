/* txn.c: server transactions: the table, matching keys, and the two state machines of RFC 3261 17.2. */
#include "txn/txn.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/htab.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/recycle.h"
#include "base/timer.h"
#include "net/loop.h"
#include "txn/txn_private.h"

#define BUCKETS_MAX (1u << 22) /* in all shards: chains stay short up to millions of transactions */


/* ---- keys ---- */

/* The key of m's transaction: of the INVITE for an ACK; for a CANCEL (for_cancel), of the request it
 * cancels, whatever its method. */
static bool key_from_msg(struct txn_key *k, const struct sip_msg *m, bool for_cancel)
{
	const struct sip_via *v = &m->via;
	struct slice method = m->mid == SIP_METHOD_ACK ? SLICE_LIT("INVITE") : m->method;

	memset(k, 0, sizeof(*k));
	k->cookie = v->branch.l > 7 && memcmp(v->branch.p, MAGIC_COOKIE, 7) == 0;
	k->part[K_METHOD] = method;
	k->is_ack = m->mid == SIP_METHOD_ACK;
	k->any_method = for_cancel;
	if (k->cookie) {
		k->part[K_BRANCH_OR_RURI] = v->branch;
		k->part[K_HOST_OR_CALLID] = v->host;
		k->port = v->port;
		return true;
	}
	if (!m->call_id.p || !m->cseq.method.p || !v->raw.p)
		return false;
	k->part[K_BRANCH_OR_RURI] = m->ruri;
	k->part[K_HOST_OR_CALLID] = m->call_id;
	k->part[K_FROMTAG] = m->from.tag;
	k->part[K_VIA] = v->raw;
	k->part[K_TOTAG] = m->to.tag;
	k->cseq = m->cseq.num;
	return true;
}

static uint32_t key_hash(const struct txn_key *k)
{
	uint32_t h = k->cookie ? 0x9e3779b9u : 0x85ebca6bu;

	h = slice_hash(k->part[K_BRANCH_OR_RURI], h);
	h = slice_casehash(k->part[K_HOST_OR_CALLID], h);
	return h ^ (k->cseq * 2654435761u) ^ k->port;
}

static bool key_eq(const struct txn_key *a, const struct txn_key *b)
{
	if (a->cookie != b->cookie || a->port != b->port || a->cseq != b->cseq)
		return false;
	if (!slice_eq(a->part[K_BRANCH_OR_RURI], b->part[K_BRANCH_OR_RURI]))
		return false;
	/* 9.2: a CANCEL matches "assuming that the request method is anything but CANCEL or ACK" */
	if (b->any_method ? slice_eq(a->part[K_METHOD], SLICE_LIT("CANCEL"))
			  : !slice_eq(a->part[K_METHOD], b->part[K_METHOD]))
		return false;
	if (a->cookie)
		return slice_caseeq(a->part[K_HOST_OR_CALLID], b->part[K_HOST_OR_CALLID]);
	/* 17.2.3 for RFC 2543: the To tag matches too, except that an ACK carries the tag of the
	 * response it acknowledges, which an INVITE without a To tag did not have */
	if (!slice_eq(a->part[K_TOTAG], b->part[K_TOTAG]) && !(b->is_ack && a->part[K_TOTAG].l == 0))
		return false;
	return slice_eq(a->part[K_HOST_OR_CALLID], b->part[K_HOST_OR_CALLID]) &&
	       slice_eq(a->part[K_FROMTAG], b->part[K_FROMTAG]) && slice_eq(a->part[K_VIA], b->part[K_VIA]);
}

static size_t key_len(const struct txn_key *k)
{
	size_t total = 0;

	for (int i = 0; i < K_PARTS; i++)
		total += k->part[i].l;
	return total;
}

/* Into tx->keybuf, which has key_len(k) bytes. */
static void key_copy(struct txn *tx, const struct txn_key *k)
{
	size_t off = 0;

	tx->key = *k;
	for (int i = 0; i < K_PARTS; i++) {
		if (k->part[i].l)
			memcpy(tx->keybuf + off, k->part[i].p, k->part[i].l);
		tx->key.part[i] = slice_make(tx->keybuf + off, k->part[i].l);
		off += k->part[i].l;
	}
}

/* The key of an echo, as slices into its data. */
static void echo_key(const struct txn_echo *e, struct txn_key *k)
{
	memset(k, 0, sizeof(*k));
	k->cookie = e->cookie;
	k->port = e->port;
	k->cseq = e->cseq;
	for (int i = 0; i < K_PARTS; i++)
		k->part[i] = slice_make(e->data + e->part_off[i], e->part_len[i]);
}

/* ---- table ---- */

int txn_table_new(struct txn_table **tp, const struct txn_table_config *cfg)
{
	struct txn_table *t = calloc(1, sizeof(*t));
	unsigned n = cfg->shards ? cfg->shards : 1024;
	size_t max = n < BUCKETS_MAX / 64 ? BUCKETS_MAX / n : 64; /* buckets per shard */

	if (!t)
		return ENOMEM;
	if (n & (n - 1)) {
		free(t);
		return EINVAL;
	}
	t->cfg = *cfg;
	t->nshards = n;
	t->shards = calloc(n, sizeof(*t->shards));
	if (!t->shards) {
		free(t);
		return ENOMEM;
	}
	if (txn__ctable_new(&t->clients)) {
		free(t->shards);
		free(t);
		return ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_init(&t->shards[i].lock, NULL);
		t->shards[i].table = t;
		if (htab_init(&t->shards[i].entries, 64, max, (unsigned)__builtin_ctz(n))) {
			t->nshards = i + 1;
			txn_table_free(t);
			return ENOMEM;
		}
	}
	*tp = t;
	return 0;
}

/* Locks the shard of a hash and returns it; its bucket array may be reallocated by htab_add, so it
 * is only looked at under the lock. */
static struct shard *shard_lock(struct txn_table *t, uint32_t hash)
{
	struct shard *s = &t->shards[hash & (t->nshards - 1)];

	pthread_mutex_lock(&s->lock);
	return s;
}

static void table_unlink(struct txn *tx)
{
	struct txn_table *t = tx->table;
	struct shard *s = shard_lock(t, tx->e.link.hash);

	if (tx->in_table) {
		htab_remove(&s->entries, &tx->e.link);
		tx->in_table = false;
		atomic_fetch_sub(&t->live, 1);
	}
	if (tx->held_counted) {
		atomic_fetch_sub(&t->held, (tx->req ? tx->req_len : 0) + (tx->resp ? tx->resp_len : 0));
		tx->held_counted = false;
	}
	pthread_mutex_unlock(&s->lock);
}

unsigned txn_table_live(const struct txn_table *t)
{
	struct txn_table *tt = (struct txn_table *)t;

	return atomic_load(&tt->live) + atomic_load(&tt->echoes);
}

/* What an echo sends again, copied out under the shard lock: the echo may end as soon as it is let go. */
struct resend {
	struct tp_worker *worker;
	uint8_t lsn;
	enum tp_proto proto;
	struct tp_addr dst;
	char *buf;
	size_t len;
};

static void echo_copy(const struct txn_echo *e, struct resend *r)
{
	r->worker = e->worker;
	r->lsn = e->lsn;
	r->proto = (enum tp_proto)e->proto;
	r->dst = e->dst;
	r->len = e->resp_len;
	r->buf = malloc(r->len ? r->len : 1); /* a retransmission is rare: no buffer kept for it */
	if (r->buf)
		memcpy(r->buf, e->data, r->len);
}

/* The transaction of k, with a reference; or NULL, with the echo's response in *r when an echo matches
 * (r->buf set; NULL without memory; none either when the request is not of the answered one's length,
 * msg_len, 0 for any). r NULL: transactions only. */
static struct txn *lookup(struct txn_table *t, const struct txn_key *k, struct resend *r, bool *echoed,
			  size_t msg_len)
{
	uint32_t h = key_hash(k);
	struct shard *s = shard_lock(t, h);
	const struct txn_echo *echo = NULL;
	struct txn *tx = NULL;

	for (struct htab_link *l = htab_chain(&s->entries, h); l && !tx; l = l->next) {
		struct tentry *e = (struct tentry *)l;
		struct txn_key ek;

		if (l->hash != h)
			continue;
		if (!e->echo) {
			if (key_eq(&((struct txn *)e)->key, k))
				tx = mem_ref((struct txn *)e);
			continue;
		}
		/* a transaction being reduced stands beside its echo for a moment: it goes first. An ACK
		 * never matches an echo: the only INVITE echoes are of Accepted transactions, whose ACKs
		 * (of the 2xx) are the TU's (RFC 6026 7.1) */
		if (echoed && !echo && !k->is_ack) {
			echo_key((const struct txn_echo *)e, &ek);
			if (key_eq(&ek, k))
				echo = (const struct txn_echo *)e;
		}
	}
	if (!tx && echo) {
		if (r && (!msg_len || msg_len == echo->msg_len))
			echo_copy(echo, r);
		*echoed = true;
	}
	pthread_mutex_unlock(&s->lock);
	return tx;
}

struct txn *txn_server_match(struct txn_table *t, const struct sip_msg *req, bool *absorbed)
{
	struct resend r = { 0 };
	struct txn_key k;
	struct txn *tx;

	*absorbed = false;
	if (!key_from_msg(&k, req, false))
		return NULL;
	tx = lookup(t, &k, &r, absorbed, req->len);
	if (tx && k.is_ack && atomic_load(&tx->accepted)) {
		/* RFC 6026 7.1: an ACK for the 2xx (its branch reused) is the TU's, not absorbed here */
		mem_deref(tx);
		tx = NULL;
	}
	if (*absorbed && r.buf && r.len) {
		/* 17.2.2: a retransmission in Completed gets the final response again, nothing else */
		if (t->cfg.resend)
			t->cfg.resend(r.worker, r.lsn, r.proto, &r.dst, r.buf, r.len, t->cfg.arg);
		else
			tp_send_from(r.worker, r.lsn, r.proto, NULL, &r.dst, r.buf, r.len);
	}
	free(r.buf);
	return tx;
}

bool txn_server_same_request(const struct txn *tx, const struct sip_msg *req)
{
	return req->len == tx->msg_len;
}

struct txn *txn_server_match_cancelled(struct txn_table *t, const struct sip_msg *cancel, bool *answered)
{
	struct txn_key k;

	*answered = false;
	if (!key_from_msg(&k, cancel, true))
		return NULL;
	return lookup(t, &k, NULL, answered, 0);
}

/* ---- echoes ---- */

/* Ends the shard's echoes whose Timer J has passed, and waits for the next; on the loop that armed it. */
static void echo_sweep(struct tmr *tm, void *arg)
{
	struct shard *s = arg;
	uint64_t now = tmr_wheel_now(s->sweep_wheel);
	struct txn_echo *ended = NULL;
	unsigned n = 0;

	(void)tm;
	pthread_mutex_lock(&s->lock);
	while (s->oldest && s->oldest->expires <= now) {
		struct txn_echo *e = s->oldest;

		s->oldest = e->newer;
		htab_remove(&s->entries, &e->e.link);
		e->newer = ended;
		ended = e;
		n++;
	}
	if (s->oldest)
		tmr_start_lazy(s->sweep_wheel, &s->sweep, s->oldest->expires - now, echo_sweep, s);
	else {
		s->newest = NULL;
		s->sweep_wheel = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_sub(&s->table->echoes, n);
	while (ended) {
		struct txn_echo *e = ended;

		ended = e->newer;
		atomic_fetch_sub(&s->table->echo_bytes, e->size);
		recycle_free(e);
	}
}

/* needle in the first len bytes of hay, or NULL. memmem prepares for long searches; these are short,
 * and the needle's first byte (the branch's 'z', a host's first character) is rare before it. */
static const char *find_short(const char *hay, size_t len, struct slice needle)
{
	const char *end = hay + len;

	for (const char *p = hay; (size_t)(end - p) >= needle.l; p++) {
		if (!(p = memchr(p, needle.p[0], (size_t)(end - p) - needle.l + 1)))
			return NULL;
		if (memcmp(p, needle.p, needle.l) == 0)
			return p;
	}
	return NULL;
}

/* Where each part of tx's key is in the echo's data: the branch and sent-by found in the response's
 * Via (near its start, where a response carries it), the others appended after the response: a search
 * costs more than the few bytes it would save for them. Returns the bytes appended, or SIZE_MAX when
 * the offsets would not fit. */
static size_t echo_place_key(const struct txn *tx, uint16_t off_out[K_PARTS], uint16_t len_out[K_PARTS])
{
	size_t extra = 0, window = tx->resp_len < 256 ? tx->resp_len : 256;

	for (int i = 0; i < K_PARTS; i++) {
		struct slice p = tx->key.part[i];
		bool in_via = tx->key.cookie && (i == K_BRANCH_OR_RURI || i == K_HOST_OR_CALLID);
		const char *at = !tx->resp_len ? NULL : !p.l ? tx->resp : in_via ? find_short(tx->resp, window, p) : NULL;
		size_t off = at ? (size_t)(at - tx->resp) : tx->resp_len + extra;

		if (!at)
			extra += p.l;
		if (off + p.l > UINT16_MAX)
			return SIZE_MAX;
		off_out[i] = (uint16_t)off;
		len_out[i] = (uint16_t)p.l;
	}
	return extra;
}

/* The echo of tx, in its shard, ending 64*T1 from now; false past max_echoes, for a response too
 * large for an echo, or without memory. On tx's loop. */
static bool echo_add(struct txn *tx)
{
	struct txn_table *t = tx->table;
	struct tmr_wheel *w = loop_timers(tx->loop);
	uint16_t off[K_PARTS], len[K_PARTS];
	struct txn_echo *e;
	size_t extra, size;
	struct shard *s;

	if (t->cfg.max_echoes && atomic_load(&t->echoes) >= t->cfg.max_echoes)
		return false;
	if (tx->resp_len > UINT16_MAX || (extra = echo_place_key(tx, off, len)) == SIZE_MAX)
		return false;
	size = sizeof(*e) + tx->resp_len + extra;
	if ((t->cfg.max_echo_bytes && atomic_load(&t->echo_bytes) + size > t->cfg.max_echo_bytes) ||
	    !(e = recycle_alloc(size)))
		return false;
	memset(e, 0, sizeof(*e));
	e->size = (uint32_t)size;
	memcpy(e->part_off, off, sizeof(off));
	memcpy(e->part_len, len, sizeof(len));
	if (tx->resp_len) /* an Accepted INVITE's echo has none */
		memcpy(e->data, tx->resp, tx->resp_len);
	for (int i = 0; i < K_PARTS; i++)
		if (e->part_off[i] >= tx->resp_len && e->part_len[i])
			memcpy(e->data + e->part_off[i], tx->key.part[i].p, e->part_len[i]);
	e->resp_len = (uint16_t)tx->resp_len;
	e->worker = tx->worker;
	e->dst = tx->dst;
	e->lsn = tx->lsn;
	e->proto = (uint8_t)tx->proto;
	e->e.link.hash = tx->e.link.hash;
	e->e.echo = true;
	e->cookie = tx->key.cookie;
	e->port = tx->key.port;
	e->cseq = tx->key.cseq;
	e->msg_len = tx->msg_len;
	e->expires = tmr_wheel_now(w) + 64u * t->cfg.timers.t1;
	s = shard_lock(t, e->e.link.hash);
	htab_add(&s->entries, &e->e.link);
	if (s->newest)
		s->newest->newer = e;
	else
		s->oldest = e;
	s->newest = e;
	if (!s->sweep_wheel) {
		s->sweep_wheel = w;
		tmr_start_lazy(w, &s->sweep, 64u * t->cfg.timers.t1, echo_sweep, s);
	}
	atomic_fetch_add(&t->echoes, 1);
	atomic_fetch_add(&t->echo_bytes, size);
	pthread_mutex_unlock(&s->lock);
	return true;
}

/* ---- life cycle ---- */

static void txn_destroy(void *data)
{
	struct txn *tx = data;

	if (tx->tu_destroy)
		tx->tu_destroy(tx->tu);
	mem_deref(tx->conn);
	recycle_free(tx->resp);
	recycle_free(tx->req);
}

/* The table holds max_held bytes already: no new transaction, nor more bytes for one. */
static bool held_full(struct txn_table *t)
{
	return t->cfg.max_held && atomic_load(&t->held) >= t->cfg.max_held;
}

int txn_table_hold(struct txn_table *t, size_t n)
{
	if (held_full(t))
		return ENOBUFS;
	atomic_fetch_add(&t->held, n);
	return 0;
}

void txn_table_unhold(struct txn_table *t, size_t n)
{
	atomic_fetch_sub(&t->held, n);
}

void txn__held_set(struct txn *tx, char **slot, size_t *slot_len, char *buf, size_t len)
{
	if (tx->held_counted) { /* once ended (table_unlink), its bytes no longer count */
		if (*slot)
			atomic_fetch_sub(&tx->table->held, *slot_len);
		if (buf)
			atomic_fetch_add(&tx->table->held, len);
	}
	recycle_free(*slot);
	*slot = buf;
	*slot_len = buf ? len : 0;
}

static void terminate(struct txn *tx, const char *why)
{
	if (tx->state == TXN_TERMINATED)
		return;
	tx->state = TXN_TERMINATED;
	tmr_cancel(&tx->tmr_retx);
	tmr_cancel(&tx->tmr_end);
	if (tx->table->cfg.end)
		tx->table->cfg.end(tx, why, tx->table->cfg.arg);
	table_unlink(tx);
	mem_deref(tx); /* the table's reference */
}

void txn_table_free(struct txn_table *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->nshards; i++) {
		struct shard *s = &t->shards[i];

		for (size_t b = 0; s->entries.v && b < s->entries.n; b++) {
			while (s->entries.v[b]) {
				struct tentry *e = (struct tentry *)s->entries.v[b];

				/* the workers are joined but their wheels still exist: cancel, tell the TU, free */
				if (!e->echo) {
					terminate((struct txn *)e, "shutdown");
					continue;
				}
				htab_remove(&s->entries, &e->link);
				atomic_fetch_sub(&t->echoes, 1);
				atomic_fetch_sub(&t->echo_bytes, ((struct txn_echo *)e)->size);
				free(e);
			}
		}
		tmr_cancel(&s->sweep);
		htab_free(&s->entries);
		pthread_mutex_destroy(&s->lock);
	}
	free(t->shards);
	txn__ctable_free(t->clients);
	free(t);
}

/* RFC 4320 4.1: when a client's Timer E, doubling from T1, reaches T2 (3.5 s with the defaults); a
 * non-INVITE still unanswered then gets a 100, and none before (over UDP it would only slow the
 * client's retransmissions down while the answer may still come in time). */
static unsigned trying_due_ms(const struct txn_timers *T)
{
	unsigned at = 0, e = T->t1 ? T->t1 : 1;

	do {
		at += e;
		e = e * 2 < T->t2 ? e * 2 : T->t2;
	} while (e < T->t2);
	return at;
}

static void trying_due(struct tmr *tm, void *arg);

int txn_server_new(struct txn **txp, struct txn_table *t, struct loop *loop, const struct sip_msg *req,
		   bool reliable)
{
	struct txn_key k;
	struct shard *s;
	struct txn *tx = NULL;
	unsigned live = atomic_fetch_add(&t->live, 1);

	if ((t->cfg.max_live && live >= t->cfg.max_live) || held_full(t)) {
		atomic_fetch_sub(&t->live, 1);
		return EAGAIN;
	}
	if (!key_from_msg(&k, req, false)) {
		atomic_fetch_sub(&t->live, 1);
		return EINVAL;
	}
	if (!(tx = mem_zalloc(sizeof(*tx) + key_len(&k), txn_destroy))) {
		atomic_fetch_sub(&t->live, 1);
		return ENOMEM;
	}
	key_copy(tx, &k);
	tx->table = t;
	tx->e.link.hash = key_hash(&k);
	tx->invite = req->mid == SIP_METHOD_INVITE;
	tx->reliable = reliable;
	tx->msg_len = (uint32_t)req->len;
	tx->held_counted = true;
	tx->state = tx->invite ? TXN_PROCEEDING : TXN_TRYING;
	tx->loop = loop;
	tx->lsn = TP_LSN_ANY;
	s = shard_lock(t, tx->e.link.hash);
	htab_add(&s->entries, &tx->e.link);
	tx->in_table = true;
	pthread_mutex_unlock(&s->lock);
	if (!tx->invite) /* Timer E's T2 (RFC 4320 4.1); tmr_retx has no other use before the final */
		tmr_start(loop_timers(loop), &tx->tmr_retx, trying_due_ms(&t->cfg.timers), trying_due, tx);
	*txp = mem_ref(tx); /* one for the table, one for the caller */
	return 0;
}

/* ---- the state machines ---- */

static void send_last(struct txn *tx)
{
	if (tx->resp && tx->table->cfg.send)
		tx->table->cfg.send(tx, tx->resp, tx->resp_len, tx->table->cfg.arg);
}

static void timer_g(struct tmr *tm, void *arg)
{
	struct txn *tx = arg;
	struct txn_timers *T = &tx->table->cfg.timers;

	(void)tm;
	send_last(tx);
	tx->g_interval = tx->g_interval * 2 < T->t2 ? tx->g_interval * 2 : T->t2;
	tmr_start(loop_timers(tx->loop), &tx->tmr_retx, tx->g_interval, timer_g, tx);
}

static void timer_end(struct tmr *tm, void *arg)
{
	struct txn *tx = arg;

	(void)tm;
	if (tx->invite && tx->state == TXN_COMPLETED)
		terminate(tx, "timer H: no ACK");
	else if (tx->state == TXN_ACCEPTED)
		terminate(tx, "timer L");
	else
		terminate(tx, tx->invite ? "timer I" : "timer J");
}

static void end_after(struct txn *tx, unsigned ms)
{
	if (ms == 0) {
		terminate(tx, "reliable transport");
		return;
	}
	tmr_start_lazy(loop_timers(tx->loop), &tx->tmr_end, ms, timer_end, tx); /* I, J: only absorb */
}

/* A non-INVITE transaction in Completed over UDP: its echo absorbs retransmissions until Timer J and
 * the transaction ends now. Without memory for the echo, the transaction itself waits for Timer J. */
static void reduce(struct txn *tx)
{
	if (!tx->resp)
		end_after(tx, 64u * tx->table->cfg.timers.t1); /* given up (RFC 4320): nothing to echo */
	else if (echo_add(tx))
		terminate(tx, "answered: its echo absorbs retransmissions until timer J");
	else
		end_after(tx, 64u * tx->table->cfg.timers.t1);
}

/* An Accepted INVITE transaction with no TU left: over UDP its echo, with no response to send (key
 * only, about a third of the transaction), absorbs retransmissions of the INVITE for the rest of Timer
 * L; over a reliable transport none come (17.1.1.2: no Timer A), so it ends. Without memory for the
 * echo it stays whole until Timer L. */
static void accepted_reduce(struct txn *tx)
{
	if (tx->reliable)
		terminate(tx, "2xx sent over a reliable transport");
	else if (echo_add(tx))
		terminate(tx, "accepted: its echo absorbs the INVITE until timer L");
}

/* The TU of a non-INVITE transaction that has sent its final response: nothing it holds can be used
 * again (no CANCEL, no second final, later branch answers are dropped), so it goes now, and the
 * transaction is reduced to its echo. A timer, not a call: the final left from inside the TU, whose
 * caller still holds it. */
static void release_tu(struct tmr *tm, void *arg)
{
	struct txn *tx = arg;
	void (*destroy)(void *) = tx->tu_destroy;
	void *tu = tx->tu;

	(void)tm;
	tx->tu = NULL;
	tx->tu_destroy = NULL;
	if (destroy)
		destroy(tu);
	if (tx->state == TXN_COMPLETED)
		reduce(tx);
	else if (tx->state == TXN_ACCEPTED)
		accepted_reduce(tx);
}

static void respond_here(struct txn *tx, unsigned code, char *copy, size_t len)
{
	struct txn_timers *T = &tx->table->cfg.timers;

	if (tx->state == TXN_TERMINATED || tx->state == TXN_COMPLETED || tx->state == TXN_CONFIRMED ||
	    tx->state == TXN_ACCEPTED) {
		free(copy);
		return;
	}
	txn__held_set(tx, &tx->resp, &tx->resp_len, copy, len);
	tx->resp_code = code;
	send_last(tx);
	if (code >= 200) /* answered: the kept request is no longer needed, only the response for retransmissions */
		txn__held_set(tx, &tx->req, &tx->req_len, NULL, 0);
	if (code < 200) {
		tx->state = TXN_PROCEEDING;
		return;
	}
	if (!tx->invite)
		tmr_cancel(&tx->tmr_retx); /* no 100 due any more */
	if (tx->invite && code < 300) {
		/* RFC 6026 7.1 (which updates 17.2.1): a 2xx leaves the INVITE transaction Accepted until Timer
		 * L, 64*T1, not Terminated, so that a retransmission of the INVITE is absorbed here rather than
		 * taken for a new request and forwarded again. The 2xx is the UAS's to retransmit, never this
		 * transaction's: it keeps no copy. */
		tx->state = TXN_ACCEPTED;
		txn__held_set(tx, &tx->resp, &tx->resp_len, NULL, 0);
		tmr_start_lazy(loop_timers(tx->loop), &tx->tmr_end, 64u * T->t1, timer_end, tx);
		if (!tx->tu_destroy)
			accepted_reduce(tx); /* else once the TU lets go (txn_release_tu) */
		return;
	}
	tx->state = TXN_COMPLETED;
	if (tx->invite) {
		if (!tx->reliable) {
			tx->g_interval = T->t1;
			tmr_start(loop_timers(tx->loop), &tx->tmr_retx, T->t1, timer_g, tx);
		}
		tmr_start(loop_timers(tx->loop), &tx->tmr_end, 64u * T->t1, timer_end, tx);
	} else if (tx->reliable) {
		end_after(tx, 0);
	} else if (tx->tu_destroy) {
		tmr_start(loop_timers(tx->loop), &tx->tmr_retx, 0, release_tu, tx); /* G is the INVITE's only */
	} else {
		reduce(tx);
	}
}

/* Timer E's T2 came for a non-INVITE with no answer yet (RFC 4320 4.1): a 100 goes, so that the client
 * knows its request arrived; retransmissions get it again (17.2.2, Proceeding). A transaction whose TU
 * did not keep the request (txn_keep) has nothing to build it from and stays silent. */
static void trying_due(struct tmr *tm, void *arg)
{
	struct txn *tx = arg;

	(void)tm;
	if (tx->state == TXN_TRYING && !atomic_load(&tx->final) && tx->req)
		txn_reply(tx, NULL, 100, NULL, NULL);
}

/* A non-INVITE transaction that will have no final response: Completed with nothing to send again, so
 * that a late retransmission of the request is absorbed, not processed a second time. */
static void give_up_here(struct txn *tx)
{
	if (tx->state != TXN_TRYING && tx->state != TXN_PROCEEDING)
		return;
	tmr_cancel(&tx->tmr_retx); /* no 100 due any more */
	/* a provisional sent before: the client has given up, nothing goes to it again */
	txn__held_set(tx, &tx->resp, &tx->resp_len, NULL, 0);
	txn__held_set(tx, &tx->req, &tx->req_len, NULL, 0);
	tx->state = TXN_COMPLETED;
	if (tx->reliable)
		end_after(tx, 0);
	else if (tx->tu_destroy)
		tmr_start(loop_timers(tx->loop), &tx->tmr_retx, 0, release_tu, tx);
	else
		reduce(tx);
}

/* code 0 with no buf: give up (txn_server_give_up) */
struct posted_resp {
	struct txn *tx;
	unsigned code;
	char *buf;
	size_t len;
};

static void respond_posted(void *arg)
{
	struct posted_resp *p = arg;

	if (p->code)
		respond_here(p->tx, p->code, p->buf, p->len);
	else
		give_up_here(p->tx);
	mem_deref(p->tx);
	free(p);
}

static int post_to_owner(struct txn *tx, unsigned code, char *buf, size_t len)
{
	struct posted_resp *p;

	if (!(p = malloc(sizeof(*p)))) {
		free(buf);
		return ENOMEM;
	}
	*p = (struct posted_resp){ mem_ref(tx), code, buf, len };
	if (loop_post(tx->loop, respond_posted, p)) {
		mem_deref(tx);
		free(buf);
		free(p);
		return ENOMEM;
	}
	return 0;
}

int txn_respond_take(struct txn *tx, unsigned code, char *buf, size_t len)
{
	if ((code >= 200 && atomic_exchange(&tx->final, true)) || (code < 200 && atomic_load(&tx->final))) {
		free(buf);
		return EINVAL;
	}
	if (tx->invite && code >= 200 && code < 300)
		atomic_store(&tx->accepted, true); /* before the 2xx leaves, so before any ACK for it comes */
	if (tx->table->cfg.single_thread || loop_current() == tx->loop) {
		respond_here(tx, code, buf, len);
		return 0;
	}
	return post_to_owner(tx, code, buf, len);
}

void txn_release_tu(struct txn *tx)
{
	if (tx->state == TXN_ACCEPTED && tx->tu_destroy && !tmr_isrunning(&tx->tmr_retx))
		tmr_start(loop_timers(tx->loop), &tx->tmr_retx, 0, release_tu, tx); /* not under the TU's feet */
}

int txn_server_give_up(struct txn *tx)
{
	if (tx->invite || atomic_exchange(&tx->final, true))
		return EINVAL;
	if (tx->table->cfg.single_thread || loop_current() == tx->loop) {
		give_up_here(tx);
		return 0;
	}
	return post_to_owner(tx, 0, NULL, 0);
}

int txn_respond(struct txn *tx, unsigned code, const char *buf, size_t len)
{
	char *copy = malloc(len ? len : 1);

	if (!copy)
		return ENOMEM;
	memcpy(copy, buf, len);
	return txn_respond_take(tx, code, copy, len);
}

static void recv_here(struct txn *tx, bool is_ack)
{
	struct txn_timers *T = &tx->table->cfg.timers;

	if (tx->invite && is_ack) {
		/* 17.2.1: ACK in Completed moves to Confirmed; Timer I absorbs further ACKs */
		if (tx->state != TXN_COMPLETED)
			return;
		tx->state = TXN_CONFIRMED;
		tmr_cancel(&tx->tmr_retx);
		tmr_cancel(&tx->tmr_end);
		end_after(tx, tx->reliable ? 0 : T->t4);
		return;
	}
	/* A retransmitted request: the last response again, never a second processing. */
	if (!is_ack && (tx->state == TXN_PROCEEDING || tx->state == TXN_COMPLETED))
		send_last(tx);
}

static void recv_posted_ack(void *arg)
{
	recv_here(arg, true);
	mem_deref(arg);
}

static void recv_posted_retx(void *arg)
{
	recv_here(arg, false);
	mem_deref(arg);
}

void txn_server_recv(struct txn *tx, bool is_ack)
{
	if (tx->table->cfg.single_thread || loop_current() == tx->loop) {
		recv_here(tx, is_ack);
		return;
	}
	/* the owner loop runs the state machine; a lost post is a lost retransmission, which UDP allows */
	mem_ref(tx);
	if (loop_post(tx->loop, is_ack ? recv_posted_ack : recv_posted_retx, tx))
		mem_deref(tx);
}

enum txn_state txn_state(const struct txn *tx)
{
	return tx->state;
}

bool txn_is_invite(const struct txn *tx)
{
	return tx->invite;
}

bool txn_has_final(const struct txn *tx)
{
	return atomic_load(&((struct txn *)tx)->final);
}

struct loop *txn_loop(const struct txn *tx)
{
	return tx->loop;
}

void txn_set_dest(struct txn *tx, struct tp_worker *w, uint8_t lsn, enum tp_proto proto, struct tp_conn *conn,
		  const struct tp_addr *dst)
{
	tx->worker = w;
	tx->lsn = lsn;
	tx->proto = proto;
	mem_deref(tx->conn);
	tx->conn = mem_ref(conn);
	if (dst)
		tx->dst = *dst;
}

void txn_get_dest(const struct txn *tx, struct tp_worker **w, uint8_t *lsn, enum tp_proto *proto,
		  struct tp_conn **conn, const struct tp_addr **dst)
{
	*w = tx->worker;
	*lsn = tx->lsn;
	*proto = tx->proto;
	*conn = tx->conn;
	*dst = &tx->dst;
}

void txn_set_tu(struct txn *tx, void *data, void (*destroy)(void *data))
{
	tx->tu = data;
	tx->tu_destroy = destroy;
}

void *txn_tu(const struct txn *tx)
{
	return tx->tu;
}
