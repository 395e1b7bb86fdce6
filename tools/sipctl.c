/* sipctl.c: sipd's admin command line: users (HA1 hashes, never passwords) and registrations, straight
 * on the database, also while sipd runs (SQLite locking; a write waits up to 5 s for sipd's); and what
 * only the running sipd's memory holds (authentication blocks), through its control socket.
 * Exit status: 0 done, 1 error, 2 usage. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/config.h"
#include "mgmt/ctl.h"
#include "registrar/natping.h"
#include "store/store.h"

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

#define DEFAULT_DB "sipd.db"
#define DEFAULT_REALM "sipd" /* sipd's digest realm unless configured otherwise */
#define PASSWORD_MAX 1024

static const char usage_text[] =
	"usage: sipctl [-d PATH | -c sipd.conf] [-s SOCKET] COMMAND [ARGS]\n"
	"\n"
	"Administers sipd's users and shows and removes its registrations, working on the database\n"
	"directly (also while sipd runs), and shows and lifts the running sipd's authentication blocks.\n"
	"\n"
	"Options (before or after the command):\n"
	"  -d, --db PATH      the database (default: " DEFAULT_DB "; \"sqlite:PATH\" works too)\n"
	"  -c, --config FILE  sipd's configuration: the database from [database] path (unless -d),\n"
	"                     the default realm from [auth] realm or the first [general] domain,\n"
	"                     the control socket from [general] control_socket\n"
	"  -s, --socket PATH  sipd's control socket (default: the database's path, .ctl for .db)\n"
	"  -h, --help         this help\n"
	"  -V, --version      sipctl's version\n"
	"\n"
	"Commands:\n"
	"  user add NAME [--password P | --ha1 HEX [--ha1-sha256 HEX]] [--realm R]\n"
	"                [--extension N] [--display \"Display Name\"]\n"
	"  user passwd NAME [--password P | --ha1 HEX [--ha1-sha256 HEX]] [--realm R]\n"
	"  user del NAME               (its registrations go with it)\n"
	"  user list\n"
	"  user disable NAME\n"
	"  user enable NAME\n"
	"  show registrations [AOR|USER]\n"
	"                              (alias: show regs) every live binding, or those of one AOR\n"
	"  unregister AOR|USER [CONTACT]\n"
	"                              removes a registration: every binding of the AOR (sip:bob@host,\n"
	"                              bob@host, or USER: each AOR whose user part it is), or the one\n"
	"                              CONTACT as show registrations lists it; a running sipd drops it\n"
	"                              from memory within a second. The phone may register again.\n"
	"\n"
	"Commands that ask the running sipd (its control socket; sipd's user or root only):\n"
	"  show blocks                 the authentication blocks in force: of a user from one\n"
	"                              address, of a user from every address it never logged in\n"
	"                              from, of an address for the users that never logged in from it\n"
	"  unblock user NAME [address ADDR] | unblock address ADDR | unblock all\n"
	"                              lifts those blocks and forgets their failures so far\n"
	"  ping                        whether sipd answers there\n"
	"\n"
	"Without --password or --ha1 the password is read from standard input (one line; asked twice,\n"
	"without echo, on a terminal), so it never shows in ps. sipctl stores HA1 = MD5 and SHA-256 of\n"
	"NAME:REALM:PASSWORD, never the password. REALM must be sipd's digest realm: [auth] realm, else\n"
	"the first [general] domain, else \"" DEFAULT_REALM "\". Give -c so sipctl finds it as sipd does, or --realm;\n"
	"a user hashed under another realm cannot log in.\n"
	"\n"
	"Exit status: 0 done, 1 error, 2 usage.\n";

static const char *db_opt;   /* -d */
static const char *conf_opt; /* -c */
static const char *sock_opt; /* -s */
static char conf_sock[CONFIG_STR]; /* -c's [general] control_socket */
static char realm_default[128] = DEFAULT_REALM;

static void __attribute__((format(printf, 1, 2))) error(const char *fmt, ...)
{
	va_list ap;

	fputs("sipctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int __attribute__((format(printf, 1, 2))) usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("sipctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'sipctl --help'.\n", stderr);
	return EXIT_USAGE;
}

/* ---- arguments: positional words and "--name value" / "--name=value" options, in any order ---- */

struct opt {
	const char *name;  /* "--password" */
	const char *alias; /* "-d", or NULL */
	const char **val;
};

static bool opt_is(const struct opt *o, const char *a, size_t len)
{
	return (strlen(o->name) == len && !strncmp(a, o->name, len)) ||
	       (o->alias && strlen(o->alias) == len && !strncmp(a, o->alias, len));
}

/* Takes the option at argv[*i] (and its value), known everywhere: -d, -c, -h, -V, then opts.
 * 0, or EXIT_USAGE after saying why. */
static int opt_take(int argc, char **argv, int *i, const struct opt *opts)
{
	static const struct opt common[] = { { "--db", "-d", &db_opt }, { "--config", "-c", &conf_opt },
					     { "--socket", "-s", &sock_opt }, { NULL, NULL, NULL } };
	const char *a = argv[*i], *eq = strchr(a, '=');
	size_t len = eq && a[1] == '-' ? (size_t)(eq - a) : strlen(a);
	const struct opt *o = NULL;
	int j;

	if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
		fputs(usage_text, stdout);
		exit(EXIT_OK);
	}
	if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
		printf("sipctl %s\n", SIPD_VERSION);
		exit(EXIT_OK);
	}
	for (j = 0; !o && common[j].name; j++)
		if (opt_is(&common[j], a, len))
			o = &common[j];
	for (j = 0; !o && opts && opts[j].name; j++)
		if (opt_is(&opts[j], a, len))
			o = &opts[j];
	if (!o)
		return usage_error("unknown option '%.*s'", (int)len, a);
	if (eq && a[1] == '-')
		*o->val = eq + 1;
	else if (*i + 1 < argc)
		*o->val = argv[++*i];
	else
		return usage_error("option '%s' needs a value", a);
	return 0;
}

/* Fills *val of each option met and pos[] with the words, in any order. 0, or EXIT_USAGE. */
static int args_parse(int argc, char **argv, const struct opt *opts, const char **pos, int maxpos, int *npos)
{
	bool words_only = false;
	int i;

	*npos = 0;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (words_only || a[0] != '-' || !a[1]) {
			if (*npos == maxpos)
				return usage_error("unexpected argument '%s'", a);
			pos[(*npos)++] = a;
		} else if (!strcmp(a, "--")) {
			words_only = true;
		} else if (opt_take(argc, argv, &i, opts)) {
			return EXIT_USAGE;
		}
	}
	return 0;
}

/* ---- a text table: columns as wide as their widest cell, two spaces apart ---- */

struct table {
	size_t ncols, nrows, cap;
	char **cells; /* row-major, owned */
};

static int table_add(struct table *t, const char *const *row)
{
	size_t i;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));

		if (!c)
			return ENOMEM;
		t->cells = c;
		t->cap = cap;
	}
	for (i = 0; i < t->ncols; i++) {
		char *s = strdup(row[i] && row[i][0] ? row[i] : "-");

		if (!s) {
			while (i--)
				free(t->cells[t->nrows * t->ncols + i]);
			return ENOMEM;
		}
		t->cells[t->nrows * t->ncols + i] = s;
	}
	t->nrows++;
	return 0;
}

static void table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

/* Columns on a terminal: UTF-8 continuation bytes take none. */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* Row 0 is the header. */
static void table_print(const struct table *t)
{
	size_t width[16] = { 0 }, r, c;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols && c < 16; c++) {
			size_t w = text_width(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];

			if (c + 1 == t->ncols)
				printf("%s\n", s);
			else
				printf("%s%*s", s, (int)(width[c] - text_width(s) + 2), "");
		}
	}
}

/* ---- checks and hashes ---- */

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return false;
	return true;
}

/* Copies a hex HA1 in lower case; false unless it is exactly `digits` hex digits. */
static bool hex_copy(char *out, const char *in, size_t digits)
{
	size_t i;

	for (i = 0; in[i]; i++) {
		char ch = in[i];

		if (i == digits)
			return false;
		if (ch >= 'A' && ch <= 'F')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
		out[i] = ch;
	}
	out[i] = '\0';
	return i == digits;
}

/* out = lower-case hex of md(name ":" realm ":" password). 0 or EIO. */
static int ha1_hex(const EVP_MD *md, const char *name, const char *realm, const char *password, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0, i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (!ctx)
		return ENOMEM;
	ok = EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, name, strlen(name)) &&
	     EVP_DigestUpdate(ctx, ":", 1) && EVP_DigestUpdate(ctx, realm, strlen(realm)) &&
	     EVP_DigestUpdate(ctx, ":", 1) && EVP_DigestUpdate(ctx, password, strlen(password)) &&
	     EVP_DigestFinal_ex(ctx, h, &hl);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return EIO;
	for (i = 0; i < hl; i++) {
		out[2 * i] = hex[h[i] >> 4];
		out[2 * i + 1] = hex[h[i] & 15];
	}
	out[2 * hl] = '\0';
	OPENSSL_cleanse(h, sizeof(h));
	return 0;
}

/* One line from stdin into buf. On a terminal: a prompt on stderr and no echo. 0, or 1 after saying why. */
static int read_line(const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	char *ok;
	size_t n;

	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	ok = fgets(buf, (int)size, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!ok) {
		error("no password on standard input");
		return 1;
	}
	n = strlen(buf);
	if (n && buf[n - 1] != '\n' && !feof(stdin)) {
		error("password longer than %d characters", PASSWORD_MAX - 2);
		return 1;
	}
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return 0;
}

/* Credentials from --password, --ha1/--ha1-sha256, or stdin, into u; *used = the realm hashed with (NULL
 * for given HA1s). 0, EXIT_ERR or EXIT_USAGE. */
static int credentials_set(struct store_user *u, const char *password, const char *ha1, const char *ha1_256,
			   const char *realm, const char **used)
{
	char pw[PASSWORD_MAX], again[PASSWORD_MAX];
	int ret = EXIT_OK;

	if (password && (ha1 || ha1_256))
		return usage_error("give --password or --ha1/--ha1-sha256, not both");
	if ((ha1 || ha1_256) && realm)
		return usage_error("--realm goes with a password; an HA1 has its realm in it already");
	*used = NULL;
	if (ha1 || ha1_256) {
		u->ha1_md5[0] = u->ha1_sha256[0] = '\0';
		if (ha1 && !hex_copy(u->ha1_md5, ha1, 32))
			return usage_error("--ha1 takes 32 hex digits (MD5 of NAME:REALM:PASSWORD)");
		if (ha1_256 && !hex_copy(u->ha1_sha256, ha1_256, 64))
			return usage_error("--ha1-sha256 takes 64 hex digits (SHA-256 of NAME:REALM:PASSWORD)");
		return EXIT_OK;
	}
	if (!realm)
		realm = realm_default;
	*used = realm;
	if (!*realm)
		return usage_error("the realm is empty");
	if (!password) {
		if (read_line("Password: ", pw, sizeof(pw)))
			return EXIT_ERR;
		if (isatty(STDIN_FILENO)) {
			if (read_line("Again: ", again, sizeof(again)))
				ret = EXIT_ERR;
			else if (strcmp(pw, again)) {
				error("the passwords differ");
				ret = EXIT_ERR;
			}
			OPENSSL_cleanse(again, sizeof(again));
		}
		password = pw;
	}
	if (!ret && !*password) {
		error("the password is empty");
		ret = EXIT_ERR;
	}
	if (!ret && (ha1_hex(EVP_md5(), u->name, realm, password, u->ha1_md5) ||
		     ha1_hex(EVP_sha256(), u->name, realm, password, u->ha1_sha256))) {
		error("cannot compute the hashes (libcrypto)");
		ret = EXIT_ERR;
	}
	OPENSSL_cleanse(pw, sizeof(pw));
	return ret;
}

/* ---- the database ---- */

/* With -c: the database and the realm as sipd would take them from its configuration (auth.c: [auth]
 * realm, else the first domain, else "sipd"). 0, or 1 after saying why. */
static int conf_read(char *db, size_t dbsize)
{
	static struct config cfg;
	static char errs[8192];
	int n;

	config_defaults(&cfg);
	n = config_load(&cfg, conf_opt, errs, sizeof(errs));
	if (n < 0) {
		error("cannot open %s: %s", conf_opt, strerror(errno));
		return 1;
	}
	if (n > 0) {
		fputs(errs, stderr);
		error("%d error(s) in %s", n, conf_opt);
		config_free(&cfg);
		return 1;
	}
	snprintf(db, dbsize, "%s", cfg.db_path);
	snprintf(conf_sock, sizeof(conf_sock), "%s", cfg.control_socket);
	if (cfg.realm[0])
		snprintf(realm_default, sizeof(realm_default), "%s", cfg.realm);
	else if (cfg.domain[0])
		snprintf(realm_default, sizeof(realm_default), "%.*s", (int)strcspn(cfg.domain, ", \t"), cfg.domain);
	config_free(&cfg);
	return 0;
}

/* The file db_open(true) made, when it made one: a user add that fails takes it away again. */
static char db_created[CONFIG_STR];

/* Removes the database db_open just created, with SQLite's side files. */
static void db_created_remove(void)
{
	static const char *const side[] = { "", "-wal", "-shm", "-journal" };
	char f[CONFIG_STR + 16];

	for (size_t i = 0; db_created[0] && i < sizeof(side) / sizeof(side[0]); i++) {
		snprintf(f, sizeof(f), "%s%s", db_created, side[i]);
		unlink(f);
	}
	db_created[0] = '\0';
}

/* The database's URL: -d, else -c's [database] path, else sipd.db. -c's file is read in any case (the
 * realm and the control socket come from it too); NULL after saying why it could not be. */
static const char *db_url(void)
{
	static char conf_db[CONFIG_STR];
	const char *url = DEFAULT_DB;

	if (conf_opt) {
		if (conf_read(conf_db, sizeof(conf_db)))
			return NULL;
		url = conf_db;
	}
	return db_opt ? db_opt : url;
}

/* Opens the database (-d, else -c's [database] path, else sipd.db); unless create, it must exist
 * already (a typo in -d should not make a new, empty file). NULL after saying why. */
static struct store *db_open(bool create)
{
	const char *url = db_url(), *path, *why = NULL;
	struct store *s = NULL;
	int err;

	if (!url)
		return NULL;
	path = store_file(url);
	if (!path) /* another scheme: store_open says so */
		path = url;
	if (!create && *path && access(path, F_OK)) {
		error("no database at %s (give -d PATH or -c sipd.conf, or create one with 'sipctl user add')", path);
		return NULL;
	}
	if (create && *path && access(path, F_OK))
		snprintf(db_created, sizeof(db_created), "%s", path);
	err = store_open(&s, url, true, &why);
	if (err) {
		error("cannot open database %s: %s", url, why ? why : strerror(err));
		db_created_remove();
		return NULL;
	}
	return s;
}

/* ---- commands ---- */

/* A user about to be added against one already stored: its name or extension may not be another's. */
struct clash {
	const struct store_user *add;
	char msg[200];
};

static int clash_check(const struct store_user *u, void *arg)
{
	struct clash *c = arg;
	const char *ext = c->add->extension;

	if (ext[0] && (!strcmp(ext, u->name) || !strcmp(ext, u->extension)))
		snprintf(c->msg, sizeof(c->msg), "extension %s is already user '%s''s %s", ext, u->name,
			 strcmp(ext, u->name) ? "extension" : "name");
	else if (u->extension[0] && !strcmp(c->add->name, u->extension))
		snprintf(c->msg, sizeof(c->msg), "'%s' is already user '%s''s extension", c->add->name, u->name);
	return c->msg[0] != '\0';
}

static int cmd_user_add(int argc, char **argv)
{
	const char *password = NULL, *ha1 = NULL, *ha1_256 = NULL, *realm = NULL, *ext = NULL, *display = NULL;
	const struct opt opts[] = {
		{ "--password", "-p", &password }, { "--ha1", NULL, &ha1 },
		{ "--ha1-sha256", NULL, &ha1_256 }, { "--realm", "-r", &realm },
		{ "--extension", "-e", &ext },     { "--display", NULL, &display },
		{ NULL, NULL, NULL },
	};
	struct store_user u, old;
	struct clash clash = { .add = &u };
	const char *used = NULL;
	struct store *s = NULL;
	const char *pos[1];
	int npos, ret, err;

	ret = args_parse(argc, argv, opts, pos, 1, &npos);
	if (ret)
		return ret;
	if (npos != 1)
		return usage_error("user add NAME: which user?");
	if (!config_user_name_ok(pos[0]))
		return usage_error("bad user name '%s' (1 to 63 bytes; no spaces, ':', '@', ';' or '\"')", pos[0]);
	memset(&u, 0, sizeof(u));
	strcpy(u.name, pos[0]);
	if (ext && (strlen(ext) >= sizeof(u.extension) || !config_extension_ok(ext)))
		return usage_error("bad extension '%s' (a number: digits, '*' or '#' after an optional '+'; up to 31 bytes)",
				   ext);
	if (display && (strlen(display) >= sizeof(u.display_name) || !printable(display)))
		return usage_error("bad display name (up to 127 bytes, no control characters)");
	if (ext)
		strcpy(u.extension, ext);
	if (display)
		strcpy(u.display_name, display);

	s = db_open(true);
	if (!s)
		return EXIT_ERR;
	err = store_user_get(s, u.name, &old);
	if (!err) {
		error("user '%s' exists already (change the password with 'sipctl user passwd %s')", u.name, u.name);
		ret = EXIT_ERR;
		goto out;
	}
	if (err != ENOENT) {
		error("cannot read users: %s", strerror(err));
		ret = EXIT_ERR;
		goto out;
	}
	err = store_user_list(s, clash_check, &clash);
	if (err || clash.msg[0]) {
		if (clash.msg[0])
			error("%s: two users would answer to one address", clash.msg);
		else
			error("cannot read users: %s", strerror(err));
		ret = EXIT_ERR;
		goto out;
	}
	ret = credentials_set(&u, password, ha1, ha1_256, realm, &used);
	if (ret)
		goto out;
	err = store_user_put(s, &u);
	if (err) {
		error("cannot add user '%s': %s", u.name, strerror(err));
		ret = EXIT_ERR;
		goto out;
	}
	if (used)
		printf("user %s added (HA1s for realm \"%s\")\n", u.name, used);
	else
		printf("user %s added\n", u.name);
out:
	OPENSSL_cleanse(&u, sizeof(u));
	store_close(s);
	if (ret)
		db_created_remove(); /* no empty database left behind by a user that was not added */
	return ret;
}

/* Reads user NAME, lets change() edit it, writes it back, says what it did: realm NULL for enable /
 * disable, else the realm hashed with (*realm NULL when HA1s were given). */
static int user_edit(struct store *s, const char *name, int (*change)(struct store_user *u, void *arg), void *arg,
		     const char *const *realm)
{
	struct store_user u;
	int err, ret;

	err = store_user_get(s, name, &u);
	if (err) {
		if (err == ENOENT)
			error("no user '%s'", name);
		else
			error("cannot read user '%s': %s", name, strerror(err));
		return EXIT_ERR;
	}
	ret = change(&u, arg);
	if (!ret) {
		err = store_user_put(s, &u);
		if (err) {
			error("cannot update user '%s': %s", name, strerror(err));
			ret = EXIT_ERR;
		} else if (!realm) {
			printf("user %s %s\n", name, u.disabled ? "disabled" : "enabled");
		} else if (*realm) {
			printf("user %s password changed (HA1s for realm \"%s\")\n", name, *realm);
		} else {
			printf("user %s password changed\n", name);
		}
	}
	OPENSSL_cleanse(&u, sizeof(u));
	return ret;
}

struct passwd_args {
	const char *password, *ha1, *ha1_256, *realm, *used;
};

static int passwd_change(struct store_user *u, void *arg)
{
	struct passwd_args *a = arg;

	return credentials_set(u, a->password, a->ha1, a->ha1_256, a->realm, &a->used);
}

/* The arguments of "user CMD NAME [opts]": NAME, and the database open. 0, EXIT_ERR or EXIT_USAGE. */
static int name_args(int argc, char **argv, const struct opt *opts, const char *cmd, const char **name,
		     struct store **sp)
{
	int npos, ret = args_parse(argc, argv, opts, name, 1, &npos);

	if (ret)
		return ret;
	if (npos != 1)
		return usage_error("user %s NAME: which user?", cmd);
	*sp = db_open(false);
	return *sp ? EXIT_OK : EXIT_ERR;
}

static int cmd_user_passwd(int argc, char **argv)
{
	struct passwd_args a = { NULL, NULL, NULL, NULL, NULL };
	const struct opt opts[] = {
		{ "--password", "-p", &a.password }, { "--ha1", NULL, &a.ha1 },
		{ "--ha1-sha256", NULL, &a.ha1_256 }, { "--realm", "-r", &a.realm },
		{ NULL, NULL, NULL },
	};
	struct store *s = NULL;
	const char *name;
	int ret = name_args(argc, argv, opts, "passwd", &name, &s);

	if (!ret)
		ret = user_edit(s, name, passwd_change, &a, &a.used);
	store_close(s);
	return ret;
}

static int disabled_change(struct store_user *u, void *arg)
{
	u->disabled = *(bool *)arg;
	return 0;
}

static int cmd_user_enable(int argc, char **argv, bool disable)
{
	struct store *s = NULL;
	const char *name;
	int ret = name_args(argc, argv, NULL, disable ? "disable" : "enable", &name, &s);

	if (!ret)
		ret = user_edit(s, name, disabled_change, &disable, NULL);
	store_close(s);
	return ret;
}

static int unregister_who(struct store *s, const char *who, const char *contact, size_t *total);

/* The user goes, and with it the registrations of its name and its extension: a running sipd would
 * route nothing to them any more (404), and they would only clutter show registrations until expiry. */
static int cmd_user_del(int argc, char **argv)
{
	struct store *s = NULL;
	struct store_user u;
	const char *name;
	size_t gone = 0;
	int err, ret = name_args(argc, argv, NULL, "del", &name, &s);

	if (ret)
		return ret;
	if (store_user_get(s, name, &u))
		u.extension[0] = '\0';
	err = store_user_del(s, name);
	if (err == ENOENT)
		error("no user '%s'", name);
	else if (err)
		error("cannot delete user '%s': %s", name, strerror(err));
	else
		printf("user %s deleted\n", name);
	if (!err && (unregister_who(s, name, NULL, &gone) ||
		     (u.extension[0] && unregister_who(s, u.extension, NULL, &gone))))
		error("user %s deleted, but its registrations could not all be removed (sipctl unregister)", name);
	store_close(s);
	return err ? EXIT_ERR : EXIT_OK;
}

static int user_row(const struct store_user *u, void *arg)
{
	const char *ha1 = u->ha1_md5[0] && u->ha1_sha256[0] ? "md5,sha256"
			  : u->ha1_md5[0]                       ? "md5"
			  : u->ha1_sha256[0]                    ? "sha256"
								: "none";
	const char *row[] = { u->name, u->extension, u->display_name, u->disabled ? "yes" : "no", ha1 };

	return table_add(arg, row);
}

static int cmd_user_list(int argc, char **argv)
{
	static const char *const head[] = { "NAME", "EXTENSION", "DISPLAY NAME", "DISABLED", "HA1" };
	struct table t = { .ncols = 5 };
	struct store *s;
	const char *pos[1];
	int npos, ret, err;

	ret = args_parse(argc, argv, NULL, pos, 0, &npos);
	if (ret)
		return ret;
	s = db_open(false);
	if (!s)
		return EXIT_ERR;
	err = table_add(&t, head);
	if (!err)
		err = store_user_list(s, user_row, &t);
	if (err) {
		error("cannot list users: %s", strerror(err));
		ret = EXIT_ERR;
	} else {
		table_print(&t);
		printf("%zu user%s\n", t.nrows - 1, t.nrows == 2 ? "" : "s");
	}
	table_free(&t);
	store_close(s);
	return ret;
}

/* The AORs that `unregister` and `show registrations` take WHO for: itself when it is a URI (sip:,
 * sips:), "sip:WHO" for user@host, and for a bare user name each AOR whose user part it is. */
static bool aor_is(const char *aor, const char *who)
{
	const char *u = strchr(aor, ':');
	size_t wl = strlen(who);

	if (!strncmp(who, "sip:", 4) || !strncmp(who, "sips:", 5))
		return !strcmp(aor, who);
	if (strchr(who, '@'))
		return !strncmp(aor, "sip:", 4) && !strcmp(aor + 4, who);
	return u && !strncmp(u + 1, who, wl) && u[1 + wl] == '@';
}

struct regs {
	struct table t;
	const char *who; /* only these AORs (aor_is); NULL: all */
	int64_t now;
	size_t aors;
	char last_aor[sizeof(((struct store_binding *)0)->aor)];
};

static int reg_row(const struct store_binding *b, void *arg)
{
	struct regs *r = arg;
	char transport[16] = "", left[24], q[16] = "";
	const char *addr = b->received, *colon = strchr(b->received, ':');
	const char *sock = strchr(b->local, ':'); /* "udp:192.0.2.7:5060": the transport is said already */
	const char *row[9];

	if (r->who && !aor_is(b->aor, r->who))
		return 0;
	/* received is "udp:192.0.2.1:5060" or "tcp:[2001:db8::1]:5060" */
	if (colon && (size_t)(colon - b->received) < sizeof(transport)) {
		memcpy(transport, b->received, (size_t)(colon - b->received));
		transport[colon - b->received] = '\0';
		addr = colon + 1;
	}
	snprintf(left, sizeof(left), "%lld", (long long)store_binding_left(b->expires, r->now));
	if (b->q >= 0) {
		int frac = b->q % 1000, len;

		len = snprintf(q, sizeof(q), "%d", b->q / 1000);
		if (frac) {
			snprintf(q + len, sizeof(q) - (size_t)len, ".%03d", frac);
			len = (int)strlen(q);
			while (q[len - 1] == '0')
				q[--len] = '\0';
		}
	}
	if (strcmp(b->aor, r->last_aor)) {
		r->aors++;
		strcpy(r->last_aor, b->aor);
	}
	row[0] = b->aor;
	row[1] = b->contact;
	row[2] = addr;
	row[3] = transport;
	row[4] = sock ? sock + 1 : "-";
	row[5] = natping_behind_nat(b->contact, b->received) ? "yes" : "no";
	row[6] = left;
	row[7] = b->user_agent;
	row[8] = q;
	return table_add(&r->t, row);
}

static int show_blocks(void);

static int cmd_show(int argc, char **argv)
{
	static const char *const head[] = { "AOR", "CONTACT", "RECEIVED", "TRANSPORT", "SOCKET", "NAT", "EXPIRES",
					    "USER-AGENT", "Q" };
	struct regs r;
	struct store *s;
	const char *pos[2];
	int npos, ret, err;

	ret = args_parse(argc, argv, NULL, pos, 2, &npos);
	if (ret)
		return ret;
	if (npos == 1 && !strcmp(pos[0], "blocks"))
		return show_blocks();
	if (npos < 1 || (strcmp(pos[0], "registrations") && strcmp(pos[0], "regs")))
		return usage_error("show what? (show registrations [AOR|USER], show blocks)");
	memset(&r, 0, sizeof(r));
	r.who = npos == 2 ? pos[1] : NULL;
	r.t.ncols = 9;
	r.now = (int64_t)time(NULL);
	s = db_open(false);
	if (!s)
		return EXIT_ERR;
	err = table_add(&r.t, head);
	if (!err)
		err = store_bindings_list(s, r.now, reg_row, &r);
	if (err) {
		error("cannot read registrations: %s", strerror(err));
		ret = EXIT_ERR;
	} else {
		table_print(&r.t);
		printf("%zu registration%s, %zu AOR%s\n", r.t.nrows - 1, r.t.nrows == 2 ? "" : "s", r.aors,
		       r.aors == 1 ? "" : "s");
	}
	table_free(&r.t);
	store_close(s);
	return ret;
}

struct who_aors {
	const char *who;
	char (*aor)[sizeof(((struct store_binding *)0)->aor)];
	size_t n, cap;
};

static int who_aor_add(const struct store_binding *b, void *arg)
{
	struct who_aors *a = arg;

	if (!aor_is(b->aor, a->who) || (a->n && !strcmp(a->aor[a->n - 1], b->aor)))
		return 0; /* listed by AOR: one entry each */
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4;
		void *v = realloc(a->aor, cap * sizeof(*a->aor));

		if (!v)
			return ENOMEM;
		a->aor = v;
		a->cap = cap;
	}
	strcpy(a->aor[a->n++], b->aor);
	return 0;
}

/* Removes the bindings of each AOR who names (with contact: that one only), a line each on stdout; adds
 * how many went to *total. 0 or an errno. */
static int unregister_who(struct store *s, const char *who, const char *contact, size_t *total)
{
	struct who_aors a = { .who = who };
	size_t removed;
	int err = store_bindings_list(s, (int64_t)time(NULL), who_aor_add, &a);

	for (size_t i = 0; i < a.n && !err; i++) {
		err = store_unbind(s, a.aor[i], contact, &removed);
		if (!err && removed)
			printf("%s: %zu binding%s removed\n", a.aor[i], removed, removed == 1 ? "" : "s");
		*total += err ? 0 : removed;
	}
	free(a.aor);
	return err;
}

static int cmd_unregister(int argc, char **argv)
{
	const char *pos[2], *contact;
	size_t total = 0;
	struct store *s;
	int npos, ret, err = 0;

	ret = args_parse(argc, argv, NULL, pos, 2, &npos);
	if (ret)
		return ret;
	if (npos < 1 || !pos[0][0])
		return usage_error("unregister whom? (unregister AOR|USER [CONTACT])");
	contact = npos == 2 ? pos[1] : NULL;
	s = db_open(false);
	if (!s)
		return EXIT_ERR;
	err = unregister_who(s, pos[0], contact, &total);
	if (err) {
		error("cannot remove registrations: %s", strerror(err));
		ret = EXIT_ERR;
	} else if (!total) {
		error("no registration of %s%s%s", pos[0], contact ? " with contact " : "", contact ? contact : "");
		ret = EXIT_ERR;
	}
	store_close(s);
	return ret;
}

/* ---- commands for the running sipd, through its control socket ---- */

/* Sends the words to sipd and returns its answer's lines after "OK" (malloc'd; *body points into it),
 * or NULL after saying why. */
static char *ask_sipd(int argc, char **argv, char **body)
{
	const char *db = db_url(), *file;
	char path[CONFIG_STR], *answer = NULL;
	int err;

	if (!db)
		return NULL;
	file = store_file(db);
	err = config_control_path(sock_opt ? sock_opt : conf_sock, file ? file : db, path, sizeof(path));
	if (err == ENOENT) {
		error("the configuration has no control socket ([general] control_socket = none)");
		return NULL;
	}
	if (err) {
		error("the control socket's path is too long for a Unix socket: give -s PATH");
		return NULL;
	}
	err = ctl_request(path, argc, argv, &answer, 5000);
	if (err == ENOENT || err == ECONNREFUSED)
		error("sipd does not answer on %s: is it running? (-s PATH, or -c with its configuration)", path);
	else if (err == EACCES)
		error("%s: permission denied: run sipctl as the user sipd runs as, or as root", path);
	else if (err == EINVAL)
		error("an argument is empty or has white space in it");
	else if (err)
		error("%s: %s", path, strerror(err));
	if (err)
		return NULL;
	if (strncmp(answer, "OK\n", 3)) {
		size_t l = strcspn(answer, "\n");

		error("sipd: %.*s", (int)l, !strncmp(answer, "ERR ", 4) ? answer + 4 : answer);
		free(answer);
		return NULL;
	}
	*body = answer + 3;
	return answer;
}

static int cmd_ping(int argc, char **argv)
{
	char *words[] = { "ping" }, *body, *answer;
	const char *pos[1];
	int npos, ret = args_parse(argc, argv, NULL, pos, 0, &npos);

	if (ret)
		return ret;
	if (!(answer = ask_sipd(1, words, &body)))
		return EXIT_ERR;
	fputs(body, stdout);
	free(answer);
	return EXIT_OK;
}

static int show_blocks(void)
{
	static const char *const head[] = { "KIND", "USER", "ADDRESS", "LEFT", "BLOCK" };
	char *words[] = { "show", "blocks" }, *body, *answer, *line, *save = NULL;
	struct table t = { .ncols = 5 };
	int err;

	if (!(answer = ask_sipd(2, words, &body)))
		return EXIT_ERR;
	err = table_add(&t, head);
	for (line = strtok_r(body, "\n", &save); line && !err; line = strtok_r(NULL, "\n", &save)) {
		const char *row[5] = { 0 };
		char left[32], len[32], *f, *fsave = NULL;
		int i = 0;

		for (f = strtok_r(line, "\t", &fsave); f && i < 5; f = strtok_r(NULL, "\t", &fsave))
			row[i++] = f;
		if (i != 5)
			continue;
		snprintf(left, sizeof(left), "%ss", row[3]);
		snprintf(len, sizeof(len), "%ss", row[4]);
		row[3] = left;
		row[4] = len;
		err = table_add(&t, row);
	}
	free(answer);
	if (err) {
		error("%s", strerror(err));
		table_free(&t);
		return EXIT_ERR;
	}
	if (t.nrows > 1)
		table_print(&t);
	printf("%zu block%s\n", t.nrows - 1, t.nrows == 2 ? "" : "s");
	table_free(&t);
	return EXIT_OK;
}

static int cmd_unblock(int argc, char **argv)
{
	char *words[CTL_WORDS_MAX], *body, *answer;
	const char *pos[4];
	int npos, ret = args_parse(argc, argv, NULL, pos, 4, &npos);
	long lifted;

	if (ret)
		return ret;
	if (!(npos == 1 && !strcmp(pos[0], "all")) && npos != 2 && npos != 4)
		return usage_error("unblock whom? (unblock user NAME [address ADDR] | unblock address ADDR | unblock all)");
	words[0] = "unblock";
	for (int i = 0; i < npos; i++)
		words[i + 1] = (char *)pos[i];
	if (!(answer = ask_sipd(npos + 1, words, &body)))
		return EXIT_ERR;
	lifted = strtol(body, NULL, 10);
	printf("%ld block%s lifted\n", lifted, lifted == 1 ? "" : "s");
	free(answer);
	return EXIT_OK;
}

static int cmd_user(int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";

	if (!strcmp(sub, "add"))
		return cmd_user_add(argc - 1, argv + 1);
	if (!strcmp(sub, "passwd") || !strcmp(sub, "password"))
		return cmd_user_passwd(argc - 1, argv + 1);
	if (!strcmp(sub, "del") || !strcmp(sub, "delete") || !strcmp(sub, "rm"))
		return cmd_user_del(argc - 1, argv + 1);
	if (!strcmp(sub, "list") || !strcmp(sub, "ls") || !strcmp(sub, "show"))
		return cmd_user_list(argc - 1, argv + 1);
	if (!strcmp(sub, "disable"))
		return cmd_user_enable(argc - 1, argv + 1, true);
	if (!strcmp(sub, "enable"))
		return cmd_user_enable(argc - 1, argv + 1, false);
	if (!*sub)
		return usage_error("user what? (add, passwd, del, list, disable, enable)");
	return usage_error("unknown command 'user %s'", sub);
}

int main(int argc, char **argv)
{
	int i = 1;

	/* options before the command; the commands take them after too */
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (opt_take(argc, argv, &i, NULL))
			return EXIT_USAGE;
	}
	if (i >= argc)
		return usage_error("no command given");
	if (!strcmp(argv[i], "help")) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[i], "user") || !strcmp(argv[i], "users"))
		return cmd_user(argc - i - 1, argv + i + 1);
	if (!strcmp(argv[i], "show"))
		return cmd_show(argc - i - 1, argv + i + 1);
	if (!strcmp(argv[i], "unregister"))
		return cmd_unregister(argc - i - 1, argv + i + 1);
	if (!strcmp(argv[i], "unblock"))
		return cmd_unblock(argc - i - 1, argv + i + 1);
	if (!strcmp(argv[i], "ping"))
		return cmd_ping(argc - i - 1, argv + i + 1);
	return usage_error("unknown command '%s'", argv[i]);
}
