/* loop.c: the epoll loop run by each worker thread.
 *
 * One iteration: sleep in epoll_wait until the next timer may be due, read the clock once,
 * advance the timer wheel, dispatch the ready fds, then run the jobs posted from other threads.
 * Those wait in a mutex-guarded array that the loop swaps out and runs, so a post costs no
 * allocation once the arrays have grown to the usual burst; an eventfd wakes the loop only when it
 * sleeps. The loop's thread holds the run lock but while it sleeps, when another thread may run a
 * job as the loop (loop_run_as).
 */
#include "net/loop.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

#define LOOP_EVENTS 64

struct loop_fd {
	loop_fd_h *h; /* NULL: not registered */
	void *arg;
};

struct loop_job {
	loop_post_h *h;
	void *arg;
};

struct loop_jobs {
	struct loop_job *v;
	size_t n, cap;
};

struct loop {
	int epfd;
	int evfd;                        /* wakes the loop for posts and stop */
	atomic_bool stop;
	uint64_t now;                    /* monotonic ms, read once per iteration */
	struct tmr_wheel *wheel;
	struct loop_fd *fds;             /* indexed by fd */
	size_t nfds;
	struct epoll_event ev[LOOP_EVENTS];
	int nev, cur;                    /* the batch in dispatch, so loop_fd_del can void stale events */
	pthread_mutex_t run;             /* held by whichever thread runs this loop's work: its own thread
					  * but while it sleeps in epoll_wait, or another in loop_run_as */
	uint64_t sleep_until;            /* under run: when the sleeping thread will wake by itself (ms) */
	pthread_mutex_t lock;            /* guards posted */
	struct loop_jobs posted;
	atomic_bool has_posted;          /* set with a post, cleared with the queue's taking (both under lock):
					  * an empty queue is seen without the lock, and a post that races with
					  * that look is found before the loop sleeps */
	atomic_bool sleeping;            /* in (or about to enter) epoll_wait: a post must wake it. Set under
					  * lock with the look at posted; cleared without it on waking (a post
					  * that still sees it writes the eventfd once more, nothing worse) */
	struct loop_jobs running;        /* loop thread only: the batch being run */
	loop_post_h *batch_begin, *batch_end; /* around each run of posted jobs */
	void *batch_arg;
};

static _Thread_local struct loop *loop_cur;

/* Runs what was posted so far; what those jobs post waits for the next round. */
static void loop_run_posted(struct loop *l)
{
	struct loop_jobs tmp;

	if (!atomic_load_explicit(&l->has_posted, memory_order_acquire))
		return;
	pthread_mutex_lock(&l->lock);
	tmp = l->posted;
	l->posted = l->running;
	l->posted.n = 0;
	atomic_store_explicit(&l->has_posted, false, memory_order_relaxed);
	pthread_mutex_unlock(&l->lock);
	l->running = tmp;
	if (l->running.n && l->batch_begin)
		l->batch_begin(l->batch_arg);
	for (size_t i = 0; i < l->running.n; i++)
		l->running.v[i].h(l->running.v[i].arg);
	if (l->running.n && l->batch_end)
		l->batch_end(l->batch_arg);
	l->running.n = 0;
}

void loop_set_post_batch(struct loop *l, loop_post_h *begin, loop_post_h *end, void *arg)
{
	if (!l)
		return;
	l->batch_begin = begin;
	l->batch_end = end;
	l->batch_arg = arg;
}

static void loop_wake_h(int fd, uint32_t events, void *arg)
{
	uint64_t v;

	(void)events;
	/* read before taking the queue: a post after this read writes the eventfd again */
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("loop: eventfd read: %s", strerror(errno));
	loop_run_posted(arg);
}

static void loop_wake(struct loop *l)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: the loop will wake anyway */
	if (write(l->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("loop: eventfd write: %s", strerror(errno));
}

int loop_new(struct loop **lp)
{
	struct loop *l;
	int err;

	if (!lp)
		return EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return ENOMEM;
	l->epfd = -1;
	l->evfd = -1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->run, NULL);
	l->now = tmr_clock_ms();
	err = tmr_wheel_new(&l->wheel, l->now);
	if (err)
		goto out;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd < 0 || l->evfd < 0) {
		err = errno;
		goto out;
	}
	err = loop_fd_add(l, l->evfd, EPOLLIN, loop_wake_h, l);
out:
	if (err)
		loop_free(l);
	else
		*lp = l;
	return err;
}

/* Jobs still queued run here, on the freeing thread, so that whatever they own is released;
 * they must cope with a loop that no longer runs. */
void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (;;) {
		bool more;

		pthread_mutex_lock(&l->lock);
		more = l->posted.n > 0;
		pthread_mutex_unlock(&l->lock);
		if (!more)
			break;
		loop_run_posted(l);
	}
	if (l->evfd >= 0)
		close(l->evfd);
	if (l->epfd >= 0)
		close(l->epfd);
	tmr_wheel_free(l->wheel);
	pthread_mutex_destroy(&l->run);
	pthread_mutex_destroy(&l->lock);
	free(l->posted.v);
	free(l->running.v);
	free(l->fds);
	free(l);
}

static int loop_fds_grow(struct loop *l, int fd)
{
	size_t n = l->nfds ? l->nfds : 64;
	struct loop_fd *fds;

	while (n <= (size_t)fd)
		n *= 2;
	fds = realloc(l->fds, n * sizeof(*fds));
	if (!fds)
		return ENOMEM;
	memset(fds + l->nfds, 0, (n - l->nfds) * sizeof(*fds));
	l->fds = fds;
	l->nfds = n;
	return 0;
}

int loop_fd_add(struct loop *l, int fd, uint32_t events, loop_fd_h *h, void *arg)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	int err;

	if (!l || fd < 0 || !h)
		return EINVAL;
	if ((size_t)fd >= l->nfds) {
		err = loop_fds_grow(l, fd);
		if (err)
			return err;
	}
	if (l->fds[fd].h)
		return EEXIST;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return errno;
	l->fds[fd] = (struct loop_fd){ h, arg };
	return 0;
}

/* Only the kernel's table is touched, so this may run on any thread while fd stays registered
 * (callers serialise it against loop_fd_del, e.g. under a connection's lock). */
int loop_fd_mod(struct loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	if (!l || fd < 0)
		return EINVAL;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? errno : 0;
}

void loop_fd_del(struct loop *l, int fd)
{
	if (!l || fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].h)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd] = (struct loop_fd){ NULL, NULL };
	/* the fd may be closed and its number reused before the rest of this batch is dispatched */
	for (int i = l->cur + 1; i < l->nev; i++)
		if (l->ev[i].data.fd == fd)
			l->ev[i].data.fd = -1;
}

/* The clock read once, and the timers due by then run. */
static void loop_advance(struct loop *l)
{
	l->now = tmr_clock_ms();
	tmr_wheel_advance(l->wheel, l->now);
}

/* epoll_wait's timeout: until the next timer may be due, measured from the clock now. */
static int loop_timeout(struct loop *l)
{
	int64_t d = tmr_wheel_next(l->wheel);
	uint64_t due, now;

	if (d < 0)
		return -1;
	due = tmr_wheel_now(l->wheel) + (uint64_t)d;
	now = tmr_clock_ms();
	if (due <= now)
		return 0;
	return due - now > INT_MAX ? INT_MAX : (int)(due - now);
}

static void loop_dispatch(struct loop *l)
{
	for (l->cur = 0; l->cur < l->nev; l->cur++) {
		struct epoll_event *e = &l->ev[l->cur];
		int fd = e->data.fd;

		if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].h)
			continue;
		l->fds[fd].h(fd, e->events, l->fds[fd].arg);
	}
	l->nev = 0;
}

int loop_run(struct loop *l)
{
	struct loop *prev = loop_cur;

	if (!l)
		return EINVAL;
	loop_cur = l;
	pthread_mutex_lock(&l->run);
	while (!atomic_load(&l->stop)) {
		int timeout = loop_timeout(l), n;

		/* posts to an awake loop write no eventfd: it runs them at the end of this turn, or here
		 * it finds them before sleeping and only looks at its fds */
		pthread_mutex_lock(&l->lock);
		if (l->posted.n)
			timeout = 0;
		else
			atomic_store_explicit(&l->sleeping, true, memory_order_relaxed);
		pthread_mutex_unlock(&l->lock);
		l->sleep_until = timeout < 0 ? UINT64_MAX : tmr_clock_ms() + (uint64_t)timeout;
		pthread_mutex_unlock(&l->run); /* asleep: loop_run_as may do this loop's work meanwhile */
		n = epoll_wait(l->epfd, l->ev, LOOP_EVENTS, timeout);
		pthread_mutex_lock(&l->run);
		atomic_store_explicit(&l->sleeping, false, memory_order_relaxed);
		/* paired with loop_post's release: what a poster wrote before posting is seen by this whole
		 * turn (its timers too), not only by the jobs run at its end */
		(void)atomic_load_explicit(&l->has_posted, memory_order_acquire);
		if (n < 0) {
			if (errno != EINTR) {
				log_err("loop: epoll_wait: %s", strerror(errno));
				break;
			}
			n = 0;
		}
		l->nev = n;
		l->cur = -1; /* timer handlers may delete fds of this batch too */
		loop_advance(l);
		loop_dispatch(l);
		loop_run_posted(l);
	}
	pthread_mutex_unlock(&l->run);
	loop_cur = prev;
	return 0;
}

bool loop_run_as(struct loop *l, loop_post_h *h, void *arg)
{
	struct loop *prev = loop_cur;
	bool idle;
	int64_t next;

	if (!l || !h)
		return false;
	if (l == loop_cur) {
		h(arg);
		return true;
	}
	if (pthread_mutex_trylock(&l->run) != 0)
		return false; /* running: a post is cheap, it wakes nobody */
	pthread_mutex_lock(&l->lock);
	idle = l->posted.n == 0 && l->running.n == 0; /* else h must wait its turn behind them */
	pthread_mutex_unlock(&l->lock);
	/* read under the run lock: a loop that left loop_run saw stop set first, so its thread's
	 * clean-up (after loop_run) never meets h */
	idle = idle && !atomic_load(&l->stop);
	if (!idle) {
		pthread_mutex_unlock(&l->run);
		return false;
	}
	loop_cur = l;
	loop_advance(l); /* as the loop would on waking: timers start from now */
	h(arg);
	/* what h started with no delay (a transaction's end) runs now, as the loop's next turn would */
	for (unsigned turn = 0; turn < 4 && tmr_wheel_next(l->wheel) == 0; turn++)
		loop_advance(l);
	next = tmr_wheel_next(l->wheel);
	if (next >= 0 && tmr_wheel_now(l->wheel) + (uint64_t)next < l->sleep_until)
		loop_wake(l); /* h started a timer due before the sleeping thread means to look */
	loop_cur = prev;
	pthread_mutex_unlock(&l->run);
	return true;
}

void loop_stop(struct loop *l)
{
	if (!l)
		return;
	atomic_store(&l->stop, true);
	loop_wake(l);
}

static int loop_jobs_push(struct loop_jobs *q, loop_post_h *h, void *arg)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct loop_job *v = realloc(q->v, cap * sizeof(*v));

		if (!v)
			return ENOMEM;
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n++] = (struct loop_job){ h, arg };
	return 0;
}

int loop_post(struct loop *l, loop_post_h *h, void *arg)
{
	bool first;
	int err;

	if (!l || !h)
		return EINVAL;
	pthread_mutex_lock(&l->lock);
	err = loop_jobs_push(&l->posted, h, arg);
	if (!err)
		atomic_store_explicit(&l->has_posted, true, memory_order_release);
	first = !err && l->posted.n == 1 && atomic_load_explicit(&l->sleeping, memory_order_relaxed);
	pthread_mutex_unlock(&l->lock);
	/* later posts of the same batch find the loop already woken; an awake loop needs no waking */
	if (first)
		loop_wake(l);
	return err;
}

uint64_t loop_now(const struct loop *l)
{
	return l ? l->now : 0;
}

struct tmr_wheel *loop_timers(struct loop *l)
{
	return l ? l->wheel : NULL;
}

struct loop *loop_current(void)
{
	return loop_cur;
}
