/* mem.h: reference-counted allocations with destructors, for objects that outlive one request. */
#ifndef SIPD_BASE_MEM_H
#define SIPD_BASE_MEM_H

#include <stddef.h>

typedef void (mem_destroy_h)(void *data);

/* Zeroed, refcount 1; NULL on failure (or on injected failure, see mem_fault_set). */
void *mem_zalloc(size_t size, mem_destroy_h *dh);
void *mem_ref(void *data);
/* Drops one reference; runs the destructor and frees at zero. Always returns NULL. */
void *mem_deref(void *data);
/* How many references there are now. Meaningful to an owner only once no one can take a new one
 * (the object is in no table any more): then the count only falls. */
unsigned mem_nrefs(const void *data);
/* Fault injection for tests: every Nth mem_zalloc fails (0 = never). */
void mem_fault_set(unsigned every);

#endif
