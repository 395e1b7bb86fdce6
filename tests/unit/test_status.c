/* test_status.c: the response-code table against the seed's list and RFC 3261's reason phrases. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/status.h"

struct expect {
	unsigned code;
	const char *reason;
};

/* Every code in the seed, with the phrase RFC 3261 21 gives it (seed typos "181*" = 183, "818" = 181). */
static const struct expect seed_codes[] = {
	{ 100, "Trying" },
	{ 180, "Ringing" },
	{ 181, "Call Is Being Forwarded" },
	{ 182, "Queued" },
	{ 183, "Session Progress" },
	{ 200, "OK" },
	{ 300, "Multiple Choices" },
	{ 301, "Moved Permanently" },
	{ 302, "Moved Temporarily" },
	{ 305, "Use Proxy" },
	{ 380, "Alternative Service" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 402, "Payment Required" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" },
	{ 407, "Proxy Authentication Required" },
	{ 408, "Request Timeout" },
	{ 410, "Gone" },
	{ 413, "Request Entity Too Large" },
	{ 414, "Request-URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 416, "Unsupported URI Scheme" },
	{ 420, "Bad Extension" },
	{ 421, "Extension Required" },
	{ 423, "Interval Too Brief" },
	{ 480, "Temporarily Unavailable" },
	{ 481, "Call/Transaction Does Not Exist" },
	{ 482, "Loop Detected" },
	{ 483, "Too Many Hops" },
	{ 484, "Address Incomplete" },
	{ 485, "Ambiguous" },
	{ 486, "Busy Here" },
	{ 487, "Request Terminated" },
	{ 488, "Not Acceptable Here" },
	{ 491, "Request Pending" },
	{ 493, "Undecipherable" },
	{ 500, "Server Internal Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Server Time-out" },
	{ 505, "Version Not Supported" },
	{ 513, "Message Too Large" },
	{ 600, "Busy Everywhere" },
	{ 603, "Decline" },
	{ 604, "Does Not Exist Anywhere" },
	{ 606, "Not Acceptable" },
};

/* Extension codes, with the phrases their RFCs register. */
static const struct expect ext_codes[] = {
	{ 199, "Early Dialog Terminated" },
	{ 202, "Accepted" },
	{ 204, "No Notification" },
	{ 412, "Conditional Request Failed" },
	{ 417, "Unknown Resource-Priority" },
	{ 422, "Session Interval Too Small" },
	{ 424, "Bad Location Information" },
	{ 428, "Use Identity Header" },
	{ 429, "Provide Referrer Identity" },
	{ 430, "Flow Failed" },
	{ 433, "Anonymity Disallowed" },
	{ 436, "Bad Identity Info" },
	{ 437, "Unsupported Credential" },
	{ 438, "Invalid Identity Header" },
	{ 439, "First Hop Lacks Outbound Support" },
	{ 440, "Max-Breadth Exceeded" },
	{ 469, "Bad Info Package" },
	{ 470, "Consent Needed" },
	{ 489, "Bad Event" },
	{ 494, "Security Agreement Required" },
	{ 555, "Push Notification Service Not Supported" },
	{ 580, "Precondition Failure" },
	{ 607, "Unwanted" },
	{ 608, "Rejected" },
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void check_codes(const struct expect *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct sip_status *st = sip_status_find(e[i].code);

		if (!st)
			fail_msg("code %u missing", e[i].code);
		assert_int_equal(st->code, e[i].code);
		assert_string_equal(st->reason, e[i].reason);
		assert_ptr_equal(sip_status_lookup(e[i].code), st);
		assert_string_equal(sip_status_reason(e[i].code), e[i].reason);
	}
}

static void test_seed_codes(void **state)
{
	(void)state;
	check_codes(seed_codes, ARRAY_LEN(seed_codes));
}

static void test_extension_codes(void **state)
{
	(void)state;
	check_codes(ext_codes, ARRAY_LEN(ext_codes));
	assert_string_equal(sip_status_find(422)->headers, "Min-SE");
	assert_string_equal(sip_status_find(199)->rfc, "RFC 6228");
	assert_string_equal(sip_status_find(607)->rfc, "RFC 8197");
	assert_string_equal(sip_status_find(608)->rfc, "RFC 8688");
}

static void test_sorted_unique_complete(void **state)
{
	size_t n = 0;
	const struct sip_status *all = sip_status_all(&n);

	(void)state;
	assert_non_null(all);
	assert_int_equal(n, ARRAY_LEN(seed_codes) + ARRAY_LEN(ext_codes));
	for (size_t i = 0; i < n; i++) {
		const struct sip_status *st = &all[i];

		if (i > 0 && all[i - 1].code >= st->code)
			fail_msg("entry %zu (%u) not after %u", i, st->code, all[i - 1].code);
		assert_true(st->code >= 100 && st->code <= 699);
		assert_non_null(st->reason);
		assert_non_null(st->rfc);
		assert_non_null(st->headers);
		assert_non_null(st->en);
		assert_non_null(st->zh);
		assert_true(st->reason[0] != '\0');
		assert_true(strncmp(st->rfc, "RFC ", 4) == 0);
		assert_true(strlen(st->en) > 20);
		assert_true(strlen(st->zh) > 20);
		assert_null(strchr(st->en, '\n'));
		assert_null(strchr(st->zh, '\n'));
		/* the find must land on every entry */
		assert_ptr_equal(sip_status_find(st->code), st);
	}
	/* and on nothing else, whatever the number */
	for (unsigned code = 0; code <= 1000; code++) {
		bool listed = false;

		for (size_t i = 0; i < n && !listed; i++)
			listed = all[i].code == code;
		if (listed != (sip_status_find(code) != NULL))
			fail_msg("sip_status_find(%u): %s", code, listed ? "not found" : "found");
	}
	assert_null(sip_status_find(UINT_MAX));
}

static void test_headers(void **state)
{
	(void)state;
	assert_string_equal(sip_status_find(401)->headers, "WWW-Authenticate");
	assert_string_equal(sip_status_find(407)->headers, "Proxy-Authenticate");
	assert_string_equal(sip_status_find(405)->headers, "Allow");
	assert_string_equal(sip_status_find(415)->headers, "Accept, Accept-Encoding, Accept-Language");
	assert_string_equal(sip_status_find(420)->headers, "Unsupported");
	assert_string_equal(sip_status_find(421)->headers, "Require");
	assert_string_equal(sip_status_find(423)->headers, "Min-Expires");
	assert_string_equal(sip_status_find(485)->headers, "Contact");
	assert_string_equal(sip_status_find(503)->headers, "Retry-After");
	assert_string_equal(sip_status_find(606)->headers, "Warning");
	assert_string_equal(sip_status_find(487)->headers, "");
	assert_string_equal(sip_status_find(487)->rfc, "RFC 3261 21.4.25");
	for (unsigned c = 300; c <= 305; c++)
		if (sip_status_find(c))
			assert_string_equal(sip_status_find(c)->headers, "Contact");
}

static void test_unknown_falls_back(void **state)
{
	(void)state;
	/* RFC 3261 8.1.3.2: an unknown final code is its class's x00, an unknown provisional one 183 */
	assert_null(sip_status_find(499));
	assert_int_equal(sip_status_lookup(499)->code, 400);
	assert_string_equal(sip_status_reason(499), "Bad Request");
	assert_int_equal(sip_status_lookup(150)->code, 183); /* an unknown provisional one is 183 */
	assert_int_equal(sip_status_lookup(101)->code, 183);
	assert_int_equal(sip_status_lookup(299)->code, 200);
	assert_int_equal(sip_status_lookup(399)->code, 300);
	assert_int_equal(sip_status_lookup(599)->code, 500);
	assert_int_equal(sip_status_lookup(699)->code, 600);
	for (unsigned c = 100; c <= 699; c++)
		assert_non_null(sip_status_lookup(c));

	assert_null(sip_status_lookup(0));
	assert_null(sip_status_lookup(99));
	assert_null(sip_status_lookup(700));
	assert_null(sip_status_lookup(999));
	assert_null(sip_status_find(0));
	assert_null(sip_status_find(70000));
	assert_string_equal(sip_status_reason(99), "Unknown");
	assert_string_equal(sip_status_reason(700), "Unknown");
}

static void test_classes(void **state)
{
	(void)state;
	assert_int_equal(sip_status_class(99), 0);
	assert_int_equal(sip_status_class(100), 1);
	assert_int_equal(sip_status_class(199), 1);
	assert_int_equal(sip_status_class(200), 2);
	assert_int_equal(sip_status_class(302), 3);
	assert_int_equal(sip_status_class(487), 4);
	assert_int_equal(sip_status_class(503), 5);
	assert_int_equal(sip_status_class(699), 6);
	assert_int_equal(sip_status_class(700), 0);

	assert_string_equal(sip_status_class_name(183), "Provisional");
	assert_string_equal(sip_status_class_name(200), "Success");
	assert_string_equal(sip_status_class_name(302), "Redirection");
	assert_string_equal(sip_status_class_name(404), "Client Error");
	assert_string_equal(sip_status_class_name(503), "Server Error");
	assert_string_equal(sip_status_class_name(603), "Global Failure");
	assert_string_equal(sip_status_class_name(42), "Unknown");
	assert_string_equal(sip_status_class_name(700), "Unknown");
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Runs sip_status_explain into a memory stream; returns its result, output in *out (caller frees). */
static int explain_to_string(unsigned code, char **out)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	int err;

	assert_non_null(f);
	err = sip_status_explain(f, code);
	assert_int_equal(fclose(f), 0);
	return err;
}

static void test_explain(void **state)
{
	char *buf = NULL;

	(void)state;
	assert_int_equal(explain_to_string(503, &buf), 0);
	assert_non_null(strstr(buf, "503 Service Unavailable  (5xx Server Error; RFC 3261 21.5.4)\n"));
	assert_non_null(strstr(buf, "Headers: Retry-After\n"));
	assert_non_null(strstr(buf, "\nEN: "));
	assert_non_null(strstr(buf, "\nZH: "));
	free(buf);

	assert_int_equal(explain_to_string(487, &buf), 0);
	assert_true(starts_with(buf, "487 Request Terminated  (4xx Client Error; RFC 3261 21.4.25)\nHeaders: -\nEN: "));
	free(buf);

	assert_int_equal(explain_to_string(499, &buf), 0);
	assert_true(starts_with(buf, "499 is not a registered response code"));
	assert_non_null(strstr(buf, "\n400 Bad Request  (4xx Client Error; RFC 3261 21.4.1)\n"));
	free(buf);

	buf = NULL;
	assert_int_equal(explain_to_string(999, &buf), ENOENT);
	assert_true(buf == NULL || buf[0] == '\0');
	free(buf);

	buf = NULL;
	assert_int_equal(explain_to_string(99, &buf), ENOENT);
	free(buf);

	assert_int_equal(sip_status_explain(NULL, 200), EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_codes),
		cmocka_unit_test(test_extension_codes),
		cmocka_unit_test(test_sorted_unique_complete),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_unknown_falls_back),
		cmocka_unit_test(test_classes),
		cmocka_unit_test(test_explain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
