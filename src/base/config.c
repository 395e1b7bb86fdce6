/* config.c: the table of keys, their defaults and their checks; parsing by libinih. */
#include "base/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "base/log.h"

enum key_type { K_UINT, K_SIZE, K_STR, K_LEVEL, K_LISTEN, K_BOOL };

struct key {
	const char *section, *name;
	enum key_type type;
	size_t off, size;           /* where in struct config */
	unsigned long min, max;     /* for numbers */
	const char *def;            /* default, as text */
};

#define F(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)

static const struct key keys[] = {
	{ "general", "listen", K_LISTEN, F(listen), 0, 0, "udp:127.0.0.1:5060, tcp:127.0.0.1:5060" },
	{ "general", "advertise", K_STR, F(advertise), 0, 0, "" },
	{ "general", "workers", K_UINT, F(workers), 0, 256, "0" },
	{ "general", "log_level", K_LEVEL, F(log_level), 0, 0, "info" },
	{ "general", "server_name", K_STR, F(server_name), 0, 0, "sipd/" SIPD_VERSION },
	{ "general", "domain", K_STR, F(domain), 0, 0, "" },
	{ "general", "control_socket", K_STR, F(control_socket), 0, 0, "" },
	{ "limits", "max_message_size", K_SIZE, F(max_message_size), 1024, 1048576, "65535" },
	{ "limits", "max_body_size", K_SIZE, F(max_body_size), 0, 1048576, "16384" },
	{ "limits", "max_request_uri_length", K_SIZE, F(max_request_uri_length), 32, 65535, "1024" },
	{ "limits", "max_transactions", K_UINT, F(max_transactions), 1, 100000000, "200000" },
	{ "limits", "max_answered", K_UINT, F(max_answered), 0, 100000000, "500000" },
	{ "limits", "retry_after", K_UINT, F(retry_after), 1, 86400, "5" },
	{ "limits", "tcp_max_connections", K_UINT, F(tcp_max_connections), 1, 1000000, "4096" },
	{ "limits", "tcp_idle_timeout", K_UINT, F(tcp_idle_timeout), 1, 86400, "300" },
	{ "limits", "tcp_keepalive", K_UINT, F(tcp_keepalive), 0, 7200, "120" },
	{ "sip", "t1", K_UINT, F(t1), 50, 10000, "500" },
	{ "sip", "t2", K_UINT, F(t2), 100, 60000, "4000" },
	{ "sip", "t4", K_UINT, F(t4), 100, 60000, "5000" },
	{ "sip", "accept", K_STR, F(accept), 0, 0, "application/sdp" },
	{ "sip", "accept_encoding", K_STR, F(accept_encoding), 0, 0, "identity" },
	{ "sip", "accept_language", K_STR, F(accept_language), 0, 0, "" },
	{ "sip", "supported", K_STR, F(supported), 0, 0, "path" },
	{ "sip", "via_maddr", K_BOOL, F(via_maddr), 0, 0, "yes" },
	{ "sip", "force_rport", K_STR, F(force_rport), 0, 0, "no" },
	{ "registrar", "min_expires", K_UINT, F(min_expires), 0, 86400, "60" },
	{ "registrar", "max_expires", K_UINT, F(max_expires), 1, 31536000, "7200" },
	{ "registrar", "default_expires", K_UINT, F(default_expires), 1, 31536000, "3600" },
	{ "registrar", "max_contacts", K_UINT, F(max_contacts), 1, 1000, "10" },
	{ "registrar", "max_contacts_policy", K_STR, F(max_contacts_policy), 0, 0, "reject" },
	{ "registrar", "max_bindings", K_UINT, F(max_bindings), 1, 100000000, "1000000" },
	{ "registrar", "nat_keepalive", K_UINT, F(nat_keepalive), 0, 3600, "0" },
	{ "registrar", "nat_keepalive_timeout", K_UINT, F(nat_keepalive_timeout), 0, 86400, "0" },
	{ "auth", "realm", K_STR, F(realm), 0, 0, "" },
	{ "auth", "algorithms", K_STR, F(algorithms), 0, 0, "SHA-256, MD5" },
	{ "auth", "nonce_lifetime", K_UINT, F(nonce_lifetime), 5, 86400, "300" },
	{ "auth", "max_failures", K_UINT, F(max_failures), 1, 1000, "5" },
	{ "auth", "failure_window", K_UINT, F(failure_window), 1, 86400, "60" },
	{ "auth", "user_max_failures", K_UINT, F(user_max_failures), 0, 1000000, "20" },
	{ "auth", "source_max_failures", K_UINT, F(source_max_failures), 0, 1000000, "100" },
	{ "auth", "block_time", K_UINT, F(block_time), 1, 86400, "60" },
	{ "auth", "register_auth", K_BOOL, F(register_auth), 0, 0, "yes" },
	{ "proxy", "record_route", K_BOOL, F(record_route), 0, 0, "yes" },
	{ "proxy", "timer_c", K_UINT, F(timer_c), 1, 86400, "181" }, /* over 3 minutes: RFC 3261 16.6 step 11 */
	{ "proxy", "max_call_duration", K_UINT, F(max_call_duration), 0, 2592000, "43200" },
	{ "proxy", "auth_calls", K_BOOL, F(auth_calls), 0, 0, "yes" },
	{ "proxy", "recurse_3xx", K_BOOL, F(recurse_3xx), 0, 0, "no" },
	{ "proxy", "outbound", K_STR, F(outbound), 0, 0, "users" },
	{ "proxy", "resolve_next_hops", K_BOOL, F(resolve_next_hops), 0, 0, "yes" },
	{ "proxy", "retry_after_max", K_UINT, F(retry_after_max), 0, 86400, "300" },
	{ "dns", "servers", K_STR, F(dns_servers), 0, 0, "" },
	{ "dns", "timeout", K_UINT, F(dns_timeout), 100, 60000, "3000" },
	{ "dns", "cache_size", K_UINT, F(dns_cache_size), 0, 1000000, "4096" },
	{ "dns", "max_ttl", K_UINT, F(dns_max_ttl), 1, 604800, "3600" },
	{ "dns", "negative_ttl", K_UINT, F(dns_negative_ttl), 0, 86400, "30" },
	{ "database", "path", K_STR, F(db_path), 0, 0, "sipd.db" },
	{ "database", "sync", K_BOOL, F(db_sync_full), 0, 0, "full" },
	{ "database", "commit_delay_ms", K_UINT, F(db_commit_delay_ms), 0, 1000, "100" },
	{ "core", "unrouted_code", K_UINT, F(unrouted_code), 300, 699, "404" },
	{ "core", "unrouted_delay_ms", K_UINT, F(unrouted_delay_ms), 0, 600000, "0" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* String keys that take one of a few words: the words ("a|b") and what an error says. */
static const struct {
	size_t off;
	const char *choices, *why;
} key_words[] = {
	{ offsetof(struct config, outbound), "users|none", "not users or none" },
	{ offsetof(struct config, max_contacts_policy), "reject|drop_oldest", "not reject or drop_oldest" },
	{ offsetof(struct config, force_rport), "no|nat|yes", "not no, nat or yes" },
};

static const char *key_choices(const struct key *k, const char **why)
{
	for (size_t i = 0; i < sizeof(key_words) / sizeof(key_words[0]); i++)
		if (key_words[i].off == k->off) {
			*why = key_words[i].why;
			return key_words[i].choices;
		}
	return NULL;
}

/* Whether value is one of "a|b|c" (case-insensitive). */
static bool choice_ok(const char *choices, const char *value)
{
	size_t n = strlen(value);

	for (const char *p = choices; *p;) {
		const char *e = strchr(p, '|');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && !strncasecmp(p, value, n))
			return true;
		p += l + (e ? 1 : 0);
	}
	return false;
}

/* [auth] algorithms: SHA-256 and MD5, in the order offered; a typo is an error, not a silent default. */
static bool algorithms_ok(const char *value)
{
	char buf[CONFIG_STR], *save = NULL, *tok;
	unsigned n = 0;

	snprintf(buf, sizeof(buf), "%s", value);
	for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save), n++)
		if (strcasecmp(tok, "SHA-256") && strcasecmp(tok, "MD5"))
			return false;
	return n > 0;
}

/* "IP", "IP:PORT", "[IPv6]", "[IPv6]:PORT" or a bare IPv6 address; a port of 0 only when zero_port. */
static bool addr_ok(const char *tok, bool zero_port)
{
	unsigned char buf[16];
	char host[64];
	const char *port = NULL;

	if (tok[0] == '[') {
		const char *e = strchr(tok, ']');

		if (!e || (size_t)(e - tok - 1) >= sizeof(host))
			return false;
		memcpy(host, tok + 1, (size_t)(e - tok - 1));
		host[e - tok - 1] = '\0';
		if (e[1] == ':')
			port = e + 2;
		else if (e[1])
			return false;
		if (inet_pton(AF_INET6, host, buf) != 1)
			return false;
	} else {
		const char *c = strchr(tok, ':');

		if (c && strchr(c + 1, ':'))
			return inet_pton(AF_INET6, tok, buf) == 1; /* a bare IPv6 address, no port */
		if ((c ? (size_t)(c - tok) : strlen(tok)) >= sizeof(host))
			return false;
		snprintf(host, sizeof(host), "%.*s", c ? (int)(c - tok) : (int)strlen(tok), tok);
		port = c ? c + 1 : NULL;
		if (inet_pton(AF_INET, host, buf) != 1)
			return false;
	}
	if (port) {
		char *end;
		unsigned long v;

		if (*port < '0' || *port > '9')
			return false;
		v = strtoul(port, &end, 10);
		if (*end || (!v && !zero_port) || v > 65535)
			return false;
	}
	return true;
}

/* "advertise ADDR[:PORT]" after a listener of this listen value (added of them so far): the address
 * that listener names itself by, of its address family. NULL or why not. */
static const char *listen_advertise(struct config *c, unsigned added, const char *addr)
{
	const char *l = added ? c->listen[c->nlisten - 1] + 4 : NULL;

	if (!l || c->listen_advertise[c->nlisten - 1][0])
		return "advertise follows a listener, once: udp:10.0.0.5:5060 advertise 203.0.113.5";
	if (!addr || !addr_ok(addr, false) || strlen(addr) >= sizeof(c->listen_advertise[0]))
		return "advertise names an IP address with an optional port: 203.0.113.5, 203.0.113.5:5060, "
		       "[2001:db8::5]:5060";
	if ((l[0] == '[') != (addr[0] == '[' || strchr(addr, ':') != strrchr(addr, ':')))
		return "advertise names an address of its listener's family";
	strcpy(c->listen_advertise[c->nlisten - 1], addr);
	return NULL;
}

/* [dns] servers: addresses as addr_ok takes them, comma-separated; empty is the system's. */
static bool servers_ok(const char *value)
{
	char tmp[CONFIG_STR], *save = NULL, *tok;

	if (strlen(value) >= sizeof(tmp))
		return false;
	strcpy(tmp, value);
	for (tok = strtok_r(tmp, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
		if (!addr_ok(tok, false))
			return false;
	return true;
}

/* yes, true, on, 1 or no, false, off, 0 (any case); false when value is none of them. */
static bool yes_no(const char *value, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(value, yes[i]))
			return (*out = true);
		if (!strcasecmp(value, no[i]))
			return !(*out = false);
	}
	return false;
}

/* Whether a final response with this code must carry a header that says what to do next (RFC 3261 21),
 * which a bare answer such as unrouted_code's cannot give. */
static bool code_needs_header(unsigned code)
{
	static const unsigned need[] = { 401, 405, 407, 415, 420, 421, 422, 423, 494 };

	if (code / 100 == 3)
		return true;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (code == need[i])
			return true;
	return false;
}

/* Sets one key from text; NULL on success, else what is wrong. */
static const char *key_set(struct config *c, const struct key *k, const char *value)
{
	char *field = (char *)c + k->off, *end;
	const char *words, *why;
	unsigned long v;

	switch (k->type) {
	case K_UINT:
	case K_SIZE:
		errno = 0;
		v = strtoul(value, &end, 10);
		if (errno || end == value || *end || value[0] == '-')
			return "not a number";
		if (v < k->min || v > k->max)
			return "out of range";
		if (k->off == offsetof(struct config, unrouted_code) && code_needs_header((unsigned)v))
			return "a code that needs a header sipd does not send with it (3xx a Contact, 401 and 407 a "
			       "challenge, 405 Allow, 415 Accept, 420 Unsupported, 421 Require, 423 Min-Expires)";
		if (k->type == K_UINT)
			*(unsigned *)field = (unsigned)v;
		else
			*(size_t *)field = (size_t)v;
		return NULL;
	case K_STR:
		if (strlen(value) >= k->size)
			return "too long";
		if ((words = key_choices(k, &why)) && !choice_ok(words, value))
			return why;
		if (k->off == offsetof(struct config, algorithms) && !algorithms_ok(value))
			return "each algorithm is SHA-256 or MD5, one at least";
		if (k->off == offsetof(struct config, db_path) && !value[0])
			return "empty: a file name, such as sipd.db (SQLite would keep the bindings in a temporary file)";
		if (k->off == offsetof(struct config, control_socket) && strlen(value) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return "too long for a Unix socket's path (107 bytes at most)";
		if (k->off == offsetof(struct config, advertise) && value[0] && !addr_ok(value, false))
			return "an IP address with an optional port: 203.0.113.5, 203.0.113.5:5060, [2001:db8::5]:5060";
		if (k->off == offsetof(struct config, dns_servers) && !servers_ok(value))
			return "each server is an IP address with an optional port: 192.0.2.1, 192.0.2.1:5353, [2001:db8::1]:53";
		strcpy(field, value);
		return NULL;
	case K_BOOL: {
		/* [database] sync takes SQLite's words too */
		const char *word = !strcasecmp(value, "full") ? "yes" : !strcasecmp(value, "normal") ? "no" : value;

		if (yes_no(word, (bool *)field))
			return NULL;
		return k->off == offsetof(struct config, db_sync_full) ? "not full or normal" : "not yes or no";
	}
	case K_LEVEL: {
		int lvl = log_level_parse(value);

		if (lvl < 0)
			return "not one of error, warning, info, debug";
		c->log_level = lvl;
		return NULL;
	}
	case K_LISTEN: {
		char tmp[CONFIG_MAX_LISTEN * 128], *save = NULL, *tok;
		unsigned added = 0;

		if (strlen(value) >= sizeof(tmp))
			return "too long";
		strcpy(tmp, value);
		for (tok = strtok_r(tmp, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
			if (!strcasecmp(tok, "advertise")) { /* Kamailio's "listen=udp:IP:PORT advertise IP:PORT" */
				const char *bad = listen_advertise(c, added, strtok_r(NULL, ", \t", &save));

				if (bad)
					return bad;
				continue;
			}
			if (c->nlisten == CONFIG_MAX_LISTEN)
				return "too many listeners";
			if ((strncasecmp(tok, "udp:", 4) && strncasecmp(tok, "tcp:", 4)) || !addr_ok(tok + 4, true))
				return "each listener is udp:HOST[:PORT] or tcp:HOST[:PORT], HOST an IPv4 address or an IPv6 "
				       "one in brackets, PORT up to 65535";
			if (strlen(tok) >= sizeof(c->listen[0]))
				return "listener too long";
			c->listen_advertise[c->nlisten][0] = '\0';
			strcpy(c->listen[c->nlisten++], tok);
			added++;
		}
		return added ? NULL : "no listener";
	}
	}
	return "unknown type";
}

void config_free(struct config *c)
{
	free(c->users);
	c->users = NULL;
	c->nusers = 0;
}

int config_control_path(const char *setting, const char *db, char *buf, size_t n)
{
	struct sockaddr_un sun;
	const char *base, *dot;
	int len;

	if (!strcmp(setting, "none"))
		return ENOENT;
	if (setting[0]) {
		len = snprintf(buf, n, "%s", setting);
	} else {
		base = strrchr(db, '/') ? strrchr(db, '/') + 1 : db;
		dot = strrchr(base, '.');
		len = snprintf(buf, n, "%.*s.ctl", (int)(dot && dot > base ? dot - db : (ptrdiff_t)strlen(db)), db);
	}
	if (len < 0 || (size_t)len >= n || (size_t)len >= sizeof(sun.sun_path))
		return ENAMETOOLONG;
	return 0;
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NKEYS; i++)
		key_set(c, &keys[i], keys[i].def);
}

/* The first listen line of a file replaces the default listeners; later ones add to them. */
static void listen_reset_once(struct config *c, bool *seen)
{
	if (!*seen)
		c->nlisten = 0;
	*seen = true;
}

struct load_ctx {
	struct config *c;
	const char *path;
	FILE *f;
	int line;
	int errors;
	bool listen_seen;
	char section[64];     /* tracked by the reader, for lines inih cannot take */
	bool section_keys;    /* a key was read since that header: inih then takes an indented line as more */
	bool section_told;    /* that section was refused at its header (unknown, a bad or repeated user) */
	bool cont;            /* the line being read continues the value above it (it starts with SP or HT) */
	char *buf;            /* getline's */
	size_t bufsize;
	char *errbuf;
	size_t errlen, used;
};

static void add_error_at(struct load_ctx *x, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* An error at the line the reader is on. */
#define add_error(x, ...) add_error_at((x), (x)->line, __VA_ARGS__)

/* An error at line (0: about the whole file, which names no line). */
static void add_error_at(struct load_ctx *x, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	x->errors++;
	if (!x->errbuf || x->used + 1 >= x->errlen)
		return;
	n = line > 0 ? snprintf(x->errbuf + x->used, x->errlen - x->used, "%s:%d: ", x->path, line)
		     : snprintf(x->errbuf + x->used, x->errlen - x->used, "%s: ", x->path);
	if (n > 0)
		x->used += (size_t)n;
	if (x->used < x->errlen) {
		va_start(ap, fmt);
		n = vsnprintf(x->errbuf + x->used, x->errlen - x->used, fmt, ap);
		va_end(ap);
		if (n > 0)
			x->used += (size_t)n;
	}
	if (x->used >= x->errlen)
		x->used = x->errlen - 1;
}

static struct config_user *user_find(struct config *c, const char *name)
{
	for (unsigned i = 0; i < c->nusers; i++)
		if (!strcmp(c->users[i].name, name))
			return &c->users[i];
	return NULL;
}

bool config_user_name_ok(const char *s)
{
	if (!*s || strlen(s) >= sizeof(((struct config_user *)0)->name))
		return false;
	/* ':' would make name:realm:password ambiguous; '@' and ';' end a URI's user. A backslash
	 * stays (CORP\carol, as Windows accounts are written): credentials carry it as a quoted-pair. */
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || strchr(":@;\"", *s))
			return false;
	return true;
}

/* At a [user NAME] header: the user's record is made here, so that a section without keys is told
 * (it has no password) as well as one whose name is bad or given twice. */
static void user_begin(struct load_ctx *x, const char *uname)
{
	struct config_user *u;

	while (*uname == ' ' || *uname == '\t')
		uname++;
	if (!config_user_name_ok(uname)) {
		add_error(x, "[user %s]: a user name is one word of up to 63 bytes without ':', '@', ';' or quotes\n",
			  uname);
		x->section_told = true;
		return;
	}
	if ((u = user_find(x->c, uname))) {
		add_error(x, "[user %s]: given twice (first at line %d)\n", uname, u->line);
		x->section_told = true;
		return;
	}
	u = realloc(x->c->users, (x->c->nusers + 1) * sizeof(*u));
	if (!u) {
		add_error(x, "out of memory\n");
		x->section_told = true;
		return;
	}
	x->c->users = u;
	u = &x->c->users[x->c->nusers++];
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", uname);
	u->line = x->line;
}

static bool section_known(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcasecmp(keys[i].section, name))
			return true;
	return false;
}

/* At a [section] header, before inih hands over its keys. */
static void section_begin(struct load_ctx *x)
{
	x->section_told = false;
	x->section_keys = false;
	if (!strncasecmp(x->section, "user ", 5) || !strncasecmp(x->section, "user\t", 5)) {
		user_begin(x, x->section + 5);
	} else if (!strcasecmp(x->section, "user")) {
		add_error(x, "[user]: a user's section names the user: [user NAME]\n");
		x->section_told = true;
	} else if (!section_known(x->section)) {
		add_error(x, "unknown section [%s]\n", x->section);
		x->section_told = true;
	}
}

static bool is_hex_len(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	return true;
}

/* Copies a hex digest in lower case, as sipd compares and stores them; NULL, or what is wrong. */
static const char *hex_copy(char *dst, const char *value, size_t n)
{
	if (!is_hex_len(value, n))
		return n == 32 ? "not 32 hex digits" : "not 64 hex digits";
	for (size_t i = 0; i <= n; i++)
		dst[i] = (char)(value[i] >= 'A' && value[i] <= 'F' ? value[i] - 'A' + 'a' : value[i]);
	return NULL;
}

bool config_extension_ok(const char *v)
{
	if (*v == '+')
		v++;
	if (!*v)
		return false;
	for (; *v; v++)
		if (!isdigit((unsigned char)*v) && *v != '*' && *v != '#')
			return false;
	return true;
}

/* [user NAME]: password or ha1 / ha1_sha256, extension, display_name, disabled. */
static void on_user_key(struct load_ctx *x, const char *uname, const char *name, const char *value)
{
	struct config_user *u;
	const char *why = NULL;

	while (*uname == ' ' || *uname == '\t')
		uname++;
	if (x->section_told || !(u = user_find(x->c, uname)))
		return; /* told at its header */
	if (x->cont)
		why = "a continuation line: a user's values are one line each";
	else if (!strcasecmp(name, "password"))
		why = strlen(value) < sizeof(u->password) ? (strcpy(u->password, value), NULL) : "too long";
	else if (!strcasecmp(name, "ha1"))
		why = hex_copy(u->ha1, value, 32);
	else if (!strcasecmp(name, "ha1_sha256"))
		why = hex_copy(u->ha1_sha256, value, 64);
	else if (!strcasecmp(name, "extension"))
		why = strlen(value) >= sizeof(u->extension) ? "too long"
		      : !config_extension_ok(value)         ? "a number: digits, '*' or '#', after an optional '+'"
							    : (strcpy(u->extension, value), NULL);
	else if (!strcasecmp(name, "display_name"))
		why = strlen(value) < sizeof(u->display_name) ? (strcpy(u->display_name, value), NULL) : "too long";
	else if (!strcasecmp(name, "disabled"))
		why = yes_no(value, &u->disabled) ? NULL : "not yes or no";
	else
		why = "unknown key";
	if (why)
		add_error(x, "[user %s] %s: %s\n", uname, name, why);
}

/* A line that continues a key's value (libinih's multi-line values): a listener list adds to the
 * listeners, a text value gets the line after a space; nothing else runs over lines. */
static const char *key_continue(struct config *c, const struct key *k, const char *value)
{
	const char *field = (const char *)c + k->off, *why;
	char *joined;

	if (k->type == K_LISTEN)
		return key_set(c, k, value);
	if (k->type != K_STR)
		return "a continuation line: only a list or a text runs over lines";
	if (!(joined = malloc(strlen(field) + strlen(value) + 2)))
		return "out of memory";
	sprintf(joined, "%s%s%s", field, *field ? " " : "", value);
	why = key_set(c, k, joined);
	free(joined);
	return why;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *x = user;

	x->section_keys = true;
	if (!strncasecmp(section, "user ", 5)) {
		on_user_key(x, section + 5, name, value);
		return 1;
	}

	for (size_t i = 0; i < NKEYS; i++) {
		if (strcasecmp(keys[i].section, section) || strcasecmp(keys[i].name, name))
			continue;
		unsigned before;
		const char *why;

		if (keys[i].type == K_LISTEN)
			listen_reset_once(x->c, &x->listen_seen);
		before = x->c->nlisten;
		why = x->cont ? key_continue(x->c, &keys[i], value) : key_set(x->c, &keys[i], value);
		if (why && keys[i].type == K_LISTEN)
			x->c->nlisten = before; /* all of a bad line or none of it */

		if (why)
			add_error(x, "[%s] %s: %s\n", section, name, why);
		return 1;
	}
	if (!x->section_told)
		add_error(x, "unknown key [%s] %s\n", section, name);
	return 1; /* keep going: report every error in one run */
}

static char *trim(char *p)
{
	char *e;

	while (*p == ' ' || *p == '\t')
		p++;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return p;
}

/* A line too long for inih's buffer (200 bytes in Debian's build): a comment is dropped, a
 * key = value line is handled here with the section the reader has tracked. */
static void long_line(struct load_ctx *x, char *line)
{
	char *p = trim(line), *eq;

	if (*p == ';' || *p == '#' || *p == '\0')
		return;
	eq = strchr(p, '=');
	if (*p == '[' || !eq) {
		add_error(x, "syntax error: not a [section] or key = value line\n");
		return;
	}
	*eq = '\0';
	on_key(x, x->section, trim(p), trim(eq + 1));
}

/* inih reads lines through this, so the handler knows the line it is on. */
static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *x = stream;
	ssize_t n = getline(&x->buf, &x->bufsize, x->f);
	char *p;

	if (n < 0)
		return NULL;
	x->line++;
	p = trim(x->buf);
	/* as inih reads it: a line that starts with SP or HT and is neither blank nor a comment */
	x->cont = p > x->buf && *p && *p != ';' && *p != '#' && x->section_keys;
	if (*p == '[' && strchr(p, ']') && (size_t)(strchr(p, ']') - p) < sizeof(x->section)) {
		memcpy(x->section, p + 1, (size_t)(strchr(p, ']') - p - 1));
		x->section[strchr(p, ']') - p - 1] = '\0';
		section_begin(x);
	}
	if (n < num - 1) {
		memcpy(str, x->buf, (size_t)n + 1);
		return str;
	}
	long_line(x, x->buf);
	str[0] = '\n';
	str[1] = '\0';
	return str;
}

int config_load(struct config *c, const char *path, char *errbuf, size_t errlen)
{
	struct load_ctx x = { .c = c, .path = path, .errbuf = errbuf, .errlen = errlen };
	int rc;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	x.f = fopen(path, "r");
	if (!x.f)
		return -1;
	rc = ini_parse_stream(read_line, &x, on_key, &x);
	fclose(x.f);
	free(x.buf);
	if (rc > 0) /* a syntax error inih itself found (e.g. a line that is not key = value) */
		add_error_at(&x, rc, "syntax error: not a [section] or key = value line\n");
	for (unsigned i = 0; i < c->nusers; i++)
		if (!c->users[i].password[0] && !c->users[i].ha1[0] && !c->users[i].ha1_sha256[0])
			add_error_at(&x, c->users[i].line, "[user %s]: needs a password, ha1 or ha1_sha256\n",
				     c->users[i].name);
	/* a user's extension names it as its name does: two users with one name would share an AOR */
	for (unsigned i = 0; i < c->nusers; i++)
		for (unsigned j = 0; j < c->nusers && c->users[i].extension[0]; j++)
			if (j != i && (!strcmp(c->users[i].extension, c->users[j].name) ||
				       (j < i && !strcmp(c->users[i].extension, c->users[j].extension))))
				add_error_at(&x, c->users[i].line, "[user %s]: extension %s is already [user %s]'s %s\n",
					     c->users[i].name, c->users[i].extension, c->users[j].name,
					     strcmp(c->users[i].extension, c->users[j].name) ? "extension" : "name");
	/* 17.1.1.2: retransmissions double from T1 up to T2; a T2 under T1 would shorten the first interval */
	if (c->t2 < c->t1)
		add_error_at(&x, 0, "[sip] t2 (%u) is under t1 (%u)\n", c->t2, c->t1);
	if (c->min_expires > c->max_expires)
		add_error_at(&x, 0, "[registrar] min_expires (%u) is above max_expires (%u)\n", c->min_expires,
			     c->max_expires);
	/* the default stands for what the phone asked (10.3 step 7): under the minimum, and under the hour
	 * that 423 is allowed below, every REGISTER that names no interval would get 423 */
	if (c->default_expires < c->min_expires && c->default_expires < 3600)
		add_error_at(&x, 0, "[registrar] default_expires (%u) is under min_expires (%u): a REGISTER without an "
			     "interval would get 423\n", c->default_expires, c->min_expires);
	return x.errors;
}

static void __attribute__((format(printf, 4, 5))) warn_add(char *buf, size_t n, unsigned *count,
							   const char *fmt, ...)
{
	size_t used = buf && n ? strlen(buf) : 0;
	va_list ap;

	(*count)++;
	if (!buf || used + 1 >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, n - used, fmt, ap);
	va_end(ap);
}

unsigned config_warnings(const struct config *c, char *buf, size_t n)
{
	unsigned count = 0;

	if (buf && n)
		buf[0] = '\0';
	if (!c->register_auth)
		warn_add(buf, n, &count, "[auth] register_auth = no: anyone may register any address of record of "
			 "sipd's domains and take its calls (for a lab only)\n");
	if (!c->auth_calls)
		warn_add(buf, n, &count, "[proxy] auth_calls = no: anyone may call and write as sipd's users, through "
			 "sipd to wherever it routes (for a lab only)\n");
	if (c->timer_c <= 180)
		warn_add(buf, n, &count, "[proxy] timer_c = %u: RFC 3261 16.6 step 11 asks for more than 3 minutes; "
			 "a call that rings longer is cancelled after %u s\n", c->timer_c, c->timer_c);
	/* a 200 that comes after T1 crosses the phone's first retransmission (RFC 3261 17.1.2.2): under load
	 * every REGISTER would be sent twice */
	if (c->db_commit_delay_ms >= c->t1)
		warn_add(buf, n, &count, "[database] commit_delay_ms = %u: at or over [sip] t1 (%u ms), phones over UDP "
			 "send their REGISTER again before its 200 when sipd is busy\n", c->db_commit_delay_ms, c->t1);
	return count;
}

static void dump_secret(FILE *f, const char *key, const char *value, bool secrets)
{
	if (!value[0])
		return;
	if (secrets)
		fprintf(f, "%s = %s\n", key, value);
	else
		fprintf(f, "; %s: set, not shown (--show-secrets)\n", key);
}

void config_dump(const struct config *c, void *file, bool secrets)
{
	FILE *f = file;
	const char *section = "";

	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const char *field = (const char *)c + k->off;

		if (strcmp(section, k->section)) {
			fprintf(f, "%s[%s]\n", i ? "\n" : "", k->section);
			section = k->section;
		}
		fprintf(f, "%s = ", k->name);
		switch (k->type) {
		case K_UINT:
			fprintf(f, "%u\n", *(const unsigned *)field);
			break;
		case K_SIZE:
			fprintf(f, "%zu\n", *(const size_t *)field);
			break;
		case K_STR:
			fprintf(f, "%s\n", field);
			break;
		case K_BOOL:
			if (k->off == offsetof(struct config, db_sync_full))
				fprintf(f, "%s\n", *(const bool *)field ? "full" : "normal");
			else
				fprintf(f, "%s\n", *(const bool *)field ? "yes" : "no");
			break;
		case K_LEVEL: {
			static const char *const names[] = { "error", "warning", "info", "debug" };

			fprintf(f, "%s\n", names[c->log_level & 3]);
			break;
		}
		case K_LISTEN:
			for (unsigned j = 0; j < c->nlisten; j++)
				fprintf(f, "%s%s%s%s", j ? ", " : "", c->listen[j], c->listen_advertise[j][0] ? " advertise " : "",
					c->listen_advertise[j]);
			fprintf(f, "\n");
			break;
		}
	}
	for (unsigned i = 0; i < c->nusers; i++) {
		const struct config_user *u = &c->users[i];

		fprintf(f, "\n[user %s]\n", u->name);
		dump_secret(f, "password", u->password, secrets);
		dump_secret(f, "ha1", u->ha1, secrets);
		dump_secret(f, "ha1_sha256", u->ha1_sha256, secrets);
		if (u->extension[0])
			fprintf(f, "extension = %s\n", u->extension);
		if (u->display_name[0])
			fprintf(f, "display_name = %s\n", u->display_name);
		if (u->disabled)
			fprintf(f, "disabled = yes\n");
	}
}
