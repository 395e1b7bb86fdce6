/* locate.h: where a SIP URI's requests go (RFC 3263 4: NAPTR, SRV, A/AAAA): an ordered list of
 * (address, transport) targets to try one after the other, found without blocking the loop. */
#ifndef SIPD_SIP_LOCATE_H
#define SIPD_SIP_LOCATE_H

#include <stdbool.h>
#include <stdint.h>

#include "net/dns.h"
#include "net/transport.h"
#include "sip/uri.h"

#define LOCATE_MAX 16     /* targets of one URI */
#define LOCATE_MAX_SRV 8  /* SRV targets resolved to addresses */

struct locate;

struct locate_target {
	struct tp_addr addr;
	enum tp_proto proto;
	bool proto_default; /* UDP only because nothing named a transport (4.1: no transport=, NAPTR or SRV):
	                     * a request too large for UDP may take TCP there (RFC 3261 18.1.1) */
	uint16_t prio;      /* its SRV record's priority; 0 without SRV */
};

/* err: 0 (n >= 1 targets, best first), ENOENT (the domain or its records do not exist), ETIMEDOUT (DNS
 * did not answer in time), EIO (DNS failed: SERVFAIL, REFUSED, unreachable), EPROTONOSUPPORT (only
 * transports sipd lacks, e.g. sips: needs TLS), EAGAIN (too many DNS questions in flight), ENOMEM. */
struct locate_result {
	int err;
	unsigned n;
	struct locate_target t[LOCATE_MAX];
};

/* Runs once, on the loop that started the search; the search is gone when it returns. */
typedef void (locate_h)(const struct locate_result *res, void *arg);

/* What the URI says by itself (RFC 3263 4.1, 4.2): host (maddr when present), port (0: none), the
 * transport (TP_UDP unless ;transport=tcp; sips: TCP), whether a transport was named, whether the host
 * is an IP address (then *addr is set: no DNS). EINVAL for a URI that names no usable host;
 * EPROTONOSUPPORT for a transport sipd lacks (tls, sctp, ws). */
struct locate_uri {
	char host[DNS_NAME_MAX];
	uint16_t port;
	enum tp_proto proto;
	bool proto_given, sips, numeric;
	struct tp_addr addr; /* numeric only: host and port (default 5060, sips 5061) */
};
int locate_uri_parse(struct locate_uri *lu, const struct sip_uri *u);

/* Starts the search for u on loop l (the calling worker's loop). ipv6: ask for AAAA records too.
 * 0 (h will run once), or an errno (h will not run). A numeric host is answered through the loop too. */
int locate_start(struct locate **lp, struct dns *d, struct loop *l, const struct sip_uri *u, bool ipv6,
		 locate_h *h, void *arg);
/* Before h ran, on the same loop: the search stops and h will not run. */
void locate_cancel(struct locate *lc);

/* ---- the selection rules, given records (exposed for tests) ---- */

/* An SRV name to ask, with the transport it stands for. */
struct locate_srvname {
	char name[DNS_NAME_MAX];
	enum tp_proto proto;
};

/* RFC 3263 4.1: of NAPTR records, those for transports sipd has (SIP+D2U, SIP+D2T; for sips, SIPS+D2T
 * needs TLS: none) with the "s" flag, by order then preference. Returns how many went to out. */
unsigned locate_naptr_select(const struct dns_rr *rr, unsigned n, bool sips, struct locate_srvname *out,
			     unsigned max);
/* RFC 2782: SRV records in the order to try: lowest priority first; within a priority, a weighted random
 * order (zero weights first in the running sum, so they are rarely chosen before others). rnd returns
 * a uniformly random 32-bit value. A lone target of "." means "no such service": 0 records.
 * Writes indices into rr to idx; returns how many. */
unsigned locate_srv_order(const struct dns_rr *rr, unsigned n, uint32_t (*rnd)(void *), void *rarg,
			  unsigned *idx);

#endif
