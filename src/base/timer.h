/* timer.h: a hierarchical timer wheel owned by one event loop; O(1) start and cancel, millions of timers. */
#ifndef SIPD_BASE_TIMER_H
#define SIPD_BASE_TIMER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct tmr_wheel;
struct tmr;
typedef void (tmr_h)(struct tmr *t, void *arg);

/* Embedded in its owner (a transaction, a connection): no allocation per timer. */
struct tmr {
	struct tmr *next, *prev; /* slot list; NULL when not running */
	uint64_t expires;        /* absolute, in the wheel's milliseconds */
	tmr_h *h;
	void *arg;
	struct tmr_wheel *wheel; /* set while running, so tmr_cancel can keep the wheel's count */
};

int tmr_wheel_new(struct tmr_wheel **wp, uint64_t now_ms);
void tmr_wheel_free(struct tmr_wheel *w);
/* (Re)starts t to fire delay_ms after the wheel's current time. */
void tmr_start(struct tmr_wheel *w, struct tmr *t, uint64_t delay_ms, tmr_h *h, void *arg);
/* Like tmr_start, for timers whose exact moment does not matter (the end of a transaction's
 * Completed state, an idle timeout): the expiry is rounded up to the next multiple of
 * TMR_LAZY_MS of wheel time, never earlier than delay_ms. Lazy timers then fall due together, and
 * a loop that sleeps until its next timer wakes once for all of them instead of once for each. */
#define TMR_LAZY_MS 64u
void tmr_start_lazy(struct tmr_wheel *w, struct tmr *t, uint64_t delay_ms, tmr_h *h, void *arg);
/* Safe on a timer that is not running, and from inside any timer handler. */
void tmr_cancel(struct tmr *t);
bool tmr_isrunning(const struct tmr *t);
/* Moves the wheel to now_ms and fires every timer due by then, in expiry order per slot.
 * A handler runs with tmr_wheel_now() equal to its timer's expiry. A timer started with no delay
 * fires on the next call, never inside the call that started it, so a handler cannot spin. */
void tmr_wheel_advance(struct tmr_wheel *w, uint64_t now_ms);
/* Milliseconds until the next timer may be due (an upper bound on how long to sleep); -1 when none. */
int64_t tmr_wheel_next(struct tmr_wheel *w);
uint64_t tmr_wheel_now(const struct tmr_wheel *w);
/* Number of running timers. */
uint64_t tmr_wheel_count(const struct tmr_wheel *w);

/* The CLOCK_MONOTONIC time in milliseconds: the time the loops' wheels and the location service keep. */
static inline uint64_t tmr_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
/* The CLOCK_MONOTONIC time us microseconds from now, for pthread_cond_timedwait on a condition whose
 * clock is CLOCK_MONOTONIC (a thread that sleeps until its next piece of work or a signal). */
void tmr_deadline(struct timespec *ts, uint64_t us);

#endif
