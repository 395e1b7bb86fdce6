/* msg.c: the start line, the header block and framing. Zero-copy: every field is a slice into the buffer. */
#include "sip/msg.h"

#include <errno.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "sip/sip_private.h"

/* Header names, long and compact (RFC 3261 7.3.3 and the registry), by id. */
static const struct {
	const char *name;
	char compact;
} hdr_names[SIP_HDR_COUNT] = {
	[SIP_HDR_OTHER] = { "", 0 },
	[SIP_HDR_VIA] = { "Via", 'v' },
	[SIP_HDR_FROM] = { "From", 'f' },
	[SIP_HDR_TO] = { "To", 't' },
	[SIP_HDR_CALL_ID] = { "Call-ID", 'i' },
	[SIP_HDR_CSEQ] = { "CSeq", 0 },
	[SIP_HDR_MAX_FORWARDS] = { "Max-Forwards", 0 },
	[SIP_HDR_CONTENT_LENGTH] = { "Content-Length", 'l' },
	[SIP_HDR_CONTENT_TYPE] = { "Content-Type", 'c' },
	[SIP_HDR_CONTENT_ENCODING] = { "Content-Encoding", 'e' },
	[SIP_HDR_CONTENT_LANGUAGE] = { "Content-Language", 0 },
	[SIP_HDR_CONTENT_DISPOSITION] = { "Content-Disposition", 0 },
	[SIP_HDR_CONTACT] = { "Contact", 'm' },
	[SIP_HDR_EXPIRES] = { "Expires", 0 },
	[SIP_HDR_REQUIRE] = { "Require", 0 },
	[SIP_HDR_PROXY_REQUIRE] = { "Proxy-Require", 0 },
	[SIP_HDR_SUPPORTED] = { "Supported", 'k' },
	[SIP_HDR_UNSUPPORTED] = { "Unsupported", 0 },
	[SIP_HDR_ROUTE] = { "Route", 0 },
	[SIP_HDR_RECORD_ROUTE] = { "Record-Route", 0 },
	[SIP_HDR_AUTHORIZATION] = { "Authorization", 0 },
	[SIP_HDR_PROXY_AUTHORIZATION] = { "Proxy-Authorization", 0 },
	[SIP_HDR_WWW_AUTHENTICATE] = { "WWW-Authenticate", 0 },
	[SIP_HDR_PROXY_AUTHENTICATE] = { "Proxy-Authenticate", 0 },
	[SIP_HDR_ALLOW] = { "Allow", 0 },
	[SIP_HDR_ACCEPT] = { "Accept", 0 },
	[SIP_HDR_ACCEPT_ENCODING] = { "Accept-Encoding", 0 },
	[SIP_HDR_ACCEPT_LANGUAGE] = { "Accept-Language", 0 },
	[SIP_HDR_USER_AGENT] = { "User-Agent", 0 },
	[SIP_HDR_SERVER] = { "Server", 0 },
	[SIP_HDR_DATE] = { "Date", 0 },
	[SIP_HDR_RETRY_AFTER] = { "Retry-After", 0 },
	[SIP_HDR_MIN_EXPIRES] = { "Min-Expires", 0 },
	[SIP_HDR_PATH] = { "Path", 0 },
	[SIP_HDR_TIMESTAMP] = { "Timestamp", 0 },
	[SIP_HDR_SUBJECT] = { "Subject", 's' },
	[SIP_HDR_EVENT] = { "Event", 'o' },
	[SIP_HDR_ALLOW_EVENTS] = { "Allow-Events", 'u' },
	[SIP_HDR_REFER_TO] = { "Refer-To", 'r' },
	[SIP_HDR_REFERRED_BY] = { "Referred-By", 'b' },
	[SIP_HDR_SESSION_EXPIRES] = { "Session-Expires", 'x' },
	[SIP_HDR_IDENTITY] = { "Identity", 'y' },
	[SIP_HDR_WARNING] = { "Warning", 0 },
};

static const char *const method_names[SIP_METHOD_COUNT] = {
	[SIP_METHOD_UNKNOWN] = "", [SIP_METHOD_INVITE] = "INVITE", [SIP_METHOD_ACK] = "ACK",
	[SIP_METHOD_BYE] = "BYE", [SIP_METHOD_CANCEL] = "CANCEL", [SIP_METHOD_OPTIONS] = "OPTIONS",
	[SIP_METHOD_REGISTER] = "REGISTER", [SIP_METHOD_PRACK] = "PRACK",
	[SIP_METHOD_SUBSCRIBE] = "SUBSCRIBE", [SIP_METHOD_NOTIFY] = "NOTIFY",
	[SIP_METHOD_PUBLISH] = "PUBLISH", [SIP_METHOD_INFO] = "INFO", [SIP_METHOD_REFER] = "REFER",
	[SIP_METHOD_MESSAGE] = "MESSAGE", [SIP_METHOD_UPDATE] = "UPDATE",
};

const char *sip_hdr_name(enum sip_hdr_id id)
{
	return (unsigned)id < SIP_HDR_COUNT ? hdr_names[id].name : "";
}

const char *sip_method_name(enum sip_method m)
{
	return (unsigned)m < SIP_METHOD_COUNT ? method_names[m] : "";
}

/* s is the method name lit, compared in words: memcmp of a length known when compiling is inlined. */
#define METHOD_IS(s, lit) ((s).l == sizeof(lit) - 1 && memcmp((s).p, lit, sizeof(lit) - 1) == 0)

/* Method names are case-sensitive (RFC 3261 7.1). Twice per message (request line and CSeq): the
 * first letter and the length pick the one candidate, an inlined compare confirms it (test_parser looks
 * every name of method_names up). */
enum sip_method sip_method_lookup(struct slice s)
{
	enum sip_method m = SIP_METHOD_UNKNOWN;

	if (s.l < 3)
		return m;
	switch (s.p[0]) {
	case 'I': m = METHOD_IS(s, "INVITE") ? SIP_METHOD_INVITE : METHOD_IS(s, "INFO") ? SIP_METHOD_INFO : m; break;
	case 'A': m = METHOD_IS(s, "ACK") ? SIP_METHOD_ACK : m; break;
	case 'B': m = METHOD_IS(s, "BYE") ? SIP_METHOD_BYE : m; break;
	case 'C': m = METHOD_IS(s, "CANCEL") ? SIP_METHOD_CANCEL : m; break;
	case 'O': m = METHOD_IS(s, "OPTIONS") ? SIP_METHOD_OPTIONS : m; break;
	case 'R': m = METHOD_IS(s, "REGISTER") ? SIP_METHOD_REGISTER : METHOD_IS(s, "REFER") ? SIP_METHOD_REFER : m; break;
	case 'P': m = METHOD_IS(s, "PRACK") ? SIP_METHOD_PRACK : METHOD_IS(s, "PUBLISH") ? SIP_METHOD_PUBLISH : m; break;
	case 'S': m = METHOD_IS(s, "SUBSCRIBE") ? SIP_METHOD_SUBSCRIBE : m; break;
	case 'N': m = METHOD_IS(s, "NOTIFY") ? SIP_METHOD_NOTIFY : m; break;
	case 'M': m = METHOD_IS(s, "MESSAGE") ? SIP_METHOD_MESSAGE : m; break;
	case 'U': m = METHOD_IS(s, "UPDATE") ? SIP_METHOD_UPDATE : m; break;
	}
	return m;
}
#undef METHOD_IS

/* By first letter: the compact form's id, and the ids of long names starting with it (0-terminated).
 * Built once, before main, from hdr_names. */
static struct {
	uint8_t compact;
	uint8_t ids[12];
} hdr_index[26];
/* By hdr_hash: the one long name with that hash, or HDR_SLOT_MANY when several share it (then the
 * first-letter list decides). With today's names no two share a slot. */
enum { HDR_SLOT_MANY = 255 };
static uint8_t hdr_slot[256];
static uint8_t hdr_len[SIP_HDR_COUNT];
static char hdr_lower[SIP_HDR_COUNT][24]; /* the long names in lower case, for slice_token_eq_lc */

/* Of a token name, case-insensitively (OR 0x20 lowers letters and keeps '-', '.', '!'... apart) */
static unsigned hdr_hash(struct slice name)
{
	return ((unsigned char)(name.p[0] | 0x20) + 3u * (unsigned char)(name.p[name.l - 1] | 0x20) +
		19u * (unsigned)name.l) & 255u;
}

__attribute__((constructor)) static void hdr_index_build(void)
{
	for (int i = 1; i < SIP_HDR_COUNT; i++) {
		unsigned l0 = (unsigned)(slice__lower((unsigned char)hdr_names[i].name[0]) - 'a'), k = 0;

		hdr_len[i] = (uint8_t)strlen(hdr_names[i].name);
		if (hdr_len[i] >= sizeof(hdr_lower[i]))
			hdr_len[i] = 0; /* a name too long for hdr_lower never matches: test_parser notices */
		for (unsigned c = 0; c < hdr_len[i]; c++)
			hdr_lower[i][c] = (char)slice__lower((unsigned char)hdr_names[i].name[c]);
		while (hdr_index[l0].ids[k])
			k++;
		if (k < 11)
			hdr_index[l0].ids[k] = (uint8_t)i;
		if (hdr_names[i].compact)
			hdr_index[hdr_names[i].compact - 'a'].compact = (uint8_t)i;
		if (hdr_len[i]) {
			uint8_t *slot = &hdr_slot[hdr_hash(slice_make(hdr_names[i].name, hdr_len[i]))];

			*slot = *slot ? HDR_SLOT_MANY : (uint8_t)i;
		}
	}
}

/* A name of several letters that shares its hdr_hash slot: the list of its first letter decides. */
static enum sip_hdr_id hdr_lookup_many(struct slice name)
{
	unsigned c0 = (unsigned)(slice__lower((unsigned char)name.p[0]) - 'a');

	if (c0 >= 26)
		return SIP_HDR_OTHER;
	for (const uint8_t *id = hdr_index[c0].ids; *id; id++)
		if (hdr_len[*id] == name.l && slice_token_eq_lc(name, hdr_lower[*id]))
			return (enum sip_hdr_id)*id;
	return SIP_HDR_OTHER;
}

/* For names already known to be tokens (slice_token_eq_lc relies on it). A name of several letters
 * goes to its hash slot first: an empty one (0, whose hdr_len is 0) or one of another length ends the
 * search, and no first letter needs checking, as no known name holds anything but letters and '-'. */
static inline __attribute__((always_inline)) enum sip_hdr_id hdr_lookup_token(struct slice name)
{
	if (name.l < 2) {
		unsigned c0 = name.l ? (unsigned)(slice__lower((unsigned char)name.p[0]) - 'a') : 26;

		return c0 < 26 ? (enum sip_hdr_id)hdr_index[c0].compact : SIP_HDR_OTHER;
	}
	uint8_t slot = hdr_slot[hdr_hash(name)];

	if (slot == HDR_SLOT_MANY)
		return hdr_lookup_many(name);
	return hdr_len[slot] == name.l && slice_token_eq_lc(name, hdr_lower[slot]) ? (enum sip_hdr_id)slot
										     : SIP_HDR_OTHER;
}

enum sip_hdr_id sip_hdr_lookup(struct slice name)
{
	return sip_token_valid(name) ? hdr_lookup_token(name) : SIP_HDR_OTHER;
}

const struct sip_hdr *sip_msg_hdr_next(const struct sip_msg *m, const struct sip_hdr *h)
{
	return h->next ? &m->hdrs[h->next - 1] : NULL;
}

const struct sip_hdr *sip_msg_hdr_byname(const struct sip_msg *m, struct slice name)
{
	enum sip_hdr_id id = sip_hdr_lookup(name);

	if (id != SIP_HDR_OTHER)
		return sip_msg_hdr(m, id);
	for (unsigned i = 0; i < m->nhdrs; i++)
		if (m->hdrs[i].id == SIP_HDR_OTHER && slice_caseeq(m->hdrs[i].name, name))
			return &m->hdrs[i];
	return NULL;
}

void sip_list_begin(struct sip_list_iter *it, const struct sip_msg *m, enum sip_hdr_id id)
{
	it->m = m;
	it->h = sip_msg_hdr(m, id);
	it->rest = it->h ? it->h->value : SLICE_NULL;
}

bool sip_list_iter_next(struct sip_list_iter *it, struct slice *elem)
{
	while (it->h) {
		if (sip_list_next(&it->rest, elem))
			return true;
		it->h = sip_msg_hdr_next(it->m, it->h);
		it->rest = it->h ? it->h->value : SLICE_NULL;
	}
	return false;
}

unsigned sip_list_count(const struct sip_msg *m, enum sip_hdr_id id)
{
	unsigned n = 0;

	for (const struct sip_hdr *h = sip_msg_hdr(m, id); h; h = sip_msg_hdr_next(m, h)) {
		struct slice rest = h->value, el;

		if (!memchr(h->value.p, ',', h->value.l)) {
			n += h->value.l != 0; /* values are trimmed: a line with no comma is one element, or none */
			continue;
		}
		while (sip_list_next(&rest, &el))
			n++;
	}
	return n;
}

/* ---- start line ---- */

static int fail(struct sip_error *err, unsigned short status, const char *reason)
{
	if (err) {
		err->status = status;
		err->reason = reason;
	}
	return EBADMSG;
}

bool sip__has_ctl(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (sip__is_ctl((unsigned char)p[i]))
			return true;
	return false;
}

/* Whether the control character at p[i] is out of place: not the second half of a quoted-pair ("\"
 * then any CTL but CR and LF, NUL too: RFC 4475 3.1.1.2 quotes one in a display name, a valid message). */
static bool ctl_out_of_place(const char *p, size_t i)
{
	return i == 0 || p[i - 1] != '\\';
}

/* The first CR or LF in p[0, len), or NULL: one pass for both, which also notes in *ctl a control
 * character out of place on the way (HTAB is whitespace). */
static inline __attribute__((always_inline)) const char *find_cr_or_lf(const char *p, size_t len, bool *ctl)
{
	size_t i = 0;
#ifdef __SSE2__
	const __m128i below = _mm_set1_epi8(0x1f);

	for (; i + 16 <= len; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		/* every byte below 0x20: CR and LF, and rarely anything else */
		unsigned hit = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, below), v));

		if (hit) {
			size_t at = i + (size_t)__builtin_ctz(hit);

			if (p[at] == '\r' || p[at] == '\n')
				return p + at;
			break; /* a tab or a control character first: the rest of the line byte by byte */
		}
	}
#endif
	for (; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r' || c == '\n')
			return p + i;
		if (sip__is_ctl(c) && ctl_out_of_place(p, i))
			*ctl = true;
	}
	return NULL;
}

/* A CR that no LF follows inside a line: no line break for RFC 3261 (25.1: CRLF), yet one for some
 * parsers, so that a header sipd forwards as one could be two downstream (a Route it never saw). */
#define LINE_BARE_CR ((size_t)-1)

/* One line: [p, eol) excluding its terminator, CRLF or a lone LF; returns the offset after the
 * terminator, 0 if there is none within len, LINE_BARE_CR if a bare CR comes first. A control
 * character out of place on the line sets *ctl. Inlined, always: once per header field, where its call
 * (the eol and ctl it writes back through memory) cost about as much as its own work. */
static inline __attribute__((always_inline)) size_t line_end(const char *p, size_t len, size_t *eol, bool *ctl)
{
	const char *t = find_cr_or_lf(p, len, ctl);

	if (!t)
		return 0;
	*eol = (size_t)(t - p);
	if (*t == '\n')
		return *eol + 1;
	if ((size_t)(t - p) + 1 >= len)
		return 0; /* a CR at the very end: the LF may come in the next read */
	return t[1] == '\n' ? *eol + 2 : LINE_BARE_CR;
}

/* The start line as lenient parsers read it, through its LF, so that one with a bare CR still gets
 * the 400 its request line or version earns. */
static size_t start_line_end(const char *p, size_t len, size_t *eol)
{
	bool ctl = false; /* the start line's own parsers refuse what does not belong */
	size_t next = line_end(p, len, eol, &ctl);
	const char *nl;

	if (next != LINE_BARE_CR)
		return next;
	if (!(nl = memchr(p, '\n', len)))
		return 0;
	*eol = (size_t)(nl - p);
	if (*eol && p[*eol - 1] == '\r')
		(*eol)--;
	return (size_t)(nl - p) + 1;
}

static bool version_is_20(struct slice v)
{
	return slice_caseeq(v, SLICE_LIT("SIP/2.0"));
}

/* "SIP/" in any case, at p (4 bytes readable): OR 0x20 turns only 'S' into 's', 'I' into 'i'... */
static bool sip_slash(const char *p)
{
	return (p[0] | 0x20) == 's' && (p[1] | 0x20) == 'i' && (p[2] | 0x20) == 'p' && p[3] == '/';
}

/* SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT */
static bool version_valid(struct slice v)
{
	size_t i = 4, d1 = 0, d2 = 0;

	if (v.l == 7 && memcmp(v.p, "SIP/2.0", 7) == 0)
		return true; /* as nearly every message writes it */
	if (v.l < 7 || !sip_slash(v.p))
		return false;
	while (i < v.l && v.p[i] >= '0' && v.p[i] <= '9')
		i++, d1++;
	if (i >= v.l || v.p[i++] != '.')
		return false;
	while (i < v.l && v.p[i] >= '0' && v.p[i] <= '9')
		i++, d2++;
	return d1 && d2 && i == v.l;
}

static int parse_status_line(struct sip_msg *m, struct slice line, struct sip_error *err)
{
	const char *sp = memchr(line.p, ' ', line.l);
	struct slice code;
	uint32_t n;

	/* Never answer a response (RFC 3261 8.1.3): every defect here means drop. */
	if (!sp)
		return fail(err, 0, "Malformed status line");
	m->version = slice_make(line.p, (size_t)(sp - line.p));
	code = slice_make(sp + 1, line.l - m->version.l - 1);
	if (code.l < 3 || (code.l > 3 && code.p[3] != ' '))
		return fail(err, 0, "Malformed status line");
	code.l = 3;
	/* 700 to 999 are read (the check refuses them) so that the client transaction the response names
	 * can still take it as an invalid answer (RFC 3261 16.7: 502 from a proxy) */
	if (!slice_to_u32(code, 999, &n) || n < 100 || !version_valid(m->version))
		return fail(err, 0, "Malformed status line");
	m->is_request = false;
	m->status = (unsigned short)n;
	m->reason = line.l > m->version.l + 5 ? slice_make(code.p + 4, line.l - m->version.l - 5)
					       : slice_make(code.p + 3, 0);
	/* read on, so that a response whose client transaction can be found is taken as invalid (502) */
	if (sip__has_ctl(m->reason.p, m->reason.l))
		return fail(err, 400, "Control character in reason phrase");
	return 0;
}

static int parse_request_line(struct sip_msg *m, struct slice line, struct sip_error *err)
{
	const char *sp1 = memchr(line.p, ' ', line.l), *sp2;
	const char *end = line.p + line.l;

	/* RFC 4475 3.1.2.11: white space after the version is refused (400), as the grammar says;
	 * the rest of the message is still read so the 400 can be addressed */
	bool trailing_ws = false;

	while (end > line.p && (end[-1] == ' ' || end[-1] == '\t')) {
		end--;
		trailing_ws = true;
	}
	if (sp1 && sp1 >= end)
		sp1 = NULL;

	if (!sp1 || sp1 == line.p)
		return fail(err, 0, "Malformed request line");
	m->method = slice_make(line.p, (size_t)(sp1 - line.p));
	enum sip_method mid = sip_method_lookup(m->method);

	/* every known method is a token: only another name needs the check */
	if (mid == SIP_METHOD_UNKNOWN && !sip_token_valid(m->method))
		return fail(err, 0, "Malformed request line");
	m->is_request = true;
	m->mid = mid;
	sp2 = memrchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	/* Without "SP SIP/" at the end this is not a SIP request line at all: dropped, not answered. */
	if (!sp2 || (size_t)(end - sp2 - 1) < 4 || !sip_slash(sp2 + 1))
		return fail(err, 0, "Not a SIP request line");
	m->version = slice_make(sp2 + 1, (size_t)(end - sp2 - 1));
	if (sp2 == sp1 + 1)
		return fail(err, 400, "Malformed Request-URI");
	m->ruri = slice_make(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	if (memchr(m->ruri.p, ' ', m->ruri.l))
		return fail(err, 400, "Malformed Request-URI: unescaped space");
	if (!version_valid(m->version))
		return fail(err, 400, "Malformed SIP version in request line");
	if (trailing_ws)
		return fail(err, 400, "Malformed request line: white space after the version");
	return 0;
}

/* ---- header block ---- */

#define A (SIP_C_TOKEN | SIP_C_HOST | SIP_C_UNRES)       /* letters and digits */
#define X (SIP_C_TOKEN | SIP_C_HOST | SIP_C_UNRES | SIP_C_HEX)
const uint8_t sip__ctype[256] = {
	['\t'] = SIP_C_LWS | SIP_C_PEND, ['\n'] = SIP_C_LWS | SIP_C_PEND, ['\r'] = SIP_C_LWS | SIP_C_PEND,
	[' '] = SIP_C_LWS | SIP_C_PEND, [';'] = SIP_C_PEND, ['='] = SIP_C_PNAME_END,
	['!'] = SIP_C_TOKEN | SIP_C_UNRES, ['%'] = SIP_C_TOKEN, ['\''] = SIP_C_TOKEN | SIP_C_UNRES,
	['('] = SIP_C_UNRES, [')'] = SIP_C_UNRES, ['*'] = SIP_C_TOKEN | SIP_C_UNRES, ['+'] = SIP_C_TOKEN,
	['-'] = A, ['.'] = A, ['_'] = SIP_C_TOKEN | SIP_C_UNRES, ['`'] = SIP_C_TOKEN,
	['~'] = SIP_C_TOKEN | SIP_C_UNRES,
	['0'] = X, ['1'] = X, ['2'] = X, ['3'] = X, ['4'] = X, ['5'] = X, ['6'] = X, ['7'] = X, ['8'] = X, ['9'] = X,
	['A'] = X, ['B'] = X, ['C'] = X, ['D'] = X, ['E'] = X, ['F'] = X, ['G'] = A, ['H'] = A, ['I'] = A,
	['J'] = A, ['K'] = A, ['L'] = A, ['M'] = A, ['N'] = A, ['O'] = A, ['P'] = A, ['Q'] = A, ['R'] = A,
	['S'] = A, ['T'] = A, ['U'] = A, ['V'] = A, ['W'] = A, ['X'] = A, ['Y'] = A, ['Z'] = A,
	['a'] = X, ['b'] = X, ['c'] = X, ['d'] = X, ['e'] = X, ['f'] = X, ['g'] = A, ['h'] = A, ['i'] = A,
	['j'] = A, ['k'] = A, ['l'] = A, ['m'] = A, ['n'] = A, ['o'] = A, ['p'] = A, ['q'] = A, ['r'] = A,
	['s'] = A, ['t'] = A, ['u'] = A, ['v'] = A, ['w'] = A, ['x'] = A, ['y'] = A, ['z'] = A,
};
#undef A
#undef X

bool sip_token_valid(struct slice s)
{
	return s.l && sip__span(s, 0, SIP_C_TOKEN) == s.l;
}

static void hdr_link(struct sip_msg *m, unsigned idx)
{
	struct sip_hdr *h = &m->hdrs[idx];
	unsigned id = h->id;

	if (m->count[id] < 255)
		m->count[id]++;
	if (!m->first[id]) {
		m->first[id] = (uint8_t)(idx + 1);
		return;
	}
	/* Walk to the last one of this id: header counts are small and bounded. */
	struct sip_hdr *last = &m->hdrs[m->first[id] - 1];
	while (last->next)
		last = &m->hdrs[last->next - 1];
	last->next = (uint8_t)(idx + 1);
}

/* The continuation lines of a folded header field from p[next] on: the offset after the last, its end
 * in *vend; 0 when one is malformed. Rare, and out of line: inlined, its registers were saved and
 * restored around every header field. */
__attribute__((noinline)) static size_t fold_lines(const char *p, size_t len, size_t next, size_t *vend, bool *ctl,
						   struct sip_error *err)
{
	while (next < len && (p[next] == ' ' || p[next] == '\t')) {
		size_t e2, n2 = line_end(p + next, len - next, &e2, ctl);

		if (!n2 || n2 == LINE_BARE_CR) {
			fail(err, 400, n2 ? "Bare CR in header field" : "Unterminated header line");
			return 0;
		}
		*vend = next + e2;
		next += n2;
	}
	return next;
}

/* Parses one header field starting at p (first line already known not to be folded).
 * Returns bytes consumed (through the final line terminator), 0 if malformed. */
static size_t parse_header(struct sip_msg *m, const char *p, size_t len, struct sip_error *err)
{
	bool ctl = false; /* a local, not m's field: a store through a pointer into m would make the
			   * compiler load m's fields again after each line */
	size_t eol, next = line_end(p, len, &eol, &ctl), i = 0;
	struct sip_hdr *h;

	if (next == LINE_BARE_CR) {
		fail(err, 400, "Bare CR in header field");
		return 0;
	}
	if (!next)
		return 0;
	i = sip__span(slice_make(p, eol), 0, SIP_C_TOKEN);
	if (i == 0) {
		fail(err, 400, "Malformed header field name");
		return 0;
	}
	h = &m->hdrs[m->nhdrs];
	h->name = slice_make(p, i);
	if (i < eol && p[i] != ':') /* white space before the colon: rare */
		while (i < eol && (p[i] == ' ' || p[i] == '\t'))
			i++;
	if (i >= eol || p[i] != ':') {
		fail(err, 400, "Malformed header line: missing colon");
		return 0;
	}
	i++;
	/* Line folding (RFC 3261 7.3.1): continuation lines start with SP or HT. */
	size_t vstart = i, vend = eol;
	if (next < len && (p[next] == ' ' || p[next] == '\t') && !(next = fold_lines(p, len, next, &vend, &ctl, err)))
		return 0;
	m->ctl_in_headers |= ctl;
	h->value = slice_trim(slice_make(p + vstart, vend - vstart));
	h->id = (uint8_t)hdr_lookup_token(h->name);
	h->next = 0;
	h->line_len = next <= UINT16_MAX ? (uint16_t)next : 0;
	return next;
}

/* A request's From or To URI, parsed once (see struct sip_msg). */
static void extract_addr_uri(const struct sip_msg *m, const struct sip_addr *a, struct sip_uri *u, int *err)
{
	if (m->is_request && a->uri.p) {
		*err = sip_uri_parse(u, a->uri);
		return;
	}
	memset(u, 0, sizeof(*u));
	*err = EINVAL;
}

static void extract_core(struct sip_msg *m)
{
	const struct sip_hdr *h;
	struct slice first, rest;

	/* each field is zeroed once: by its parser, or here when absent or malformed */
	h = sip_msg_hdr(m, SIP_HDR_VIA);
	rest = h ? h->value : SLICE_NULL;
	if (!h || !sip_list_next(&rest, &first) || sip_via_parse(&m->via, first) != 0)
		memset(&m->via, 0, sizeof(m->via));
	if ((h = sip_msg_hdr(m, SIP_HDR_CALL_ID)))
		m->call_id = h->value;
	if (!(h = sip_msg_hdr(m, SIP_HDR_CSEQ)) || sip_cseq_parse(&m->cseq, h->value) != 0)
		memset(&m->cseq, 0, sizeof(m->cseq));
	if (!(h = sip_msg_hdr(m, SIP_HDR_FROM)) || sip_addr_parse(&m->from, h->value) != 0)
		memset(&m->from, 0, sizeof(m->from));
	if (!(h = sip_msg_hdr(m, SIP_HDR_TO)) || sip_addr_parse(&m->to, h->value) != 0)
		memset(&m->to, 0, sizeof(m->to));
	extract_addr_uri(m, &m->from, &m->from_uri, &m->from_uri_err);
	extract_addr_uri(m, &m->to, &m->to_uri, &m->to_uri_err);
	if ((h = sip_msg_hdr(m, SIP_HDR_MAX_FORWARDS))) {
		uint32_t v;

		m->max_forwards = slice_to_u32(h->value, 255, &v) ? (int)v : -2;
	}
	if ((h = sip_msg_hdr(m, SIP_HDR_CONTENT_LENGTH))) {
		uint32_t v;

		m->content_length = slice_to_u32(h->value, 0x7fffffff, &v) ? (long)v : -2;
	}
}

/* A message refused before the end of its header block still has its 400 copy the fields read so far:
 * whether any holds a control character (a rare path, so the whole datagram is looked at). */
static void note_ctl(struct sip_msg *m)
{
	m->ctl_in_headers = sip__has_ctl(m->buf, m->len);
}

/* The fields extract_core fills, for the failures that stop before it runs. */
static int fail_early(struct sip_msg *m, struct sip_error *err, unsigned short status, const char *reason)
{
	note_ctl(m);
	memset(&m->via, 0, sizeof(m->via));
	memset(&m->cseq, 0, sizeof(m->cseq));
	memset(&m->from, 0, sizeof(m->from));
	memset(&m->to, 0, sizeof(m->to));
	memset(&m->from_uri, 0, sizeof(m->from_uri));
	memset(&m->to_uri, 0, sizeof(m->to_uri));
	m->from_uri_err = m->to_uri_err = EINVAL;
	if (m->ruri_err == EBADMSG)
		memset(&m->ruri_uri, 0, sizeof(m->ruri_uri)); /* not parsed yet (or half): defined all the same */
	return reason ? fail(err, status, reason) : EBADMSG;
}

int sip_msg_parse(struct sip_msg *m, const char *buf, size_t len, struct sip_error *err)
{
	size_t off = 0, eol, next;
	struct slice line;
	int rc;

	m->buf = buf;
	m->len = len;
	m->is_request = false;
	m->method = m->ruri = m->reason = m->version = m->call_id = m->body = SLICE_NULL;
	m->mid = SIP_METHOD_UNKNOWN;
	m->ruri_err = EBADMSG;
	m->status = 0;
	m->nhdrs = 0;
	memset(m->first, 0, sizeof(m->first));
	memset(m->count, 0, sizeof(m->count));
	m->max_forwards = -1;
	m->content_length = -1;
	m->hdr_len = 0;
	m->ctl_in_headers = false;
	if (err) {
		err->status = 0;
		err->reason = NULL;
	}

	/* RFC 3261 7.5: CRLFs before the start line are ignored (keep-alives). */
	while (off < len && (buf[off] == '\r' || buf[off] == '\n'))
		off++;
	next = start_line_end(buf + off, len - off, &eol);
	if (!next)
		return fail_early(m, err, 0, "No start line");
	line = slice_make(buf + off, eol);
	if (memchr(line.p, '\0', line.l))
		return fail_early(m, err, 0, "NUL byte in start line");
	rc = line.l > 4 && memcmp(line.p, "SIP/", 4) == 0 ? parse_status_line(m, line, err)
							      : parse_request_line(m, line, err);
	if (rc && (!err || err->status == 0))
		return fail_early(m, err, 0, NULL); /* err already says why */
	if (m->is_request && !rc) {
		m->ruri_err = sip_uri_parse(&m->ruri_uri, m->ruri);
	} else {
		m->ruri_err = EBADMSG;
		memset(&m->ruri_uri, 0, sizeof(m->ruri_uri)); /* defined for sip_msg_copy */
	}
	/* A request with a bad Request-URI or version is still read to the end, so that the
	 * 400 can be addressed from its Via and the other mandatory headers. */
	off += next;
	for (;;) {
		if (off >= len)
			return fail_early(m, err, 400, "Header block not terminated by an empty line");
		/* a line that starts with a printable character is neither the empty line nor a folded one */
		if ((unsigned char)buf[off] <= ' ') {
			if (buf[off] == '\n' || (buf[off] == '\r' && off + 1 < len && buf[off + 1] == '\n')) {
				off += buf[off] == '\n' ? 1 : 2;
				break;
			}
			if (buf[off] == ' ' || buf[off] == '\t')
				return fail_early(m, err, 400, "Folded line without a header field");
		}
		if (m->nhdrs == SIP_MAX_HEADERS)
			return fail_early(m, err, 400, "Too many header fields");
		size_t used = parse_header(m, buf + off, len - off, err);

		if (!used) {
			note_ctl(m);
			extract_core(m);
			return EBADMSG;
		}
		hdr_link(m, m->nhdrs++);
		off += used;
	}
	m->hdr_len = off;
	/* refused once the block is read, so that the 400 has the fields to be addressed with */
	if (m->ctl_in_headers) {
		extract_core(m);
		return fail(err, 400, memchr(buf, '\0', off) ? "NUL byte in header field"
							   : "Control character in header field");
	}
	extract_core(m);
	if (rc)
		return rc; /* err already says 400 with the start-line defect */
	m->body = slice_make(buf + off, len - off);
	if (m->content_length >= 0 && (size_t)m->content_length < m->body.l)
		m->body.l = (size_t)m->content_length; /* RFC 3261 18.3: extra bytes are discarded */
	return 0;
}

/* ---- checks after parsing ---- */

static int check_single(const struct sip_msg *m, enum sip_hdr_id id, const char *missing,
			const char *dup, struct sip_error *err)
{
	if (!m->count[id])
		return fail(err, 400, missing);
	if (m->count[id] > 1)
		return fail(err, 400, dup);
	return 0;
}

/* callid = word [ "@" word ]: visible characters, no white space; 16 at a time where SSE2 is */
static bool callid_valid(struct slice id)
{
	size_t i = 0;

	if (id.l == 0)
		return false;
#ifdef __SSE2__
	const __m128i low = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f);

	for (; i + 16 <= id.l; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(id.p + i));
		/* signed: 0x80 and up are negative, below 0x21 like the controls and the space */
		if (_mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, low), _mm_cmpeq_epi8(v, del))))
			return false;
	}
#endif
	for (; i < id.l; i++)
		if ((unsigned char)id.p[i] <= ' ' || (unsigned char)id.p[i] >= 0x7f)
			return false;
	return true;
}

/* A From/To URI must be well-formed; an unknown scheme is someone else's business (ENOTSUP). Only
 * requests are held to it: a response echoes the request's From and To (8.2.6.2), is matched by its
 * Via, CSeq, Call-ID and tags, and a proxy relays those fields as they are. */
static bool addr_uri_valid(const struct sip_msg *m, int uri_err)
{
	return !m->is_request || uri_err != EBADMSG;
}

/* ---- A parsed message, for a copy of its bytes --------------------------------------------- */

struct move_ctx {
	uintptr_t from, end; /* the old bytes, [from, end] (an empty slice may point just past them) */
	const char *to;
};

static void move_slice(const struct move_ctx *c, struct slice *s)
{
	uintptr_t p = (uintptr_t)s->p;

	if (s->p && p >= c->from && p <= c->end)
		s->p = c->to + (p - c->from);
}

static void move_uri(const struct move_ctx *c, struct sip_uri *u)
{
	struct slice *all[] = { &u->scheme_s, &u->user, &u->password, &u->host, &u->params, &u->headers,
				&u->transport, &u->maddr, &u->user_param, &u->method, &u->ttl };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		move_slice(c, all[i]);
}

static void move_addr(const struct move_ctx *c, struct sip_addr *a)
{
	move_slice(c, &a->display);
	move_slice(c, &a->uri);
	move_slice(c, &a->params);
	move_slice(c, &a->tag);
}

static void move_via(const struct move_ctx *c, struct sip_via *v)
{
	struct slice *all[] = { &v->proto, &v->transport, &v->host, &v->params, &v->branch, &v->received,
				&v->rport, &v->maddr, &v->ttl, &v->raw };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		move_slice(c, all[i]);
}

/* Every slice field of struct sip_msg is named here; test_parser's test_copy scans the copy for any
 * pointer still into the old bytes, so a field added without a line here fails it. */
void sip_msg_copy(struct sip_msg *dst, const struct sip_msg *src, const char *buf)
{
	struct move_ctx c = { (uintptr_t)src->buf, (uintptr_t)src->buf + src->len, buf };
	unsigned n = src->nhdrs < SIP_MAX_HEADERS ? src->nhdrs : SIP_MAX_HEADERS;

	/* the header table is most of the struct and mostly unused */
	memcpy(dst, src, offsetof(struct sip_msg, hdrs));
	memcpy(dst->hdrs, src->hdrs, n * sizeof(src->hdrs[0]));
	memcpy((char *)dst + offsetof(struct sip_msg, nhdrs), (const char *)src + offsetof(struct sip_msg, nhdrs),
	       sizeof(*src) - offsetof(struct sip_msg, nhdrs));
	move_slice(&c, &dst->method);
	move_slice(&c, &dst->ruri);
	move_uri(&c, &dst->ruri_uri);
	move_slice(&c, &dst->reason);
	move_slice(&c, &dst->version);
	for (unsigned i = 0; i < n; i++) {
		move_slice(&c, &dst->hdrs[i].name);
		move_slice(&c, &dst->hdrs[i].value);
	}
	move_via(&c, &dst->via);
	move_slice(&c, &dst->cseq.method);
	move_slice(&c, &dst->call_id);
	move_addr(&c, &dst->from);
	move_addr(&c, &dst->to);
	move_uri(&c, &dst->from_uri);
	move_uri(&c, &dst->to_uri);
	move_slice(&c, &dst->body);
	dst->buf = buf;
}

int sip_msg_check(const struct sip_msg *m, struct sip_error *err)
{
	unsigned short st = m->is_request ? 400 : 0; /* defects in responses: drop */
	int rc;

	if (m->is_request && !version_is_20(m->version))
		return fail(err, 505, "Version Not Supported");
	if (!m->is_request && !version_is_20(m->version))
		return fail(err, 0, "Unsupported SIP version in response");
	if (!m->is_request && m->status > 699)
		return fail(err, 0, "Status code out of range");
	if (!m->count[SIP_HDR_VIA])
		return fail(err, st, "Missing Via header field");
	if (!m->via.branch.p && !m->via.host.p)
		return fail(err, st, "Malformed Via header");
	if ((rc = check_single(m, SIP_HDR_FROM, "Missing From header field", "Duplicate From header field", err)))
		goto out;
	if (!m->from.uri.p || !addr_uri_valid(m, m->from_uri_err))
		return fail(err, st, "Malformed From header");
	if ((rc = check_single(m, SIP_HDR_TO, "Missing To header field", "Duplicate To header field", err)))
		goto out;
	if (!m->to.uri.p || !addr_uri_valid(m, m->to_uri_err))
		return fail(err, st, "Malformed To header");
	if ((rc = check_single(m, SIP_HDR_CALL_ID, "Missing Call-ID header field",
			       "Duplicate Call-ID header field", err)))
		goto out;
	if (!callid_valid(m->call_id))
		return fail(err, st, "Malformed Call-ID header");
	if ((rc = check_single(m, SIP_HDR_CSEQ, "Missing CSeq header field", "Duplicate CSeq header field", err)))
		goto out;
	if (!m->cseq.method.p)
		return fail(err, st, "Malformed CSeq header");
	if (m->is_request && !slice_eq(m->cseq.method, m->method))
		return fail(err, st, "CSeq method does not match request method");
	if (m->count[SIP_HDR_MAX_FORWARDS] > 1)
		return fail(err, st, "Duplicate Max-Forwards header field");
	if (m->max_forwards == -2)
		return fail(err, st, "Malformed Max-Forwards header");
	if (m->count[SIP_HDR_CONTENT_LENGTH] > 1)
		return fail(err, st, "Duplicate Content-Length header field");
	if (m->content_length == -2)
		return fail(err, st, "Malformed Content-Length header");
	if (m->content_length >= 0 && (size_t)m->content_length > m->len - m->hdr_len)
		return fail(err, st, "Content-Length larger than message body");
	return 0;
out:
	if (!m->is_request && err)
		err->status = 0;
	return rc;
}

/* ---- stream framing ---- */

static long header_block_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return (long)(i + 2);
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return (long)(i + 3);
	}
	return 0;
}

/* Content-Length (or "l") in a raw header block; -1 absent, -2 malformed or given twice. The header
 * fields are read as sip_msg_parse reads them, or the two would cut a stream in different places (a
 * request smuggled in a body, past a proxy that frames as the RFC does): the start line is no field, a
 * line that starts with SP or HT continues the field above (7.3.1) and is never one of its own, and a
 * folded value is the whole of its lines, trimmed. */
static long frame_content_length(const char *buf, size_t hlen)
{
	const char *end = buf + hlen, *line = memchr(buf, '\n', hlen), *value = NULL, *vend = NULL;
	bool in_length = false;
	uint32_t n;

	while (line && ++line < end && *line != '\r' && *line != '\n') {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *eol = nl ? nl : end;

		if (*line == ' ' || *line == '\t') {
			if (in_length)
				vend = eol;
		} else {
			const char *colon = memchr(line, ':', (size_t)(eol - line));

			in_length = colon && sip_hdr_lookup(slice_trim(slice_make(line, (size_t)(colon - line)))) ==
						     SIP_HDR_CONTENT_LENGTH;
			if (in_length) {
				if (value)
					return -2; /* a second one: which of them frames the stream would be a guess */
				value = colon + 1;
				vend = eol;
			}
		}
		line = nl;
	}
	if (!value)
		return -1;
	return slice_to_u32(slice_trim(slice_make(value, (size_t)(vend - value))), 0x7fffffff, &n) ? (long)n : -2;
}

long sip_frame(const char *buf, size_t len, size_t max)
{
	long hlen = header_block_end(buf, len < max ? len : max);
	long cl;

	if (!hlen)
		return len >= max ? -2 : 0;
	cl = frame_content_length(buf, (size_t)hlen);
	if (cl < 0)
		return -1; /* missing on a stream (18.3: MUST be there), malformed or twice: where it ends is a
			      guess, and a body taken for no body would run as a request of its own */
	if ((size_t)hlen + (size_t)cl > max)
		return -2;
	return (size_t)hlen + (size_t)cl <= len ? hlen + cl : 0;
}
