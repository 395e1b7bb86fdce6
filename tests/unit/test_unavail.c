/* test_unavail.c: the next hops paused by a 503 with Retry-After (RFC 3261 21.5.4): a mark lasts until
 * its time and no longer, is per transport and address, a later mark replaces an earlier one, and a full
 * table gives up the entry whose pause ends first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "proxy/unavail.h"

static struct tp_addr addr(const char *s)
{
	struct tp_addr a;

	assert_int_equal(tp_addr_parse(&a, s, 5060), 0);
	return a;
}

static void test_mark_and_end(void **state)
{
	struct unavail *u;
	struct tp_addr a = addr("192.0.2.1:5060"), b = addr("192.0.2.1:5062"), v6 = addr("[2001:db8::1]:5060");

	(void)state;
	assert_int_equal(unavail_new(&u), 0);
	assert_int_equal(unavail_left(u, TP_UDP, &a, 1000), 0);
	unavail_mark(u, TP_UDP, &a, 5000);
	unavail_mark(u, TP_TCP, &v6, 9000);
	assert_int_equal(unavail_left(u, TP_UDP, &a, 1000), 4000);
	assert_int_equal(unavail_left(u, TP_UDP, &a, 4999), 1);
	assert_int_equal(unavail_left(u, TP_TCP, &a, 1000), 0); /* another transport: another next hop */
	assert_int_equal(unavail_left(u, TP_UDP, &b, 1000), 0); /* another port too */
	assert_int_equal(unavail_left(u, TP_UDP, &v6, 1000), 0);
	assert_int_equal(unavail_left(u, TP_TCP, &v6, 1000), 8000);
	assert_int_equal(unavail_left(u, TP_UDP, &a, 5000), 0); /* over at its time */
	assert_int_equal(unavail_left(u, TP_UDP, &a, 4000), 0); /* and forgotten */
	unavail_mark(u, TP_TCP, &v6, 2000);                     /* a later 503: its Retry-After counts */
	assert_int_equal(unavail_left(u, TP_TCP, &v6, 1000), 1000);
	unavail_free(u);
}

static void test_full(void **state)
{
	struct tp_addr first = addr("10.0.0.1:5060"), last = addr("10.0.0.64:5060"), extra = addr("10.0.1.1:5060");
	struct unavail *u;
	char s[32];

	(void)state;
	assert_int_equal(UNAVAIL_MAX, 64); /* 10.0.0.64 is the last one marked */
	assert_int_equal(unavail_new(&u), 0);
	for (unsigned i = 0; i < UNAVAIL_MAX; i++) {
		struct tp_addr a;

		snprintf(s, sizeof(s), "10.0.0.%u:5060", i + 1);
		a = addr(s);
		unavail_mark(u, TP_UDP, &a, 10000 + i); /* 10.0.0.1's pause ends first */
	}
	unavail_mark(u, TP_UDP, &extra, 20000);
	assert_int_equal(unavail_left(u, TP_UDP, &extra, 0), 20000);
	assert_int_equal(unavail_left(u, TP_UDP, &first, 0), 0); /* gave its place */
	assert_int_equal(unavail_left(u, TP_UDP, &last, 0), 10000 + UNAVAIL_MAX - 1);
	unavail_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mark_and_end),
		cmocka_unit_test(test_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
