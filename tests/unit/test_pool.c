/* test_pool.c: the long-lived record pool: zeroed aligned objects, blocks given back when empty. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/pool.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_LSAN 1
#endif
#endif
#ifdef TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define BLOCK (64 * 1024)

static void test_alloc_zeroed_aligned(void **state)
{
	struct pool *p;
	char *a, *b;

	(void)state;
	assert_int_equal(pool_new(&p), 0);
	a = pool_alloc(p, 100);
	assert_non_null(a);
	assert_int_equal((uintptr_t)a % 16, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(a[i], 0);
	memset(a, 0xab, 100);
	pool_release(p, a);
	b = pool_alloc(p, 100); /* the same slot, cleared again */
	assert_ptr_equal(a, b);
	for (int i = 0; i < 100; i++)
		assert_int_equal(b[i], 0);
	pool_release(p, b);
	pool_release(p, NULL);
	pool_free(p);
}

/* 10 000 records fill many blocks; once all are released only one block per class stays mapped. */
static void test_blocks_return(void **state)
{
	enum { N = 10000 };
	static void *objs[N];
	struct pool *p;
	size_t peak;

	(void)state;
	assert_int_equal(pool_new(&p), 0);
	assert_int_equal(pool_mapped(p), 0);
	for (int i = 0; i < N; i++) {
		objs[i] = pool_alloc(p, 200 + (size_t)(i % 2) * 200); /* two classes: 256 and 512 */
		assert_non_null(objs[i]);
		memset(objs[i], i & 0xff, 200);
	}
	peak = pool_mapped(p);
	assert_true(peak >= (size_t)N / 2 * (256 + 512));
	assert_true(peak <= (size_t)N / 2 * (256 + 512) + 4 * BLOCK);
	for (int i = 0; i < N; i += 2) /* the 256-byte class: its blocks empty and go, but one */
		pool_release(p, objs[i]);
	for (int i = 1; i < N; i += 2) {
		assert_int_equal(((unsigned char *)objs[i])[199], i & 0xff); /* neighbours untouched */
		pool_release(p, objs[i]);
	}
	assert_int_equal(pool_mapped(p), 2 * BLOCK);
	pool_free(p);
}

static void test_large(void **state)
{
	struct pool *p;
	char *big;

	(void)state;
	assert_int_equal(pool_new(&p), 0);
	big = pool_alloc(p, 200000);
	assert_non_null(big);
	assert_int_equal(big[199999], 0);
	big[199999] = 1;
	assert_true(pool_mapped(p) >= 200000);
	pool_release(p, big);
	assert_int_equal(pool_mapped(p), 0);
	assert_non_null(pool_alloc(p, 9000)); /* left for pool_free */
	pool_free(p);
}

struct worker_arg {
	struct pool *p;
	unsigned seed;
};

static void *worker(void *arg)
{
	struct worker_arg *w = arg;
	void *held[64] = { NULL };

	for (unsigned i = 0; i < 20000; i++) {
		unsigned k = (w->seed = w->seed * 1103515245u + 12345u) >> 16;
		unsigned slot = k % 64;

		pool_release(w->p, held[slot]);
		held[slot] = pool_alloc(w->p, 16 + k % 3000);
		if (!held[slot])
			return (void *)1;
		memset(held[slot], (int)slot, 16);
	}
	for (unsigned s = 0; s < 64; s++)
		pool_release(w->p, held[s]);
	return NULL;
}

static void test_threads(void **state)
{
	struct pool *p;
	pthread_t th[4];
	struct worker_arg args[4];

	(void)state;
	assert_int_equal(pool_new(&p), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct worker_arg){ p, (unsigned)i * 7919u + 1 };
		assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;

		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	assert_true(pool_mapped(p) <= 14 * (size_t)BLOCK); /* at most the one kept block per class */
	pool_free(p);
}

#ifdef TEST_LSAN
#define HELD 1000

/* Heap objects that only pool objects point to, as a hash chain's first entries are pointed to by a
 * bucket array from a pool: not in a register or on the stack any more once this returns. */
static __attribute__((noinline)) void hold_heap_objects(struct pool *p, void **slots[HELD])
{
	for (int i = 0; i < HELD; i++) {
		slots[i] = pool_alloc(p, 64);
		assert_non_null(slots[i]);
		slots[i][0] = malloc(32);
		assert_non_null(slots[i][0]);
	}
}

/* LeakSanitizer scans no mapping by itself: unless the pool's blocks are its roots, a check while
 * sipd runs (libFuzzer makes one after each input that allocated more than it freed) reports what
 * only pool objects point to as leaked. */
static void test_leak_checker_sees_pool(void **state)
{
	static void **slots[HELD]; /* the pool objects themselves stay reachable from here */
	struct pool *p;

	(void)state;
	assert_int_equal(pool_new(&p), 0);
	hold_heap_objects(p, slots);
	assert_int_equal(__lsan_do_recoverable_leak_check(), 0);
	for (int i = 0; i < HELD; i++) {
		free(slots[i][0]);
		pool_release(p, slots[i]);
	}
	pool_free(p);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_zeroed_aligned),
		cmocka_unit_test(test_blocks_return),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_threads),
#ifdef TEST_LSAN
		cmocka_unit_test(test_leak_checker_sees_pool),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
