/* natping.c: OPTIONS to phones behind a NAT, sent statelessly: a phone's answer matches no transaction
 * and is dropped (RFC 6026 7.3), which is all it is for; the datagrams both ways refresh the pinhole. */
#include "registrar/natping.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "net/transport.h"
#include "sip/build.h"
#include "sip/uri.h"

struct ping {
	struct tp_addr dst;
	char contact[512];
};

struct due {
	struct ping *v;
	size_t n, cap;
	bool nomem;
};

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

/* Under the shard's lock: only copies. */
static void due_add(const char *aor, const char *contact, const char *received, const char *path, void *arg)
{
	struct due *d = arg;
	struct ping *p;

	(void)aor;
	if (d->nomem || !natping_wanted(contact, received, path) || strlen(contact) >= sizeof(p->contact))
		return;
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
	strcpy(p->contact, contact);
}

size_t natping_build(char *buf, size_t n, const char *contact, const char *local, uint64_t id)
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
		    "Call-ID: ka%016llx@sipd\r\n"
		    "CSeq: 1 OPTIONS\r\n"
		    "Content-Length: 0\r\n\r\n",
		    (unsigned long long)id);
	return b.overflow ? 0 : b.len;
}

/* A different id for every ping of the process's life, unguessable from outside (natping_tick runs on
 * one thread only). */
static uint64_t next_id(void)
{
	static uint64_t base, count;

	if (!base && getrandom(&base, sizeof(base), GRND_NONBLOCK) != sizeof(base))
		base = (uint64_t)(uintptr_t)&base ^ 0x9e3779b97f4a7c15ull;
	return base ^ (++count * 0x9e3779b97f4a7c15ull);
}

static bool ping_send(const struct ping *p)
{
	struct tp_addr local;
	char from[64], msg[1024];
	size_t len;

	if (tp_local_for(NULL, TP_UDP, &p->dst, &local))
		return false;
	tp_addr_str(&local, from, sizeof(from));
	len = natping_build(msg, sizeof(msg), p->contact, from, next_id());
	return len && tp_send(NULL, TP_UDP, NULL, &p->dst, msg, len) == 0;
}

size_t natping_tick(struct loc *l, unsigned interval, int64_t now)
{
	struct due d = { 0 };
	size_t sent = 0;

	if (!interval)
		return 0;
	for (unsigned i = (unsigned)(now % interval); i < loc_shard_count(); i += interval)
		loc_walk_shard(l, i, due_add, &d);
	for (size_t k = 0; k < d.n; k++)
		sent += ping_send(&d.v[k]);
	free(d.v);
	return sent;
}
