/* dns.h: an asynchronous DNS resolver (c-ares on a thread of its own) for NAPTR, SRV, A and AAAA, with a
 * bounded cache that honours TTLs; answers are handed back on the event loop that asked. */
#ifndef SIPD_NET_DNS_H
#define SIPD_NET_DNS_H

#include <stdbool.h>
#include <stdint.h>

struct dns;       /* the resolver: its thread, its c-ares channel, its cache */
struct dns_query; /* one question in flight */
struct loop;

enum dns_type { DNS_A = 1, DNS_AAAA = 28, DNS_SRV = 33, DNS_NAPTR = 35 };

#define DNS_NAME_MAX 256 /* a domain name in text, with its NUL (RFC 1035: 253 characters) */
#define DNS_MAX_RR 16    /* records kept of one answer; the rest are dropped (hostile answers are big) */

struct dns_rr {
	uint32_t ttl;
	union {
		struct {
			uint16_t order, pref;
			char flags[8];
			char service[32];
			char replacement[DNS_NAME_MAX];
		} naptr;
		struct {
			uint16_t prio, weight, port;
			char target[DNS_NAME_MAX];
		} srv;
		struct {
			int family;       /* AF_INET or AF_INET6 */
			uint8_t addr[16]; /* network order */
		} a;
	} u;
};

/* status: 0 (n records, n >= 1), ENOENT (the name does not exist, or has no record of the type),
 * ETIMEDOUT (no answer in time), EIO (the server failed or refused: SERVFAIL, REFUSED, a malformed
 * answer, no server reachable), EAGAIN (too many questions in flight), ENOMEM. */
struct dns_answer {
	int status;
	enum dns_type type;
	unsigned n;
	struct dns_rr rr[DNS_MAX_RR];
};

struct dns_config {
	const char *servers;    /* "127.0.0.1:5353, [::1]:53"; NULL or empty: the system's (/etc/resolv.conf) */
	unsigned timeout_ms;    /* a question unanswered this long is answered ETIMEDOUT */
	unsigned cache_size;    /* answers kept (positive and negative); 0: no cache */
	unsigned max_ttl;       /* seconds: a longer TTL is cut to this */
	unsigned negative_ttl;  /* seconds an ENOENT is kept */
	unsigned max_queries;   /* in flight at once; over it a question is answered EAGAIN; 0 = 4096 */
};

/* The handler runs on the loop that asked, once, unless the question was cancelled first. */
typedef void (dns_h)(const struct dns_answer *ans, void *arg);

/* Starts the resolver thread. 0, EINVAL (servers cannot be parsed), ENOMEM, or EIO (c-ares failed). */
int dns_new(struct dns **dp, const struct dns_config *cfg);
/* Stops the thread: questions in flight are dropped without an answer. Before the loops that asked are
 * freed; answers already posted to a loop still run (or see their cancellation) there. */
void dns_free(struct dns *d);
/* Asks for name's records of type; h(ans, arg) will run on loop l. qp (optional) receives a handle for
 * dns_cancel. A cached answer is posted at once. 0 or an errno (h will not run). */
int dns_query(struct dns *d, struct loop *l, const char *name, enum dns_type type, dns_h *h, void *arg,
	      struct dns_query **qp);
/* On loop l, before h ran: h will not run. Drops the handle. */
void dns_cancel(struct dns_query *q);
/* Empties the cache (tests). */
void dns_cache_flush(struct dns *d);

#endif
