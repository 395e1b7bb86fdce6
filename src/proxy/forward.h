/* forward.h: the messages the proxy sends on, built from those it received: a request for its next hop
 * (RFC 3261 16.6: its Request-URI, sipd's Via, Record-Route, Route, Max-Forwards, Content-Length) and a
 * response going upstream (16.7: without sipd's Via, with merged challenges). Pure functions of their
 * arguments: no state, no I/O. */
#ifndef SIPD_PROXY_FORWARD_H
#define SIPD_PROXY_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/slice.h"
#include "net/transport.h"
#include "proxy/rrsig.h"
#include "sip/msg.h"

/* The Route values a request goes on with, in order. On the stack and not zeroed (only the first n
 * slices are ever read): a malloc, or a kilobyte of zeros, per request showed. */
#define FWD_MAX_ROUTES 16
struct fwd_routes {
	struct slice r[FWD_MAX_ROUTES];
	unsigned n;
};

/* What changes between the request received and the one sent on. */
struct fwd {
	struct slice target;     /* the new Request-URI */
	const char *path;        /* the binding's Path, as Route headers to push */
	const struct fwd_routes *routes; /* the Route set to send on (ours taken off, 16.4) */
	struct slice src_host;   /* where the request came from: received/rport on its Via (RFC 3581) */
	uint16_t src_port;
	bool record_route;
	const uint8_t *rr_key;   /* signs our Record-Route for the dialog (rrsig.h); NULL: unsigned */
	struct slice consume_realm; /* Proxy-Authorization values for this realm are left out: sipd checked
				  * them, they were meant for it (RFC 3261 22.3); SLICE_NULL: all go on */
	enum tp_proto proto;     /* of the next hop, for our Via */
	enum tp_proto in_proto;  /* the request came over: another than proto gets a second Record-Route */
	struct slice flow;       /* ";flow=TOKEN" for our Record-Route: the branch goes over a phone's connection */
	struct slice contact_nat; /* ";nat=TOKEN" for the Contact's URI: the sender is behind a NAT (flow.h) */
	struct slice rr_pin;     /* the hop the callee's requests go to after sipd (rrsig_pin); SLICE_NULL:
				  * none known, and the Record-Route goes unsigned */
	const char *local;       /* our host:port toward the next hop (Via, top Record-Route) */
	const char *in_local;    /* where the request arrived, when not local: another address family */
	char branch[48];
};

/* The request with its Request-URI, Via, Record-Route, Route, Max-Forwards and Content-Length set, and
 * sipd's own credentials consumed; malloc'd into *out. 0, ENOMEM, or ENOSPC when it outgrew its estimate (nothing allocated). */
int fwd_request_build(const struct sip_msg *req, const struct fwd *f, char **out, size_t *outlen);
/* Signatures of sipd's Record-Routes in a response, written over those the request carried (16.7 step 4:
 * the caller's own, rrsig.h): at points into the response's Record-Route values. */
#define FWD_MAX_PATCHES 4
struct fwd_patches {
	struct {
		const char *at;
		char hex[RRSIG_HEX];
	} p[FWD_MAX_PATCHES];
	unsigned n;
};

/* The response rewritten, malloc'd (NULL when out of memory): without its top Via (sipd's, 16.7 step 3)
 * when drop_via, without the headers of drop_id (SIP_HDR_OTHER: none), with extra lines before the end
 * of the headers (merged challenges, 16.7 step 7), with the signatures of patches (NULL: none), with
 * contact_nat in its Contact's URI (SLICE_NULL: none; as struct fwd's). CRLFs before the status line
 * are not passed on. */
char *fwd_response_rewrite(const struct sip_msg *resp, bool drop_via, enum sip_hdr_id drop_id, const char *extra,
			   const struct fwd_patches *patches, struct slice contact_nat, size_t *outlen);
/* fwd_response_rewrite without sipd's Via, signatures patched and contact_nat written, nothing else changed. */
char *fwd_strip_via(const struct sip_msg *resp, const struct fwd_patches *patches, struct slice contact_nat,
		    size_t *outlen);

#endif
