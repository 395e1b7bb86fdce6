/* torture_parse.c: runs the torture corpus (DIR/valid/ and DIR/invalid/, one .sip file each) through the parser.
 *
 * valid/:   sip_msg_parse and sip_msg_check succeed, the core fields are set, the header table
 *           agrees with the bytes (one entry per field line, folded lines joined), and every Via,
 *           Contact, Route, Record-Route, From, To value and the Request-URI pass their typed parsers.
 * invalid/: sip_msg_parse or sip_msg_check fails with the status the file name starts with
 *           ("400-", "505-"), or with status 0 for "drop-"; 4xx/5xx carry a reason. The Request-URI
 *           is judged as sipd's core does it (RFC 3261 8.2.2.1, after the check): sip_uri_parse
 *           refusing it (EBADMSG) means 400. "414-" and
 *           "513-" are limits sipd applies from its configuration after parsing ([limits] in
 *           docs/configuration.md): those messages are well-formed, so here they must parse and pass
 *           the check; run_live.sh asserts the status.
 *
 * Files hold placeholders for the live run (@HOST@ @PORT@ for sipd, @LHOST@ @LPORT@ for the sender);
 * here they become fixed addresses. Every message sits in a heap block of exactly its size so that
 * AddressSanitizer catches a read past the end. Usage: torture_parse DIR; exits 1 on any mismatch. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/msg.h"
#include "sip/uri.h"

static const struct {
	const char *from, *to;
} placeholders[] = {
	{ "@LHOST@", "127.0.0.1" },
	{ "@LPORT@", "5070" },
	{ "@HOST@", "127.0.0.1" },
	{ "@PORT@", "5060" },
};

static char why[512]; /* what the last failed check saw */

static bool failf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return false;
}

static int read_file(const char *path, char **bufp, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	int err = 0;

	if (!f)
		return errno;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		err = EIO;
		goto out;
	}
	buf = malloc(n ? (size_t)n : 1);
	if (!buf) {
		err = ENOMEM;
		goto out;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		err = EIO;
		goto out;
	}
	*bufp = buf;
	*lenp = (size_t)n;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return err;
}

/* Replaces the placeholders into a new block of exactly the result's size. */
static char *substitute(const char *in, size_t len, size_t *outlen)
{
	size_t cap = len * 2 + 64, o = 0;
	char *tmp = malloc(cap), *out;

	if (!tmp)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t k, n = sizeof(placeholders) / sizeof(placeholders[0]);

		for (k = 0; k < n; k++) {
			size_t fl = strlen(placeholders[k].from);

			if (len - i >= fl && memcmp(in + i, placeholders[k].from, fl) == 0) {
				size_t tl = strlen(placeholders[k].to);

				memcpy(tmp + o, placeholders[k].to, tl);
				o += tl;
				i += fl;
				break;
			}
		}
		if (k == n)
			tmp[o++] = in[i++];
	}
	out = malloc(o ? o : 1);
	if (out)
		memcpy(out, tmp, o);
	free(tmp);
	*outlen = o;
	return out;
}

/* Header field lines between the start line and the empty line, not counting continuations. */
static long count_field_lines(const char *buf, size_t len)
{
	size_t off = 0;
	long n = 0;
	bool first = true;

	while (off < len && (buf[off] == '\r' || buf[off] == '\n'))
		off++;
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t l;

		if (!nl)
			return -1;
		l = (size_t)(nl - (buf + off));
		if (l && buf[off + l - 1] == '\r')
			l--;
		if (!first && l == 0)
			return n;
		if (!first && buf[off] != ' ' && buf[off] != '\t')
			n++;
		first = false;
		off = (size_t)(nl - buf) + 1;
	}
	return -1;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* sip/sips/tel URIs of the corpus must parse; returns false with why set. */
static bool uri_ok(const char *what, struct slice s)
{
	struct sip_uri u;
	int rc = sip_uri_parse(&u, s);

	if (rc != 0)
		return failf("%s URI '%.*s' does not parse (%d)", what, SLICE_ARG(s), rc);
	if (u.scheme == SIP_SCHEME_OTHER)
		return failf("%s URI '%.*s': scheme not recognised", what, SLICE_ARG(s));
	return true;
}

static bool check_headers(const struct sip_msg *m)
{
	long lines = count_field_lines(m->buf, m->len);

	if (lines != (long)m->nhdrs)
		return failf("%u header entries for %ld field lines", m->nhdrs, lines);
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct sip_hdr *h = &m->hdrs[i], *byname;

		if (!sip_token_valid(h->name))
			return failf("header %u: name '%.*s' is not a token", i, SLICE_ARG(h->name));
		if (sip_hdr_lookup(h->name) != (enum sip_hdr_id)h->id)
			return failf("header '%.*s': id %u, lookup says %d", SLICE_ARG(h->name), h->id,
				     sip_hdr_lookup(h->name));
		if (h->value.l && (is_ws(h->value.p[0]) || is_ws(h->value.p[h->value.l - 1])))
			return failf("header '%.*s': value '%.*s' is not trimmed", SLICE_ARG(h->name),
				     SLICE_ARG(h->value));
		/* by name: the first field of the same id, or for unknown ones the first of that name */
		byname = sip_msg_hdr_byname(m, h->name);
		if (h->id != SIP_HDR_OTHER ? byname != sip_msg_hdr(m, (enum sip_hdr_id)h->id)
					   : !byname || !slice_caseeq(byname->name, h->name))
			return failf("sip_msg_hdr_byname('%.*s') finds the wrong field", SLICE_ARG(h->name));
	}
	for (int id = 1; id < SIP_HDR_COUNT; id++) {
		unsigned n = 0;

		for (const struct sip_hdr *h = sip_msg_hdr(m, (enum sip_hdr_id)id); h; h = sip_msg_hdr_next(m, h)) {
			if (h->id != id)
				return failf("chain of %s holds a header of id %u", sip_hdr_name((enum sip_hdr_id)id), h->id);
			n++;
		}
		if (n != m->count[id])
			return failf("%s: chain has %u, count says %u", sip_hdr_name((enum sip_hdr_id)id), n, m->count[id]);
	}
	return true;
}

static bool check_lists(const struct sip_msg *m)
{
	struct sip_list_iter it;
	struct slice e;
	unsigned n = 0;

	sip_list_begin(&it, m, SIP_HDR_VIA);
	while (sip_list_iter_next(&it, &e)) {
		struct sip_via v;

		if (sip_via_parse(&v, e) != 0)
			return failf("Via element '%.*s' does not parse", SLICE_ARG(e));
		if (!v.host.l || !v.transport.l || !v.branch.l)
			return failf("Via element '%.*s': host, transport or branch empty", SLICE_ARG(e));
		n++;
	}
	if (n < m->count[SIP_HDR_VIA])
		return failf("%u Via elements for %u Via fields", n, m->count[SIP_HDR_VIA]);

	sip_list_begin(&it, m, SIP_HDR_CONTACT);
	n = 0;
	bool star = false;
	while (sip_list_iter_next(&it, &e)) {
		struct sip_addr a;
		long expires;
		int q;

		if (sip_contact_parse(&a, &expires, &q, e) != 0)
			return failf("Contact element '%.*s' does not parse", SLICE_ARG(e));
		if (!a.star && !uri_ok("Contact", a.uri))
			return false;
		star |= a.star;
		n++;
	}
	if (star && n > 1)
		return failf("Contact: * together with other contacts"); /* RFC 3261 10.2.2 */

	for (int id = SIP_HDR_ROUTE; id <= SIP_HDR_RECORD_ROUTE; id++) {
		sip_list_begin(&it, m, (enum sip_hdr_id)id);
		while (sip_list_iter_next(&it, &e)) {
			struct sip_addr a;

			if (sip_addr_parse(&a, e) != 0 || a.star)
				return failf("%s element '%.*s' does not parse", sip_hdr_name((enum sip_hdr_id)id),
					     SLICE_ARG(e));
			if (!uri_ok(sip_hdr_name((enum sip_hdr_id)id), a.uri))
				return false;
		}
	}
	return true;
}

static bool check_valid(const char *buf, size_t len)
{
	static struct sip_msg m; /* ~2 KB of header table: keep it off the stack */
	struct sip_error err = { 0, NULL };
	int rc;

	rc = sip_msg_parse(&m, buf, len, &err);
	if (rc != 0)
		return failf("sip_msg_parse: %d, status %u '%s'", rc, err.status, err.reason ? err.reason : "(null)");
	rc = sip_msg_check(&m, &err);
	if (rc != 0)
		return failf("sip_msg_check: %d, status %u '%s'", rc, err.status, err.reason ? err.reason : "(null)");
	if (!slice_caseeq_cstr(m.version, "SIP/2.0"))
		return failf("version '%.*s'", SLICE_ARG(m.version));
	if (!m.via.host.l || !m.via.transport.l || !m.via.branch.l)
		return failf("top Via not filled in (host '%.*s')", SLICE_ARG(m.via.host));
	if (!m.call_id.l)
		return failf("Call-ID not filled in");
	if (!m.cseq.method.l)
		return failf("CSeq not filled in");
	if (!m.from.uri.l || !m.to.uri.l)
		return failf("From or To URI not filled in");
	if (!m.from.tag.l)
		return failf("From tag not filled in");
	if (!uri_ok("From", m.from.uri) || !uri_ok("To", m.to.uri))
		return false;
	if (m.is_request) {
		if (!m.method.l || !m.ruri.l)
			return failf("request line not filled in");
		if (!slice_eq(m.cseq.method, m.method) || m.cseq.mid != m.mid)
			return failf("CSeq method '%.*s' vs '%.*s'", SLICE_ARG(m.cseq.method), SLICE_ARG(m.method));
		if (!uri_ok("Request", m.ruri))
			return false;
	} else if (m.status < 100 || m.status > 699) {
		return failf("status %u", m.status);
	}
	if (m.body.p != m.buf + m.hdr_len)
		return failf("body does not start right after the header block");
	if (m.content_length >= 0 && m.body.l != (size_t)m.content_length)
		return failf("body of %zu bytes for Content-Length %ld", m.body.l, m.content_length);
	if (m.content_length < 0 && m.body.l != len - m.hdr_len)
		return failf("without Content-Length the body must run to the end of the datagram");
	if (!check_headers(&m) || !check_lists(&m))
		return false;
	/* On a stream the same bytes frame as exactly this message (leading CRLFs are the transport's). */
	if (m.content_length >= 0 && buf[0] != '\r' && buf[0] != '\n') {
		long want = (long)(m.hdr_len + (size_t)m.content_length);
		long got = sip_frame(buf, len, 65536);

		if (got != want)
			return failf("sip_frame: %ld, want %ld", got, want);
		if ((got = sip_frame(buf, (size_t)want - 1, 65536)) != 0)
			return failf("sip_frame on all but the last byte: %ld, want 0", got);
	}
	return true;
}

/* Expected failure status from the file name: "400-...", "505-...", or "drop-..." (0). */
static int expected_status(const char *name)
{
	char *end;
	long st;

	if (strncmp(name, "drop-", 5) == 0)
		return 0;
	st = strtol(name, &end, 10);
	if (end == name || *end != '-' || st < 400 || st > 599)
		return -1;
	return (int)st;
}

static bool check_invalid(const char *name, const char *buf, size_t len)
{
	static struct sip_msg m;
	struct sip_error err = { 999, NULL };
	int want = expected_status(name), rc;

	if (want < 0)
		return failf("file name must start with 400-/505-/414-/513-/drop-");
	if (want == 414 || want == 513)
		return check_valid(buf, len);
	rc = sip_msg_parse(&m, buf, len, &err);
	if (rc == 0) {
		err.status = 999;
		err.reason = NULL;
		rc = sip_msg_check(&m, &err);
	}
	if (rc == 0 && m.is_request) {
		struct sip_uri u;

		if (sip_uri_parse(&u, m.ruri) == EBADMSG) {
			rc = EBADMSG;
			err = (struct sip_error){ 400, "Malformed Request-URI" };
		}
	}
	if (rc == 0)
		return failf("accepted; want status %d", want);
	if (rc != EBADMSG)
		return failf("failed with %d, want EBADMSG", rc);
	if (err.status != want)
		return failf("status %u '%s', want %d", err.status, err.reason ? err.reason : "(null)", want);
	if (want >= 400 && (!err.reason || !err.reason[0]))
		return failf("status %u without a reason", err.status);
	return true;
}

static int is_sip_file(const struct dirent *d)
{
	size_t l = strlen(d->d_name);

	return l > 4 && strcmp(d->d_name + l - 4, ".sip") == 0;
}

static void run_dir(const char *dir, const char *sub, unsigned *pass, unsigned *fail)
{
	char path[4096];
	struct dirent **ents;
	int n;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	n = scandir(path, &ents, is_sip_file, alphasort);
	if (n < 0) {
		printf("FAIL %s: cannot read directory: %s\n", path, strerror(errno));
		(*fail)++;
		return;
	}
	if (n == 0) {
		printf("FAIL %s: no .sip files\n", path);
		(*fail)++;
	}
	for (int i = 0; i < n; i++) {
		char *raw = NULL, *msg;
		size_t rawlen = 0, len = 0;
		bool ok;
		int err;

		snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, ents[i]->d_name);
		err = read_file(path, &raw, &rawlen);
		if (err) {
			printf("FAIL %s/%s: %s\n", sub, ents[i]->d_name, strerror(err));
			(*fail)++;
			free(ents[i]);
			continue;
		}
		msg = substitute(raw, rawlen, &len);
		free(raw);
		why[0] = '\0';
		if (!msg)
			ok = failf("out of memory");
		else if (strcmp(sub, "valid") == 0)
			ok = check_valid(msg, len);
		else
			ok = check_invalid(ents[i]->d_name, msg, len);
		free(msg);
		if (ok) {
			printf("ok   %s/%s\n", sub, ents[i]->d_name);
			(*pass)++;
		} else {
			printf("FAIL %s/%s: %s\n", sub, ents[i]->d_name, why);
			(*fail)++;
		}
		free(ents[i]);
	}
	free(ents);
}

int main(int argc, char **argv)
{
	unsigned pass = 0, fail = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s TORTURE_DIR\n", argv[0]);
		return 2;
	}
	run_dir(argv[1], "valid", &pass, &fail);
	run_dir(argv[1], "invalid", &pass, &fail);
	printf("torture: %u passed, %u failed\n", pass, fail);
	return fail ? 1 : 0;
}
