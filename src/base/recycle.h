/* recycle.h: per-thread free lists for the short-lived blocks of a request (transactions, copies of
 * messages, pending answers), handed out again without going back to malloc.
 *
 * Why: glibc's own per-thread cache keeps 7 blocks of a size. A group commit ends about a hundred
 * registrations in one turn of a worker's loop, whose frees overflow it into the arena; the next
 * requests' mallocs then take the arena's slow path (150 to 400 instructions each). Here a thread
 * keeps up to RECYCLE_PER_CLASS blocks of each 64-byte size class, RECYCLE_BUDGET bytes in all.
 *
 * The blocks are malloc's, unchanged: recycle_free takes any pointer malloc returned (it learns the
 * size from malloc_usable_size), and free may be called on what recycle_alloc returned. A block can
 * be freed on another thread than the one that took it: it joins that thread's lists. A thread's
 * lists are emptied when it exits. Under AddressSanitizer a kept block is poisoned: a use after
 * recycle_free is reported as one after free would be. */
#ifndef SIPD_BASE_RECYCLE_H
#define SIPD_BASE_RECYCLE_H

#include <stddef.h>

#define RECYCLE_CLASS 64          /* bytes per size class */
#define RECYCLE_CLASSES 32        /* classes of 64 to 2048 bytes; larger blocks are not kept */
#define RECYCLE_PER_CLASS 256     /* blocks kept per class and thread */
#define RECYCLE_BUDGET (1u << 20) /* bytes kept per thread, all classes */

/* At least size bytes (malloc's alignment); NULL on failure. */
void *recycle_alloc(size_t size);
/* Keeps p (a block from malloc or recycle_alloc; NULL is ignored) for this thread's next
 * recycle_alloc of its class, or frees it when the lists are full. */
void recycle_free(void *p);
/* Frees every block this thread keeps (done at thread exit by itself). */
void recycle_drain(void);
/* Bytes this thread keeps, for tests. */
size_t recycle_kept(void);

#endif
