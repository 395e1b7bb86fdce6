/* test_recycle.c: the per-thread free lists: a block comes back to its size class only, the lists keep
 * no more than their bounds, any malloc block is taken, and a thread's lists go with the thread. */
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/recycle.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

static int teardown(void **state)
{
	(void)state;
	recycle_drain();
	return 0;
}

/* A block freed comes back for a request of its class (64-byte steps), and only then. */
static void test_same_class_again(void **state)
{
	char *a, *b, *c;

	(void)state;
	a = recycle_alloc(100);
	assert_non_null(a);
	memset(a, 1, 100);
	recycle_free(a);
	assert_int_equal(recycle_kept(), 2 * RECYCLE_CLASS);
	b = recycle_alloc(129); /* class 3: not a's */
	assert_non_null(b);
	assert_ptr_not_equal(b, a);
	c = recycle_alloc(65); /* class 2, as a */
	assert_ptr_equal(c, a);
	assert_int_equal(recycle_kept(), 0);
	memset(c, 2, 128);
	recycle_free(b);
	recycle_free(c);
	assert_int_equal(recycle_kept(), 5 * RECYCLE_CLASS);
}

/* Every size up to the largest class gets at least its bytes, whether new or taken from a list. */
static void test_every_size_fits(void **state)
{
	enum { TOP = RECYCLE_CLASS * RECYCLE_CLASSES };

	(void)state;
	for (int round = 0; round < 2; round++) { /* new blocks, then recycled ones */
		for (size_t s = 0; s <= TOP + 1; s++) {
			char *p = recycle_alloc(s);

			assert_non_null(p);
			assert_true(malloc_usable_size(p) >= s);
			memset(p, 0x5a, s);
			recycle_free(p);
		}
	}
	assert_true(recycle_kept() > 0);
}

/* A block from plain malloc is kept by its usable size; a recycled one may go to plain free. */
static void test_any_malloc_block(void **state)
{
	char *p = malloc(300), *q;

	(void)state;
	assert_non_null(p);
	recycle_free(p); /* usable 300 to 319 bytes: class 4 */
	q = recycle_alloc(4 * RECYCLE_CLASS);
	assert_ptr_equal(q, p);
	free(q);
	recycle_free(NULL);
	assert_int_equal(recycle_kept(), 0);
}

/* A class larger than the largest: freed at once, never kept. */
static void test_large_not_kept(void **state)
{
	char *p = recycle_alloc(RECYCLE_CLASS * (RECYCLE_CLASSES + 1));
	char *q = malloc(64 * 1024);

	(void)state;
	assert_non_null(p);
	assert_non_null(q);
	recycle_free(p);
	recycle_free(q);
	assert_int_equal(recycle_kept(), 0);
}

/* No more than RECYCLE_PER_CLASS blocks of a class. */
static void test_class_bound(void **state)
{
	enum { N = RECYCLE_PER_CLASS + 10 };
	void *p[N];

	(void)state;
	for (int i = 0; i < N; i++)
		assert_non_null(p[i] = recycle_alloc(10));
	for (int i = 0; i < N; i++)
		recycle_free(p[i]);
	assert_int_equal(recycle_kept(), (size_t)RECYCLE_PER_CLASS * RECYCLE_CLASS);
	recycle_drain();
	assert_int_equal(recycle_kept(), 0);
}

/* No more than RECYCLE_BUDGET bytes in all classes. */
static void test_budget(void **state)
{
	enum { PER = RECYCLE_PER_CLASS, CLASSES = 4 };
	static void *p[CLASSES][PER];

	size_t total = 0;

	(void)state;
	for (int c = 0; c < CLASSES; c++)
		total += (size_t)PER * (size_t)(RECYCLE_CLASSES - c) * RECYCLE_CLASS;
	assert_true(total > RECYCLE_BUDGET); /* more than the lists may keep */
	for (int c = 0; c < CLASSES; c++)
		for (int i = 0; i < PER; i++)
			assert_non_null(p[c][i] = recycle_alloc((size_t)(RECYCLE_CLASSES - c) * RECYCLE_CLASS));
	for (int c = 0; c < CLASSES; c++)
		for (int i = 0; i < PER; i++)
			recycle_free(p[c][i]);
	assert_true(recycle_kept() <= RECYCLE_BUDGET);
	assert_true(recycle_kept() > RECYCLE_BUDGET - RECYCLE_CLASS * RECYCLE_CLASSES);
}

/* Under AddressSanitizer a kept block is poisoned, so that a use after recycle_free is reported. */
static void test_kept_poisoned(void **state)
{
	char *p = recycle_alloc(200);

	(void)state;
	assert_non_null(p);
	recycle_free(p);
#ifdef TEST_ASAN
	assert_true(__asan_address_is_poisoned(p + 8));
	assert_true(__asan_address_is_poisoned(p + 199));
#endif
	assert_ptr_equal(recycle_alloc(200), p);
#ifdef TEST_ASAN
	assert_false(__asan_address_is_poisoned(p + 199));
#endif
	recycle_free(p);
}

static void *keep_some(void *arg)
{
	void *p[100];

	(void)arg;
	for (int i = 0; i < 100; i++)
		p[i] = recycle_alloc((size_t)(i % RECYCLE_CLASSES) * RECYCLE_CLASS + 1);
	for (int i = 0; i < 100; i++)
		recycle_free(p[i]);
	return (void *)(uintptr_t)recycle_kept();
}

/* A thread's lists are emptied when it exits: the leak checker finds nothing of them. */
static void test_thread_exit(void **state)
{
	pthread_t t;
	void *kept;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, keep_some, NULL), 0);
	assert_int_equal(pthread_join(t, &kept), 0);
	assert_true((uintptr_t)kept > 0);
	assert_int_equal(recycle_kept(), 0); /* not this thread's */
#ifdef TEST_ASAN
	assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_same_class_again, teardown),
		cmocka_unit_test_teardown(test_every_size_fits, teardown),
		cmocka_unit_test_teardown(test_any_malloc_block, teardown),
		cmocka_unit_test_teardown(test_large_not_kept, teardown),
		cmocka_unit_test_teardown(test_class_bound, teardown),
		cmocka_unit_test_teardown(test_budget, teardown),
		cmocka_unit_test_teardown(test_kept_poisoned, teardown),
		cmocka_unit_test_teardown(test_thread_exit, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
