/* scratch.h: per-thread working memory for the large, short-lived buffers of one call (a request's
 * target set, an AOR's bindings), kept between calls instead of a malloc and free of tens of kB each
 * time, which glibc serves from the heap's top rather than its per-thread cache. */
#ifndef SIPD_BASE_SCRATCH_H
#define SIPD_BASE_SCRATCH_H

#include <stddef.h>

/* At least size bytes, not cleared, this thread's until scratch_give. Takes nest (a few at once, given
 * back in any order); past that, or past SCRATCH_MAX, it is a plain malloc. NULL when out of memory. */
void *scratch_take(size_t size);
/* Gives back what scratch_take returned (free()s it when it was a plain malloc). NULL is a no-op. */
void scratch_give(void *p);

/* Larger takes are plain mallocs, so that one odd request does not pin its buffer on the thread. */
#define SCRATCH_MAX (256u * 1024u)

#endif
