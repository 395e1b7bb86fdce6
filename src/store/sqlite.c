/* sqlite.c: the store over SQLite: the schema and its versions, statements prepared once, users,
 * bindings, and the transaction that makes a batch of binding changes durable.
 *
 * Durability. The database runs in WAL mode: a commit appends the transaction to the -wal file.
 * With synchronous=FULL SQLite fsyncs the WAL at every commit, so a change store_apply reported
 * survives a power loss. With synchronous=NORMAL the WAL is written (the bytes are in the kernel) at
 * commit but fsynced only at checkpoints: a commit survives the process dying (kill -9, a crash), not
 * the machine losing power.
 *
 * Threads. Every call takes the store's mutex for its whole length, because the prepared statements
 * are shared (SQLITE_OPEN_FULLMUTEX alone would serialize single SQLite calls, not a bind-step-reset
 * sequence). That mutex is the only one: the connection is opened SQLITE_OPEN_NOMUTEX and SQLite's
 * memory statistics are off, which spares SQLite's own mutexes (about 60 per stored binding, one
 * per malloc). So any thread may call, one at a time; sipd calls from the writer thread or at
 * start-up. A callback (store_user_list, store_bindings_load, store_bindings_list) runs with the mutex
 * held and must not call back into the store: such a call returns EDEADLK rather than hanging.
 * Another process (sipctl beside a running sipd) waits up to 5 s for the write lock (busy_timeout). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "store/store.h"

#define STORE_BUSY_MS 5000

static pthread_once_t sqlite_configured = PTHREAD_ONCE_INIT;

/* Process-wide, before SQLite initializes: SQLITE_MISUSE when something already initialized it, which
 * only leaves the statistics on. */
static void sqlite_configure(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

#define BINDING_COLS_V3 "aor, contact, received, path, call_id, cseq, q, expires, updated, user_agent, instance"
#define BINDING_COLS_V6 BINDING_COLS_V3 ", local"
#define BINDING_COLS BINDING_COLS_V6 ", seq"

/* Schema versions: schema[v] takes a database from user_version v to v + 1. Append, never edit. */
static const char *const schema[] = {
	"CREATE TABLE users("
	" name TEXT PRIMARY KEY NOT NULL,"
	" ha1_md5 TEXT NOT NULL DEFAULT '',"    /* H(name:realm:password), lower-case hex; never the password */
	" ha1_sha256 TEXT NOT NULL DEFAULT '',"
	" extension TEXT NOT NULL DEFAULT '',"
	" display_name TEXT NOT NULL DEFAULT '',"
	" disabled INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE bindings("
	" aor TEXT NOT NULL,"
	" contact TEXT NOT NULL,"
	" received TEXT NOT NULL DEFAULT '',"   /* "udp:192.0.2.1:5060" */
	" path TEXT NOT NULL DEFAULT '',"
	" call_id TEXT NOT NULL DEFAULT '',"
	" cseq INTEGER NOT NULL DEFAULT 0,"
	" q INTEGER,"                           /* thousandths; NULL = none */
	" expires INTEGER NOT NULL,"            /* absolute, Unix seconds */
	" updated INTEGER NOT NULL DEFAULT 0,"
	" user_agent TEXT NOT NULL DEFAULT '',"
	" instance TEXT NOT NULL DEFAULT '',"
	" PRIMARY KEY(aor, contact));"
	"CREATE INDEX bindings_expires ON bindings(expires);",
	/* v2: a generation counter of the users table, moved by triggers (so that rows written by any
	 * program count), which sipd polls instead of reading every user again */
	"CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL DEFAULT 0);"
	"INSERT INTO meta(key, value) VALUES('users_generation', 1);"
	"CREATE TRIGGER users_gen_ins AFTER INSERT ON users BEGIN"
	" UPDATE meta SET value = value + 1 WHERE key = 'users_generation'; END;"
	"CREATE TRIGGER users_gen_upd AFTER UPDATE ON users BEGIN"
	" UPDATE meta SET value = value + 1 WHERE key = 'users_generation'; END;"
	"CREATE TRIGGER users_gen_del AFTER DELETE ON users BEGIN"
	" UPDATE meta SET value = value + 1 WHERE key = 'users_generation'; END;",
	/* v3: bindings clustered on their key (WITHOUT ROWID) and without the expires index: a binding
	 * written is one b-tree insert, not three (rowid table, key index, expires index). Expiry is the
	 * location service's timers' business; the store reads by expiry only at start, in one scan. */
	"CREATE TABLE bindings_v3("
	" aor TEXT NOT NULL,"
	" contact TEXT NOT NULL,"
	" received TEXT NOT NULL DEFAULT '',"
	" path TEXT NOT NULL DEFAULT '',"
	" call_id TEXT NOT NULL DEFAULT '',"
	" cseq INTEGER NOT NULL DEFAULT 0,"
	" q INTEGER,"
	" expires INTEGER NOT NULL,"
	" updated INTEGER NOT NULL DEFAULT 0,"
	" user_agent TEXT NOT NULL DEFAULT '',"
	" instance TEXT NOT NULL DEFAULT '',"
	" PRIMARY KEY(aor, contact)) WITHOUT ROWID;"
	"INSERT INTO bindings_v3 SELECT " BINDING_COLS_V3 " FROM bindings;"
	"DROP TABLE bindings;"
	"ALTER TABLE bindings_v3 RENAME TO bindings;",
	/* v4: keys that must outlive a restart and be the same for every process on the database (the
	 * proxy's Record-Route signature, so that the dialogs of a restarted sipd go on) */
	"CREATE TABLE secrets(name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);",
	/* v5: bindings an administrator removed (sipctl unregister) that a running sipd must drop from its
	 * memory too; contact '' is every binding of the AOR */
	"CREATE TABLE unbind(id INTEGER PRIMARY KEY, aor TEXT NOT NULL, contact TEXT NOT NULL DEFAULT '');",
	/* v6: the listener a binding registered through ("udp:192.0.2.7:5060"), from which requests to the
	 * phone leave: its NAT lets in only what comes from where it sent ('' for older rows: the first) */
	"ALTER TABLE bindings ADD COLUMN local TEXT NOT NULL DEFAULT '';",
	/* v7: bindings by row number (seq: store_seq_next), a binding's for its life, without a key on
	 * (aor, contact): a new binding is a row appended at the table's end and a refresh rewrites its row
	 * found by number, where a search of the table by a text key was. The registrar names the rows,
	 * from the numbers its memory keeps; should two rows of one binding ever be there, a load keeps
	 * the newer. */
	"CREATE TABLE bindings_v7("
	" seq INTEGER PRIMARY KEY,"
	" aor TEXT NOT NULL,"
	" contact TEXT NOT NULL,"
	" received TEXT NOT NULL DEFAULT '',"
	" path TEXT NOT NULL DEFAULT '',"
	" call_id TEXT NOT NULL DEFAULT '',"
	" cseq INTEGER NOT NULL DEFAULT 0,"
	" q INTEGER,"
	" expires INTEGER NOT NULL,"
	" updated INTEGER NOT NULL DEFAULT 0,"
	" user_agent TEXT NOT NULL DEFAULT '',"
	" instance TEXT NOT NULL DEFAULT '',"
	" local TEXT NOT NULL DEFAULT '');"
	"INSERT INTO bindings_v7(" BINDING_COLS_V6 ") SELECT " BINDING_COLS_V6 " FROM bindings;"
	"DROP TABLE bindings;"
	"ALTER TABLE bindings_v7 RENAME TO bindings;",
};
#define SCHEMA_VERSION ((int)(sizeof(schema) / sizeof(schema[0])))

/* PUT_RUN bindings written (or rows deleted) by one statement: SQLite spends 1 500 to 3 000 instructions
 * per statement besides its rows (the step, the statement's savepoint, the halt), about what a row's own
 * insert costs; 16 rows share it. The parameters are anonymous: row r, column c is parameter
 * PUT_COLS r + c + 1 (BINDING_COLS' order, the row number last). */
#define PUT_RUN 16
#define PUT_COLS 13
#define PUT_ROW "(?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define PUT_ROWS_4 PUT_ROW "," PUT_ROW "," PUT_ROW "," PUT_ROW
#define PUT_ROWS_16 PUT_ROWS_4 "," PUT_ROWS_4 "," PUT_ROWS_4 "," PUT_ROWS_4
_Static_assert(sizeof(PUT_ROW) - 1 == 2 * PUT_COLS + 1, "PUT_ROW holds PUT_COLS parameters");
_Static_assert(sizeof(PUT_ROWS_16) - 1 == PUT_RUN * (2 * PUT_COLS + 2) - 1, "PUT_ROWS_16 holds PUT_RUN rows");
#define DEL_SEQS_16 "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_Static_assert(sizeof(DEL_SEQS_16) - 1 == 2 * PUT_RUN + 1, "DEL_SEQS_16 holds PUT_RUN row numbers");

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_USER_GET,
	ST_USER_PUT,
	ST_USER_DEL,
	ST_USER_LIST,
	ST_USER_GEN,
	ST_BIND_PUT,
	ST_BIND_PUT_RUN,
	ST_BIND_DEL,
	ST_BIND_DEL_SEQ,
	ST_BIND_DEL_SEQ_RUN,
	ST_BIND_DEDUP,
	ST_SEQ_MAX,
	ST_AOR_DEL,
	ST_BIND_EXPIRE,
	ST_BIND_LIVE,
	ST_BIND_LIST,
	ST_BIND_AOR,
	ST_UNBIND_ADD,
	ST_UNBIND_LIST,
	ST_UNBIND_DONE,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE", /* take the write lock now, not at the first write */
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_USER_GET] = "SELECT name, ha1_md5, ha1_sha256, extension, display_name, disabled FROM users WHERE name = ?1",
	[ST_USER_PUT] = "INSERT OR REPLACE INTO users(name, ha1_md5, ha1_sha256, extension, display_name, disabled)"
			" VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_USER_DEL] = "DELETE FROM users WHERE name = ?1",
	[ST_USER_LIST] = "SELECT name, ha1_md5, ha1_sha256, extension, display_name, disabled FROM users ORDER BY name",
	[ST_USER_GEN] = "SELECT value FROM meta WHERE key = 'users_generation'",
	[ST_BIND_PUT] = "INSERT OR REPLACE INTO bindings(" BINDING_COLS ") VALUES" PUT_ROW,
	[ST_BIND_PUT_RUN] = "INSERT OR REPLACE INTO bindings(" BINDING_COLS ") VALUES" PUT_ROWS_16,
	[ST_BIND_DEL] = "DELETE FROM bindings WHERE aor = ?1 AND contact = ?2",
	[ST_BIND_DEL_SEQ] = "DELETE FROM bindings WHERE seq = ?1",
	[ST_BIND_DEL_SEQ_RUN] = "DELETE FROM bindings WHERE seq IN " DEL_SEQS_16,
	[ST_BIND_DEDUP] = "DELETE FROM bindings WHERE seq NOT IN (SELECT max(seq) FROM bindings GROUP BY aor, contact)",
	[ST_SEQ_MAX] = "SELECT max(seq) FROM bindings",
	[ST_AOR_DEL] = "DELETE FROM bindings WHERE aor = ?1",
	[ST_BIND_EXPIRE] = "DELETE FROM bindings WHERE expires <= ?1",
	[ST_BIND_LIVE] = "SELECT " BINDING_COLS " FROM bindings WHERE expires > ?1",
	[ST_BIND_LIST] = "SELECT " BINDING_COLS " FROM bindings WHERE expires > ?1 ORDER BY aor, contact",
	[ST_BIND_AOR] = "SELECT " BINDING_COLS " FROM bindings WHERE expires > ?1 AND aor = ?2",
	[ST_UNBIND_ADD] = "INSERT INTO unbind(aor, contact) VALUES(?1, ?2)",
	[ST_UNBIND_LIST] = "SELECT id, aor, contact FROM unbind ORDER BY id LIMIT ?1",
	[ST_UNBIND_DONE] = "DELETE FROM unbind WHERE id <= ?1",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT]; /* prepared at open, finalized at close */
	pthread_mutex_t lock;       /* one call at a time (error-checking: a re-entrant call gets EDEADLK) */
	atomic_int_least64_t next_seq; /* store_seq_next's: above the file's rows when it was opened */
};

/* A string field is valid when it ends inside its array. */
#define FIELD_OK(f) (memchr((f), '\0', sizeof(f)) != NULL)

static bool hex_ok(const char *s, size_t want)
{
	size_t i;

	if (!*s)
		return true; /* unknown */
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == want;
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC); /* the caller steps before s goes away */
}

static void col_str(sqlite3_stmt *st, int i, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	size_t n = (size_t)sqlite3_column_bytes(st, i);

	if (!t)
		n = 0;
	if (n >= size)
		n = size - 1; /* a row written by something else than the store; cut, never overflow */
	if (n)
		memcpy(dst, t, n);
	dst[n] = '\0';
}

/* Steps a statement that returns no row and resets it: 0 or EIO. */
static int run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : EIO;
}

static int store_lock(struct store *s)
{
	return pthread_mutex_lock(&s->lock); /* 0 or EDEADLK */
}

static void store_unlock(struct store *s)
{
	pthread_mutex_unlock(&s->lock);
}

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int user_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*version = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Brings the schema to SCHEMA_VERSION. A current file costs one read (auth reopens the store every
 * few seconds; it must not take the write lock each time). Otherwise one transaction that reads the
 * version again, so two processes opening a new file at once do not both create it. */
static int schema_update(sqlite3 *db, const char **errmsg)
{
	int rc, version = 0;
	char sql[64];

	rc = user_version(db, &version);
	if (rc == SQLITE_OK && version == SCHEMA_VERSION)
		return 0;
	if (rc == SQLITE_OK)
		rc = exec(db, "BEGIN IMMEDIATE");
	if (rc == SQLITE_OK)
		rc = user_version(db, &version);
	if (rc != SQLITE_OK)
		goto fail;
	if (version > SCHEMA_VERSION) {
		exec(db, "ROLLBACK");
		*errmsg = "the database was written by a newer sipd (schema version too high)";
		return ENOTSUP;
	}
	for (; version < SCHEMA_VERSION; version++) {
		rc = exec(db, schema[version]);
		if (rc != SQLITE_OK)
			goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	rc = exec(db, sql);
	if (rc == SQLITE_OK)
		rc = exec(db, "COMMIT");
	if (rc == SQLITE_OK)
		return 0;
fail:
	*errmsg = sqlite3_errstr(rc);
	if (!sqlite3_get_autocommit(db))
		exec(db, "ROLLBACK");
	return rc == SQLITE_NOMEM ? ENOMEM : EIO;
}

const char *store_file(const char *url)
{
	const char *p = url;

	if (!strncmp(url, "sqlite:", 7))
		return url + (strncmp(url + 7, "//", 2) ? 7 : 9);
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (p > url && *p >= '0' && *p <= '9') ||
	       (p > url && (*p == '+' || *p == '-' || *p == '.')))
		p++;
	return p > url && *p == ':' ? NULL : url;
}

/* The file of url: 0, ENOTSUP for a scheme this build cannot store in, EINVAL for none. */
static int url_path(const char *url, const char **path)
{
	*path = store_file(url);
	if (!*path)
		return ENOTSUP;
	return **path ? 0 : EINVAL;
}

/* The first row number this process gives: above the file's last, and above 65 536 numbers for every
 * millisecond of the clock, so that two processes writing one file (two sipds on one database) take
 * numbers from ranges that cannot meet unless one gives 65 536 a millisecond since the other opened
 * it (the 63-bit numbers last 4 000 years so). */
static int64_t seq_start(int64_t last)
{
	struct timespec ts;
	int64_t by_clock = 0;

	if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec > 0)
		by_clock = ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000) << 16;
	return last + 1 > by_clock ? last + 1 : by_clock;
}

int store_open(struct store **sp, const char *url, bool sync_full, const char **errmsg)
{
	static const char *dummy;
	const char *path = NULL;
	struct store *s = NULL;
	pthread_mutexattr_t ma;
	sqlite3_stmt *st = NULL;
	int rc, err, i;

	if (!errmsg)
		errmsg = &dummy;
	*errmsg = NULL;
	if (!sp || !url) {
		*errmsg = "no database given";
		return EINVAL;
	}
	err = url_path(url, &path);
	if (err) {
		*errmsg = err == ENOTSUP ? "unsupported store (this build has sqlite: only)" : "empty database path";
		return err;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		*errmsg = "out of memory";
		return ENOMEM;
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	err = pthread_mutex_init(&s->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	if (err) {
		free(s);
		*errmsg = "cannot create a mutex";
		return err;
	}

	pthread_once(&sqlite_configured, sqlite_configure);
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(s->db, STORE_BUSY_MS);

	/* journal_mode answers the mode in force: anything but "wal" (e.g. a read-only file) is an error.
	 * ":memory:" answers "memory" and is accepted for tests. */
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(st, 0);

		rc = mode && (!strcmp(mode, "wal") || !strcmp(mode, "memory")) ? SQLITE_OK : SQLITE_CANTOPEN;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK) {
		if (rc == SQLITE_CANTOPEN) {
			*errmsg = "cannot switch the database to WAL mode (read-only file or directory?)";
			err = EIO;
			goto out;
		}
		goto fail;
	}
	rc = exec(s->db, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
	if (rc != SQLITE_OK)
		goto fail;
	err = schema_update(s->db, errmsg);
	if (err)
		goto out;
	for (i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
		if (rc != SQLITE_OK)
			goto fail;
	}
	rc = sqlite3_step(s->st[ST_SEQ_MAX]); /* the last row's number: a seek to the table's end */
	atomic_init(&s->next_seq, seq_start(rc == SQLITE_ROW ? sqlite3_column_int64(s->st[ST_SEQ_MAX], 0) : 0));
	sqlite3_reset(s->st[ST_SEQ_MAX]);
	if (rc != SQLITE_ROW)
		goto fail;
	err = 0;
	goto out;
fail:
	*errmsg = sqlite3_errstr(rc); /* static text: "unable to open database file", "file is not a database" */
	err = rc == SQLITE_NOMEM ? ENOMEM : EIO;
out:
	if (err)
		store_close(s);
	else
		*sp = s;
	return err;
}

int64_t store_seq_next(struct store *s)
{
	return atomic_fetch_add_explicit(&s->next_seq, 1, memory_order_relaxed);
}

void store_close(struct store *s)
{
	int i;

	if (!s)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db); /* every statement is finalized, so this closes */
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void user_read(sqlite3_stmt *st, struct store_user *u)
{
	memset(u, 0, sizeof(*u));
	col_str(st, 0, u->name, sizeof(u->name));
	col_str(st, 1, u->ha1_md5, sizeof(u->ha1_md5));
	col_str(st, 2, u->ha1_sha256, sizeof(u->ha1_sha256));
	col_str(st, 3, u->extension, sizeof(u->extension));
	col_str(st, 4, u->display_name, sizeof(u->display_name));
	u->disabled = sqlite3_column_int(st, 5) != 0;
}

int store_user_get(struct store *s, const char *name, struct store_user *u)
{
	sqlite3_stmt *st;
	int rc, err;

	if (!s || !name || !u)
		return EINVAL;
	err = store_lock(s);
	if (err)
		return err;
	st = s->st[ST_USER_GET];
	bind_str(st, 1, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		user_read(st, u);
	err = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? ENOENT : EIO;
	sqlite3_reset(st);
	store_unlock(s);
	return err;
}

/* 0, EINVAL (empty or unterminated name, an HA1 that is not lower-case hex of the right length), EIO. */
int store_user_put(struct store *s, const struct store_user *u)
{
	sqlite3_stmt *st;
	int err;

	if (!s || !u || !FIELD_OK(u->name) || !u->name[0] || !FIELD_OK(u->ha1_md5) || !FIELD_OK(u->ha1_sha256) ||
	    !FIELD_OK(u->extension) || !FIELD_OK(u->display_name) || !hex_ok(u->ha1_md5, 32) ||
	    !hex_ok(u->ha1_sha256, 64))
		return EINVAL;
	err = store_lock(s);
	if (err)
		return err;
	st = s->st[ST_USER_PUT];
	bind_str(st, 1, u->name);
	bind_str(st, 2, u->ha1_md5);
	bind_str(st, 3, u->ha1_sha256);
	bind_str(st, 4, u->extension);
	bind_str(st, 5, u->display_name);
	sqlite3_bind_int(st, 6, u->disabled ? 1 : 0);
	err = run(st);
	store_unlock(s);
	return err;
}

int store_user_del(struct store *s, const char *name)
{
	sqlite3_stmt *st;
	int err;

	if (!s || !name)
		return EINVAL;
	err = store_lock(s);
	if (err)
		return err;
	st = s->st[ST_USER_DEL];
	bind_str(st, 1, name);
	err = run(st);
	if (!err && sqlite3_changes(s->db) == 0)
		err = ENOENT;
	store_unlock(s);
	return err;
}

/* Users by name. 0, EIO, or the callback's non-zero value when it stopped the walk. */
int store_user_list(struct store *s, store_user_h *cb, void *arg)
{
	struct store_user u;
	sqlite3_stmt *st;
	int rc, err;

	if (!s || !cb)
		return EINVAL;
	err = store_lock(s);
	if (err)
		return err;
	st = s->st[ST_USER_LIST];
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		user_read(st, &u);
		err = cb(&u, arg);
		if (err)
			break;
	}
	if (!err && rc != SQLITE_DONE)
		err = EIO;
	sqlite3_reset(st);
	store_unlock(s);
	return err;
}

/* The users table's generation: it moves whenever a row of users is written, by sipd or anyone else. */
int store_users_generation(struct store *s, int64_t *gen)
{
	sqlite3_stmt *st;
	int err;

	if (!s || !gen)
		return EINVAL;
	err = store_lock(s);
	if (err)
		return err;
	st = s->st[ST_USER_GEN];
	if (sqlite3_step(st) == SQLITE_ROW)
		*gen = sqlite3_column_int64(st, 0);
	else
		err = EIO;
	sqlite3_reset(st);
	store_unlock(s);
	return err;
}

/* Rare (once at start): statements of their own rather than persistent ones. INSERT OR IGNORE, then the
 * read: two processes starting on a new database at once both read the one that won. */
int store_secret(struct store *s, const char *name, const uint8_t *fresh, size_t len, uint8_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc, err;

	if (!s || !name || !fresh || !len || !out)
		return EINVAL;
	err = store_lock(s);
	if (err)
		return err;
	rc = sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO secrets(name, value) VALUES(?1, ?2)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, fresh, (int)len, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(s->db, "SELECT value FROM secrets WHERE name = ?1", -1, &st, NULL);
	err = EIO;
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			const void *v = sqlite3_column_blob(st, 0);

			err = v && (size_t)sqlite3_column_bytes(st, 0) == len ? 0 : EINVAL;
			if (!err)
				memcpy(out, v, len);
		}
	}
	sqlite3_finalize(st);
	store_unlock(s);
	return err;
}

static void binding_read(sqlite3_stmt *st, struct store_binding *b)
{
	memset(b, 0, sizeof(*b));
	col_str(st, 0, b->aor, sizeof(b->aor));
	col_str(st, 1, b->contact, sizeof(b->contact));
	col_str(st, 2, b->received, sizeof(b->received));
	col_str(st, 3, b->path, sizeof(b->path));
	col_str(st, 4, b->call_id, sizeof(b->call_id));
	b->cseq = (uint32_t)sqlite3_column_int64(st, 5);
	b->q = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 6);
	b->expires = sqlite3_column_int64(st, 7);
	b->updated = sqlite3_column_int64(st, 8);
	col_str(st, 9, b->user_agent, sizeof(b->user_agent));
	col_str(st, 10, b->instance, sizeof(b->instance));
	col_str(st, 11, b->local, sizeof(b->local));
	b->seq = sqlite3_column_int64(st, 12);
}

/* Walks the live bindings with the lock held. */
static int bindings_walk(sqlite3_stmt *st, int64_t now, store_binding_h *cb, void *arg)
{
	struct store_binding b;
	int rc, err = 0;

	sqlite3_bind_int64(st, 1, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		binding_read(st, &b);
		err = cb(&b, arg);
		if (err)
			break;
	}
	if (!err && rc != SQLITE_DONE)
		err = EIO;
	sqlite3_reset(st);
	return err;
}

/* 0, EIO, or the callback's non-zero value when it stopped the walk. */
int store_bindings_load(struct store *s, int64_t now, store_binding_h *cb, void *arg)
{
	sqlite3_stmt *st;
	int err;

	if (!s || !cb)
		return EINVAL;
	err = store_lock(s);
	if (err)
		return err;
	err = run(s->st[ST_BIND_DEDUP]); /* two rows of one binding: only a writer's fault would leave them */
	st = s->st[ST_BIND_EXPIRE];
	sqlite3_bind_int64(st, 1, now);
	if (!err)
		err = run(st);
	if (!err)
		err = bindings_walk(s->st[ST_BIND_LIVE], now, cb, arg);
	store_unlock(s);
	return err;
}

/* A bindings query under the store's lock; aor, when given, is its second parameter. */
static int bindings_query(struct store *s, enum stmt_id id, const char *aor, int64_t now, store_binding_h *cb,
			  void *arg)
{
	int err;

	if (!s || !cb)
		return EINVAL;
	err = store_lock(s);
	if (err)
		return err;
	if (aor)
		bind_str(s->st[id], 2, aor);
	err = bindings_walk(s->st[id], now, cb, arg);
	store_unlock(s);
	return err;
}

int store_bindings_list(struct store *s, int64_t now, store_binding_h *cb, void *arg)
{
	return bindings_query(s, ST_BIND_LIST, NULL, now, cb, arg);
}

int store_bindings_of(struct store *s, const char *aor, int64_t now, store_binding_h *cb, void *arg)
{
	return aor ? bindings_query(s, ST_BIND_AOR, aor, now, cb, arg) : EINVAL;
}

static bool change_ok(const struct store_change *c)
{
	const struct store_binding *b = &c->b;

	if (!FIELD_OK(b->aor) || !b->aor[0])
		return false;
	switch (c->op) {
	case STORE_AOR_DEL:
		return true;
	case STORE_BINDING_DEL:
		return FIELD_OK(b->contact) && b->contact[0];
	case STORE_BINDING_PUT:
		return FIELD_OK(b->contact) && b->contact[0] && FIELD_OK(b->received) && FIELD_OK(b->path) &&
		       FIELD_OK(b->call_id) && FIELD_OK(b->user_agent) && FIELD_OK(b->instance) && FIELD_OK(b->local);
	}
	return false;
}

/* A binding's PUT_COLS parameters, from parameter base + 1 on (BINDING_COLS' order). */
static void bind_binding(sqlite3_stmt *st, int base, const struct store_binding *b)
{
	bind_str(st, base + 1, b->aor);
	bind_str(st, base + 2, b->contact);
	bind_str(st, base + 3, b->received);
	bind_str(st, base + 4, b->path);
	bind_str(st, base + 5, b->call_id);
	sqlite3_bind_int64(st, base + 6, b->cseq);
	if (b->q < 0)
		sqlite3_bind_null(st, base + 7);
	else
		sqlite3_bind_int(st, base + 7, b->q);
	sqlite3_bind_int64(st, base + 8, b->expires);
	sqlite3_bind_int64(st, base + 9, b->updated);
	bind_str(st, base + 10, b->user_agent);
	bind_str(st, base + 11, b->instance);
	bind_str(st, base + 12, b->local);
	if (b->seq > 0)
		sqlite3_bind_int64(st, base + 13, b->seq);
	else
		sqlite3_bind_null(st, base + 13); /* the next number after the table's last */
}

/* PUT_RUN bindings written by one statement. */
static int put_run_exec(struct store *s, const struct store_change *const c[PUT_RUN])
{
	sqlite3_stmt *st = s->st[ST_BIND_PUT_RUN];

	for (int r = 0; r < PUT_RUN; r++)
		bind_binding(st, r * PUT_COLS, &c[r]->b);
	return run(st);
}

static int put_exec(struct store *s, const struct store_binding *b)
{
	sqlite3_stmt *st = s->st[ST_BIND_PUT];

	bind_binding(st, 0, b);
	return run(st);
}

static int del_seq_exec(struct store *s, int64_t seq)
{
	sqlite3_stmt *st = s->st[ST_BIND_DEL_SEQ];

	sqlite3_bind_int64(st, 1, seq);
	return run(st);
}

/* PUT_RUN rows deleted by one statement. */
static int del_run_exec(struct store *s, const int64_t seq[PUT_RUN])
{
	sqlite3_stmt *st = s->st[ST_BIND_DEL_SEQ_RUN];

	for (int r = 0; r < PUT_RUN; r++)
		sqlite3_bind_int64(st, r + 1, seq[r]);
	return run(st);
}

/* The binding with b's (aor, contact), whatever its row: a search of the whole table, for callers that
 * name no row (tests, an administrator's removal), never the registrar's. */
static int del_key_exec(struct store *s, const struct store_binding *b)
{
	sqlite3_stmt *st = s->st[ST_BIND_DEL];

	bind_str(st, 1, b->aor);
	bind_str(st, 2, b->contact);
	return run(st);
}

/* One change, in order with the others of its batch. */
static int change_exec(struct store *s, const struct store_change *c)
{
	const struct store_binding *b = &c->b;
	sqlite3_stmt *st;
	int err;

	switch (c->op) {
	case STORE_BINDING_PUT:
		err = b->seq > 0 ? 0 : del_key_exec(s, b);
		return err ? err : put_exec(s, b);
	case STORE_BINDING_DEL:
		return b->seq > 0 ? del_seq_exec(s, b->seq) : del_key_exec(s, b);
	case STORE_AOR_DEL:
		st = s->st[ST_AOR_DEL];
		bind_str(st, 1, b->aor);
		return run(st);
	}
	return EINVAL;
}

static bool names_rows(const struct store_change *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].op == STORE_AOR_DEL || c[i].b.seq <= 0)
			return false;
	return true;
}

/* A batch whose every change names its row: the writes in order, PUT_RUN to a statement (SQLite spends
 * 1 500 to 3 000 instructions a statement besides its rows: the step, the statement's savepoint, the halt,
 * about what a row's own insert costs), then the deletions likewise. Deleting last is what applying the
 * batch in order would leave: a row is a binding's for its life, and a binding deleted is not written
 * again (registered again, it is a new binding with a new row). */
static int apply_by_rows(struct store *s, const struct store_change *c, size_t n)
{
	const struct store_change *puts[PUT_RUN];
	int64_t dels[PUT_RUN];
	size_t k = 0, d = 0;
	int err = 0;

	for (size_t i = 0; i < n && !err; i++) {
		if (c[i].op != STORE_BINDING_PUT)
			continue;
		puts[k++] = &c[i];
		if (k == PUT_RUN) {
			err = put_run_exec(s, puts);
			k = 0;
		}
	}
	for (size_t i = 0; i < k && !err; i++)
		err = put_exec(s, &puts[i]->b);
	for (size_t i = 0; i < n && !err; i++) {
		if (c[i].op != STORE_BINDING_DEL)
			continue;
		dels[d++] = c[i].b.seq;
		if (d == PUT_RUN) {
			err = del_run_exec(s, dels);
			d = 0;
		}
	}
	for (size_t i = 0; i < d && !err; i++)
		err = del_seq_exec(s, dels[i]);
	return err;
}

/* Ends the transaction BEGIN opened: committed when err is 0 so far, else rolled back. */
static int txn_end(struct store *s, int err)
{
	if (!err)
		err = run(s->st[ST_COMMIT]);
	if (err && !sqlite3_get_autocommit(s->db))
		run(s->st[ST_ROLLBACK]);
	return err;
}

/* One transaction. 0 when committed (durable, see the top of this file); EINVAL when a change is
 * malformed (nothing is written); EIO when SQLite failed, the lock stayed busy for 5 s included, and
 * the transaction was rolled back. Every change is idempotent (a row is written under its number, or
 * replaces its binding's), so applying a batch again after EIO is safe. */
int store_apply(struct store *s, const struct store_change *changes, size_t n)
{
	size_t i;
	int err;

	if (!s || (n && !changes))
		return EINVAL;
	for (i = 0; i < n; i++)
		if (!change_ok(&changes[i]))
			return EINVAL;
	if (!n)
		return 0;
	err = store_lock(s);
	if (err)
		return err;
	err = run(s->st[ST_BEGIN]);
	if (err)
		goto out;
	if (names_rows(changes, n))
		err = apply_by_rows(s, changes, n);
	else
		for (i = 0; i < n && !err; i++)
			err = change_exec(s, &changes[i]);
	err = txn_end(s, err);
out:
	store_unlock(s);
	return err;
}

/* Deletes what matches and leaves the request for sipd, in one transaction. */
int store_unbind(struct store *s, const char *aor, const char *contact, size_t *removed)
{
	struct store_change c = { .op = contact && *contact ? STORE_BINDING_DEL : STORE_AOR_DEL };
	sqlite3_stmt *st;
	int err;

	*removed = 0;
	if (!s || !aor || !*aor || strlen(aor) >= sizeof(c.b.aor) || (contact && strlen(contact) >= sizeof(c.b.contact)))
		return EINVAL;
	strcpy(c.b.aor, aor);
	if (contact)
		strcpy(c.b.contact, contact);
	err = store_lock(s);
	if (err)
		return err;
	err = run(s->st[ST_BEGIN]);
	if (!err)
		err = change_exec(s, &c);
	if (!err) {
		*removed = (size_t)sqlite3_changes(s->db);
		st = s->st[ST_UNBIND_ADD];
		bind_str(st, 1, c.b.aor);
		bind_str(st, 2, c.b.contact);
		err = *removed ? run(st) : 0; /* nothing stored, nothing in a running sipd's memory */
	}
	err = txn_end(s, err);
	if (err)
		*removed = 0;
	store_unlock(s);
	return err;
}

/* Up to max of the notes, oldest first; *last: the id of the last. */
static int unbinds_read(struct store *s, struct store_unbind *out, size_t max, size_t *n, int64_t *last)
{
	sqlite3_stmt *st = s->st[ST_UNBIND_LIST];
	int rc;

	*n = 0;
	sqlite3_bind_int64(st, 1, (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*last = sqlite3_column_int64(st, 0);
		col_str(st, 1, out[*n].aor, sizeof(out[*n].aor));
		col_str(st, 2, out[*n].contact, sizeof(out[*n].contact));
		(*n)++;
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : EIO;
}

/* A look without the write lock first (sipd asks every second, and there is mostly nothing); when
 * there is something, read again and forget what was read in one transaction, so that each note is
 * taken once. */
int store_unbinds_take(struct store *s, struct store_unbind *out, size_t max, size_t *n)
{
	int64_t last = 0;
	int err;

	*n = 0;
	if (!s || !out || !max)
		return EINVAL;
	err = store_lock(s);
	if (err)
		return err;
	err = unbinds_read(s, out, max, n, &last);
	if (!err && *n) {
		err = run(s->st[ST_BEGIN]);
		if (!err)
			err = unbinds_read(s, out, max, n, &last);
		if (!err && *n) {
			sqlite3_bind_int64(s->st[ST_UNBIND_DONE], 1, last);
			err = run(s->st[ST_UNBIND_DONE]);
		}
		err = txn_end(s, err);
	}
	if (err)
		*n = 0;
	store_unlock(s);
	return err;
}
