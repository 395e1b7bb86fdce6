/* test_workq.c: the bounded job queue: EAGAIN when full, every queued job runs before free returns. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/workq.h"

/* A gate that holds a job until the test opens it, so the queue can be filled on purpose. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	bool entered;
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false };

static atomic_uint ran;

static void job_gate(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&gate.lock);
	gate.entered = true;
	pthread_cond_broadcast(&gate.cond);
	while (!gate.open)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
	atomic_fetch_add(&ran, 1);
}

static void job_count(void *arg)
{
	atomic_fetch_add(&ran, 1);
	if (arg)
		atomic_fetch_add((atomic_uint *)arg, 1);
}

static void test_bad_args(void **state)
{
	struct workq *q;

	(void)state;
	assert_int_equal(workq_new(&q, 0, 4), EINVAL);
	assert_int_equal(workq_new(&q, 1, 0), EINVAL);
	assert_int_equal(workq_push(NULL, job_count, NULL), EINVAL);
}

static void test_full_eagain(void **state)
{
	struct workq *q;

	(void)state;
	atomic_store(&ran, 0);
	gate.open = false;
	gate.entered = false;
	assert_int_equal(workq_new(&q, 1, 2), 0);

	/* the only thread takes the gate job and blocks in it */
	assert_int_equal(workq_push(q, job_gate, NULL), 0);
	pthread_mutex_lock(&gate.lock);
	while (!gate.entered)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);

	assert_int_equal(workq_push(q, job_count, NULL), 0);
	assert_int_equal(workq_push(q, job_count, NULL), 0);
	assert_int_equal(workq_depth(q), 2);
	assert_int_equal(workq_push(q, job_count, NULL), EAGAIN);
	assert_int_equal(workq_depth(q), 2);

	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	workq_free(q); /* drains the two queued jobs */
	assert_int_equal(atomic_load(&ran), 3);
}

static void test_many_threads(void **state)
{
	enum { JOBS = 20000 };
	atomic_uint mine = 0;
	unsigned pushed = 0;
	struct workq *q;

	(void)state;
	atomic_store(&ran, 0);
	assert_int_equal(workq_new(&q, 4, 64), 0);
	while (pushed < JOBS) {
		int err = workq_push(q, job_count, &mine);

		if (err == EAGAIN) {
			sched_yield(); /* the workers catch up (under valgrind, one thread runs at a time) */
			continue;
		}
		assert_int_equal(err, 0);
		pushed++;
	}
	workq_free(q);
	assert_int_equal(atomic_load(&mine), JOBS);
	assert_int_equal(atomic_load(&ran), JOBS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_full_eagain),
		cmocka_unit_test(test_many_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
