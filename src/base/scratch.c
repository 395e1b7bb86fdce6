/* scratch.c: a few slots per thread, each a buffer that only grows (up to SCRATCH_MAX), freed when the
 * thread ends through a pthread key whose value is the thread's own slot table. */
#include "base/scratch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define SCRATCH_SLOTS 4

struct scratch_slot {
	void *p;
	size_t size;
	bool taken;
};

struct scratch_thread {
	struct scratch_slot slot[SCRATCH_SLOTS];
	bool registered;
};

static _Thread_local struct scratch_thread self;
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

static void thread_end(void *arg)
{
	struct scratch_thread *t = arg;

	for (unsigned i = 0; i < SCRATCH_SLOTS; i++)
		free(t->slot[i].p);
	*t = (struct scratch_thread){ 0 };
}

static void key_make(void)
{
	key_ok = pthread_key_create(&key, thread_end) == 0;
}

/* Without the key the buffers could not be freed at thread exit: then every take is a malloc. */
static bool registered(void)
{
	if (!self.registered) {
		pthread_once(&key_once, key_make);
		if (!key_ok || pthread_setspecific(key, &self))
			return false;
		self.registered = true;
	}
	return true;
}

void *scratch_take(size_t size)
{
	struct scratch_slot *s = NULL;

	if (size == 0)
		size = 1;
	if (size > SCRATCH_MAX || !registered())
		return malloc(size);
	for (unsigned i = 0; i < SCRATCH_SLOTS; i++) {
		if (self.slot[i].taken)
			continue;
		if (self.slot[i].size >= size) { /* one large enough: take it as it is */
			s = &self.slot[i];
			break;
		}
		if (!s)
			s = &self.slot[i];
	}
	if (!s)
		return malloc(size);
	if (s->size < size) {
		void *p = malloc(size);

		if (!p)
			return NULL;
		free(s->p);
		s->p = p;
		s->size = size;
	}
	s->taken = true;
	return s->p;
}

void scratch_give(void *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < SCRATCH_SLOTS; i++) {
		if (self.slot[i].p == p && self.slot[i].taken) {
			self.slot[i].taken = false;
			return;
		}
	}
	free(p);
}
