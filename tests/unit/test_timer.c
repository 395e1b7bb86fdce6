/* test_timer.c: the timer wheel: ordering, exact expiry, cascades over every level, changes made
 * from inside handlers, and a million pending timers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/timer.h"

struct item {
	struct tmr t;
	uint64_t want;   /* the expiry it was started for */
	uint64_t fired;  /* wheel time when it fired; 0 = never */
	unsigned nfired;
};

/* What every handler checks; counted rather than asserted so a million calls stay cheap. */
static struct {
	struct tmr_wheel *w;
	uint64_t last;       /* expiry of the previous timer that fired */
	uint64_t step_end;   /* the target of the advance running now */
	unsigned late;       /* fired at a time other than its expiry */
	unsigned disorder;   /* fired before an earlier-expiring timer */
	unsigned overshoot;  /* fired before the target of a step taken from tmr_wheel_next */
	unsigned fired;
} chk;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void chk_reset(struct tmr_wheel *w)
{
	memset(&chk, 0, sizeof(chk));
	chk.w = w;
}

static void on_item(struct tmr *t, void *arg)
{
	struct item *it = arg;
	uint64_t now = tmr_wheel_now(chk.w);

	(void)t;
	if (now != it->want || t->expires != it->want)
		chk.late++;
	if (it->want < chk.last)
		chk.disorder++;
	if (chk.step_end && now != chk.step_end)
		chk.overshoot++;
	chk.last = it->want;
	it->fired = now;
	it->nfired++;
	chk.fired++;
}

static void item_start(struct tmr_wheel *w, struct item *it, uint64_t delay)
{
	it->want = tmr_wheel_now(w) + delay;
	tmr_start(w, &it->t, delay, on_item, it);
}

static void test_empty(void **state)
{
	struct tmr_wheel *w;
	struct tmr t = { 0 };

	(void)state;
	assert_int_equal(tmr_wheel_new(&w, 1000), 0);
	assert_int_equal(tmr_wheel_next(w), -1);
	assert_int_equal(tmr_wheel_count(w), 0);
	tmr_cancel(&t); /* not running: harmless */
	assert_false(tmr_isrunning(&t));
	tmr_wheel_advance(w, 5000);
	assert_int_equal(tmr_wheel_now(w), 5000);
	tmr_wheel_free(w);
}

static void test_order(void **state)
{
	static const uint64_t delays[] = { 30, 1, 255, 256, 7, 7, 300, 2, 1000, 65536, 90, 3 };
	enum { N = sizeof(delays) / sizeof(delays[0]) };
	struct item it[N] = { 0 };
	struct tmr_wheel *w;

	(void)state;
	assert_int_equal(tmr_wheel_new(&w, 77), 0);
	chk_reset(w);
	for (unsigned i = 0; i < N; i++)
		item_start(w, &it[i], delays[i]);
	assert_int_equal(tmr_wheel_count(w), N);
	assert_int_equal(tmr_wheel_next(w), 1);
	for (uint64_t now = 77; now <= 77 + 70000; now += 3)
		tmr_wheel_advance(w, now);
	assert_int_equal(chk.fired, N);
	assert_int_equal(chk.late, 0);
	assert_int_equal(chk.disorder, 0);
	assert_int_equal(tmr_wheel_count(w), 0);
	/* equal expiries fire in start order */
	assert_true(it[4].fired == it[5].fired);
	tmr_wheel_free(w);
}

/* Starts just below a 2^32 boundary so that timers cross every level and the overflow list,
 * then steps exactly by tmr_wheel_next: no timer may fire before the step's target. */
static void test_cascade_levels(void **state)
{
	static const uint64_t delays[] = {
		1, 2, 3, 4, 5, 255, 256, 257, 65535, 65536, 65537, 65536 * 3 + 17,
		(1u << 24) - 1, 1u << 24, (1u << 24) + 1, 0xffffffffu, UINT64_C(1) << 32,
		(UINT64_C(1) << 32) + 1, (UINT64_C(1) << 33) + 5, UINT64_C(1) << 40,
	};
	enum { N = sizeof(delays) / sizeof(delays[0]) };
	struct item it[N] = { 0 };
	uint64_t base = (UINT64_C(1) << 32) - 3;
	struct tmr_wheel *w;
	unsigned steps = 0;

	(void)state;
	assert_int_equal(tmr_wheel_new(&w, base), 0);
	chk_reset(w);
	for (unsigned i = 0; i < N; i++)
		item_start(w, &it[i], delays[i]);
	while (tmr_wheel_count(w)) {
		int64_t d = tmr_wheel_next(w);

		assert_true(d > 0);
		chk.step_end = tmr_wheel_now(w) + (uint64_t)d;
		tmr_wheel_advance(w, chk.step_end);
		assert_true(++steps < 10000);
	}
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(it[i].nfired, 1);
		assert_true(it[i].fired == base + delays[i]);
	}
	assert_int_equal(chk.late, 0);
	assert_int_equal(chk.disorder, 0);
	assert_int_equal(chk.overshoot, 0);
	tmr_wheel_free(w);
}

/* The same timers, but one big advance: the jumps inside advance must stop at every cascade. */
static void test_cascade_one_jump(void **state)
{
	struct item it[64] = { 0 };
	struct tmr_wheel *w;

	(void)state;
	assert_int_equal(tmr_wheel_new(&w, 123456789), 0);
	chk_reset(w);
	for (unsigned i = 0; i < 64; i++)
		item_start(w, &it[i], (rng() % (UINT64_C(1) << 34)) + 1);
	tmr_wheel_advance(w, 123456789 + (UINT64_C(1) << 34) + 1);
	assert_int_equal(chk.fired, 64);
	assert_int_equal(chk.late, 0);
	assert_int_equal(chk.disorder, 0);
	tmr_wheel_free(w);
}

/* Handlers that change the wheel: cancel a sibling of the same slot, re-arm themselves,
 * start a zero-delay timer, cancel a far timer. */
static struct {
	struct tmr a, b, c, d, e, far;
	unsigned na, nb, nc, nd, ne;
	uint64_t e_at;
	unsigned advance_no;
} hs;

static void h_b(struct tmr *t, void *arg)
{
	(void)t;
	(void)arg;
	hs.nb++;
}

static void h_a(struct tmr *t, void *arg)
{
	(void)arg;
	hs.na++;
	tmr_cancel(&hs.b);   /* same slot, already moved to the firing batch */
	tmr_cancel(&hs.far); /* on a higher level */
	tmr_cancel(t);       /* not running any more: harmless */
}

static void h_c(struct tmr *t, void *arg)
{
	struct tmr_wheel *w = arg;

	if (++hs.nc < 4)
		tmr_start(w, t, 5, h_c, w);
}

static void h_e(struct tmr *t, void *arg)
{
	struct tmr_wheel *w = arg;

	(void)t;
	hs.ne++;
	hs.e_at = hs.advance_no;
	(void)w;
}

static void h_d(struct tmr *t, void *arg)
{
	struct tmr_wheel *w = arg;

	(void)t;
	hs.nd++;
	tmr_start(w, &hs.e, 0, h_e, w);
	tmr_start(w, &hs.d, 0, h_d, w); /* re-arming with no delay must not spin this advance */
}

static void test_handlers(void **state)
{
	struct tmr_wheel *w;

	(void)state;
	memset(&hs, 0, sizeof(hs));
	assert_int_equal(tmr_wheel_new(&w, 0), 0);
	tmr_start(w, &hs.a, 10, h_a, w);
	tmr_start(w, &hs.b, 10, h_b, w);
	tmr_start(w, &hs.far, 100000, h_b, w);
	tmr_start(w, &hs.c, 10, h_c, w);
	tmr_start(w, &hs.d, 50, h_d, w);
	assert_int_equal(tmr_wheel_count(w), 5);

	hs.advance_no = 1;
	tmr_wheel_advance(w, 60);
	assert_int_equal(hs.na, 1);
	assert_int_equal(hs.nb, 0);
	assert_false(tmr_isrunning(&hs.far));
	assert_int_equal(hs.nc, 4); /* 10, 15, 20, 25 */
	assert_int_equal(hs.nd, 1);
	assert_int_equal(hs.ne, 0); /* zero delay: next advance */
	assert_int_equal(tmr_wheel_next(w), 0);
	assert_int_equal(tmr_wheel_count(w), 2);

	hs.advance_no = 2;
	tmr_wheel_advance(w, 60); /* same time: due timers still fire */
	assert_int_equal(hs.ne, 1);
	assert_int_equal(hs.e_at, 2);
	assert_int_equal(hs.nd, 2);
	assert_int_equal(tmr_wheel_count(w), 2); /* d re-armed itself and e again */
	tmr_cancel(&hs.d);
	tmr_cancel(&hs.e);
	assert_int_equal(tmr_wheel_count(w), 0);
	assert_int_equal(tmr_wheel_next(w), -1);
	tmr_wheel_free(w);
}

static void test_restart_moves(void **state)
{
	struct item it = { 0 };
	struct tmr_wheel *w;

	(void)state;
	assert_int_equal(tmr_wheel_new(&w, 500), 0);
	chk_reset(w);
	item_start(w, &it, 100000);
	item_start(w, &it, 20); /* restart replaces, count stays 1 */
	assert_int_equal(tmr_wheel_count(w), 1);
	/* 520 lies in the next 256 ms block: next is the cascade point at 512, still a safe sleep */
	assert_int_equal(tmr_wheel_next(w), 12);
	tmr_wheel_advance(w, 512);
	assert_int_equal(tmr_wheel_next(w), 8);
	tmr_wheel_advance(w, 200000);
	assert_int_equal(it.nfired, 1);
	assert_true(it.fired == 520);
	tmr_wheel_free(w);
}

/* The next event is kept between calls: a timer placed earlier lowers it, a cancel and a step to it
 * forget it, and what the wheel answers is what a fresh scan would, at every point. */
static void test_next_kept(void **state)
{
	struct item a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	struct tmr_wheel *w;

	(void)state;
	assert_int_equal(tmr_wheel_new(&w, 0), 0);
	chk_reset(w);
	assert_int_equal(tmr_wheel_next(w), -1);
	item_start(w, &a, 100);
	assert_int_equal(tmr_wheel_next(w), 100);
	item_start(w, &c, 300); /* level 1: its block starts at 256, after a */
	assert_int_equal(tmr_wheel_next(w), 100);
	item_start(w, &b, 50); /* earlier than what was known */
	assert_int_equal(tmr_wheel_next(w), 50);
	tmr_wheel_advance(w, 50);
	assert_int_equal(b.nfired, 1);
	assert_int_equal(tmr_wheel_next(w), 50); /* a, at 100 */
	tmr_wheel_advance(w, 60);              /* short of it: still known, still right */
	assert_int_equal(tmr_wheel_next(w), 40);
	tmr_cancel(&a.t);
	assert_int_equal(tmr_wheel_next(w), 196); /* c's block at 256 */
	tmr_wheel_advance(w, 256);
	assert_int_equal(tmr_wheel_next(w), 44);
	item_start(w, &d, ((uint64_t)1 << 32)); /* beyond the 2^32 ms block */
	assert_int_equal(tmr_wheel_next(w), 44);
	tmr_wheel_advance(w, 300);
	assert_int_equal(c.nfired, 1);
	assert_int_equal(c.fired, 300);
	assert_int_equal(tmr_wheel_next(w), (int64_t)(((uint64_t)1 << 32) - 300)); /* the block's end */
	tmr_cancel(&d.t);
	assert_int_equal(tmr_wheel_next(w), -1);
	assert_int_equal(a.nfired, 0);
	assert_int_equal(chk.late, 0);
	assert_int_equal(chk.disorder, 0);
	tmr_wheel_free(w);
}

/* Cancelled timers leave their slot's bit set: the search for the next slot must look past them,
 * across the bitmap's words and levels. */
static void test_cancel_leaves_no_ghost(void **state)
{
	struct item a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
	struct tmr_wheel *w;

	(void)state;
	assert_int_equal(tmr_wheel_new(&w, 0), 0);
	chk_reset(w);
	item_start(w, &a, 10);  /* level 0, slot 10: first word */
	item_start(w, &b, 200); /* level 0, slot 200: last word */
	assert_int_equal(tmr_wheel_next(w), 10);
	tmr_cancel(&a.t);
	assert_int_equal(tmr_wheel_next(w), 200);
	item_start(w, &c, 70);
	assert_int_equal(tmr_wheel_next(w), 70);
	tmr_cancel(&c.t);
	tmr_cancel(&b.t);
	item_start(w, &d, 300); /* level 1: next is the cascade point */
	assert_int_equal(tmr_wheel_next(w), 256);
	tmr_wheel_advance(w, 299);
	assert_int_equal(d.nfired, 0);
	assert_int_equal(tmr_wheel_next(w), 1);
	tmr_wheel_advance(w, 300);
	assert_int_equal(d.nfired, 1);
	assert_int_equal(a.nfired + b.nfired + c.nfired, 0);
	tmr_wheel_free(w);
}

/* One million timers, random delays up to ten minutes, a tenth cancelled, the wheel advanced in
 * uneven steps like a loop would: each fires once, at its millisecond, in expiry order. */
/* Lazy timers: never before their delay, at most TMR_LAZY_MS - 1 after it, on a multiple of
 * TMR_LAZY_MS; those started a few milliseconds apart fire at the same moment. */
static void on_lazy(struct tmr *t, void *arg)
{
	struct item *it = arg;

	(void)t;
	it->fired = tmr_wheel_now(chk.w);
	it->nfired++;
}

static void test_lazy(void **state)
{
	enum { N = 40 };
	struct item it[N] = { 0 };
	struct tmr_wheel *w;
	uint64_t now = 1000003;

	(void)state;
	assert_int_equal(tmr_wheel_new(&w, now), 0);
	chk_reset(w);
	for (unsigned i = 0; i < N; i++) {
		uint64_t delay = i < N / 2 ? 5000 : 1 + rng() % 100000;

		now += 1 + (i % 3); /* started over a few milliseconds, as calls end */
		tmr_wheel_advance(w, now);
		it[i].want = now + delay;
		tmr_start_lazy(w, &it[i].t, delay, on_lazy, &it[i]);
	}
	while (tmr_wheel_next(w) >= 0) {
		now += (uint64_t)tmr_wheel_next(w);
		tmr_wheel_advance(w, now);
	}
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(it[i].nfired, 1);
		assert_true(it[i].fired >= it[i].want);
		assert_true(it[i].fired < it[i].want + TMR_LAZY_MS);
		assert_int_equal(it[i].fired % TMR_LAZY_MS, 0);
	}
	/* the first twenty, 5 s after starts spread over ~40 ms, share at most two moments */
	unsigned moments = 1;
	for (unsigned i = 1; i < N / 2; i++)
		moments += it[i].fired != it[i - 1].fired;
	assert_true(moments <= 2);
	tmr_wheel_free(w);
}

static void test_million(void **state)
{
	enum { N = 1000000, MAX_DELAY = 600000 };
	struct item *it = calloc(N, sizeof(*it));
	struct tmr_wheel *w;
	unsigned cancelled = 0;
	double t0, t1, t2;
	uint64_t now;

	(void)state;
	assert_non_null(it);
	assert_int_equal(tmr_wheel_new(&w, 1), 0);
	chk_reset(w);
	t0 = mono_s();
	for (unsigned i = 0; i < N; i++)
		item_start(w, &it[i], 1 + rng() % MAX_DELAY);
	for (unsigned i = 0; i < N; i += 10) {
		tmr_cancel(&it[i].t);
		cancelled++;
	}
	assert_int_equal(tmr_wheel_count(w), N - cancelled);
	t1 = mono_s();
	for (now = 1; tmr_wheel_count(w); now += 1 + rng() % 40)
		tmr_wheel_advance(w, now);
	t2 = mono_s();
	print_message("1M timers: start+cancel %.3f s, advance %.3f s\n", t1 - t0, t2 - t1);
	assert_int_equal(chk.fired, N - cancelled);
	assert_int_equal(chk.late, 0);
	assert_int_equal(chk.disorder, 0);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(it[i].nfired, i % 10 ? 1 : 0);
	/* generous: sanitizers slow this down several times over */
	assert_true(t2 - t0 < 30.0);
	tmr_wheel_free(w);
	free(it);
}

/* tmr_deadline: now on CLOCK_MONOTONIC plus the microseconds, nanoseconds kept under a second (what
 * pthread_cond_timedwait requires) whatever the sum, for a delay under a second and one of several. */
static void test_deadline(void **state)
{
	static const uint64_t delays[] = { 0, 999999, 1000000, 2750000 };

	(void)state;
	for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
		struct timespec before, at, after;
		int64_t lo, hi, got;

		clock_gettime(CLOCK_MONOTONIC, &before);
		tmr_deadline(&at, delays[i]);
		clock_gettime(CLOCK_MONOTONIC, &after);
		assert_true(at.tv_nsec >= 0 && at.tv_nsec < 1000000000);
		lo = (int64_t)before.tv_sec * 1000000000 + before.tv_nsec + (int64_t)delays[i] * 1000;
		hi = (int64_t)after.tv_sec * 1000000000 + after.tv_nsec + (int64_t)delays[i] * 1000;
		got = (int64_t)at.tv_sec * 1000000000 + at.tv_nsec;
		assert_true(got >= lo && got <= hi);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_cascade_levels),
		cmocka_unit_test(test_cascade_one_jump),
		cmocka_unit_test(test_handlers),
		cmocka_unit_test(test_restart_moves),
		cmocka_unit_test(test_next_kept),
		cmocka_unit_test(test_cancel_leaves_no_ghost),
		cmocka_unit_test(test_lazy),
		cmocka_unit_test(test_million),
		cmocka_unit_test(test_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
