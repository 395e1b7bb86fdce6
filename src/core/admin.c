/* admin.c: what the control socket (src/mgmt/ctl) may ask of a running sipd: the authentication blocks
 * in its memory, shown and lifted. */
#include "core/core.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"

static const char *const kind_names[] = {
	[AUTH_BLOCK_PAIR] = "user-address", /* max_failures */
	[AUTH_BLOCK_USER] = "user",          /* user_max_failures */
	[AUTH_BLOCK_SOURCE] = "address",     /* source_max_failures */
};

struct blocks_out {
	FILE *out;
	time_t now;
};

/* A field as the control socket sends it: a user name is whatever a client wrote in its credentials, so
 * a control character (a tab or newline would break the line, an escape sequence would reach the
 * administrator's terminal) goes as \xNN; empty as "-". */
static void field(FILE *out, const char *s)
{
	if (!*s)
		fputc('-', out);
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			fprintf(out, "\\x%02x", (unsigned char)*s);
		else
			fputc(*s, out);
	}
}

static void block_line(void *arg, const struct auth_block *b)
{
	struct blocks_out *o = arg;

	fprintf(o->out, "%s\t", kind_names[b->kind]);
	field(o->out, b->user);
	fputc('\t', o->out);
	field(o->out, b->source);
	fprintf(o->out, "\t%lld\t%u\n", (long long)(b->until - o->now), b->length);
}

/* An address as the limiter keys it: IPv4, IPv6, or an IPv6 /64 as show blocks writes it. */
static bool address_ok(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];
	char tmp[INET6_ADDRSTRLEN + 4];
	size_t l = strlen(s);

	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return true;
	if (l < 4 || l >= sizeof(tmp) || strcmp(s + l - 3, "/64"))
		return false;
	memcpy(tmp, s, l - 3);
	tmp[l - 3] = '\0';
	return inet_pton(AF_INET6, tmp, buf) == 1;
}

/* unblock all | unblock user NAME [address ADDR] | unblock address ADDR [user NAME] */
static int unblock(struct auth *a, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	const char *user = NULL, *addr = NULL;

	if (argc == 1 && !strcmp(argv[0], "all")) {
		fprintf(out, "%zu\n", auth_unblock(a, NULL, NULL));
		return 0;
	}
	if (argc != 2 && argc != 4)
		goto usage;
	for (int i = 0; i < argc; i += 2) {
		if (!strcmp(argv[i], "user") && !user)
			user = argv[i + 1];
		else if (!strcmp(argv[i], "address") && !addr)
			addr = argv[i + 1];
		else
			goto usage;
	}
	if (addr && !address_ok(addr)) {
		snprintf(err, errlen, "not an IP address: %s", addr);
		return -1;
	}
	fprintf(out, "%zu\n", auth_unblock(a, user, addr));
	return 0;
usage:
	snprintf(err, errlen, "usage: unblock all | unblock user NAME [address ADDR] | unblock address ADDR");
	return -1;
}

int core_admin(void *arg, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	struct core *c = arg;

	if (argc == 1 && !strcmp(argv[0], "ping")) {
		fprintf(out, "sipd %s\n", SIPD_VERSION);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[0], "show") && !strcmp(argv[1], "blocks")) {
		struct blocks_out o = { out, time(NULL) };

		auth_blocks(core_auth(c), block_line, &o);
		return 0;
	}
	if (argc >= 1 && !strcmp(argv[0], "unblock"))
		return unblock(core_auth(c), argc - 1, argv + 1, out, err, errlen);
	snprintf(err, errlen, "unknown command '%s' (ping, show blocks, unblock)", argv[0]);
	return -1;
}
