/* test_siphash.c: base/siphash against the specification's first test vector and against OpenSSL's
 * EVP_MAC "SIPHASH" (128-bit output, 2 and 4 rounds): every message length from 0 to 200 bytes, every
 * split of the message into its two pieces for the short ones, random keys; and digest_mac, which
 * nonces and Record-Route signatures use, gives the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "auth/digest.h"
#include "base/siphash.h"

/* OpenSSL's SipHash-2-4-128 of msg, the oracle. */
static void openssl_siphash(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t out[16])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	EVP_MAC_CTX *ctx;
	size_t size = 16, outl = 0;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end() };

	assert_non_null(mac);
	ctx = EVP_MAC_CTX_new(mac);
	assert_non_null(ctx);
	assert_true(EVP_MAC_init(ctx, key, 16, params));
	assert_true(len == 0 || EVP_MAC_update(ctx, msg, len));
	assert_true(EVP_MAC_final(ctx, out, &outl, 16));
	assert_int_equal(outl, 16);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}

/* The reference implementation's vectors_sip128[0]: key 00 01 .. 0f, the empty message. */
static void test_reference_vector(void **state)
{
	static const uint8_t want[16] = { 0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
					  0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93 };
	uint8_t key[16], out[16];

	(void)state;
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	siphash128(key, NULL, 0, NULL, 0, out);
	assert_memory_equal(out, want, 16);
}

/* Key 00..0f, message 00 01 .. (len-1), as the reference vectors are built: every length to 200, the
 * message whole in a, whole in b, and cut in the middle. */
static void test_every_length_matches_openssl(void **state)
{
	uint8_t key[16], msg[200], want[16], out[16];

	(void)state;
	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	for (size_t len = 0; len <= sizeof(msg); len++) {
		openssl_siphash(key, msg, len, want);
		siphash128(key, msg, len, NULL, 0, out);
		assert_memory_equal(out, want, 16);
		siphash128(key, NULL, 0, msg, len, out);
		assert_memory_equal(out, want, 16);
		siphash128(key, msg, len / 2, msg + len / 2, len - len / 2, out);
		assert_memory_equal(out, want, 16);
	}
}

/* Random keys and bytes, every split point of messages up to 40 bytes (a nonce's MAC input is 16
 * bytes and a realm, a Record-Route signature's a Call-ID and a few bytes more). */
static void test_every_split_random_keys(void **state)
{
	uint8_t key[16], msg[40], want[16], out[16];

	(void)state;
	for (int round = 0; round < 20; round++) {
		assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
		assert_int_equal(RAND_bytes(msg, sizeof(msg)), 1);
		for (size_t len = 0; len <= sizeof(msg); len++) {
			openssl_siphash(key, msg, len, want);
			for (size_t cut = 0; cut <= len; cut++) {
				siphash128(key, msg, cut, msg + cut, len - cut, out);
				assert_memory_equal(out, want, 16);
			}
		}
	}
}

/* digest_mac is this function over its two slices: the nonces of a sipd from before the change verify. */
static void test_digest_mac_is_siphash(void **state)
{
	uint8_t key[DIGEST_MAC_KEY], head[16], want[16], mac[DIGEST_MAC_LEN], joined[64];
	const char *realm = "sip.example.com";
	size_t rl = strlen(realm);

	(void)state;
	assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
	assert_int_equal(RAND_bytes(head, sizeof(head)), 1);
	memcpy(joined, head, 16);
	memcpy(joined + 16, realm, rl);
	openssl_siphash(key, joined, 16 + rl, want);
	assert_true(digest_mac(key, slice_make((const char *)head, 16), slice_make(realm, rl), mac));
	assert_memory_equal(mac, want, 16);
	/* a different key, a different MAC */
	key[0] ^= 1;
	assert_true(digest_mac(key, slice_make((const char *)head, 16), slice_make(realm, rl), mac));
	assert_memory_not_equal(mac, want, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_vector),
		cmocka_unit_test(test_every_length_matches_openssl),
		cmocka_unit_test(test_every_split_random_keys),
		cmocka_unit_test(test_digest_mac_is_siphash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
