/* test_htab.c: base/htab: the bucket array doubles as entries come and stops at its maximum, every entry
 * stays findable through each doubling, removal from any place in a chain, and the shift leaves the
 * low bits of a hash alone; htab_next walks every entry once, even while freeing them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/htab.h"

struct item {
	struct htab_link link; /* first: a link found is the item */
	unsigned key;
};

static uint32_t mix(unsigned k)
{
	uint32_t h = k * 2654435761u;

	return h ^ (h >> 15);
}

static struct item *find(const struct htab *t, unsigned key)
{
	uint32_t h = mix(key);

	for (struct htab_link *l = htab_chain(t, h); l; l = l->next)
		if (l->hash == h && ((struct item *)l)->key == key)
			return (struct item *)l;
	return NULL;
}

static size_t chained(const struct htab *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n; i++)
		for (struct htab_link *l = t->v[i]; l; l = l->next)
			n++;
	return n;
}

/* Entries met by htab_next, each asserted met only once (seen: one flag per key). */
static size_t walked(const struct htab *t, unsigned char *seen)
{
	size_t n = 0;

	for (const struct htab_link *l = htab_next(t, NULL); l; l = htab_next(t, l)) {
		const struct item *it = (const struct item *)l;

		assert_int_equal(seen[it->key], 0);
		seen[it->key] = 1;
		n++;
	}
	return n;
}

static void test_grows_and_finds(void **state)
{
	enum { N = 100000 };
	struct item *items = calloc(N, sizeof(*items));
	unsigned char *seen = calloc(N, 1);
	struct htab t;

	(void)state;
	assert_non_null(items);
	assert_non_null(seen);
	assert_int_equal(htab_init(&t, 16, 1u << 14, 0), 0);
	assert_int_equal(t.n, 16);
	for (unsigned i = 0; i < N; i++) {
		items[i].key = i;
		items[i].link.hash = mix(i);
		htab_add(&t, &items[i].link);
		if (i + 1 == 1000)
			assert_int_equal(t.n, 512); /* doubled while entries were more than twice the buckets */
	}
	assert_int_equal(t.n, 1u << 14); /* then no further than max: longer chains instead */
	assert_int_equal(chained(&t), N);
	assert_int_equal(t.count, N);
	assert_int_equal(walked(&t, seen), N);
	for (unsigned i = 0; i < N; i++)
		assert_ptr_equal(find(&t, i), &items[i]);
	assert_null(find(&t, N));
	/* Removed in an order unrelated to the chains: heads, middles and tails alike. */
	for (unsigned i = 0; i < N; i += 3)
		htab_remove(&t, &items[i].link);
	for (unsigned i = 0; i < N; i++)
		assert_ptr_equal(find(&t, i), i % 3 ? &items[i] : NULL);
	assert_int_equal(chained(&t), N - (N + 2) / 3);
	assert_int_equal(t.count, N - (N + 2) / 3);
	memset(seen, 0, N);
	assert_int_equal(walked(&t, seen), N - (N + 2) / 3);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(seen[i], i % 3 ? 1 : 0);
	htab_free(&t);
	assert_null(t.v);
	free(items);
	free(seen);
}

/* A walk that frees each entry once it has the next one (ASan sees any later touch); an empty table
 * walks to nothing. */
static void test_next_frees(void **state)
{
	struct htab t;
	size_t n = 0;

	(void)state;
	assert_int_equal(htab_init(&t, 16, 64, 0), 0);
	assert_null(htab_next(&t, NULL));
	for (unsigned i = 0; i < 500; i++) {
		struct item *it = calloc(1, sizeof(*it));

		assert_non_null(it);
		it->key = i;
		it->link.hash = mix(i);
		htab_add(&t, &it->link);
	}
	for (struct htab_link *l = htab_next(&t, NULL), *next; l; l = next) {
		next = htab_next(&t, l);
		free(l);
		n++;
	}
	assert_int_equal(n, 500);
	htab_free(&t);
}

/* With shift 4 the bucket comes from bits 4 and up: hashes differing only in the low 4 bits (which
 * pick a shard elsewhere) share a chain. */
static void test_shift(void **state)
{
	struct item a = { .link.hash = 0x1230 }, b = { .link.hash = 0x123f }, c = { .link.hash = 0x1240 };
	struct htab t;

	(void)state;
	assert_int_equal(htab_init(&t, 16, 16, 4), 0);
	htab_add(&t, &a.link);
	htab_add(&t, &b.link);
	htab_add(&t, &c.link);
	assert_ptr_equal(htab_chain(&t, 0x1230), &b.link); /* b then a, newest first */
	assert_ptr_equal(b.link.next, &a.link);
	assert_ptr_equal(htab_chain(&t, 0x1240), &c.link);
	htab_remove(&t, &b.link);
	assert_ptr_equal(htab_chain(&t, 0x1230), &a.link);
	htab_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grows_and_finds),
		cmocka_unit_test(test_shift),
		cmocka_unit_test(test_next_frees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
