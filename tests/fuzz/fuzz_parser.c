/* fuzz_parser.c: libFuzzer harness for the SIP message engine: parse, check, walk every header with the
 * typed parsers, parse every URI met, and frame the input as a stream would. Besides the sanitizers it
 * asserts invariants a zero-copy parser must keep: every slice handed back lies inside the input, and
 * URI equality is reflexive and symmetric. A flow token in a URI is read as in a Route of sipd's.
 * Seeds: tests/fuzz/corpus/. Built by `make fuzz`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/flow.h"
#include "sip/msg.h"
#include "sip/uri.h"

static const char *in_p; /* the current input, for the slice bounds check */
static size_t in_l;

/* A set slice must point into the input (an unset one is {NULL, 0}). */
static void inside(struct slice s, const char *what)
{
	if (!s.p) {
		if (s.l) {
			fprintf(stderr, "%s: NULL slice with length %zu\n", what, s.l);
			abort();
		}
		return;
	}
	if (s.p < in_p || s.p > in_p + in_l || s.l > (size_t)(in_p + in_l - s.p)) {
		fprintf(stderr, "%s: slice outside the input\n", what);
		abort();
	}
}

static void walk_params(struct slice params)
{
	struct slice rest = params, name, value;
	unsigned guard = 0;

	while (sip_param_next(&rest, &name, &value) && guard++ < 4096) {
		inside(name, "param name");
		inside(value, "param value");
	}
}

static void fuzz_uri(struct slice s, struct sip_uri *out)
{
	struct sip_uri u;
	struct slice tok;
	struct tp_addr flow_peer;
	char dec[512];
	long n;

	/* unset slices ({NULL, 0}) are never handed to the URI parser by sipd either */
	if (!s.p || sip_uri_parse(&u, s) != 0) {
		if (out)
			memset(out, 0, sizeof(*out));
		return;
	}
	inside(u.scheme_s, "uri scheme");
	inside(u.user, "uri user");
	inside(u.password, "uri password");
	inside(u.host, "uri host");
	inside(u.params, "uri params");
	inside(u.headers, "uri headers");
	inside(u.transport, "uri transport");
	inside(u.maddr, "uri maddr");
	inside(u.user_param, "uri user param");
	inside(u.method, "uri method");
	inside(u.ttl, "uri ttl");
	walk_params(u.params);
	/* a Route of sipd's may carry a flow token (src/proxy/flow.c): whatever comes back is checked */
	if (sip_param_find(u.params, "flow", &tok))
		(void)flow_token_read(tok, &flow_peer);
	n = sip_unescape(dec, sizeof(dec), u.user);
	if (n > (long)u.user.l || n > (long)sizeof(dec)) {
		fprintf(stderr, "sip_unescape grew the text\n");
		abort();
	}
	if ((u.scheme == SIP_SCHEME_SIP || u.scheme == SIP_SCHEME_SIPS) && !sip_uri_equal(&u, &u)) {
		fprintf(stderr, "sip_uri_equal is not reflexive: '%.*s'\n", SLICE_ARG(s));
		abort();
	}
	if (out)
		*out = u;
}

static void fuzz_addr(struct slice e, struct sip_uri *out)
{
	struct sip_addr a;

	if (sip_addr_parse(&a, e) != 0) {
		if (out)
			memset(out, 0, sizeof(*out));
		return;
	}
	inside(a.display, "addr display");
	inside(a.uri, "addr uri");
	inside(a.params, "addr params");
	inside(a.tag, "addr tag");
	walk_params(a.params);
	if (!a.star)
		fuzz_uri(a.uri, out);
	else if (out)
		memset(out, 0, sizeof(*out));
}

static void fuzz_header(const struct sip_hdr *h)
{
	struct slice rest = h->value, e;
	unsigned guard = 0;

	inside(h->name, "header name");
	inside(h->value, "header value");
	if (h->id == SIP_HDR_CSEQ) {
		struct sip_cseq c;

		if (sip_cseq_parse(&c, h->value) == 0)
			inside(c.method, "cseq method");
		return;
	}
	while (sip_list_next(&rest, &e) && guard++ < 4096) {
		inside(e, "list element");
		switch (h->id) {
		case SIP_HDR_VIA: {
			struct sip_via v;

			if (sip_via_parse(&v, e) == 0) {
				inside(v.proto, "via proto");
				inside(v.transport, "via transport");
				inside(v.host, "via host");
				inside(v.params, "via params");
				inside(v.branch, "via branch");
				inside(v.received, "via received");
				inside(v.rport, "via rport");
				inside(v.maddr, "via maddr");
				inside(v.ttl, "via ttl");
				inside(v.raw, "via raw");
				walk_params(v.params);
			}
			break;
		}
		case SIP_HDR_CONTACT: {
			struct sip_addr a;
			long expires;
			int q;

			if (sip_contact_parse(&a, &expires, &q, e) == 0) {
				if (q > 1000 || q < -1) {
					fprintf(stderr, "q out of range: %d\n", q);
					abort();
				}
				if (!a.star)
					fuzz_uri(a.uri, NULL);
			}
			break;
		}
		case SIP_HDR_FROM:
		case SIP_HDR_TO:
		case SIP_HDR_ROUTE:
		case SIP_HDR_RECORD_ROUTE:
		case SIP_HDR_PATH:
		case SIP_HDR_REFER_TO:
		case SIP_HDR_REFERRED_BY:
			fuzz_addr(e, NULL);
			break;
		case SIP_HDR_REQUIRE:
		case SIP_HDR_PROXY_REQUIRE:
		case SIP_HDR_SUPPORTED:
		case SIP_HDR_UNSUPPORTED:
			(void)sip_token_valid(e);
			break;
		default:
			break;
		}
	}
}

/* sip_msg_copy for a copy of the bytes gives what parsing that copy gives, and keeps no pointer into
 * the old bytes (compared word by word over the whole struct: C and again start zeroed, and only the
 * slots in use are written). Run on refused messages too: the proxy hands invalid responses on. */
static void check_copy(const struct sip_msg *m, int rc)
{
	static struct sip_msg C, again;
	struct sip_error err;
	char *copy = malloc(in_l ? in_l : 1);

	if (!copy)
		return;
	memcpy(copy, in_p, in_l);
	memset(&C, 0, sizeof(C));
	memset(&again, 0, sizeof(again));
	sip_msg_copy(&C, m, copy);
	if (sip_msg_parse(&again, copy, in_l, &err) != rc || C.nhdrs != again.nhdrs || C.buf != copy) {
		fprintf(stderr, "sip_msg_copy: the copy does not parse the same\n");
		abort();
	}
	for (size_t off = 0; off + sizeof(uintptr_t) <= sizeof(C); off += sizeof(void *)) {
		uintptr_t v;

		memcpy(&v, (const char *)&C + off, sizeof(v));
		if (v >= (uintptr_t)in_p && v <= (uintptr_t)in_p + in_l) {
			fprintf(stderr, "sip_msg_copy: offset %zu still points into the old bytes\n", off);
			abort();
		}
	}
	for (unsigned i = 0; i < C.nhdrs && i < SIP_MAX_HEADERS; i++)
		if (C.hdrs[i].value.p != again.hdrs[i].value.p || C.hdrs[i].name.p != again.hdrs[i].name.p) {
			fprintf(stderr, "sip_msg_copy: header %u differs from a parse of the copy\n", i);
			abort();
		}
	if (C.via.branch.p != again.via.branch.p || C.cseq.method.p != again.cseq.method.p ||
	    C.call_id.p != again.call_id.p || C.body.p != again.body.p || C.to.tag.p != again.to.tag.p) {
		fprintf(stderr, "sip_msg_copy: core fields differ from a parse of the copy\n");
		abort();
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sip_msg m;
	struct sip_error err;
	const char *buf = (const char *)data;

	in_p = buf;
	in_l = size;

	/* stream framing with a roomy and a tight limit */
	long f = sip_frame(buf, size, 65536);
	if (f > (long)size || f < -2) {
		fprintf(stderr, "sip_frame: %ld for %zu bytes\n", f, size);
		abort();
	}
	/* framing and parsing agree on where a message ends (else a request hides in a body): a message
	 * framed (the transport strips leading CRLFs first) that parses ends at its header block plus its
	 * Content-Length */
	if (f > 0 && buf[0] != '\r' && buf[0] != '\n') {
		static struct sip_msg framed;

		if (sip_msg_parse(&framed, buf, (size_t)f, NULL) == 0 && framed.content_length >= -1 &&
		    (size_t)f != framed.hdr_len + (size_t)(framed.content_length < 0 ? 0 : framed.content_length)) {
			fprintf(stderr, "sip_frame: %ld, the parser: %zu + %ld\n", f, framed.hdr_len, framed.content_length);
			abort();
		}
	}
	f = sip_frame(buf, size, 256);
	if (f > 256) {
		fprintf(stderr, "sip_frame: %ld over the 256-byte limit\n", f);
		abort();
	}

	int rc = sip_msg_parse(&m, buf, size, &err);

	check_copy(&m, rc);
	if (rc != 0)
		return 0;
	(void)sip_msg_check(&m, &err);
	if (m.nhdrs > SIP_MAX_HEADERS || m.hdr_len > size) {
		fprintf(stderr, "header table out of range\n");
		abort();
	}
	inside(m.method, "method");
	inside(m.ruri, "ruri");
	inside(m.reason, "reason");
	inside(m.version, "version");
	inside(m.call_id, "call-id");
	inside(m.body, "body");
	inside(m.via.host, "top via host");
	inside(m.from.uri, "from uri");
	inside(m.to.uri, "to uri");
	inside(m.from.tag, "from tag");
	inside(m.cseq.method, "cseq method");

	for (unsigned i = 0; i < m.nhdrs; i++) {
		fuzz_header(&m.hdrs[i]);
		(void)sip_msg_hdr_byname(&m, m.hdrs[i].name);
	}
	for (int id = 0; id < SIP_HDR_COUNT; id++) {
		struct sip_list_iter it;
		struct slice e;
		unsigned guard = 0;

		sip_list_begin(&it, &m, (enum sip_hdr_id)id);
		while (sip_list_iter_next(&it, &e) && guard++ < 65536)
			inside(e, "iterated element");
	}

	/* URIs against each other: equality must be symmetric */
	struct sip_uri ruri, from, to;
	memset(&ruri, 0, sizeof(ruri));
	if (m.is_request)
		fuzz_uri(m.ruri, &ruri);
	fuzz_uri(m.from.uri, &from);
	fuzz_uri(m.to.uri, &to);
	const struct sip_uri *us[3] = { &ruri, &from, &to };
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			bool sip_i = us[i]->scheme == SIP_SCHEME_SIP || us[i]->scheme == SIP_SCHEME_SIPS;
			bool sip_j = us[j]->scheme == SIP_SCHEME_SIP || us[j]->scheme == SIP_SCHEME_SIPS;

			if (sip_i && sip_j && sip_uri_equal(us[i], us[j]) != sip_uri_equal(us[j], us[i])) {
				fprintf(stderr, "sip_uri_equal is not symmetric: '%.*s' / '%.*s'\n",
					SLICE_ARG(i == 0 ? m.ruri : i == 1 ? m.from.uri : m.to.uri),
					SLICE_ARG(j == 0 ? m.ruri : j == 1 ? m.from.uri : m.to.uri));
				abort();
			}
		}
	return 0;
}
