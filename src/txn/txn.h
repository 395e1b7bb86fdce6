/* txn.h: server transactions (RFC 3261 17.2): matching, the INVITE and non-INVITE state machines with
 * timers G, H, I, J, retransmission of the last response, and a sharded table safe across workers. */
#ifndef SIPD_TXN_TXN_H
#define SIPD_TXN_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/transport.h"
#include "sip/msg.h"

struct txn;       /* refcounted (mem_ref / mem_deref) */
struct txn_table;
struct loop;

/* TXN_ACCEPTED: an INVITE that sent a 2xx, until Timer L (RFC 6026 7.1). */
enum txn_state { TXN_TRYING, TXN_PROCEEDING, TXN_COMPLETED, TXN_CONFIRMED, TXN_ACCEPTED, TXN_TERMINATED };

struct txn_timers {
	unsigned t1, t2, t4; /* milliseconds; RFC 3261 defaults 500, 4000, 5000 */
};

/* How a transaction sends: the transport layer in sipd, a capture in unit tests. */
typedef int (txn_send_h)(struct txn *t, const char *buf, size_t len, void *arg);
/* Told once when a transaction ends (for the TU's bookkeeping), with why. */
typedef void (txn_end_h)(struct txn *t, const char *why, void *arg);
/* How the response of a transaction already ended is sent again (see txn_server_match): the transport
 * layer in sipd, a capture in unit tests. */
typedef int (txn_resend_h)(struct tp_worker *w, uint8_t lsn, enum tp_proto proto, const struct tp_addr *dst,
			   const char *buf, size_t len, void *arg);

/* A 2xx that an Accepted INVITE client transaction matched (RFC 6026 8.4), for its TU to pass on: on
 * the thread that received it. */
typedef void (txn_2xx_h)(const struct sip_msg *resp, void *arg);

struct txn_table_config {
	unsigned shards;         /* power of two; 0 = 1024 */
	unsigned max_live;       /* live transactions over which txn_server_new refuses with EAGAIN; 0 = no limit */
	unsigned max_echoes;     /* echoes (see txn_server_match) kept at most; past it an answered transaction
				  * stays whole until Timer J, counted in max_live. 0 = no limit */
	size_t max_held;         /* bytes of requests and responses live transactions keep (server and
				  * client, and what their TU holds with txn_table_hold), over which
				  * txn_server_new refuses with EAGAIN too, txn_client_send and
				  * txn_table_hold with ENOBUFS; 0 = no limit */
	size_t max_echo_bytes;   /* bytes of echoes, past which an answered transaction stays whole, as past
				  * max_echoes; 0 = no limit */
	struct txn_timers timers;
	txn_send_h *send;
	txn_end_h *end;          /* optional */
	txn_resend_h *resend;    /* NULL: tp_send */
	txn_2xx_h *accepted_2xx; /* optional; NULL: such a 2xx is dropped */
	bool single_thread;      /* unit tests: every call comes from the thread that advances the timers */
	const char *server_name; /* Server header of every response built here; NULL for none */
	void *arg;
};

int txn_table_new(struct txn_table **tp, const struct txn_table_config *cfg);
/* Terminates every transaction and frees the table. Only once no worker runs. */
void txn_table_free(struct txn_table *t);
/* Transactions alive, counting echoes (those only absorbing retransmissions, see txn_server_match). */
unsigned txn_table_live(const struct txn_table *t);

/* Where a message belongs: the existing server transaction of a request (17.2.3, including the
 * RFC 2543 rules when the branch lacks the magic cookie), with a reference, or NULL.
 * ACK matches the INVITE transaction it acknowledges; CANCEL matches its own transaction.
 * A non-INVITE transaction that answered over UDP lives on until Timer J only as its key and final
 * response (the TU and the request are gone): a retransmission of its request gets that response again
 * here (if it has the answered request's length: see txn_server_same_request), and NULL comes back
 * with *absorbed set. */
struct txn *txn_server_match(struct txn_table *t, const struct sip_msg *req, bool *absorbed);
/* Whether req, matched to tx, can be its request again: a retransmission is the same bytes
 * (17.1.1.2), so at least the same length. One that is not must not have the stored answer sent again:
 * a small request from anywhere would reflect a large answer (one with a 60 kB Via list) at whom the
 * answer's Via names, as often as it is sent. */
bool txn_server_same_request(const struct txn *tx, const struct sip_msg *req);
/* The transaction a CANCEL cancels (9.2: of any method but CANCEL; in practice an INVITE), with a
 * reference, or NULL. NULL with *answered set: it matches a transaction reduced to its echo (an INVITE
 * Accepted until Timer L, RFC 6026 7.1; a non-INVITE answered, until Timer J): the CANCEL still matched
 * a transaction (9.2: 200), and has nothing left to cancel. */
struct txn *txn_server_match_cancelled(struct txn_table *t, const struct sip_msg *cancel, bool *answered);

/* A new server transaction for req, owned by loop (its timers run there). For INVITE it starts in
 * Proceeding; the TU sends 100 Trying with txn_respond. A non-INVITE still unanswered when the client's
 * Timer E reaches T2 (3.5 s) sends a 100 of its own, built from the request txn_keep kept (RFC 4320
 * 4.1). 0, EAGAIN over max_live or max_held, ENOMEM. */
int txn_server_new(struct txn **txp, struct txn_table *t, struct loop *loop, const struct sip_msg *req,
		   bool reliable);
/* Feeds a retransmission (or the ACK) matched by txn_server_match. Thread-safe: from another
 * thread it is handed to the owner loop. */
void txn_server_recv(struct txn *tx, bool is_ack);
/* Sends a response built by the TU (code is its status). Thread-safe: from another thread it is
 * handed to the owner loop. 0, or EINVAL once a final response was sent. */
int txn_respond(struct txn *tx, unsigned code, const char *buf, size_t len);
/* txn_respond for a malloc'd buf, which the transaction takes (freed by it, on error too): no copy. */
int txn_respond_take(struct txn *tx, unsigned code, char *buf, size_t len);
/* Ends a non-INVITE transaction with no final response at all: RFC 4320 4.1 forbids the 408 a timeout
 * would give, which would reach a client that gave up at the same moment. Over UDP the transaction
 * stays 64*T1 to absorb (answer nothing to) retransmissions. Thread-safe; EINVAL for an INVITE or once
 * a final response was sent. */
int txn_server_give_up(struct txn *tx);

/* The TU of an Accepted INVITE transaction is done (no branch of a proxy left to answer): its data goes
 * on the next turn of the owner loop, while the transaction absorbs retransmissions of the INVITE until
 * Timer L. On the owner loop; nothing in any other state. */
void txn_release_tu(struct txn *tx);

enum txn_state txn_state(const struct txn *tx);
bool txn_is_invite(const struct txn *tx);
/* A final response was sent (or is on its way to the owner loop). */
bool txn_has_final(const struct txn *tx);
struct loop *txn_loop(const struct txn *tx);
/* Where responses go (set by the TU at creation, per RFC 3261 18.2.2), and the listener they leave from:
 * the one the request came to (RFC 3581 4). */
void txn_set_dest(struct txn *tx, struct tp_worker *w, uint8_t lsn, enum tp_proto proto, struct tp_conn *conn,
		  const struct tp_addr *dst);
void txn_get_dest(const struct txn *tx, struct tp_worker **w, uint8_t *lsn, enum tp_proto *proto,
		  struct tp_conn **conn, const struct tp_addr **dst);
/* A slot for the TU: data and its destructor, run when the transaction is freed, or for a non-INVITE
 * transaction just after its final response was sent (it then only absorbs retransmissions). */
void txn_set_tu(struct txn *tx, void *data, void (*destroy)(void *data));
void *txn_tu(const struct txn *tx);

/* ---- client transactions (client.c, RFC 3261 17.1) ---- */

struct txn_client; /* refcounted */

/* The TU hears every response but a 100 after another provisional (resp set, code its status; a first
 * 100 tells that a CANCEL may go, RFC 3261 9.1), or the end of the transaction
 * without one: code 408 (Timer B / F), 503 (transport error, 8.1.3.1) or 502 (an invalid final
 * response, see txn_client_recv), resp NULL. Runs on the owner loop. After a final (code >= 200)
 * nothing more comes: the 2xx that follow a first one to an INVITE (retransmissions, other forks') go
 * to the table's accepted_2xx while the transaction is Accepted, 64*T1 (RFC 6026 8.4). */
typedef void (txn_client_h)(struct txn_client *ct, unsigned code, const struct sip_msg *resp, void *arg);

/* The longest CSeq method a client transaction keeps: a request with a longer one cannot be sent. */
#define TXN_METHOD_MAX 63

/* What a client transaction matches its responses against (17.1.3, 8.2.6.2), for a caller that knows it
 * without parsing the request it has just built. */
struct txn_client_ident {
	struct slice branch;  /* of the request's top Via, sipd's own */
	struct slice method;  /* of its CSeq */
	uint32_t cseq;
	uint32_t id_hash;     /* txn_client_id_hash() of the request */
	unsigned nvia;        /* Via values the request carries */
};
/* Call-ID and From tag of m, hashed as responses are checked against them. */
uint32_t txn_client_id_hash(const struct sip_msg *m);

/* Bytes a TU keeps for its transactions (a proxy's copies of a request per branch), counted with theirs
 * against max_held: 0, or ENOBUFS (nothing counted) when the table holds max_held already. Every byte
 * held is given back with txn_table_unhold. */
int txn_table_hold(struct txn_table *t, size_t n);
void txn_table_unhold(struct txn_table *t, size_t n);

/* Sends req (already carrying sipd's top Via with a unique branch) to dst, from listener lsn over UDP
 * (tp_send_from: the one its Via names), and runs the client state machine on loop. id: what identifies req, or NULL to read it from req. 0, or an errno (nothing was
 * sent; ENOBUFS: the table holds max_held bytes). */
int txn_client_send(struct txn_client **ctp, struct txn_table *t, struct loop *loop, const char *req, size_t len,
		    const struct txn_client_ident *id, struct tp_worker *w, uint8_t lsn, enum tp_proto proto,
		    const struct tp_addr *dst, txn_client_h *h, void *arg);
/* A response from the network: 0 when it belonged to a client transaction (its top Via's branch and
 * CSeq method; consumed), ENOENT if not: a transaction-stateful proxy drops it (RFC 6026 7.3). invalid: why it failed sip_msg_parse / sip_msg_check (NULL
 * when it passed). A final is also invalid when its CSeq number, Call-ID, From tag or number of Vias
 * differ from the request's, or it lacks a To tag (8.2.6.2): the transaction ends as on a non-2xx
 * final (ACKed when the response has a To), the TU hears 502. An invalid provisional is dropped. */
int txn_client_recv(struct txn_table *t, const struct sip_msg *resp, const char *invalid);
/* A connection to dst over proto could not be set up (err), or, lost, one that was up went away (17.1.4):
 * every client transaction sent there that has had no response yet ends as a transport error, 503 to its
 * TU (8.1.3.1). Any thread. */
void txn_client_conn_failed(struct txn_table *t, enum tp_proto proto, const struct tp_addr *dst, int err,
			    bool lost);
/* The transaction ended as a 503 because its connection was lost once up: the request may have reached
 * the next hop (so sending it again over another transport could deliver it twice). */
bool txn_client_conn_lost(const struct txn_client *ct);
/* The TU lets go: no more callbacks; the transaction still absorbs retransmissions until its timers end. */
void txn_client_detach(struct txn_client *ct);
/* The TU gives up on it (16.8: as if a 408 came): detached, timers stopped, ended. Owner loop only. */
void txn_client_abandon(struct txn_client *ct);
/* A fresh branch: the magic cookie and 16 hex digits unique to this process. */
void txn_branch_new(char out[32]);
bool txn_client_final(const struct txn_client *ct);

/* ---- answering requests (reply.c) ---- */

/* Where a request came from and where its responses go (RFC 3261 18.2.2, RFC 3581). */
struct txn_origin {
	struct tp_worker *worker;
	enum tp_proto proto;
	struct tp_conn *conn;   /* borrowed */
	uint8_t lsn;            /* the listener it came to: the answers leave from there (RFC 3581 4) */
	struct tp_addr local;   /* the address it came to (tp_msg.local) */
	struct tp_addr src;
	struct tp_addr dst;     /* the source address; the sent-by port over UDP without rport */
	char src_host[64];      /* for received= */
	uint16_t src_port;      /* for rport= */
};

/* Where the answers to req go (18.2.2); via_maddr: a numeric maddr on its Via counts (over UDP). */
void txn_origin_init(struct txn_origin *o, const struct tp_msg *tm, const struct sip_msg *req, bool via_maddr);
/* Builds the response to req (8.2.6) into the calling thread's buffer: *out and the length, 0 on failure. */
size_t txn_build_reply(const struct txn_table *t, const struct sip_msg *req, const struct txn_origin *o,
		       unsigned code, const char *reason, const char *extra, const char **out);
/* Answers without a transaction (8.2.7: a stateless UAS regenerates the same answer for a retransmission). */
void txn_reply_stateless(const struct txn_table *t, const struct sip_msg *req, const struct txn_origin *o,
			 unsigned code, const char *reason, const char *extra);
/* The transaction keeps the origin (its connection referenced) and a copy of the request, so that
 * txn_reply can answer later, from any thread. 0 or ENOMEM. */
int txn_keep(struct txn *tx, const struct txn_origin *o, const char *req, size_t len);
/* The request txn_keep copied, until the final answer lets it go: 0, or ENOENT. */
int txn_kept(const struct txn *tx, const char **buf, size_t *len);
/* Answers the kept request. req: the parsed request when the caller has it, NULL to reparse the copy.
 * 0, EINVAL (nothing kept, or a final already sent), ENOSPC, ENOMEM. */
int txn_reply(struct txn *tx, const struct sip_msg *req, unsigned code, const char *reason, const char *extra);
/* The response txn_reply would send to req (the parsed request), built now into *out (malloc'd, *len
 * bytes; the caller frees it), for a TU that decides its answer now and sends it later with txn_respond.
 * 0, EINVAL (nothing kept), ENOSPC, ENOMEM. */
int txn_reply_prepare(struct txn *tx, const struct sip_msg *req, unsigned code, const char *reason, const char *extra,
		      char **out, size_t *len);
/* Whether req's To tag is the one sipd gives its own answers to this transaction (an ACK for a final
 * sipd sent statelessly carries it). */
bool txn_is_own_tag(const struct sip_msg *req);
/* Frees the calling thread's buffers (as a worker stops). */
void txn_thread_cleanup(void);

#endif
