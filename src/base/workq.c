/* workq.c: a fixed ring of jobs under one mutex, served by a few threads. The ring never grows:
 * a full queue means the blocking backend (disk, DNS) is behind, and the caller should shed load. */
#include "base/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct workq_job {
	workq_job_h *h;
	void *arg;
};

struct workq {
	pthread_mutex_t lock;
	pthread_cond_t ready;    /* signalled when a job is queued or on shutdown */
	struct workq_job *ring;
	size_t cap, head, count; /* head: next job to run */
	bool stopping;           /* workq_free has begun: refuse new jobs */
	pthread_t *threads;
	unsigned nthreads;       /* started so far */
};

/* Takes the next job, or returns false once stopping and drained. */
static bool workq_take(struct workq *q, struct workq_job *job)
{
	bool got = false;

	pthread_mutex_lock(&q->lock);
	while (q->count == 0 && !q->stopping)
		pthread_cond_wait(&q->ready, &q->lock);
	if (q->count) {
		*job = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->count--;
		got = true;
	}
	pthread_mutex_unlock(&q->lock);
	return got;
}

static void *workq_main(void *arg)
{
	struct workq *q = arg;
	struct workq_job job;

	pthread_setname_np(pthread_self(), "sipd-workq"); /* top -H, ps -L */

	while (workq_take(q, &job))
		job.h(job.arg);
	return NULL;
}

int workq_new(struct workq **qp, unsigned threads, size_t capacity)
{
	struct workq *q;
	int err = 0;

	if (!qp || !threads || !capacity)
		return EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->ready, NULL);
	q->cap = capacity;
	q->ring = calloc(capacity, sizeof(*q->ring));
	q->threads = calloc(threads, sizeof(*q->threads));
	if (!q->ring || !q->threads) {
		err = ENOMEM;
		goto out;
	}
	for (; q->nthreads < threads; q->nthreads++) {
		err = pthread_create(&q->threads[q->nthreads], NULL, workq_main, q);
		if (err)
			goto out;
	}
out:
	if (err)
		workq_free(q); /* joins whatever did start */
	else
		*qp = q;
	return err;
}

void workq_free(struct workq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = true;
	pthread_cond_broadcast(&q->ready);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	pthread_cond_destroy(&q->ready);
	pthread_mutex_destroy(&q->lock);
	free(q->threads);
	free(q->ring);
	free(q);
}

int workq_push(struct workq *q, workq_job_h *job, void *arg)
{
	int err = 0;

	if (!q || !job)
		return EINVAL;
	pthread_mutex_lock(&q->lock);
	if (q->stopping || q->count == q->cap) {
		err = EAGAIN;
	} else {
		q->ring[(q->head + q->count) % q->cap] = (struct workq_job){ job, arg };
		q->count++;
		pthread_cond_signal(&q->ready);
	}
	pthread_mutex_unlock(&q->lock);
	return err;
}

size_t workq_depth(struct workq *q)
{
	size_t n;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->lock);
	n = q->count;
	pthread_mutex_unlock(&q->lock);
	return n;
}
