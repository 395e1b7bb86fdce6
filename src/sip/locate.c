/* locate.c: RFC 3263 client usage (section 4) over net/dns: the transport (4.1: the URI's transport
 * parameter, else NAPTR, else SRV per transport), then SRV (4.2, ordered per RFC 2782), then A/AAAA of
 * every SRV target at once; or straight to A/AAAA when the URI names a port. The search runs on the
 * worker's loop (each DNS answer comes back there), so it needs no lock. */
#include "sip/locate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"
#include "net/loop.h"

#define ADDRS_PER_HOST 4 /* addresses kept per SRV target and family */

struct locate;

/* An SRV target (or the domain itself) and the addresses found for it. */
struct lhost {
	char host[DNS_NAME_MAX];
	uint16_t port;
	enum tp_proto proto;
	bool proto_default;  /* see struct locate_target */
	uint16_t prio;
	uint8_t a4[ADDRS_PER_HOST][4], a6[ADDRS_PER_HOST][16];
	unsigned n4, n6;
};

/* An address question: which SRV target, which family. */
struct aq {
	struct locate *lc;
	unsigned tg;
	int family;
	struct dns_query *q;
};

struct locate {
	struct dns *d;
	struct loop *l;
	locate_h *h;
	void *arg;
	struct locate_uri lu;
	bool ipv6, cancelled, done;
	bool starting;                 /* inside locate_start: a failure is returned, not handed to h */
	struct dns_query *naptr_q, *srv_q;
	struct locate_srvname srvn[4]; /* SRV names to ask, in order */
	unsigned nsrvn, isrvn;
	bool from_naptr;
	bool srv_dot;                  /* an SRV name answered "." (RFC 2782: that service is not offered) */
	struct lhost tg[LOCATE_MAX_SRV];
	unsigned ntg;
	struct aq aq[LOCATE_MAX_SRV * 2];
	unsigned naq, outstanding;
	int addr_err;                  /* the worst failure among the address questions */
	struct locate_result res;
};

/* ---- the URI ---- */

static bool host_chars_ok(const char *h)
{
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '-' ||
		      *h == '.' || *h == '_'))
			return false;
	return true;
}

int locate_uri_parse(struct locate_uri *lu, const struct sip_uri *u)
{
	struct slice host = u->maddr.l ? u->maddr : u->host;

	memset(lu, 0, sizeof(*lu));
	if (host.l && host.p[0] == '[') {
		if (host.l < 3 || host.p[host.l - 1] != ']')
			return EINVAL;
		host = slice_make(host.p + 1, host.l - 2);
	}
	if (!host.l || host.l >= sizeof(lu->host))
		return EINVAL;
	slice_copy(lu->host, sizeof(lu->host), host);
	lu->port = u->port;
	lu->sips = u->scheme == SIP_SCHEME_SIPS;
	if (lu->sips)
		return EPROTONOSUPPORT; /* sips: needs TLS, which sipd does not have */
	lu->proto = TP_UDP;
	if (u->transport.l) {
		lu->proto_given = true;
		if (slice_caseeq_lit(u->transport, "tcp"))
			lu->proto = TP_TCP;
		else if (!slice_caseeq_lit(u->transport, "udp"))
			return EPROTONOSUPPORT;
	}
	if (tp_addr_set(&lu->addr, host, lu->port ? lu->port : 5060) == 0) {
		lu->numeric = true;
		return 0;
	}
	if (!host_chars_ok(lu->host))
		return EINVAL;
	return 0;
}

/* ---- selection rules ---- */

unsigned locate_naptr_select(const struct dns_rr *rr, unsigned n, bool sips, struct locate_srvname *out,
			     unsigned max)
{
	unsigned idx[DNS_MAX_RR], k = 0, w = 0;

	for (unsigned i = 0; i < n && k < DNS_MAX_RR; i++) {
		const char *svc = rr[i].u.naptr.service, *rep = rr[i].u.naptr.replacement;

		if (strcasecmp(rr[i].u.naptr.flags, "s") || !rep[0] || !strcmp(rep, "."))
			continue;
		if (sips || (strcasecmp(svc, "SIP+D2U") && strcasecmp(svc, "SIP+D2T")))
			continue; /* SIPS+D2T needs TLS; SCTP and the rest sipd does not speak */
		idx[k++] = i;
	}
	/* by order, then preference; equal ones keep the server's order (insertion sort is stable) */
	for (unsigned i = 1; i < k; i++) {
		unsigned v = idx[i], j = i;

		while (j > 0 && (rr[idx[j - 1]].u.naptr.order > rr[v].u.naptr.order ||
				 (rr[idx[j - 1]].u.naptr.order == rr[v].u.naptr.order &&
				  rr[idx[j - 1]].u.naptr.pref > rr[v].u.naptr.pref))) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = v;
	}
	for (unsigned i = 0; i < k && w < max; i++) {
		snprintf(out[w].name, sizeof(out[w].name), "%s", rr[idx[i]].u.naptr.replacement);
		out[w].proto = strcasecmp(rr[idx[i]].u.naptr.service, "SIP+D2T") ? TP_UDP : TP_TCP;
		w++;
	}
	return w;
}

unsigned locate_srv_order(const struct dns_rr *rr, unsigned n, uint32_t (*rnd)(void *), void *rarg,
			  unsigned *idx)
{
	unsigned k = 0, w = 0;
	unsigned sorted[DNS_MAX_RR];

	for (unsigned i = 0; i < n && k < DNS_MAX_RR; i++)
		if (rr[i].u.srv.target[0] && strcmp(rr[i].u.srv.target, ".")) /* ".": not offered here */
			sorted[k++] = i;
	for (unsigned i = 1; i < k; i++) {
		unsigned v = sorted[i], j = i;

		while (j > 0 && rr[sorted[j - 1]].u.srv.prio > rr[v].u.srv.prio) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = v;
	}
	for (unsigned s = 0; s < k;) {
		unsigned e = s, list[DNS_MAX_RR], nl = 0;

		while (e < k && rr[sorted[e]].u.srv.prio == rr[sorted[s]].u.srv.prio)
			e++;
		/* RFC 2782: zero weights at the beginning of the list, then the others */
		for (unsigned i = s; i < e; i++)
			if (!rr[sorted[i]].u.srv.weight)
				list[nl++] = sorted[i];
		for (unsigned i = s; i < e; i++)
			if (rr[sorted[i]].u.srv.weight)
				list[nl++] = sorted[i];
		while (nl) {
			uint32_t sum = 0, run = 0, r;
			unsigned pick = 0;

			for (unsigned i = 0; i < nl; i++)
				sum += rr[list[i]].u.srv.weight;
			r = sum ? rnd(rarg) % (sum + 1) : 0; /* uniform in [0, sum] */
			for (unsigned i = 0; i < nl; i++) {
				run += rr[list[i]].u.srv.weight;
				if (run >= r) {
					pick = i;
					break;
				}
			}
			idx[w++] = list[pick];
			memmove(&list[pick], &list[pick + 1], (nl - pick - 1) * sizeof(list[0]));
			nl--;
		}
		s = e;
	}
	return w;
}

static uint32_t thread_rnd(void *arg)
{
	static _Thread_local uint64_t x;

	(void)arg;
	if (!x) {
		if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != sizeof(x))
			x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&x;
		x |= 1;
	}
	x ^= x << 13; /* xorshift64: SRV weights need spread, not secrecy */
	x ^= x >> 7;
	x ^= x << 17;
	return (uint32_t)(x >> 32);
}

/* ---- the search ---- */

static void drop_queries(struct locate *lc)
{
	dns_cancel(lc->naptr_q);
	dns_cancel(lc->srv_q);
	lc->naptr_q = lc->srv_q = NULL;
	for (unsigned i = 0; i < lc->naq; i++) {
		dns_cancel(lc->aq[i].q);
		lc->aq[i].q = NULL;
	}
}

/* The result goes to the caller; the caller's reference ends with it. */
static void finish(struct locate *lc, int err)
{
	if (lc->done)
		return;
	lc->done = true;
	drop_queries(lc);
	lc->res.err = err;
	if (err)
		lc->res.n = 0;
	if (lc->starting)
		return; /* locate_start returns the error itself */
	if (!lc->cancelled)
		lc->h(&lc->res, lc->arg);
	mem_deref(lc);
}

static void add_target(struct locate *lc, int family, const uint8_t *a, const struct lhost *h)
{
	struct locate_target *t;
	uint16_t port = h->port;

	if (lc->res.n >= LOCATE_MAX)
		return;
	t = &lc->res.t[lc->res.n++];
	memset(t, 0, sizeof(*t));
	t->proto = h->proto;
	t->proto_default = h->proto_default;
	t->prio = h->prio;
	if (family == AF_INET) {
		t->addr.u.in.sin_family = AF_INET;
		t->addr.u.in.sin_port = htons(port);
		memcpy(&t->addr.u.in.sin_addr, a, 4);
		t->addr.len = sizeof(t->addr.u.in);
	} else {
		t->addr.u.in6.sin6_family = AF_INET6;
		t->addr.u.in6.sin6_port = htons(port);
		memcpy(&t->addr.u.in6.sin6_addr, a, 16);
		t->addr.len = sizeof(t->addr.u.in6);
	}
}

/* Every address question answered: the targets in SRV order, IPv4 before IPv6 per host. */
static void addresses_done(struct locate *lc)
{
	for (unsigned i = 0; i < lc->ntg; i++) {
		for (unsigned j = 0; j < lc->tg[i].n4; j++)
			add_target(lc, AF_INET, lc->tg[i].a4[j], &lc->tg[i]);
		for (unsigned j = 0; j < lc->tg[i].n6; j++)
			add_target(lc, AF_INET6, lc->tg[i].a6[j], &lc->tg[i]);
	}
	finish(lc, lc->res.n ? 0 : lc->addr_err ? lc->addr_err : ENOENT);
}

/* Ranks failures: a timeout says more than a server failure, which says more than "no such name". */
static int worse(int a, int b)
{
	static const int rank[] = { ENOENT, EIO, ETIMEDOUT };
	int ra = -1, rb = -1;

	for (int i = 0; i < 3; i++) {
		if (a == rank[i])
			ra = i;
		if (b == rank[i])
			rb = i;
	}
	return ra >= rb ? a : b;
}

static void on_addr(const struct dns_answer *ans, void *arg)
{
	struct aq *q = arg;
	struct locate *lc = q->lc;
	struct lhost *t = &lc->tg[q->tg];

	q->q = NULL;
	if (ans->status) {
		lc->addr_err = worse(lc->addr_err, ans->status);
	} else {
		for (unsigned i = 0; i < ans->n; i++) {
			const struct dns_rr *rr = &ans->rr[i];

			if (rr->u.a.family == AF_INET && t->n4 < ADDRS_PER_HOST)
				memcpy(t->a4[t->n4++], rr->u.a.addr, 4);
			else if (rr->u.a.family == AF_INET6 && t->n6 < ADDRS_PER_HOST)
				memcpy(t->a6[t->n6++], rr->u.a.addr, 16);
		}
	}
	if (--lc->outstanding == 0)
		addresses_done(lc);
}

/* Step 3: A (and AAAA) of every target at once. */
static void ask_addresses(struct locate *lc)
{
	int err;

	lc->outstanding = 1; /* held while the questions go out, so an early answer cannot finish */
	for (unsigned i = 0; i < lc->ntg; i++) {
		unsigned char buf[16];

		if (inet_pton(AF_INET, lc->tg[i].host, buf) == 1) {
			memcpy(lc->tg[i].a4[lc->tg[i].n4++], buf, 4); /* an address in place of a name */
			continue;
		}
		if (inet_pton(AF_INET6, lc->tg[i].host, buf) == 1) {
			memcpy(lc->tg[i].a6[lc->tg[i].n6++], buf, 16);
			continue;
		}
		for (int f = 0; f < (lc->ipv6 ? 2 : 1); f++) {
			struct aq *q = &lc->aq[lc->naq];

			*q = (struct aq){ .lc = lc, .tg = i, .family = f ? AF_INET6 : AF_INET };
			err = dns_query(lc->d, lc->l, lc->tg[i].host, f ? DNS_AAAA : DNS_A, on_addr, q, &q->q);
			if (err) {
				lc->addr_err = worse(lc->addr_err, err == EAGAIN ? EIO : err);
				continue;
			}
			lc->naq++;
			lc->outstanding++;
		}
	}
	if (--lc->outstanding == 0)
		addresses_done(lc);
}

/* The host's own addresses, at the URI's port or the default (4.2): when the URI names a port, or when
 * no SRV record was found anywhere. */
static void fallback_addresses(struct locate *lc, enum tp_proto proto)
{
	lc->ntg = 1;
	snprintf(lc->tg[0].host, sizeof(lc->tg[0].host), "%s", lc->lu.host);
	lc->tg[0].port = lc->lu.port ? lc->lu.port : 5060;
	lc->tg[0].proto = proto;
	lc->tg[0].proto_default = !lc->from_naptr && !lc->lu.proto_given;
	ask_addresses(lc);
}

static void ask_srv(struct locate *lc);

static void on_srv(const struct dns_answer *ans, void *arg)
{
	struct locate *lc = arg;
	unsigned idx[DNS_MAX_RR], n;

	lc->srv_q = NULL;
	if (ans->status == ETIMEDOUT) {
		finish(lc, ETIMEDOUT);
		return;
	}
	if (ans->status) {
		lc->isrvn++; /* none under this name: the next transport's (4.1) */
		ask_srv(lc);
		return;
	}
	n = locate_srv_order(ans->rr, ans->n, thread_rnd, NULL, idx);
	if (!n) {
		/* RFC 2782: a target of "." says this service is not offered, over this transport: the next
		 * SRV name (4.1: one question per transport) may still offer one */
		lc->srv_dot = true;
		lc->isrvn++;
		ask_srv(lc);
		return;
	}
	for (unsigned i = 0; i < n && lc->ntg < LOCATE_MAX_SRV; i++) {
		const struct dns_rr *rr = &ans->rr[idx[i]];

		snprintf(lc->tg[lc->ntg].host, sizeof(lc->tg[0].host), "%s", rr->u.srv.target);
		lc->tg[lc->ntg].port = rr->u.srv.port;
		lc->tg[lc->ntg].proto = lc->srvn[lc->isrvn].proto;
		lc->tg[lc->ntg].proto_default = false; /* SRV named it */
		lc->tg[lc->ntg].prio = rr->u.srv.prio;
		lc->ntg++;
	}
	ask_addresses(lc);
}

/* Step 2: the SRV names in order until one has records. */
static void ask_srv(struct locate *lc)
{
	int err;

	if (lc->isrvn >= lc->nsrvn && lc->srv_dot) {
		finish(lc, ENOENT); /* no SRV name offered the service, and one said it is not offered */
		return;
	}
	if (lc->isrvn >= lc->nsrvn) {
		/* 4.2: no SRV: A/AAAA of the domain, with the transport 4.1 chose */
		fallback_addresses(lc, lc->from_naptr ? lc->srvn[0].proto : lc->lu.proto);
		return;
	}
	err = dns_query(lc->d, lc->l, lc->srvn[lc->isrvn].name, DNS_SRV, on_srv, lc, &lc->srv_q);
	if (err)
		finish(lc, err);
}

static void add_srvname(struct locate *lc, const char *prefix, enum tp_proto proto)
{
	struct locate_srvname *s = &lc->srvn[lc->nsrvn];

	if (lc->nsrvn >= sizeof(lc->srvn) / sizeof(lc->srvn[0]))
		return;
	if ((size_t)snprintf(s->name, sizeof(s->name), "%s.%s", prefix, lc->lu.host) >= sizeof(s->name))
		return;
	s->proto = proto;
	lc->nsrvn++;
}

static void on_naptr(const struct dns_answer *ans, void *arg)
{
	struct locate *lc = arg;

	lc->naptr_q = NULL;
	if (ans->status == ETIMEDOUT) {
		finish(lc, ETIMEDOUT);
		return;
	}
	if (!ans->status) {
		lc->nsrvn = locate_naptr_select(ans->rr, ans->n, lc->lu.sips, lc->srvn,
						sizeof(lc->srvn) / sizeof(lc->srvn[0]));
		if (!lc->nsrvn) {
			/* the domain names its transports, and sipd has none of them */
			finish(lc, EPROTONOSUPPORT);
			return;
		}
		lc->from_naptr = true;
	} else {
		/* 4.1: no NAPTR (or a server that fails on them): an SRV question per transport sipd has */
		add_srvname(lc, "_sip._udp", TP_UDP);
		add_srvname(lc, "_sip._tcp", TP_TCP);
	}
	ask_srv(lc);
}

static void numeric_done(void *arg)
{
	struct locate *lc = arg;

	if (!lc->cancelled) {
		lc->res.n = 1;
		lc->res.t[0].addr = lc->lu.addr;
		lc->res.t[0].proto = lc->lu.proto;
		lc->res.t[0].proto_default = !lc->lu.proto_given;
		finish(lc, 0);
	} else {
		lc->done = true;
	}
	mem_deref(lc); /* the post's */
}

int locate_start(struct locate **lp, struct dns *d, struct loop *l, const struct sip_uri *u, bool ipv6,
		 locate_h *h, void *arg)
{
	struct locate *lc;
	int err;

	if (!lp || !d || !l || !u || !h)
		return EINVAL;
	lc = mem_zalloc(sizeof(*lc), NULL);
	if (!lc)
		return ENOMEM;
	err = locate_uri_parse(&lc->lu, u);
	if (err) {
		mem_deref(lc);
		return err;
	}
	lc->d = d;
	lc->l = l;
	lc->h = h;
	lc->arg = arg;
	lc->ipv6 = ipv6;
	*lp = lc;
	if (lc->lu.numeric) {
		if (loop_post(l, numeric_done, mem_ref(lc))) {
			mem_deref(lc);
			mem_deref(lc);
			return ENOMEM;
		}
		return 0;
	}
	if (lc->lu.port) {
		/* 4.2: a port and a name: A/AAAA of the name, UDP unless the URI said otherwise */
		lc->starting = true;
		fallback_addresses(lc, lc->lu.proto); /* answers come through the loop: only a failure to ask ends it here */
		lc->starting = false;
		if (lc->done) {
			err = lc->res.err ? lc->res.err : EIO;
			*lp = NULL;
			mem_deref(lc);
			return err;
		}
		return 0;
	}
	if (lc->lu.proto_given) {
		/* 4.1: the transport parameter decides; SRV for that transport only */
		add_srvname(lc, lc->lu.proto == TP_TCP ? "_sip._tcp" : "_sip._udp", lc->lu.proto);
		err = dns_query(d, l, lc->srvn[0].name, DNS_SRV, on_srv, lc, &lc->srv_q);
	} else {
		err = dns_query(d, l, lc->lu.host, DNS_NAPTR, on_naptr, lc, &lc->naptr_q);
	}
	if (err) {
		*lp = NULL;
		mem_deref(lc);
	}
	return err;
}

void locate_cancel(struct locate *lc)
{
	if (!lc || lc->done || lc->cancelled)
		return;
	lc->cancelled = true;
	drop_queries(lc);
	mem_deref(lc);
}
