/* test_flow.c: what the proxy signs in its Record-Route. Flow tokens (src/proxy/flow.c): a token names the
 * peer it was written for, and nothing else passes: a changed address, a changed or short MAC, junk.
 * Signatures (src/proxy/rrsig.c): one holds for its Call-ID under its key, and for nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/flow.h"
#include "proxy/rrsig.h"

/* The token of peer (the value after ";flow=") into out. */
static struct slice token_of(const char *peer, char *out, size_t n)
{
	struct tp_addr a;
	struct sbuf b;

	assert_int_equal(tp_addr_parse(&a, peer, 0), 0);
	sbuf_init(&b, out, n);
	flow_token_write(&b, "flow", &a);
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

/* Keyed from a secret that outlives the process (the database's): the same secret, the same tokens (a
 * NAT'd party's dialog goes on after a restart); tokens of the key before it, or of another secret, fail. */
static void test_derived_key(void **state)
{
	static const uint8_t secret[16] = "0123456789abcdef", other[16] = "fedcba9876543210";
	char before[256], first[256], again[256];
	struct slice t0, t1, t2;
	struct tp_addr a;
	(void)state;

	t0 = token_of("192.0.2.7:5060", before, sizeof(before));
	flow_key_derive(secret, sizeof(secret));
	assert_false(flow_token_read(t0, &a));
	t1 = token_of("192.0.2.7:5060", first, sizeof(first));
	assert_true(flow_token_read(t1, &a));
	flow_key_derive(other, sizeof(other));
	assert_false(flow_token_read(t1, &a));
	flow_key_derive(secret, sizeof(secret));
	t2 = token_of("192.0.2.7:5060", again, sizeof(again));
	assert_true(t1.l == t2.l && memcmp(t1.p, t2.p, t1.l) == 0);
	assert_true(flow_token_read(t1, &a));
}

static const uint8_t key[RRSIG_KEY] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
#define CID "a84b4c76e66710@pc33.atlanta.com"

#define PIN_V4 "\n10.0.0.1:5060"
#define SG_V4 "c92cafe3ad45c0cf"

/* The first 8 bytes of SipHash-2-4-128 under key 00..0f: `openssl mac -macopt hexkey:000102030405060708090a0b0c0d0e0f
 * SIPHASH` over the Call-ID, a newline and the pin "10.0.0.1:5060" gives C92CAFE3AD45C0CF75247EFA2F79C224
 * (and the tests' sipua.py the same). */
static void test_rrsig_known(void **state)
{
	char buf[64];
	struct sbuf b;

	(void)state;
	sbuf_init(&b, buf, sizeof(buf));
	rrsig_write(&b, key, SLICE_LIT(CID), SLICE_LIT(PIN_V4));
	assert_false(b.overflow);
	assert_int_equal(b.len, 20);
	assert_memory_equal(buf, ";sg=" SG_V4, 20);
	/* nothing to sign toward: no signature */
	sbuf_init(&b, buf, sizeof(buf));
	rrsig_write(&b, key, SLICE_LIT(CID), SLICE_NULL);
	assert_int_equal(b.len, 0);
}

/* A pin is host (lower case, IPv6 brackets kept) and port as the URI wrote them; no port, none. */
static void test_rrsig_pin(void **state)
{
	char buf[RRSIG_PIN], hex[RRSIG_HEX];
	struct slice pin;

	(void)state;
	pin = rrsig_pin_of(buf, SLICE_LIT("<sip:alice@10.0.0.1:5060;transport=udp>;expires=60"));
	assert_int_equal(pin.l, sizeof(PIN_V4) - 1);
	assert_memory_equal(pin.p, PIN_V4, pin.l);
	pin = rrsig_pin_of(buf, SLICE_LIT("sip:PC33.Atlanta.COM"));
	assert_int_equal(pin.l, 18);
	assert_memory_equal(pin.p, "\npc33.atlanta.com:", 18);
	assert_true(rrsig_sign(key, SLICE_LIT(CID), pin, hex));
	assert_memory_equal(hex, "00fe8368741e2917", RRSIG_HEX);
	pin = rrsig_pin_of(buf, SLICE_LIT("<sip:[2001:DB8::1]:5070;lr>"));
	assert_true(rrsig_sign(key, SLICE_LIT(CID), pin, hex));
	assert_memory_equal(hex, "daf3f5559c77d48a", RRSIG_HEX);
	assert_null(rrsig_pin_of(buf, SLICE_LIT("<sip:alice@>")).p);
	assert_null(rrsig_pin_of(buf, SLICE_LIT("not a uri")).p);
}

static void test_rrsig_valid(void **state)
{
	uint8_t other[RRSIG_KEY];
	const struct slice pin = SLICE_LIT(PIN_V4);

	(void)state;
	memcpy(other, key, sizeof(other));
	other[15] ^= 1;
	assert_true(rrsig_valid(key, SLICE_LIT("lr;sg=" SG_V4), SLICE_LIT(CID), pin));
	assert_true(rrsig_valid(key, SLICE_LIT("transport=tcp;lr;SG=" SG_V4 ";flow=ab.cd"), SLICE_LIT(CID), pin));
	/* another peer, another port, another dialog, another key */
	assert_false(rrsig_valid(key, SLICE_LIT("lr;sg=" SG_V4), SLICE_LIT(CID), SLICE_LIT("\n10.0.0.2:5060")));
	assert_false(rrsig_valid(key, SLICE_LIT("lr;sg=" SG_V4), SLICE_LIT(CID), SLICE_LIT("\n10.0.0.1:5061")));
	assert_false(rrsig_valid(key, SLICE_LIT("lr;sg=" SG_V4), SLICE_LIT(CID), SLICE_NULL));
	assert_false(rrsig_valid(other, SLICE_LIT("lr;sg=" SG_V4), SLICE_LIT(CID), pin));
	assert_false(rrsig_valid(key, SLICE_LIT("lr;sg=" SG_V4), SLICE_LIT(CID "x"), pin));
	assert_false(rrsig_valid(key, SLICE_LIT("lr;sg=c92cafe3ad45c0ce"), SLICE_LIT(CID), pin));
	assert_false(rrsig_valid(key, SLICE_LIT("lr;sg=C92CAFE3AD45C0CF"), SLICE_LIT(CID), pin)); /* as written */
	assert_false(rrsig_valid(key, SLICE_LIT("lr;sg=c92cafe3ad45c0c"), SLICE_LIT(CID), pin));
	assert_false(rrsig_valid(key, SLICE_LIT("lr;sg=" SG_V4 "1"), SLICE_LIT(CID), pin));
	assert_false(rrsig_valid(key, SLICE_LIT("lr;sg"), SLICE_LIT(CID), pin));
	assert_false(rrsig_valid(key, SLICE_LIT("lr"), SLICE_LIT(CID), pin));
	assert_false(rrsig_valid(key, SLICE_NULL, SLICE_LIT(CID), pin));
	assert_false(rrsig_valid(key, SLICE_LIT("lr;xsg=" SG_V4), SLICE_LIT(CID), pin));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_derived_key),
		cmocka_unit_test(test_rrsig_known),
		cmocka_unit_test(test_rrsig_pin),
		cmocka_unit_test(test_rrsig_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
