/* mem.c: refcounted allocation; the count is atomic so objects may cross worker threads. */
#include "base/mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/recycle.h"

struct mem_hdr {
	atomic_uint refs;
	mem_destroy_h *dh;
	max_align_t align[]; /* payload follows, suitably aligned */
};

static atomic_uint fault_every;
static atomic_uint fault_count;

static struct mem_hdr *hdr_of(void *data)
{
	return (struct mem_hdr *)((char *)data - offsetof(struct mem_hdr, align));
}

void mem_fault_set(unsigned every)
{
	atomic_store(&fault_every, every);
	atomic_store(&fault_count, 0);
}

void *mem_zalloc(size_t size, mem_destroy_h *dh)
{
	unsigned every = atomic_load_explicit(&fault_every, memory_order_relaxed);
	struct mem_hdr *h;

	if (every && atomic_fetch_add(&fault_count, 1) % every == every - 1)
		return NULL;
	if (size > SIZE_MAX - sizeof(*h))
		return NULL;
	/* recycled and cleared, not calloc: glibc's calloc skips the thread's cache (tcache) and takes the
	 * arena's slow path every time, and a transaction is made and freed per request. Header and data
	 * cleared apart: GCC turns a malloc followed by a memset of the same size back into calloc. */
	h = recycle_alloc(sizeof(*h) + size);
	if (!h)
		return NULL;
	memset(h, 0, sizeof(*h));
	memset(h->align, 0, size);
	atomic_init(&h->refs, 1);
	h->dh = dh;
	return h->align;
}

void *mem_ref(void *data)
{
	if (data)
		atomic_fetch_add_explicit(&hdr_of(data)->refs, 1, memory_order_relaxed);
	return data;
}

unsigned mem_nrefs(const void *data)
{
	const struct mem_hdr *h = (const struct mem_hdr *)((const char *)data - offsetof(struct mem_hdr, align));

	return atomic_load_explicit(&h->refs, memory_order_acquire);
}

void *mem_deref(void *data)
{
	struct mem_hdr *h;

	if (!data)
		return NULL;
	h = hdr_of(data);
	if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
		return NULL;
	if (h->dh)
		h->dh(data);
	recycle_free(h);
	return NULL;
}
