/* transport.h: sipd's transports (UDP and TCP now, TLS and WebSocket later) behind one interface, run by worker threads. */
#ifndef SIPD_NET_TRANSPORT_H
#define SIPD_NET_TRANSPORT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/slice.h"

struct loop;
struct tp;        /* the set of workers and listeners */
struct tp_worker; /* one thread: its loop, its SO_REUSEPORT sockets */
struct tp_conn;   /* a stream connection; refcounted with mem_ref/mem_deref */

enum tp_proto { TP_UDP = 0, TP_TCP = 1 };

/* A listener by its place in tp_config.listen (the same on every worker): the socket a datagram arrived
 * on, from which what answers it, or goes on with what it began, leaves. A NAT lets in only what comes
 * from where its client sent to (RFC 3581 4), and a peer that filters by address expects the port it
 * talks to. Each address of the host that datagrams come to at a wildcard UDP listener (0.0.0.0, [::])
 * is a listener of its own, numbered after tp_config.listen: what leaves from it names that address as
 * its source (IP_PKTINFO), not the one routing would pick. TP_LSN_ANY: none in particular, the first
 * UDP listener of the destination's family. */
#define TP_LSN_ANY 0xff

struct tp_addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6; /* IPv4 and IPv6 only: no sockaddr_storage (128 bytes) in every txn */
	} u;
	socklen_t len;
};

/* One received message: a datagram, or one framed message of a stream. Valid during the callback only. */
struct tp_msg {
	char *buf;
	size_t len;
	enum tp_proto proto;
	struct tp_addr src;      /* the peer */
	struct tp_addr local;    /* where it arrived */
	uint8_t lsn;             /* UDP: the listener it arrived on; TP_LSN_ANY over a stream (its connection is the way back) */
	struct tp_conn *conn;    /* stream only, borrowed: mem_ref it to keep it */
	struct tp_worker *worker;
	bool oversize;           /* stream: framing said too large; buf holds what arrived, the connection closes after the callback
	                          * (once what the callback sent is written). UDP: longer than max_msg_size (or truncated). */
	bool unframed;           /* stream: framing cannot tell where this message ends (TP_FRAME_BAD); buf holds what
	                          * arrived, to answer from; the connection closes after the callback, as for oversize */
};

/* Stream framing, given by the layer above (net knows no SIP): the length of the first complete message
 * in buf, 0 when more bytes are needed, TP_FRAME_BAD when the bytes cannot be a message,
 * TP_FRAME_TOO_BIG when the message will exceed max. */
#define TP_FRAME_BAD (-1)
#define TP_FRAME_TOO_BIG (-2)
typedef long (tp_frame_h)(const char *buf, size_t len, size_t max);
typedef void (tp_recv_h)(struct tp_msg *msg, void *arg);
typedef void (tp_worker_h)(struct tp_worker *w, void *arg);

struct tp_listen {
	enum tp_proto proto;
	struct tp_addr addr;
	struct tp_addr advertise; /* the address sipd names itself by at this listener (behind a 1:1 NAT: its
	                           * public one), in Via and Record-Route; len 0: addr as bound */
};

struct tp_config {
	struct tp_listen listen[16];
	unsigned nlisten;
	unsigned workers;            /* threads; 0 = one per core */
	size_t max_msg_size;         /* largest message accepted on any transport */
	unsigned tcp_max_conns;      /* over it, new connections are accepted and closed at once */
	unsigned tcp_idle_timeout_s; /* a connection with no traffic for this long is closed */
	unsigned tcp_keepalive_s;    /* TCP keep-alive probes after this much silence (SO_KEEPALIVE): a peer
	                              * gone without a FIN is found out, a NAT keeps the mapping; 0: none */
	unsigned tcp_msg_timeout_ms; /* a message begun must end within this, however its bytes trickle in
	                              * (0: 32 000, 64*T1 at the default T1), or the connection is closed */
	tp_frame_h *frame;
	tp_recv_h *recv;
	tp_worker_h *worker_start;   /* optional, runs on each worker thread before its loop */
	tp_worker_h *worker_stop;    /* optional, runs on each worker thread after its loop */
	void (*stopped)(struct tp *tp, void *arg); /* optional: on the stopping thread, once every worker is joined, before the loops are freed */
	/* optional: peer cannot be reached over proto (err): an outbound TCP connection could not be set
	 * up (refused, unreachable, timed out), or an ICMP error came back for a UDP datagram sent to peer;
	 * lost: a TCP connection to peer that was up went away under sipd (the peer closed or reset it, a
	 * write failed, its bytes could not be framed). TCP: told on the owner worker as the connection is
	 * dropped; what was queued on it is lost. Not for connections sipd closes itself (idle, after a 413). */
	void (*unreachable)(enum tp_proto proto, const struct tp_addr *peer, int err, bool lost, void *arg);
	void *arg;
};

/* Binds every listener on every worker (SO_REUSEPORT) and starts the threads. */
int tp_start(struct tp **tpp, const struct tp_config *cfg);
/* Stops and joins all workers, closes everything. Not from a worker thread; no tp_* call may race
 * it or follow it, though a connection reference still held may be mem_deref'd afterwards. */
void tp_stop(struct tp *tp);
/* Thread-safe. UDP: from the worker's socket bound to the same family. TCP: on conn when given and open,
 * else on a connection to dst (reused or newly opened, non-blocking). 0 or an errno. A conn whose peer
 * has closed its side (FIN) is still written to when dst is that peer itself or NULL, not when dst
 * names another address: a client that closed is reached where its Via says it listens (18.2.2).
 * w NULL: the calling worker, else worker 0 (of the transport started last when conn is NULL too).
 * TCP output a peer does not read is queued up to 1 MiB; beyond that the connection is closed
 * (ENOBUFS). A connection that is closing answers ENOTCONN. A new connection is opened by its
 * owner worker; from another thread the send is queued to it and returns 0 before connecting. */
int tp_send(struct tp_worker *w, enum tp_proto proto, struct tp_conn *conn, const struct tp_addr *dst,
	    const char *buf, size_t len);
/* tp_send from listener lsn over UDP: its socket when it is a UDP listener of dst's family, else the
 * family's first as for tp_send. TCP: as tp_send (a connection is its own path back). */
int tp_send_from(struct tp_worker *w, uint8_t lsn, enum tp_proto proto, struct tp_conn *conn,
		 const struct tp_addr *dst, const char *buf, size_t len);
/* The listener of proto bound to local, or one that advertises local, or, at a wildcard UDP listener of
 * its family and port, the one that stands for that address of the host (as tp_msg.lsn names it for a
 * datagram that came there; the wildcard listener itself when local is not the host's); TP_LSN_ANY when
 * none. w NULL: as for tp_send. */
uint8_t tp_lsn_of(struct tp_worker *w, enum tp_proto proto, const struct tp_addr *local);
/* Whether a (its port aside) is an address of the host that a datagram came to at a wildcard UDP
 * listener, or that tp_lsn_of found to be the host's there: one of sipd's own, though the host may have
 * gained it after sipd started (a floating address moved in). w NULL: as for tp_send. Thread-safe. */
bool tp_addr_seen(struct tp_worker *w, const struct tp_addr *a);
/* Whether lsn is the listener UDP datagrams of that address family leave from when none is named (as
 * tp_send sends): what came through it needs no record of its listener. w NULL: as for tp_send. */
bool tp_lsn_is_default(struct tp_worker *w, uint8_t lsn, int family);
/* The address sipd names itself by for what arrived at local (or leaves from there): the advertised
 * address of the listener local is, into out, and true; false when it advertises none. */
bool tp_advertised(struct tp_worker *w, const struct tp_addr *local, struct tp_addr *out);
/* The address sipd sends to dst from over proto, as its Via and Record-Route name it (a request that
 * arrived over IPv4 and goes on over IPv6 names sipd's IPv6 address): the first listener of dst's
 * address family and of proto (else of the other transport), as it advertises itself, else as bound;
 * for a wildcard one (0.0.0.0, [::]), the source address the kernel's routing picks for dst, with the
 * listener's port. 0, or
 * EAFNOSUPPORT when sipd has no listener of dst's family. w NULL: as for tp_send. Thread-safe. */
int tp_local_for(struct tp_worker *w, enum tp_proto proto, const struct tp_addr *dst, struct tp_addr *out);
/* Whether a TCP connection with peer stands, accepted or opened and not closing: the flow a phone
 * registered over, which is how a phone that listens for no connection of its own is reached.
 * w NULL: as for tp_send. Thread-safe. */
bool tp_conn_standing(struct tp_worker *w, const struct tp_addr *peer);
/* Keeps the connection open, traffic or not, until the latest time any holder asked for: a phone
 * registered over it is reached over it while its registration lasts (Kamailio's tcp_persistent_flag).
 * holder names who asks (the registrar: a hash of the AOR, so that one PBX's lines over one connection
 * keep it each for itself); seconds from now replaces that holder's time, and 0 lets its hold go (an
 * un-REGISTER: the idle timeout applies again once no one holds it). Holder 0, and any holder past the
 * first TP_CONN_KEEPERS, only ever lengthens a common time. Thread-safe; NULL is ignored. */
#define TP_CONN_KEEPERS 8
void tp_conn_keep(struct tp_conn *c, uint32_t holder, unsigned seconds);
/* tp_conn_keep on the standing connection with peer, if any: the registrar lets go of a phone's flow
 * when its bindings end through a REGISTER that came another way (over UDP, a new connection). */
void tp_conn_keep_at(struct tp_worker *w, const struct tp_addr *peer, uint32_t holder, unsigned seconds);
/* Closes once pending output is written (e.g. after a 413 over TCP). Thread-safe. */
void tp_conn_close(struct tp_conn *c);
struct loop *tp_worker_loop(struct tp_worker *w);
unsigned tp_worker_index(const struct tp_worker *w);
unsigned tp_worker_count(const struct tp *tp);
struct tp_worker *tp_worker_at(struct tp *tp, unsigned i);
/* Parses "127.0.0.1:5060", "[::1]:5060", "0.0.0.0" (port defaults to def_port). 0 or EINVAL. */
int tp_addr_parse(struct tp_addr *a, const char *s, unsigned short def_port);
/* A numeric host as a URI or Via writes it ("1.2.3.4", "[::1]") and a port. 0, or EINVAL for anything
 * else (a host name). Without stdio: it runs for every request sipd forwards. */
int tp_addr_set(struct tp_addr *a, struct slice host, unsigned short port);
/* "1.2.3.4:5060" / "[::1]:5060" into buf; returns buf. */
char *tp_addr_str(const struct tp_addr *a, char *buf, size_t n);
/* Host part only ("1.2.3.4", "::1") and port. */
char *tp_addr_host(const struct tp_addr *a, char *buf, size_t n);
/* Whether a is a wildcard address (0.0.0.0 or ::). */
bool tp_addr_is_any(const struct tp_addr *a);
unsigned short tp_addr_port(const struct tp_addr *a);
bool tp_addr_eq(const struct tp_addr *a, const struct tp_addr *b);
/* A hash of address and port that agrees with tp_addr_eq. */
uint32_t tp_addr_hash(const struct tp_addr *a, uint32_t seed);
const char *tp_proto_name(enum tp_proto p); /* "UDP", "TCP" */

#endif
