/* recycle.c: per-thread free lists by 64-byte size class, for the blocks of a request (recycle.h). */
#include "base/recycle.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RECYCLE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define RECYCLE_ASAN 1
#endif
#ifdef RECYCLE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <stdio.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

_Static_assert(RECYCLE_PER_CLASS <= UINT16_MAX, "counts are 16 bits");

/* A kept block's last bytes (of its class's size): the next one of its class. At the end, because the
 * leak checker does not follow pointers out of poisoned memory, so these bytes stay unpoisoned, and a
 * use after free comes at the start of an object more often (a reference count, a first field). */
struct kept {
	struct kept *next;
};

static struct kept *link_of(void *block, size_t k)
{
	return (struct kept *)(void *)((char *)block + k * RECYCLE_CLASS - sizeof(struct kept));
}

static void *block_of(struct kept *link, size_t k)
{
	return (char *)(void *)link - (k * RECYCLE_CLASS - sizeof(struct kept));
}

struct lists {
	struct kept *head[RECYCLE_CLASSES + 1]; /* [k]: blocks of at least k * RECYCLE_CLASS bytes */
	uint16_t n[RECYCLE_CLASSES + 1];
	size_t bytes;
	bool registered; /* with the thread-exit key */
};

static _Thread_local struct lists tl;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static bool exit_key_ok;

static void on_thread_exit(void *arg)
{
	(void)arg;
	recycle_drain();
	tl.registered = false;
}

static void exit_key_make(void)
{
	exit_key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

/* Only a thread that keeps something needs its lists emptied when it ends. */
static bool register_thread(void)
{
	pthread_once(&exit_once, exit_key_make);
	tl.registered = exit_key_ok && pthread_setspecific(exit_key, &tl) == 0;
	return tl.registered;
}

void *recycle_alloc(size_t size)
{
	size_t k = size ? (size + RECYCLE_CLASS - 1) / RECYCLE_CLASS : 1;
	struct kept *b;

	if (k > RECYCLE_CLASSES)
		return malloc(size);
	b = tl.head[k];
	if (!b)
		return malloc(k * RECYCLE_CLASS); /* the whole class: it can come back to this list */
	tl.head[k] = b->next;
	tl.n[k]--;
	tl.bytes -= k * RECYCLE_CLASS;
	UNPOISON(block_of(b, k), k * RECYCLE_CLASS);
	return block_of(b, k);
}

void recycle_free(void *p)
{
	size_t k;
	struct kept *b;

	if (!p)
		return;
#ifdef RECYCLE_ASAN
	if (__asan_address_is_poisoned(p)) {
		fprintf(stderr, "recycle: block %p freed twice\n", p);
		__sanitizer_print_stack_trace();
		abort();
	}
#endif
	k = malloc_usable_size(p) / RECYCLE_CLASS;
	if (k == 0 || k > RECYCLE_CLASSES || tl.n[k] >= RECYCLE_PER_CLASS ||
	    tl.bytes + k * RECYCLE_CLASS > RECYCLE_BUDGET || (!tl.registered && !register_thread())) {
		free(p);
		return;
	}
	b = link_of(p, k);
	b->next = tl.head[k];
	tl.head[k] = b;
	tl.n[k]++;
	tl.bytes += k * RECYCLE_CLASS;
	POISON(p, k * RECYCLE_CLASS - sizeof(struct kept));
}

void recycle_drain(void)
{
	for (size_t k = 1; k <= RECYCLE_CLASSES; k++) {
		while (tl.head[k]) {
			struct kept *b = tl.head[k];

			tl.head[k] = b->next;
			UNPOISON(block_of(b, k), k * RECYCLE_CLASS);
			free(block_of(b, k));
		}
		tl.n[k] = 0;
	}
	tl.bytes = 0;
}

size_t recycle_kept(void)
{
	return tl.bytes;
}
