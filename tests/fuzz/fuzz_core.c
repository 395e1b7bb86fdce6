/* fuzz_core.c: libFuzzer harness for the whole of sipd behind its UDP socket: each input is one datagram
 * sent to a sipd running in this process (core, transaction layer, registrar, proxy, auth, SQLite
 * store, one worker), and the harness waits for what sipd sends back before the next input, so that the
 * coverage of the worker thread belongs to the input that caused it. Registration and call
 * authentication are off, so that hostile REGISTERs and INVITEs reach the registrar and the proxy
 * rather than stopping at a challenge; alice and bob exist, and bob is registered at the harness's own
 * socket (INVITEs for him are forwarded here, and never answered). Besides the sanitizers in every
 * thread it asserts that whatever sipd sends parses (responses with a valid status, forwarded
 * requests with sipd's Via on top), and that sipd still answers an OPTIONS after the input.
 * The placeholders of the torture corpus are filled in before sending (@HOST@ @PORT@: sipd's address,
 * @LHOST@ @LPORT@: the harness's), so that its messages, and what the fuzzer makes of them, are
 * addressed to this sipd's domain and reach its users.
 * The harness also plays bob: an input may go on with "@RESPONSE@" and a response text, once or more;
 * each request sipd forwards to the harness is answered with the next of them up to a final one, their
 * @VIAS@ @FROM@ @TO@ @CALLID@ @CSEQ@ filled in from that request, so that hostile responses (3xx to
 * recurse on, with recurse_3xx on; challenges to merge, odd Record-Routes, 6xx, retransmitted 2xx)
 * reach the proxy's client transactions.
 * fuzz_core_tcp.c builds the same harness with FUZZ_CORE_TCP set: each input is then the bytes of one
 * new TCP connection to sipd (several messages, or parts of one), closed after sipd's answers.
 * fuzz_core_auth.c sets FUZZ_CORE_AUTH: REGISTERs and INVITEs from sipd's domain must authenticate, so
 * the inputs go through the digest checks (credentials, nonces, the limiter) on the real path. bob's
 * own REGISTER is then challenged, and he stays unregistered.
 * Seeds: tests/torture/valid, tests/torture/invalid and tests/fuzz/corpus-core/. Built and run by
 * `make fuzz`. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "core/core.h"
#include "net/transport.h"
#include "proxy/flow.h"
#include "proxy/rrsig.h"
#include "sip/msg.h"
#include "store/store.h"

#define ANSWER_WAIT_MS 5 /* sipd answers a datagram well within this on an idle machine */
#define QUIET_MS 2        /* after an answer: more may follow (a 100 then a final) */
#ifndef FUZZ_CORE_TCP
#define FUZZ_CORE_TCP 0
#endif
#ifndef FUZZ_CORE_AUTH
#define FUZZ_CORE_AUTH 0
#endif
#define YES_NO(b) ((b) ? "yes" : "no")

static struct config cfg;
static struct core *core;
static struct tp *tp;
static int peer = -1;           /* the harness's socket: sends the inputs, receives what sipd sends */
static struct sockaddr_in sipd; /* where sipd listens */
static unsigned probe_seq;

static void fail(const char *why)
{
	fprintf(stderr, "fuzz_core: %s\n", why);
	abort();
}

static uint16_t free_udp_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &l))
		fail("no free port");
	close(fd);
	return ntohs(a.sin_port);
}

/* Whether buf is a SIP message sipd may have sent: it parses, and a response has a status line of
 * 100 to 699. (Not sip_msg_check: the 400 to a request without Via or Call-ID lacks them too.) */
static const struct sip_msg *check_answer(const char *buf, size_t len)
{
	static struct sip_msg m;
	struct sip_error err;

	if (sip_msg_parse(&m, buf, len, &err)) {
		fprintf(stderr, "fuzz_core: sipd sent (%zu bytes, %s):\n%.*s\n", len, err.reason ? err.reason : "",
			(int)len, buf);
		fail("sipd sent something that does not parse");
	}
	if (!m.is_request && (m.status < 100 || m.status > 699))
		fail("sipd sent a response with a bad status");
	if (m.is_request && m.via.branch.l == 0)
		fail("sipd forwarded a request without its own Via branch");
	return &m;
}

/* bob's scripted answers: the responses of the current input, in order */
static const char *script[8];
static size_t script_len[8];
static unsigned nscript, iscript;

static void send_text(const char *text, size_t len);
static void trace(const char *dir, const char *buf, size_t len);

/* The value of placeholder k written at out (at most cap bytes); its length. */
typedef size_t(value_h)(unsigned k, char *out, size_t cap, const void *arg);

/* t with each of its placeholders (keys) replaced by its value, into out; the length, at most cap. */
static size_t expand(const char *t, size_t tl, const char *const *keys, unsigned nkeys, value_h *value,
		     const void *arg, char *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < tl && n < cap;) {
		unsigned k = 0;

		for (; t[i] == '@' && k < nkeys; k++)
			if (tl - i >= strlen(keys[k]) && memcmp(t + i, keys[k], strlen(keys[k])) == 0)
				break;
		if (t[i] != '@' || k == nkeys) {
			out[n++] = t[i++];
			continue;
		}
		i += strlen(keys[k]);
		n += value(k, out + n, cap - n, arg);
	}
	return n < cap ? n : cap;
}

/* Appends the text of every header field of req with this id as "Name: value" lines. */
static size_t put_lines(char *out, size_t cap, const struct sip_msg *req, enum sip_hdr_id id, const char *name)
{
	size_t n = 0;

	for (const struct sip_hdr *h = sip_msg_hdr(req, id); h && n < cap; h = sip_msg_hdr_next(req, h)) {
		int w = snprintf(out + n, cap - n, "%s: %.*s\r\n", name, (int)h->value.l, h->value.p);

		if (w < 0 || (size_t)w >= cap - n)
			return cap;
		n += (size_t)w;
	}
	return n;
}

static size_t put_value(char *out, size_t cap, const struct sip_msg *req, enum sip_hdr_id id)
{
	const struct sip_hdr *h = sip_msg_hdr(req, id);
	size_t l = h ? h->value.l : 0;

	if (l > cap)
		l = cap;
	memcpy(out, h ? h->value.p : "", l);
	return l;
}

/* bob's placeholders: fields of the request sipd forwarded him. */
static const char *const bob_keys[] = { "@VIAS@", "@FROM@", "@TO@", "@CALLID@", "@CSEQ@" };
static const enum sip_hdr_id bob_fields[] = { SIP_HDR_VIA, SIP_HDR_FROM, SIP_HDR_TO, SIP_HDR_CALL_ID, SIP_HDR_CSEQ };

static size_t bob_value(unsigned k, char *out, size_t cap, const void *arg)
{
	const struct sip_msg *req = arg;

	return bob_fields[k] == SIP_HDR_VIA ? put_lines(out, cap, req, SIP_HDR_VIA, "Via")
					    : put_value(out, cap, req, bob_fields[k]);
}

/* Sends the next scripted response to req, its placeholders filled in; false when it was provisional
 * (a status under 200: the next one answers req too). */
static bool answer_next(const struct sip_msg *req)
{
	static char out[65000];
	size_t n = expand(script[iscript], script_len[iscript], bob_keys, sizeof(bob_keys) / sizeof(bob_keys[0]),
			  bob_value, req, out, sizeof(out));

	iscript++;
	send_text(out, n);
	return !(n > 9 && memcmp(out, "SIP/2.0 1", 9) == 0);
}

/* Answers a request sipd forwarded here (to bob) with the scripted responses, up to a final one. */
static void answer_as_bob(const struct sip_msg *req)
{
	while (iscript < nscript && !answer_next(req))
		;
}

/* Reads what sipd sends on a TCP connection until it closes it or has been quiet for a while; each
 * message framed off the stream is checked. The number of messages read. */
static unsigned drain_stream(int fd, int first_wait_ms)
{
	static char buf[262144];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t have = 0;
	unsigned got = 0;

	while (poll(&p, 1, got ? QUIET_MS : first_wait_ms) > 0) {
		ssize_t n = recv(fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
		long l;

		if (n <= 0)
			break;
		have += (size_t)n;
		for (;;) {
			size_t crlf = 0; /* the pong to a CRLFCRLF keep-alive ping (RFC 5626 3.5.1) */

			while (crlf < have && (buf[crlf] == '\r' || buf[crlf] == '\n'))
				crlf++;
			memmove(buf, buf + crlf, have - crlf);
			have -= crlf;
			if ((l = sip_frame(buf, have, sizeof(buf))) <= 0)
				break;
			check_answer(buf, (size_t)l);
			memmove(buf, buf + l, have - (size_t)l);
			have -= (size_t)l;
			got++;
		}
		if (l < 0)
			fail("sipd sent a stream that does not frame");
	}
	return got;
}

/* Reads what sipd sends until it has been quiet for a while; the number of datagrams read. */
static unsigned drain(int first_wait_ms)
{
	static char buf[65536];
	struct pollfd p = { .fd = peer, .events = POLLIN };
	unsigned got = 0;

	while (poll(&p, 1, got ? QUIET_MS : first_wait_ms) > 0) {
		ssize_t n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT);

		const struct sip_msg *m;

		if (n <= 0)
			break;
		trace("<-", buf, (size_t)n);
		m = check_answer(buf, (size_t)n);
		if (m->is_request && m->mid != SIP_METHOD_ACK)
			answer_as_bob(m);
		got++;
	}
	return got;
}

/* One TCP connection carrying text; sipd's answers on it are read and checked, then it is closed. */
static void send_stream(const char *text, size_t len)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct linger hard = { 1, 0 };
	size_t off = 0;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sipd, sizeof(sipd)))
		fail("cannot connect to sipd");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (off < len) {
		ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break; /* sipd closed it (too much, or garbage): allowed */
		off += (size_t)n;
	}
	drain_stream(fd, ANSWER_WAIT_MS);
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard)); /* no TIME_WAIT pile-up */
	close(fd);
	drain(QUIET_MS); /* what sipd sent over UDP meanwhile (to bob) */
}

/* FUZZ_CORE_TRACE=1 in the environment: the first line of every datagram, both ways, on stderr. */
static void trace(const char *dir, const char *buf, size_t len)
{
	static int on = -1;
	const char *eol;

	if (on < 0)
		on = getenv("FUZZ_CORE_TRACE") != NULL;
	if (!on)
		return;
	eol = memchr(buf, '\r', len);
	fprintf(stderr, "%s %.*s\n", dir, (int)(eol ? (size_t)(eol - buf) : len), buf);
}

static void send_text(const char *text, size_t len)
{
	trace("->", text, len);
	if (sendto(peer, text, len, 0, (struct sockaddr *)&sipd, sizeof(sipd)) < 0 && errno != EMSGSIZE)
		fail("cannot send to sipd");
}

static uint16_t peer_port(void)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);

	if (getsockname(peer, (struct sockaddr *)&a, &l))
		fail("getsockname");
	return ntohs(a.sin_port);
}

/* sipd must still be there: an OPTIONS to it gets a 200. */
static void probe(void)
{
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "OPTIONS sip:127.0.0.1:%u SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bKprobe%u\r\n"
			 "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1>\r\n"
			 "Call-ID: probe%u\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			 ntohs(sipd.sin_port), peer_port(), probe_seq, probe_seq);

	probe_seq++;
	send_text(req, (size_t)n);
	if (!drain(2000))
		fail("sipd no longer answers an OPTIONS");
}

static char workdir[64];

/* The work directory goes with the process (sipd's threads may still hold the files: unlinking is fine). */
static void remove_workdir(void)
{
	static const char *files[] = { "sipd.ini", "sipd.db", "sipd.db-wal", "sipd.db-shm", "sipd.db-journal" };
	char path[128];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", workdir, files[i]);
		unlink(path);
	}
	rmdir(workdir);
}

static void write_config(const char *dir, uint16_t port)
{
	char path[512], err[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sipd.ini", dir);
	if (!(f = fopen(path, "w")))
		fail("cannot write the configuration");
	fprintf(f,
		"[general]\nlisten = udp:127.0.0.1:%u, tcp:127.0.0.1:%u\nworkers = 1\nlog_level = error\n"
		"[limits]\nmax_transactions = 2000\nmax_answered = 2000\n"
		"[auth]\nregister_auth = %s\nmax_failures = 3\n"
		"[proxy]\nauth_calls = %s\nresolve_next_hops = no\nrecurse_3xx = yes\n"
		"[dns]\nservers = 127.0.0.1:9\ntimeout = 100\n"
		"[database]\npath = %s/sipd.db\nsync = normal\n"
		"[user alice]\npassword = a\nextension = 100\n[user bob]\npassword = b\nextension = 101\n",
		port, port, YES_NO(FUZZ_CORE_AUTH), YES_NO(FUZZ_CORE_AUTH), dir);
	fclose(f);
	config_defaults(&cfg);
	if (config_load(&cfg, path, err, sizeof(err)))
		fail(err);
}

/* The Record-Route key is 00 01 .. 0f (stored before sipd starts, so sipd takes it), so that seeds of
 * requests in a dialog can carry a valid ;sg= (@SG@: for the input's Call-ID, toward the harness's
 * address) and reach the relaying code behind the signature check (tests/fuzz/corpus-core/bye-routed). */
static const uint8_t rr_key[RRSIG_KEY] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void fixed_rr_key(const char *dir)
{
	uint8_t key[16], got[16];
	struct store *s = NULL;
	const char *why = NULL;
	char path[512];

	memcpy(key, rr_key, sizeof(key));
	snprintf(path, sizeof(path), "%s/sipd.db", dir);
	if (store_open(&s, path, false, &why) || store_secret(s, "record_route", key, sizeof(key), got))
		fail("cannot store the Record-Route key");
	store_close(s);
}

static void start(void)
{
	char dir[] = "/tmp/sipd-fuzz-core.XXXXXX", reg[768], where[64];
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct tp_config tc = { 0 };
	uint16_t port = free_udp_port();
	int n;

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		fail("mkdtemp");
	snprintf(workdir, sizeof(workdir), "%s", dir);
	atexit(remove_workdir);
	write_config(dir, port);
	snprintf(where, sizeof(where), "127.0.0.1:%u", port);
	if (tp_addr_parse(&tc.listen[0].addr, where, port))
		fail("listen address");
	tc.listen[0].proto = TP_UDP;
	tc.listen[1] = tc.listen[0];
	tc.listen[1].proto = TP_TCP;
	tc.nlisten = 2;
	tc.workers = 1;
	tc.max_msg_size = cfg.max_message_size;
	tc.tcp_max_conns = cfg.tcp_max_connections;
	tc.tcp_idle_timeout_s = cfg.tcp_idle_timeout;
	tc.frame = core_frame;
	tc.recv = core_on_message;
	tc.unreachable = core_unreachable;
	tc.worker_stop = core_worker_stop;
	tc.stopped = core_stopped;
	fixed_rr_key(dir);
	if (core_new(&core, &cfg))
		fail("core_new");
	tc.arg = core;
	if (tp_start(&tp, &tc))
		fail("tp_start");
	sipd = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port),
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if ((peer = socket(AF_INET, SOCK_DGRAM, 0)) < 0 || bind(peer, (struct sockaddr *)&me, sizeof(me)))
		fail("harness socket");
	/* bob lives here: INVITEs and MESSAGEs for him come to this socket */
	n = snprintf(reg, sizeof(reg),
		     "REGISTER sip:127.0.0.1:%u SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bKreg\r\n"
		     "Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=r\r\nTo: <sip:bob@127.0.0.1>\r\n"
		     "Call-ID: reg@fuzz\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@127.0.0.1:%u>\r\n"
		     "Expires: 86400\r\nContent-Length: 0\r\n\r\n",
		     port, peer_port(), peer_port());
	send_text(reg, (size_t)n);
	if (!drain(5000))
		fail("bob's REGISTER got no answer"); /* a 200, or a 401 when authentication is on */
	probe();
}

static size_t string_value(unsigned k, char *out, size_t cap, const void *arg)
{
	const char *const *values = arg;
	size_t l = strlen(values[k]);

	l = l < cap ? l : cap;
	memcpy(out, values[k], l);
	return l;
}

/* @SG@: sipd's Record-Route signature for the input's first Call-ID, toward the harness. */
static void signature_of(const uint8_t *data, size_t size, char sg[RRSIG_HEX + 1])
{
	static const char field[] = "\nCall-ID:";
	const char *p = memmem(data, size, field, sizeof(field) - 1), *end = (const char *)data + size, *e;
	char buf[RRSIG_PIN];

	memset(sg, '0', RRSIG_HEX);
	sg[RRSIG_HEX] = '\0';
	if (!p)
		return;
	for (p += sizeof(field) - 1; p < end && *p == ' '; p++)
		;
	for (e = p; e < end && *e != '\r' && *e != '\n'; e++)
		;
	rrsig_sign(rr_key, slice_make(p, (size_t)(e - p)), rrsig_pin(buf, SLICE_LIT("127.0.0.1"), peer_port()), sg);
}

/* @NAT@: sipd's ;nat= token (flow.h) for the harness's address, as sipd writes it into the Contact of a
 * party behind a NAT, so that seeds of requests in a dialog reach nat_target with a token that holds. */
static void nat_token_of(char *out, size_t n)
{
	struct tp_addr me;
	char addr[32];
	struct sbuf b;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", peer_port());
	sbuf_init(&b, out, n - 1);
	if (tp_addr_parse(&me, addr, 0) || !flow_token_value(&b, &me) || b.overflow)
		b.len = 0;
	out[b.len] = '\0';
}

/* The input with its placeholders filled in; its length (at most cap). */
static size_t fill_in(const uint8_t *data, size_t size, char *out, size_t cap)
{
	static const char *const keys[] = { "@LHOST@", "@LPORT@", "@HOST@", "@PORT@", "@SG@", "@NAT@" };
	char sipd_port[8], my_port[8], sg[RRSIG_HEX + 1], nat[128];
	const char *values[] = { "127.0.0.1", my_port, "127.0.0.1", sipd_port, sg, nat };

	snprintf(sipd_port, sizeof(sipd_port), "%u", ntohs(sipd.sin_port));
	snprintf(my_port, sizeof(my_port), "%u", peer_port());
	signature_of(data, size, sg);
	nat_token_of(nat, sizeof(nat));
	return expand((const char *)data, size, keys, sizeof(keys) / sizeof(keys[0]), string_value, values, out, cap);
}

/* Cuts the scripted responses off the end of msg (see the top); the length of what is sent to sipd. */
static size_t split_script(char *msg, size_t len)
{
	static const char mark[] = "@RESPONSE@";
	const size_t ml = sizeof(mark) - 1;
	size_t head = len;

	nscript = iscript = 0;
	for (size_t i = 0; i + ml <= len; i++) {
		if (memcmp(msg + i, mark, ml) != 0)
			continue;
		if (nscript)
			script_len[nscript - 1] = (size_t)(msg + i - script[nscript - 1]);
		else
			head = i;
		if (nscript == sizeof(script) / sizeof(script[0]))
			break;
		script[nscript++] = msg + i + ml;
		script_len[nscript - 1] = len - i - ml;
		i += ml - 1;
	}
	return head;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char msg[65000];
	static unsigned inputs;
	size_t len;

	if (!tp)
		start();
	len = fill_in(data, size, msg, sizeof(msg));
	if (len == 0)
		return 0;
	len = split_script(msg, len);
	if (len == 0)
		return 0;
	if (FUZZ_CORE_TCP) {
		send_stream(msg, len);
	} else {
		send_text(msg, len);
		drain(ANSWER_WAIT_MS);
	}
	/* every so often, and always at the first inputs: sipd is alive and answering */
	if (++inputs % 256 == 0 || inputs < 16)
		probe();
	return 0;
}
