/* natping.c: OPTIONS to phones behind a NAT, sent statelessly: the datagrams both ways refresh the
 * pinhole. A phone's answer matches no transaction; the core hands it here (natping_answer), where it
 * only clears the binding's silence (nat_keepalive_timeout). */
#include "registrar/natping.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/htab.h"
#include "net/transport.h"
#include "sip/build.h"
#include "sip/uri.h"

/* A binding pinged lately: since when its pings go unanswered (0: the last one was answered). */
struct silence {
	struct htab_link link; /* first */
	uint64_t key;
	int64_t unanswered_since, last_ping;
};

struct natping {
	pthread_mutex_t lock; /* the table: pings from the registrar's thread, answers from the workers */
	struct htab silences;
	uint64_t salt;        /* keys and ids are not guessable from outside */
	uint64_t count;       /* pings sent: the registrar's thread only */
};

struct ping {
	struct tp_addr dst;
	uint64_t key;
	char contact[512];
	char local[64];  /* the listener the phone registered through: the pinhole is to it */
};

struct due {
	struct natping *np;
	unsigned timeout;
	int64_t now;
	struct ping *v;
	size_t n, cap;
	struct store_unbind *gone;
	size_t ngone, gone_cap;
	bool nomem;
};

int natping_new(struct natping **npp)
{
	struct natping *np = calloc(1, sizeof(*np));

	if (!np || htab_init(&np->silences, 64, 1u << 22, 0)) {
		free(np);
		return ENOMEM;
	}
	pthread_mutex_init(&np->lock, NULL);
	if (getrandom(&np->salt, sizeof(np->salt), GRND_NONBLOCK) != sizeof(np->salt))
		np->salt = (uint64_t)(uintptr_t)np ^ 0x9e3779b97f4a7c15ull;
	*npp = np;
	return 0;
}

void natping_free(struct natping *np)
{
	struct htab_link *l, *next;

	if (!np)
		return;
	for (l = htab_next(&np->silences, NULL); l; l = next) {
		next = htab_next(&np->silences, l);
		htab_remove(&np->silences, l);
		free(l);
	}
	htab_free(&np->silences);
	pthread_mutex_destroy(&np->lock);
	free(np);
}

/* The binding's name in its pings: 64 bits of two salted hashes of AOR and contact. */
static uint64_t binding_key(const struct natping *np, const char *aor, const char *contact)
{
	uint32_t a = slice_hash(slice_cstr(aor), (uint32_t)np->salt), c = slice_hash(slice_cstr(contact), a);

	return ((uint64_t)a << 32 | c) ^ np->salt;
}

/* Under lock. */
static struct silence *silence_find(struct natping *np, uint64_t key)
{
	for (struct htab_link *l = htab_chain(&np->silences, (uint32_t)key); l; l = l->next)
		if (((struct silence *)l)->key == key)
			return (struct silence *)l;
	return NULL;
}

/* Whether the binding has answered none of its pings for longer than timeout. */
static bool silent_too_long(struct natping *np, uint64_t key, unsigned timeout, int64_t now)
{
	struct silence *e;
	bool gone;

	if (!timeout)
		return false;
	pthread_mutex_lock(&np->lock);
	e = silence_find(np, key);
	gone = e && e->unanswered_since && now - e->unanswered_since > (int64_t)timeout;
	if (gone) {
		htab_remove(&np->silences, &e->link);
		free(e);
	}
	pthread_mutex_unlock(&np->lock);
	return gone;
}

/* A ping went out: the binding's silence starts now unless it had started already. */
static void silence_note(struct natping *np, uint64_t key, int64_t now)
{
	struct silence *e;

	pthread_mutex_lock(&np->lock);
	e = silence_find(np, key);
	if (!e && (e = calloc(1, sizeof(*e))) != NULL) {
		e->key = key;
		e->link.hash = (uint32_t)key;
		htab_add(&np->silences, &e->link);
	}
	if (e) {
		e->last_ping = now;
		if (!e->unanswered_since)
			e->unanswered_since = now;
	}
	pthread_mutex_unlock(&np->lock);
}

/* Once per interval: what was not pinged for three intervals belongs to a binding that is gone. */
static void silences_sweep(struct natping *np, unsigned interval, int64_t now)
{
	struct htab_link *l, *next;

	pthread_mutex_lock(&np->lock);
	for (l = htab_next(&np->silences, NULL); l; l = next) {
		next = htab_next(&np->silences, l);
		if (now - ((struct silence *)l)->last_ping > 3 * (int64_t)interval) {
			htab_remove(&np->silences, l);
			free(l);
		}
	}
	pthread_mutex_unlock(&np->lock);
}

bool natping_answer(struct natping *np, struct slice call_id)
{
	uint64_t key = 0;
	struct silence *e;

	/* "ka" 16 hex digits "." ... "@sipd" */
	if (!np || call_id.l < 24 || memcmp(call_id.p, "ka", 2) || call_id.p[18] != '.' ||
	    memcmp(call_id.p + call_id.l - 5, "@sipd", 5))
		return false;
	for (size_t i = 2; i < 18; i++) {
		char ch = call_id.p[i];
		int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;

		if (v < 0)
			return false;
		key = key << 4 | (uint64_t)v;
	}
	pthread_mutex_lock(&np->lock);
	e = silence_find(np, key);
	if (e)
		e->unanswered_since = 0;
	pthread_mutex_unlock(&np->lock);
	return true;
}

/* natping_behind_nat, with the Contact's scheme (SIP_SCHEME_OTHER when it is no sip/sips URI). */
static bool behind_nat(const char *contact, const char *received, enum sip_scheme *scheme)
{
	struct tp_addr from, named;
	struct sip_uri u;

	*scheme = SIP_SCHEME_OTHER;
	if ((strncmp(received, "udp:", 4) && strncmp(received, "tcp:", 4)) || tp_addr_parse(&from, received + 4, 0))
		return false;
	if (sip_uri_parse(&u, slice_cstr(contact)) || (u.scheme != SIP_SCHEME_SIP && u.scheme != SIP_SCHEME_SIPS))
		return false;
	*scheme = u.scheme;
	/* a host name is no address the REGISTER could have come from: the phone is elsewhere */
	return tp_addr_set(&named, u.host, u.port ? u.port : u.scheme == SIP_SCHEME_SIPS ? 5061 : 5060) ||
	       !tp_addr_eq(&from, &named);
}

bool natping_behind_nat(const char *contact, const char *received)
{
	enum sip_scheme scheme;

	return behind_nat(contact, received, &scheme);
}

bool natping_wanted(const char *contact, const char *received, const char *path)
{
	enum sip_scheme scheme;

	/* sips: is never reached over UDP */
	return !strncmp(received, "udp:", 4) && !path[0] && behind_nat(contact, received, &scheme) &&
	       scheme == SIP_SCHEME_SIP;
}

static void gone_add(struct due *d, const char *aor, const char *contact)
{
	if (d->ngone == d->gone_cap) {
		size_t cap = d->gone_cap ? d->gone_cap * 2 : 8;
		struct store_unbind *v = realloc(d->gone, cap * sizeof(*v));

		if (!v)
			return; /* found again at its next turn */
		d->gone = v;
		d->gone_cap = cap;
	}
	strcpy(d->gone[d->ngone].aor, aor);
	strcpy(d->gone[d->ngone].contact, contact);
	d->ngone++;
}

/* Under the shard's lock: only copies. */
static void due_add(const char *aor, const char *contact, const char *received, const char *path,
		    const char *local, void *arg)
{
	struct due *d = arg;
	struct ping *p;
	uint64_t key;

	if (d->nomem || !natping_wanted(contact, received, path) || strlen(contact) >= sizeof(p->contact) ||
	    strlen(aor) >= sizeof(d->gone->aor) || strlen(local) >= sizeof(p->local))
		return;
	key = binding_key(d->np, aor, contact);
	if (silent_too_long(d->np, key, d->timeout, d->now)) {
		gone_add(d, aor, contact);
		return;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct ping *v = realloc(d->v, cap * sizeof(*v));

		if (!v) {
			d->nomem = true;
			return;
		}
		d->v = v;
		d->cap = cap;
	}
	p = &d->v[d->n++];
	tp_addr_parse(&p->dst, received + 4, 0);
	p->key = key;
	strcpy(p->contact, contact);
	strcpy(p->local, local);
}

size_t natping_build(char *buf, size_t n, const char *contact, const char *local, uint64_t key, uint64_t id)
{
	const char *q = strchr(contact, '?');
	struct slice ruri = slice_make(contact, q ? (size_t)(q - contact) : strlen(contact));
	struct sbuf b;

	sbuf_init(&b, buf, n);
	sbuf_adds(&b, "OPTIONS ");
	sbuf_addsl(&b, ruri);
	sbuf_printf(&b,
		    " SIP/2.0\r\n"
		    "Via: SIP/2.0/UDP %s;branch=z9hG4bKka%016llx;rport\r\n"
		    "Max-Forwards: 70\r\n"
		    "From: <sip:keepalive@%s>;tag=ka%016llx\r\n"
		    "To: <",
		    local, (unsigned long long)id, local, (unsigned long long)id);
	sbuf_addsl(&b, ruri);
	sbuf_printf(&b,
		    ">\r\n"
		    "Call-ID: ka%016llx.%016llx@sipd\r\n"
		    "CSeq: 1 OPTIONS\r\n"
		    "Content-Length: 0\r\n\r\n",
		    (unsigned long long)key, (unsigned long long)id);
	return b.overflow ? 0 : b.len;
}

/* From the listener the phone registered through, while sipd listens there: its NAT keeps a pinhole to
 * that address and port only (the first of the family for a binding of an older sipd). */
static bool ping_send(struct natping *np, const struct ping *p)
{
	struct tp_addr local;
	uint8_t lsn = TP_LSN_ANY;
	char from[64], msg[1024];
	size_t len;

	if (!strncmp(p->local, "udp:", 4) && !tp_addr_parse(&local, p->local + 4, 5060) &&
	    local.u.sa.sa_family == p->dst.u.sa.sa_family)
		lsn = tp_lsn_of(NULL, TP_UDP, &local);
	if (lsn == TP_LSN_ANY && tp_local_for(NULL, TP_UDP, &p->dst, &local))
		return false;
	if (lsn != TP_LSN_ANY)
		tp_advertised(NULL, &local, &local); /* the Via names sipd as the world reaches it */
	tp_addr_str(&local, from, sizeof(from));
	len = natping_build(msg, sizeof(msg), p->contact, from, p->key, np->salt ^ (++np->count * 0x9e3779b97f4a7c15ull));
	return len && tp_send_from(NULL, lsn, TP_UDP, NULL, &p->dst, msg, len) == 0;
}

void natping_tick(struct natping *np, struct loc *l, unsigned interval, unsigned timeout, int64_t now,
		  struct store_unbind **gone, size_t *ngone)
{
	struct due d = { .np = np, .timeout = timeout, .now = now };

	*gone = NULL;
	*ngone = 0;
	if (!interval)
		return;
	for (unsigned i = (unsigned)(now % interval); i < loc_shard_count(); i += interval)
		loc_walk_shard(l, i, due_add, &d);
	for (size_t k = 0; k < d.n; k++) {
		ping_send(np, &d.v[k]);
		silence_note(np, d.v[k].key, now); /* one that cannot be sent is not answered either */
	}
	if (now % interval == 0)
		silences_sweep(np, interval, now);
	free(d.v);
	*gone = d.gone;
	*ngone = d.ngone;
}
