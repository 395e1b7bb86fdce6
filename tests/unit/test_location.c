/* test_location.c: the location service's index: tens of thousands of AORs found through every
 * doubling of their shards' chains, replaced and removed by loc_set_locked, and bindings expiring
 * on their timers through the expiry thread, which tells the registrar what to delete and is woken
 * by a binding that ends before its planned pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "registrar/location.h"

#define MANY 20000 /* 64 shards of 64 buckets at first: each shard's chains double three times */

static void binding(struct store_binding *b, unsigned i, const char *contact, int64_t expires)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->aor, sizeof(b->aor), "sip:user%u@example.com", i);
	snprintf(b->contact, sizeof(b->contact), "%s", contact);
	snprintf(b->received, sizeof(b->received), "udp:192.0.2.%u:5060", i % 250 + 1);
	snprintf(b->call_id, sizeof(b->call_id), "reg-%u", i);
	b->cseq = i + 1;
	b->q = -1;
	b->expires = expires;
	b->updated = expires - 3600;
}

static int count_cb(const struct store_binding *b, void *arg)
{
	(void)b;
	++*(size_t *)arg;
	return 0;
}

static void test_many_aors(void **state)
{
	struct store_binding *b = malloc(2 * sizeof(*b));
	int64_t now = (int64_t)time(NULL);
	struct loc *l;
	size_t seen = 0;
	char c[64];

	(void)state;
	assert_non_null(b);
	assert_int_equal(loc_new(&l, NULL, NULL), 0);
	for (unsigned i = 0; i < MANY; i++) {
		snprintf(c, sizeof(c), "sip:u%u@198.51.100.1:5060", i);
		binding(&b[0], i, c, now + 3600);
		assert_int_equal(loc_put(l, &b[0], now), 0);
	}
	assert_int_equal(loc_count(l), MANY);
	for (unsigned i = 0; i < MANY; i++) {
		snprintf(b[1].aor, sizeof(b[1].aor), "sip:user%u@example.com", i);
		snprintf(c, sizeof(c), "sip:u%u@198.51.100.1:5060", i);
		assert_int_equal(loc_lookup(l, b[1].aor, b, 2, now), 1);
		assert_string_equal(b[0].contact, c);
		assert_int_equal(b[0].cseq, i + 1);
	}
	assert_int_equal(loc_lookup(l, "sip:nobody@example.com", b, 2, now), 0);
	loc_foreach(l, count_cb, &seen);
	assert_int_equal(seen, MANY);

	/* every other AOR: its binding replaced by two; the rest removed */
	for (unsigned i = 0; i < MANY; i++) {
		char aor[64];
		size_t n = i % 2 ? 2 : 0;

		snprintf(aor, sizeof(aor), "sip:user%u@example.com", i);
		binding(&b[0], i, "sip:a@203.0.113.1", now + 60);
		binding(&b[1], i, "sip:b@203.0.113.2", now + 120);
		struct loc_held h = loc_lock(l, aor);

		assert_int_equal(loc_set_locked(&h, b, n, now), 0);
		loc_unlock(&h);
	}
	assert_int_equal(loc_count(l), MANY);
	for (unsigned i = 0; i < MANY; i++) {
		snprintf(c, sizeof(c), "sip:user%u@example.com", i);
		assert_int_equal(loc_lookup(l, c, b, 2, now), i % 2 ? 2 : 0);
	}
	loc_free(l); /* with bindings in it: all freed (ASan) */
	free(b);
}

struct expired {
	size_t n;
	char aor[256], contact[512];
};

static void on_expired(const struct store_change *dels, size_t n, void *arg)
{
	struct expired *e = arg;

	for (size_t i = 0; i < n; i++) {
		assert_int_equal(dels[i].op, STORE_BINDING_DEL);
		snprintf(e->aor, sizeof(e->aor), "%s", dels[i].b.aor);
		snprintf(e->contact, sizeof(e->contact), "%s", dels[i].b.contact);
	}
	__atomic_add_fetch(&e->n, n, __ATOMIC_SEQ_CST);
}

static void test_expiry(void **state)
{
	struct store_binding *b = malloc(2 * sizeof(*b));
	int64_t now = (int64_t)time(NULL);
	struct expired e = { 0 };
	struct loc *l;

	(void)state;
	assert_non_null(b);
	assert_int_equal(loc_new(&l, on_expired, &e), 0);
	binding(&b[0], 7, "sip:short@203.0.113.7", now + 1);
	assert_int_equal(loc_put(l, &b[0], now), 0);
	binding(&b[0], 8, "sip:long@203.0.113.8", now + 3600);
	assert_int_equal(loc_put(l, &b[0], now), 0);
	assert_int_equal(loc_start(l), 0);
	for (int i = 0; i < 40 && __atomic_load_n(&e.n, __ATOMIC_SEQ_CST) == 0; i++)
		usleep(100 * 1000);
	assert_int_equal(__atomic_load_n(&e.n, __ATOMIC_SEQ_CST), 1);
	assert_string_equal(e.aor, "sip:user7@example.com");
	assert_string_equal(e.contact, "sip:short@203.0.113.7");
	assert_int_equal(loc_count(l), 1);
	assert_int_equal(loc_lookup(l, "sip:user7@example.com", b, 2, now), 0);
	assert_int_equal(loc_lookup(l, "sip:user8@example.com", b, 2, now), 1);
	loc_free(l);
	free(b);
}

/* A binding past its end whose timer has not run yet (the expiry thread is not started here) and that a
 * change of its AOR replaces: told as expired then, not dropped without a word (its row would stay on
 * disk); a live one replaced is not told. The timer of a binding made in the clock's second runs at its
 * end, not up to a second after it. */
static void test_expired_when_replaced(void **state)
{
	struct store_binding *b = malloc(2 * sizeof(*b));
	int64_t now = (int64_t)time(NULL);
	struct expired e = { 0 };
	struct timespec ts;
	struct loc *l;

	(void)state;
	assert_non_null(b);
	assert_int_equal(loc_new(&l, on_expired, &e), 0);
	binding(&b[0], 9, "sip:dead@203.0.113.9", now + 5);
	binding(&b[1], 9, "sip:live@203.0.113.9", now + 3600);
	struct loc_held h = loc_lock(l, b[0].aor);

	assert_int_equal(loc_set_locked(&h, b, 2, now), 0);
	/* five seconds on, the first is past its end; a REGISTER replaces the set with the live one */
	assert_int_equal(loc_get_locked(&h, NULL, 0, now + 5), 1);
	assert_int_equal(loc_set_locked(&h, &b[1], 1, now + 5), 0);
	loc_unlock(&h);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.aor, "sip:user9@example.com");
	assert_string_equal(e.contact, "sip:dead@203.0.113.9");
	assert_int_equal(loc_count(l), 1);
	loc_free(l);

	/* on time: a binding of 2 s made now ends within 2.2 s (the thread looks every 200 ms) */
	memset(&e, 0, sizeof(e));
	assert_int_equal(loc_new(&l, on_expired, &e), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	while (ts.tv_nsec < 600 * 1000000L) { /* late in a second, where a whole-second timer ran late */
		usleep(50 * 1000);
		clock_gettime(CLOCK_REALTIME, &ts);
	}
	now = ts.tv_sec;
	binding(&b[0], 10, "sip:soon@203.0.113.10", now + 2);
	assert_int_equal(loc_put(l, &b[0], now), 0);
	assert_int_equal(loc_start(l), 0);
	usleep(1900 * 1000); /* 0.1 s before a whole-second timer would run, 0.3 s after this one */
	assert_int_equal(__atomic_load_n(&e.n, __ATOMIC_SEQ_CST), 1);
	loc_free(l);
	free(b);
}

/* The expiry thread sleeps until the earliest binding is due, up to a minute: a binding added while it
 * sleeps that ends sooner wakes it, and ends on time. */
static void test_woken_by_earlier(void **state)
{
	struct store_binding *b = malloc(sizeof(*b));
	int64_t now = (int64_t)time(NULL);
	struct expired e = { 0 };
	struct loc *l;
	int waited = 0;

	(void)state;
	assert_non_null(b);
	assert_int_equal(loc_new(&l, on_expired, &e), 0);
	binding(b, 11, "sip:long@203.0.113.11", now + 3600);
	assert_int_equal(loc_put(l, b, now), 0);
	assert_int_equal(loc_start(l), 0);
	usleep(300 * 1000); /* its pass done: asleep, for a minute */
	now = (int64_t)time(NULL);
	binding(b, 12, "sip:short@203.0.113.12", now + 1);
	assert_int_equal(loc_put(l, b, now), 0);
	while (waited < 5000 && __atomic_load_n(&e.n, __ATOMIC_SEQ_CST) == 0) {
		usleep(50 * 1000);
		waited += 50;
	}
	assert_int_equal(__atomic_load_n(&e.n, __ATOMIC_SEQ_CST), 1);
	assert_true(waited <= 2100); /* due within 1 s of the clock's second, and the thread on time */
	assert_string_equal(e.contact, "sip:short@203.0.113.12");
	assert_int_equal(loc_count(l), 1);
	loc_free(l);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_aors),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_expired_when_replaced),
		cmocka_unit_test(test_woken_by_earlier),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
