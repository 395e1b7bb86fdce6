/* test_slice.c: base/slice: the hashes (case folding that agrees with slice_caseeq, every byte and the
 * length counted, a spread good enough for the tables that use the low bits) and the word-wise lowering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/slice.h"

static void test_casehash_agrees_with_caseeq(void **state)
{
	const char *pairs[][2] = { { "Example.COM", "example.com" }, { "a", "A" }, { "", "" },
				   { "z9hG4bK-Branch-0123456789", "Z9HG4BK-branch-0123456789" },
				   { "1234567", "1234567" }, { "abcdefgh", "ABCDEFGH" }, { "abcdefghi", "ABCDEFGHI" } };

	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct slice a = slice_cstr(pairs[i][0]), b = slice_cstr(pairs[i][1]);

		assert_true(slice_caseeq(a, b));
		assert_int_equal(slice_casehash(a, 7), slice_casehash(b, 7));
	}
	assert_int_not_equal(slice_hash(SLICE_LIT("abc"), 0), slice_hash(SLICE_LIT("ABC"), 0));
}

/* Case-insensitive equality, ASCII only, every byte counted (a NUL too) */
static void test_caseeq(void **state)
{
	(void)state;
	assert_true(slice_caseeq(SLICE_LIT("Branch"), SLICE_LIT("bRANCH")));
	assert_true(slice_caseeq(SLICE_LIT(""), SLICE_LIT("")));
	assert_false(slice_caseeq(SLICE_LIT("branch"), SLICE_LIT("branc")));
	assert_false(slice_caseeq(SLICE_LIT("a\0x"), SLICE_LIT("a\0y")));
	assert_false(slice_caseeq(SLICE_LIT("["), SLICE_LIT("{"))); /* differ by 0x20, not letters */
	assert_false(slice_caseeq(SLICE_LIT("@"), SLICE_LIT("`")));
	assert_true(slice_caseeq_cstr(SLICE_LIT("TRANSPORT"), "transport"));
	assert_true(slice_caseeq_cstr(SLICE_LIT(""), ""));
	assert_false(slice_caseeq_cstr(SLICE_LIT("lr"), "l"));
	assert_false(slice_caseeq_cstr(SLICE_LIT("l"), "lr"));
	assert_false(slice_caseeq_cstr(slice_make("lr", 2), "")); /* "lr" is not the empty name */
	assert_false(slice_caseeq_cstr(SLICE_LIT("l\0"), "l"));
	assert_false(slice_caseeq_cstr(SLICE_LIT("\xc4"), "\xe4")); /* no locale folding */
}

static void test_put_hex(void **state)
{
	char buf[20];

	(void)state;
	memset(buf, '.', sizeof(buf));
	slice_put_hex(buf, 0x0123456789abcdefull, 16);
	assert_memory_equal(buf, "0123456789abcdef.", 17); /* no terminator written */
	slice_put_hex(buf, 0xdeadbeef0000002aull, 8);    /* the low 8 digits only */
	assert_memory_equal(buf, "0000002a89abcdef", 16);
}

/* Every byte value at every offset of every length up to 24 (the word loop, its tail, both): A-Z lowered,
 * every other byte (0x80 up too) left as it is, nothing written past l. */
static void test_lower_copy(void **state)
{
	char src[32], dst[32];

	(void)state;
	for (int c = 0; c < 256; c++)
		for (size_t l = 0; l <= 24; l++)
			for (size_t at = 0; at < l; at++) {
				memset(src, 'Q', sizeof(src));
				memset(dst, '#', sizeof(dst));
				src[at] = (char)c;
				slice_lower_copy(dst, src, l);
				for (size_t i = 0; i < l; i++) {
					unsigned char in = (unsigned char)src[i];

					assert_int_equal((unsigned char)dst[i], in >= 'A' && in <= 'Z' ? in + 32 : in);
				}
				assert_int_equal(dst[l], '#');
			}
	memcpy(src, "Hello-WORLD.Example.COM", 24); /* in place */
	slice_lower_copy(src, src, 23);
	assert_string_equal(src, "hello-world.example.com");
}

static void test_hash_counts_every_byte(void **state)
{
	char buf[40];

	(void)state;
	/* trailing zero bytes and the seed change the hash; so does each byte of a long key */
	assert_int_not_equal(slice_hash(slice_make("a\0", 1), 0), slice_hash(slice_make("a\0", 2), 0));
	assert_int_not_equal(slice_hash(SLICE_LIT("call-id"), 1), slice_hash(SLICE_LIT("call-id"), 2));
	memset(buf, 'x', sizeof(buf));
	uint32_t base = slice_hash(slice_make(buf, sizeof(buf)), 0);

	for (size_t i = 0; i < sizeof(buf); i++) {
		buf[i] = 'y';
		assert_int_not_equal(slice_hash(slice_make(buf, sizeof(buf)), 0), base);
		buf[i] = 'x';
	}
}

/* 64k keys that differ in one counter, into 1024 buckets by the low bits: none badly overfull. */
static void test_hash_spread(void **state)
{
	enum { N = 65536, B = 1024 };
	static unsigned count[B];
	unsigned worst = 0;

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		char key[48];
		int l = snprintf(key, sizeof(key), "z9hG4bK-%u@192.0.2.1", i);

		count[slice_hash(slice_make(key, (size_t)l), 0) % B]++;
	}
	for (unsigned b = 0; b < B; b++)
		if (count[b] > worst)
			worst = count[b];
	assert_true(worst < 2 * N / B); /* 64 expected per bucket */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caseeq),
		cmocka_unit_test(test_put_hex),
		cmocka_unit_test(test_lower_copy),
		cmocka_unit_test(test_casehash_agrees_with_caseeq),
		cmocka_unit_test(test_hash_counts_every_byte),
		cmocka_unit_test(test_hash_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
