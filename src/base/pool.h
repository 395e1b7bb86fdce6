/* pool.h: long-lived records kept apart from short-lived allocations. Objects are carved, by size
 * class, out of 64 kB blocks mapped from the system; a block whose objects are all freed goes back.
 *
 * Why: sipd's transactions come and go by the thousand while bindings stay for an hour. From one
 * malloc heap the two interleave, and after a burst of REGISTERs the pages freed by the transactions
 * each still hold a binding: the memory never returns. From a pool they never share a page.
 * Thread-safe (a lock per size class); not for the per-message hot path. */
#ifndef SIPD_BASE_POOL_H
#define SIPD_BASE_POOL_H

#include <stddef.h>

struct pool;

int pool_new(struct pool **pp);
/* Every block is unmapped, whether its objects were freed or not. */
void pool_free(struct pool *p);
/* Zeroed memory for size bytes (any size: large ones get a mapping of their own); NULL on failure. */
void *pool_alloc(struct pool *p, size_t size);
/* Gives back what pool_alloc returned (NULL is ignored). */
void pool_release(struct pool *p, void *obj);
/* Bytes mapped from the system, for statistics and tests. */
size_t pool_mapped(struct pool *p);

#endif
