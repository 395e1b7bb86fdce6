/* test_flow.c: flow tokens (src/proxy/flow.c): a token names the peer it was written for, and nothing
 * else passes: a changed address, a changed or short MAC, junk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/flow.h"

/* The token of peer (the value after ";flow=") into out. */
static struct slice token_of(const char *peer, char *out, size_t n)
{
	struct tp_addr a;
	struct sbuf b;

	assert_int_equal(tp_addr_parse(&a, peer, 0), 0);
	sbuf_init(&b, out, n);
	flow_token_write(&b, &a);
	assert_false(b.overflow);
	assert_true(b.len > 6);
	assert_memory_equal(out, ";flow=", 6);
	return slice_make(out + 6, b.len - 6);
}

static void test_roundtrip(void **state)
{
	static const char *const peers[] = { "127.0.0.1:49152", "192.0.2.7:5060", "[::1]:40000", "[2001:db8::5]:5061" };
	char buf[256], back[64];
	(void)state;

	for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
		struct slice t = token_of(peers[i], buf, sizeof(buf));
		struct tp_addr a, want;

		assert_true(flow_token_read(t, &a));
		assert_int_equal(tp_addr_parse(&want, peers[i], 0), 0);
		assert_true(tp_addr_eq(&a, &want));
		assert_string_equal(tp_addr_str(&a, back, sizeof(back)), peers[i]);
	}
}

static void test_tampered(void **state)
{
	char buf[256], copy[256];
	struct tp_addr a;
	struct slice t;
	(void)state;

	t = token_of("127.0.0.1:49152", buf, sizeof(buf));
	/* another address ("31" is '1', "32" '2': 227.0.0.1): the MAC no longer holds */
	memcpy(copy, t.p, t.l);
	copy[1] = copy[1] == '1' ? '2' : '1';
	assert_false(flow_token_read(slice_make(copy, t.l), &a));
	/* a digit of the MAC changed */
	memcpy(copy, t.p, t.l);
	copy[t.l - 1] = copy[t.l - 1] == '0' ? '1' : '0';
	assert_false(flow_token_read(slice_make(copy, t.l), &a));
	/* MAC cut short, MAC missing, no dot, odd hex, not hex, empty */
	assert_false(flow_token_read(slice_make(t.p, t.l - 1), &a));
	assert_false(flow_token_read(slice_make(t.p, (size_t)((const char *)memchr(t.p, '.', t.l) - t.p) + 1), &a));
	assert_false(flow_token_read(slice_cstr("3132372e302e302e313a35303630"), &a));
	assert_false(flow_token_read(slice_cstr("313.0123456789abcdef"), &a));
	assert_false(flow_token_read(slice_cstr("zz.0123456789abcdef"), &a));
	assert_false(flow_token_read(SLICE_NULL, &a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tampered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
