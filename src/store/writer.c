/* writer.c: the store's group-commit writer. Any thread submits changes; one thread takes everything
 * waiting, commits it in one store_apply (one transaction, one fsync), then calls each submitter's
 * done(err, arg) in submit order. N REGISTERs arriving together cost one fsync, not N.
 *
 * Memory: two batches (the queue being filled and the batch being written) swap places; each grows
 * to at most max_pending changes and is reused, so a steady load allocates nothing. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/timer.h"
#include "store/store.h"

#define DELAY_ENOUGH 128 /* changes that end a commit delay early (and about the most a batch holds: 350 kB) */
#define BATCH_KEEP 1024 /* changes a batch keeps allocated after a burst; above, an idle batch is freed */

struct wsub {
	store_done_h *done; /* NULL: nobody to tell */
	void *arg;
	size_t n;           /* its changes, consecutive in the batch */
};

struct wbatch {
	struct store_change *changes;
	size_t n, cap;
	struct wsub *subs;
	size_t nsubs, capsubs;
};

struct store_writer {
	struct store *s;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t ready;     /* signalled on submit and on stop */
	struct wbatch queue;      /* waiting; under lock */
	struct wbatch work;       /* being written; the writer thread's own */
	size_t later;             /* where in work the changes after the submission being told start */
	size_t max_pending;       /* changes (and submissions) the queue holds at most */
	unsigned delay_us;        /* how long the first submission waits for company */
	bool company;             /* the last batch taken held several submissions: waiting is worth it */
	bool stop;                /* under lock */
	_Atomic uint64_t batches; /* transactions committed */
	_Atomic uint64_t changes; /* changes committed */
};

static void batch_free(struct wbatch *b)
{
	free(b->changes);
	free(b->subs);
	memset(b, 0, sizeof(*b));
}

/* Room for more changes and one more submission, growing by doubling up to max. */
static int batch_reserve(struct wbatch *b, size_t more, size_t max)
{
	size_t need = b->n + more, cap;

	if (need > b->cap) {
		struct store_change *c;

		cap = b->cap ? b->cap : 16;
		while (cap < need)
			cap *= 2;
		if (cap > max)
			cap = max;
		c = realloc(b->changes, cap * sizeof(*c));
		if (!c)
			return ENOMEM;
		b->changes = c;
		b->cap = cap;
	}
	if (b->nsubs == b->capsubs) {
		struct wsub *sb;

		cap = b->capsubs ? b->capsubs * 2 : 16;
		if (cap > max)
			cap = max;
		sb = realloc(b->subs, cap * sizeof(*sb));
		if (!sb)
			return ENOMEM;
		b->subs = sb;
		b->capsubs = cap;
	}
	return 0;
}

/* Commits the work batch and tells its submitters. When the whole batch fails, each submission is
 * tried on its own, so one that cannot be written does not fail the others (changes are idempotent,
 * and a failed transaction left nothing behind). */
static void writer_commit(struct store_writer *w)
{
	struct wbatch *b = &w->work;
	size_t i, off = 0;
	int err;

	err = store_apply(w->s, b->changes, b->n);
	if (!err && b->n) {
		atomic_fetch_add(&w->batches, 1);
		atomic_fetch_add(&w->changes, b->n);
	}
	for (i = 0; i < b->nsubs; i++) {
		struct wsub *sub = &b->subs[i];
		int e = err;

		if (err && b->nsubs > 1) {
			e = store_apply(w->s, b->changes + off, sub->n);
			if (!e && sub->n) {
				atomic_fetch_add(&w->batches, 1);
				atomic_fetch_add(&w->changes, sub->n);
			}
		}
		off += sub->n;
		w->later = off;
		if (sub->done)
			sub->done(e, sub->arg);
	}
	if (b->cap > BATCH_KEEP && b->n < b->cap / 4)
		batch_free(b); /* a burst is over: give the memory back */
	b->n = 0;
	b->nsubs = 0;
}

static void *writer_main(void *arg)
{
	struct store_writer *w = arg;

	pthread_setname_np(pthread_self(), "sipd-writer"); /* top -H, ps -L */

	for (;;) {
		struct wbatch t;

		pthread_mutex_lock(&w->lock);
		while (!w->queue.nsubs && !w->stop)
			pthread_cond_wait(&w->ready, &w->lock);
		if (!w->queue.nsubs) { /* stopping, and everything is written */
			pthread_mutex_unlock(&w->lock);
			break;
		}
		/* commit_delay: let more submissions join this transaction (one fsync for all), but only when the
		 * last batch showed there are others: a lone phone, or a client that waits for each answer before
		 * it sends again, would wait for nobody. Under load, submissions that come during a commit make
		 * the next batch several, and the waiting starts. */
		if (w->delay_us && w->company && !w->stop && w->queue.n < DELAY_ENOUGH) {
			struct timespec until;

			tmr_deadline(&until, w->delay_us);
			while (!w->stop && w->queue.n < DELAY_ENOUGH &&
			       pthread_cond_timedwait(&w->ready, &w->lock, &until) == 0)
				;
		}
		w->company = w->queue.nsubs > 1;
		t = w->queue; /* take everything waiting: submitters fill the other batch meanwhile */
		w->queue = w->work;
		w->work = t;
		pthread_mutex_unlock(&w->lock);
		writer_commit(w);
	}
	return NULL;
}

int store_writer_new(struct store_writer **wp, struct store *s, size_t max_pending, unsigned delay_us)
{
	struct store_writer *w;
	pthread_condattr_t ca;
	sigset_t all, old;
	int err;

	if (!wp || !s || !max_pending)
		return EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return ENOMEM;
	w->s = s;
	w->max_pending = max_pending;
	atomic_init(&w->batches, 0);
	atomic_init(&w->changes, 0);
	err = pthread_mutex_init(&w->lock, NULL);
	if (err) {
		free(w);
		return err;
	}
	w->delay_us = delay_us;
	err = pthread_condattr_init(&ca);
	if (!err) {
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		err = pthread_cond_init(&w->ready, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (err) {
		pthread_mutex_destroy(&w->lock);
		free(w);
		return err;
	}
	/* signals are the main thread's business, whatever the caller's mask */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&w->thread, NULL, writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pthread_cond_destroy(&w->ready);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return err;
	}
	*wp = w;
	return 0;
}

void store_writer_free(struct store_writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->ready);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL); /* the thread writes what is queued before it ends */
	batch_free(&w->queue);
	batch_free(&w->work);
	pthread_cond_destroy(&w->ready);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* 0; EAGAIN when the queue holds max_pending changes (or submissions) already; EINVAL when n alone is
 * more than max_pending (it could never fit); ECANCELED once store_writer_free has begun; ENOMEM.
 * n = 0 is a barrier: done runs once everything submitted before it is durable. */
int store_writer_submit(struct store_writer *w, const struct store_change *changes, size_t n, store_done_h *done,
			void *arg)
{
	struct wbatch *q;
	int err;

	if (!w || (n && !changes) || n > w->max_pending)
		return EINVAL;
	pthread_mutex_lock(&w->lock);
	q = &w->queue;
	if (w->stop) {
		err = ECANCELED;
		goto out;
	}
	if (q->n + n > w->max_pending || q->nsubs >= w->max_pending) {
		err = EAGAIN;
		goto out;
	}
	err = batch_reserve(q, n, w->max_pending);
	if (err)
		goto out;
	for (size_t i = 0; i < n; i++) {
		q->changes[q->n + i].op = changes[i].op;
		store_binding_copy(&q->changes[q->n + i].b, &changes[i].b);
	}
	q->n += n;
	q->subs[q->nsubs++] = (struct wsub){ .done = done, .arg = arg, .n = n };
	if (q->nsubs == 1 || (q->n >= DELAY_ENOUGH && q->n - n < DELAY_ENOUGH))
		pthread_cond_signal(&w->ready); /* the writer waits on an empty queue or in a commit delay */
out:
	pthread_mutex_unlock(&w->lock);
	return err;
}

static void changes_of(const struct store_change *c, size_t n, const char *aor,
		       void (*cb)(const struct store_change *c, void *arg), void *arg)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(c[i].b.aor, aor))
			cb(&c[i], arg);
}

void store_writer_later_of(struct store_writer *w, const char *aor, void (*cb)(const struct store_change *c, void *arg),
			   void *arg)
{
	size_t from = w->later;

	/* the rest of the batch being told (the writer thread's own), then the queue (under its lock) */
	if (from < w->work.n)
		changes_of(w->work.changes + from, w->work.n - from, aor, cb, arg);
	pthread_mutex_lock(&w->lock);
	changes_of(w->queue.changes, w->queue.n, aor, cb, arg);
	pthread_mutex_unlock(&w->lock);
}

void store_writer_stats(const struct store_writer *w, uint64_t *batches, uint64_t *changes)
{
	if (batches)
		*batches = w ? atomic_load(&w->batches) : 0;
	if (changes)
		*changes = w ? atomic_load(&w->changes) : 0;
}
