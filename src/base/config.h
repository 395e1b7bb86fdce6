/* config.h: sipd's configuration: every key with its default, read from an INI file (libinih) or not at all. */
#ifndef SIPD_BASE_CONFIG_H
#define SIPD_BASE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_LISTEN 16
#define CONFIG_STR 512

/* A [user NAME] section: a subscriber defined in the file. */
struct config_user {
	char name[64];
	char password[128];    /* plain, only in the file; sipd keeps its HA1s */
	char ha1[33];          /* MD5 HA1, when given instead of a password */
	char ha1_sha256[65];
	char extension[32];
	char display_name[128];
	bool disabled;
	int line;              /* of its [user NAME] header in the file, for errors about the whole section */
};

struct config {
	/* [general] */
	char listen[CONFIG_MAX_LISTEN][128]; /* "udp:127.0.0.1:5060" */
	char listen_advertise[CONFIG_MAX_LISTEN][64]; /* "203.0.113.5[:PORT]" after the listener's "advertise",
	                                                * which it names itself by instead of [general] advertise */
	unsigned nlisten;
	char advertise[64];            /* "203.0.113.5[:5060]": the address sipd names itself by behind a 1:1 NAT */
	unsigned workers;              /* 0 = one per core */
	int log_level;                 /* enum log_level */
	char server_name[128];         /* Server header; empty = none */
	char domain[CONFIG_STR];       /* comma-separated; empty = sipd's own addresses and host name */
	/* [limits] */
	size_t max_message_size;       /* 513 above */
	size_t max_body_size;          /* 413 above */
	size_t max_request_uri_length; /* 414 above */
	unsigned max_transactions;     /* 503 above */
	unsigned max_answered;         /* answered non-INVITE transactions kept as their response (Timer J) */
	unsigned retry_after;          /* seconds, on 503, 500 and temporary 413 */
	unsigned tcp_max_connections;
	unsigned tcp_idle_timeout;     /* seconds */
	unsigned tcp_keepalive;        /* seconds of silence before the kernel probes a connection; 0: never */
	/* [sip] */
	unsigned t1, t2, t4;           /* milliseconds */
	char accept[CONFIG_STR];          /* body types sipd accepts as a UAS */
	char accept_encoding[CONFIG_STR]; /* content codings it accepts */
	char accept_language[CONFIG_STR]; /* languages it accepts; empty = any */
	char supported[CONFIG_STR];       /* option tags it supports (Require not in here: 420) */
	bool via_maddr;                /* responses over UDP go to a Via's numeric maddr (18.2.2) */
	char force_rport[8];           /* "no", "nat" (a Via whose sent-by is not the source) or "yes": a UDP
	                                * request is read as if its top Via asked for rport (RFC 3581) */
	/* [registrar] */
	unsigned min_expires;          /* 423 below */
	unsigned max_expires;          /* longer requests are lowered to it */
	unsigned default_expires;      /* when neither the Contact nor the request says */
	unsigned max_contacts;         /* per AOR */
	unsigned max_bindings;         /* in all: past it, a REGISTER that adds one gets 503 */
	char max_contacts_policy[16];  /* "reject" (403) or "drop_oldest" */
	unsigned nat_keepalive;        /* seconds between OPTIONS to each phone behind a NAT; 0: none */
	unsigned nat_keepalive_timeout; /* a binding whose phone answers none of them this long goes; 0: never */
	/* [auth] */
	char realm[128];               /* empty: the first domain, else "sipd" */
	char algorithms[64];           /* challenges offered, in order: "SHA-256, MD5" */
	unsigned nonce_lifetime;       /* seconds */
	unsigned max_failures;         /* per (source address, user) within failure_window */
	unsigned failure_window;       /* seconds */
	unsigned user_max_failures;    /* per user from any sources within failure_window; 0: no such rule */
	unsigned source_max_failures;  /* per source for any users within failure_window; 0: no such rule */
	unsigned block_time;           /* seconds, doubling per repeated block */
	bool register_auth;            /* REGISTER must authenticate */
	/* [proxy] */
	bool record_route;             /* Record-Route on dialog-creating requests */
	unsigned timer_c;              /* seconds a branch may ring before it is CANCELled */
	unsigned max_call_duration;    /* seconds an answered call is recorded without its BYE; 0 = until it */
	bool auth_calls;               /* INVITEs claiming sipd's domain in From must authenticate (407) */
	bool recurse_3xx;              /* a branch's 3xx: its Contacts become new branches, else it is relayed */
	char outbound[16];             /* who may reach other domains: "users" (authenticated) or "none" */
	bool resolve_next_hops;        /* a next hop named by a host name (Route, Contact, Path) is located by DNS */
	unsigned retry_after_max;      /* seconds a located next hop's 503 Retry-After is honoured at most; 0: never */
	/* [dns] */
	char dns_servers[CONFIG_STR];  /* "127.0.0.1:53, [::1]:53"; empty = the system's (/etc/resolv.conf) */
	unsigned dns_timeout;          /* milliseconds per question */
	unsigned dns_cache_size;       /* answers kept; 0 = none */
	unsigned dns_max_ttl;          /* seconds: longer TTLs are cut to this */
	unsigned dns_negative_ttl;     /* seconds a "no such name / no such record" is kept */
	char control_socket[CONFIG_STR]; /* [general]: "" = the database's path with .ctl; "none" = no socket */
	/* [database] */
	char db_path[CONFIG_STR];
	bool db_sync_full;             /* fsync at every commit (power-loss safe), else crash safe */
	unsigned db_commit_delay_ms;   /* a commit waits this long for others to share its fsync */
	/* [user NAME] sections */
	struct config_user *users;
	unsigned nusers;
	/* [core] */
	unsigned unrouted_code;        /* answer to an INVITE sipd cannot route */
	unsigned unrouted_delay_ms;    /* how long it rings before that answer */
};

void config_defaults(struct config *c);
/* Frees what config_load allocated (the users). */
void config_free(struct config *c);
/* Loads path over the defaults. Errors are written to errbuf one per line as "FILE:LINE: message";
 * returns the number of errors (0 = fine), or -1 when the file cannot be opened. */
int config_load(struct config *c, const char *path, char *errbuf, size_t errlen);
/* Settings that are valid but leave sipd open or off the RFC, one line each into buf ("[auth]
 * register_auth = no: ...\n"), for --check and the log at start: how many there are. */
unsigned config_warnings(const struct config *c, char *buf, size_t n);
/* Prints every key and its current value in INI form. A user's password, ha1 and ha1_sha256 are
 * printed only with secrets; otherwise a comment says each is set (a dump gets pasted into questions
 * and bug reports, and a HA1 is as good as the password to a digest client of that realm). */
void config_dump(const struct config *c, void *file, bool secrets);
/* The control socket's path into buf: setting ([general] control_socket) when set, else the database's
 * file db with ".ctl" for its extension ("sipd.db" gives "sipd.ctl"; store_file makes a file of a
 * "sqlite:" URL), so that sipds on databases of their own have sockets of their own.
 * 0, ENOENT for "none" (no socket), or ENAMETOOLONG (longer than a Unix socket's path may be). */
int config_control_path(const char *setting, const char *db, char *buf, size_t n);
/* Whether v is an extension: a number a phone dials (digits, '*', '#', after an optional '+'), so that
 * it can never be another user's name, which has a letter. */
bool config_extension_ok(const char *v);
/* Whether s may name a user: 1 to 63 bytes, no white space or control character, none of : @ ; " */
bool config_user_name_ok(const char *s);

#endif
