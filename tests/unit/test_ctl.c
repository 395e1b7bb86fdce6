/* test_ctl.c: the control socket (src/mgmt/ctl): a request and its answer, the malformed requests it
 * refuses, a client that says nothing, the socket file's life (a stale one replaced, a live one or a
 * file not a socket left alone, removed at the end) and who may ask. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mgmt/ctl.h"

static char dir[64];
static char path[128];

static int dir_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sipd-test-ctl-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/sipd.ctl", dir);
	return 0;
}

static int dir_teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(dir);
}

/* "echo A B" answers "A|B"; "fail" fails with a reason; "big N" answers N lines. */
static int handler(void *arg, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	int *calls = arg;

	(*calls)++;
	if (!strcmp(argv[0], "echo")) {
		for (int i = 1; i < argc; i++)
			fprintf(out, "%s%s", argv[i], i + 1 < argc ? "|" : "\n");
		return 0;
	}
	if (!strcmp(argv[0], "big") && argc == 2) {
		for (long i = 0; i < strtol(argv[1], NULL, 10); i++)
			fprintf(out, "line\t%ld\n", i);
		return 0;
	}
	fprintf(out, "dropped\n"); /* a failed request's lines are not sent */
	snprintf(err, errlen, "no such command: %s", argv[0]);
	return -1;
}

static char *ask(int argc, char **argv)
{
	char *answer = NULL;

	assert_int_equal(ctl_request(path, argc, argv, &answer, 5000), 0);
	return answer;
}

/* What a raw client gets for bytes it writes itself. */
static void raw(const char *req, size_t len, char *answer, size_t n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	size_t got = 0;
	ssize_t r;

	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	while (got < n - 1 && (r = recv(fd, answer + got, n - 1 - got, 0)) > 0)
		got += (size_t)r;
	answer[got] = '\0';
	close(fd);
}

static void test_request(void **state)
{
	char *echo[] = { "echo", "show", "blocks" }, *fail[] = { "nope" }, *big[] = { "big", "100000" };
	struct ctl *c;
	struct stat st;
	char *a;
	int calls = 0;

	(void)state;
	assert_int_equal(ctl_new(&c, path, handler, &calls), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	a = ask(3, echo);
	assert_string_equal(a, "OK\nshow|blocks\n");
	free(a);
	a = ask(1, fail);
	assert_string_equal(a, "ERR no such command: nope\n");
	free(a);
	/* an answer larger than any socket buffer arrives whole */
	a = ask(2, big);
	assert_int_equal(strncmp(a, "OK\nline\t0\n", 10), 0);
	assert_non_null(strstr(a, "\nline\t99999\n"));
	free(a);
	assert_int_equal(calls, 3);
	ctl_free(c);
	assert_int_equal(lstat(path, &st), -1); /* the file goes with it */
	assert_int_equal(errno, ENOENT);
}

static void test_malformed(void **state)
{
	char answer[512], big[CTL_LINE_MAX + 100], *words[CTL_WORDS_MAX + 1], *spaced[] = { "echo", "a b" };
	struct ctl *c;
	char *a = NULL;
	int calls = 0;

	(void)state;
	assert_int_equal(ctl_new(&c, path, handler, &calls), 0);
	memset(big, 'x', sizeof(big));
	raw(big, sizeof(big), answer, sizeof(answer));
	assert_string_equal(answer, "ERR request too long (1023 bytes at most)\n");
	raw("\n", 1, answer, sizeof(answer));
	assert_string_equal(answer, "ERR empty request\n");
	raw("echo a\x01 b\n", 10, answer, sizeof(answer));
	assert_string_equal(answer, "ERR control character in the request\n");
	raw("echo 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", 44, answer, sizeof(answer));
	assert_string_equal(answer, "ERR too many words (16 at most)\n");
	/* spaces and tabs between words, CRLF, or no newline before the client's end: one request each */
	raw("  echo\t a   b \r\n", 16, answer, sizeof(answer));
	assert_string_equal(answer, "OK\na|b\n");
	assert_int_equal(calls, 1);

	/* the client refuses what the line cannot carry */
	for (int i = 0; i <= CTL_WORDS_MAX; i++)
		words[i] = "w";
	assert_int_equal(ctl_request(path, 2, spaced, &a, 1000), EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	words[1] = big;
	assert_int_equal(ctl_request(path, 2, words, &a, 1000), EMSGSIZE);
	assert_null(a);
	ctl_free(c);
	assert_int_equal(ctl_request(path, 1, words, &a, 1000), ENOENT);
}

/* A client that connects and says nothing holds the socket for its time-out (2 s), not for ever. */
static void test_silent_client(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *echo[] = { "echo", "after" }, *a;
	struct timespec t0, t1;
	struct ctl *c;
	int calls = 0, fd;

	(void)state;
	assert_int_equal(ctl_new(&c, path, handler, &calls), 0);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	usleep(100 * 1000); /* the server takes the silent one first */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	a = ask(2, echo);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_string_equal(a, "OK\nafter\n");
	free(a);
	assert_true(t1.tv_sec - t0.tv_sec < 4);
	close(fd);
	ctl_free(c);
}

static void test_socket_file(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl *c, *c2;
	struct stat st;
	char *ping[] = { "echo", "x" }, *a;
	int calls = 0, fd;
	FILE *f;

	(void)state;
	/* a socket file a killed sipd left: nobody answers on it, so it is replaced */
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(ctl_new(&c, path, handler, &calls), 0);
	a = ask(2, ping);
	assert_string_equal(a, "OK\nx\n");
	free(a);
	/* a second sipd on the same path: refused, the first one's socket kept */
	assert_int_equal(ctl_new(&c2, path, handler, &calls), EADDRINUSE);
	a = ask(2, ping);
	free(a);
	assert_int_equal(calls, 2);
	/* a file put in its place since is not removed at the end */
	assert_int_equal(unlink(path), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	ctl_free(c);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* nor is a file that is not a socket taken over */
	assert_int_equal(ctl_new(&c, path, handler, &calls), EEXIST);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);
	assert_int_equal(ctl_new(&c, "", handler, &calls), ENAMETOOLONG);
}

/* Asks "echo x" as user nobody (65534), in a child: 0 when ctl_request returns want_rc and, unless NULL,
 * the answer is want_answer; else the child's exit status says where it differed (10 no setuid, 11 the
 * return code, 12 the answer). */
static int request_as_nobody(int want_rc, const char *want_answer)
{
	char *ping[] = { "echo", "x" };
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		char *a = NULL;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (ctl_request(path, 2, ping, &a, 2000) != want_rc)
			_exit(11);
		_exit(want_answer && strcmp(a, want_answer) ? 12 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Only the user sipd runs as, and root: another user is refused by the file's mode, and (were the
 * mode wider) by the peer's credentials. Needs root to be another user. */
static void test_other_user(void **state)
{
	struct ctl *c;
	int calls = 0;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(ctl_new(&c, path, handler, &calls), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(request_as_nobody(EACCES, NULL), 0); /* the socket's mode */
	/* the mode widened: the peer's credentials still refuse */
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(request_as_nobody(0, "ERR permission denied\n"), 0);
	assert_int_equal(calls, 0);
	ctl_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_malformed, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_silent_client, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_socket_file, dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_other_user, dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
