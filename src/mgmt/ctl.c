/* ctl.c: the control socket: its listening thread, one request at a time, and sipctl's client side. */
#include "mgmt/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"

#define CTL_IO_TIMEOUT_MS 2000      /* a client that neither writes its line nor reads its answer */
#define CTL_ANSWER_MAX (64u << 20) /* what sipctl reads at most */

struct ctl {
	int lfd, stop[2];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* of the socket file made, so that only that one is removed */
	ino_t ino;
	ctl_handler *fn;
	void *arg;
	pthread_t thread;
};

static int addr_of(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!path[0] || strlen(path) >= sizeof(sa->sun_path))
		return ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

static void timeouts(int fd, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == EAGAIN ? ETIMEDOUT : errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- server ---- */

/* Reads the request's line (up to its newline, or the end of what the client sends) into line;
 * 0, or why not (written to err). */
static int read_line(int fd, char *line, size_t max, char *err, size_t errlen)
{
	size_t len = 0;

	for (;;) {
		ssize_t r = recv(fd, line + len, max - 1 - len, 0);
		char *nl;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s", errno == EAGAIN ? "timed out waiting for the request" : strerror(errno));
			return -1;
		}
		nl = memchr(line + len, '\n', (size_t)r);
		len += (size_t)r;
		line[len] = '\0';
		if (nl || r == 0) {
			if (nl)
				*nl = '\0';
			if (nl && nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
			return 0;
		}
		if (len == max - 1) {
			snprintf(err, errlen, "request too long (%zu bytes at most)", max - 1);
			return -1;
		}
	}
}

/* Splits line at spaces and tabs; the number of words, or -1 (why in err). */
static int split(char *line, char **argv, char *err, size_t errlen)
{
	int argc = 0;

	for (char *p = line; *p;) {
		if (*p == ' ' || *p == '\t') {
			*p++ = '\0';
			continue;
		}
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "control character in the request");
			return -1;
		}
		if (argc == CTL_WORDS_MAX) {
			snprintf(err, errlen, "too many words (%d at most)", CTL_WORDS_MAX);
			return -1;
		}
		argv[argc++] = p;
		while (*p && *p != ' ' && *p != '\t' && (unsigned char)*p >= 0x20 && *p != 0x7f)
			p++;
	}
	if (!argc)
		snprintf(err, errlen, "empty request");
	return argc ? argc : -1;
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) && (cred.uid == 0 || cred.uid == geteuid());
}

/* The answer of a request that failed: one line, "ERR why". */
static void send_err(int fd, const char *why)
{
	char line[300];
	int n = snprintf(line, sizeof(line), "ERR %s\n", why);

	send_all(fd, line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* Runs the handler into a memory stream, so that no lock it takes is held while a slow client reads. */
static void run_request(struct ctl *c, int argc, char **argv, int fd)
{
	char err[256] = "", *body = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&body, &len);
	int rc;

	if (!out) {
		send_err(fd, "out of memory");
		return;
	}
	rc = c->fn(c->arg, argc, argv, out, err, sizeof(err));
	if (fclose(out) && !rc) {
		rc = -1;
		snprintf(err, sizeof(err), "out of memory");
	}
	if (rc)
		send_err(fd, err[0] ? err : "failed");
	else if (!send_all(fd, "OK\n", 3))
		send_all(fd, body, len);
	free(body);
}

/* What the client sent past its line, up to a bound: a socket closed with unread bytes resets the
 * connection, and the client would lose the answer. */
static void drain(int fd)
{
	char buf[4096];

	shutdown(fd, SHUT_WR);
	timeouts(fd, 200); /* what is on its way, not what a silent client might send one day */
	for (int i = 0; i < 16 && recv(fd, buf, sizeof(buf), 0) > 0; i++)
		;
}

static void serve(struct ctl *c, int fd)
{
	char line[CTL_LINE_MAX], err[128], *argv[CTL_WORDS_MAX];
	int argc;

	timeouts(fd, CTL_IO_TIMEOUT_MS);
	if (read_line(fd, line, sizeof(line), err, sizeof(err)) || (argc = split(line, argv, err, sizeof(err))) < 0) {
		send_err(fd, err);
	} else if (!peer_allowed(fd)) {
		send_err(fd, "permission denied");
	} else {
		run_request(c, argc, argv, fd);
	}
	drain(fd);
}

static void *ctl_main(void *arg)
{
	struct ctl *c = arg;
	struct pollfd p[2] = { { .fd = c->lfd, .events = POLLIN }, { .fd = c->stop[0], .events = POLLIN } };

	pthread_setname_np(pthread_self(), "sipd-ctl");
	for (;;) {
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("control socket: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) /* EAGAIN, ECONNABORTED, EMFILE: try again at the next connection */
			continue;
		serve(c, fd);
		close(fd);
	}
	return NULL;
}

/* Binds path, replacing a socket file nobody answers on (a sipd that was killed). */
static int bind_path(int fd, const struct sockaddr_un *sa)
{
	struct stat st;
	int probe, err;

	if (!bind(fd, (const struct sockaddr *)sa, sizeof(*sa)))
		return 0;
	if (errno != EADDRINUSE)
		return errno;
	if (lstat(sa->sun_path, &st) || !S_ISSOCK(st.st_mode))
		return EEXIST; /* not a socket: not sipd's to remove */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return errno;
	err = connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) ? errno : 0;
	close(probe);
	if (err != ECONNREFUSED)
		return EADDRINUSE; /* someone answers there */
	if (unlink(sa->sun_path) && errno != ENOENT)
		return errno;
	return bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) ? errno : 0;
}

int ctl_new(struct ctl **cp, const char *path, ctl_handler *fn, void *arg)
{
	struct sockaddr_un sa;
	struct stat st;
	struct ctl *c;
	int err;

	if ((err = addr_of(path, &sa)))
		return err;
	c = calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->stop[0] = c->stop[1] = -1;
	c->fn = fn;
	c->arg = arg;
	strcpy(c->path, path);
	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->lfd < 0) {
		err = errno;
		free(c);
		return err;
	}
	if ((err = bind_path(c->lfd, &sa)))
		goto fail_unbound;
	/* the owner only; a request is checked against the peer's user anyway (SO_PEERCRED) */
	if (chmod(path, 0600) || lstat(path, &st) || listen(c->lfd, 8) || pipe2(c->stop, O_CLOEXEC)) {
		err = errno;
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if ((err = pthread_create(&c->thread, NULL, ctl_main, c)))
		goto fail;
	*cp = c;
	return 0;
fail:
	unlink(path);
fail_unbound:
	close(c->lfd);
	if (c->stop[0] >= 0) {
		close(c->stop[0]);
		close(c->stop[1]);
	}
	free(c);
	return err;
}

void ctl_free(struct ctl *c)
{
	struct stat st;

	if (!c)
		return;
	if (write(c->stop[1], "x", 1) < 0)
		log_err("control socket: cannot stop its thread: %s", strerror(errno));
	pthread_join(c->thread, NULL);
	/* only the file this sipd made: another may have replaced it since */
	if (!lstat(c->path, &st) && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	close(c->lfd);
	close(c->stop[0]);
	close(c->stop[1]);
	free(c);
}

/* ---- client ---- */

static int read_all(int fd, char **answer)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		return ENOMEM;
	for (;;) {
		ssize_t r;

		if (cap - len < 2) {
			char *b = cap >= CTL_ANSWER_MAX ? NULL : realloc(buf, cap * 2);

			if (!b) {
				free(buf);
				return cap >= CTL_ANSWER_MAX ? EMSGSIZE : ENOMEM;
			}
			buf = b;
			cap *= 2;
		}
		r = recv(fd, buf + len, cap - 1 - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno == EAGAIN ? ETIMEDOUT : errno;

			free(buf);
			return err;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*answer = buf;
	return 0;
}

int ctl_request(const char *path, int argc, char **argv, char **answer, unsigned timeout_ms)
{
	char line[CTL_LINE_MAX];
	struct sockaddr_un sa;
	size_t len = 0;
	int fd, err;

	if ((err = addr_of(path, &sa)))
		return err;
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]);

		if (!l || strpbrk(argv[i], " \t\r\n"))
			return EINVAL;
		if (len + l + 2 > sizeof(line))
			return EMSGSIZE;
		if (i)
			line[len++] = ' ';
		memcpy(line + len, argv[i], l);
		len += l;
	}
	line[len++] = '\n';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	timeouts(fd, timeout_ms);
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)))
		err = errno == EAGAIN ? ETIMEDOUT : errno;
	else if (!(err = send_all(fd, line, len)) || err == EPIPE || err == ECONNRESET)
		err = read_all(fd, answer); /* an answer sent before the request was read is still there */
	close(fd);
	return err;
}
