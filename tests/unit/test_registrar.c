/* test_registrar.c: the address of record of a To URI (RFC 3261 10.3 step 5); which bindings the NAT
 * keep-alives ping, and the OPTIONS they send. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "registrar/natping.h"
#include "registrar/registrar.h"
#include "sip/msg.h"
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
	/* a fully qualified host ends in a dot that names the same domain (RFC 3261 19.1.4) */
	assert_true(aor_of("sip:bob@Phones.EXAMPLE.org.", aor, sizeof(aor)));
	assert_string_equal(aor, "sip:bob@phones.example.org");
	assert_true(aor_of("sip:bob@[::FFFF:192.0.2.1]", aor, sizeof(aor)));
	assert_string_equal(aor, "sip:bob@192.0.2.1");
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
	/* a user part of 127 bytes as written is an AOR, one of 128 is not, plain or escaped */
	{
		char uri[300], big[400];

		snprintf(uri, sizeof(uri), "sip:%0127d@x.org", 0);
		assert_true(aor_of(uri, big, sizeof(big)));
		assert_int_equal(strlen(big), 4 + 127 + 6);
		snprintf(uri, sizeof(uri), "sip:%0128d@x.org", 0);
		assert_false(aor_of(uri, big, sizeof(big)));
		snprintf(uri, sizeof(uri), "sip:%%41%0124d@x.org", 0); /* escaped: 127 bytes as written */
		assert_true(aor_of(uri, big, sizeof(big)));
		assert_int_equal(big[4], 'A');
		snprintf(uri, sizeof(uri), "sip:%%41%0125d@x.org", 0);
		assert_false(aor_of(uri, big, sizeof(big)));
	}
	/* an escaped octet takes three: "sip:" + "a%00" + "@" + "x.org" + NUL = 15 bytes */
	assert_true(aor_of("sip:a%00@x.org", aor, 15));
	assert_false(aor_of("sip:a%00@x.org", aor, 14));
}

/* Pinged: registered over UDP, no Path, from elsewhere than the Contact names (a host name is elsewhere). */
static void test_natping_wanted(void **state)
{
	(void)state;
	assert_true(natping_wanted("sip:a@10.0.0.9:5060", "udp:192.0.2.1:40000", ""));
	assert_true(natping_wanted("sip:a@192.0.2.1:5060", "udp:192.0.2.1:40000", "")); /* port mapped */
	assert_true(natping_wanted("sip:a@phone.example.com", "udp:192.0.2.1:5060", ""));
	assert_true(natping_wanted("sip:a@[2001:db8::2]", "udp:[2001:db8::1]:5060", ""));
	assert_false(natping_wanted("sip:a@192.0.2.1", "udp:192.0.2.1:5060", "")); /* 5060 by default */
	assert_false(natping_wanted("sip:a@192.0.2.1:5062;transport=udp", "udp:192.0.2.1:5062", ""));
	assert_false(natping_wanted("sip:a@[2001:db8::1]:5060", "udp:[2001:db8:0::1]:5060", ""));
	assert_false(natping_wanted("sip:a@10.0.0.9:5060", "tcp:192.0.2.1:40000", "")); /* the flow is kept */
	assert_false(natping_wanted("sip:a@10.0.0.9:5060", "udp:192.0.2.1:40000", "<sip:edge.example;lr>"));
	assert_false(natping_wanted("sips:a@10.0.0.9:5061", "udp:192.0.2.1:40000", ""));
	assert_false(natping_wanted("not a uri", "udp:192.0.2.1:40000", ""));
	assert_false(natping_wanted("sip:a@10.0.0.9", "udp:junk", ""));
	/* what sipctl shows: any transport, sips: at 5061 by default */
	assert_true(natping_behind_nat("sip:a@10.0.0.9:5060", "tcp:192.0.2.1:40000"));
	assert_false(natping_behind_nat("sips:a@192.0.2.1", "tcp:192.0.2.1:5061"));
	assert_true(natping_behind_nat("sips:a@192.0.2.1", "tcp:192.0.2.1:5060"));
	assert_false(natping_behind_nat("tel:+15551234", "udp:192.0.2.1:5060"));
}

/* The ping is a request sipd's own parser takes whole: the Contact without its headers as Request-URI
 * and To, a Via with a branch of the magic cookie and rport; too small a buffer gives 0. */
static void test_natping_build(void **state)
{
	char buf[1024];
	struct sip_msg m;
	struct sip_error err;
	size_t len;

	(void)state;
	len = natping_build(buf, sizeof(buf), "sip:a@10.0.0.9:5060;transport=udp?subject=x", "192.0.2.5:5060", 0xabc,
			    0x1234);
	assert_true(len > 0);
	assert_int_equal(sip_msg_parse(&m, buf, len, &err), 0);
	assert_int_equal(m.mid, SIP_METHOD_OPTIONS);
	assert_int_equal(m.ruri_err, 0);
	assert_int_equal(m.ruri.l, strlen("sip:a@10.0.0.9:5060;transport=udp"));
	assert_memory_equal(m.ruri.p, "sip:a@10.0.0.9:5060;transport=udp", m.ruri.l);
	assert_non_null(strstr(buf, "\r\nTo: <sip:a@10.0.0.9:5060;transport=udp>\r\n"));
	assert_non_null(strstr(buf, "\r\nVia: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bKka0000000000001234;rport\r\n"));
	assert_non_null(strstr(buf, "\r\nCSeq: 1 OPTIONS\r\n"));
	assert_non_null(strstr(buf, "\r\nCall-ID: ka0000000000000abc.0000000000001234@sipd\r\n"));
	assert_int_equal(m.max_forwards, 70);
	assert_int_equal(natping_build(buf, 100, "sip:a@10.0.0.9", "192.0.2.5:5060", 1, 1), 0);
}

static void no_expiry(const struct store_change *dels, size_t n, void *arg)
{
	(void)dels;
	(void)n;
	(void)arg;
}

static void put_binding(struct loc *l, const char *aor, const char *contact, const char *received, int64_t now)
{
	struct store_binding b;

	memset(&b, 0, sizeof(b));
	snprintf(b.aor, sizeof(b.aor), "%s", aor);
	snprintf(b.contact, sizeof(b.contact), "%s", contact);
	snprintf(b.received, sizeof(b.received), "%s", received);
	b.q = -1;
	b.expires = now + 600;
	b.updated = now;
	assert_int_equal(loc_put(l, &b, now), 0);
}

/* nat_keepalive_timeout: a phone behind a NAT that answers none of its pings for longer than the timeout
 * is listed once as gone (one not behind a NAT never); a response names a ping by its Call-ID only in
 * the pings' own form. Without a transport the pings cannot leave: unanswered all the same. */
static void test_natping_silence(void **state)
{
	struct natping *np;
	struct store_unbind *gone;
	struct loc *l;
	int64_t now = (int64_t)time(NULL);
	size_t n;

	(void)state;
	assert_int_equal(loc_new(&l, no_expiry, NULL), 0);
	assert_int_equal(natping_new(&np), 0);
	put_binding(l, "sip:a@example.com", "sip:a@10.0.0.9:5060", "udp:192.0.2.1:40000", now);
	put_binding(l, "sip:b@example.com", "sip:b@192.0.2.2:5060", "udp:192.0.2.2:5060", now);
	for (int64_t t = now; t <= now + 3; t++) {
		natping_tick(np, l, 1, 3, t, &gone, &n);
		assert_int_equal(n, 0); /* silent for 3 s: not past the timeout yet */
		free(gone);
	}
	natping_tick(np, l, 1, 3, now + 4, &gone, &n);
	assert_int_equal(n, 1);
	assert_string_equal(gone[0].aor, "sip:a@example.com");
	assert_string_equal(gone[0].contact, "sip:a@10.0.0.9:5060");
	free(gone);
	natping_tick(np, l, 1, 0, now + 5, &gone, &n); /* timeout 0: never */
	assert_int_equal(n, 0);
	free(gone);

	assert_true(natping_answer(np, slice_cstr("ka0123456789abcdef.0000000000000001@sipd")));
	assert_false(natping_answer(np, slice_cstr("ka0123456789abcdeg.0000000000000001@sipd")));
	assert_false(natping_answer(np, slice_cstr("kb0123456789abcdef.0000000000000001@sipd")));
	assert_false(natping_answer(np, slice_cstr("ka0123456789abcdef.1@example.com")));
	assert_false(natping_answer(np, slice_cstr("ka01@sipd")));
	natping_free(np);
	loc_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aor_canonical),
		cmocka_unit_test(test_aor_refused),
		cmocka_unit_test(test_natping_wanted),
		cmocka_unit_test(test_natping_build),
		cmocka_unit_test(test_natping_silence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
