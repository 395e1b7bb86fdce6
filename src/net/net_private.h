/* net_private.h: private to src/net: the structures transport.c, udp.c and tcp.c share. */
#ifndef SIPD_NET_PRIVATE_H
#define SIPD_NET_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/htab.h"
#include "base/timer.h"
#include "net/loop.h"
#include "net/transport.h"

#define TP_UDP_BATCH 32           /* datagrams per recvmmsg */
#define TP_UDP_BUFSZ 65536        /* above any UDP payload, so MSG_TRUNC only flags the impossible */
#define TP_TCP_SCRATCH 65536      /* per-worker read buffer for connections with nothing pending */
#define TP_TCP_OUT_MAX (1u << 20) /* unsent bytes a connection may hold before it is closed */
#define TP_TCP_OUT_SHARE (64u << 10) /* unsent bytes of all connections: tcp_max_conns times this */

#define TP_LISTEN_MAX 16          /* listeners: tp_config.listen, tp_worker.socks */
#define TP_WILD_MAX (TP_LSN_ANY - TP_LISTEN_MAX) /* addresses of wildcard UDP listeners, as listeners */

/* One listening socket of one worker. */
struct tp_sock {
	struct tp_worker *w;
	int fd;
	enum tp_proto proto;
	bool wild;            /* UDP bound to 0.0.0.0 or [::]: datagrams name the address they came to */
	struct tp_addr local; /* as bound */
};

/* One address of the host at a wildcard UDP listener, which the rest of sipd names as the listener
 * TP_LISTEN_MAX + its place in tp.wild: what answers a datagram that came to it leaves from it
 * (IP_PKTINFO), as from a listener bound to it. Added once, never removed. */
struct tp_wild {
	uint8_t sock;         /* the wildcard listener */
	struct tp_addr addr;  /* with the listener's port */
};

struct tp_udp_batch; /* udp.c */

struct tp_worker {
	struct tp *tp;
	unsigned idx;
	pthread_t thread;
	bool started;                /* thread running: stop and join it */
	struct loop *loop;
	struct tp_sock socks[TP_LISTEN_MAX]; /* one per listener, same order as cfg.listen */
	unsigned nsocks;
	int udp4, udp6;              /* sockets to send UDP from, per family; -1 when none */
	struct tp_udp_batch *udp;    /* recvmmsg buffers, allocated once */
	char *scratch;               /* TP_TCP_SCRATCH bytes */
	struct tp_conn *conns;       /* open connections, owner thread only */
	int spare_fd;                /* given up when accept hits EMFILE, to shed one connection */
};

/* Connections by peer address, for sends that name only a destination. */
struct tp_conn_table {
	pthread_mutex_t lock;
	struct htab map;             /* of struct tp_conn, by peer address */
	uint32_t seed;               /* random: peers choose their ports, keep them off one chain */
};

struct tp {
	struct tp_config cfg;
	size_t max_msg;              /* cfg.max_msg_size, or a default */
	struct tp_worker *workers;
	unsigned nworkers;
	atomic_bool stopping;
	atomic_uint tcp_inbound;     /* accepted connections open, against cfg.tcp_max_conns */
	atomic_uint tcp_outbound;    /* connections sipd opened, against cfg.tcp_max_conns too */
	atomic_size_t tcp_queued;    /* unsent bytes of all connections, against TP_TCP_OUT_SHARE each */
	struct tp_conn_table conns;
	pthread_mutex_t wild_lock;   /* adding to wild */
	atomic_uint nwild;           /* wild's entries, published: read without the lock */
	struct tp_wild wild[TP_WILD_MAX];
};

/* A TCP connection. The owner worker reads it, runs its timer and closes it; any thread may
 * write to it under lock. */
struct tp_conn {
	struct htab_link link;        /* first: table chain and hash, under the table lock */
	struct tp_worker *w;          /* owner */
	struct tp_conn *prev, *next;  /* owner's list */
	bool in_table;                /* under the table lock */
	struct tp_addr peer, local;
	bool inbound;                 /* counts against tcp_max_conns */
	/* owner thread only */
	char *ibuf;                   /* a partial message carried to the next read; NULL when none */
	size_t ilen, isize;
	struct tmr idle;              /* idle timeout, then the linger timeout */
	bool lingering;               /* output done and FIN sent: reading only to avoid a RST */
	uint64_t partial_since;       /* when the unfinished message in ibuf began (loop ms); 0: none */
	/* under lock */
	pthread_mutex_t lock;
	int fd;                       /* -1 once closed */
	uint32_t events;              /* what epoll waits for */
	bool connecting;              /* outbound, connect() not finished */
	int err;                      /* why it fails: connect() (SO_ERROR), the peer closed or reset it, a write or
	                               * the framing failed; told to cfg.unreachable as it is dropped. 0 when sipd
	                               * closes it on purpose (idle, after a 413, shutdown) */
	bool closing;                 /* close once the output is written */
	bool peer_done;               /* the peer's FIN came: nothing more is read, what is owed it still written */
	bool kill;                    /* close at once, dropping output */
	char *obuf;
	size_t ooff, olen, osize;
	atomic_uint_least64_t tx_ms;  /* last write, monotonic ms (any thread): traffic for the idle timer */
	atomic_uint_least64_t keep_ms; /* open at least until then, monotonic ms, idle or not: the latest of
	                                * keep_any and the keepers' (tp_conn_keep) */
	struct tp_keeper {
		uint32_t holder;
		uint64_t until;       /* monotonic ms */
	} keepers[TP_CONN_KEEPERS];   /* under lock */
	unsigned nkeepers;            /* under lock */
	uint64_t keep_any;            /* under lock: holder 0's, and those past TP_CONN_KEEPERS: only lengthens */
};

/* The worker running on this thread, or NULL. */
extern _Thread_local struct tp_worker *tp__self;

struct tp *tp__default(void);
/* w, or when NULL the calling thread's worker of tp, else tp's worker 0: the worker a call that names
 * none runs its sockets from. */
struct tp_worker *tp__worker_in(struct tp *tp, struct tp_worker *w);
socklen_t tp__addr_len(const struct tp_addr *a);

int tp__udp_init(struct tp_worker *w);
void tp__udp_free(struct tp_worker *w);
void tp__udp_recv_h(int fd, uint32_t events, void *arg);
int tp__udp_send(struct tp_worker *w, uint8_t lsn, const struct tp_addr *dst, const char *buf, size_t len);
/* The listener of wildcard UDP listener sock at local (an address a datagram came to: known local, or
 * else checked to be the host's before it is added); sock itself when local is not the host's or the
 * table is full. Any thread. */
uint8_t tp__wild_lsn(struct tp *tp, uint8_t sock, const struct tp_addr *local, bool known_local);
/* The address listener lsn stands for at its wildcard socket, or NULL when lsn is a socket's own. */
const struct tp_wild *tp__wild_of(struct tp *tp, uint8_t lsn);
/* The index of lsn's socket in tp_worker.socks and tp_config.listen. */
uint8_t tp__lsn_sock(struct tp *tp, uint8_t lsn);

/* tcp_table.c: connections by peer address; any thread. lookup returns a reference or NULL. */
int tp__tcp_table_init(struct tp *tp);
void tp__tcp_table_free(struct tp *tp);
void tp__tcp_table_insert(struct tp *tp, struct tp_conn *c);
void tp__tcp_table_remove(struct tp *tp, struct tp_conn *c);
struct tp_conn *tp__tcp_table_lookup(struct tp *tp, const struct tp_addr *peer);

void tp__tcp_accept_h(int fd, uint32_t events, void *arg);
int tp__tcp_send(struct tp *tp, struct tp_worker *w, struct tp_conn *conn, const struct tp_addr *dst,
		 const char *buf, size_t len);
/* Owner thread, after its loop stopped: closes every connection it owns. */
void tp__tcp_worker_close(struct tp_worker *w);

/* tcp.c, for tcp_out.c. Owner thread: wraps a connected or connecting socket, taking fd in every case. */
/* Takes one of max connection slots counted by *n (accepted or opened: tcp_inbound, tcp_outbound);
 * false when all are taken. max 0: no limit. A slot taken is given back with atomic_fetch_sub. */
static inline bool tp__conn_slot_take(atomic_uint *n, unsigned max)
{
	if (atomic_fetch_add(n, 1) >= max && max) {
		atomic_fetch_sub(n, 1);
		return false;
	}
	return true;
}
int tp__conn_new(struct tp_worker *w, int fd, const struct tp_addr *peer, bool inbound, bool connecting,
		 struct tp_conn **cp);
/* Any thread: have the owner act on the connection's state (closing, kill) soon. */
void tp__conn_poke(struct tp_conn *c);
/* Any thread, after a keep went down (tp_conn_keep): the owner looks at the idle timer again. */
void tp__conn_keep_lowered(struct tp_conn *c);
/* Under c's lock: the connection failed (err) and is to be closed at once; the first reason counts. */
void tp__conn_fail(struct tp_conn *c, int err);
/* tcp_out.c, for tcp.c. Any thread: writes or queues a whole message; ENOTCONN once closing. */
int tp__conn_write(struct tp_conn *c, const char *buf, size_t len);
/* Owner thread, on EPOLLOUT: completes a connect, writes what is queued. */
void tp__conn_flush(struct tp_conn *c);

#endif
