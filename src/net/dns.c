/* dns.c: c-ares driven by one thread of its own; the workers never wait for DNS.
 *
 * A worker's question goes into a queue under a mutex and an eventfd wakes the resolver thread, which
 * hands it to c-ares (ares_query: the name as given, no search list, no hosts file) and polls c-ares's
 * sockets. The answer is parsed there (c-ares's parsers, bounded copies), cached, and posted to the
 * loop that asked (loop_post), where the handler runs unless the question was cancelled meanwhile.
 * The c-ares channel is touched by the resolver thread only (c-ares 1.18 channels are not
 * thread-safe). Every question has a deadline of its own, so a server that swallows queries costs
 * exactly timeout_ms, whatever c-ares's own retry schedule is.
 */
#include "net/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/slice.h"
#include "base/timer.h"
#include "net/loop.h"

#define DNS_ANSWERS_WALKED 64 /* answer records looked at for their TTL */

struct dns_query {
	struct dns *d;
	struct loop *loop;
	dns_h *h;
	void *arg;
	char name[DNS_NAME_MAX];
	enum dns_type type;
	uint64_t deadline;            /* resolver thread: monotonic ms */
	bool completed;               /* resolver thread: the answer is posted (or dropped) */
	bool cancelled;               /* loop thread only */
	bool handle;                  /* loop thread only: the caller holds a reference */
	struct dns_query *next, *prev; /* the queue, then the in-flight list (resolver thread) */
	struct dns_answer ans;
};

struct cache_entry {
	struct cache_entry *hnext;     /* hash chain */
	struct cache_entry *onext, *oprev; /* insertion order, oldest first: evicted first */
	uint64_t expires;              /* monotonic ms */
	enum dns_type type;
	char name[DNS_NAME_MAX];
	struct dns_answer ans;         /* only ans.rr[0..n) is allocated */
};

struct dns {
	struct dns_config cfg;
	ares_channel ch;
	pthread_t thread;
	bool thread_started;
	int evfd;
	pthread_mutex_t lock;          /* guards queue and stop */
	struct dns_query *queue, *queue_tail;
	bool stop;
	struct dns_query *inflight, *inflight_tail; /* resolver thread: ordered by deadline */
	atomic_uint pending;           /* questions queued or in flight */
	pthread_mutex_t cache_lock;
	struct cache_entry **buckets;
	unsigned nbuckets, ncached;
	struct cache_entry *oldest, *newest;
};

/* ---- cache ---- */

static size_t answer_size(unsigned n)
{
	return offsetof(struct dns_answer, rr) + n * sizeof(struct dns_rr);
}

/* Agrees with the strcasecmp the cache compares names with. */
static uint32_t name_hash(const char *name, enum dns_type type)
{
	return slice_casehash(slice_cstr(name), (uint32_t)type);
}

static void cache_unlink(struct dns *d, struct cache_entry *e)
{
	struct cache_entry **pp = &d->buckets[name_hash(e->name, e->type) & (d->nbuckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	if (e->oprev)
		e->oprev->onext = e->onext;
	else
		d->oldest = e->onext;
	if (e->onext)
		e->onext->oprev = e->oprev;
	else
		d->newest = e->oprev;
	d->ncached--;
	free(e);
}

/* Copies a live cached answer into ans; false when there is none. */
static bool cache_get(struct dns *d, const char *name, enum dns_type type, struct dns_answer *ans)
{
	struct cache_entry *e;
	bool hit = false;

	if (!d->nbuckets)
		return false;
	pthread_mutex_lock(&d->cache_lock);
	for (e = d->buckets[name_hash(name, type) & (d->nbuckets - 1)]; e; e = e->hnext) {
		if (e->type != type || strcasecmp(e->name, name))
			continue;
		if (e->expires <= tmr_clock_ms()) {
			cache_unlink(d, e);
			break;
		}
		memcpy(ans, &e->ans, answer_size(e->ans.n));
		hit = true;
		break;
	}
	pthread_mutex_unlock(&d->cache_lock);
	return hit;
}

static void cache_put(struct dns *d, const char *name, const struct dns_answer *ans, uint32_t ttl)
{
	struct cache_entry *e, **bucket;

	if (!d->nbuckets || !ttl || (ans->status && ans->status != ENOENT))
		return;
	if (ttl > d->cfg.max_ttl)
		ttl = d->cfg.max_ttl;
	e = malloc(offsetof(struct cache_entry, ans) + answer_size(ans->n));
	if (!e)
		return;
	e->type = ans->type;
	snprintf(e->name, sizeof(e->name), "%s", name);
	memcpy(&e->ans, ans, answer_size(ans->n));
	e->expires = tmr_clock_ms() + (uint64_t)ttl * 1000;
	pthread_mutex_lock(&d->cache_lock);
	bucket = &d->buckets[name_hash(name, ans->type) & (d->nbuckets - 1)];
	for (struct cache_entry *o = *bucket; o; o = o->hnext) {
		if (o->type == e->type && !strcasecmp(o->name, e->name)) {
			cache_unlink(d, o); /* a newer answer replaces it (bucket, the chain's head, stays valid) */
			break;
		}
	}
	while (d->ncached >= d->cfg.cache_size && d->oldest)
		cache_unlink(d, d->oldest);
	e->hnext = *bucket;
	*bucket = e;
	e->onext = NULL;
	e->oprev = d->newest;
	if (d->newest)
		d->newest->onext = e;
	else
		d->oldest = e;
	d->newest = e;
	d->ncached++;
	pthread_mutex_unlock(&d->cache_lock);
}

void dns_cache_flush(struct dns *d)
{
	pthread_mutex_lock(&d->cache_lock);
	while (d->oldest)
		cache_unlink(d, d->oldest);
	pthread_mutex_unlock(&d->cache_lock);
}

/* ---- answers ---- */

/* The smallest TTL among the answer records of type, walked by hand (c-ares 1.18 does not give SRV and
 * NAPTR TTLs). 0 when the message cannot be walked: such an answer is used but not cached. */
static uint32_t answer_ttl(const unsigned char *abuf, int alen, enum dns_type type)
{
	const unsigned char *p = abuf + 12, *end = abuf + alen;
	unsigned qd, an;
	uint32_t ttl = UINT32_MAX;

	if (alen < 12)
		return 0;
	qd = (unsigned)abuf[4] << 8 | abuf[5];
	an = (unsigned)abuf[6] << 8 | abuf[7];
	for (unsigned i = 0; i < qd + an && i < DNS_ANSWERS_WALKED; i++) {
		char *name = NULL;
		long enclen = 0;

		if (ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
			return 0;
		ares_free_string(name);
		if (enclen <= 0 || enclen > end - p)
			return 0;
		p += enclen;
		if (i < qd) {
			if (end - p < 4)
				return 0;
			p += 4;
			continue;
		}
		if (end - p < 10)
			return 0;
		{
			unsigned t = (unsigned)p[0] << 8 | p[1];
			uint32_t rttl = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
			unsigned rdlen = (unsigned)p[8] << 8 | p[9];

			p += 10;
			if ((long)rdlen > end - p)
				return 0;
			p += rdlen;
			if (t == (unsigned)type && rttl < ttl)
				ttl = rttl > INT32_MAX ? 0 : rttl; /* RFC 2181 8: the top bit set means 0 */
		}
	}
	return ttl == UINT32_MAX ? 0 : ttl;
}

static int ares_to_errno(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return 0;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		return ENOENT;
	case ARES_ETIMEOUT:
		return ETIMEDOUT;
	case ARES_ENOMEM:
		return ENOMEM;
	default:
		return EIO; /* SERVFAIL, REFUSED, a bad answer, no server reachable */
	}
}

static bool copy_str(char *dst, size_t n, const char *src)
{
	size_t l = src ? strlen(src) : 0;

	if (!src || l >= n)
		return false;
	memcpy(dst, src, l + 1);
	return true;
}

/* An A or AAAA record into ans; *ttl keeps the smallest. */
static void add_addr(struct dns_answer *ans, uint32_t *ttl, int family, const void *addr, size_t len, int rttl)
{
	struct dns_rr *rr = &ans->rr[ans->n++];

	rr->ttl = rttl < 0 ? 0 : (uint32_t)rttl;
	rr->u.a.family = family;
	memcpy(rr->u.a.addr, addr, len);
	if (rr->ttl < *ttl)
		*ttl = rr->ttl;
}

/* Parses abuf into q->ans (status and records); the TTL to cache it for. */
static uint32_t answer_parse(struct dns *d, struct dns_answer *ans, const unsigned char *abuf, int alen)
{
	int st, n = DNS_MAX_RR;
	uint32_t ttl = UINT32_MAX;

	ans->n = 0;
	switch (ans->type) {
	case DNS_A: {
		struct ares_addrttl at[DNS_MAX_RR];

		st = ares_parse_a_reply(abuf, alen, NULL, at, &n);
		for (int i = 0; st == ARES_SUCCESS && i < n && i < DNS_MAX_RR; i++)
			add_addr(ans, &ttl, AF_INET, &at[i].ipaddr, 4, at[i].ttl);
		break;
	}
	case DNS_AAAA: {
		struct ares_addr6ttl at[DNS_MAX_RR];

		st = ares_parse_aaaa_reply(abuf, alen, NULL, at, &n);
		for (int i = 0; st == ARES_SUCCESS && i < n && i < DNS_MAX_RR; i++)
			add_addr(ans, &ttl, AF_INET6, &at[i].ip6addr, 16, at[i].ttl);
		break;
	}
	case DNS_SRV: {
		struct ares_srv_reply *srv = NULL;

		st = ares_parse_srv_reply(abuf, alen, &srv);
		for (struct ares_srv_reply *s = srv; st == ARES_SUCCESS && s && ans->n < DNS_MAX_RR; s = s->next) {
			struct dns_rr *rr = &ans->rr[ans->n];

			if (!copy_str(rr->u.srv.target, sizeof(rr->u.srv.target), s->host))
				continue;
			rr->u.srv.prio = s->priority;
			rr->u.srv.weight = s->weight;
			rr->u.srv.port = s->port;
			ans->n++;
		}
		ares_free_data(srv);
		ttl = answer_ttl(abuf, alen, DNS_SRV);
		break;
	}
	case DNS_NAPTR: {
		struct ares_naptr_reply *na = NULL;

		st = ares_parse_naptr_reply(abuf, alen, &na);
		for (struct ares_naptr_reply *r = na; st == ARES_SUCCESS && r && ans->n < DNS_MAX_RR; r = r->next) {
			struct dns_rr *rr = &ans->rr[ans->n];

			if (!copy_str(rr->u.naptr.flags, sizeof(rr->u.naptr.flags), (const char *)r->flags) ||
			    !copy_str(rr->u.naptr.service, sizeof(rr->u.naptr.service), (const char *)r->service) ||
			    !copy_str(rr->u.naptr.replacement, sizeof(rr->u.naptr.replacement), r->replacement))
				continue;
			if (r->regexp && r->regexp[0])
				continue; /* RFC 3263 4.1: SIP's NAPTRs use the replacement, never a regexp */
			rr->u.naptr.order = r->order;
			rr->u.naptr.pref = r->preference;
			ans->n++;
		}
		ares_free_data(na);
		ttl = answer_ttl(abuf, alen, DNS_NAPTR);
		break;
	}
	default:
		st = ARES_ENOTIMP;
	}
	for (unsigned i = 0; i < ans->n && (ans->type == DNS_SRV || ans->type == DNS_NAPTR); i++)
		ans->rr[i].ttl = ttl == UINT32_MAX ? 0 : ttl;
	ans->status = ares_to_errno(st);
	if (!ans->status && !ans->n)
		ans->status = ENOENT; /* nothing usable: as good as no record */
	if (ans->status == ENOENT)
		return d->cfg.negative_ttl;
	return ans->status || ttl == UINT32_MAX ? 0 : ttl;
}

/* ---- delivery, on the asking loop ---- */

static void deliver(void *arg)
{
	struct dns_query *q = arg;

	if (!q->cancelled) {
		q->h(&q->ans, q->arg);
		if (q->handle) {
			q->handle = false;
			mem_deref(q);
		}
	}
	mem_deref(q); /* the pipeline's */
}

void dns_cancel(struct dns_query *q)
{
	if (!q || q->cancelled || !q->handle)
		return;
	q->cancelled = true;
	q->handle = false;
	mem_deref(q);
}

/* Resolver thread (or dns_query for a cached answer): hands the pipeline's reference to the loop. */
static void complete(struct dns_query *q)
{
	q->completed = true;
	atomic_fetch_sub(&q->d->pending, 1);
	if (loop_post(q->loop, deliver, q)) {
		log_warn("dns: cannot post the answer for %s (out of memory)", q->name);
		mem_deref(q);
	}
}

/* ---- the resolver thread ---- */

static void inflight_unlink(struct dns *d, struct dns_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else if (d->inflight == q)
		d->inflight = q->next;
	else
		return; /* not linked */
	if (q->next)
		q->next->prev = q->prev;
	else
		d->inflight_tail = q->prev;
	q->next = q->prev = NULL;
}

static void on_ares(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns *d = q->d;

	(void)timeouts;
	if (!q->completed) {
		inflight_unlink(d, q);
		if (status == ARES_EDESTRUCTION) {
			q->completed = true; /* shutting down: nobody waits any more */
			atomic_fetch_sub(&d->pending, 1);
			mem_deref(q);
		} else {
			uint32_t ttl = 0;

			if (status == ARES_SUCCESS && abuf) {
				ttl = answer_parse(d, &q->ans, abuf, alen);
			} else {
				q->ans.n = 0;
				q->ans.status = ares_to_errno(status);
				if (q->ans.status == ENOENT)
					ttl = d->cfg.negative_ttl;
			}
			cache_put(d, q->name, &q->ans, ttl);
			complete(q);
		}
	}
	mem_deref(q); /* c-ares's */
}

static void start_query(struct dns *d, struct dns_query *q)
{
	q->deadline = tmr_clock_ms() + d->cfg.timeout_ms;
	q->next = NULL;
	q->prev = d->inflight_tail;
	if (d->inflight_tail)
		d->inflight_tail->next = q;
	else
		d->inflight = q;
	d->inflight_tail = q;
	mem_ref(q); /* c-ares's, dropped in on_ares (which may run inside ares_query) */
	ares_query(d->ch, q->name, 1 /* C_IN */, (int)q->type, on_ares, q);
}

static void *resolver_main(void *arg)
{
	struct dns *d = arg;

	pthread_setname_np(pthread_self(), "sipd-dns"); /* top -H, ps -L */
	for (;;) {
		struct pollfd pfd[1 + ARES_GETSOCK_MAXNUM];
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp, maxtv = { 1, 0 };
		struct dns_query *batch;
		unsigned nfd = 1, bits;
		int timeout;
		uint64_t now;

		pthread_mutex_lock(&d->lock);
		if (d->stop) {
			pthread_mutex_unlock(&d->lock);
			break;
		}
		batch = d->queue;
		d->queue = d->queue_tail = NULL;
		pthread_mutex_unlock(&d->lock);
		while (batch) {
			struct dns_query *q = batch;

			batch = q->next;
			start_query(d, q);
		}

		pfd[0] = (struct pollfd){ .fd = d->evfd, .events = POLLIN };
		bits = (unsigned)ares_getsock(d->ch, socks, ARES_GETSOCK_MAXNUM);
		for (unsigned i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			/* ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign bit for the 16th socket: by hand */
			short ev = (short)(((bits >> i) & 1u ? POLLIN : 0) |
					   ((bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u ? POLLOUT : 0));

			if (ev)
				pfd[nfd++] = (struct pollfd){ .fd = socks[i], .events = ev };
		}
		tvp = ares_timeout(d->ch, &maxtv, &tv);
		timeout = (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000);
		if (d->inflight) {
			now = tmr_clock_ms();
			if (d->inflight->deadline <= now)
				timeout = 0;
			else if (d->inflight->deadline - now < (uint64_t)timeout)
				timeout = (int)(d->inflight->deadline - now);
		} else if (nfd == 1) {
			timeout = -1; /* nothing asked, no socket of c-ares open: a query or the stop writes evfd */
		}
		if (poll(pfd, nfd, timeout) < 0 && errno != EINTR) {
			log_err("dns: poll: %s", strerror(errno));
			usleep(10000);
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(d->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_debug("dns: eventfd read: %s", strerror(errno));
		}
		for (unsigned i = 1; i < nfd; i++) {
			ares_socket_t r = pfd[i].revents & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD;
			ares_socket_t w = pfd[i].revents & (POLLOUT | POLLERR) ? pfd[i].fd : ARES_SOCKET_BAD;

			if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
				ares_process_fd(d->ch, r, w);
		}
		ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* c-ares's own timeouts */
		/* our deadlines: the question is answered ETIMEDOUT; c-ares finishes it on its own later */
		now = tmr_clock_ms();
		while (d->inflight && d->inflight->deadline <= now) {
			struct dns_query *q = d->inflight;

			inflight_unlink(d, q);
			q->ans.status = ETIMEDOUT;
			q->ans.n = 0;
			log_info("dns: no answer for %s (type %d) within %u ms", q->name, (int)q->type,
				 d->cfg.timeout_ms);
			complete(q);
		}
	}
	return NULL;
}

/* ---- the API ---- */

int dns_query(struct dns *d, struct loop *l, const char *name, enum dns_type type, dns_h *h, void *arg,
	      struct dns_query **qp)
{
	struct dns_query *q;
	size_t len = name ? strlen(name) : 0;
	uint64_t v = 1;

	if (!d || !l || !h || !len || len >= DNS_NAME_MAX)
		return EINVAL;
	if (atomic_fetch_add(&d->pending, 1) >= d->cfg.max_queries) {
		atomic_fetch_sub(&d->pending, 1);
		return EAGAIN;
	}
	q = mem_zalloc(sizeof(*q), NULL);
	if (!q) {
		atomic_fetch_sub(&d->pending, 1);
		return ENOMEM;
	}
	q->d = d;
	q->loop = l;
	q->h = h;
	q->arg = arg;
	q->type = type;
	q->ans.type = type;
	memcpy(q->name, name, len + 1);
	if (len > 1 && q->name[len - 1] == '.')
		q->name[len - 1] = '\0'; /* "example.com." and "example.com" are one name (and one cache key) */
	if (qp) {
		q->handle = true;
		*qp = mem_ref(q);
	}
	if (cache_get(d, q->name, type, &q->ans)) {
		complete(q);
		return 0;
	}
	pthread_mutex_lock(&d->lock);
	if (d->queue_tail)
		d->queue_tail->next = q;
	else
		d->queue = q;
	d->queue_tail = q;
	pthread_mutex_unlock(&d->lock);
	if (write(d->evfd, &v, sizeof(v)) < 0)
		log_debug("dns: eventfd write: %s", strerror(errno));
	return 0;
}

int dns_new(struct dns **dp, const struct dns_config *cfg)
{
	struct ares_options opt = { 0 };
	struct dns *d;
	int err, st;

	st = ares_library_init(ARES_LIB_INIT_ALL);
	if (st != ARES_SUCCESS)
		return EIO;
	d = calloc(1, sizeof(*d));
	if (!d) {
		ares_library_cleanup();
		return ENOMEM;
	}
	d->cfg = *cfg;
	d->cfg.servers = NULL;
	if (!d->cfg.timeout_ms)
		d->cfg.timeout_ms = 3000;
	if (!d->cfg.max_queries)
		d->cfg.max_queries = 4096;
	d->evfd = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->cache_lock, NULL);
	atomic_init(&d->pending, 0);
	if (cfg->cache_size) {
		d->nbuckets = 64;
		while (d->nbuckets < cfg->cache_size && d->nbuckets < (1u << 20))
			d->nbuckets <<= 1;
		d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
		if (!d->buckets) {
			err = ENOMEM;
			goto out;
		}
	}
	/* c-ares retries on its own (a third of our budget per try, doubling); our deadline caps it all */
	opt.timeout = (int)(d->cfg.timeout_ms / 3 > 100 ? d->cfg.timeout_ms / 3 : 100);
	opt.tries = 3;
	opt.flags = ARES_FLAG_NOSEARCH;
	st = ares_init_options(&d->ch, &opt, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
	if (st != ARES_SUCCESS) {
		log_err("dns: c-ares: %s", ares_strerror(st));
		err = st == ARES_ENOMEM ? ENOMEM : EIO;
		goto out;
	}
	if (cfg->servers && cfg->servers[0]) {
		char *csv = strdup(cfg->servers), *w = csv, *r = csv;

		if (!csv) {
			err = ENOMEM;
			goto out;
		}
		for (; *r; r++) /* c-ares wants "a,b" without blanks */
			if (*r != ' ' && *r != '\t')
				*w++ = *r;
		*w = '\0';
		st = ares_set_servers_ports_csv(d->ch, csv);
		free(csv);
		if (st != ARES_SUCCESS) {
			log_err("dns: servers '%s': %s", cfg->servers, ares_strerror(st));
			err = st == ARES_ENOMEM ? ENOMEM : EINVAL;
			goto out;
		}
	}
	d->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->evfd < 0) {
		err = errno;
		goto out;
	}
	err = pthread_create(&d->thread, NULL, resolver_main, d);
	if (err)
		goto out;
	d->thread_started = true;
	*dp = d;
	return 0;
out:
	dns_free(d);
	return err;
}

void dns_free(struct dns *d)
{
	uint64_t v = 1;

	if (!d)
		return;
	if (d->thread_started) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_mutex_unlock(&d->lock);
		if (write(d->evfd, &v, sizeof(v)) < 0)
			log_debug("dns: eventfd write: %s", strerror(errno));
		pthread_join(d->thread, NULL);
	}
	/* questions never handed to c-ares, then those in flight (c-ares calls them back with EDESTRUCTION;
	 * those our deadline already answered are only dereferenced) */
	while (d->queue) {
		struct dns_query *q = d->queue;

		d->queue = q->next;
		mem_deref(q);
	}
	if (d->ch)
		ares_destroy(d->ch);
	if (d->evfd >= 0)
		close(d->evfd);
	if (d->buckets) {
		dns_cache_flush(d);
		free(d->buckets);
	}
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->cache_lock);
	free(d);
	ares_library_cleanup();
}
