/* test_scratch.c: per-thread scratch buffers: reused between takes, distinct while nested, plain
 * mallocs past the slots or the size limit, freed when their thread ends (LeakSanitizer checks that). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/scratch.h"

static void test_reused(void **state)
{
	char *a, *b;

	(void)state;
	a = scratch_take(40000);
	assert_non_null(a);
	memset(a, 0x5a, 40000); /* all of it is ours (ASan would say otherwise) */
	scratch_give(a);
	b = scratch_take(30000); /* smaller: the same buffer, as it was left */
	assert_ptr_equal(a, b);
	assert_int_equal(b[29999], 0x5a);
	scratch_give(b);
	scratch_give(NULL);
}

static void test_grows(void **state)
{
	char *a, *b;

	(void)state;
	a = scratch_take(16);
	assert_non_null(a);
	scratch_give(a);
	b = scratch_take(200000);
	assert_non_null(b);
	memset(b, 1, 200000);
	scratch_give(b);
}

/* Nested takes never share memory; past the slots they are mallocs, freed by scratch_give. */
static void test_nested(void **state)
{
	enum { N = 8, SIZE = 3000 };
	unsigned char *p[N];

	(void)state;
	for (int i = 0; i < N; i++) {
		p[i] = scratch_take(SIZE);
		assert_non_null(p[i]);
		memset(p[i], i + 1, SIZE);
	}
	for (int i = 0; i < N; i++)
		for (int k = 0; k < SIZE; k += 997)
			assert_int_equal(p[i][k], i + 1);
	for (int i = N - 1; i >= 0; i -= 2) /* given back out of order */
		scratch_give(p[i]);
	for (int i = 0; i < N; i += 2)
		scratch_give(p[i]);
}

static void test_large_is_malloc(void **state)
{
	char *big = scratch_take(SCRATCH_MAX + 1), *small;

	(void)state;
	assert_non_null(big);
	memset(big, 2, SCRATCH_MAX + 1);
	small = scratch_take(64); /* the slots are all free: the big take did not use one */
	assert_non_null(small);
	assert_ptr_not_equal(small, big);
	scratch_give(big); /* freed, or LeakSanitizer reports it */
	scratch_give(small);
}

static void *thread_takes(void *arg)
{
	void **seen = arg;
	char *a = scratch_take(50000), *b = scratch_take(60000);

	if (!a || !b)
		return (void *)1;
	memset(a, 3, 50000);
	memset(b, 4, 60000);
	seen[0] = a;
	scratch_give(a);
	scratch_give(b); /* both stay with the thread until it ends */
	return NULL;
}

/* Each thread has its own buffers, and they go when the thread does. */
static void test_per_thread(void **state)
{
	void *seen[1] = { NULL }, *ret = (void *)1;
	char *mine = scratch_take(50000);
	pthread_t th;

	(void)state;
	assert_non_null(mine);
	assert_int_equal(pthread_create(&th, NULL, thread_takes, seen), 0);
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_null(ret);
	assert_ptr_not_equal(seen[0], mine);
	scratch_give(mine);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reused),
		cmocka_unit_test(test_grows),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_large_is_malloc),
		cmocka_unit_test(test_per_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
