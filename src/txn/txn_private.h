/* txn_private.h: the transaction and table structures, shared by the files of src/txn only. */
#ifndef SIPD_TXN_PRIVATE_H
#define SIPD_TXN_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/htab.h"
#include "base/timer.h"
#include "txn/txn.h"

#define MAGIC_COOKIE "z9hG4bK"

enum { K_BRANCH_OR_RURI, K_HOST_OR_CALLID, K_FROMTAG, K_VIA, K_METHOD, K_TOTAG, K_PARTS };

/* What identifies a server transaction (17.2.3): branch, sent-by and method with the magic cookie;
 * Request-URI, From tag, Call-ID, CSeq and top Via otherwise (RFC 2543). */
struct txn_key {
	bool cookie;
	bool is_ack;            /* only in keys built from a message: an ACK (whose To tag is the response's) */
	bool any_method;        /* only in a CANCEL's probe: 9.2 matches a transaction of any method but CANCEL */
	uint16_t port;
	uint32_t cseq;
	struct slice part[K_PARTS];
};

/* What a shard chains, first in each: a transaction, or the echo of one that has answered. */
struct tentry {
	struct htab_link link; /* first: the shard's chain, and the key's hash */
	bool echo;
};

struct txn_echo;

/* Echoes all live 64*T1 from their answer, so a shard keeps its own in that order and one timer per
 * shard ends them, instead of one per echo: a timer is a sixth of an echo's size. */
struct shard {
	pthread_mutex_t lock;
	struct htab entries;    /* of struct tentry */
	struct txn_echo *oldest, *newest;
	struct tmr sweep;       /* ends the oldest echoes, on the wheel of the loop that added to an empty list */
	struct tmr_wheel *sweep_wheel; /* while armed */
	struct txn_table *table;
};

struct txn_ctable; /* client transactions, client.c */

struct txn_table {
	struct txn_table_config cfg;
	struct shard *shards;
	unsigned nshards;
	atomic_uint live;       /* transactions, echoes apart */
	atomic_uint echoes;
	atomic_size_t held;      /* bytes of the requests and responses transactions keep (txn__held_set) */
	atomic_size_t echo_bytes; /* bytes of the echoes */
	struct txn_ctable *clients;
};

/* Puts buf (len bytes, or NULL) in *slot (a transaction's req or resp, *slot_len its length), freeing what
 * was there, and keeps the table's count of held bytes. */
void txn__held_set(struct txn *tx, char **slot, size_t *slot_len, char *buf, size_t len);
int txn__ctable_new(struct txn_ctable **cp);
void txn__ctable_free(struct txn_ctable *c);

struct txn {
	struct tentry e;        /* first */
	struct txn_table *table;
	struct txn_key key;     /* slices into keybuf */
	bool in_table;
	bool held_counted;      /* its req and resp count in the table's held bytes (owner thread only) */
	bool invite;
	bool reliable;
	enum txn_state state;
	atomic_bool final;      /* a final response was handed to txn_respond */
	atomic_bool accepted;   /* an INVITE's 2xx was: ACKs no longer match it (RFC 6026 7.1) */
	struct loop *loop;
	struct tmr tmr_retx;    /* G; a non-INVITE's 100 at T2 (RFC 4320) before its final; the TU's release */
	struct tmr tmr_end;     /* H, I, J, L */
	unsigned g_interval;
	char *resp;             /* the last response, resent on retransmissions */
	size_t resp_len;
	unsigned resp_code;
	struct tp_worker *worker;
	enum tp_proto proto;
	uint8_t lsn;            /* the listener responses leave from */
	struct tp_conn *conn;
	struct tp_addr dst;
	void *tu;
	void (*tu_destroy)(void *);
	char *req;              /* a copy of the request, when kept (txn_keep) */
	size_t req_len;
	char src_host[64];      /* where it came from: received= and rport= of the response */
	uint16_t src_port;
	uint32_t msg_len;       /* the request's length as it came: its retransmissions have it too */
	char keybuf[];          /* the key's bytes, in the same allocation */
};

/* A non-INVITE server transaction answered over UDP, for the rest of its Completed state (17.2.2:
 * Timer J, 64*T1): all that is left to do is send the final response again to a retransmission, so
 * the transaction (its TU, timers, request copy) goes and this record, a third of its size, stays:
 * the response, where it went and the key, in one allocation. The key's branch and sent-by are found in
 * the response's Via and not copied again; its other parts follow the response. Owned by its shard,
 * which ends it at expires. */
struct txn_echo {
	struct tentry e;        /* first */
	struct txn_echo *newer; /* the shard's list, in the order echoes end */
	uint64_t expires;       /* timer wheel milliseconds (each loop's wheel keeps monotonic time) */
	struct tp_worker *worker;
	struct tp_addr dst;
	uint32_t cseq;
	uint32_t msg_len;       /* the request's, as in struct txn */
	uint32_t size;          /* of this allocation, for the table's echo_bytes */
	uint16_t resp_len;      /* from a datagram: under 64 kB with the key's parts */
	uint16_t port;
	uint16_t part_off[K_PARTS];
	uint16_t part_len[K_PARTS];
	uint8_t proto;          /* enum tp_proto */
	uint8_t lsn;            /* as in struct txn */
	bool cookie;
	char data[];            /* the response, then the key's parts it does not contain */
};

#endif
