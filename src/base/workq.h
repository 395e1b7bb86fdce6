/* workq.h: a bounded queue of blocking jobs (disk, DNS) run by a small pool of threads off the event loops. */
#ifndef SIPD_BASE_WORKQ_H
#define SIPD_BASE_WORKQ_H

#include <stddef.h>

struct workq;
typedef void (workq_job_h)(void *arg);

int workq_new(struct workq **qp, unsigned threads, size_t capacity);
/* Stops accepting, runs what is queued, joins the threads, frees. */
void workq_free(struct workq *q);
/* 0, or EAGAIN when the queue is full: the caller answers 503 with Retry-After instead of piling up. */
int workq_push(struct workq *q, workq_job_h *job, void *arg);
size_t workq_depth(struct workq *q);

#endif
