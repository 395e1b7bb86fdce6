/* udp.c: UDP receive in recvmmsg batches into buffers allocated once per worker, and send. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <linux/errqueue.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "base/log.h"
#include "net/net_private.h"

#define UDP_ROUNDS 4 /* batches per wake-up; epoll is level-triggered and calls again */
#define UDP_OUT_SLAB (128 * 1024)

/* A datagram's source address as a control message (IP_PKTINFO, IPV6_PKTINFO), for one sent from a
 * wildcard socket: the address its request came to, not the one routing would pick. */
union udp_src_ctl {
	char b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	struct cmsghdr align;
};

struct tp_udp_batch {
	struct mmsghdr hdr[TP_UDP_BATCH];
	struct iovec iov[TP_UDP_BATCH];
	struct sockaddr_storage name[TP_UDP_BATCH];
	union {
		char b[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} ctl[TP_UDP_BATCH];
	char data[TP_UDP_BATCH][TP_UDP_BUFSZ];
	/* Answers to a received batch, sent together with one sendmmsg when the batch is done. */
	struct {
		bool active;             /* inside a receive batch on this worker */
		int fd;
		unsigned n;
		size_t used;
		struct mmsghdr hdr[TP_UDP_BATCH];
		struct iovec iov[TP_UDP_BATCH];
		struct sockaddr_storage dst[TP_UDP_BATCH];
		union udp_src_ctl ctl[TP_UDP_BATCH]; /* the source address, for a wildcard listener's */
		char data[UDP_OUT_SLAB];
	} out;
};

static void udp_post_begin(void *arg);
static void udp_post_end(void *arg);

/* The lengths and flags the kernel overwrites in the headers of the datagrams it fills. */
static void udp_batch_rearm(struct tp_udp_batch *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct msghdr *m = &b->hdr[i].msg_hdr;

		m->msg_namelen = sizeof(b->name[i]);
		m->msg_controllen = sizeof(b->ctl[i].b);
		m->msg_flags = 0;
	}
}

/* The receive headers' pointers, set once: after a batch only udp_batch_rearm's part changes. */
static void udp_batch_init(struct tp_udp_batch *b)
{
	for (unsigned i = 0; i < TP_UDP_BATCH; i++) {
		struct msghdr *m = &b->hdr[i].msg_hdr;

		b->iov[i].iov_base = b->data[i];
		b->iov[i].iov_len = TP_UDP_BUFSZ;
		m->msg_name = &b->name[i];
		m->msg_iov = &b->iov[i];
		m->msg_iovlen = 1;
		m->msg_control = b->ctl[i].b;
	}
	udp_batch_rearm(b, TP_UDP_BATCH);
}

int tp__udp_init(struct tp_worker *w)
{
	w->udp = calloc(1, sizeof(*w->udp));
	if (!w->udp)
		return ENOMEM;
	udp_batch_init(w->udp);
	loop_set_post_batch(w->loop, udp_post_begin, udp_post_end, w->udp);
	return 0;
}

void tp__udp_free(struct tp_worker *w)
{
	free(w->udp);
	w->udp = NULL;
}

/* Where the datagram arrived: the bound address, with the destination from PKTINFO when the
 * socket is bound to a wildcard. */
static void udp_local(struct tp_addr *local, const struct tp_sock *s, struct msghdr *m)
{
	*local = s->local;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			local->u.in.sin_addr = pi.ipi_addr;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			local->u.in6.sin6_addr = pi.ipi6_addr;
		}
	}
}

/* CRLF-only datagrams are keep-alives (RFC 5626 3.5.1 uses STUN, but many UAs send bare CRLF). */
static bool udp_is_keepalive(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

static void udp_deliver(struct tp_sock *s, struct tp_udp_batch *b, unsigned i)
{
	struct tp *tp = s->w->tp;
	struct msghdr *m = &b->hdr[i].msg_hdr;
	struct tp_msg msg;

	if (udp_is_keepalive(b->data[i], b->hdr[i].msg_len))
		return;
	msg.buf = b->data[i];
	msg.len = b->hdr[i].msg_len;
	msg.proto = TP_UDP;
	msg.src.len = m->msg_namelen < sizeof(msg.src.u) ? m->msg_namelen : sizeof(msg.src.u);
	memcpy(&msg.src.u, &b->name[i], msg.src.len);
	udp_local(&msg.local, s, m);
	msg.lsn = (uint8_t)(s - s->w->socks);
	if (s->wild)
		msg.lsn = tp__wild_lsn(tp, msg.lsn, &msg.local, true);
	msg.conn = NULL;
	msg.worker = s->w;
	msg.oversize = (m->msg_flags & MSG_TRUNC) || msg.len > tp->max_msg;
	msg.unframed = false;
	tp->cfg.recv(&msg, tp->cfg.arg);
}

/* With IP_RECVERR, an ICMP error for an earlier datagram (to anyone) fails the socket's next send
 * once, without sending: that send is tried again. */
static bool udp_icmp_errno(int e)
{
	return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH;
}

/* Fills ctl with from's address as the source of a datagram; the length of the control data. */
static size_t udp_src_ctl(union udp_src_ctl *ctl, const struct tp_wild *from)
{
	bool v6 = from->addr.u.sa.sa_family == AF_INET6;
	struct in6_pktinfo pi6 = { .ipi6_addr = from->addr.u.in6.sin6_addr };
	struct in_pktinfo pi4 = { .ipi_spec_dst = from->addr.u.in.sin_addr };
	size_t n = v6 ? sizeof(pi6) : sizeof(pi4);
	struct cmsghdr *c = &ctl->align;

	memset(ctl, 0, sizeof(*ctl));
	c->cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
	c->cmsg_type = v6 ? IPV6_PKTINFO : IP_PKTINFO;
	c->cmsg_len = CMSG_LEN(n);
	memcpy(CMSG_DATA(c), v6 ? (const void *)&pi6 : (const void *)&pi4, n);
	return CMSG_SPACE(n);
}

/* After EINVAL: a datagram whose source address is the host's no more goes from where routing says.
 * Whether m had one to drop (else the error is another's). */
static bool udp_src_drop(struct msghdr *m)
{
	if (!m->msg_controllen)
		return false;
	m->msg_control = NULL;
	m->msg_controllen = 0;
	return true;
}

/* Sends what the batch queued: one system call for all the answers of a batch. */
static void udp_out_flush(struct tp_udp_batch *b)
{
	unsigned off = 0, stale = 0;

	while (off < b->out.n) {
		int sent = sendmmsg(b->out.fd, b->out.hdr + off, b->out.n - off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (sent < 0) {
			if (errno == EINTR || (udp_icmp_errno(errno) && stale++ < 4) ||
			    (errno == EINVAL && udp_src_drop(&b->out.hdr[off].msg_hdr)))
				continue;
			log_debug("udp: sendmmsg: %s", strerror(errno));
			off++; /* drop that datagram, as a failed sendto would; keep the others */
			continue;
		}
		off += (unsigned)sent;
	}
	b->out.n = 0;
	b->out.used = 0;
}

/* Jobs posted to the worker (answers to REGISTERs the writer has made durable, DNS results) send
 * like a receive batch: queued, then one sendmmsg. */
static void udp_post_begin(void *arg)
{
	struct tp_udp_batch *b = arg;

	b->out.active = true;
}

static void udp_post_end(void *arg)
{
	struct tp_udp_batch *b = arg;

	b->out.active = false;
	udp_out_flush(b);
}

/* Queues an answer while a receive batch runs on this worker; false when it must go out directly. from:
 * its source address at a wildcard socket, or NULL. */
static bool udp_out_queue(struct tp_udp_batch *b, int fd, const struct tp_wild *from, const struct tp_addr *dst,
			  const char *buf, size_t len)
{
	unsigned i;

	if (!b->out.active)
		return false;
	if (b->out.n && (b->out.fd != fd || b->out.n == TP_UDP_BATCH || len > UDP_OUT_SLAB - b->out.used))
		udp_out_flush(b);
	if (len > UDP_OUT_SLAB)
		return false;
	i = b->out.n++;
	b->out.fd = fd;
	memcpy(b->out.data + b->out.used, buf, len);
	memcpy(&b->out.dst[i], &dst->u, tp__addr_len(dst));
	b->out.iov[i] = (struct iovec){ b->out.data + b->out.used, len };
	b->out.hdr[i].msg_hdr = (struct msghdr){ .msg_name = &b->out.dst[i], .msg_namelen = tp__addr_len(dst),
						 .msg_iov = &b->out.iov[i], .msg_iovlen = 1 };
	if (from) {
		b->out.hdr[i].msg_hdr.msg_control = b->out.ctl[i].b;
		b->out.hdr[i].msg_hdr.msg_controllen = udp_src_ctl(&b->out.ctl[i], from);
	}
	b->out.used += len;
	return true;
}

/* The ICMP error of one datagram sipd sent: where it was going, and why it cannot get there. */
static bool udp_icmp_error(struct msghdr *m, int *err)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		struct sock_extended_err ee;

		if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
		      (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)))
			continue;
		memcpy(&ee, CMSG_DATA(c), sizeof(ee));
		if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6)
			return false;
		*err = (int)ee.ee_errno;
		return udp_icmp_errno(*err);
	}
	return false;
}

/* Drains the error queue (RFC 3261 8.1.3.1 and 17.1: an ICMP unreachable is a transport error, the
 * client transactions waiting on that destination end as 503 without waiting for Timer B or F). */
static void udp_errors(struct tp_sock *s, int fd)
{
	for (unsigned i = 0; i < TP_UDP_BATCH; i++) {
		union {
			char b[512];
			struct cmsghdr align;
		} ctl;
		char data[64];
		struct iovec iov = { data, sizeof(data) };
		struct tp_addr dst;
		struct msghdr m = { .msg_name = &dst.u, .msg_namelen = sizeof(dst.u), .msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
		int err = 0;

		if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			return;
		dst.len = m.msg_namelen;
		if (udp_icmp_error(&m, &err) && m.msg_namelen && s->w->tp->cfg.unreachable)
			s->w->tp->cfg.unreachable(TP_UDP, &dst, err, false, s->w->tp->cfg.arg);
	}
}

void tp__udp_recv_h(int fd, uint32_t events, void *arg)
{
	struct tp_sock *s = arg;
	struct tp_udp_batch *b = s->w->udp;

	if (events & EPOLLERR)
		udp_errors(s, fd);
	for (unsigned round = 0; round < UDP_ROUNDS; round++) {
		int n;

		n = recvmmsg(fd, b->hdr, TP_UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			udp_batch_rearm(b, TP_UDP_BATCH); /* whatever the kernel left in the headers */
			if (errno == EINTR)
				continue;
			/* an ICMP error is reported once here too: the error queue has the details */
			if (udp_icmp_errno(errno)) {
				udp_errors(s, fd);
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("udp: recvmmsg: %s", strerror(errno));
			return;
		}
		b->out.active = true;
		for (int i = 0; i < n; i++)
			udp_deliver(s, b, (unsigned)i);
		b->out.active = false;
		udp_batch_rearm(b, (unsigned)n);
		udp_out_flush(b);
		if (n < TP_UDP_BATCH)
			return;
	}
}

/* Listener lsn's socket when it is a UDP one of dst's family, else the family's first; *from: the
 * address lsn stands for at a wildcard socket, else NULL. */
static int udp_fd_for(const struct tp_worker *w, uint8_t lsn, const struct tp_addr *dst,
		      const struct tp_wild **from)
{
	const struct tp_wild *wl = lsn >= TP_LISTEN_MAX ? tp__wild_of(w->tp, lsn) : NULL;

	*from = NULL;
	if (wl)
		lsn = wl->sock;
	if (lsn < w->nsocks) {
		const struct tp_sock *s = &w->socks[lsn];

		if (s->fd >= 0 && s->proto == TP_UDP && s->local.u.sa.sa_family == dst->u.sa.sa_family) {
			*from = wl;
			return s->fd;
		}
	}
	return dst->u.sa.sa_family == AF_INET6 ? w->udp6 : w->udp4;
}

/* A datagram sent at once (not queued for the batch's sendmmsg). */
static int udp_send_now(int fd, const struct tp_wild *from, const struct tp_addr *dst, const char *buf, size_t len)
{
	union udp_src_ctl ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { .msg_name = (void *)&dst->u.sa, .msg_namelen = tp__addr_len(dst), .msg_iov = &iov,
			    .msg_iovlen = 1 };

	if (from) {
		m.msg_control = ctl.b;
		m.msg_controllen = udp_src_ctl(&ctl, from);
	}
	for (unsigned stale = 0;;) {
		if (sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR && !(udp_icmp_errno(errno) && stale++ < 4) && !(errno == EINVAL && udp_src_drop(&m)))
			return errno;
	}
}

int tp__udp_send(struct tp_worker *w, uint8_t lsn, const struct tp_addr *dst, const char *buf, size_t len)
{
	const struct tp_wild *from;
	int fd = udp_fd_for(w, lsn, dst, &from);

	if (fd < 0)
		return EAFNOSUPPORT;
	if (tp__self == w && udp_out_queue(w->udp, fd, from, dst, buf, len))
		return 0;
	return udp_send_now(fd, from, dst, buf, len);
}
