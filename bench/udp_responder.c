/*
 * udp_responder.c: the cheapest possible SIP "server", used by bench/run.sh to
 * measure the load generator's own ceiling.
 *
 * Answers every SIP request received on a UDP socket with a minimal 200 OK
 * that copies Via (all of them, in order), From, To (adding ";tag=x" when it
 * has no tag), Call-ID and CSeq, plus "Content-Length: 0".  Responses are
 * sent back to the packet's source address, batched with recvmmsg/sendmmsg.
 * Single thread, no allocation after start-up.  Anything that is not a
 * request (responses, garbage) is ignored.
 *
 * With the third argument "challenge" (bench/run.sh --register), a REGISTER
 * without an Authorization header is answered 401 with a fixed MD5 digest
 * challenge (realm "sipd", qop=auth), and one with Authorization 200 OK:
 * the credentials are not checked.  That is the cheapest peer for SIPp's
 * REGISTER-with-digest scenario, so it measures SIPp's ceiling for it.
 *
 * Usage: udp_responder [IP] [PORT] [challenge]    (default 127.0.0.1 5074)
 * Prints "ready" on stdout once bound; exits on SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define MAXPKT 65536
#define MAXOUT 8192

static volatile sig_atomic_t stop;
static int challenge; /* 401 to a REGISTER without credentials */

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Header names we copy: long and compact forms. */
enum { H_NONE, H_VIA, H_FROM, H_TO, H_CALLID, H_CSEQ, H_AUTH, H_KINDS };

static int header_kind(const char *name, size_t len)
{
	static const struct {
		const char *name;
		int kind;
	} tab[] = {
		{"via", H_VIA},  {"v", H_VIA},       {"from", H_FROM}, {"f", H_FROM},
		{"to", H_TO},    {"t", H_TO},        {"call-id", H_CALLID},
		{"i", H_CALLID}, {"cseq", H_CSEQ},   {"authorization", H_AUTH},
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strlen(tab[i].name) == len && strncasecmp(tab[i].name, name, len) == 0)
			return tab[i].kind;
	return H_NONE;
}

static const char *canonical[] = {
	[H_VIA] = "Via", [H_FROM] = "From", [H_TO] = "To",
	[H_CALLID] = "Call-ID", [H_CSEQ] = "CSeq",
};

struct out {
	char *p;
	size_t len, cap;
	int overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n > o->cap) {
		o->overflow = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* Does a To header value carry a tag parameter (outside the <...> URI)? */
static int has_tag(const char *v, size_t n)
{
	const char *end = v + n;
	const char *gt = memchr(v, '>', n);
	const char *s = gt ? gt + 1 : v;
	for (; s + 4 <= end; s++)
		if (*s == ';') {
			const char *q = s + 1;
			while (q < end && (*q == ' ' || *q == '\t'))
				q++;
			if (end - q >= 3 && strncasecmp(q, "tag", 3) == 0 &&
			    (q + 3 == end || q[3] == '=' || q[3] == ' ' || q[3] == '\t'))
				return 1;
		}
	return 0;
}

/* Builds the response into o; returns 0 when the packet is not a request. */
/* noinline: keeps a symbol for bench.py --callgrind (handler Ir). */
__attribute__((noinline, noclone)) static int build_reply(const char *in, size_t n, struct out *o)
{
	const char *end = in + n;
	const char *line = in;
	const char *eol = memchr(line, '\n', n);
	if (!eol || n < 8 || memcmp(in, "SIP/", 4) == 0)
		return 0;

	/* One header buffer per kind, in arrival order within the kind;
	 * emitted in a fixed order (Via first) which is what RFC 3261 needs. */
	const char *hv[H_KINDS][16];
	size_t hl[H_KINDS][16];
	int hn[H_KINDS] = {0};

	for (line = eol + 1; line < end; line = eol + 1) {
		eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		size_t ll = (size_t)(eol - line);
		if (ll && line[ll - 1] == '\r')
			ll--;
		if (ll == 0)
			break; /* end of headers */
		const char *colon = memchr(line, ':', ll);
		if (!colon)
			continue;
		size_t nl = (size_t)(colon - line);
		while (nl && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
			nl--;
		int k = header_kind(line, nl);
		if (k == H_NONE || hn[k] >= 16)
			continue;
		const char *v = colon + 1;
		const char *ve = line + ll;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		hv[k][hn[k]] = v;
		hl[k][hn[k]] = (size_t)(ve - v);
		hn[k]++;
		if (eol == end)
			break;
	}
	if (!hn[H_VIA] || !hn[H_FROM] || !hn[H_TO] || !hn[H_CALLID] || !hn[H_CSEQ])
		return 0;

	int unauth = challenge && n > 9 && memcmp(in, "REGISTER ", 9) == 0 && !hn[H_AUTH];

	o->len = 0;
	o->overflow = 0;
	if (unauth)
		put(o, "SIP/2.0 401 Unauthorized\r\n", 26);
	else
		put(o, "SIP/2.0 200 OK\r\n", 16);
	static const int order[] = {H_VIA, H_FROM, H_TO, H_CALLID, H_CSEQ};
	for (size_t i = 0; i < 5; i++) {
		int k = order[i];
		for (int j = 0; j < hn[k]; j++) {
			put(o, canonical[k], strlen(canonical[k]));
			put(o, ": ", 2);
			put(o, hv[k][j], hl[k][j]);
			if (k == H_TO && j == 0 && !has_tag(hv[k][j], hl[k][j]))
				put(o, ";tag=x", 6);
			put(o, "\r\n", 2);
			if (k != H_VIA)
				break; /* single-instance headers: first one only */
		}
	}
	if (unauth) {
		static const char ch[] = "WWW-Authenticate: Digest realm=\"sipd\", "
					 "nonce=\"bench0123456789abcdef\", algorithm=MD5, qop=\"auth\"\r\n";
		put(o, ch, sizeof ch - 1);
	}
	put(o, "Content-Length: 0\r\n\r\n", 21);
	return !o->overflow;
}

int main(int argc, char **argv)
{
	const char *ip = argc > 1 ? argv[1] : "127.0.0.1";
	int port = argc > 2 ? atoi(argv[2]) : 5074;
	challenge = argc > 3 && strcmp(argv[3], "challenge") == 0;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: recvmmsg returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	int buf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1) {
		fprintf(stderr, "udp_responder: bad address %s\n", ip);
		return 1;
	}
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		perror("bind");
		return 1;
	}

	static char inbuf[BATCH][MAXPKT];
	static char outbuf[BATCH][MAXOUT];
	static struct sockaddr_storage peer[BATCH];
	static struct iovec iin[BATCH], iout[BATCH];
	static struct mmsghdr min[BATCH], mout[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iin[i].iov_base = inbuf[i];
		iin[i].iov_len = MAXPKT;
		min[i].msg_hdr.msg_iov = &iin[i];
		min[i].msg_hdr.msg_iovlen = 1;
		min[i].msg_hdr.msg_name = &peer[i];
	}

	printf("ready\n");
	fflush(stdout);

	unsigned long long answered = 0;
	while (!stop) {
		for (int i = 0; i < BATCH; i++)
			min[i].msg_hdr.msg_namelen = sizeof peer[i];
		int got = recvmmsg(fd, min, BATCH, MSG_WAITFORONE, NULL);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			perror("recvmmsg");
			return 1;
		}
		int nout = 0;
		for (int i = 0; i < got; i++) {
			struct out o = {outbuf[nout], 0, MAXOUT, 0};
			if (!build_reply(inbuf[i], min[i].msg_len, &o))
				continue;
			iout[nout].iov_base = outbuf[nout];
			iout[nout].iov_len = o.len;
			memset(&mout[nout].msg_hdr, 0, sizeof mout[nout].msg_hdr);
			mout[nout].msg_hdr.msg_iov = &iout[nout];
			mout[nout].msg_hdr.msg_iovlen = 1;
			mout[nout].msg_hdr.msg_name = &peer[i];
			mout[nout].msg_hdr.msg_namelen = min[i].msg_hdr.msg_namelen;
			nout++;
		}
		for (int off = 0; off < nout;) {
			int sent = sendmmsg(fd, mout + off, (unsigned)(nout - off), 0);
			if (sent < 0) {
				if (errno == EINTR)
					continue;
				/* A full or failed send drops the rest of the batch,
				 * like a real server would under overload. */
				break;
			}
			off += sent;
			answered += (unsigned long long)sent;
		}
	}
	fprintf(stderr, "udp_responder: answered %llu requests\n", answered);
	close(fd);
	return 0;
}
