/* registrar.c: REGISTER processing (RFC 3261 10.3, RFC 3327 Path, RFC 3581 NAT) over the location service,
 * with the store's group-commit writer for durability. */
#include "registrar/registrar.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/recycle.h"
#include "base/scratch.h"
#include "net/loop.h"
#include "registrar/natping.h"
#include "sip/build.h"
#include "sip/uri.h"

#define MAX_DOMAINS 64
#define MAX_REQ_CONTACTS 32
/* What a binding keeps of a field, terminator included: a longer value is refused, never cut. */
#define KEPT(field) sizeof(((struct store_binding *)0)->field)

/* Host names and addresses, matched case-insensitively; lengths first, as they are asked per request. */
struct names {
	char name[MAX_DOMAINS][128];
	size_t len[MAX_DOMAINS];
	unsigned n;
};

struct registrar {
	const struct config *cfg;
	struct auth *auth;
	struct store *store;
	struct store_writer *writer;
	struct loc *loc;
	struct names domains;   /* [general] domain; empty: selves serve as the domains */
	struct names selves;    /* sipd's host name, localhost, interface and listen addresses */
	char self_aor_host[132]; /* with no domain, the one host of AORs for all of selves */
	atomic_bool stopping;   /* the workers are gone: commits still complete, answers are not sent */
	/* once a second, a thread of the registrar's own takes the removals sipctl unregister left in the store
	 * (on a connection of its own) and pings the phones behind a NAT that are due (nat_keepalive) */
	struct store *admin;
	struct natping *np;
	int64_t pinged_to;      /* the last second natping_tick ran for */
	pthread_t poller;
	bool polling;
	bool poll_stop;         /* under poll_lock */
	pthread_mutex_t poll_lock;
	pthread_cond_t poll_cond;
};

/* A REGISTER waiting for its changes to reach the disk, with the 200 it will get once they are there:
 * built while the request is at hand, it lists the bindings as this change left them. */
struct pending {
	struct registrar *r;
	struct txn *tx;
	char aor[256];
	char *ok;        /* the 200 */
	size_t ok_len;
	int err;
};

/* One Contact of the request. */
struct req_contact {
	struct slice uri;
	struct slice instance;
	long expires;
	int q;
};

/* ---- domains ---- */

/* A host as names keep it: sip_host_canon's, an IPv6 address without its brackets. 0 if too long. */
static size_t name_canon(struct slice host, char *out, size_t n)
{
	size_t k = sip_host_canon(host, out, n);

	if (k > 2 && out[0] == '[') {
		memmove(out, out + 1, k - 2);
		out[k -= 2] = '\0';
	}
	return k;
}

static void names_add(struct names *s, const char *d)
{
	char c[SIP_HOST_MAX];
	size_t n = name_canon(slice_cstr(d), c, sizeof(c));

	if (!n || n >= sizeof(s->name[0]) || s->n == MAX_DOMAINS)
		return;
	for (unsigned i = 0; i < s->n; i++)
		if (s->len[i] == n && !memcmp(s->name[i], c, n))
			return;
	memcpy(s->name[s->n], c, n + 1);
	s->len[s->n++] = n;
}

/* host may be an IPv6 reference in brackets, or any spelling of one of the names' addresses. A host
 * that is one of the names but for case is found without canonicalizing it (the names are canonical,
 * and canonical forms do not change by case), which is how nearly every request writes it. */
static bool names_has(const struct names *s, struct slice host)
{
	char c[SIP_HOST_MAX];
	size_t n;

	/* byte for byte first: the names are in lower case, as nearly every request writes them. The first
	 * byte, folded, sorts out most names of the same length ("localhost" against "127.0.0.1") before
	 * any comparison is called. */
	unsigned char first = host.l ? slice__lower((unsigned char)host.p[0]) : 0;

	for (unsigned i = 0; i < s->n; i++)
		if (s->len[i] == host.l && (unsigned char)s->name[i][0] == first &&
		    (!memcmp(host.p, s->name[i], host.l) || slice_caseeq(host, slice_make(s->name[i], s->len[i]))))
			return true;
	n = name_canon(host, c, sizeof(c));
	for (unsigned i = 0; n && i < s->n; i++)
		if (s->len[i] == n && !memcmp(s->name[i], c, n))
			return true;
	return false;
}

/* With no domain configured, sipd's names and addresses are one domain: a phone registered as
 * sip:bob@127.0.0.1 is called as sip:bob@localhost or sip:bob@[::1] too. Their AORs are kept under
 * one host: the first listener's address, or the host name when that is a wildcard (registrar_aor
 * writes it in lower case). */
static void self_aor_host_init(struct registrar *r)
{
	struct tp_addr a;
	char host[64];

	snprintf(r->self_aor_host, sizeof(r->self_aor_host), "localhost");
	if (r->cfg->nlisten && tp_addr_parse(&a, r->cfg->listen[0] + 4, 5060) == 0 && !tp_addr_is_any(&a)) {
		tp_addr_host(&a, host, sizeof(host));
		snprintf(r->self_aor_host, sizeof(r->self_aor_host), strchr(host, ':') ? "[%s]" : "%s", host);
	} else if (r->selves.n && strcmp(r->selves.name[0], "localhost") != 0) {
		snprintf(r->self_aor_host, sizeof(r->self_aor_host), "%s", r->selves.name[0]); /* the host name */
	}
}

/* The host of "ADDR[:PORT]" among sipd's own names; "" adds nothing. */
static void selves_add_addr(struct registrar *r, const char *addr)
{
	struct tp_addr a;
	char host[64];

	if (addr[0] && tp_addr_parse(&a, addr, 5060) == 0)
		names_add(&r->selves, tp_addr_host(&a, host, sizeof(host)));
}

/* The domains of the configuration, and the names and addresses that are sipd's whatever it serves:
 * with no domain configured, those are its domains too (RFC 3261 10.3 step 1). */
static void domains_init(struct registrar *r)
{
	char buf[CONFIG_STR], *save = NULL, *tok;
	struct ifaddrs *ifs = NULL;

	snprintf(buf, sizeof(buf), "%s", r->cfg->domain);
	for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
		names_add(&r->domains, tok);
	if (gethostname(buf, sizeof(buf)) == 0)
		names_add(&r->selves, buf);
	names_add(&r->selves, "localhost");
	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
			char host[NI_MAXHOST];
			int fam = i->ifa_addr ? i->ifa_addr->sa_family : 0;

			if ((fam == AF_INET || fam == AF_INET6) &&
			    getnameinfo(i->ifa_addr, fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6),
					host, sizeof(host), NULL, 0, NI_NUMERICHOST) == 0) {
				host[strcspn(host, "%")] = '\0'; /* no IPv6 zone */
				names_add(&r->selves, host);
			}
		}
		freeifaddrs(ifs);
	}
	for (unsigned i = 0; i < r->cfg->nlisten; i++) {
		selves_add_addr(r, r->cfg->listen[i] + 4);
		selves_add_addr(r, r->cfg->listen_advertise[i]); /* "listen = ... advertise ADDR" */
	}
	selves_add_addr(r, r->cfg->advertise); /* [general] advertise: sipd's public address behind a 1:1 NAT */
	self_aor_host_init(r);
}

/* An address that requests came to at a wildcard listener is sipd's, listed at start or not (a floating
 * address moved to the host since; one that getifaddrs does not list, as 127.0.0.2). */
static bool host_seen(struct slice host)
{
	struct tp_addr a;

	/* a name is none: not even copied for inet_pton to refuse */
	if (!host.l || !((host.p[0] >= '0' && host.p[0] <= '9') || host.p[0] == '['))
		return false;
	return tp_addr_set(&a, host, 5060) == 0 && tp_addr_seen(NULL, &a);
}

bool registrar_is_local(const struct registrar *r, struct slice host)
{
	if (r->domains.n)
		return names_has(&r->domains, host);
	return names_has(&r->selves, host) || host_seen(host);
}

bool registrar_is_self(const struct registrar *r, struct slice host)
{
	return names_has(&r->selves, host) || names_has(&r->domains, host) || host_seen(host);
}

struct loc *registrar_location(struct registrar *r)
{
	return r->loc;
}

/* ---- answers ---- */

/* The Date header line (RFC 1123 form, 20.17) for this second: formatted once a second per thread,
 * since strftime and gmtime_r are a good part of a registration's instructions. */
static void date_header(struct sbuf *sb)
{
	static _Thread_local time_t made = -1;
	static _Thread_local char line[64];
	static _Thread_local size_t len;
	time_t now = time(NULL);

	if (now != made) {
		struct tm tm;

		gmtime_r(&now, &tm);
		len = strftime(line, sizeof(line), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
		made = now;
	}
	sbuf_add(sb, line, len);
}

/* The header lines of a 200 of 10.3 step 8: every binding with its remaining time, the Path echo and a
 * Date; the thread's scratch (scratch_give it), NULL without memory. */
static char *bindings_lines(const struct store_binding *b, size_t n, const char *path_echo, int64_t now)
{
	size_t cap = 256 + (path_echo ? strlen(path_echo) : 0) + n * (sizeof(b->contact) + 64);
	char *extra = scratch_take(cap);
	struct sbuf sb;

	if (!extra)
		return NULL;
	sbuf_init(&sb, extra, cap - 1);
	for (size_t i = 0; i < n; i++) {
		sbuf_adds(&sb, "Contact: <");
		sbuf_adds(&sb, b[i].contact);
		sbuf_adds(&sb, ">;expires=");
		sbuf_addu(&sb, (unsigned long)store_binding_left(b[i].expires, now));
		if (b[i].q >= 0)
			sbuf_printf(&sb, ";q=%d.%03d", b[i].q / 1000, b[i].q % 1000);
		sbuf_adds(&sb, "\r\n");
	}
	if (path_echo)
		sbuf_adds(&sb, path_echo);
	date_header(&sb);
	extra[sb.len] = '\0';
	return extra;
}

/* The 200 to a query (a REGISTER without Contact): the AOR's bindings as they are now. */
static void answer_bindings(struct registrar *r, struct txn *tx, const struct sip_msg *req, const char *aor,
			    const char *path_echo)
{
	int64_t now = (int64_t)time(NULL);
	/* sized to what the AOR has now (a record is ~3 kB); a binding added in between waits for the
	 * next answer, as it would have a moment later */
	size_t max = loc_lookup(r->loc, aor, NULL, 0, now), n = 0;
	struct store_binding *b = max ? scratch_take(max * sizeof(*b)) : NULL;
	char *extra = NULL;

	if (max && b)
		n = loc_lookup(r->loc, aor, b, max, now);
	if (n > max)
		n = max;
	if ((max && !b) || !(extra = bindings_lines(b, n, path_echo, now)))
		txn_reply(tx, req, 500, "Out of memory", NULL);
	else
		txn_reply(tx, req, 200, NULL, extra);
	scratch_give(extra);
	scratch_give(b);
}

static void pending_free(struct pending *p)
{
	mem_deref(p->tx);
	recycle_free(p->ok);
	recycle_free(p);
}

/* A 500 or 503 for a condition that passes (the disk, the writer's queue, a full location service):
 * with Retry-After. */
static void reply_later(const struct registrar *r, struct txn *tx, const struct sip_msg *req, unsigned code,
			const char *reason)
{
	char extra[64];

	snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", r->cfg->retry_after);
	txn_reply(tx, req, code, reason, extra);
}

/* On the transaction's worker, once the writer has committed (or failed). */
static void pending_answer(void *arg)
{
	struct pending *p = arg;

	if (p->err) {
		reply_later(p->r, p->tx, NULL, 500, "Binding could not be stored");
	} else {
		txn_respond_take(p->tx, 200, p->ok, p->ok_len);
		p->ok = NULL;
	}
	pending_free(p);
}

/* An AOR's bindings rebuilt after a failed write: what the file holds, then the changes still to come. */
struct rebuild {
	struct store_binding *b;
	size_t n, cap;
	bool failed; /* out of memory: the memory is left as it was */
};

static void rebuild_put(struct rebuild *rb, const struct store_binding *b)
{
	size_t i;

	for (i = 0; i < rb->n && strcmp(rb->b[i].contact, b->contact); i++)
		;
	if (i == rb->n) {
		if (rb->n == rb->cap) {
			size_t cap = rb->cap ? rb->cap * 2 : 8;
			struct store_binding *v = realloc(rb->b, cap * sizeof(*v));

			if (!v) {
				rb->failed = true;
				return;
			}
			rb->b = v;
			rb->cap = cap;
		}
		rb->n++;
	}
	rb->b[i] = *b;
}

static int rebuild_stored(const struct store_binding *b, void *arg)
{
	rebuild_put(arg, b);
	return 0;
}

static void rebuild_later(const struct store_change *c, void *arg)
{
	struct rebuild *rb = arg;

	if (c->op == STORE_BINDING_PUT) {
		rebuild_put(rb, &c->b);
		return;
	}
	for (size_t i = 0; i < rb->n;) {
		if (c->op == STORE_AOR_DEL || !strcmp(rb->b[i].contact, c->b.contact))
			rb->b[i] = rb->b[--rb->n];
		else
			i++;
	}
}

/* RFC 3261 10.3 step 7: updates that could not be committed must not stay visible ("all tentative
 * binding updates MUST be removed"). On the writer thread, after a failed write: the AOR's bindings in
 * memory become what the file holds plus the changes submitted after this one, which are still to be
 * written and told on their own. Under the AOR's lock, so that no submission for it comes between. */
static void rollback(struct registrar *r, const char *aor)
{
	struct rebuild rb = { 0 };
	int64_t now = (int64_t)time(NULL);
	struct loc_held held = loc_lock(r->loc, aor);
	int err;

	err = store_bindings_of(r->store, aor, now, rebuild_stored, &rb);
	if (!err && !rb.failed)
		store_writer_later_of(r->writer, aor, rebuild_later, &rb);
	if (!err && !rb.failed)
		err = loc_set_locked(&held, rb.b, rb.n, now);
	loc_unlock(&held);
	if (err || rb.failed)
		log_err("registrar: %s: the bindings in memory could not be set back to the stored ones: %s", aor,
			strerror(err ? err : ENOMEM));
	else
		log_info("registrar: %s: %zu binding(s) in memory, as stored, after the failed write", aor, rb.n);
	free(rb.b);
}

/* The writer thread: hand the answer to the transaction's own loop. */
static void pending_done(int err, void *arg)
{
	struct pending *p = arg;

	p->err = err;
	if (err) {
		log_err("registrar: storing bindings of %s failed: %s", p->aor, strerror(err));
		rollback(p->r, p->aor);
	}
	if (atomic_load(&p->r->stopping)) {
		pending_free(p);
		return;
	}
	if (loop_post(txn_loop(p->tx), pending_answer, p)) {
		log_err("registrar: cannot reach the worker to answer %s", p->aor);
		pending_free(p);
	}
}

static void expired_to_store(const struct store_change *dels, size_t n, void *arg)
{
	struct registrar *r = arg;

	for (size_t i = 0; i < n; i++)
		log_info("registrar: %s: binding expired: %s", dels[i].b.aor, dels[i].b.contact);

	if (store_writer_submit(r->writer, dels, n, NULL, NULL))
		log_warn("registrar: %zu expired bindings stay in the store until the next start", n);
}

/* ---- the request ---- */

#define AOR_USER_MAX 128 /* a user part's bytes, unescaped, in an AOR */

/* registrar_aor of a user part with nothing to undo or escape (no '%', no NUL: every phone's), written
 * straight into out: 1, or 0 when it does not fit or the host is unusable; -1 for any other user part,
 * which registrar_aor unescapes first. */
static int aor_plain(const struct sip_uri *u, const char *scheme, size_t sl, char *out, size_t n)
{
	size_t k = sl + u->user.l + 1, hl;
	char host[SIP_HOST_MAX];

	if (!u->user.l || u->user.l >= AOR_USER_MAX || memchr(u->user.p, '%', u->user.l) ||
	    memchr(u->user.p, '\0', u->user.l))
		return -1;
	hl = sip_host_canon(u->host, host, sizeof(host));
	if (!hl || k + hl + 1 > n)
		return 0;
	memcpy(out, scheme, sl);
	memcpy(out + sl, u->user.p, u->user.l);
	out[k - 1] = '@';
	memcpy(out + k, host, hl + 1);
	return 1;
}

/* "sip:alice@example.com": the AOR of a To URI in canonical form (RFC 3261 10.3 step 5): escapes in the
 * user part undone, the host in lower case, no port, parameters or headers. */
bool registrar_aor(const struct sip_uri *u, char *out, size_t n)
{
	const char *scheme = u->scheme == SIP_SCHEME_SIPS ? "sips:" : "sip:";
	size_t sl = strlen(scheme), k = sl, need, hl;
	char user[AOR_USER_MAX], host[SIP_HOST_MAX];
	long ul;
	int plain;

	if (u->scheme != SIP_SCHEME_SIP && u->scheme != SIP_SCHEME_SIPS)
		return false;
	if ((plain = aor_plain(u, scheme, sl, out, n)) >= 0)
		return plain == 1;
	ul = u->user.l < sizeof(user) ? sip_unescape(user, sizeof(user), u->user) : -1;
	if (ul <= 0)
		return false;
	hl = sip_host_canon(u->host, host, sizeof(host));
	if (!hl)
		return false;
	need = sl + (size_t)ul + 1 + hl + 1;
	for (long i = 0; i < ul; i++)
		need += user[i] == '\0' || user[i] == '%' ? 2 : 0;
	if (n < need)
		return false;
	memcpy(out, scheme, sl);
	/* the user unescaped (%61lice is alice, 3261 19.1.4), but for the two octets a key cannot hold as
	 * they are: a NUL (RFC 4475 3.1.1.4 registers "null-%00-null") and so the percent sign itself */
	for (long i = 0; i < ul; i++) {
		if (user[i] == '\0' || user[i] == '%') {
			k += (size_t)sprintf(out + k, "%%%02X", (unsigned char)user[i]);
			continue;
		}
		out[k++] = user[i];
	}
	out[k++] = '@';
	memcpy(out + k, host, hl + 1); /* [0:0::1] is [::1], EXAMPLE.com. is example.com (19.1.4, RFC 5954) */
	return true;
}

bool registrar_aor_key(const struct registrar *r, const struct sip_uri *u, char *out, size_t n)
{
	struct sip_uri folded;

	if (r->domains.n || !names_has(&r->selves, u->host))
		return registrar_aor(u, out, n);
	folded = *u;
	folded.host = slice_cstr(r->self_aor_host);
	return registrar_aor(&folded, out, n);
}

static bool user_may_register(struct registrar *r, const struct auth_user *u, const struct sip_uri *to)
{
	char user[64];

	return sip_uri_user(to, user, sizeof(user)) >= 0 && auth_user_answers_to(r->auth, u, user);
}

/* Contacts of the request, with the expiry each asks for (10.3 step 6). 0, or the status to answer. */
static unsigned read_contacts(struct registrar *r, const struct sip_msg *req, struct req_contact *out,
			      size_t *n, bool *star, const char **reason)
{
	const struct sip_hdr *eh = sip_msg_hdr(req, SIP_HDR_EXPIRES);
	long hdr_expires = -1;
	unsigned stars = 0;
	struct sip_list_iter it;
	struct slice el;
	uint32_t v;

	*n = 0;
	*star = false;
	/* RFC 3261 20.19: a malformed Expires is taken as 3600 */
	if (eh)
		hdr_expires = slice_to_u32(eh->value, 0xffffffffu, &v) ? (long)v : 3600;
	sip_list_begin(&it, req, SIP_HDR_CONTACT);
	while (sip_list_iter_next(&it, &el)) {
		struct sip_addr a;
		struct sip_uri u;
		long e;
		int q;

		if (*n == MAX_REQ_CONTACTS) {
			*reason = "Too many Contact header field values";
			return 400;
		}
		if (sip_contact_parse(&a, &e, &q, el)) {
			*reason = "Malformed Contact header";
			return 400;
		}
		if (a.star) {
			stars++;
			continue;
		}
		/* a binding is there to reach the phone: a Contact that is no URI (sip:alice@@host) is refused
		 * rather than stored; a scheme sipd does not route (mailto:, 10.2.1) is kept as it came */
		if (sip_uri_parse(&u, a.uri) == EBADMSG) {
			*reason = "Malformed Contact URI";
			return 400;
		}
		out[*n].uri = a.uri;
		out[*n].q = q;
		out[*n].instance = SLICE_NULL;
		sip_param_find(a.params, "+sip.instance", &out[*n].instance);
		/* what the store cannot keep whole is refused, not cut: a cut Contact would not reach the phone */
		if (a.uri.l >= KEPT(contact)) {
			*reason = "Contact URI too long";
			return 400;
		}
		if (out[*n].instance.l >= KEPT(instance)) {
			*reason = "+sip.instance too long";
			return 400;
		}
		out[*n].expires = e >= 0 ? e : hdr_expires >= 0 ? hdr_expires : (long)r->cfg->default_expires;
		(*n)++;
	}
	/* 10.3 step 6: "*" only alone (one STAR: the grammar of 25.1 has room for one), with Expires: 0 */
	*star = stars > 0;
	if (stars && (stars > 1 || *n || hdr_expires != 0)) {
		*reason = "Contact: * needs Expires: 0 and no other Contact";
		return 400;
	}
	/* 10.3 step 7: 423 "if and only if" the interval is over zero, under an hour and under the minimum:
	 * a [registrar] min_expires of more than 3600 s still takes an hour or more as asked */
	for (size_t i = 0; i < *n; i++) {
		if (out[i].expires > 0 && out[i].expires < 3600 && out[i].expires < (long)r->cfg->min_expires)
			return 423;
		if (out[i].expires > (long)r->cfg->max_expires)
			out[i].expires = (long)r->cfg->max_expires;
	}
	return 0;
}

static bool same_contact(const char *stored, struct slice uri)
{
	struct sip_uri a, b;

	if (slice_eq(slice_cstr(stored), uri))
		return true;
	return sip_uri_parse(&a, slice_cstr(stored)) == 0 && sip_uri_parse(&b, uri) == 0 && sip_uri_equal(&a, &b);
}

struct update {
	struct store_binding *cur; /* the AOR's bindings, updated in place */
	size_t ncur, cap;
	struct store_change *changes;
	size_t nchanges;
	char local[64];            /* the listener the REGISTER came to, as bindings keep it (local_of) */
};

static void change_add(struct update *u, enum store_op op, const struct store_binding *b)
{
	u->changes[u->nchanges].op = op;
	store_binding_copy(&u->changes[u->nchanges].b, b);
	u->nchanges++;
}

static void binding_remove(struct update *u, size_t i)
{
	change_add(u, STORE_BINDING_DEL, &u->cur[i]);
	u->cur[i] = u->cur[--u->ncur];
}

/* A binding refreshed by a Contact written otherwise (19.1.4: EXAMPLE.com, [2001:DB8::A], %61lice) keeps
 * the URI it was stored with (refresh): that text is its row's key on disk, and a row under the new
 * spelling beside it would outlive the binding's removal. */
static void fill_binding(struct store_binding *b, const char *aor, const struct req_contact *c, bool refresh,
			 const struct sip_msg *req, const char *received, const char *path, int64_t now)
{
	const struct sip_hdr *ua = sip_msg_hdr(req, SIP_HDR_USER_AGENT);

	slice_copy(b->aor, sizeof(b->aor), slice_cstr(aor));
	if (!refresh)
		slice_copy(b->contact, sizeof(b->contact), c->uri);
	slice_copy(b->received, sizeof(b->received), slice_cstr(received));
	slice_copy(b->path, sizeof(b->path), slice_cstr(path));
	slice_copy(b->call_id, sizeof(b->call_id), req->call_id);
	slice_copy(b->user_agent, sizeof(b->user_agent), ua ? ua->value : SLICE_NULL);
	slice_copy(b->instance, sizeof(b->instance), c->instance);
	b->cseq = req->cseq.num;
	b->q = c->q;
	b->expires = store_binding_end(now, c->expires);
	b->updated = now;
}

/* 10.3 steps 6 and 7 over the AOR's current bindings. 0, or the status to answer (nothing changed). */
static unsigned apply_contacts(struct registrar *r, struct update *u, const char *aor, const struct sip_msg *req,
			       const struct req_contact *rc, size_t nrc, bool star, const char *received,
			       const char *path, int64_t now, const char **reason)
{
	for (size_t i = 0; i < u->ncur; i++) {
		/* a binding from the same Call-ID only moves forward in CSeq */
		bool touched = star;

		for (size_t k = 0; !touched && k < nrc; k++)
			touched = same_contact(u->cur[i].contact, rc[k].uri);
		if (touched && slice_eq(slice_cstr(u->cur[i].call_id), req->call_id) && u->cur[i].cseq >= req->cseq.num) {
			*reason = "Out-of-order CSeq for this Call-ID";
			return 500;
		}
	}
	if (star) {
		while (u->ncur)
			binding_remove(u, 0);
		return 0;
	}
	for (size_t k = 0; k < nrc; k++) {
		size_t i;

		for (i = 0; i < u->ncur && !same_contact(u->cur[i].contact, rc[k].uri); i++)
			;
		if (rc[k].expires == 0) {
			if (i < u->ncur)
				binding_remove(u, i);
			continue;
		}
		bool refresh = i < u->ncur;

		if (!refresh) {
			if (u->ncur == u->cap) {
				*reason = "Too many contacts for this address of record";
				return 403;
			}
			u->ncur++;
		}
		fill_binding(&u->cur[i], aor, &rc[k], refresh, req, received, path, now);
		memcpy(u->cur[i].local, u->local, sizeof(u->local));
		/* a new binding's row goes at the table's end, a refresh rewrites its own: the store never
		 * searches the table by a key */
		if (!refresh || u->cur[i].seq <= 0)
			u->cur[i].seq = store_seq_next(r->store);
		change_add(u, STORE_BINDING_PUT, &u->cur[i]);
	}
	/* past max_contacts: refuse (default), or let the newest in and the oldest go */
	while (u->ncur > r->cfg->max_contacts) {
		size_t oldest = 0;

		if (strcasecmp(r->cfg->max_contacts_policy, "drop_oldest")) { /* config.c took only the two words */
			*reason = "Too many contacts for this address of record";
			return 403;
		}
		for (size_t i = 1; i < u->ncur; i++)
			if (u->cur[i].updated < u->cur[oldest].updated)
				oldest = i;
		binding_remove(u, oldest);
	}
	return 0;
}

/* RFC 3327 5.3: Path values in order, and the lines to echo in the 200 when the UA supports path.
 * false when they do not fit in path: a binding without its Path would not reach the phone. */
static bool read_path(const struct sip_msg *req, char *path, size_t n, char **echo)
{
	struct sip_list_iter it;
	struct slice el;
	struct sbuf b;
	bool supported = false;

	sbuf_init(&b, path, n - 1);
	sip_list_begin(&it, req, SIP_HDR_PATH);
	while (sip_list_iter_next(&it, &el)) {
		if (b.len)
			sbuf_adds(&b, ",");
		sbuf_addsl(&b, el);
	}
	path[b.overflow ? 0 : b.len] = '\0';
	*echo = NULL;
	if (b.overflow)
		return false;
	sip_list_begin(&it, req, SIP_HDR_SUPPORTED);
	while (sip_list_iter_next(&it, &el))
		supported |= slice_caseeq_cstr(el, "path");
	if (supported && path[0] && (*echo = malloc(strlen(path) + 10)))
		sprintf(*echo, "Path: %s\r\n", path);
	return true;
}

static bool authorize(struct registrar *r, struct txn *tx, const struct sip_msg *req, const struct txn_origin *o,
		      const struct sip_uri *to)
{
	struct auth_user user;
	const char *reason;
	char extra[1024];

	if (!r->cfg->register_auth)
		return true;
	switch (auth_check(r->auth, req, SIP_HDR_AUTHORIZATION, o->src_host, &user, extra, sizeof(extra), &reason)) {
	case AUTH_CHALLENGE:
		txn_reply(tx, req, 401, NULL, extra);
		return false;
	case AUTH_FORBIDDEN:
		txn_reply(tx, req, 403, reason, NULL);
		return false;
	case AUTH_BAD:
		txn_reply(tx, req, 400, reason, NULL);
		return false;
	case AUTH_OK:
		break;
	}
	if (!user_may_register(r, &user, to)) {
		log_info("registrar: user '%s' may not register %.*s", user.name, SLICE_ARG(req->to.uri));
		txn_reply(tx, req, 403, "Not allowed to register this address of record", NULL);
		return false;
	}
	return true;
}

/* Whether adding bindings would take the location service past max_bindings, the bound on its memory
 * (with register_auth = no anyone may bind any AOR of sipd's domains). Said in the log at most every
 * 10 s. The count is read without the other shards' locks: concurrent REGISTERs may pass it by a few. */
static bool location_full(struct registrar *r, size_t adding)
{
	static _Atomic int64_t said;
	int64_t now = (int64_t)time(NULL), last = atomic_load(&said);

	if (loc_count(r->loc) + adding <= r->cfg->max_bindings)
		return false;
	if (now - last >= 10 && atomic_compare_exchange_strong(&said, &last, now))
		log_warn("registrar: %zu bindings, max_bindings %u: new bindings refused (503)", loc_count(r->loc),
			 r->cfg->max_bindings);
	return true;
}

/* Whether set holds contact, compared as apply_contacts does (a refresh may write the same URI another
 * way, and then replaces the stored text): the same text first, the cheap answer for a refresh. */
static bool has_contact(const struct store_binding *set, size_t n, const char *contact)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(set[i].contact, contact) == 0)
			return true;
	for (size_t i = 0; i < n; i++)
		if (same_contact(set[i].contact, slice_cstr(contact)))
			return true;
	return false;
}

/* What an administrator looks for when a phone does (not) work: each binding that comes or goes, once
 * (a refresh says nothing). */
static void log_changes(const char *aor, const struct store_binding *old, size_t nold, const struct update *u,
			int64_t now)
{
	for (size_t i = 0; i < u->ncur; i++) {
		const struct store_binding *b = &u->cur[i];

		if (!has_contact(old, nold, b->contact))
			log_info("registrar: %s: new binding %s from %s for %lld s (%s)", aor, b->contact,
				 b->received[0] ? b->received : "?", (long long)store_binding_left(b->expires, now),
				 b->user_agent[0] ? b->user_agent : "no User-Agent");
	}
	for (size_t i = 0; i < nold; i++)
		if (!has_contact(u->cur, u->ncur, old[i].contact))
			log_info("registrar: %s: binding removed: %s", aor, old[i].contact);
}

static void commit(struct registrar *r, struct txn *tx, const struct sip_msg *req, const struct loc_held *held,
		   struct update *u, const struct store_binding *old, size_t nold, char *path_echo, int64_t now)
{
	const char *aor = held->aor;
	/* recycled (base/recycle.h), not calloc, which skips glibc's per-thread cache; cleared below, after
	 * a call, because GCC folds a malloc followed at once by a memset of its size back into calloc */
	struct pending *p = recycle_alloc(sizeof(*p));
	char *lines = bindings_lines(u->cur, u->ncur, path_echo, now);
	int err;

	free(path_echo);
	if (p)
		memset(p, 0, sizeof(*p));
	err = !p || !lines ? ENOMEM : txn_reply_prepare(tx, req, 200, NULL, lines, &p->ok, &p->ok_len);
	scratch_give(lines);
	if (err || loc_set_locked(held, u->cur, u->ncur, now)) {
		if (p)
			recycle_free(p->ok);
		recycle_free(p);
		txn_reply(tx, req, 500, err == ENOSPC ? "Response too large" : "Out of memory", NULL);
		return;
	}
	p->r = r;
	p->tx = mem_ref(tx);
	memcpy(p->aor, aor, strlen(aor) + 1); /* both are char[256] */
	/* submitted under the AOR's lock: the disk sees this AOR's changes in the order memory did */
	err = store_writer_submit(r->writer, u->changes, u->nchanges, pending_done, p);
	if (!err && log_get_level() >= LOG_INFO)
		log_changes(aor, old, nold, u, now);
	if (err) {
		loc_set_locked(held, old, nold, now);
		reply_later(r, tx, req, err == EAGAIN ? 503 : 500, NULL);
		pending_free(p);
	}
}

/* 10.3 step 5: the address of record is valid for the domain of the Request-URI. With [general] domain
 * set, each domain is its own: the To host is the Request-URI's. With none, sipd's addresses and host
 * name are all one domain, any of them in either place. */
static bool aor_in_ruri_domain(const struct registrar *r, const struct sip_msg *req, const struct sip_uri *to)
{
	return r->domains.n ? sip_host_eq(to->host, req->ruri_uri.host) : registrar_is_local(r, to->host);
}

bool registrar_challenge(struct registrar *r, const struct txn_table *txns, const struct sip_msg *req,
			 const struct txn_origin *o)
{
	struct auth_user user;
	const char *reason;
	char extra[1024], aor[256];

	/* only a REGISTER that carries no credentials at all is answered here; the rest needs state */
	if (!r->cfg->register_auth || sip_msg_hdr(req, SIP_HDR_AUTHORIZATION))
		return false;
	if (req->ruri_err || !registrar_is_local(r, req->ruri_uri.host) || req->to_uri_err ||
	    !registrar_aor_key(r, &req->to_uri, aor, sizeof(aor)))
		return false; /* the 404s come from registrar_handle (step 5's after the credentials) */
	if (auth_check(r->auth, req, SIP_HDR_AUTHORIZATION, o->src_host, &user, extra, sizeof(extra), &reason) !=
	    AUTH_CHALLENGE)
		return false;
	txn_reply_stateless(txns, req, o, 401, NULL, extra);
	return true;
}

/* Seconds left of the longest of the bindings registered from received, 0 when none is. */
static unsigned flow_left(const struct store_binding *cur, size_t n, const char *received, int64_t now)
{
	int64_t longest = 0;

	for (size_t k = 0; k < n; k++)
		if (cur[k].expires - now > longest && !strcmp(cur[k].received, received))
			longest = cur[k].expires - now;
	return (unsigned)longest;
}

/* Who holds a TCP connection for an AOR's bindings (tp_conn_keep): the AOR's hash, never 0 (holder 0 is
 * the proxy's). */
static uint32_t flow_holder(const char *aor)
{
	uint32_t h = slice_hash(slice_make(aor, strlen(aor)), 0x6b65);

	return h ? h : 1;
}

/* The connection that bindings came over from received ("tcp:ADDR"), if still standing, is held for as
 * long as the AOR's bindings from there (cur) last, and let go when none does. */
static void flow_recount(struct tp_worker *w, uint32_t holder, const char *received, const struct store_binding *cur,
			 size_t n, int64_t now)
{
	struct tp_addr peer;

	if (!strncmp(received, "tcp:", 4) && !tp_addr_parse(&peer, received + 4, 0))
		tp_conn_keep_at(w, &peer, holder, flow_left(cur, n, received, now));
}

/* A phone registered over TCP is reached over that connection (the proxy's flow rule), so the connection
 * must outlive the idle timeout for as long as the registration lasts (Kamailio: tcp_persistent_flag):
 * until the last of the AOR's bindings registered from there (received) ends, once the REGISTER has
 * changed them. None left (an un-REGISTER) lets the AOR's hold go, so that the idle timeout applies again;
 * other AORs registered over the same connection (a PBX's lines) keep theirs. The AOR's bindings that
 * came over another TCP connection are counted again too: an un-REGISTER sent over UDP or over a new
 * connection lets the old connection go as well. */
static void keep_flows(const struct txn_origin *o, const char *aor, const struct update *u,
		       const struct store_binding *old, size_t nold, const char *received, int64_t now)
{
	uint32_t holder = flow_holder(aor);
	bool seen;

	if (o->proto == TP_TCP && o->conn)
		tp_conn_keep(o->conn, holder, flow_left(u->cur, u->ncur, received, now));
	for (size_t k = 0; k < nold; k++) {
		if (!strcmp(old[k].received, received))
			continue;
		seen = false;
		for (size_t j = 0; j < k && !seen; j++)
			seen = !strcmp(old[j].received, old[k].received);
		if (!seen)
			flow_recount(o->worker, holder, old[k].received, u->cur, u->ncur, now);
	}
}

/* ---- the registrar's thread: an administrator's removals (sipctl unregister), NAT keep-alives ---- */

#define TICK_S 1
#define UNBIND_BATCH 64

/* The AOR's bindings that u names (every one for contact ""), gone from memory and from the store (for
 * sipctl's: in case a refresh wrote them again since it deleted them); their TCP flows let go as an
 * un-REGISTER's. why: for the log ("by sipctl"). */
static void unbind_apply(struct registrar *r, const struct store_unbind *u, const char *why)
{
	struct store_binding *b = NULL;
	struct store_change *dels = NULL;
	int64_t now = (int64_t)time(NULL);
	uint32_t holder = flow_holder(u->aor);
	size_t n, kept = 0, ndel = 0;
	int err = 0;
	struct loc_held held = loc_lock(r->loc, u->aor);

	n = loc_get_locked(&held, NULL, 0, now);
	b = n ? calloc(n, sizeof(*b)) : NULL;
	dels = n ? calloc(n, sizeof(*dels)) : NULL;
	if (n && (!b || !dels)) {
		loc_unlock(&held);
		log_err("registrar: %s: out of memory: bindings removed %s stay in memory", u->aor, why);
		goto out;
	}
	n = loc_get_locked(&held, b, n, now);
	for (size_t i = 0; i < n; i++) {
		if (u->contact[0] && strcmp(b[i].contact, u->contact)) {
			b[kept++] = b[i];
			continue;
		}
		dels[ndel].op = STORE_BINDING_DEL;
		dels[ndel++].b = b[i];
		log_info("registrar: %s: binding removed %s: %s", u->aor, why, b[i].contact);
	}
	if (ndel && (err = loc_set_locked(&held, b, kept, now)) != 0)
		log_err("registrar: %s: bindings removed %s stay in memory: %s", u->aor, why, strerror(err));
	else if (ndel && store_writer_submit(r->writer, dels, ndel, NULL, NULL))
		log_warn("registrar: %s: bindings removed %s stay in the store until they expire", u->aor, why);
	loc_unlock(&held);
	for (size_t i = 0; i < ndel && !err; i++)
		flow_recount(NULL, holder, dels[i].b.received, b, kept, now);
out:
	free(b);
	free(dels);
}

static void unbinds_poll(struct registrar *r)
{
	struct store_unbind got[UNBIND_BATCH];
	size_t n;
	int err;

	do {
		err = store_unbinds_take(r->admin, got, UNBIND_BATCH, &n);
		if (err)
			log_warn("registrar: cannot read the removals sipctl left: %s", strerror(err));
		for (size_t i = 0; i < n; i++)
			unbind_apply(r, &got[i], "by sipctl");
	} while (!err && n == UNBIND_BATCH);
}

bool registrar_keepalive_answer(struct registrar *r, const struct sip_msg *m)
{
	return r && m->cseq.mid == SIP_METHOD_OPTIONS && natping_answer(r->np, m->call_id);
}

/* Every second since the last tick (a late wake-up skips none), at most one interval's worth; the
 * bindings whose phones stopped answering go as an un-REGISTER would take them. */
static void natping_due(struct registrar *r)
{
	unsigned interval = r->cfg->nat_keepalive, timeout = r->cfg->nat_keepalive_timeout;
	int64_t now = (int64_t)time(NULL);
	struct store_unbind *gone;
	char why[64];
	size_t n;

	if (!interval)
		return;
	if (r->pinged_to < now - (int64_t)interval)
		r->pinged_to = now - (int64_t)interval;
	snprintf(why, sizeof(why), "(no answer to keep-alives for %u s)", timeout);
	while (r->pinged_to < now) {
		natping_tick(r->np, r->loc, interval, timeout, ++r->pinged_to, &gone, &n);
		for (size_t i = 0; i < n; i++)
			unbind_apply(r, &gone[i], why);
		free(gone);
	}
}

static void *poller_main(void *arg)
{
	struct registrar *r = arg;

	pthread_setname_np(pthread_self(), "sipd-registrar"); /* top -H, ps -L */
	pthread_mutex_lock(&r->poll_lock);
	while (!r->poll_stop) {
		struct timespec until;

		pthread_mutex_unlock(&r->poll_lock);
		unbinds_poll(r);
		natping_due(r);
		pthread_mutex_lock(&r->poll_lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += TICK_S;
		while (!r->poll_stop && pthread_cond_timedwait(&r->poll_cond, &r->poll_lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&r->poll_lock);
	return NULL;
}

static int poller_start(struct registrar *r)
{
	const char *why = NULL;
	int err = store_open(&r->admin, r->cfg->db_path, false, &why);

	if (err) {
		log_err("registrar: cannot open %s: %s", r->cfg->db_path, why ? why : strerror(err));
		return err;
	}
	if ((err = natping_new(&r->np)))
		return err;
	pthread_mutex_init(&r->poll_lock, NULL);
	pthread_cond_init(&r->poll_cond, NULL);
	err = pthread_create(&r->poller, NULL, poller_main, r);
	r->polling = err == 0;
	return err;
}

static void poller_stop(struct registrar *r)
{
	if (!r->polling)
		return;
	pthread_mutex_lock(&r->poll_lock);
	r->poll_stop = true;
	pthread_cond_signal(&r->poll_cond);
	pthread_mutex_unlock(&r->poll_lock);
	pthread_join(r->poller, NULL);
	r->polling = false;
	pthread_cond_destroy(&r->poll_cond);
	pthread_mutex_destroy(&r->poll_lock);
}

/* "udp:192.0.2.1:5060", "tcp:[2001:db8::1]:5061": where the REGISTER came from, as bindings keep it. */
static void received_of(const struct txn_origin *o, char *buf, size_t n)
{
	bool v6 = strchr(o->src_host, ':') != NULL;
	struct sbuf sb;

	sbuf_init(&sb, buf, n - 1);
	sbuf_adds(&sb, o->proto == TP_TCP ? "tcp:" : "udp:");
	sbuf_adds(&sb, v6 ? "[" : "");
	sbuf_adds(&sb, o->src_host);
	sbuf_adds(&sb, v6 ? "]:" : ":");
	sbuf_addu(&sb, o->src_port);
	buf[sb.len] = '\0';
}

/* "udp:192.0.2.7:5060": the UDP listener the REGISTER came to (the address it was sent to, on a wildcard
 * one), as bindings keep it: requests to the phone leave from there. Empty for the listener they leave
 * from anyway (the first of the family: with one listener, every binding), and over TCP, where the
 * connection is the way: 28 bytes of memory and disk less per binding where nothing is to be said. */
static void local_of(const struct txn_origin *o, char *buf, size_t n)
{
	char addr[64];

	buf[0] = '\0';
	if (o->proto == TP_UDP && !tp_lsn_is_default(o->worker, o->lsn, o->local.u.sa.sa_family))
		snprintf(buf, n, "udp:%s", tp_addr_str(&o->local, addr, sizeof(addr)));
}

void registrar_handle(struct registrar *r, struct txn *tx, const struct sip_msg *req, const struct txn_origin *o)
{
	struct req_contact rc[MAX_REQ_CONTACTS];
	size_t nrc, cap;
	struct update u = { 0 };
	struct store_binding *old = NULL;
	struct loc_held held;
	const struct sip_uri *to = &req->to_uri;
	char aor[256], received[128], path[KEPT(path)], extra[64], *path_echo = NULL;
	const char *reason = NULL;
	int64_t now = (int64_t)time(NULL);
	size_t nold;
	unsigned st;
	bool star;

	/* 10.3 step 1: a domain sipd is responsible for */
	if (req->ruri_err || !registrar_is_local(r, req->ruri_uri.host)) {
		txn_reply(tx, req, 404, "Domain not served here", NULL);
		return;
	}
	/* steps 3 and 4 need the user of the To URI, which must be a SIP or SIPS URI (10.2, RFC 4475 3.3.4);
	 * one that names no user is no address of record of sipd's (404) */
	if (req->to_uri_err || (to->scheme != SIP_SCHEME_SIP && to->scheme != SIP_SCHEME_SIPS)) {
		txn_reply(tx, req, 400, "To header field is not a SIP or SIPS URI", NULL);
		return;
	}
	if (!registrar_aor_key(r, to, aor, sizeof(aor))) {
		txn_reply(tx, req, 404, "Address of record not in this domain", NULL);
		return;
	}
	if (!authorize(r, tx, req, o, to))
		return;
	/* step 5, once authenticated (a stranger learns nothing of which addresses sipd keeps) */
	if (!aor_in_ruri_domain(r, req, to)) {
		txn_reply(tx, req, 404, "Address of record not in this domain", NULL);
		return;
	}
	st = read_contacts(r, req, rc, &nrc, &star, &reason);
	if (!st && req->call_id.l >= KEPT(call_id)) {
		st = 400; /* the CSeq order of 10.3 step 7 is kept per Call-ID, whole */
		reason = "Call-ID too long";
	}
	if (st == 423) {
		snprintf(extra, sizeof(extra), "Min-Expires: %u\r\n", r->cfg->min_expires);
		txn_reply(tx, req, 423, NULL, extra);
		return;
	}
	if (st) {
		txn_reply(tx, req, st, reason, NULL);
		return;
	}
	if (!read_path(req, path, sizeof(path), &path_echo)) {
		txn_reply(tx, req, 500, "Path header field too long to store", NULL);
		return;
	}
	if (!nrc && !star) {
		answer_bindings(r, tx, req, aor, path_echo); /* a query: nothing changes */
		free(path_echo);
		return;
	}
	received_of(o, received, sizeof(received));
	local_of(o, u.local, sizeof(u.local));
	/* sized to this AOR and this request (a binding record is ~3 kB): each Contact adds at most one
	 * binding and one change, and max_contacts_policy may remove every binding after that */
	held = loc_lock(r->loc, aor);
	nold = loc_get_locked(&held, NULL, 0, now);
	cap = nold + nrc;
	u.cap = cap;
	u.cur = scratch_take((cap + 1) * sizeof(*u.cur));
	u.changes = scratch_take((cap + nrc + 1) * sizeof(*u.changes));
	old = nold ? scratch_take(nold * sizeof(*old)) : NULL;
	if (!u.cur || !u.changes || (nold && !old)) {
		loc_unlock(&held);
		txn_reply(tx, req, 500, "Out of memory", NULL);
		free(path_echo);
		goto out;
	}
	nold = loc_get_locked(&held, old, nold, now);
	if (nold)
		memcpy(u.cur, old, nold * sizeof(*old));
	u.ncur = nold;
	st = apply_contacts(r, &u, aor, req, rc, nrc, star, received, path, now, &reason);
	if (st) {
		loc_unlock(&held);
		txn_reply(tx, req, st, reason, NULL);
		free(path_echo);
		goto out;
	}
	if (!u.nchanges) {
		loc_unlock(&held);
		answer_bindings(r, tx, req, aor, path_echo);
		free(path_echo);
		goto out;
	}
	if (u.ncur > nold && location_full(r, u.ncur - nold)) {
		loc_unlock(&held);
		reply_later(r, tx, req, 503, "Location service full");
		free(path_echo);
		goto out;
	}
	keep_flows(o, aor, &u, old, nold, received, now);
	commit(r, tx, req, &held, &u, old, nold, path_echo, now);
	loc_unlock(&held);
out:
	scratch_give(u.cur);
	scratch_give(u.changes);
	scratch_give(old);
}

/* ---- life cycle ---- */

/* The address a loaded binding's phone authenticated from (its REGISTER's source) is its user's again, as
 * before the restart: guesses for that user from elsewhere do not lock that phone out at its refresh. */
static void trust_binding(struct registrar *r, const struct store_binding *b)
{
	const char *colon = strchr(b->received, ':');
	struct sip_uri u;
	struct tp_addr a;
	char user[64], host[64];

	if (colon && !tp_addr_parse(&a, colon + 1, 0) && tp_addr_host(&a, host, sizeof(host)) &&
	    !sip_uri_parse(&u, slice_cstr(b->aor)) && sip_uri_user(&u, user, sizeof(user)) > 0)
		auth_trust_note(r->auth, user, host, b->updated);
}

static int load_binding(const struct store_binding *b, void *arg)
{
	struct registrar *r = arg;

	trust_binding(r, b);
	return loc_put(r->loc, b, (int64_t)time(NULL));
}

int registrar_new(struct registrar **rp, const struct config *cfg, struct auth *auth)
{
	struct registrar *r = calloc(1, sizeof(*r));
	const char *why = NULL;
	int err;

	if (!r)
		return ENOMEM;
	r->cfg = cfg;
	r->auth = auth;
	domains_init(r);
	err = store_open(&r->store, cfg->db_path, cfg->db_sync_full, &why);
	if (err) {
		log_err("registrar: cannot open %s: %s", cfg->db_path, why ? why : strerror(err));
		goto fail;
	}
	if ((err = loc_new(&r->loc, expired_to_store, r)))
		goto fail;
	if ((err = store_bindings_load(r->store, (int64_t)time(NULL), load_binding, r)))
		goto fail;
	if ((err = store_writer_new(&r->writer, r->store, 10000, r->cfg->db_commit_delay_ms * 1000u)))
		goto fail;
	if ((err = loc_start(r->loc)))
		goto fail;
	if ((err = poller_start(r)))
		goto fail;
	log_info("registrar: %zu live bindings loaded from %s; domains: %s%s", loc_count(r->loc), cfg->db_path,
		 r->domains.n ? r->domains.name[0] : r->selves.n ? r->selves.name[0] : "-",
		 r->domains.n + r->selves.n > 1 ? ", ..." : "");
	*rp = r;
	return 0;
fail:
	registrar_free(r);
	return err ? err : EIO;
}

void registrar_shutdown(struct registrar *r)
{
	if (!r || atomic_exchange(&r->stopping, true))
		return;
	poller_stop(r); /* it changes memory and submits to the writer */
	loc_free(r->loc); /* stops expiring first: the writer must outlive the expiry thread */
	r->loc = NULL;
	store_writer_free(r->writer); /* what was acknowledged is on disk; what was not is still written */
	r->writer = NULL;
}

void registrar_free(struct registrar *r)
{
	if (!r)
		return;
	registrar_shutdown(r);
	store_close(r->admin);
	natping_free(r->np);
	store_close(r->store);
	free(r);
}
