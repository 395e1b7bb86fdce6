/* test_registrar.c: the address of record of a To URI (RFC 3261 10.3 step 5). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registrar/registrar.h"
#include "sip/uri.h"

/* registrar_aor of the URI text, into out (n bytes); false when refused. */
static bool aor_of(const char *uri, char *out, size_t n)
{
	struct sip_uri u;

	assert_true(sip_uri_parse(&u, slice_cstr(uri)) != EBADMSG);
	return registrar_aor(&u, out, n);
}

static void test_aor_canonical(void **state)
{
	char aor[128];

	(void)state;
	/* port, parameters and headers dropped; the host in lower case, the user as it is */
	assert_true(aor_of("sip:Alice@Example.COM:5062;transport=tcp?subject=x", aor, sizeof(aor)));
	assert_string_equal(aor, "sip:Alice@example.com");
	/* escapes in the user part undone */
	assert_true(aor_of("sip:al%69ce@example.com", aor, sizeof(aor)));
	assert_string_equal(aor, "sip:alice@example.com");
	assert_true(aor_of("sips:bob@[2001:DB8::1]", aor, sizeof(aor)));
	assert_string_equal(aor, "sips:bob@[2001:db8::1]");
	/* RFC 4475 3.1.1.4: a NUL in the user is an address of record too, and not cut short there; a
	 * percent sign stays escaped as well, so that no two users share a key */
	assert_true(aor_of("sip:null-%00-null@example.com", aor, sizeof(aor)));
	assert_string_equal(aor, "sip:null-%00-null@example.com");
	assert_true(aor_of("sip:null-%2500-null@example.com", aor, sizeof(aor)));
	assert_string_equal(aor, "sip:null-%2500-null@example.com");
	assert_true(aor_of("sip:%00%00@example.com", aor, sizeof(aor)));
	assert_string_equal(aor, "sip:%00%00@example.com");
}

static void test_aor_refused(void **state)
{
	char aor[128];

	(void)state;
	assert_false(aor_of("sip:example.com", aor, sizeof(aor)));         /* no user */
	assert_false(aor_of("tel:+15551234567", aor, sizeof(aor)));        /* not sip/sips */
	/* exactly fits: "sip:" + "abc" + "@" + "x.org" + NUL = 14 bytes */
	assert_true(aor_of("sip:abc@x.org", aor, 14));
	assert_string_equal(aor, "sip:abc@x.org");
	assert_false(aor_of("sip:abc@x.org", aor, 13));
	assert_false(aor_of("sip:abcdef@x.org", aor, 14));
	/* an escaped octet takes three: "sip:" + "a%00" + "@" + "x.org" + NUL = 15 bytes */
	assert_true(aor_of("sip:a%00@x.org", aor, 15));
	assert_false(aor_of("sip:a%00@x.org", aor, 14));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aor_canonical),
		cmocka_unit_test(test_aor_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
