/* test_calls.c: the proxy's call records: one per dialog-creating INVITE, gone at its failure or its
 * BYE, logged and gone at once when sipd is not on the dialog's path, and gone after max_duration
 * when the BYE never comes (taken as later calls start, from the same shard). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/calls.h"

#define SHARDS 64 /* calls.c's CALL_SHARDS */

static struct slice id(const char *s)
{
	return slice_cstr(s);
}

static void start(struct calls *c, const char *call_id)
{
	calls_start(c, id(call_id), id("<sip:alice@sipd>"), id("<sip:bob@sipd>"));
}

static void test_life(void **state)
{
	struct calls *c;

	(void)state;
	assert_int_equal(calls_new(&c, 10, 0), 0);
	start(c, "a@x");
	start(c, "a@x"); /* a spiral: the same call */
	assert_int_equal(calls_active(c), 1);
	start(c, "b@x");
	start(c, "c@x");
	assert_int_equal(calls_active(c), 3);
	calls_failed(c, id("a@x"), 486);
	assert_int_equal(calls_active(c), 2);
	calls_ended(c, id("b@x")); /* a BYE of a call never answered: not its end */
	assert_int_equal(calls_active(c), 2);
	calls_answered(c, id("b@x"), true);
	calls_failed(c, id("b@x"), 487); /* answered: a late failure does not end it */
	assert_int_equal(calls_active(c), 2);
	calls_ended(c, id("b@x"));
	assert_int_equal(calls_active(c), 1);
	calls_answered(c, id("c@x"), false); /* not Record-Routed: logged now, not kept */
	assert_int_equal(calls_active(c), 0);
	calls_free(c);
}

static void test_max(void **state)
{
	struct calls *c;

	(void)state;
	assert_int_equal(calls_new(&c, 2, 0), 0);
	start(c, "1@x");
	start(c, "2@x");
	start(c, "3@x"); /* routed, not recorded */
	assert_int_equal(calls_active(c), 2);
	calls_free(c); /* with records in it: freed (ASan) */
}

/* A record lives up to max_call_duration: a Call-ID over 256 bytes is not recorded (none a phone
 * makes), and From and To URIs are kept cut to 256 bytes, so 40 kB URIs hold no 40 kB for 12 hours. */
static void test_long_fields(void **state)
{
	static char cid[300], uri[2000];
	struct calls *c;

	(void)state;
	assert_int_equal(calls_new(&c, 10, 0), 0);
	memset(cid, 'c', sizeof(cid) - 1);
	calls_start(c, id(cid), id("<sip:alice@sipd>"), id("<sip:bob@sipd>"));
	assert_int_equal(calls_active(c), 0);
	memset(uri, 'u', sizeof(uri) - 1);
	calls_start(c, id("long-from@x"), id(uri), id(uri));
	assert_int_equal(calls_active(c), 1);
	calls_answered(c, id("long-from@x"), true);
	calls_free(c); /* ASan: what was written fits what was allocated */
}

/* 50,000 calls at once: each shard's chains double four times; every record is still found, by its
 * answer and by its end, and the ones left are freed with the table. */
static void test_many(void **state)
{
	enum { MANY = 50000 };
	struct calls *c;
	char cid[32];

	(void)state;
	assert_int_equal(calls_new(&c, MANY, 0), 0);
	for (unsigned i = 0; i < MANY; i++) {
		snprintf(cid, sizeof(cid), "%u@many", i);
		start(c, cid);
	}
	assert_int_equal(calls_active(c), MANY);
	start(c, "7@many"); /* a spiral of a call already recorded: one record */
	assert_int_equal(calls_active(c), MANY);
	for (unsigned i = 0; i < MANY; i++) {
		snprintf(cid, sizeof(cid), "%u@many", i);
		if (i % 3 == 0)
			calls_failed(c, id(cid), 486);
		else
			calls_answered(c, id(cid), true);
	}
	assert_int_equal(calls_active(c), MANY - (MANY + 2) / 3);
	for (unsigned i = 0; i < MANY; i += 3) {
		snprintf(cid, sizeof(cid), "%u@many", i + 1);
		calls_ended(c, id(cid));
	}
	assert_int_equal(calls_active(c), MANY - 2 * ((MANY + 2) / 3));
	calls_free(c);
}

/* A Call-ID different from base that lands in base's shard. */
static void same_shard(const char *base, char *out, size_t n)
{
	uint32_t want = slice_hash(id(base), 0xca11) % SHARDS;

	for (unsigned i = 0;; i++) {
		snprintf(out, n, "n%u@x", i);
		if (slice_hash(id(out), 0xca11) % SHARDS == want && strcmp(out, base))
			return;
	}
}

static void test_expiry(void **state)
{
	char later[32], other[32];
	struct calls *c;

	(void)state;
	assert_int_equal(calls_new(&c, 10, 1), 0);
	start(c, "old@x");
	calls_answered(c, id("old@x"), true);
	start(c, "ringing@x"); /* not answered: never expires (its transaction ends it) */
	assert_int_equal(calls_active(c), 2);
	sleep(2);
	/* a call in another shard does not look at old@x's */
	snprintf(other, sizeof(other), "o@x");
	for (unsigned i = 0; slice_hash(id(other), 0xca11) % SHARDS == slice_hash(id("old@x"), 0xca11) % SHARDS;
	     i++)
		snprintf(other, sizeof(other), "o%u@x", i);
	start(c, other);
	same_shard("old@x", later, sizeof(later));
	start(c, later); /* takes old@x, answered 2 s ago with max_duration 1 */
	assert_int_equal(calls_active(c), 3); /* ringing, other, later */
	calls_ended(c, id("old@x")); /* its BYE after all: nothing left to end */
	assert_int_equal(calls_active(c), 3);
	calls_free(c);
}

/* calls_expire, on a server where no call starts: every shard's expired calls go, the others stay */
static void test_expire_sweep(void **state)
{
	struct calls *c;
	char cid[32];

	(void)state;
	assert_int_equal(calls_new(&c, 1000, 1), 0);
	for (unsigned i = 0; i < 200; i++) {
		snprintf(cid, sizeof(cid), "q%u@x", i);
		start(c, cid);
		calls_answered(c, id(cid), true);
	}
	start(c, "ringing@x");
	calls_expire(c); /* none is a second old yet */
	assert_int_equal(calls_active(c), 201);
	sleep(2);
	calls_expire(c);
	assert_int_equal(calls_active(c), 1); /* the unanswered one */
	calls_free(c);
}

/* A target refresh moves the side that sent it, toward which the request did not go; requests toward
 * where it moved are then checked against where it was. Unknown calls and pins too long are not kept. */
static void test_refresh(void **state)
{
	struct calls *c;
	char was[CALLS_PIN_MAX];
	const struct slice caller = id("\n10.0.0.1:5060"), callee = id("\n10.0.0.2:5062");

	(void)state;
	assert_int_equal(calls_new(&c, 10, 0), 0);
	assert_false(calls_refresh(c, id("r@x"), callee, id("\n10.0.0.9:5060"))); /* no such call */
	start(c, "r@x");
	calls_signed_toward(c, id("r@x"), 0, caller);
	assert_false(calls_refresh(c, id("r@x"), callee, id("\n10.0.0.9:5060"))); /* not answered yet */
	calls_answered(c, id("r@x"), true);
	calls_signed_toward(c, id("r@x"), 1, callee);
	calls_signed_toward(c, id("r@x"), 1, id("\n10.9.9.9:1")); /* the first answer's stays */
	assert_int_equal(calls_moved(c, id("r@x"), id("\n10.0.0.9:5060"), was), 0);
	/* the caller's re-INVITE (toward the callee) moves the caller */
	assert_true(calls_refresh(c, id("r@x"), callee, id("\n10.0.0.9:5060")));
	assert_int_equal(calls_moved(c, id("r@x"), id("\n10.0.0.9:5060"), was), caller.l);
	assert_memory_equal(was, caller.p, caller.l);
	assert_int_equal(calls_moved(c, id("r@x"), callee, was), 0); /* the callee did not move */
	/* moved again, from where it moved: still checked against where it began */
	assert_true(calls_refresh(c, id("r@x"), callee, id("\n10.0.0.10:5060")));
	assert_int_equal(calls_moved(c, id("r@x"), id("\n10.0.0.9:5060"), was), 0);
	assert_int_equal(calls_moved(c, id("r@x"), id("\n10.0.0.10:5060"), was), caller.l);
	/* the callee's refresh (toward the caller, where it moved) moves the callee */
	assert_true(calls_refresh(c, id("r@x"), id("\n10.0.0.10:5060"), id("\n10.0.0.3:5062")));
	assert_int_equal(calls_moved(c, id("r@x"), id("\n10.0.0.3:5062"), was), callee.l);
	assert_memory_equal(was, callee.p, callee.l);
	/* toward neither side: nobody moves */
	assert_false(calls_refresh(c, id("r@x"), id("\n10.0.0.77:5060"), id("\n10.0.0.4:5060")));
	assert_int_equal(calls_moved(c, id("r@x"), id("\n10.0.0.4:5060"), was), 0);
	assert_false(calls_refresh(c, id("r@x"), callee,
				   id("\na-host-name-longer-than-what-a-call-record-keeps.example:5060")));
	calls_ended(c, id("r@x"));
	assert_int_equal(calls_moved(c, id("r@x"), id("\n10.0.0.3:5062"), was), 0);
	calls_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_life),
		cmocka_unit_test(test_max),
		cmocka_unit_test(test_long_fields),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_expire_sweep),
		cmocka_unit_test(test_refresh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
