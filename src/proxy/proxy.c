/* proxy.c: what a stateful proxy does with a request (RFC 3261 16.3 to 16.6) and with its branches'
 * responses (16.7 to 16.10). Every response context lives on the worker that owns its server
 * transaction; client transactions are created on that same loop, so no lock guards a context. */
#include "proxy/proxy.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/scratch.h"
#include "base/timer.h"
#include "net/loop.h"
#include "net/dns.h"
#include "sip/build.h"
#include "sip/locate.h"
#include "sip/status.h"
#include "sip/uri.h"
#include "proxy/calls.h"
#include "proxy/flow.h"
#include "proxy/forward.h"
#include "proxy/rrsig.h"
#include "proxy/unavail.h"

#define MAX_BRANCHES 16
#define MAX_PORTS 33 /* each listener's, each one's advertised, [general] advertise's */
/* 1500, a path MTU sipd cannot know better, less 200 (18.1.1: a larger request goes over TCP) */
#define UDP_MAX_REQUEST 1300

struct proxy {
	const struct config *cfg;
	struct txn_table *txns;
	struct registrar *reg;
	struct auth *auth;
	uint16_t ports[MAX_PORTS]; /* sipd's listen ports: a URI at another port of this host is not sipd */
	struct calls *calls;
	struct unavail *unavail; /* next hops that answered 503 with Retry-After (RFC 3261 21.5.4) */
	unsigned nports;
	struct dns *dns;       /* RFC 3263 server location; NULL when neither outbound nor next-hop DNS is on */
	bool ipv6;             /* sipd listens on IPv6 too: AAAA records are asked for as well */
	pthread_mutex_t acks_lock;
	struct located_ack *acks; /* stateless ACKs waiting for DNS (guarded by acks_lock) */
	uint8_t rr_key[RRSIG_KEY]; /* signs our Record-Routes: the dialogs whose requests sipd relays */
};

/* Marks a transaction's TU slot as a response context (the core's INVITE context starts otherwise). */
static const char rctx_kind = 'P';

struct rctx;

struct branch {
	struct rctx *rc;
	struct txn_client *ct;
	char *req;             /* the forwarded request, for its CANCEL */
	size_t req_len;
	struct tp_addr dst;
	enum tp_proto proto;
	uint8_t lsn;           /* the listener it leaves from over UDP: the one its Via names (built_lsn) */
	bool nat;              /* its phone is reached at its REGISTER's source over UDP, not at its Contact:
	                        * the Contact of its 1xx and 2xx gets a ;nat= token (contact_nat_token) */
	int q;
	bool started, done, provisional, cancel_sent, cancel_wanted;
	bool trying; /* a 100 came: a CANCEL may go (9.1), though only 101-199 count as provisional for
	              * Timer C (16.7 step 2) and failover (RFC 3263 4.3) */
	unsigned code;
	char *udp_req;         /* sent over TCP for its size (18.1.1): the UDP build, should TCP not connect */
	size_t udp_req_len;
	/* a next hop named by a host name (RFC 3263): located once the branch starts */
	char *hop;                 /* its URI, until the search starts */
	struct locate *loc;        /* the search, until it answers */
	struct locate_target *tgt; /* where it was found, tried in order (RFC 3263 4.3) */
	unsigned ntgt, itgt;
	size_t held;               /* bytes of its copies counted in the transaction table (txn_table_hold) */
	char *req_alt;             /* the request built for the other transport (Via, Record-Route) */
	size_t req_alt_len;
	enum tp_proto req_proto;   /* the transport req was built for */
	bool req_v6;               /* the address family req and req_alt name sipd by (Via, Record-Route) */
	char *path;                /* the target's Path, to build them again for the other family */
	unsigned tries;            /* transactions started: each after the first gets a branch of its own */
	bool size_tcp;             /* this target is tried over TCP for the request's size (18.1.1) */
	bool size_udp;             /* and that TCP was refused: the same target over UDP */
};

/* The last signature a response context wrote, by the value it was signed toward as written (its 180
 * and its 200 come with one Contact): no parse, no MAC for the second. pin: that value's pin, for the
 * call's record (pin_len 0 when longer than it keeps). */
struct sg_cache {
	char toward[128];
	size_t len;
	char hex[RRSIG_HEX];
	char pin[CALLS_PIN_MAX];
	size_t pin_len;
};

#define NAT_TOKEN_MAX 160 /* ";nat=" and a flow token (flow.c): an IPv6 address in hex, a dot, a MAC */

struct rctx {
	const char *kind;      /* &rctx_kind */
	struct proxy *p;
	struct txn *stx;       /* the server transaction, referenced */
	struct tp_worker *worker;
	struct branch *br[MAX_BRANCHES]; /* allocated as targets come: most requests have one */
	unsigned nbr;
	bool invite, final_sent, cancelled, timer_c_fired, ended;
	bool expired;          /* the INVITE's Expires passed: the search ends in 408 (RFC 3261 21.5.5) */
	bool in_dialog;        /* the request has a To tag: it goes to its dialog's peer, unavailable or not */
	char contact_nat[NAT_TOKEN_MAX]; /* ";nat=TOKEN" for the request's Contact: its sender is behind a NAT */
	bool remote_target;    /* a method whose Contact, and its 1xx/2xx's, is a dialog's remote target */
	unsigned retry_after;  /* seconds: the shortest pause a 503 asked for, or a paused next hop has left */
	unsigned best_code;
	char *best;            /* the best response so far, our Via removed; NULL for one sipd makes */
	size_t best_len;
	char *challenges;      /* WWW-/Proxy-Authenticate lines of every 401/407 (16.7 step 7) */
	const char *best_reason; /* reason phrase of a best_code sipd found itself (DNS), static */
	struct tmr timer_c;
	struct tmr expiry;     /* the INVITE's Expires, when it has one */
	unsigned expires_s;
	char call_id[256];     /* of an INVITE that starts a dialog: its call record */
	/* how the first branches were built, for those a 3xx adds (recurse_3xx, 16.7 step 4) */
	char local[96];        /* our host:port */
	char src_host[64];     /* the caller's source address and port: received/rport on its Via */
	uint16_t src_port;
	bool record_route;
	bool consume_creds;    /* its credentials for sipd's realm are not sent on (struct fwd) */
	enum tp_proto in_proto; /* the transport the request came over */
	uint32_t lh;           /* the request's loop hash */
	char *routes;          /* the Route set it goes on with, comma-separated; NULL when none */
	/* what every branch's request shares (CSeq, Call-ID, From tag, one Via more than the request's),
	 * so that its client transaction need not parse what was just built; branch set per branch */
	struct txn_client_ident ident;
	char ident_method[TXN_METHOD_MAX + 1]; /* a longer method is not proxied (501, forward_stateful) */
	struct sg_cache sg;    /* the caller's signature in the Record-Routes of its responses */
};

/* Branch i of rc, zeroed the first time; NULL when out of memory. A slot past nbr is scratch that the
 * next target may build into again. Only slot nbr is ever asked for: the slots in use are a prefix. */
static struct branch *branch_slot(struct rctx *rc, unsigned i)
{
	if (!rc->br[i])
		rc->br[i] = calloc(1, sizeof(*rc->br[i]));
	return rc->br[i];
}

/* ---- where things go ---- */

static bool port_is_ours(const struct proxy *p, uint16_t port)
{
	for (unsigned i = 0; i < p->nports; i++)
		if (p->ports[i] == (port ? port : 5060))
			return true;
	return false;
}

static bool uri_is_us(const struct proxy *p, const struct sip_uri *u)
{
	return u->scheme != SIP_SCHEME_TEL && registrar_is_self(p->reg, u->host) && port_is_ours(p, u->port);
}

/* 16.4: whether the Request-URI's maddr names sipd (one of its addresses or domains) and the request
 * arrived at the port and over the transport the URI gives, explicitly or by default (5060, UDP; sips
 * would be TLS, which sipd does not serve). */
static bool maddr_is_us(const struct proxy *p, const struct tp_msg *tm, const struct sip_uri *u)
{
	enum tp_proto want = TP_UDP;

	if (u->scheme != SIP_SCHEME_SIP || !u->maddr.l)
		return false;
	if (u->transport.l) {
		if (slice_caseeq_cstr(u->transport, "tcp"))
			want = TP_TCP;
		else if (!slice_caseeq_cstr(u->transport, "udp"))
			return false;
	}
	return tm->proto == want && tp_addr_port(&tm->local) == (u->port ? u->port : 5060) &&
	       registrar_is_self(p->reg, u->maddr); /* its names and addresses, and its domains */
}

/* Whether a URI's next hop is a host name, for DNS to locate (RFC 3263), rather than an address. */
static bool hop_is_name(const struct sip_uri *u)
{
	struct locate_uri lu;
	int err = locate_uri_parse(&lu, u);

	return (!err && !lu.numeric) || err == EPROTONOSUPPORT;
}

/* The next hop of a URI: its maddr or host, its port, transport=. EAGAIN: a host name (DNS);
 * EPROTONOSUPPORT: a transport sipd lacks, a sips: URI (TLS, RFC 3261 19.1) or transport=tls or sctp,
 * never sent in clear over UDP (RFC 3263 4.1), whether its host is a name or an address. */
static int uri_hop(const struct sip_uri *u, struct tp_addr *dst, enum tp_proto *proto)
{
	struct slice host = u->maddr.l ? u->maddr : u->host;

	if (u->scheme == SIP_SCHEME_SIPS ||
	    (u->transport.l && !slice_caseeq_cstr(u->transport, "tcp") && !slice_caseeq_cstr(u->transport, "udp")))
		return EPROTONOSUPPORT;
	*proto = slice_caseeq_cstr(u->transport, "tcp") ? TP_TCP : TP_UDP;
	if (tp_addr_set(dst, host, u->port ? u->port : 5060) == 0)
		return 0;
	return hop_is_name(u) ? EAGAIN : EINVAL;
}

/* A binding's received ("udp:192.0.2.1:5060"): where its REGISTER came from (RFC 3581 NAT). */
static int received_hop(const char *received, struct tp_addr *dst, enum tp_proto *proto)
{
	if (!received[0] || strlen(received) < 5)
		return EINVAL;
	*proto = strncmp(received, "tcp:", 4) == 0 ? TP_TCP : TP_UDP;
	return tp_addr_parse(dst, received + 4, 5060);
}

/* Whether a binding's received ("udp:1.2.3.4:5060", "tcp:[::1]:5060") is at this host. */
static bool received_host_is(const char *received, struct slice host)
{
	const char *h = received + (strlen(received) > 4 ? 4 : strlen(received));
	const char *end = h[0] == '[' ? strchr(h, ']') : strrchr(h, ':');

	if (h[0] == '[' && end)
		end++;
	if (!end)
		end = h + strlen(h);
	return sip_host_eq(slice_make(h, (size_t)(end - h)), host);
}

/* sipd as one of its addresses shows it: host:port for our Via and Record-Route, and the Route values a
 * Record-Route of ours comes back as (written for a UDP and for a TCP next hop, forward_build). */
struct local {
	struct tp_addr addr;
	char hostport[96];
	struct slice host;     /* in hostport; an IPv6 address in brackets, as in a URI */
	uint16_t port;
	char rr_buf[2][128];
	struct slice rr[2];    /* "<sip:host:port;lr>" and "<sip:host:port;transport=tcp;lr>"; empty for port 0 */
};

static void local_init(struct local *l, const struct tp_addr *addr)
{
	static const char *const rr_tail[2] = { ";lr>", ";transport=tcp;lr>" };
	char host[64];
	struct tp_addr named;
	struct sbuf b;
	bool v6;

	l->addr = *addr;
	if (tp_advertised(NULL, addr, &named)) /* [general] advertise: the address the world reaches sipd at */
		addr = &named;
	l->port = tp_addr_port(addr);
	tp_addr_host(addr, host, sizeof(host));
	v6 = strchr(host, ':') != NULL;
	sbuf_init(&b, l->hostport, sizeof(l->hostport) - 1);
	if (v6)
		sbuf_addlit(&b, "[");
	sbuf_adds(&b, host);
	if (v6)
		sbuf_addlit(&b, "]");
	l->host = slice_make(l->hostport, b.overflow ? 0 : b.len);
	sbuf_addlit(&b, ":");
	sbuf_addu(&b, l->port);
	l->hostport[b.overflow ? 0 : b.len] = '\0';
	for (unsigned i = 0; i < 2; i++) {
		sbuf_init(&b, l->rr_buf[i], sizeof(l->rr_buf[i]));
		sbuf_addlit(&b, "<sip:");
		sbuf_adds(&b, l->hostport);
		sbuf_adds(&b, rr_tail[i]);
		l->rr[i] = slice_make(l->rr_buf[i], b.overflow || !l->port || !l->host.l ? 0 : b.len);
	}
}

/* sipd at the address a request arrived at. A worker receives at an address or two, so each thread keeps
 * the last four (an entry stays until four others came after it): formatting one cost a thousand
 * instructions per request. */
static const struct local *local_of(const struct tp_addr *addr)
{
	static _Thread_local struct local seen[4];
	static _Thread_local unsigned next;
	unsigned i;

	for (i = 0; i < 4; i++)
		if (tp_addr_eq(&seen[i].addr, addr))
			return &seen[i];
	i = next++ % 4;
	local_init(&seen[i], addr);
	return &seen[i];
}

/* Our host:port toward dst: where the request arrived (in_local) when dst is of the same address
 * family, else sipd's address of dst's family (tp_local_for), written into buf; in_local when sipd has
 * none (the send will tell). */
static const char *local_toward(enum tp_proto proto, const struct tp_addr *dst, const char *in_local,
				char buf[96])
{
	struct tp_addr a;

	if ((dst->u.sa.sa_family == AF_INET6) == (in_local[0] == '[') || tp_local_for(NULL, proto, dst, &a))
		return in_local;
	snprintf(buf, 96, "%s", local_of(&a)->hostport);
	return buf;
}

static bool route_parsed_is_us(const struct proxy *p, struct slice r)
{
	struct sip_addr a;
	struct sip_uri u;

	return sip_addr_parse(&a, r) == 0 && sip_uri_parse(&u, a.uri) == 0 && uri_is_us(p, &u);
}

/* Whether two Route values name the same host (sipd's addresses of two families differ). */
/* Whether a Route of ours says transport=tcp (written by forward_build, so in that spelling). */
static bool route_names_tcp(struct slice r)
{
	return memmem(r.p, r.l, ";transport=tcp", 14) != NULL;
}

/* Whether two Routes name one host and port: the two of a double Record-Route differ in one or the other
 * (two listeners of one address, or of two). */
static bool route_hostport_eq(struct slice a, struct slice b)
{
	struct sip_addr aa, ba;
	struct sip_uri au, bu;

	return sip_addr_parse(&aa, a) == 0 && sip_uri_parse(&au, aa.uri) == 0 && sip_addr_parse(&ba, b) == 0 &&
	       sip_uri_parse(&bu, ba.uri) == 0 && sip_host_eq(au.host, bu.host) &&
	       (au.port ? au.port : 5060) == (bu.port ? bu.port : 5060);
}

/* The listener a Route of ours names over UDP, as a target's local: "udp:host:port" into buf, or ''
 * (a TCP one: its connection, or a new one, is the way). */
static void route_udp_local(struct slice r, char *buf, size_t n)
{
	struct sip_addr a;
	struct sip_uri u;
	struct sbuf b;

	buf[0] = '\0';
	if (!r.l || route_names_tcp(r) || sip_addr_parse(&a, r) || sip_uri_parse(&u, a.uri))
		return;
	sbuf_init(&b, buf, n - 1);
	sbuf_addlit(&b, "udp:");
	sbuf_addsl(&b, u.host);
	sbuf_addlit(&b, ":");
	sbuf_addu(&b, u.port ? u.port : 5060);
	buf[b.overflow ? 0 : b.len] = '\0';
}

/* Whether a Route may carry a flow token (flow_target reads it); most carry none, and cost one search. */
static bool route_has_flow(struct slice r)
{
	return memmem(r.p, r.l, "flow=", 5) != NULL;
}

/* Whether r is rr ("<sip:host:port;lr>", a Record-Route of ours without its parameters after lr) with
 * the dialog's signature before the '>', as forward_build writes it; *sg: "sg=HEX", a parameter list. */
static bool route_is_rr_signed(struct slice r, struct slice rr, struct slice *sg)
{
	static const char tag[] = ";" RRSIG_PARAM "=";
	const size_t n = sizeof(tag) - 1 + RRSIG_HEX;

	if (!rr.l || r.l != rr.l + n || r.p[r.l - 1] != '>' || memcmp(r.p, rr.p, rr.l - 1) ||
	    memcmp(r.p + rr.l - 1, tag, sizeof(tag) - 1))
		return false;
	*sg = slice_make(r.p + rr.l, n - 1);
	return true;
}

/* r is a Record-Route of ours as written for l, the address the request arrived at (most requests in a
 * dialog); *sg: its signature, SLICE_NULL when it has none. */
static bool route_is_rr(const struct local *l, struct slice r, struct slice *sg)
{
	*sg = SLICE_NULL;
	return slice_eq(r, l->rr[0]) || slice_eq(r, l->rr[1]) || route_is_rr_signed(r, l->rr[0], sg) ||
	       route_is_rr_signed(r, l->rr[1], sg);
}

/* Whether l, the address a request arrived at, is one sipd answers for as itself. */
static bool local_is_us(const struct proxy *p, const struct local *l)
{
	return registrar_is_self(p->reg, l->host) && port_is_ours(p, l->port);
}

/* Whether Route value r names sipd (16.4). A Record-Route of ours come back as written names l: that
 * takes no parse. */
static bool route_is_us(const struct proxy *p, const struct local *l, struct slice r)
{
	struct slice sg;

	if (route_is_rr(l, r, &sg)) {
		bool us = local_is_us(p, l);

		assert(us == route_parsed_is_us(p, r)); /* debug builds (the tests): what the parse says */
		return us;
	}
	return route_parsed_is_us(p, r);
}

/* Whether Route value r names sipd with its signature for the dialog of call_id toward pin: a
 * Record-Route it wrote (rrsig.h). As written for l, the signature is found without a parse. */
static bool route_signed(const struct proxy *p, const struct local *l, struct slice r, struct slice call_id,
			 struct slice pin)
{
	struct sip_addr a;
	struct sip_uri u;
	struct slice sg;

	if (route_is_rr(l, r, &sg))
		return sg.p && local_is_us(p, l) && rrsig_valid(p->rr_key, sg, call_id, pin);
	return sip_addr_parse(&a, r) == 0 && sip_uri_parse(&u, a.uri) == 0 && uri_is_us(p, &u) &&
	       rrsig_valid(p->rr_key, u.params, call_id, pin);
}

/* The pin (rrsig.h) of a signature at the Route value before r[from] of r[0..n): the first value from
 * there on that does not name sipd, else target, the Request-URI the request goes to. */
static struct slice route_pin(const struct proxy *p, const struct local *l, const struct slice *r, size_t from,
			      size_t n, const struct sip_uri *target, char buf[RRSIG_PIN])
{
	for (size_t j = from; j < n; j++)
		if (!route_is_us(p, l, r[j]))
			return rrsig_pin_of(buf, r[j]);
	return rrsig_pin(buf, target->host, target->port);
}

/* Whether a request of a dialog that names sipd in a Route is of a dialog sipd Record-Routed, going to
 * the peer sipd signed it toward: one of sipd's Route values carries the signature of its Call-ID and
 * the next hop after it (target: the Request-URI). Any of them: a phone with an outbound proxy may put
 * an unsigned Route of sipd's above the route set. Or toward where a target refresh moved that peer
 * (calls_refresh), signed toward where it was. *hop: the pin of where it goes (in buf). */
static bool dialog_signed(const struct proxy *p, const struct local *l, const struct sip_msg *req,
			  const struct sip_uri *target, char buf[RRSIG_PIN], struct slice *hop)
{
	struct slice r[FWD_MAX_ROUTES], pin;
	struct sip_list_iter it;
	char was[CALLS_PIN_MAX];
	size_t n = 0, wl;

	*hop = SLICE_NULL;
	sip_list_begin(&it, req, SIP_HDR_ROUTE);
	while (n < FWD_MAX_ROUTES && sip_list_iter_next(&it, &r[n]))
		n++;
	for (size_t i = 0; i < n; i++) {
		if (!route_is_us(p, l, r[i]))
			continue;
		/* buf holds one pin at a time: *hop is the last one computed (the nearest the Request-URI) */
		*hop = pin = route_pin(p, l, r, i + 1, n, target, buf);
		if (route_signed(p, l, r[i], req->call_id, pin))
			return true;
	}
	if (!hop->p || !(wl = calls_moved(p->calls, req->call_id, *hop, was)))
		return false;
	for (size_t i = 0; i < n; i++)
		if (route_is_us(p, l, r[i]) && route_signed(p, l, r[i], req->call_id, slice_make(was, wl)))
			return true;
	return false;
}

/* m's first Contact value; SLICE_NULL when it has none. */
static struct slice first_contact(const struct sip_msg *m)
{
	struct sip_list_iter it;
	struct slice v;

	sip_list_begin(&it, m, SIP_HDR_CONTACT);
	return sip_list_iter_next(&it, &v) ? v : SLICE_NULL;
}

/* A target refresh (RFC 3261 12.2: a re-INVITE or UPDATE with a Contact) through sipd, sent toward hop:
 * requests toward its sender may go to its new Contact from now on, but only when that names the
 * address it came from (a phone that moved), so that no party can send its peer's requests to a host
 * of its choosing (a trunk that trusts sipd). */
static void note_refresh(struct proxy *p, const struct tp_msg *tm, const struct sip_msg *req, struct slice hop)
{
	struct slice v = first_contact(req);
	struct sip_addr a;
	struct sip_uri u;
	struct tp_addr at;
	char buf[RRSIG_PIN];

	if ((req->mid != SIP_METHOD_INVITE && req->mid != SIP_METHOD_UPDATE) || !hop.p)
		return;
	if (!v.p || sip_addr_parse(&a, v) || sip_uri_parse(&u, a.uri) ||
	    tp_addr_set(&at, u.host, tp_addr_port(&tm->src)) || !tp_addr_eq(&at, &tm->src))
		return;
	calls_refresh(p->calls, req->call_id, hop, rrsig_pin(buf, u.host, u.port));
}

/* The pin the callee's copy of sipd's Record-Route is signed toward (rrsig.h): the callee's requests go,
 * after sipd, to the nearest Record-Route of the request that is not sipd's, else to the caller's
 * Contact. SLICE_NULL when there is none to sign toward (the Record-Route goes unsigned). */
static struct slice callee_pin(const struct proxy *p, const struct sip_msg *req, char buf[RRSIG_PIN])
{
	struct sip_list_iter it;
	struct sip_addr a;
	struct sip_uri u;
	struct slice v;

	sip_list_begin(&it, req, SIP_HDR_RECORD_ROUTE);
	while (sip_list_iter_next(&it, &v)) {
		if (sip_addr_parse(&a, v) || sip_uri_parse(&u, a.uri))
			return SLICE_NULL; /* nothing to sign toward */
		if (!uri_is_us(p, &u))
			return rrsig_pin(buf, u.host, u.port);
	}
	v = first_contact(req);
	return v.p ? rrsig_pin_of(buf, v) : SLICE_NULL;
}

/* The caller's signature toward the Record-Route or Contact value toward into hex, from cache when it was
 * the last one made. With no pin in it, zeros: the callee's signature is spoilt (zeros never verify), not
 * left for the caller. */
static void caller_sign(const struct proxy *p, struct slice call_id, struct slice toward, struct sg_cache *cache,
			char hex[RRSIG_HEX])
{
	char buf[RRSIG_PIN];
	struct slice pin;

	if (cache && cache->len && toward.l == cache->len && !memcmp(toward.p, cache->toward, toward.l)) {
		memcpy(hex, cache->hex, RRSIG_HEX);
		return;
	}
	pin = toward.p ? rrsig_pin_of(buf, toward) : SLICE_NULL;
	if (!rrsig_sign(p->rr_key, call_id, pin, hex)) {
		memset(hex, '0', RRSIG_HEX);
		return;
	}
	if (cache && toward.l <= sizeof(cache->toward)) {
		memcpy(cache->toward, toward.p, toward.l);
		cache->len = toward.l;
		memcpy(cache->hex, hex, RRSIG_HEX);
		cache->pin_len = pin.l <= sizeof(cache->pin) ? pin.l : 0;
		memcpy(cache->pin, pin.p, cache->pin_len);
	}
}

/* Whether Record-Route value v is one of sipd's, its URI into *u. One without a signature is not (all of
 * sipd's are signed): no parse. */
static bool rr_is_ours(const struct proxy *p, struct slice v, struct sip_uri *u)
{
	struct sip_addr a;

	return memmem(v.p, v.l, RRSIG_PARAM "=", sizeof(RRSIG_PARAM)) && !sip_addr_parse(&a, v) &&
	       !sip_uri_parse(u, a.uri) && uri_is_us(p, u);
}

/* The caller's signatures for the Record-Routes of sipd's in a response going upstream (16.7 step 4):
 * each toward the nearest Record-Route before it that is not sipd's (a proxy downstream), else the
 * callee's Contact. The callee's signature, which the response carries back, would take the caller's
 * requests nowhere but to itself. */
static void caller_patches(const struct proxy *p, const struct sip_msg *resp, struct sg_cache *cache,
			   struct fwd_patches *out)
{
	struct slice v, before = SLICE_NULL, sg, contact = SLICE_NULL;
	struct sip_list_iter it;
	struct sip_uri u;

	out->n = 0;
	if (!resp->count[SIP_HDR_RECORD_ROUTE])
		return;
	sip_list_begin(&it, resp, SIP_HDR_RECORD_ROUTE);
	while (out->n < FWD_MAX_PATCHES && sip_list_iter_next(&it, &v)) {
		if (!rr_is_ours(p, v, &u)) {
			before = v;
			continue;
		}
		if (!sip_param_find(u.params, RRSIG_PARAM, &sg) || sg.l != RRSIG_HEX)
			continue;
		if (!before.p && !contact.p)
			contact = first_contact(resp);
		caller_sign(p, resp->call_id, before.p ? before : contact, cache, out->p[out->n].hex);
		out->p[out->n++].at = sg.p;
	}
}

/* A response for upstream: sipd's Via off, the caller's signatures in sipd's Record-Routes, contact_nat
 * in its Contact (SLICE_NULL: none). */
static char *upstream_copy(const struct proxy *p, const struct sip_msg *resp, struct sg_cache *cache,
			   struct slice contact_nat, size_t *len)
{
	struct fwd_patches patches;

	caller_patches(p, resp, cache, &patches);
	return fwd_strip_via(resp, &patches, contact_nat, len);
}

/* ";nat=TOKEN" (flow.h) into buf for a dialog's Contact (the first value of contact) that names another
 * host than from, where its sender was heard over UDP: the sender is behind a NAT, which lets the
 * dialog's requests in at from only (a phone without STUN writes its private address; the requests to it
 * would go nowhere, and its call end when its 200 is never ACKed). The token comes back in the
 * Request-URI of those requests, through sipd's Route (nat_target). SLICE_NULL for a Contact at from's
 * host, or with a host name (no NAT writes one). */
static struct slice contact_nat_token(struct slice contact, enum tp_proto proto, const struct tp_addr *from,
				      char buf[NAT_TOKEN_MAX])
{
	struct sip_addr a;
	struct sip_uri u;
	struct tp_addr host;
	struct sbuf b;

	if (!contact.l || sip_addr_parse(&a, contact) || a.star || sip_uri_parse(&u, a.uri) ||
	    tp_addr_set(&host, u.host, tp_addr_port(from)) || tp_addr_eq(&host, from))
		return SLICE_NULL;
	sbuf_init(&b, buf, NAT_TOKEN_MAX);
	/* over TCP the way in is the party's connection: "tcp-" says so (outside the MAC: flipping it
	 * sends to the same signed address another way, no further) */
	sbuf_adds(&b, proto == TP_TCP ? ";nat=tcp-" : ";nat=");
	return flow_token_value(&b, from) && !b.overflow ? slice_make(buf, b.len) : SLICE_NULL;
}

/* Whether a request's Contact (and that of its 1xx and 2xx) is a dialog's remote target, which the
 * dialog's requests come back to: INVITE, UPDATE (RFC 3261 12.1, RFC 3311), SUBSCRIBE, NOTIFY (RFC
 * 6665), REFER (RFC 3515). Not a REGISTER's, which another registrar keeps. */
static bool names_remote_target(enum sip_method m)
{
	return m == SIP_METHOD_INVITE || m == SIP_METHOD_UPDATE || m == SIP_METHOD_SUBSCRIBE ||
	       m == SIP_METHOD_NOTIFY || m == SIP_METHOD_REFER;
}

/* The token for a 1xx or 2xx of b, when its phone is behind a NAT (b->nat). */
static struct slice branch_contact_nat(const struct branch *b, const struct sip_msg *resp, char buf[NAT_TOKEN_MAX])
{
	return b->nat && b->rc->remote_target && resp->count[SIP_HDR_CONTACT] == 1
		       ? contact_nat_token(first_contact(resp), TP_UDP, &b->dst, buf)
		       : SLICE_NULL;
}

/* ---- loops (16.3 step 4, 16.6 step 8) ---- */

/* What makes a request the same request for loop detection: everything 16.6 step 8 names but the
 * Vias. A spiral (the Request-URI changed) hashes otherwise and is forwarded. */
static uint32_t loop_hash(const struct sip_msg *req)
{
	uint32_t h = slice_hash(req->ruri, 0x100f);

	h = slice_hash(req->from.tag, h);
	h = slice_hash(req->to.tag, h);
	h = slice_hash(req->call_id, h);
	h = h * 31 + req->cseq.num;
	for (unsigned i = 0; i < req->nhdrs; i++) {
		uint8_t id = req->hdrs[i].id;

		if (id == SIP_HDR_PROXY_REQUIRE || id == SIP_HDR_PROXY_AUTHORIZATION || id == SIP_HDR_ROUTE)
			h = slice_hash(req->hdrs[i].value, h);
	}
	return h;
}

/* A branch of ours: its unique part (magic cookie first), then the request's loop hash after a '-', so
 * that the loop check (16.3 step 4) can find it again. */
static void branch_write(char out[48], const char *unique, uint32_t lh)
{
	size_t ul = strlen(unique);

	memcpy(out, unique, ul);
	out[ul] = '-';
	slice_put_hex(out + ul + 1, lh, 8);
	out[ul + 9] = '\0';
}

/* Our branch for a client transaction: unique. */
static void loop_branch(char out[48], uint32_t lh)
{
	char unique[32];

	txn_branch_new(unique);
	branch_write(out, unique, lh);
}

/* The branch of a request forwarded without a transaction (16.11: an ACK for a 2xx): "the component of
 * the branch parameter that makes it unique MUST be the same each time a retransmitted request is
 * forwarded", so it is a hash of the received top Via (its branch and sent-by), which a retransmission
 * repeats; then the loop hash, as in loop_branch. */
static void stateless_branch(char out[48], const struct sip_msg *req, uint32_t lh)
{
	const struct sip_hdr *h = sip_msg_hdr(req, SIP_HDR_VIA);
	struct slice rest = h ? h->value : SLICE_NULL, top = SLICE_NULL;
	char unique[24];

	if (h)
		sip_list_next(&rest, &top);
	memcpy(unique, "z9hG4bK", 7);
	slice_put_hex(unique + 7, slice_hash(top, 0x5ca1ab1e), 8);
	slice_put_hex(unique + 15, slice_hash(top, 0x0ddba11), 8);
	unique[23] = '\0';
	branch_write(out, unique, lh);
}

/* What the loop check (16.3 step 4) learns of a request, for its forwarding (16.6) to reuse. */
struct seen {
	uint32_t lh;           /* the loop hash */
	unsigned nvia;         /* Via values it carries (its client transactions expect one more) */
	bool authed;           /* its Proxy-Authorization for sipd's realm was checked (consumed, not sent on) */
};

/* Whether v is a Via of sipd's whose branch ends in want ("-" and a loop hash). */
static bool via_is_ours_with(const struct proxy *p, const struct sip_via *v, const char want[9])
{
	return v->branch.l >= 9 && !memcmp(v->branch.p + v->branch.l - 9, want, 9) &&
	       registrar_is_self(p->reg, v->host) && port_is_ours(p, v->port);
}

/* Whether the top Via the parser read is the request's only Via value (a request straight from a UA). */
static bool only_top_via(const struct sip_msg *req)
{
	const struct sip_hdr *h = sip_msg_hdr(req, SIP_HDR_VIA);

	return req->count[SIP_HDR_VIA] == 1 && req->via.raw.p &&
	       req->via.raw.p + req->via.raw.l == h->value.p + h->value.l;
}

/* Did this very request pass here before? A Via of sipd's carrying the same loop hash says so. Fills
 * *s; its nvia only when the answer is false. The parser's top Via serves when it is the only one;
 * otherwise only a Via holding "-<hash>" can be one: the others are counted, not parsed. */
static bool looped(const struct proxy *p, const struct sip_msg *req, struct seen *s)
{
	struct sip_list_iter it;
	struct slice el;
	char want[9];

	s->lh = loop_hash(req);
	s->nvia = 0;
	want[0] = '-';
	slice_put_hex(want + 1, s->lh, 8);
	if (only_top_via(req)) {
		s->nvia = 1;
		return via_is_ours_with(p, &req->via, want);
	}
	sip_list_begin(&it, req, SIP_HDR_VIA);
	for (; sip_list_iter_next(&it, &el); s->nvia++) {
		struct sip_via v;

		if (memmem(el.p, el.l, want, sizeof(want)) && sip_via_parse(&v, el) == 0 &&
		    via_is_ours_with(p, &v, want))
			return true;
	}
	return false;
}

/* ---- responses going upstream ---- */

/* A response that has no transaction upstream any more (a further 2xx): by the server's destination. */
static void send_upstream_raw(struct rctx *rc, const char *buf, size_t len)
{
	struct tp_worker *w;
	uint8_t lsn;
	enum tp_proto proto;
	struct tp_conn *conn;
	const struct tp_addr *dst;

	txn_get_dest(rc->stx, &w, &lsn, &proto, &conn, &dst);
	tp_send_from(w, lsn, proto, conn, dst, buf, len);
}

/* ---- branches ---- */

static void branch_cancel(struct branch *b);
static void rctx_finish(struct rctx *rc);
static void start_next_group(struct rctx *rc);
static bool branch_3xx(struct rctx *rc, unsigned code, const struct sip_msg *resp);

static bool branch_pending(const struct branch *b)
{
	return b->started && !b->done;
}

static unsigned pending_count(const struct rctx *rc)
{
	unsigned n = 0;

	for (unsigned i = 0; i < rc->nbr; i++)
		n += branch_pending(rc->br[i]);
	return n;
}

/* 16.7 step 10, 16.10. A CANCEL SHOULD NOT be sent for a request other than INVITE (9.1), which its
 * UAS answers at once anyway: such a branch that went out ends with its own final or Timer F, and
 * only one still being located (nothing sent) ends here. */
static void cancel_pending(struct rctx *rc)
{
	for (unsigned i = 0; i < rc->nbr; i++)
		if (branch_pending(rc->br[i]) && (rc->invite || rc->br[i]->loc))
			branch_cancel(rc->br[i]);
}

/* 4xx answers that tell the caller how to try again (16.7 step 6: preferred within their class). */
static bool retry_info(unsigned code)
{
	return code == 401 || code == 407 || code == 415 || code == 420 || code == 484;
}

/* 16.7 step 6: a 6xx wins; else the lowest class; within 4xx, a retry_info answer over another. */
static bool better(unsigned code, unsigned best)
{
	if (!best)
		return true;
	if (best >= 600)
		return false;
	if (code >= 600)
		return true;
	if (code / 100 != best / 100)
		return code / 100 < best / 100;
	return code / 100 == 4 && retry_info(code) && !retry_info(best);
}

/* RFC 4320 4.1: no 408 goes up to a non-INVITE, so a branch's 408 (its own, or Timer F's) ranks under
 * every other answer, and only ever stands for "no answer" (rctx_finish then sends nothing). */
static bool better_for_non_invite(unsigned code, unsigned best)
{
	if (code == 408)
		return !best;
	return best == 408 || better(code, best);
}

static void collect_challenges(struct rctx *rc, const struct sip_msg *resp)
{
	enum sip_hdr_id id = resp->status == 401 ? SIP_HDR_WWW_AUTHENTICATE : SIP_HDR_PROXY_AUTHENTICATE;

	for (const struct sip_hdr *h = sip_msg_hdr(resp, id); h; h = sip_msg_hdr_next(resp, h)) {
		size_t old = rc->challenges ? strlen(rc->challenges) : 0;
		char *n = realloc(rc->challenges, old + h->value.l + 32);

		if (!n)
			return;
		rc->challenges = n;
		snprintf(n + old, h->value.l + 32, "%s: %.*s\r\n", sip_hdr_name(id), SLICE_ARG(h->value));
	}
}

static void timer_c_expired(struct tmr *t, void *arg);

/* The search is over (a final went up, or the transaction ended): Timer C and the INVITE's Expires
 * have nothing left to end. */
static void search_timers_stop(struct rctx *rc)
{
	tmr_cancel(&rc->timer_c);
	tmr_cancel(&rc->expiry);
}

static void timer_c_restart(struct rctx *rc)
{
	if (rc->invite && !rc->ended)
		tmr_start(loop_timers(txn_loop(rc->stx)), &rc->timer_c, rc->p->cfg->timer_c * 1000u, timer_c_expired,
			  rc);
}

static void branch_final(struct rctx *rc, struct branch *b, unsigned code, const struct sip_msg *resp)
{
	if (code == 487 && rc->timer_c_fired && !rc->cancelled && !rc->in_dialog) {
		/* the 487 answers sipd's own CANCEL, not the caller's: the branch rang too long, and the caller
		 * hears 408 Request Timeout (16.8; the seed's 408 row), as for a branch that never answered.
		 * Not for a re-INVITE: a 408 there ends the whole dialog (12.2.1.2), and its
		 * 487 says only that this offer is withdrawn */
		code = 408;
		resp = NULL;
	}
	b->done = true;
	b->code = code;
	if (resp && (code == 401 || code == 407))
		collect_challenges(rc, resp);
	if (code < 300 && code >= 200) {
		char nat[NAT_TOKEN_MAX];
		size_t len;
		char *out = resp ? upstream_copy(rc->p, resp, &rc->sg, branch_contact_nat(b, resp, nat), &len) : NULL;

		if (out) {
			/* 16.7 step 5: every 2xx goes up at once; the first through the transaction */
			if (!rc->final_sent && txn_respond(rc->stx, code, out, len) == 0) {
				rc->final_sent = true;
				search_timers_stop(rc);
				if (rc->call_id[0]) { /* an INVITE out of a dialog: Record-Routed when configured */
					calls_answered(rc->p->calls, slice_cstr(rc->call_id), rc->p->cfg->record_route);
					/* where the caller's requests go: what its signature was made toward */
					calls_signed_toward(rc->p->calls, slice_cstr(rc->call_id), 1,
							    slice_make(rc->sg.pin, rc->sg.pin_len));
				}
			}
			else if (rc->invite)
				send_upstream_raw(rc, out, len); /* another fork's 2xx: each makes a dialog */
			/* a non-INVITE's later 2xx goes nowhere: only an INVITE's 2xx follow the first (16.7 step 5) */
			free(out);
		}
		cancel_pending(rc); /* 16.7 step 10 */
		return;
	}
	/* 305's Contact is a proxy to go through and 380's an alternative service, not targets */
	if (code / 100 == 3 && code != 305 && code != 380 && resp && rc->p->cfg->recurse_3xx &&
	    branch_3xx(rc, code, resp))
		return; /* its Contacts became branches */
	if (rc->invite ? better(code, rc->best_code) : better_for_non_invite(code, rc->best_code)) {
		free(rc->best);
		rc->best = NULL;
		rc->best_reason = NULL;
		rc->best_code = code;
		/* a 503 becomes sipd's own 500; a non-INVITE's 408 nothing (RFC 4320); an INVITE's 408 from
		 * downstream goes up as it came (16.7 step 6), with its To tag, headers and body */
		if (resp && code != 503 && (code != 408 || rc->invite))
			rc->best = upstream_copy(rc->p, resp, &rc->sg, SLICE_NULL, &rc->best_len);
	}
	if (code >= 600)
		cancel_pending(rc); /* 16.7 step 6: a 6xx ends the search */
}

/* A branch sent over TCP for its size goes back to its UDP build: true when it had one. */
static bool branch_to_udp(struct branch *b)
{
	if (!b->udp_req)
		return false;
	free(b->req);
	b->req = b->udp_req;
	b->req_len = b->udp_req_len;
	b->udp_req = NULL;
	b->proto = TP_UDP;
	return true;
}

static int branch_start(struct rctx *rc, struct branch *b);
static void branch_response(struct rctx *rc, struct branch *b, unsigned code, const struct sip_msg *resp);
static void note_unavailable(struct rctx *rc, const struct locate_target *t, const struct sip_msg *resp);
static bool branch_failover(struct rctx *rc, struct branch *b, unsigned code, const struct sip_msg *resp);

/* The server transaction (and with it rc) may end inside: hold it until the work is done. */
static void on_branch_response(struct txn_client *ct, unsigned code, const struct sip_msg *resp, void *arg)
{
	struct branch *b = arg;
	struct txn *stx = mem_ref(b->rc->stx);

	(void)ct;
	branch_response(b->rc, b, code, resp);
	mem_deref(stx);
}

static void branch_response(struct rctx *rc, struct branch *b, unsigned code, const struct sip_msg *resp)
{
	if (code == 503 && resp)
		note_unavailable(rc, b->tgt && b->itgt < b->ntgt ? &b->tgt[b->itgt] : NULL, resp);
	if (code >= 200 && branch_failover(rc, b, code, resp))
		return;
	if (code == 100) {
		b->trying = true; /* never forwarded (16.7 step 5), and Timer C stays as it is */
		if (b->cancel_wanted)
			branch_cancel(b); /* 9.1: the CANCEL waited for a provisional; a 100 is one */
		return;
	}
	if (code < 200) {
		b->provisional = true;
		if (b->cancel_wanted)
			branch_cancel(b); /* 9.1: the CANCEL waited for a provisional */
		if (!rc->final_sent && resp && rc->invite) {
			/* a 100 never gets here (the client transaction keeps it hop by hop); RFC 4320 4.2: a
			 * non-INVITE gets no provisional but 100, so a 180 to a MESSAGE stops here */
			char nat[NAT_TOKEN_MAX];
			size_t len;
			char *out = upstream_copy(rc->p, resp, &rc->sg, branch_contact_nat(b, resp, nat), &len);

			if (out) {
				txn_respond(rc->stx, code, out, len); /* 16.7 step 5: at once */
				free(out);
			}
		}
		timer_c_restart(rc);
		return;
	}
	if (code == 503 && !resp && b->udp_req && !txn_client_conn_lost(b->ct) && !b->cancel_wanted &&
	    !rc->final_sent && !rc->cancelled && !rc->timer_c_fired && rc->best_code < 600) {
		/* 18.1.1: TCP, taken for the request's size, did not connect (RST): UDP after all. Not when the
		 * connection was up and then lost: the next hop may have the request already */
		log_info("proxy: TCP to the next hop failed; the %zu-byte request goes over UDP", b->udp_req_len);
		b->ct = mem_deref(b->ct);
		branch_to_udp(b);
		if (branch_start(rc, b) == 0)
			return;
	} else {
		branch_final(rc, b, code, resp);
	}
	if (!pending_count(rc))
		start_next_group(rc);
}

static int branch_locate(struct rctx *rc, struct branch *b);
static void branch_refamily(struct rctx *rc, struct branch *b, const struct tp_addr *dst);

/* The branch of a request sipd built: on its second line, sipd's Via, "Via: SIP/2.0/UDP host:port;branch=
 * <branch>;rport" (forward_build): neither host:port nor the branch holds a ';'. */
static struct slice built_branch(const char *req, size_t len)
{
	const char *end = req + len, *via = memchr(req, '\n', len), *br, *e;

	if (!via++ || !(br = memchr(via, ';', (size_t)(end - via))) || end - br < 8 || memcmp(br, ";branch=", 8) ||
	    !(e = memchr(br + 8, ';', (size_t)(end - br - 8))))
		return SLICE_NULL;
	return slice_make(br + 8, (size_t)(e - br - 8));
}

/* The listener a request sipd built leaves from over UDP: the one its Via names ("Via: SIP/2.0/UDP
 * host:port;branch=", forward_build), so that answers and the phone's NAT see one address. */
static uint8_t built_lsn(const char *req, size_t len)
{
	const char *end = req + len, *via = memchr(req, '\n', len), *hp, *e;
	char hostport[64];
	struct tp_addr a;

	if (!via++ || end - via < 17 || memcmp(via, "Via: SIP/2.0/UDP ", 17))
		return TP_LSN_ANY;
	hp = via + 17;
	if (!(e = memchr(hp, ';', (size_t)(end - hp))) || (size_t)(e - hp) >= sizeof(hostport))
		return TP_LSN_ANY;
	memcpy(hostport, hp, (size_t)(e - hp));
	hostport[e - hp] = '\0';
	return tp_addr_parse(&a, hostport, 5060) ? TP_LSN_ANY : tp_lsn_of(NULL, TP_UDP, &a);
}

/* b's request to b's next hop, as a client transaction. 0 or an errno. */
static int branch_send(struct rctx *rc, struct branch *b)
{
	struct txn_client_ident id = rc->ident;

	id.branch = built_branch(b->req, b->req_len);
	b->lsn = b->proto == TP_UDP ? built_lsn(b->req, b->req_len) : TP_LSN_ANY;
	return txn_client_send(&b->ct, rc->p->txns, txn_loop(rc->stx), b->req, b->req_len, rc->ident.method.l ? &id : NULL,
			       rc->worker, b->lsn, b->proto, &b->dst, on_branch_response, b);
}

static int branch_start(struct rctx *rc, struct branch *b)
{
	int err;

	if (b->hop)
		return branch_locate(rc, b); /* a host name: sent once DNS has answered */
	b->started = true;
	do { /* 18.1.1: TCP taken for the size and refused at once: UDP */
		err = branch_send(rc, b);
	} while (err && branch_to_udp(b));
	if (err) {
		/* 8.1.3.1: a transport error is a 503 from that branch */
		log_info("proxy: branch to %s failed: %s", tp_proto_name(b->proto), strerror(err));
		b->done = true;
		b->code = 503;
		if (better(503, rc->best_code))
			rc->best_code = 503;
	}
	return err;
}

/* Sends the branches of the highest q not tried yet (16.6: equal q in parallel, higher q first). */
static void start_next_group(struct rctx *rc)
{
	int q = -2;

	if (rc->final_sent || rc->cancelled || rc->best_code >= 600 || rc->timer_c_fired) {
		rctx_finish(rc);
		return;
	}
	for (unsigned i = 0; i < rc->nbr; i++)
		if (!rc->br[i]->started && rc->br[i]->q > q)
			q = rc->br[i]->q;
	if (q == -2) {
		rctx_finish(rc);
		return;
	}
	for (unsigned i = 0; i < rc->nbr; i++)
		if (!rc->br[i]->started && rc->br[i]->q == q)
			branch_start(rc, rc->br[i]);
	if (!pending_count(rc))
		start_next_group(rc); /* every branch of the group failed to leave */
}

/* ---- branches to a host name (RFC 3263) ---- */

/* What a branch whose next hop DNS could not locate counts as. RFC 3263 names no code: the name or its
 * records do not exist: 404 (definitive, like an unknown user); DNS did not answer or failed: 504 (a
 * server sipd needed did not answer in time); only transports sipd lacks (sips: needs TLS): 502. */
static unsigned located_code(int err, const char **reason)
{
	switch (err) {
	case ENOENT:
		*reason = "Next hop not found in DNS";
		return 404;
	case ETIMEDOUT:
		*reason = "DNS Time-out";
		return 504;
	case EIO:
		*reason = "DNS Failure";
		return 504;
	case EPROTONOSUPPORT:
		*reason = "No usable transport to the next hop";
		return 502;
	default:
		*reason = NULL;
		return 500;
	}
}

static void branch_unlocated(struct rctx *rc, struct branch *b, int err)
{
	const char *reason;
	unsigned code = located_code(err, &reason);

	branch_final(rc, b, code, NULL);
	if (rc->best_code == code && !rc->best)
		rc->best_reason = reason;
}

/* A new transaction id for another attempt (RFC 3263 4.3, RFC 3261 8.1.3.1): the unique part of the
 * branch in our Via (the request's first header) is replaced, the loop hash after it kept. */
static void branch_renew(char *req, size_t len)
{
	struct slice br = built_branch(req, len);
	char unique[32];
	size_t ul;

	txn_branch_new(unique);
	ul = strlen(unique);
	if (br.l < ul || memcmp(br.p, unique, 7))
		return;
	memcpy(req + (br.p - req), unique, ul);
}

/* The caller's 500 for a branch's 503 says when to try again: the shortest pause asked for. */
static void pause_noted(struct rctx *rc, unsigned secs)
{
	if (secs && (!rc->retry_after || secs < rc->retry_after))
		rc->retry_after = secs;
}

/* A branch's 503 with a Retry-After (delta-seconds; a comment and parameters may follow), [proxy]
 * retry_after_max seconds at most (0: Retry-After is ignored): the caller's 500 carries it, and a located
 * next hop gets no new request until it has passed (RFC 3261 21.5.4). The bound keeps one phone's
 * "Retry-After: 86400" from pausing a trunk, or a caller's retries, for a day. */
static void note_unavailable(struct rctx *rc, const struct locate_target *t, const struct sip_msg *resp)
{
	const struct sip_hdr *h = sip_msg_hdr(resp, SIP_HDR_RETRY_AFTER);
	unsigned max = rc->p->cfg->retry_after_max;
	size_t n = 0;
	uint32_t secs;
	char as[64];

	if (!h || !max)
		return;
	while (n < h->value.l && h->value.p[n] >= '0' && h->value.p[n] <= '9')
		n++;
	if (!slice_to_u32(slice_make(h->value.p, n), 0xffffffffu, &secs) || secs == 0)
		return;
	if (secs > max)
		secs = max;
	pause_noted(rc, secs);
	if (!t)
		return;
	unavail_mark(rc->p->unavail, t->proto, &t->addr, loop_now(txn_loop(rc->stx)) + secs * 1000ull);
	log_info("proxy: next hop %s/%s answered 503 with Retry-After; no new request goes to it for %u s "
		 "(RFC 3261 21.5.4)", tp_proto_name(t->proto), tp_addr_str(&t->addr, as, sizeof(as)), secs);
}

/* Whether a located target is to be passed over: it asked for a pause (note_unavailable) that has not
 * ended. A request inside a dialog goes all the same: its dialog's peer is the only one to take it. */
static bool target_unavailable(struct rctx *rc, const struct locate_target *t)
{
	uint64_t left;
	unsigned secs;
	char as[64];

	if (rc->in_dialog || !rc->p->cfg->retry_after_max)
		return false;
	left = unavail_left(rc->p->unavail, t->proto, &t->addr, loop_now(txn_loop(rc->stx)));
	secs = (unsigned)((left + 999) / 1000);
	if (!secs)
		return false;
	pause_noted(rc, secs);
	log_info("proxy: passing over next hop %s/%s: it answered 503, Retry-After ends in %u s",
		 tp_proto_name(t->proto), tp_addr_str(&t->addr, as, sizeof(as)), secs);
	return true;
}

/* Sends the branch to its located targets from itgt on until one takes it. 0, or an errno once none is
 * left: the branch is then final (503, 8.1.3.1). A target that is UDP only because nothing named a
 * transport (RFC 3263 4.1) gets a request over UDP_MAX_REQUEST bytes over TCP first (18.1.1), and over
 * UDP when that TCP is refused; a transport DNS named (NAPTR, SRV) is kept as it is. */
static int branch_try(struct rctx *rc, struct branch *b)
{
	int err = ENOENT;

	while (b->itgt < b->ntgt) {
		const struct locate_target *t = &b->tgt[b->itgt];
		size_t udp_len;
		enum tp_proto proto = t->proto;
		char as[64];

		if (!b->size_udp && target_unavailable(rc, t)) {
			b->itgt++;
			continue;
		}
		if ((t->addr.u.sa.sa_family == AF_INET6) != b->req_v6)
			branch_refamily(rc, b, &t->addr);
		udp_len = b->req_proto == TP_UDP ? b->req_len : b->req_alt_len;

		if (proto == TP_UDP && t->proto_default && !b->size_udp && udp_len > UDP_MAX_REQUEST)
			proto = TP_TCP;
		if (proto != b->req_proto && b->req_alt) {
			char *r = b->req;
			size_t l = b->req_len;

			b->req = b->req_alt;
			b->req_len = b->req_alt_len;
			b->req_alt = r;
			b->req_alt_len = l;
			b->req_proto = proto;
		}
		if (proto == b->req_proto) {
			if (b->tries++)
				branch_renew(b->req, b->req_len);
			b->dst = t->addr;
			b->proto = proto;
			b->size_tcp = proto != t->proto;
			err = branch_send(rc, b);
			if (!err)
				return 0;
			log_info("proxy: located next hop %s/%s failed: %s", tp_proto_name(proto),
				 tp_addr_str(&t->addr, as, sizeof(as)), strerror(err));
		}
		if (proto != t->proto) {
			b->size_udp = true; /* TCP for the size refused at once: this target over UDP */
			continue;
		}
		b->itgt++;
		b->size_udp = false;
	}
	branch_final(rc, b, 503, NULL);
	return err;
}

/* RFC 3263 4.3: a located branch whose server failed (transport error, timeout, 503) before any
 * provisional answer goes on to the next target, as a new transaction; a target tried over TCP for the
 * size (18.1.1) whose connection was refused is tried again over UDP first. true when it did. */
static bool branch_failover(struct rctx *rc, struct branch *b, unsigned code, const struct sip_msg *resp)
{
	bool udp_after_all = b->size_tcp && code == 503 && !resp && !txn_client_conn_lost(b->ct);

	if (!b->tgt || b->provisional || b->cancel_wanted || rc->cancelled || rc->final_sent || rc->timer_c_fired ||
	    rc->ended)
		return false;
	if (!udp_after_all && (b->itgt + 1 >= b->ntgt || (code != 503 && !(code == 408 && !resp))))
		return false;
	if (udp_after_all)
		log_info("proxy: TCP to next hop %u of %u failed; the %zu-byte request goes over UDP (18.1.1)",
			 b->itgt + 1, b->ntgt, b->req_alt_len);
	else
		log_info("proxy: next hop %u of %u answered %u%s; trying the next (RFC 3263 4.3)", b->itgt + 1,
			 b->ntgt, code, resp ? "" : " (no answer or transport error)");
	txn_client_detach(b->ct);
	b->ct = mem_deref(b->ct);
	if (udp_after_all) {
		b->size_udp = true;
	} else {
		b->itgt++;
		b->size_udp = false;
	}
	if (branch_try(rc, b) && !pending_count(rc))
		start_next_group(rc);
	return true;
}

static void on_located(const struct locate_result *res, void *arg)
{
	struct branch *b = arg;
	struct rctx *rc = b->rc;
	struct txn *stx = mem_ref(rc->stx);

	b->loc = NULL;
	if (res->err) {
		const char *why;

		located_code(res->err, &why);
		log_info("proxy: next hop not located: %s", why ? why : strerror(res->err));
		branch_unlocated(rc, b, res->err);
	} else if ((b->tgt = malloc(res->n * sizeof(*b->tgt)))) {
		memcpy(b->tgt, res->t, res->n * sizeof(*b->tgt));
		b->ntgt = res->n;
		b->itgt = 0;
		branch_try(rc, b);
	} else {
		branch_final(rc, b, 500, NULL);
	}
	if (!pending_count(rc))
		start_next_group(rc);
	mem_deref(stx);
}

/* The branch starts by locating its next hop; it is pending (and CANCEL, Timer C reach it) meanwhile. */
static int branch_locate(struct rctx *rc, struct branch *b)
{
	struct sip_uri u;
	int err;

	b->started = true;
	err = sip_uri_parse(&u, slice_cstr(b->hop))
		      ? EINVAL
		      : locate_start(&b->loc, rc->p->dns, txn_loop(rc->stx), &u, rc->p->ipv6, on_located, b);
	if (err) {
		log_info("proxy: cannot locate %s: %s", b->hop, strerror(err));
		branch_unlocated(rc, b, err);
	}
	free(b->hop);
	b->hop = NULL;
	return err;
}

/* 9.1: CANCEL with the branch's Request-URI, top Via, Route, Call-ID, From, To and CSeq number. */
static void branch_cancel(struct branch *b)
{
	struct sip_msg *m;
	struct sip_error err;
	char *buf;
	struct sbuf sb;

	if (b->cancel_sent || b->done)
		return;
	if (b->loc) {
		/* still being located: nothing went out, so nothing to CANCEL; the branch ends here */
		locate_cancel(b->loc);
		b->loc = NULL;
		branch_final(b->rc, b, 487, NULL);
		return;
	}
	if (!b->provisional && !b->trying) {
		b->cancel_wanted = true;
		return;
	}
	m = malloc(sizeof(*m));
	buf = malloc(b->req_len + 256);
	if (!m || !buf || sip_msg_parse(m, b->req, b->req_len, &err)) {
		free(m);
		free(buf);
		return;
	}
	sbuf_init(&sb, buf, b->req_len + 256);
	if (sip_hop_request_write(&sb, m, "CANCEL", sip_msg_hdr(m, SIP_HDR_TO)->value) == 0 &&
	    txn_client_send(NULL, b->rc->p->txns, txn_loop(b->rc->stx), buf, sb.len, NULL, b->rc->worker, b->lsn,
					    b->proto, &b->dst, NULL, NULL) == 0)
		b->cancel_sent = true;
	free(buf);
	free(m);
}

static void timer_c_fire(struct rctx *rc);

static void timer_c_expired(struct tmr *t, void *arg)
{
	struct rctx *rc = arg;
	struct txn *stx = mem_ref(rc->stx);

	(void)t;
	timer_c_fire(rc);
	mem_deref(stx);
}

static void timer_c_fire(struct rctx *rc)
{
	if (rc->timer_c_fired) {
		/* the CANCELs went unanswered too: every branch still open counts as 408 (16.8) */
		for (unsigned i = 0; i < rc->nbr; i++)
			if (branch_pending(rc->br[i])) {
				txn_client_detach(rc->br[i]->ct);
				branch_final(rc, rc->br[i], 408, NULL);
			}
		rctx_finish(rc);
		return;
	}
	rc->timer_c_fired = true;
	if (rc->expired)
		log_info("proxy: the INVITE's Expires (%u s) passed; cancelling %u branch(es)", rc->expires_s,
			 pending_count(rc));
	else
		log_info("proxy: Timer C fired; cancelling %u branch(es)", pending_count(rc));
	for (unsigned i = 0; i < rc->nbr; i++) {
		struct branch *b = rc->br[i];

		if (!branch_pending(b))
			continue;
		if (b->loc) {
			locate_cancel(b->loc); /* DNS outlasted Timer C: as if the branch timed out */
			b->loc = NULL;
			branch_final(rc, b, 408, NULL);
			continue;
		}
		if (b->provisional || b->trying) {
			branch_cancel(b);
		} else {
			txn_client_abandon(b->ct); /* 16.8: no provisional: as if it answered 408 */
			branch_final(rc, b, 408, NULL);
		}
	}
	if (!pending_count(rc))
		rctx_finish(rc);
	else
		tmr_start(loop_timers(txn_loop(rc->stx)), &rc->timer_c, 64u * rc->p->cfg->t1, timer_c_expired, rc);
}

/* The INVITE's Expires passed with no final response: the branches are cancelled as Timer C would,
 * and the caller gets 408 whatever they answer (RFC 3261 21.4.9, 21.5.5; a 2xx still goes up). */
static void invite_expired(struct tmr *t, void *arg)
{
	struct rctx *rc = arg;
	struct txn *stx = mem_ref(rc->stx);

	(void)t;
	if (!rc->final_sent && !rc->cancelled && !rc->timer_c_fired && !rc->ended) {
		rc->expired = true;
		timer_c_fire(rc);
	}
	mem_deref(stx);
}

/* An INVITE's Expires (delta-seconds, 1 or more) bounds the search; a date (RFC 2543) or 0 does not. Not
 * a re-INVITE's: the 408 it would end in makes the caller end the whole dialog (RFC 3261 12.2.1.2). */
static void expiry_start(struct rctx *rc, const struct sip_msg *req)
{
	const struct sip_hdr *h = sip_msg_hdr(req, SIP_HDR_EXPIRES);
	uint32_t v;

	if (!rc->invite || rc->in_dialog || !h || !slice_to_u32(h->value, 0xffffffffu, &v) || v == 0)
		return;
	rc->expires_s = v > 86400u ? 86400u : v;
	tmr_start(loop_timers(txn_loop(rc->stx)), &rc->expiry, rc->expires_s * 1000u, invite_expired, rc);
}

/* All branches are done: the best response goes up (16.7 step 6), unless a 2xx already did. */
static void rctx_finish(struct rctx *rc)
{
	if (rc->final_sent && rc->invite && !pending_count(rc)) {
		/* answered 2xx (the server transaction Accepted, RFC 6026) and no branch left to CANCEL or to
		 * hear from: the context goes, the transaction stays until Timer L */
		txn_release_tu(rc->stx);
		return;
	}
	if (rc->final_sent || pending_count(rc))
		return;
	search_timers_stop(rc);
	rc->final_sent = true;
	if (rc->expired)
		rc->best_code = 408; /* whatever the cancelled branches said (487 mostly) */
	if (rc->call_id[0])
		calls_failed(rc->p->calls, slice_cstr(rc->call_id),
			     rc->best_code == 503 ? 500 : rc->best_code ? rc->best_code : 408);
	if (rc->expired) {
		txn_reply(rc->stx, NULL, 408, NULL, NULL);
		return;
	}
	if (rc->best && (rc->best_code == 401 || rc->best_code == 407) && rc->challenges) {
		/* 16.7 step 7: one 401/407 carrying every branch's challenge */
		struct sip_msg *m = malloc(sizeof(*m));
		struct sip_error err;
		enum sip_hdr_id id = rc->best_code == 401 ? SIP_HDR_WWW_AUTHENTICATE : SIP_HDR_PROXY_AUTHENTICATE;

		if (m && sip_msg_parse(m, rc->best, rc->best_len, &err) == 0) {
			/* the best's own challenges are in rc->challenges already, with the others */
			size_t len;
			char *merged = fwd_response_rewrite(m, false, id, rc->challenges, NULL, SLICE_NULL, &len);

			if (merged) {
				txn_respond(rc->stx, rc->best_code, merged, len);
				free(merged);
				free(m);
				return;
			}
		}
		free(m);
	}
	if (rc->best && rc->best_code != 503) {
		txn_respond(rc->stx, rc->best_code, rc->best, rc->best_len);
		return;
	}
	if (!rc->invite && rc->best_code == 408) {
		/* RFC 4320 4.1: no 408 to a non-INVITE. Every branch timed out (Timer F), and so has the
		 * client, whose own Timer F started before sipd's: the answer would reach nobody. A 408 from
		 * downstream is not relayed either */
		log_info("proxy: no branch answered the %s but with a timeout; its transaction ends without a "
			 "response (RFC 4320)", rc->ident_method);
		txn_server_give_up(rc->stx);
		return;
	}
	/* nothing usable came back: sipd answers itself (503 becomes 500, with the pause a next hop asked
	 * for: the seed's 500 row, Retry-After when temporary; silence becomes 408) */
	if (rc->best_code == 503) {
		char extra[40] = "";

		if (rc->retry_after)
			snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", rc->retry_after);
		txn_reply(rc->stx, NULL, 500, NULL, extra[0] ? extra : NULL);
		return;
	}
	txn_reply(rc->stx, NULL, rc->best_code ? rc->best_code : 408, rc->best_reason, NULL);
}

/* ---- response contexts ---- */

/* At the end of the server transaction, or (non-INVITE) just after its final response. */
static void rctx_free(void *data)
{
	struct rctx *rc = data;

	search_timers_stop(rc);

	for (unsigned i = 0; i < rc->nbr; i++) {
		txn_table_unhold(rc->p->txns, rc->br[i]->held);
		txn_client_detach(rc->br[i]->ct);
		mem_deref(rc->br[i]->ct);
		free(rc->br[i]->req);
		free(rc->br[i]->udp_req);
		locate_cancel(rc->br[i]->loc);
		free(rc->br[i]->hop);
		free(rc->br[i]->req_alt);
		free(rc->br[i]->path);
		free(rc->br[i]->tgt);
	}
	for (unsigned i = 0; i < MAX_BRANCHES && rc->br[i]; i++) /* a prefix (branch_slot) */
		free(rc->br[i]);
	free(rc->routes);
	free(rc->best);
	free(rc->challenges);
	free(rc);
}

static bool is_rctx(struct txn *tx)
{
	struct rctx *rc = txn_tu(tx);

	return rc && rc->kind == &rctx_kind;
}

void proxy_txn_end(struct proxy *p, struct txn *tx)
{
	struct rctx *rc;

	(void)p;
	if (!is_rctx(tx))
		return;
	rc = txn_tu(tx);
	rc->ended = true;
	search_timers_stop(rc);
	/* branches still open end on their own timers; their answers have nowhere to go now */
	for (unsigned i = 0; i < rc->nbr; i++) {
		txn_client_detach(rc->br[i]->ct);
		locate_cancel(rc->br[i]->loc);
		rc->br[i]->loc = NULL;
	}
}

/* On the INVITE's loop: 16.10, every pending branch cancelled; the 487s come back and the best of
 * them goes up. */
static void cancel_here(struct txn *inv)
{
	struct rctx *rc;

	if (!is_rctx(inv))
		return; /* the context ended while the job was on its way */
	rc = txn_tu(inv);
	rc->cancelled = true;
	cancel_pending(rc);
	if (!pending_count(rc))
		start_next_group(rc); /* only branches still being located were left: they ended at once */
}

static void cancel_posted(void *arg)
{
	struct txn *inv = arg;

	cancel_here(inv);
	mem_deref(inv);
}

bool proxy_cancel(struct proxy *p, struct txn *inv)
{
	(void)p;
	if (!is_rctx(inv))
		return false;
	if (loop_current() == txn_loop(inv)) {
		cancel_here(inv);
	} else if (loop_post(txn_loop(inv), cancel_posted, mem_ref(inv))) {
		/* a CANCEL from another source port (another worker's socket): the INVITE's loop does it */
		log_warn("proxy: cannot pass a CANCEL to the INVITE's worker; its branches end by Timer C");
		mem_deref(inv);
	}
	return true;
}

/* ---- the request ---- */

struct target {
	char uri[512];
	const struct sip_uri *parsed; /* uri parsed already (the request's own), or NULL */
	char path[1024];
	char received[128];
	char local[64]; /* the listener that reaches it over UDP ("udp:ADDR", target_local): its binding's, or
	                 * in a dialog the one sipd's Record-Route names on its side; '' for any */
	int q;
};

static void answer(struct proxy *p, const struct sip_msg *req, const struct txn_origin *o, unsigned code,
		   const char *reason, const char *extra)
{
	if (req->mid != SIP_METHOD_ACK)
		txn_reply_stateless(p->txns, req, o, code, reason, extra);
}

/* 16.3 step 5 and 16.3 step 3; *s for the forwarding. false when answered. */
static bool validate(struct proxy *p, const struct sip_msg *req, const struct txn_origin *o, struct seen *s)
{
	char *unsupported;
	bool nomem;

	if (req->max_forwards == 0) {
		answer(p, req, o, 483, NULL, NULL);
		return false;
	}
	if (looped(p, req, s)) {
		answer(p, req, o, 482, NULL, NULL);
		return false;
	}
	/* sipd knows no option tag a proxy would need: every one is named, however long the list */
	unsupported = sip_unsupported_line(req, SIP_HDR_PROXY_REQUIRE, NULL, &nomem);
	if (unsupported || nomem) {
		answer(p, req, o, unsupported ? 420 : 500, NULL, unsupported);
		scratch_give(unsupported);
		return false;
	}
	return true;
}

/* The request's Proxy-Authorization checked: true with *user when it proves a user of sipd's, else
 * answered (407 with a challenge, or 403) and false. */
static bool proxy_authenticate(struct proxy *p, const struct sip_msg *req, const struct txn_origin *o,
			       struct auth_user *user)
{
	const char *reason;
	char extra[1024];

	switch (auth_check(p->auth, req, SIP_HDR_PROXY_AUTHORIZATION, o->src_host, user, extra, sizeof(extra),
			   &reason)) {
	case AUTH_OK:
		return true;
	case AUTH_CHALLENGE:
		answer(p, req, o, 407, NULL, extra);
		return false;
	case AUTH_FORBIDDEN:
		answer(p, req, o, 403, reason, NULL);
		return false;
	case AUTH_BAD:
		answer(p, req, o, 400, reason, NULL);
		return false;
	}
	return false;
}

/* The realm whose credentials a request goes on without (struct fwd): sipd's, once it checked them. */
static struct slice consumed_realm(const struct proxy *p, bool authed)
{
	return authed ? slice_cstr(auth_realm(p->auth)) : SLICE_NULL;
}

/* The credentials are those of the From's user (its name or extension); else 403. false when answered. */
static bool from_is_user(struct proxy *p, const struct sip_msg *req, const struct txn_origin *o,
			 const struct sip_uri *from, const struct auth_user *user)
{
	char fuser[64];

	if (sip_uri_user(from, fuser, sizeof(fuser)) > 0 && auth_user_answers_to(p->auth, user, fuser))
		return true;
	log_info("proxy: %s authenticated but sends as another From: refused", user->name);
	answer(p, req, o, 403, "Credentials do not match the From", NULL);
	return false;
}

/* Requests out of a dialog claiming to come from sipd's domain (an INVITE, but a MESSAGE, SUBSCRIBE or
 * OPTIONS as well) must prove it (407) with the credentials of the From's user, so nobody calls or
 * writes as someone else. ACK and CANCEL cannot be challenged (22.1); they follow what was. false when
 * answered. */
static bool authorize_call(struct proxy *p, const struct sip_msg *req, const struct txn_origin *o, struct seen *s,
			   bool signed_dialog)
{
	struct auth_user user;

	/* a request of a dialog sipd Record-Routed passes; one with a To tag but without sipd's signed Route
	 * (a UA that ignored Record-Route, or someone posing as one) is held to what a new request is */
	if (!p->cfg->auth_calls || req->mid == SIP_METHOD_ACK || req->mid == SIP_METHOD_CANCEL || signed_dialog)
		return true;
	if (req->from_uri_err || !registrar_is_local(p->reg, req->from_uri.host))
		return true;
	if (!(s->authed = proxy_authenticate(p, req, o, &user)))
		return false;
	return from_is_user(p, req, o, &req->from_uri, &user);
}

static bool outbound_users(const struct proxy *p)
{
	return !strcasecmp(p->cfg->outbound, "users");
}

/* A request out of a dialog for another domain is relayed for sipd's own users only: the From is in
 * sipd's domains, the request proves it (407), and the credentials are those of the From's user (its
 * name or extension), so nobody relays as someone else. false when answered. */
static bool authorize_outbound(struct proxy *p, const struct sip_msg *req, const struct txn_origin *o,
			       struct seen *s)
{
	struct auth_user user;

	if (req->from_uri_err || req->from_uri.scheme == SIP_SCHEME_TEL ||
	    !registrar_is_local(p->reg, req->from_uri.host)) {
		answer(p, req, o, 403, "Relaying denied", NULL);
		return false;
	}
	if (!(s->authed = proxy_authenticate(p, req, o, &user)))
		return false;
	return from_is_user(p, req, o, &req->from_uri, &user);
}

/* A Contact made a target's Request-URI (16.6 step 2): "If the URI contains any parameters not allowed
 * in a Request-URI, they MUST be removed": a method parameter and headers (19.1.1, table 1). */
static void target_uri_set(char *dst, size_t n, struct slice contact)
{
	struct sip_uri u;
	struct sbuf b;

	if (sip_uri_parse(&u, contact) == 0 && (u.headers.l || u.method.l)) {
		sbuf_init(&b, dst, n - 1);
		sip_uri_write_as_ruri(&b, &u);
		if (!b.overflow) {
			dst[b.len] = '\0';
			return;
		}
	}
	slice_copy(dst, n, contact);
}

/* Whether the user part of the Request-URI names a user of sipd's (by name or extension): *u is that
 * user, and *alias the other of its two names (the one not called; empty when it has no extension). */
static bool callee_known(struct proxy *p, const struct sip_uri *ruri, struct auth_user *u, const char **alias)
{
	char user[64];

	if (sip_uri_user(ruri, user, sizeof(user)) <= 0 || auth_callee_find(p->auth, user, u))
		return false;
	*alias = strcmp(user, u->name) ? u->name : u->extension;
	return true;
}

/* The live bindings of the AOR of ruri, or of ruri with the user part user (when not NULL), into b. */
static size_t lookup_aor(struct proxy *p, const struct sip_uri *ruri, const char *user, struct store_binding *b,
			 size_t max)
{
	struct sip_uri u = *ruri;
	char aor[256];
	size_t n;

	if (user)
		u.user = slice_cstr(user);
	if (!max || !registrar_aor_key(p->reg, &u, aor, sizeof(aor)))
		return 0;
	n = loc_lookup(registrar_location(p->reg), aor, b, max, (int64_t)time(NULL));
	return n > max ? max : n;
}

/* Appends the bindings of the user's other name (a phone may register as bob or as his extension,
 * 1002, and is called as either), but for a contact already there. Returns the new count. */
static size_t lookup_alias(struct proxy *p, const struct sip_uri *ruri, const char *alias, struct store_binding *b,
			   size_t n, size_t max)
{
	size_t more = alias[0] ? lookup_aor(p, ruri, alias, b + n, max - n) : 0, k = n;

	for (size_t i = n; i < n + more; i++) {
		bool dup = false;

		for (size_t j = 0; j < n && !dup; j++)
			dup = !strcmp(b[i].contact, b[j].contact);
		if (!dup && k != i)
			b[k] = b[i];
		k += !dup;
	}
	return k;
}

/* The target set of a user of sipd's domains (16.5): the AOR's bindings, best q first. 0 targets with
 * *known set tells 480 from 404. Where REGISTER needs credentials a binding is a user's: once sipctl
 * deletes or disables that user, its phones are no target any more (404, 480), though their bindings
 * run out only at their expiry. */
static size_t lookup_targets(struct proxy *p, const struct sip_uri *ruri, struct target *t, size_t max,
			     bool *known)
{
	struct store_binding *b = scratch_take(max * sizeof(*b)); /* ~3 kB each: filled, not cleared */
	struct auth_user u;
	const char *alias;
	size_t n = 0;

	*known = false;
	if (!b)
		return 0;
	n = lookup_aor(p, ruri, NULL, b, max);
	if (n && !p->cfg->register_auth) {
		*known = true; /* anyone may bind any address of record */
	} else if ((*known = callee_known(p, ruri, &u, &alias))) {
		n = u.disabled ? 0 : lookup_alias(p, ruri, alias, b, n, max);
	} else {
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		target_uri_set(t[i].uri, sizeof(t[i].uri), slice_cstr(b[i].contact));
		slice_copy(t[i].path, sizeof(t[i].path), slice_cstr(b[i].path));
		slice_copy(t[i].received, sizeof(t[i].received), slice_cstr(b[i].received));
		slice_copy(t[i].local, sizeof(t[i].local), slice_cstr(b[i].local));
		t[i].parsed = NULL;
		t[i].q = b[i].q < 0 ? 1000 : b[i].q;
	}
	scratch_give(b);
	return n;
}

/* Where a forwarded request goes: the binding's Path, else the first Route of the set, else the
 * binding's TCP connection while it stands, else its source (NAT), else the target URI. EAGAIN: that
 * URI (in *name) names a host for DNS.
 * *may_tcp: a request too large for UDP may go over TCP there (18.1.1): the hop is a URI that names no
 * transport. Never a binding's NAT source address (RFC 3581: only the phone's UDP flow reaches it), and
 * transport=udp is a choice made on purpose. *flow: the hop is the binding's connection. *nat: the hop
 * is the binding's NAT source address. */
static int next_hop(const struct fwd_routes *rs, const struct target *t, struct tp_addr *dst, enum tp_proto *proto,
		    struct slice *name, bool *may_tcp, bool *flow, bool *nat)
{
	struct sip_addr a;
	struct sip_uri u;

	*may_tcp = *flow = *nat = false;
	if (t->path[0]) {
		struct slice rest = slice_cstr(t->path), first;

		if (sip_list_next(&rest, &first) && sip_addr_parse(&a, first) == 0 && sip_uri_parse(&u, a.uri) == 0)
			goto uri;
	}
	if (rs->n) {
		if (sip_addr_parse(&a, rs->r[0]) || sip_uri_parse(&u, a.uri))
			return EINVAL;
		goto uri;
	}
	if (t->parsed)
		u = *t->parsed;
	else if (sip_uri_parse(&u, slice_cstr(t->uri)))
		return EINVAL;
	/* A binding registered over TCP is reached over that connection while it stands (the flow of RFC
	 * 5626 5.3, and what TCP phones expect: few listen for connections of their own, and a NAT in
	 * front lets none in); once it is gone, as below. */
	if (strncmp(t->received, "tcp:", 4) == 0 && received_hop(t->received, dst, proto) == 0 &&
	    tp_conn_standing(NULL, dst)) {
		*flow = true;
		return 0;
	}
	/* NAT (RFC 3581): a Contact naming another host than the one its REGISTER came from is behind a
	 * NAT; the source address reaches it. A Contact at the source host is reached as it says. */
	if (t->received[0] && !received_host_is(t->received, u.host) && received_hop(t->received, dst, proto) == 0) {
		*nat = true;
		return 0;
	}
	a.uri = slice_cstr(t->uri);
uri:
	*name = a.uri;
	*may_tcp = !u.transport.l;
	return uri_hop(&u, dst, proto);
}

/* ---- requests too large for UDP (18.1.1) ---- */

/* 18.1.1: a request over UDP_MAX_REQUEST bytes to a hop that allows it is built again for TCP (its Via
 * and Record-Route say so, with a branch of its own); the UDP build stays, should TCP not connect. */
static void size_rule(const struct sip_msg *req, struct fwd *f, struct branch *b, bool may_tcp, uint32_t lh)
{
	char *buf;
	size_t len;

	if (b->proto != TP_UDP || b->req_len <= UDP_MAX_REQUEST || !may_tcp)
		return;
	f->proto = TP_TCP;
	loop_branch(f->branch, lh);
	if (fwd_request_build(req, f, &buf, &len))
		return; /* out of memory: UDP it is */
	b->udp_req = b->req;
	b->udp_req_len = b->req_len;
	b->req = buf;
	b->req_len = len;
	b->proto = TP_TCP;
}

/* ---- recursion on a 3xx (16.7 step 4, recurse_3xx) ---- */

/* The Request-URI of a request sipd built. */
static struct slice built_ruri(const char *req, size_t len)
{
	const char *sp1 = memchr(req, ' ', len), *sp2;

	if (!sp1 || !(sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - req))))
		return SLICE_NULL;
	return slice_make(sp1 + 1, (size_t)(sp2 - sp1 - 1));
}

/* Whether u was a target already (a branch's Request-URI), or is the request's own Request-URI (a
 * redirect back to it would only come back here as a loop). */
static bool target_tried(const struct rctx *rc, const struct sip_msg *req, const struct sip_uri *u)
{
	struct sip_uri v;

	if (sip_uri_parse(&v, req->ruri) == 0 && sip_uri_equal(&v, u))
		return true;
	for (unsigned i = 0; i < rc->nbr; i++)
		if (sip_uri_parse(&v, built_ruri(rc->br[i]->req, rc->br[i]->req_len)) == 0 && sip_uri_equal(&v, u))
			return true;
	return false;
}

/* The listener that reaches t over UDP toward dst: t->local ("udp:ADDR") while sipd still listens there
 * and it is of dst's family, its host:port written into buf (our Via and Record-Route name it, and the
 * request leaves from it: built_lsn). NULL when none: where the request arrived, or dst's family's. */
static const char *target_local(const struct target *t, enum tp_proto proto, const struct tp_addr *dst,
				char buf[96])
{
	struct tp_addr a;

	if (proto != TP_UDP || strncmp(t->local, "udp:", 4) || tp_addr_parse(&a, t->local + 4, 5060) ||
	    a.u.sa.sa_family != dst->u.sa.sa_family || tp_lsn_of(NULL, TP_UDP, &a) == TP_LSN_ANY)
		return NULL;
	snprintf(buf, 96, "%s", local_of(&a)->hostport);
	return buf;
}

/* b toward t: its next hop, and its request built from req for it (for both transports when the hop is
 * a host name that DNS will locate as the branch starts; dns_ok allows that). Our Via and Record-Route
 * name f->local, or sipd's address of the next hop's family when that is another (in_local then keeps
 * the caller's side); a host name's builds name f->local, until DNS says otherwise (branch_refamily).
 * 0; EAGAIN: a host name and no DNS; EINVAL: no usable next hop; ENOMEM, ENOSPC: b is left empty. */
static int branch_prepare(struct proxy *p, struct branch *b, const struct sip_msg *req, struct fwd *f,
			  const struct target *t, uint32_t lh, bool dns_ok)
{
	struct slice name = SLICE_NULL;
	bool may_tcp, flow, nat;
	int err = next_hop(f->routes, t, &b->dst, &b->proto, &name, &may_tcp, &flow, &nat);
	const char *local = f->local, *in_local = f->in_local;
	char token[256], toward[96];
	struct sbuf tb;

	if (err == EAGAIN && dns_ok && p->dns) {
		/* built for both transports now: the request will be gone by the time DNS answers */
		err = (b->hop = malloc(name.l + 1)) ? 0 : ENOMEM;
		if (!err)
			slice_copy(b->hop, name.l + 1, name);
		if (!err && t->path[0] && !(b->path = strdup(t->path)))
			err = ENOMEM;
		b->proto = b->req_proto = TP_UDP;
		b->req_v6 = local[0] == '[';
	}
	b->nat = !err && nat && b->proto == TP_UDP;
	if (!err) {
		f->proto = b->proto;
		if (!b->hop && !in_local) {
			/* a phone registered through another listener than the request came to is reached from
			 * that one (its NAT lets in nothing else): a Record-Route for each side, as for a change
			 * of transport */
			const char *via = target_local(t, b->proto, &b->dst, toward);

			f->local = via ? via : local_toward(b->proto, &b->dst, local, toward);
			f->in_local = local;
		}
		/* the dialog's requests for the phone come back through our Record-Route: it names the
		 * connection they must take */
		if (flow) {
			sbuf_init(&tb, token, sizeof(token));
			flow_token_write(&tb, "flow", &b->dst);
			f->flow = slice_make(token, tb.overflow ? 0 : tb.len);
		}
		loop_branch(f->branch, lh);
		err = fwd_request_build(req, f, &b->req, &b->req_len);
		f->flow = SLICE_NULL;
		if (!err && b->hop) {
			f->proto = TP_TCP;
			err = fwd_request_build(req, f, &b->req_alt, &b->req_alt_len);
		}
	}
	if (!err && !b->hop)
		size_rule(req, f, b, may_tcp, lh); /* a located branch: in branch_try, per target */
	f->local = local;
	f->in_local = in_local;
	/* the copies count with the transactions' bytes ([limits] max_transactions): a request forked to
	 * many phones is held once per branch, or twice (one per transport), besides its client transaction */
	if (!err && !(err = txn_table_hold(p->txns, b->req_len + b->req_alt_len + b->udp_req_len)))
		b->held = b->req_len + b->req_alt_len + b->udp_req_len;
	if (err) {
		free(b->req);
		free(b->req_alt);
		free(b->udp_req);
		free(b->hop);
		free(b->path);
		memset(b, 0, sizeof(*b));
	}
	return err;
}

/* The request the server transaction kept, parsed into a message of its own (free it); NULL when that
 * cannot be (out of memory). */
static struct sip_msg *kept_request(const struct rctx *rc)
{
	struct sip_msg *req = malloc(sizeof(*req));
	struct sip_error perr;
	const char *kept;
	size_t kept_len;

	if (req && (txn_kept(rc->stx, &kept, &kept_len) || sip_msg_parse(req, kept, kept_len, &perr))) {
		free(req);
		req = NULL;
	}
	return req;
}

/* Branch b toward t, built from req (the request the server transaction kept) as forward_stateful
 * built the first ones, our Via and top Record-Route naming local: rc->local, or sipd's address of
 * another family (branch_refamily). dns_ok as for branch_prepare. 0 or an errno (no usable next hop,
 * out of memory). */
static int branch_build_at(struct rctx *rc, struct branch *b, const struct sip_msg *req, const struct target *t,
			   const char *local, bool dns_ok)
{
	struct fwd_routes rs;
	struct slice rest = slice_cstr(rc->routes ? rc->routes : ""), r;
	char pin[RRSIG_PIN];
	struct fwd f = {
		.target = slice_cstr(t->uri),
		.path = t->path,
		.src_host = slice_cstr(rc->src_host),
		.src_port = rc->src_port,
		.record_route = rc->record_route,
		.rr_key = rc->p->rr_key,
		.rr_pin = rc->record_route ? callee_pin(rc->p, req, pin) : SLICE_NULL,
		.consume_realm = consumed_realm(rc->p, rc->consume_creds),
		.in_proto = rc->in_proto,
		.contact_nat = slice_cstr(rc->contact_nat),
		.local = local,
		.in_local = local == rc->local ? NULL : rc->local,
	};

	rs.n = 0;
	while (rs.n < FWD_MAX_ROUTES && sip_list_next(&rest, &r))
		rs.r[rs.n++] = r;
	f.routes = &rs;
	return branch_prepare(rc->p, b, req, &f, t, rc->lh, dns_ok);
}

static int branch_build(struct rctx *rc, struct branch *b, const struct sip_msg *req, const struct target *t)
{
	return branch_build_at(rc, b, req, t, rc->local, rc->p->cfg->resolve_next_hops);
}

/* A located target of the other address family than b's requests name sipd by: both built again from
 * the request the server transaction kept, our Via and top Record-Route naming sipd's address of dst's
 * family, the bottom one still where the request arrived. Left as they were when that cannot be (no
 * listener of that family, out of memory): the send or the far end will tell. */
static void branch_refamily(struct rctx *rc, struct branch *b, const struct tp_addr *dst)
{
	struct slice ruri = built_ruri(b->req, b->req_len);
	struct target *t = malloc(sizeof(*t));
	struct sip_msg *req = NULL;
	struct branch nb = { 0 };
	const char *local;
	char toward[96];

	if (!t || !rc->local[0] || ruri.l >= sizeof(t->uri) ||
	    (local = local_toward(b->req_proto, dst, rc->local, toward)) == rc->local || !(req = kept_request(rc)))
		goto out;
	memset(t, 0, sizeof(*t));
	slice_copy(t->uri, sizeof(t->uri), ruri);
	if (b->path)
		snprintf(t->path, sizeof(t->path), "%s", b->path);
	/* dns_ok: this branch's hop is a host name, which DNS was allowed to locate */
	if (branch_build_at(rc, &nb, req, t, local, true) || !nb.hop)
		goto out;
	free(b->req);
	free(b->req_alt);
	b->req = nb.req;
	b->req_len = nb.req_len;
	b->req_alt = nb.req_alt;
	b->req_alt_len = nb.req_alt_len;
	b->req_proto = nb.req_proto;
	b->req_v6 = nb.req_v6;
	nb.req = nb.req_alt = NULL;
out:
	free(nb.req);
	free(nb.req_alt);
	free(nb.hop);
	free(nb.path);
	free(req);
	free(t);
}

/* The Contacts of a branch's 3xx as new branches: each URI once (none tried already), up to
 * MAX_BRANCHES in all; those of the highest q leave at once, beside branches still ringing, the others
 * by q as branches end (start_next_group). *left gets the Contact lines of those not taken (a scheme or
 * host sipd cannot reach, over the cap). Returns how many were added. */
static unsigned recurse_contacts(struct rctx *rc, const struct sip_msg *resp, struct sbuf *left)
{
	struct sip_msg *req = kept_request(rc);
	struct target *t = malloc(sizeof(*t));
	struct sip_list_iter it;
	struct slice el;
	unsigned first = rc->nbr, added = 0;
	int qmax = -1;

	if (!req || !t)
		goto out;
	sip_list_begin(&it, resp, SIP_HDR_CONTACT);
	while (sip_list_iter_next(&it, &el)) {
		struct sip_addr a;
		struct sip_uri u;
		struct branch *b = rc->nbr < MAX_BRANCHES ? branch_slot(rc, rc->nbr) : NULL;
		bool usable = false;
		long expires;
		int q;

		if (sip_contact_parse(&a, &expires, &q, el) || a.star || sip_uri_parse(&u, a.uri))
			continue;
		if (target_tried(rc, req, &u))
			continue;
		if (u.scheme == SIP_SCHEME_SIP && b && a.uri.l < sizeof(t->uri)) {
			memset(t, 0, sizeof(*t));
			target_uri_set(t->uri, sizeof(t->uri), a.uri);
			usable = branch_build(rc, b, req, t) == 0;
		}
		if (!usable) {
			sbuf_adds(left, "Contact: ");
			sbuf_addsl(left, el);
			sbuf_addlit(left, "\r\n");
			continue;
		}
		b->rc = rc;
		b->q = q < 0 ? 1000 : q;
		if (b->q > qmax)
			qmax = b->q;
		rc->nbr++;
		added++;
	}
	if (added)
		log_info("proxy: recursing on %u Contact(s) of a %u", added, resp->status);
	for (unsigned i = first; i < rc->nbr; i++)
		if (rc->br[i]->q == qmax)
			branch_start(rc, rc->br[i]);
out:
	free(req);
	free(t);
	return added;
}

/* 16.7 step 4: true when the 3xx's Contacts became branches; the 3xx then joins the answers only with
 * the Contacts not taken, and not at all when every one was. */
static bool branch_3xx(struct rctx *rc, unsigned code, const struct sip_msg *resp)
{
	char left[2048];
	struct sbuf lb;
	size_t len;
	char *out;

	if (rc->final_sent || rc->cancelled || rc->timer_c_fired || rc->ended || rc->best_code >= 600)
		return false;
	sbuf_init(&lb, left, sizeof(left) - 1);
	if (!recurse_contacts(rc, resp, &lb))
		return false;
	if (!lb.len || lb.overflow || !better(code, rc->best_code))
		return true;
	left[lb.len] = '\0';
	out = fwd_response_rewrite(resp, true, SIP_HDR_CONTACT, left, NULL, SLICE_NULL, &len);
	if (out) {
		free(rc->best);
		rc->best = out;
		rc->best_len = len;
		rc->best_code = code;
	}
	return true;
}

/* What branches built later need of the request's forwarding (recurse_3xx). */
static void rctx_keep_fwd(struct rctx *rc, const char *local, const struct txn_origin *o, uint32_t lh,
			  const struct fwd_routes *rs, bool record_route)
{
	size_t n = 0;

	snprintf(rc->local, sizeof(rc->local), "%s", local);
	snprintf(rc->src_host, sizeof(rc->src_host), "%s", o->src_host);
	rc->src_port = o->src_port;
	rc->lh = lh;
	rc->record_route = record_route;
	rc->in_proto = o->proto;
	for (unsigned i = 0; i < rs->n; i++)
		n += rs->r[i].l + 2;
	if (!n || !(rc->routes = malloc(n + 1)))
		return;
	n = 0;
	for (unsigned i = 0; i < rs->n; i++)
		n += (size_t)snprintf(rc->routes + n, rs->r[i].l + 3, "%s%.*s", i ? ", " : "", SLICE_ARG(rs->r[i]));
}

static bool dialog_creating(enum sip_method m)
{
	return m == SIP_METHOD_INVITE || m == SIP_METHOD_SUBSCRIBE || m == SIP_METHOD_REFER;
}

/* Whether sipd (when configured to) stays on the path of req's dialog: a request that starts one, and
 * every NOTIFY, which creates the subscriber's dialog when it comes before the 200 or from another fork
 * (RFC 6665 4.3: a proxy that Record-Routed the SUBSCRIBE Record-Routes its NOTIFYs) */
static bool record_routed(const struct proxy *p, const struct sip_msg *req)
{
	return p->cfg->record_route &&
	       ((dialog_creating(req->mid) && !req->to.tag.p) || req->mid == SIP_METHOD_NOTIFY);
}

/* An ACK waiting for its next hop to be located: built for each transport, sent to the first target. */
struct located_ack {
	struct proxy *p;
	struct tp_worker *worker;
	struct locate *loc;
	char *buf[2];          /* by enum tp_proto */
	size_t len[2];
	uint32_t pick;         /* a hash of its Call-ID: which of the best SRV targets */
	struct located_ack *next, *prev; /* the proxy's list, so that a stop can drop them */
};

static void located_ack_free(struct located_ack *a)
{
	struct proxy *p = a->p;

	pthread_mutex_lock(&p->acks_lock);
	if (a->prev)
		a->prev->next = a->next;
	else
		p->acks = a->next;
	if (a->next)
		a->next->prev = a->prev;
	pthread_mutex_unlock(&p->acks_lock);
	free(a->buf[0]);
	free(a->buf[1]);
	free(a);
}

/* 16.11: sends a request that has no transaction (an ACK for a 2xx) to dst over proto; a UDP one over
 * UDP_MAX_REQUEST bytes goes over TCP when may_tcp (18.1.1, tcp: the TCP build). Only a connection
 * refused at once sends it over UDP after all: there is no transaction to fall back with later (the
 * UAS retransmits its 2xx, the UAC its ACK). */
static void send_stateless(struct tp_worker *w, enum tp_proto proto, const struct tp_addr *dst, const char *udp,
			   size_t udp_len, bool may_tcp, const char *tcp, size_t tcp_len)
{
	if (proto == TP_TCP || (may_tcp && udp_len > UDP_MAX_REQUEST && tcp)) {
		if (tp_send(w, TP_TCP, NULL, dst, tcp, tcp_len) == 0 || proto == TP_TCP)
			return;
	}
	tp_send_from(w, built_lsn(udp, udp_len), TP_UDP, NULL, dst, udp, udp_len);
}

/* 16.11: "a retransmitted request MUST be forwarded to the same destination each time", yet SRV's weights
 * order a priority's targets at random for each search (RFC 2782): among the targets of the best
 * priority, the ACK's Call-ID chooses, the same for each retransmission and for the dialog's every ACK. */
static const struct locate_target *ack_target(const struct locate_result *res, uint32_t pick)
{
	const struct locate_target *best[LOCATE_MAX];
	unsigned n = 0;

	for (unsigned i = 0; i < res->n; i++) {
		if (res->t[i].prio != res->t[0].prio)
			continue;
		unsigned k = n++;

		/* kept in address order: the choice must not depend on the order the weights drew */
		while (k && memcmp(&best[k - 1]->addr, &res->t[i].addr, sizeof(res->t[i].addr)) > 0) {
			best[k] = best[k - 1];
			k--;
		}
		best[k] = &res->t[i];
	}
	return best[pick % n];
}

static void on_ack_located(const struct locate_result *res, void *arg)
{
	struct located_ack *a = arg;
	const struct locate_target *t = res->err || !res->n ? &res->t[0] : ack_target(res, a->pick);

	if (!res->err && a->buf[TP_UDP] && a->buf[TP_TCP])
		send_stateless(a->worker, t->proto, &t->addr, a->buf[TP_UDP], a->len[TP_UDP], t->proto_default,
			       a->buf[TP_TCP], a->len[TP_TCP]);
	else
		log_info("proxy: the ACK's next hop was not located: %s", strerror(res->err ? res->err : EPROTO));
	located_ack_free(a);
}

/* 16.11 for a stateless ACK whose next hop is a host name (RFC 3263 4.4: the first target only). */
static void forward_stateless_located(struct proxy *p, const struct tp_msg *tm, const struct sip_msg *req,
				      struct fwd *f, struct slice name)
{
	struct located_ack *a = calloc(1, sizeof(*a));
	struct sip_uri u;
	char hop[512];

	if (!a || name.l >= sizeof(hop))
		goto fail;
	a->p = p;
	a->worker = tm->worker;
	a->pick = slice_hash(req->call_id, 0);
	f->proto = TP_UDP;
	if (fwd_request_build(req, f, &a->buf[TP_UDP], &a->len[TP_UDP]))
		goto fail;
	f->proto = TP_TCP;
	if (fwd_request_build(req, f, &a->buf[TP_TCP], &a->len[TP_TCP]))
		goto fail;
	slice_copy(hop, sizeof(hop), name);
	pthread_mutex_lock(&p->acks_lock);
	a->next = p->acks;
	if (p->acks)
		p->acks->prev = a;
	p->acks = a;
	pthread_mutex_unlock(&p->acks_lock);
	if (sip_uri_parse(&u, slice_cstr(hop)) ||
	    locate_start(&a->loc, p->dns, loop_current(), &u, p->ipv6, on_ack_located, a)) {
		log_info("proxy: cannot locate the ACK's next hop %s", hop);
		located_ack_free(a);
	}
	return;
fail:
	if (a) {
		free(a->buf[0]);
		free(a->buf[1]);
	}
	free(a);
}

/* ACK for a 2xx and anything else forwarded without a transaction (16.11). */
static void forward_stateless(struct proxy *p, const struct tp_msg *tm, const struct sip_msg *req,
			      const struct txn_origin *o, const struct target *t, const struct fwd_routes *rs,
			      const struct seen *s, bool dns_ok)
{
	struct fwd f = { .target = slice_cstr(t->uri), .path = t->path, .routes = rs,
			 .src_host = slice_cstr(o->src_host), .src_port = o->src_port,
			 .consume_realm = consumed_realm(p, s->authed) };
	char *buf[2] = { NULL, NULL }, toward[96];
	const char *via;
	struct slice name = SLICE_NULL;
	struct tp_addr dst;
	size_t len[2] = { 0, 0 };
	bool may_tcp, flow, nat;
	int err;

	err = next_hop(rs, t, &dst, &f.proto, &name, &may_tcp, &flow, &nat);
	if (err && !(err == EAGAIN && dns_ok && p->dns))
		return;
	f.local = local_of(&tm->local)->hostport;
	stateless_branch(f.branch, req, s->lh);
	if (err) {
		/* no response comes back to an ACK's Via: the arrival address serves whatever DNS finds */
		forward_stateless_located(p, tm, req, &f, name);
		return;
	}
	via = target_local(t, f.proto, &dst, toward);
	f.local = via ? via : local_toward(f.proto, &dst, f.local, toward);
	if (fwd_request_build(req, &f, &buf[f.proto], &len[f.proto]))
		return;
	if (f.proto == TP_UDP && may_tcp && len[TP_UDP] > UDP_MAX_REQUEST) {
		f.proto = TP_TCP;
		fwd_request_build(req, &f, &buf[TP_TCP], &len[TP_TCP]); /* on failure, UDP it is */
		f.proto = TP_UDP;
	}
	send_stateless(tm->worker, f.proto, &dst, buf[TP_UDP], len[TP_UDP], may_tcp, buf[TP_TCP], len[TP_TCP]);
	free(buf[TP_UDP]);
	free(buf[TP_TCP]);
}

static void forward_stateful(struct proxy *p, const struct tp_msg *tm, const struct sip_msg *req,
			     const struct txn_origin *o, struct target *t, size_t n, const struct fwd_routes *rs,
			     const struct seen *s, bool dns_ok)
{
	struct rctx *rc = calloc(1, sizeof(*rc));
	struct txn *stx = NULL;
	const char *local;
	char extra[64], pin[RRSIG_PIN];
	bool full = false; /* a branch refused for the bytes transactions hold */
	struct slice rr_pin = SLICE_NULL;
	int err;

	if (!rc) {
		answer(p, req, o, 500, "Out of memory", NULL);
		return;
	}
	if (req->cseq.method.l > TXN_METHOD_MAX) {
		/* a method no client transaction could follow: refused here rather than failing each branch */
		answer(p, req, o, 501, "Method name too long", NULL);
		free(rc);
		return;
	}
	err = txn_server_new(&stx, p->txns, loop_current(), req, tm->proto != TP_UDP);
	if (!err && (err = txn_keep(stx, o, tm->buf, tm->len)))
		stx = mem_deref(stx);
	if (err) {
		snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", p->cfg->retry_after);
		answer(p, req, o, err == EAGAIN ? 503 : 500, NULL, extra);
		free(rc);
		return;
	}
	rc->kind = &rctx_kind;
	rc->p = p;
	rc->stx = stx; /* the reference txn_server_new gave the caller */
	rc->worker = tm->worker;
	rc->invite = req->mid == SIP_METHOD_INVITE;
	rc->consume_creds = s->authed;
	rc->in_dialog = req->to.tag.p != NULL;
	/* a sender behind a NAT, heard straight (its Via the only one): the dialog's requests for it go to
	 * its NAT's address, which the ;nat= token in its Contact carries back to sipd */
	rc->remote_target = names_remote_target(req->mid);
	if (rc->remote_target && s->nvia == 1 && req->count[SIP_HDR_CONTACT] == 1) {
		struct slice nat = contact_nat_token(first_contact(req), tm->proto, &tm->src, rc->contact_nat);

		rc->contact_nat[nat.l] = '\0';
	}
	if (req->cseq.method.l < sizeof(rc->ident_method)) {
		memcpy(rc->ident_method, req->cseq.method.p, req->cseq.method.l);
		rc->ident = (struct txn_client_ident){ .method = slice_make(rc->ident_method, req->cseq.method.l),
						       .cseq = req->cseq.num, .id_hash = txn_client_id_hash(req),
						       .nvia = s->nvia + 1 };
	}
	txn_set_tu(stx, rc, rctx_free);
	/* its final may be minutes away (Timer C): the caller's TCP connection stays open for it, idle or not,
	 * as 18.2.2 has it go there; a short tcp_idle_timeout would have closed it under a ringing call */
	if (o->conn)
		tp_conn_keep(o->conn, 0, (rc->invite ? p->cfg->timer_c : 0) + 32);
	if (record_routed(p, req))
		rr_pin = callee_pin(p, req, pin);
	if (rc->invite && !req->to.tag.p && req->call_id.l < sizeof(rc->call_id)) {
		slice_copy(rc->call_id, sizeof(rc->call_id), req->call_id);
		calls_start(p->calls, req->call_id, req->from.uri, req->to.uri);
		calls_signed_toward(p->calls, req->call_id, 0, rr_pin); /* where the callee's requests go */
	}
	if (req->mid == SIP_METHOD_BYE)
		calls_ended(p->calls, req->call_id);
	if (rc->invite)
		txn_reply(stx, req, 100, NULL, NULL); /* 16.2 / 17.2.1: a stateful proxy answers 100 at once */
	local = local_of(&tm->local)->hostport;
	if (p->cfg->recurse_3xx)
		rctx_keep_fwd(rc, local, o, s->lh, rs, record_routed(p, req));
	for (size_t i = 0; i < n && rc->nbr < MAX_BRANCHES; i++) {
		struct branch *b = branch_slot(rc, rc->nbr);
		struct fwd f;

		if (!b) {
			log_err("proxy: out of memory for a branch to %s", t[i].uri);
			continue;
		}
		f = (struct fwd){
			.target = slice_cstr(t[i].uri),
			.path = t[i].path,
			.routes = rs,
			.src_host = slice_cstr(o->src_host),
			.src_port = o->src_port,
			.record_route = record_routed(p, req),
			.rr_key = p->rr_key,
			.rr_pin = rr_pin,
			.consume_realm = consumed_realm(p, s->authed),
			.in_proto = tm->proto,
			.contact_nat = slice_cstr(rc->contact_nat),
			.local = local,
		};

		err = branch_prepare(p, b, req, &f, &t[i], s->lh, dns_ok);
		if (!err && b->hop && !rc->local[0]) /* DNS may answer another address family (branch_refamily) */
			rctx_keep_fwd(rc, local, o, s->lh, rs, f.record_route);
		full |= err == ENOBUFS;
		if (err == EINVAL || err == EAGAIN || err == EPROTONOSUPPORT)
			log_info("proxy: no usable next hop for %s%s", t[i].uri,
				 err == EAGAIN	       ? " (a host name, and [proxy] resolve_next_hops is off)"
				 : err == EPROTONOSUPPORT ? " (sips: or a transport sipd lacks: TLS, SCTP)"
							  : "");
		if (err)
			continue;
		b->rc = rc;
		b->q = t[i].q;
		rc->nbr++;
	}
	if (!rc->nbr && full) {
		snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", p->cfg->retry_after);
		txn_reply(stx, req, 503, "Transactions hold too many bytes", extra);
		mem_deref(stx);
		return;
	}
	if (!rc->nbr) {
		txn_reply(stx, req, 502, "No usable next hop", NULL);
		mem_deref(stx);
		return;
	}
	timer_c_restart(rc);
	expiry_start(rc, req);
	start_next_group(rc); /* may end stx: our reference keeps rc alive until here */
	mem_deref(stx); /* the table and the branches' callbacks keep what they need; rctx dies with stx */
}

/* A request of a dialog whose Record-Route of ours carries a flow token (a branch went out on a phone's
 * TCP connection) goes to the phone on that connection while it stands; a request that came over it
 * (the phone's own) and one whose token is not ours go by the Request-URI. */
static void flow_target(struct target *t, const struct tp_msg *tm, struct slice route)
{
	struct slice token;
	struct sip_addr a;
	struct sip_uri u;
	struct tp_addr peer;
	char addr[64];

	if (!route_has_flow(route)) /* most dialogs: no token, no parsing */
		return;
	if (sip_addr_parse(&a, route) || sip_uri_parse(&u, a.uri) || !sip_param_find(u.params, "flow", &token) ||
	    !flow_token_read(token, &peer))
		return;
	if ((tm->proto == TP_TCP && tp_addr_eq(&tm->src, &peer)) || !tp_conn_standing(NULL, &peer))
		return;
	snprintf(t->received, sizeof(t->received), "tcp:%s", tp_addr_str(&peer, addr, sizeof(addr)));
}

/* A request of a dialog sipd Record-Routed whose Request-URI carries a ;nat= token of sipd's
 * (contact_nat_token): its party is behind a NAT, reached at the address the token names, over UDP, or
 * over its TCP connection while that stands ("tcp-"; next_hop's flow rule); the token leaves the
 * Request-URI, which goes on as the party wrote its Contact. A token that is not sipd's (its MAC fails)
 * is left where it is, and the request goes where the URI says. */
static void nat_target(struct target *t, const struct sip_uri *ruri, struct slice ruri_s)
{
	struct slice v, token;
	struct tp_addr peer;
	char addr[64];
	size_t at, end;
	bool tcp;

	if (!sip_param_find(ruri->params, "nat", &v) || v.p < ruri_s.p + 5 || v.p + v.l > ruri_s.p + ruri_s.l ||
	    strncasecmp(v.p - 5, ";nat=", 5))
		return;
	tcp = v.l > 4 && !memcmp(v.p, "tcp-", 4);
	token = tcp ? slice_make(v.p + 4, v.l - 4) : v;
	if (!flow_token_read(token, &peer))
		return;
	at = (size_t)(v.p - 5 - ruri_s.p);
	end = (size_t)(v.p + v.l - ruri_s.p);
	snprintf(t->received, sizeof(t->received), "%s:%s", tcp ? "tcp" : "udp", tp_addr_str(&peer, addr, sizeof(addr)));
	snprintf(t->uri, sizeof(t->uri), "%.*s%.*s", (int)at, ruri_s.p, (int)(ruri_s.l - end), ruri_s.p + end);
}

/* Out of a dialog, a Request-URI in sipd's domains is sipd's, whatever the port (phones and tools get
 * the port wrong), and so is one with no user naming sipd itself (an OPTIONS ping to its address when
 * it serves a domain name); inside one, the port tells sipd from a phone on the same host. */
static bool ruri_local(const struct proxy *p, const struct sip_msg *req, const struct sip_uri *ruri)
{
	if (req->to.tag.p)
		return uri_is_us(p, ruri);
	return ruri->scheme != SIP_SCHEME_TEL && (registrar_is_local(p->reg, ruri->host) ||
						  (!ruri->user.l && registrar_is_self(p->reg, ruri->host)));
}

bool proxy_for_sipd(const struct proxy *p, const struct sip_msg *req)
{
	return !req->ruri_err && !req->count[SIP_HDR_ROUTE] && !req->ruri_uri.user.l && !req->ruri_uri.maddr.l &&
	       ruri_local(p, req, &req->ruri_uri);
}

enum proxy_verdict proxy_route(struct proxy *p, const struct tp_msg *tm, const struct sip_msg *req,
			       const struct txn_origin *o)
{
	struct target one, *t = &one; /* a request for another host has that one target */
	struct sip_list_iter it;
	struct slice route;
	struct sip_uri ruri, ru;
	struct sip_addr ra;
	bool pop = false, known = false, has_route = false, nobody = false, local, foreign, signed_dialog;
	struct fwd_routes rs;
	struct slice strict_target = SLICE_NULL, popped = SLICE_NULL, pair_out = SLICE_NULL, ruri_s;
	char unmaddr[sizeof(one.uri)], pin[RRSIG_PIN];
	struct seen seen = { .authed = false };
	enum proxy_verdict verdict = PROXY_TAKEN;
	bool dns_ok;
	size_t n = 0;

	ruri = req->ruri_uri;
	if (req->mid == SIP_METHOD_REGISTER || req->mid == SIP_METHOD_CANCEL ||
	    req->ruri_err)
		return PROXY_SELF; /* CANCEL: the core matches it to the INVITE (16.10) */
	/* the ACK for a final sipd sent itself (statelessly) ends here (17.2.1) */
	if (req->mid == SIP_METHOD_ACK && req->to.tag.p && txn_is_own_tag(req))
		return PROXY_TAKEN;
	/* the common case first, before any set-up: for sipd itself (OPTIONS pings), no Route at all */
	if (proxy_for_sipd(p, req))
		return PROXY_SELF;
	rs.n = 0;
	sip_list_begin(&it, req, SIP_HDR_ROUTE);
	while (rs.n < FWD_MAX_ROUTES && sip_list_iter_next(&it, &route))
		rs.r[rs.n++] = route;
	if (rs.n == FWD_MAX_ROUTES && sip_list_iter_next(&it, &route)) {
		/* more hops than sipd carries: refused whole, never forwarded with some of them gone */
		answer(p, req, o, 500, "Too many Route header field values", NULL);
		return PROXY_TAKEN;
	}
	/* 16.4: a Request-URI sipd put in a Record-Route comes from a strict router: the last Route is the
	 * real Request-URI. Only a request of a dialog (a route set exists only there) whose Request-URI
	 * carries the dialog's signature: otherwise "INVITE sip:sipd" with "Route: <sip:anyone@anywhere>"
	 * would be relayed there for anybody */
	if (rs.n && req->to.tag.p && !ruri.user.l && uri_is_us(p, &ruri) &&
	    sip_addr_parse(&ra, rs.r[rs.n - 1]) == 0 && sip_uri_parse(&ru, ra.uri) == 0 &&
	    rrsig_valid(p->rr_key, ruri.params, req->call_id,
			route_pin(p, local_of(&tm->local), rs.r, 0, rs.n - 1, &ru, pin))) {
		strict_target = ra.uri;
		ruri = ru;
		rs.n--;
	}
	ruri_s = strict_target.p ? strict_target : req->ruri;
	/* 16.4: a maddr naming sipd, at the port and transport the request came by, is taken off */
	if (maddr_is_us(p, tm, &ruri)) {
		struct sbuf b;

		sbuf_init(&b, unmaddr, sizeof(unmaddr));
		sip_uri_write_without_maddr(&b, &ruri);
		if (!b.overflow && sip_uri_parse(&ru, slice_make(unmaddr, b.len)) == 0) {
			ruri = ru;
			ruri_s = slice_make(unmaddr, b.len);
		}
	}
	/* 16.4: a first Route naming sipd is taken off */
	if (rs.n && route_is_us(p, local_of(&tm->local), rs.r[0])) {
		pop = true;
		popped = rs.r[0];
		memmove(&rs.r[0], &rs.r[1], (rs.n - 1) * sizeof(rs.r[0]));
		rs.n--;
		/* the second of a double Record-Route of ours (a change of transport or address family,
		 * forward_build): off too. Two of ours alike are two passes of a spiral, and stay. */
		if (rs.n && !slice_eq(popped, rs.r[0]) && route_is_us(p, local_of(&tm->local), rs.r[0]) &&
		    (route_names_tcp(popped) != route_names_tcp(rs.r[0]) || !route_hostport_eq(popped, rs.r[0]))) {
			pair_out = rs.r[0]; /* the side the request goes on to: it leaves from there */
			if (!route_has_flow(popped))
				popped = rs.r[0];
			memmove(&rs.r[0], &rs.r[1], (rs.n - 1) * sizeof(rs.r[0]));
			rs.n--;
		}
	}
	has_route = rs.n > 0;
	/* 16.5: a Request-URI with a maddr (not sipd's, 16.4) is the one target, in sipd's domain too: sent
	 * to an address of the sender's choosing, it is relayed as a request for another domain is */
	local = !has_route && !ruri.maddr.l && ruri_local(p, req, &ruri);
	if (local && !ruri.user.l && !strict_target.p)
		return PROXY_SELF; /* for sipd itself (OPTIONS, a BYE to it): the core answers */
	/* a request out of a dialog for another domain, through a Route of sipd's or not: relayed for
	 * sipd's own users only ([proxy] outbound), once authenticated below */
	foreign = !local && !strict_target.p && !req->to.tag.p;
	if ((!pop && !local && !strict_target.p && req->to.tag.p) || (foreign && !outbound_users(p))) {
		/* sipd is no open relay: a request of a dialog for another domain that does not come through a
		 * Route of sipd's (none, or one naming another host first), or one out of a dialog from
		 * someone outbound does not serve */
		answer(p, req, o, 403, "Relaying denied", NULL);
		return PROXY_TAKEN;
	}
	/* sipd is no open relay in dialogs either: a Route naming it, which anyone can write, is followed
	 * for a dialog it Record-Routed, and no other (a request "of a dialog" to a trunk trusting sipd); a
	 * strict router's Request-URI had its signature checked above */
	if (req->to.tag.p && pop && !strict_target.p) {
		struct slice hop;

		if (!dialog_signed(p, local_of(&tm->local), req, &ruri, pin, &hop)) {
			answer(p, req, o, 403, "Relaying denied: not a dialog of this proxy", NULL);
			return PROXY_TAKEN;
		}
		note_refresh(p, tm, req, hop);
	}
	signed_dialog = req->to.tag.p && (pop || strict_target.p);
	if (local) {
		if (!(t = scratch_take(MAX_BRANCHES * sizeof(*t)))) { /* ~1.7 kB each: only those filled are read */
			answer(p, req, o, 500, "Out of memory", NULL);
			goto out;
		}
		n = lookup_targets(p, &ruri, t, MAX_BRANCHES, &known);
		/* no such user (404 by default), or a dialog sipd has no way into (481): said once the request
		 * is valid and its sender authenticated (16.3 before 16.5), so that a scanner posing as one of
		 * sipd's users (svwar) gets the same 407 for every name and learns none */
		nobody = !n && (!known || req->to.tag.p);
		/* a UA that ignored Record-Route sends in-dialog requests to the AOR: one target, not a fork */
		if (req->to.tag.p && n)
			n = 1;
	} else {
		if (ruri_s.l >= sizeof(t[0].uri)) {
			/* [limits] max_request_uri_length may let in more than a target holds: never forwarded cut */
			answer(p, req, o, 414, "Request-URI too long to forward", NULL);
			goto out;
		}
		slice_copy(t[0].uri, sizeof(t[0].uri), ruri_s);
		t[0].parsed = &ruri; /* what next_hop would parse again */
		t[0].path[0] = t[0].received[0] = '\0';
		route_udp_local(pair_out, t[0].local, sizeof(t[0].local));
		if (signed_dialog)
			nat_target(&t[0], &ruri, ruri_s);
		t[0].q = 1000;
		n = 1;
		if (!rs.n && popped.l)
			flow_target(&t[0], tm, popped);
	}
	if (!validate(p, req, o, &seen) ||
	    !(foreign ? authorize_outbound(p, req, o, &seen) : authorize_call(p, req, o, &seen, signed_dialog)))
		goto out;
	if (nobody) {
		verdict = PROXY_NOBODY;
		goto out;
	}
	/* DNS for a host name: for an authorized outbound request, else as [proxy] resolve_next_hops says */
	dns_ok = foreign || p->cfg->resolve_next_hops;
	if (!n)
		answer(p, req, o, 480, "No registered contact", NULL);
	else if (req->mid == SIP_METHOD_ACK)
		forward_stateless(p, tm, req, o, &t[0], &rs, &seen, dns_ok);
	else
		forward_stateful(p, tm, req, o, t, n, &rs, &seen, dns_ok);
out:
	if (t != &one)
		scratch_give(t);
	return verdict;
}

/* ---- 2xx after the first ---- */

/* The UDP listener a further 2xx goes up from: the one the caller's INVITE came to (RFC 3581 4), which
 * the last of sipd's Record-Routes in a row names (the caller's side: two of them when the call changed
 * listener); without one, the listener sipd's own Via in the response names. */
static uint8_t upstream_lsn(const struct proxy *p, const struct sip_msg *resp, const struct sip_via *ours)
{
	struct slice v, host = ours->host;
	uint16_t port = ours->port;
	struct sip_list_iter it;
	struct tp_addr a;
	bool seen = false;

	sip_list_begin(&it, resp, SIP_HDR_RECORD_ROUTE);
	while (sip_list_iter_next(&it, &v)) {
		struct sip_uri u;

		if (!rr_is_ours(p, v, &u)) {
			if (seen)
				break;
			continue;
		}
		seen = true;
		host = u.host;
		port = u.port;
	}
	return tp_addr_set(&a, host, port ? port : 5060) ? TP_LSN_ANY : tp_lsn_of(NULL, TP_UDP, &a);
}

void proxy_relay_2xx(struct proxy *p, const struct sip_msg *resp)
{
	const struct sip_hdr *h = sip_msg_hdr(resp, SIP_HDR_VIA);
	struct slice rest, top, next;
	struct sip_via v;
	struct tp_addr dst;
	enum tp_proto proto;
	uint8_t lsn;
	char *out;
	size_t len;

	/* The server transaction, Accepted too, would pass the 2xx to the transport as it is (RFC 6026 7.1),
	 * and may be gone already (its TU released): so it goes on the way a stateless proxy sends a
	 * response (16.11), by the next Via. A 2xx without a To tag answers nothing (8.2.6.2) */
	if (!h || !resp->to.tag.p)
		return;
	rest = h->value;
	if (!sip_list_next(&rest, &top) || sip_via_parse(&v, top) || !registrar_is_self(p->reg, v.host))
		return;
	lsn = upstream_lsn(p, resp, &v);
	if (!sip_list_next(&rest, &next)) {
		h = sip_msg_hdr_next(resp, h);
		if (!h)
			return;
		rest = h->value;
		if (!sip_list_next(&rest, &next))
			return;
	}
	if (sip_via_parse(&v, next))
		return;
	/* 18.2.2 for the next hop: a numeric maddr at the sent-by port (as txn_origin_init); else received
	 * and rport where the UA put them */
	uint32_t rport = 0;

	if (v.rport.l)
		slice_to_u32(v.rport, 65535, &rport);
	proto = slice_caseeq_cstr(v.transport, "TCP") ? TP_TCP : TP_UDP;
	if ((proto != TP_UDP || !v.maddr.l || !p->cfg->via_maddr || tp_addr_set(&dst, v.maddr, v.port ? v.port : 5060)) &&
	    tp_addr_set(&dst, v.received.l ? v.received : v.host, rport ? (unsigned short)rport : v.port ? v.port : 5060))
		return;
	out = upstream_copy(p, resp, NULL, SLICE_NULL, &len);
	if (out) {
		tp_send_from(NULL, lsn, proto, NULL, &dst, out, len);
		free(out);
	}
}

/* ---- life cycle ---- */

int proxy_new(struct proxy **pp, const struct config *cfg, struct txn_table *txns, struct registrar *reg,
	      struct auth *auth)
{
	struct proxy *p = calloc(1, sizeof(*p));

	if (!p)
		return ENOMEM;
	p->cfg = cfg;
	p->txns = txns;
	p->reg = reg;
	p->auth = auth;
	for (unsigned i = 0; i < cfg->nlisten && p->nports < MAX_PORTS; i++) {
		struct tp_addr a;

		if (tp_addr_parse(&a, cfg->listen[i] + 4, 5060) == 0)
			p->ports[p->nports++] = tp_addr_port(&a);
		if (p->nports < MAX_PORTS && tp_addr_parse(&a, cfg->listen_advertise[i], 0) == 0 && tp_addr_port(&a))
			p->ports[p->nports++] = tp_addr_port(&a); /* a listener's advertised port */
	}
	if (cfg->advertise[0] && p->nports < MAX_PORTS) { /* an advertised port is one of sipd's too */
		struct tp_addr a;

		if (tp_addr_parse(&a, cfg->advertise, 0) == 0 && tp_addr_port(&a))
			p->ports[p->nports++] = tp_addr_port(&a);
	}
	if (calls_new(&p->calls, 1000000, cfg->max_call_duration)) {
		free(p);
		return ENOMEM;
	}
	if (unavail_new(&p->unavail)) {
		calls_free(p->calls);
		free(p);
		return ENOMEM;
	}
	if (rrsig_key_load(p->rr_key, cfg->db_path)) {
		log_err("proxy: no random key for Record-Route signatures");
		unavail_free(p->unavail);
		calls_free(p->calls);
		free(p);
		return EIO;
	}
	flow_key_derive(p->rr_key, RRSIG_KEY); /* a NAT'd party's ;nat= token outlives a restart, as its dialog */
	pthread_mutex_init(&p->acks_lock, NULL);
	for (unsigned i = 0; i < cfg->nlisten; i++)
		if (strchr(cfg->listen[i], '['))
			p->ipv6 = true;
	if (outbound_users(p) || cfg->resolve_next_hops) {
		struct dns_config dc = {
			.servers = cfg->dns_servers,
			.timeout_ms = cfg->dns_timeout,
			.cache_size = cfg->dns_cache_size,
			.max_ttl = cfg->dns_max_ttl,
			.negative_ttl = cfg->dns_negative_ttl,
		};
		int err = dns_new(&p->dns, &dc);

		if (err) {
			log_err("proxy: cannot start the DNS resolver: %s", strerror(err));
			proxy_free(p);
			return err;
		}
	}
	*pp = p;
	return 0;
}

void proxy_stopped(struct proxy *p)
{
	if (!p)
		return;
	/* the resolver first: nothing new is posted to the loops; then the ACKs still waiting for it */
	dns_free(p->dns);
	p->dns = NULL;
	while (p->acks) {
		struct located_ack *a = p->acks;

		locate_cancel(a->loc);
		located_ack_free(a);
	}
}

void proxy_free(struct proxy *p)
{
	if (!p)
		return;
	proxy_stopped(p);
	pthread_mutex_destroy(&p->acks_lock);
	unavail_free(p->unavail);
	calls_free(p->calls);
	free(p);
}

void proxy_housekeeping(struct proxy *p)
{
	calls_expire(p->calls);
}
