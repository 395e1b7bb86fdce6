/* test_log.c: log lines as they reach stderr: the level filter, one line per call, and the control
 * characters of text from the network written as \xNN (no forged lines, no terminal escapes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"

/* What log_msg wrote to stderr while fn ran. */
static size_t capture(char *out, size_t cap, void (*fn)(void))
{
	int fds[2], saved;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
	fn();
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, cap - 1);
	close(fds[0]);
	assert_true(n >= 0);
	out[n] = '\0';
	return (size_t)n;
}

static void log_hostile(void)
{
	/* a user name as a request could carry it: a forged line, a terminal escape, a DEL */
	log_msg(LOG_INFO, "auth: wrong password for user '%s'", "eve\r\n2026-01-01T00:00:00.000Z info: ok\x1b[2J\x7f");
}

static void test_controls_escaped(void **state)
{
	char out[2048];
	size_t n;

	(void)state;
	log_set_level(LOG_INFO);
	n = capture(out, sizeof(out), log_hostile);
	assert_true(n > 0);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', n - 1)); /* one line */
	assert_null(memchr(out, '\r', n));
	assert_null(memchr(out, 0x1b, n));
	assert_null(memchr(out, 0x7f, n));
	assert_non_null(strstr(out, "user 'eve\\x0d\\x0a2026-01-01T00:00:00.000Z info: ok\\x1b[2J\\x7f'\n"));
}

static void log_long(void)
{
	char big[3000];

	memset(big, '\x01', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_msg(LOG_WARN, "x=%s", big);
}

static void test_long_line_cut(void **state)
{
	char out[4096];
	size_t n;

	(void)state;
	n = capture(out, sizeof(out), log_long);
	assert_true(n > 0 && n <= 1100);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, 0x01, n));
	/* cut between escapes, never inside one */
	assert_memory_equal(out + n - 5, "\\x01\n", 5);
}

static void log_debug_line(void)
{
	log_msg(LOG_DEBUG, "not shown");
}

static void test_level_filter(void **state)
{
	char out[256];

	(void)state;
	log_set_level(LOG_INFO);
	assert_int_equal(capture(out, sizeof(out), log_debug_line), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controls_escaped),
		cmocka_unit_test(test_long_line_cut),
		cmocka_unit_test(test_level_filter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
