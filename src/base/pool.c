/* pool.c: size classes over 64 kB blocks mapped aligned to their size, so that an object's block is
 * its address rounded down. A block carves objects lazily (a bump pointer, then a free list), so pages
 * never used are never touched; a block that empties goes back to the system unless it is the last
 * one of its class with room. Objects over the largest class get an aligned mapping of their own. */
#include "base/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Under a leak checker, blocks are roots: objects that only a pool object points to (a hash chain's
 * first entry, from a bucket array) are reachable, not leaks. LeakSanitizer scans no mapping by itself. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define POOL_LSAN 1
#endif
#endif
#ifdef POOL_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define BLOCK ((size_t)64 * 1024)
#define HEADER 64 /* sizeof(struct block), rounded up: objects stay 16-byte aligned */

static const size_t class_size[] = { 64, 128, 192, 256, 320, 384, 512, 640, 768, 1024, 1536, 2048, 3072, 4096 };
#define NCLASS (sizeof(class_size) / sizeof(class_size[0]))

struct pclass;

struct block {
	struct block *next, *prev; /* in its class's list of blocks with room */
	struct pclass *cls;        /* NULL: one large object */
	size_t map_len;
	void *free;                /* objects given back, linked through their first word */
	char *bump, *end;          /* never handed out yet: [bump, end) */
	unsigned used;
	bool listed;
};

_Static_assert(sizeof(struct block) <= HEADER, "block header grew past HEADER");

struct pclass {
	pthread_mutex_t lock;
	size_t size;
	struct block *room; /* blocks with a free object */
};

struct pool {
	struct pclass cls[NCLASS];
	atomic_size_t mapped;
	pthread_mutex_t all_lock;   /* the list of every block, for pool_free */
	struct block **all;
	size_t nall, capall;
};

/* len bytes (a multiple of BLOCK) at an address that is a multiple of BLOCK. */
static void *map_aligned(size_t len)
{
	size_t over = len + BLOCK, head, tail;
	char *p = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + BLOCK - 1) & ~(uintptr_t)(BLOCK - 1);
	head = a - (uintptr_t)p;
	tail = over - head - len;
	if (head)
		munmap(p, head);
	if (tail)
		munmap((char *)a + len, tail);
	return (void *)a;
}

static void *block_map(size_t len)
{
	void *b = map_aligned(len);

#ifdef POOL_LSAN
	if (b)
		__lsan_register_root_region(b, len);
#endif
	return b;
}

static void block_unmap(void *b, size_t len)
{
#ifdef POOL_LSAN
	__lsan_unregister_root_region(b, len);
#endif
	munmap(b, len);
}

static struct block *block_of(const void *obj)
{
	return (struct block *)((uintptr_t)obj & ~(uintptr_t)(BLOCK - 1));
}

/* Every block is remembered so that pool_free can unmap what callers never released. */
static int track(struct pool *p, struct block *b)
{
	int err = 0;

	pthread_mutex_lock(&p->all_lock);
	if (p->nall == p->capall) {
		size_t cap = p->capall ? p->capall * 2 : 64;
		struct block **n = realloc(p->all, cap * sizeof(*n));

		if (!n)
			err = ENOMEM;
		else {
			p->all = n;
			p->capall = cap;
		}
	}
	if (!err)
		p->all[p->nall++] = b;
	pthread_mutex_unlock(&p->all_lock);
	return err;
}

static void untrack_unmap(struct pool *p, struct block *b)
{
	pthread_mutex_lock(&p->all_lock);
	for (size_t i = 0; i < p->nall; i++) {
		if (p->all[i] == b) {
			p->all[i] = p->all[--p->nall];
			break;
		}
	}
	pthread_mutex_unlock(&p->all_lock);
	atomic_fetch_sub(&p->mapped, b->map_len);
	block_unmap(b, b->map_len);
}

static struct block *block_new(struct pool *p, struct pclass *c, size_t len)
{
	struct block *b = block_map(len);

	if (!b)
		return NULL;
	b->cls = c;
	b->map_len = len;
	b->bump = (char *)b + HEADER;
	b->end = (char *)b + len;
	if (track(p, b)) {
		block_unmap(b, len);
		return NULL;
	}
	atomic_fetch_add(&p->mapped, len);
	return b;
}

static void room_add(struct pclass *c, struct block *b)
{
	b->prev = NULL;
	b->next = c->room;
	if (c->room)
		c->room->prev = b;
	c->room = b;
	b->listed = true;
}

static void room_remove(struct pclass *c, struct block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		c->room = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->next = b->prev = NULL;
	b->listed = false;
}

static bool block_full(const struct block *b, size_t size)
{
	return !b->free && (size_t)(b->end - b->bump) < size;
}

int pool_new(struct pool **pp)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (!p)
		return ENOMEM;
	for (size_t i = 0; i < NCLASS; i++) {
		pthread_mutex_init(&p->cls[i].lock, NULL);
		p->cls[i].size = class_size[i];
	}
	pthread_mutex_init(&p->all_lock, NULL);
	atomic_init(&p->mapped, 0);
	*pp = p;
	return 0;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nall; i++)
		block_unmap(p->all[i], p->all[i]->map_len);
	free(p->all);
	for (size_t i = 0; i < NCLASS; i++)
		pthread_mutex_destroy(&p->cls[i].lock);
	pthread_mutex_destroy(&p->all_lock);
	free(p);
}

static void *alloc_large(struct pool *p, size_t size)
{
	size_t len = (HEADER + size + BLOCK - 1) / BLOCK * BLOCK;
	struct block *b;

	if (size > SIZE_MAX / 2)
		return NULL;
	b = block_new(p, NULL, len);
	return b ? (char *)b + HEADER : NULL; /* fresh mappings are zero */
}

void *pool_alloc(struct pool *p, size_t size)
{
	struct pclass *c = NULL;
	struct block *b;
	void *obj;

	for (size_t i = 0; i < NCLASS && !c; i++)
		if (size <= class_size[i])
			c = &p->cls[i];
	if (!c)
		return alloc_large(p, size);
	pthread_mutex_lock(&c->lock);
	b = c->room;
	if (!b) {
		b = block_new(p, c, BLOCK);
		if (!b) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		room_add(c, b);
	}
	if (b->free) {
		obj = b->free;
		memcpy(&b->free, obj, sizeof(void *));
	} else {
		obj = b->bump;
		b->bump += c->size;
	}
	b->used++;
	if (block_full(b, c->size))
		room_remove(c, b);
	pthread_mutex_unlock(&c->lock);
	memset(obj, 0, c->size);
	return obj;
}

void pool_release(struct pool *p, void *obj)
{
	struct block *b;
	struct pclass *c;

	if (!obj)
		return;
	b = block_of(obj);
	c = b->cls;
	if (!c) {
		untrack_unmap(p, b);
		return;
	}
	pthread_mutex_lock(&c->lock);
	memcpy(obj, &b->free, sizeof(void *));
	b->free = obj;
	b->used--;
	if (!b->listed)
		room_add(c, b);
	/* an empty block goes back, unless it is the only one with room (no map/unmap ping-pong) */
	if (b->used == 0 && (c->room != b || b->next)) {
		room_remove(c, b);
		pthread_mutex_unlock(&c->lock);
		untrack_unmap(p, b);
		return;
	}
	pthread_mutex_unlock(&c->lock);
}

size_t pool_mapped(struct pool *p)
{
	return atomic_load(&p->mapped);
}
