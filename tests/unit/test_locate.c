/* test_locate.c: RFC 3263's selection rules given records: NAPTR transport selection (4.1), SRV order
 * (RFC 2782: priority, then weighted random with zero weights first), and what a URI says by itself
 * (numeric hosts, ports, transport parameters, sips). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sip/locate.h"
#include "sip/uri.h"

static struct dns_rr naptr(uint16_t order, uint16_t pref, const char *flags, const char *service, const char *repl)
{
	struct dns_rr rr;

	memset(&rr, 0, sizeof(rr));
	rr.u.naptr.order = order;
	rr.u.naptr.pref = pref;
	snprintf(rr.u.naptr.flags, sizeof(rr.u.naptr.flags), "%s", flags);
	snprintf(rr.u.naptr.service, sizeof(rr.u.naptr.service), "%s", service);
	snprintf(rr.u.naptr.replacement, sizeof(rr.u.naptr.replacement), "%s", repl);
	return rr;
}

static struct dns_rr srv(uint16_t prio, uint16_t weight, const char *target)
{
	struct dns_rr rr;

	memset(&rr, 0, sizeof(rr));
	rr.u.srv.prio = prio;
	rr.u.srv.weight = weight;
	rr.u.srv.port = 5060;
	snprintf(rr.u.srv.target, sizeof(rr.u.srv.target), "%s", target);
	return rr;
}

/* ---- NAPTR (RFC 3263 4.1) ---- */

static void test_naptr_order_then_preference(void **state)
{
	struct dns_rr rr[] = {
		naptr(20, 10, "s", "SIP+D2U", "_sip._udp.late.example"),
		naptr(10, 50, "s", "SIP+D2T", "_sip._tcp.example"),
		naptr(10, 10, "S", "sip+d2u", "_sip._udp.example"), /* flags and services are case-insensitive */
	};
	struct locate_srvname out[4];

	(void)state;
	assert_int_equal(locate_naptr_select(rr, 3, false, out, 4), 3);
	assert_string_equal(out[0].name, "_sip._udp.example");
	assert_int_equal(out[0].proto, TP_UDP);
	assert_string_equal(out[1].name, "_sip._tcp.example");
	assert_int_equal(out[1].proto, TP_TCP);
	assert_string_equal(out[2].name, "_sip._udp.late.example");
	assert_int_equal(locate_naptr_select(rr, 3, false, out, 1), 1); /* bounded by the caller's room */
	assert_string_equal(out[0].name, "_sip._udp.example");
}

static void test_naptr_unusable_records_dropped(void **state)
{
	struct dns_rr rr[] = {
		naptr(1, 1, "s", "SIPS+D2T", "_sips._tcp.example"), /* TLS: sipd has none */
		naptr(1, 2, "s", "SIP+D2S", "_sip._sctp.example"),  /* SCTP */
		naptr(1, 3, "a", "SIP+D2U", "example"),            /* "a": not the SRV flag */
		naptr(1, 4, "s", "SIP+D2U", "."),                  /* no replacement */
		naptr(1, 5, "s", "E2U+sip", "example"),            /* ENUM, not RFC 3263 */
		naptr(9, 9, "s", "SIP+D2T", "_sip._tcp.example"),
	};
	struct locate_srvname out[4];

	(void)state;
	assert_int_equal(locate_naptr_select(rr, 6, false, out, 4), 1);
	assert_string_equal(out[0].name, "_sip._tcp.example");
	assert_int_equal(out[0].proto, TP_TCP);
	/* a sips URI needs SIPS+D2T, i.e. TLS: nothing usable */
	assert_int_equal(locate_naptr_select(rr, 6, true, out, 4), 0);
}

static void test_naptr_equal_keep_server_order(void **state)
{
	struct dns_rr rr[] = {
		naptr(10, 10, "s", "SIP+D2T", "_sip._tcp.example"),
		naptr(10, 10, "s", "SIP+D2U", "_sip._udp.example"),
	};
	struct locate_srvname out[2];

	(void)state;
	assert_int_equal(locate_naptr_select(rr, 2, false, out, 2), 2);
	assert_int_equal(out[0].proto, TP_TCP);
	assert_int_equal(out[1].proto, TP_UDP);
}

/* ---- SRV (RFC 2782) ---- */

static uint32_t fixed_rnd(void *arg)
{
	return *(uint32_t *)arg;
}

static uint64_t lcg = 88172645463325252ull;

static uint32_t test_rnd(void *arg)
{
	(void)arg;
	lcg ^= lcg << 13;
	lcg ^= lcg >> 7;
	lcg ^= lcg << 17;
	return (uint32_t)(lcg >> 32);
}

static void test_srv_priority_first(void **state)
{
	struct dns_rr rr[] = { srv(20, 0, "c.example"), srv(10, 0, "a.example"), srv(30, 100, "d.example"),
			       srv(10, 0, "b.example") };
	unsigned idx[DNS_MAX_RR], r = 0;

	(void)state;
	assert_int_equal(locate_srv_order(rr, 4, fixed_rnd, &r, idx), 4);
	assert_string_equal(rr[idx[0]].u.srv.target, "a.example"); /* priority 10, zero weights: as listed */
	assert_string_equal(rr[idx[1]].u.srv.target, "b.example");
	assert_string_equal(rr[idx[2]].u.srv.target, "c.example");
	assert_string_equal(rr[idx[3]].u.srv.target, "d.example");
}

static void test_srv_weighted_selection(void **state)
{
	/* RFC 2782: the running sum over (zero weights first) the list; the first whose sum >= r */
	struct dns_rr rr[] = { srv(10, 60, "sixty.example"), srv(10, 0, "zero.example"), srv(10, 40, "forty.example") };
	unsigned idx[DNS_MAX_RR];
	uint32_t r;

	(void)state;
	r = 0; /* r = 0: the zero-weight record, placed first, is chosen */
	assert_int_equal(locate_srv_order(rr, 3, fixed_rnd, &r, idx), 3);
	assert_string_equal(rr[idx[0]].u.srv.target, "zero.example");
	r = 61; /* 61 % 101: sums 0, 60, 100: forty */
	locate_srv_order(rr, 3, fixed_rnd, &r, idx);
	assert_string_equal(rr[idx[0]].u.srv.target, "forty.example");
	r = 30;
	locate_srv_order(rr, 3, fixed_rnd, &r, idx);
	assert_string_equal(rr[idx[0]].u.srv.target, "sixty.example");
}

static void test_srv_weights_spread(void **state)
{
	/* over many draws the first pick follows the weights (60:30:10), within a few per cent */
	struct dns_rr rr[] = { srv(1, 60, "a"), srv(1, 30, "b"), srv(1, 10, "c"), srv(2, 1000, "backup") };
	unsigned idx[DNS_MAX_RR], first[3] = { 0 };
	const unsigned rounds = 20000;

	(void)state;
	for (unsigned i = 0; i < rounds; i++) {
		assert_int_equal(locate_srv_order(rr, 4, test_rnd, NULL, idx), 4);
		assert_int_equal(idx[3], 3); /* the other priority always last */
		first[idx[0]]++;
	}
	assert_in_range(first[0], rounds * 55 / 100, rounds * 65 / 100);
	assert_in_range(first[1], rounds * 25 / 100, rounds * 35 / 100);
	assert_in_range(first[2], rounds * 7 / 100, rounds * 13 / 100);
}

static void test_srv_dot_means_none(void **state)
{
	struct dns_rr lone[] = { srv(0, 0, ".") };
	struct dns_rr mixed[] = { srv(0, 0, "."), srv(5, 0, "real.example") };
	unsigned idx[DNS_MAX_RR], r = 0;

	(void)state;
	assert_int_equal(locate_srv_order(lone, 1, fixed_rnd, &r, idx), 0);
	assert_int_equal(locate_srv_order(mixed, 2, fixed_rnd, &r, idx), 1);
	assert_int_equal(idx[0], 1);
}

/* ---- the URI by itself (RFC 3263 4.1, 4.2) ---- */

static int parse(struct locate_uri *lu, const char *s)
{
	struct sip_uri u;

	assert_int_equal(sip_uri_parse(&u, slice_cstr(s)), 0);
	return locate_uri_parse(lu, &u);
}

static void test_uri_numeric_and_names(void **state)
{
	struct locate_uri lu;
	char buf[64];

	(void)state;
	assert_int_equal(parse(&lu, "sip:bob@192.0.2.7"), 0);
	assert_true(lu.numeric);
	assert_string_equal(tp_addr_str(&lu.addr, buf, sizeof(buf)), "192.0.2.7:5060");
	assert_int_equal(lu.proto, TP_UDP);
	assert_int_equal(parse(&lu, "sip:bob@[2001:db8::1]:5070;transport=TCP"), 0);
	assert_true(lu.numeric);
	assert_true(lu.proto_given);
	assert_int_equal(lu.proto, TP_TCP);
	assert_int_equal(tp_addr_port(&lu.addr), 5070);
	assert_int_equal(parse(&lu, "sip:bob@example.com:5080"), 0);
	assert_false(lu.numeric);
	assert_false(lu.proto_given);
	assert_int_equal(lu.port, 5080);
	assert_string_equal(lu.host, "example.com");
	/* maddr is the target when present */
	assert_int_equal(parse(&lu, "sip:bob@example.com;maddr=proxy.example.net;transport=udp"), 0);
	assert_string_equal(lu.host, "proxy.example.net");
	assert_true(lu.proto_given);
}

static void test_uri_refused(void **state)
{
	struct locate_uri lu;
	struct sip_uri u = { .scheme = SIP_SCHEME_SIP, .host = SLICE_LIT("exa mple.com") };

	(void)state;
	assert_int_equal(parse(&lu, "sips:bob@example.com"), EPROTONOSUPPORT);          /* TLS */
	assert_int_equal(parse(&lu, "sip:bob@example.com;transport=tls"), EPROTONOSUPPORT);
	assert_int_equal(parse(&lu, "sip:bob@example.com;transport=sctp"), EPROTONOSUPPORT);
	/* not a DNS name (whatever a parser let through): never asked */
	assert_int_equal(locate_uri_parse(&lu, &u), EINVAL);
	u.host = SLICE_LIT("[::1");
	assert_int_equal(locate_uri_parse(&lu, &u), EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_naptr_order_then_preference),
		cmocka_unit_test(test_naptr_unusable_records_dropped),
		cmocka_unit_test(test_naptr_equal_keep_server_order),
		cmocka_unit_test(test_srv_priority_first),
		cmocka_unit_test(test_srv_weighted_selection),
		cmocka_unit_test(test_srv_weights_spread),
		cmocka_unit_test(test_srv_dot_means_none),
		cmocka_unit_test(test_uri_numeric_and_names),
		cmocka_unit_test(test_uri_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
