/* test_store.c: the SQLite store: schema, users, bindings, expiry, durability (close/reopen, a process
 * killed right after a commit), and the group-commit writer (many threads, grouping, EAGAIN). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

/* Each test gets a fresh directory; the teardown removes the database and its -wal and -shm files. */
static char dir[64];
static char db[96];

static int dir_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/sipd-test-store-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(db, sizeof(db), "%s/sipd.db", dir);
	return 0;
}

static int dir_teardown(void **state)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char path[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
		unlink(path);
	}
	rmdir(dir);
	return 0;
}

static struct store *open_ok(bool sync_full)
{
	struct store *s = NULL;
	const char *why = NULL;
	int err = store_open(&s, db, sync_full, &why);

	if (err)
		fail_msg("store_open: %d %s", err, why ? why : "");
	return s;
}

/* A query through a separate connection, as an outsider sees the file. */
static long long sql_int(const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	long long v = -1;

	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static struct store_change put(const char *aor, const char *contact, int64_t expires)
{
	struct store_change c;

	memset(&c, 0, sizeof(c));
	c.op = STORE_BINDING_PUT;
	snprintf(c.b.aor, sizeof(c.b.aor), "%s", aor);
	snprintf(c.b.contact, sizeof(c.b.contact), "%s", contact);
	snprintf(c.b.received, sizeof(c.b.received), "udp:192.0.2.1:5060");
	snprintf(c.b.path, sizeof(c.b.path), "<sip:edge.example.com;lr>");
	snprintf(c.b.call_id, sizeof(c.b.call_id), "cid-%s", contact);
	snprintf(c.b.user_agent, sizeof(c.b.user_agent), "Test/1.0");
	snprintf(c.b.instance, sizeof(c.b.instance), "<urn:uuid:00000000-0000-1000-8000-000000000001>");
	snprintf(c.b.local, sizeof(c.b.local), "udp:192.0.2.7:5080");
	c.b.cseq = 7;
	c.b.q = 500;
	c.b.expires = expires;
	c.b.updated = 1000;
	return c;
}

static struct store_change del(enum store_op op, const char *aor, const char *contact)
{
	struct store_change c;

	memset(&c, 0, sizeof(c));
	c.op = op;
	snprintf(c.b.aor, sizeof(c.b.aor), "%s", aor);
	snprintf(c.b.contact, sizeof(c.b.contact), "%s", contact);
	return c;
}

/* Collects bindings into a small array. */
struct seen {
	struct store_binding b[16];
	int n;
	int stop_after; /* 0 = never */
};

static int seen_add(const struct store_binding *b, void *arg)
{
	struct seen *s = arg;

	if (s->n < 16)
		s->b[s->n] = *b;
	s->n++;
	return s->stop_after && s->n >= s->stop_after ? 42 : 0;
}

static void test_open_schema(void **state)
{
	struct store *s = NULL;
	const char *why = NULL;

	(void)state;
	s = open_ok(true);
	store_close(s);
	assert_int_equal(sql_int("PRAGMA user_version"), 7);
	assert_int_equal(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'users'"), 1);
	assert_int_equal(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"), 3);
	assert_int_equal(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bindings'"), 1);
	/* one b-tree per binding: by row number, no other index */
	assert_int_equal(sql_int("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'bindings'"), 0);
	assert_int_equal(
		sql_int("SELECT count(*) FROM sqlite_master WHERE name = 'bindings' AND sql LIKE '%seq INTEGER PRIMARY KEY%'"),
		1);

	/* the journal mode is persistent in the file */
	{
		sqlite3 *h;
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
		sqlite3_close(h);
	}

	/* reopening an existing file keeps it; "sqlite:" prefix works */
	{
		char url[128];

		snprintf(url, sizeof(url), "sqlite:%s", db);
		assert_int_equal(store_open(&s, url, false, &why), 0);
		store_close(s);
	}

	/* a schema from the future is refused */
	{
		sqlite3 *h;

		assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
		assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(h);
		s = NULL;
		assert_int_equal(store_open(&s, db, true, &why), ENOTSUP);
		assert_null(s);
		assert_non_null(why);
	}

	assert_int_equal(store_open(&s, "postgres://localhost/sipd", true, &why), ENOTSUP);
	assert_int_equal(store_open(&s, "sqlite:", true, &why), EINVAL);
	assert_int_equal(store_open(&s, "/nonexistent-dir/x/sipd.db", true, &why), EIO);
	assert_non_null(why);
	assert_int_equal(store_open(&s, db, true, NULL), ENOTSUP); /* errmsg is optional */
}

static void test_not_a_database(void **state)
{
	struct store *s = NULL;
	const char *why = NULL;
	FILE *f;

	(void)state;
	f = fopen(db, "w");
	assert_non_null(f);
	fputs("this is not an SQLite file, it is long enough to have a header of sorts....................\n"
	      "................................................................................\n",
	      f);
	fclose(f);
	assert_int_equal(store_open(&s, db, true, &why), EIO);
	assert_null(s);
	assert_non_null(why);
}

static int user_count(const struct store_user *u, void *arg)
{
	int *n = arg;

	(void)u;
	(*n)++;
	return 0;
}

static int user_names(const struct store_user *u, void *arg)
{
	char *out = arg;

	strcat(out, u->name);
	strcat(out, ",");
	return 0;
}

static void test_users(void **state)
{
	struct store *s = open_ok(true);
	struct store_user u, got;
	char names[256] = "";
	int n = 0;

	(void)state;
	memset(&u, 0, sizeof(u));
	strcpy(u.name, "bob");
	strcpy(u.ha1_md5, "0123456789abcdef0123456789abcdef");
	strcpy(u.extension, "1001");
	strcpy(u.display_name, "Bob Builder");
	assert_int_equal(store_user_put(s, &u), 0);
	strcpy(u.name, "alice");
	strcpy(u.ha1_sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	u.disabled = true;
	assert_int_equal(store_user_put(s, &u), 0);

	assert_int_equal(store_user_get(s, "alice", &got), 0);
	assert_string_equal(got.name, "alice");
	assert_string_equal(got.ha1_md5, "0123456789abcdef0123456789abcdef");
	assert_string_equal(got.ha1_sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_string_equal(got.extension, "1001");
	assert_string_equal(got.display_name, "Bob Builder");
	assert_true(got.disabled);
	assert_int_equal(store_user_get(s, "bob", &got), 0);
	assert_string_equal(got.ha1_sha256, "");
	assert_false(got.disabled);
	assert_int_equal(store_user_get(s, "carol", &got), ENOENT);

	/* replace */
	strcpy(u.name, "bob");
	strcpy(u.extension, "2002");
	u.disabled = false;
	assert_int_equal(store_user_put(s, &u), 0);
	assert_int_equal(store_user_get(s, "bob", &got), 0);
	assert_string_equal(got.extension, "2002");

	assert_int_equal(store_user_list(s, user_names, names), 0);
	assert_string_equal(names, "alice,bob,"); /* by name */

	/* what the store refuses */
	strcpy(u.ha1_md5, "0123456789ABCDEF0123456789ABCDEF"); /* upper case */
	assert_int_equal(store_user_put(s, &u), EINVAL);
	strcpy(u.ha1_md5, "0123");
	assert_int_equal(store_user_put(s, &u), EINVAL);
	strcpy(u.ha1_md5, "");
	u.name[0] = '\0';
	assert_int_equal(store_user_put(s, &u), EINVAL);
	memset(u.name, 'x', sizeof(u.name)); /* unterminated */
	assert_int_equal(store_user_put(s, &u), EINVAL);

	assert_int_equal(store_user_del(s, "alice"), 0);
	assert_int_equal(store_user_del(s, "alice"), ENOENT);
	assert_int_equal(store_user_get(s, "alice", &got), ENOENT);
	assert_int_equal(store_user_list(s, user_count, &n), 0);
	assert_int_equal(n, 1);
	store_close(s);
}

static void test_bindings(void **state)
{
	struct store *s = open_ok(true);
	struct store_change c[4];
	struct seen seen = { .n = 0 };

	(void)state;
	c[0] = put("sip:alice@example.com", "sip:alice@192.0.2.10:5060", 2000);
	c[1] = put("sip:alice@example.com", "sip:alice@192.0.2.11:5060", 2000);
	c[2] = put("sip:bob@example.com", "sip:bob@192.0.2.20:5060", 2000);
	c[2].b.q = -1;
	assert_int_equal(store_apply(s, c, 3), 0);
	assert_int_equal(store_bindings_list(s, 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.b[0].contact, "sip:alice@192.0.2.10:5060");
	assert_string_equal(seen.b[0].received, "udp:192.0.2.1:5060");
	assert_string_equal(seen.b[0].path, "<sip:edge.example.com;lr>");
	assert_string_equal(seen.b[0].call_id, "cid-sip:alice@192.0.2.10:5060");
	assert_string_equal(seen.b[0].user_agent, "Test/1.0");
	assert_string_equal(seen.b[0].instance, "<urn:uuid:00000000-0000-1000-8000-000000000001>");
	assert_string_equal(seen.b[0].local, "udp:192.0.2.7:5080");
	assert_int_equal(seen.b[0].cseq, 7);
	assert_int_equal(seen.b[0].q, 500);
	assert_int_equal(seen.b[0].expires, 2000);
	assert_int_equal(seen.b[0].updated, 1000);
	assert_int_equal(seen.b[2].q, -1);

	/* PUT replaces the same (aor, contact) */
	c[0].b.cseq = 8;
	c[0].b.expires = 3000;
	assert_int_equal(store_apply(s, c, 1), 0);
	seen.n = 0;
	assert_int_equal(store_bindings_list(s, 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.b[0].cseq, 8);
	assert_int_equal(seen.b[0].expires, 3000);

	/* DEL one contact, then AOR_DEL, in one transaction with a PUT */
	c[0] = del(STORE_BINDING_DEL, "sip:alice@example.com", "sip:alice@192.0.2.10:5060");
	c[1] = put("sip:carol@example.com", "sip:carol@192.0.2.30:5060", 2000);
	assert_int_equal(store_apply(s, c, 2), 0);
	seen.n = 0;
	assert_int_equal(store_bindings_list(s, 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.b[0].contact, "sip:alice@192.0.2.11:5060");
	c[0] = del(STORE_AOR_DEL, "sip:alice@example.com", "");
	assert_int_equal(store_apply(s, c, 1), 0);
	seen.n = 0;
	assert_int_equal(store_bindings_list(s, 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.b[0].aor, "sip:bob@example.com");
	assert_string_equal(seen.b[1].aor, "sip:carol@example.com");

	/* the callback stops the walk and its value comes back */
	seen.n = 0;
	seen.stop_after = 1;
	assert_int_equal(store_bindings_list(s, 1000, seen_add, &seen), 42);
	assert_int_equal(seen.n, 1);

	/* a malformed change writes nothing, not even the good ones before it */
	c[0] = put("sip:dave@example.com", "sip:dave@192.0.2.40", 2000);
	c[1] = put("sip:erin@example.com", "", 2000); /* no contact */
	assert_int_equal(store_apply(s, c, 2), EINVAL);
	c[1] = put("sip:erin@example.com", "sip:erin@192.0.2.50", 2000);
	c[1].op = (enum store_op)77;
	assert_int_equal(store_apply(s, c, 2), EINVAL);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE aor = 'sip:dave@example.com'"), 0);
	assert_int_equal(store_apply(s, NULL, 0), 0);
	store_close(s);
}

/* A batch long enough for store_apply's statements of 16 PUTs, with a key written twice inside one such
 * statement, once across two, DELs and an AOR_DEL that break the runs, and a tail of fewer than 16:
 * what is stored is what one statement per change, in order, leaves (a model of it checks every row). */
#define RUN_CONTACTS 24
static void test_bindings_in_runs(void **state)
{
	struct store *s = open_ok(true);
	struct store_change c[64];
	long long want_cseq[RUN_CONTACTS]; /* -1: no row */
	char contact[64], sql[256];
	size_t n = 0;

	(void)state;
	for (int k = 0; k < RUN_CONTACTS; k++)
		want_cseq[k] = -1;
#define PUT(k, cs)                                                                       \
	do {                                                                             \
		snprintf(contact, sizeof(contact), "sip:a%d@192.0.2.10", (k));           \
		c[n] = put("sip:alice@example.com", contact, 2000);                      \
		c[n++].b.cseq = (cs);                                                    \
		want_cseq[(k)] = (cs);                                                   \
	} while (0)
#define DEL(k)                                                                           \
	do {                                                                             \
		snprintf(contact, sizeof(contact), "sip:a%d@192.0.2.10", (k));           \
		c[n++] = del(STORE_BINDING_DEL, "sip:alice@example.com", contact);       \
		want_cseq[(k)] = -1;                                                     \
	} while (0)
	for (int k = 0; k < 16; k++) /* changes 0-15: one statement; a20 first written at 14 */
		PUT(k == 14 ? 20 : k, 100 + k);
	for (int k = 16; k < 32; k++) /* 16-31: another; a20 again (across), a17 twice inside it */
		PUT(k == 20 ? 20 : k == 25 ? 17 : k % RUN_CONTACTS, 200 + k);
	DEL(3);                      /* 32: breaks the run */
	for (int k = 0; k < 10; k++) /* 33-42: fewer than 16, a statement each */
		PUT((k * 5) % RUN_CONTACTS, 300 + k);
	DEL(5);
	assert_true(n <= sizeof(c) / sizeof(c[0]));
	assert_int_equal(store_apply(s, c, n), 0);
	for (int k = 0; k < RUN_CONTACTS; k++) {
		snprintf(sql, sizeof(sql),
			 "SELECT coalesce((SELECT cseq FROM bindings WHERE aor = 'sip:alice@example.com' AND "
			 "contact = 'sip:a%d@192.0.2.10'), -1)", k);
		assert_int_equal(sql_int(sql), want_cseq[k]);
	}
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE received = 'udp:192.0.2.1:5060' AND "
				 "local = 'udp:192.0.2.7:5080' AND q = 500 AND expires = 2000 AND updated = 1000 AND "
				 "user_agent = 'Test/1.0' AND call_id = 'cid-' || contact"),
			 sql_int("SELECT count(*) FROM bindings"));

	/* an AOR_DEL after a full run removes what the run wrote */
	n = 0;
	for (int k = 0; k < 16; k++) {
		snprintf(contact, sizeof(contact), "sip:b%d@192.0.2.10", k);
		c[n++] = put("sip:bob@example.com", contact, 2000);
	}
	c[n++] = del(STORE_AOR_DEL, "sip:bob@example.com", "");
	assert_int_equal(store_apply(s, c, n), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE aor = 'sip:bob@example.com'"), 0);
#undef PUT
#undef DEL
	store_close(s);
}

static void test_load_expires(void **state)
{
	struct store *s = open_ok(false);
	struct store_change c[3];
	struct seen seen = { .n = 0 };

	(void)state;
	c[0] = put("sip:alice@example.com", "sip:a1@192.0.2.10", 999);  /* expired before now = 1000 */
	c[1] = put("sip:alice@example.com", "sip:a2@192.0.2.10", 1000); /* expires == now: gone */
	c[2] = put("sip:alice@example.com", "sip:a3@192.0.2.10", 1001);
	assert_int_equal(store_apply(s, c, 3), 0);

	/* list only skips them */
	assert_int_equal(store_bindings_list(s, 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), 3);

	/* load skips and deletes them */
	seen.n = 0;
	assert_int_equal(store_bindings_load(s, 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.b[0].contact, "sip:a3@192.0.2.10");
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), 1);
	store_close(s);
}

/* A callback that calls back into the store gets EDEADLK, not a hang. */
static struct store *reentrant_store;
static int reentrant_cb(const struct store_user *u, void *arg)
{
	struct store_user got;

	*(int *)arg = store_user_get(reentrant_store, u->name, &got);
	return 0;
}

static void test_reentrant(void **state)
{
	struct store_user u;
	int err = -1;

	(void)state;
	reentrant_store = open_ok(true);
	memset(&u, 0, sizeof(u));
	strcpy(u.name, "alice");
	assert_int_equal(store_user_put(reentrant_store, &u), 0);
	assert_int_equal(store_user_list(reentrant_store, reentrant_cb, &err), 0);
	assert_int_equal(err, EDEADLK);
	store_close(reentrant_store);
}

static void test_durable_reopen(void **state)
{
	struct store *s = open_ok(true);
	struct store_change c = put("sip:alice@example.com", "sip:alice@192.0.2.10", 5000);
	struct store_user u;
	struct seen seen = { .n = 0 };

	(void)state;
	memset(&u, 0, sizeof(u));
	strcpy(u.name, "alice");
	strcpy(u.ha1_md5, "00112233445566778899aabbccddeeff");
	assert_int_equal(store_user_put(s, &u), 0);
	assert_int_equal(store_apply(s, &c, 1), 0);
	store_close(s);

	s = open_ok(true);
	assert_int_equal(store_user_get(s, "alice", &u), 0);
	assert_string_equal(u.ha1_md5, "00112233445566778899aabbccddeeff");
	assert_int_equal(store_bindings_load(s, 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.b[0].contact, "sip:alice@192.0.2.10");
	store_close(s);
}

/* The child commits, then dies by SIGKILL at once: no close, no checkpoint, no atexit. */
static void crash_after_apply(bool sync_full)
{
	struct store_change c = put("sip:alice@example.com", "sip:alice@192.0.2.10", 5000);
	struct seen seen = { .n = 0 };
	struct store *s;
	int status = 0;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *why;

		if (store_open(&s, db, sync_full, &why) || store_apply(s, &c, 1))
			_exit(1);
		kill(getpid(), SIGKILL);
		_exit(2); /* not reached */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);

	s = open_ok(sync_full);
	assert_int_equal(store_bindings_load(s, 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.b[0].aor, "sip:alice@example.com");
	store_close(s);
}

static void test_crash_full(void **state)
{
	(void)state;
	crash_after_apply(true);
}

static void test_crash_normal(void **state)
{
	(void)state;
	crash_after_apply(false); /* NORMAL survives a process crash too (not a power loss) */
}

/* Writer: 8 threads, 10,000 changes, each submission's done called once, with 0, in submit order. */
enum { THREADS = 8, PER_THREAD = 1250 };

static atomic_uint done_calls[THREADS][PER_THREAD];
static atomic_int done_next[THREADS]; /* the sequence number each thread's next done must carry */
static atomic_uint done_errors, done_order_errors;

static void writer_done(int err, void *arg)
{
	uintptr_t v = (uintptr_t)arg;
	unsigned t = (unsigned)(v / PER_THREAD), i = (unsigned)(v % PER_THREAD);

	if (err)
		atomic_fetch_add(&done_errors, 1);
	atomic_fetch_add(&done_calls[t][i], 1);
	if (atomic_fetch_add(&done_next[t], 1) != (int)i)
		atomic_fetch_add(&done_order_errors, 1);
}

struct submitter {
	struct store_writer *w;
	unsigned t;
	unsigned eagain;
};

static void *submit_main(void *arg)
{
	struct submitter *sb = arg;
	unsigned i;

	for (i = 0; i < PER_THREAD; i++) {
		char aor[64], contact[64];
		struct store_change c;
		int err;

		snprintf(aor, sizeof(aor), "sip:u%u@example.com", sb->t);
		snprintf(contact, sizeof(contact), "sip:u%u-%u@192.0.2.1", sb->t, i);
		c = put(aor, contact, 5000);
		while ((err = store_writer_submit(sb->w, &c, 1, writer_done, (void *)(uintptr_t)(sb->t * PER_THREAD + i))) ==
		       EAGAIN) {
			sb->eagain++;
			usleep(100);
		}
		if (err)
			return (void *)(intptr_t)err;
	}
	return NULL;
}

static void test_writer_threads(void **state)
{
	struct store *s = open_ok(true);
	struct submitter sub[THREADS];
	pthread_t th[THREADS];
	struct store_writer *w;
	unsigned t, i;

	(void)state;
	memset(done_calls, 0, sizeof(done_calls));
	memset(done_next, 0, sizeof(done_next));
	atomic_store(&done_errors, 0);
	atomic_store(&done_order_errors, 0);
	assert_int_equal(store_writer_new(&w, s, 4096, 0), 0);
	for (t = 0; t < THREADS; t++) {
		sub[t] = (struct submitter){ .w = w, .t = t };
		assert_int_equal(pthread_create(&th[t], NULL, submit_main, &sub[t]), 0);
	}
	for (t = 0; t < THREADS; t++) {
		void *ret;

		assert_int_equal(pthread_join(th[t], &ret), 0);
		assert_null(ret);
	}
	store_writer_free(w); /* flushes */

	for (t = 0; t < THREADS; t++)
		for (i = 0; i < PER_THREAD; i++)
			if (atomic_load(&done_calls[t][i]) != 1)
				fail_msg("done for thread %u, change %u called %u times", t, i, atomic_load(&done_calls[t][i]));
	assert_int_equal(atomic_load(&done_errors), 0);
	assert_int_equal(atomic_load(&done_order_errors), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), THREADS * PER_THREAD);
	store_close(s);
}

/* A second connection holds the write lock, so the writer waits in its busy handler while changes
 * pile up: grouping is then certain, and the queue fills to EAGAIN. */
static atomic_uint gated_done, gated_errors;

static void gated_cb(int err, void *arg)
{
	(void)arg;
	if (err)
		atomic_fetch_add(&gated_errors, 1);
	atomic_fetch_add(&gated_done, 1);
}

static void test_writer_grouping_eagain(void **state)
{
	enum { MAX = 16 };
	struct store *s = open_ok(true);
	struct store_writer *w;
	uint64_t batches = 0, changes = 0;
	unsigned accepted = 0, i;
	sqlite3 *h;
	int err = 0;

	(void)state;
	atomic_store(&gated_done, 0);
	atomic_store(&gated_errors, 0);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);

	assert_int_equal(store_writer_new(&w, s, MAX, 0), 0);
	{
		struct store_change big[MAX + 1];

		for (i = 0; i <= MAX; i++)
			big[i] = put("sip:big@example.com", "sip:big@192.0.2.1", 5000);
		assert_int_equal(store_writer_submit(w, big, MAX + 1, gated_cb, NULL), EINVAL); /* can never fit */
	}
	/* the writer takes at most one batch and blocks on the lock; then at most MAX more wait */
	for (i = 0; i < 4 * MAX; i++) {
		char contact[64];
		struct store_change c;

		snprintf(contact, sizeof(contact), "sip:g%u@192.0.2.1", i);
		c = put("sip:gate@example.com", contact, 5000);
		err = store_writer_submit(w, &c, 1, gated_cb, NULL);
		if (err)
			break;
		accepted++;
	}
	assert_int_equal(err, EAGAIN);
	assert_true(accepted >= MAX && accepted <= 2 * MAX);
	assert_int_equal(atomic_load(&gated_done), 0); /* nothing is durable yet */

	/* a barrier (no changes) queues behind them once there is room; here there is none */
	assert_int_equal(store_writer_submit(w, NULL, 0, gated_cb, NULL), EAGAIN);

	store_writer_stats(w, &batches, &changes);
	assert_int_equal(batches, 0);
	assert_int_equal(changes, 0);

	assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	while (atomic_load(&gated_done) < accepted)
		usleep(1000);
	store_writer_stats(w, &batches, &changes);
	assert_int_equal(changes, accepted);
	assert_true(batches >= 1 && batches <= 3); /* the blocked batch, the queue behind it (and a race) */
	store_writer_free(w);
	assert_int_equal(atomic_load(&gated_done), accepted);
	assert_int_equal(atomic_load(&gated_errors), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE aor = 'sip:gate@example.com'"), accepted);
	store_close(s);
}

/* Grouping under real concurrency, with the counters read while the writer lives. */
static void barrier_cb(int err, void *arg)
{
	atomic_int *flag = arg;

	atomic_store(flag, err ? -1 : 1);
}

static void test_writer_grouping(void **state)
{
	struct store *s = open_ok(true);
	struct submitter sub[THREADS];
	pthread_t th[THREADS];
	struct store_writer *w;
	uint64_t batches = 0, changes = 0;
	atomic_int flag = 0;
	unsigned t;

	(void)state;
	memset(done_calls, 0, sizeof(done_calls));
	memset(done_next, 0, sizeof(done_next));
	atomic_store(&done_errors, 0);
	atomic_store(&done_order_errors, 0);
	assert_int_equal(store_writer_new(&w, s, 1024, 0), 0);
	for (t = 0; t < THREADS; t++) {
		sub[t] = (struct submitter){ .w = w, .t = t };
		assert_int_equal(pthread_create(&th[t], NULL, submit_main, &sub[t]), 0);
	}
	for (t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	/* a barrier: its done runs once everything before it is committed */
	while (store_writer_submit(w, NULL, 0, barrier_cb, &flag) == EAGAIN)
		usleep(1000);
	while (!atomic_load(&flag))
		usleep(1000);
	assert_int_equal(atomic_load(&flag), 1);
	store_writer_stats(w, &batches, &changes);
	assert_int_equal(changes, THREADS * PER_THREAD);
	assert_true(batches > 0);
	assert_true(batches < changes); /* grouping happened */
	print_message("writer: %llu changes in %llu transactions\n", (unsigned long long)changes,
		      (unsigned long long)batches);
	store_writer_free(w);
	assert_int_equal(atomic_load(&done_errors), 0);
	assert_int_equal(atomic_load(&done_order_errors), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), THREADS * PER_THREAD);
	store_close(s);
}

/* A malformed change fails its own submission only, even when grouped with good ones. */
static void test_writer_bad_change(void **state)
{
	struct store *s = open_ok(true);
	struct store_change first, good, bad;
	atomic_int res[3] = { 0, 0, 0 };
	struct store_writer *w;
	sqlite3 *h;
	int i;

	(void)state;
	first = put("sip:first@example.com", "sip:first@192.0.2.1", 5000);
	good = put("sip:alice@example.com", "sip:alice@192.0.2.10", 5000);
	bad = put("sip:bob@example.com", "", 5000); /* no contact */
	/* hold the lock: the writer blocks on the first change, the next three wait as one batch */
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_writer_new(&w, s, 64, 0), 0);
	assert_int_equal(store_writer_submit(w, &first, 1, NULL, NULL), 0);
	usleep(50000);
	assert_int_equal(store_writer_submit(w, &good, 1, barrier_cb, &res[0]), 0);
	assert_int_equal(store_writer_submit(w, &bad, 1, barrier_cb, &res[1]), 0);
	strcpy(good.b.contact, "sip:alice@192.0.2.11");
	assert_int_equal(store_writer_submit(w, &good, 1, barrier_cb, &res[2]), 0);
	assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	store_writer_free(w);
	for (i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&res[i]), i == 1 ? -1 : 1);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), 3);
	store_close(s);
}

/* store_binding_copy copies each string through its NUL and leaves the rest of the arrays alone; a field
 * without a NUL is copied whole, so that the store still refuses it. Through the writer, whose batches
 * are reused: a shorter value written where a longer one was is stored as it is. */
static void test_binding_copy(void **state)
{
	struct store_change a = put("sip:alice@example.com", "sip:alice-on-a-long-host-name@192.0.2.10", 5000);
	struct store_change b = put("sip:bob@example.com", "sip:b@192.0.2.1", 5000), bad;
	struct store_binding dst;
	struct store *s = open_ok(true);
	struct store_writer *w;
	atomic_int res[3] = { 0, 0, 0 };

	(void)state;
	memset(&dst, 'x', sizeof(dst));
	a.b.cseq = 7;
	a.b.q = 500;
	store_binding_copy(&dst, &a.b);
	assert_string_equal(dst.aor, a.b.aor);
	assert_string_equal(dst.contact, a.b.contact);
	assert_string_equal(dst.received, a.b.received);
	assert_string_equal(dst.path, a.b.path);
	assert_string_equal(dst.call_id, a.b.call_id);
	assert_string_equal(dst.user_agent, a.b.user_agent);
	assert_string_equal(dst.instance, a.b.instance);
	assert_string_equal(dst.local, a.b.local);
	assert_int_equal(dst.cseq, 7);
	assert_int_equal(dst.q, 500);
	assert_int_equal(dst.expires, a.b.expires);
	assert_int_equal(dst.updated, a.b.updated);
	assert_int_equal(dst.contact[strlen(a.b.contact) + 1], 'x'); /* past the NUL: untouched */
	bad = b;
	memset(bad.b.path, 'p', sizeof(bad.b.path));
	store_binding_copy(&dst, &bad.b);
	assert_null(memchr(dst.path, '\0', sizeof(dst.path)));

	assert_int_equal(store_writer_new(&w, s, 64, 0), 0);
	for (int round = 0; round < 2; round++) { /* the writer's two batches, each holding a long value */
		atomic_store(&res[0], 0);
		assert_int_equal(store_writer_submit(w, &a, 1, barrier_cb, &res[0]), 0);
		while (!atomic_load(&res[0]))
			usleep(1000);
	}
	assert_int_equal(store_writer_submit(w, &b, 1, barrier_cb, &res[1]), 0);
	assert_int_equal(store_writer_submit(w, &bad, 1, barrier_cb, &res[2]), 0);
	store_writer_free(w);
	assert_int_equal(atomic_load(&res[0]), 1);
	assert_int_equal(atomic_load(&res[1]), 1);
	assert_int_equal(atomic_load(&res[2]), -1);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE aor = 'sip:bob@example.com' AND "
				 "contact = 'sip:b@192.0.2.1' AND call_id = 'cid-sip:b@192.0.2.1'"),
			 1);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), 2);
	store_close(s);
}

/* store_bindings_of: the live bindings of one AOR only. */
static void test_bindings_of(void **state)
{
	struct store *s = open_ok(true);
	struct store_change c[4];
	struct seen seen = { .n = 0 };

	(void)state;
	c[0] = put("sip:alice@example.com", "sip:alice@192.0.2.10:5060", 2000);
	c[1] = put("sip:alice@example.com", "sip:alice@192.0.2.11:5060", 900); /* expired at 1000 */
	c[2] = put("sip:bob@example.com", "sip:bob@192.0.2.20:5060", 2000);
	c[3] = put("sip:alice@example.com", "sip:alice@192.0.2.12:5060", 3000);
	assert_int_equal(store_apply(s, c, 4), 0);
	assert_int_equal(store_bindings_of(s, "sip:alice@example.com", 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 2);
	for (int i = 0; i < 2; i++) {
		assert_string_equal(seen.b[i].aor, "sip:alice@example.com");
		assert_true(seen.b[i].expires > 1000);
	}
	seen.n = 0;
	assert_int_equal(store_bindings_of(s, "sip:carol@example.com", 1000, seen_add, &seen), 0);
	assert_int_equal(seen.n, 0);
	store_close(s);
}

/* What store_writer_later_of shows a done callback: the changes for its AOR submitted after its own
 * submission, in the rest of the batch being told and in the queue, in order. */
static struct {
	struct store_writer *w;
	char seen[3][4][520]; /* per submission told: the contacts later_of gave, in order */
	int nseen[3];
	int err[3];
	atomic_int told[3];
} later;

static void later_add(const struct store_change *c, void *arg)
{
	int i = *(int *)arg;

	if (later.nseen[i] < 4)
		snprintf(later.seen[i][later.nseen[i]], sizeof(later.seen[i][0]), "%s%.512s",
			 c->op == STORE_BINDING_DEL ? "-" : "", c->b.contact);
	later.nseen[i]++;
}

static void later_done(int err, void *arg)
{
	static int idx[3] = { 0, 1, 2 };
	int i = (int)(intptr_t)arg;
	const char *aor = i == 1 ? "sip:bob@example.com" : "sip:alice@example.com";

	later.err[i] = err; /* checked by the test's thread: cmocka asserts only there */
	atomic_fetch_add(&later.told[i], 1);
	if (i == 0) { /* from the writer thread, while the batch is told: one more for alice, queued */
		struct store_change c = put("sip:alice@example.com", "sip:d", 5000);

		later.err[i] |= store_writer_submit(later.w, &c, 1, NULL, NULL);
	}
	store_writer_later_of(later.w, aor, later_add, &idx[i]);
}

static void test_writer_later_of(void **state)
{
	struct store *s = open_ok(true);
	struct store_change first = put("sip:first@example.com", "sip:first", 5000), c;
	sqlite3 *h;

	(void)state;
	memset(&later, 0, sizeof(later));
	/* hold the lock: the writer blocks on the first change, the next three wait as one batch */
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_writer_new(&later.w, s, 64, 0), 0);
	assert_int_equal(store_writer_submit(later.w, &first, 1, NULL, NULL), 0);
	usleep(50000);
	c = put("sip:alice@example.com", "sip:a", 5000);
	assert_int_equal(store_writer_submit(later.w, &c, 1, later_done, (void *)(intptr_t)0), 0);
	c = put("sip:bob@example.com", "sip:b", 5000);
	assert_int_equal(store_writer_submit(later.w, &c, 1, later_done, (void *)(intptr_t)1), 0);
	c = del(STORE_BINDING_DEL, "sip:alice@example.com", "sip:a");
	assert_int_equal(store_writer_submit(later.w, &c, 1, later_done, (void *)(intptr_t)2), 0);
	assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	for (int i = 0; i < 5000 && !atomic_load(&later.told[2]); i++)
		usleep(1000); /* told before the writer stops: a submission from a callback needs it running */
	store_writer_free(later.w);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atomic_load(&later.told[i]), 1);
		assert_int_equal(later.err[i], 0);
	}
	/* alice's first: the DEL later in its batch, then the PUT queued from its own callback */
	assert_int_equal(later.nseen[0], 2);
	assert_string_equal(later.seen[0][0], "-sip:a");
	assert_string_equal(later.seen[0][1], "sip:d");
	assert_int_equal(later.nseen[1], 0); /* nothing for bob after his */
	assert_int_equal(later.nseen[2], 1); /* alice's DEL: the queued PUT only */
	assert_string_equal(later.seen[2][0], "sip:d");
	store_close(s);
}

/* A database of schema 1 (sipd before the users generation) is brought to the current schema and keeps its
 * users and bindings. */
static void test_schema_upgrade_v1(void **state)
{
	struct store *s;
	struct store_user got;
	int64_t gen;
	sqlite3 *h;

	(void)state;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h,
				      "CREATE TABLE users(name TEXT PRIMARY KEY NOT NULL, ha1_md5 TEXT NOT NULL DEFAULT '',"
				      " ha1_sha256 TEXT NOT NULL DEFAULT '', extension TEXT NOT NULL DEFAULT '',"
				      " display_name TEXT NOT NULL DEFAULT '', disabled INTEGER NOT NULL DEFAULT 0);"
				      "CREATE TABLE bindings(aor TEXT NOT NULL, contact TEXT NOT NULL,"
				      " received TEXT NOT NULL DEFAULT '', path TEXT NOT NULL DEFAULT '',"
				      " call_id TEXT NOT NULL DEFAULT '', cseq INTEGER NOT NULL DEFAULT 0, q INTEGER,"
				      " expires INTEGER NOT NULL, updated INTEGER NOT NULL DEFAULT 0,"
				      " user_agent TEXT NOT NULL DEFAULT '', instance TEXT NOT NULL DEFAULT '',"
				      " PRIMARY KEY(aor, contact));"
				      "CREATE INDEX bindings_expires ON bindings(expires);"
				      "INSERT INTO users(name) VALUES('old');"
				      "INSERT INTO bindings(aor, contact, received, expires) VALUES"
				      " ('sip:old@example.com', 'sip:old@192.0.2.9', 'udp:192.0.2.9:5060', 4000000000);"
				      "PRAGMA user_version = 1;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	s = open_ok(true);
	assert_int_equal(sql_int("PRAGMA user_version"), 7);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"
				 " WHERE aor = 'sip:old@example.com' AND received = 'udp:192.0.2.9:5060' AND local = ''"),
			 1);
	/* the old row got a number, and the next ones come after it */
	assert_true(sql_int("SELECT seq FROM bindings WHERE aor = 'sip:old@example.com'") >= 1);
	assert_true(store_seq_next(s) > sql_int("SELECT max(seq) FROM bindings"));
	assert_int_equal(store_user_get(s, "old", &got), 0);
	assert_int_equal(store_users_generation(s, &gen), 0);
	store_close(s);
}

/* A put with its row number, as the registrar writes: a new one for a new binding, else the binding's. */
static struct store_change put_row(struct store *s, const char *aor, const char *contact, int64_t seq)
{
	struct store_change c = put(aor, contact, 2000);

	c.b.seq = seq ? seq : store_seq_next(s);
	return c;
}

/* Changes that name their rows: a new binding's row is appended, a refresh rewrites its own row, a delete
 * takes its row; runs of more than PUT_RUN (16), a binding written twice in one batch, and a load keep one
 * row per binding, the newest. */
static void test_bindings_by_row(void **state)
{
	enum { N = 40 };
	struct store *s = open_ok(true);
	struct store_change c[2 * N + 1];
	int64_t first[N];
	char aor[64];
	struct seen seen = { .n = 0 };
	int64_t next;

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(aor, sizeof(aor), "sip:u%d@example.com", i);
		c[i] = put_row(s, aor, "sip:u@192.0.2.1", 0);
		first[i] = c[i].b.seq;
	}
	assert_int_equal(store_apply(s, c, N), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), N);
	assert_int_equal(sql_int("SELECT min(seq) FROM bindings"), first[0]);
	assert_int_equal(sql_int("SELECT max(seq) FROM bindings"), first[N - 1]);
	/* each refreshed twice in one batch (the second write is the one that stays), and one of them deleted
	 * after its refreshes */
	for (int i = 0; i < N; i++) {
		snprintf(aor, sizeof(aor), "sip:u%d@example.com", i);
		c[2 * i] = put_row(s, aor, "sip:u@192.0.2.1", first[i]);
		c[2 * i + 1] = put_row(s, aor, "sip:u@192.0.2.1", first[i]);
		c[2 * i + 1].b.cseq = 9;
	}
	c[2 * N] = del(STORE_BINDING_DEL, "sip:u0@example.com", "sip:u@192.0.2.1");
	c[2 * N].b.seq = first[0];
	assert_int_equal(store_apply(s, c, 2 * N + 1), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), N - 1);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE cseq = 9"), N - 1);
	assert_int_equal(sql_int("SELECT min(seq) FROM bindings"), first[1]);
	assert_int_equal(sql_int("SELECT max(seq) FROM bindings"), first[N - 1]);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE aor = 'sip:u0@example.com'"), 0);
	/* applied again (as after an EIO): the same rows */
	assert_int_equal(store_apply(s, c, 2 * N + 1), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), N - 1);
	/* a row numbered 0 is a key's: it replaces the binding's row, found by reading the table */
	c[0] = put("sip:u1@example.com", "sip:u@192.0.2.1", 3000);
	assert_int_equal(store_apply(s, c, 1), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE aor = 'sip:u1@example.com'"), 1);
	assert_int_equal(sql_int("SELECT expires FROM bindings WHERE aor = 'sip:u1@example.com'"), 3000);
	next = store_seq_next(s);
	store_close(s);

	/* two rows of one binding (only a writer's fault leaves them): a load keeps the newer and deletes
	 * the other; the next number stays above both */
	{
		sqlite3 *h;
		char sql[512];

		assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
		snprintf(sql, sizeof(sql),
			 "INSERT INTO bindings(seq, aor, contact, expires, cseq) VALUES"
			 " (%lld, 'sip:dup@example.com', 'sip:d@192.0.2.2', 2000, 1),"
			 " (%lld, 'sip:dup@example.com', 'sip:d@192.0.2.2', 2000, 2)",
			 (long long)next + 10, (long long)next + 5);
		assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(h);
	}
	s = open_ok(true);
	assert_true(store_seq_next(s) > next + 10);
	assert_int_equal(store_bindings_load(s, 1000, seen_add, &seen), 0);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE aor = 'sip:dup@example.com'"), 1);
	assert_int_equal(sql_int("SELECT seq FROM bindings WHERE aor = 'sip:dup@example.com'"), next + 10);
	assert_int_equal(sql_int("SELECT cseq FROM bindings WHERE aor = 'sip:dup@example.com'"), 1);
	assert_int_equal(seen.n, N); /* the N - 1 left, the one rewritten by key, the newer of the two */
	for (int i = 0; i < 16; i++)
		assert_true(seen.b[i].seq > 0);
	store_close(s);
}

/* The users generation moves on every write to users, ours or another program's, and only then. */
static void test_users_generation(void **state)
{
	struct store *s = open_ok(true);
	struct store_user u;
	int64_t g0, g1, g2, g3;
	sqlite3 *h;

	(void)state;
	memset(&u, 0, sizeof(u));
	assert_int_equal(store_users_generation(s, &g0), 0);
	strcpy(u.name, "bob");
	assert_int_equal(store_user_put(s, &u), 0);
	assert_int_equal(store_users_generation(s, &g1), 0);
	assert_true(g1 != g0);
	struct store_change c = put("sip:bob@example.com", "sip:bob@192.0.2.1", 5000);
	assert_int_equal(store_apply(s, &c, 1), 0); /* a binding is not a user */
	assert_int_equal(store_users_generation(s, &g2), 0);
	assert_true(g2 == g1);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK); /* another program edits the table */
	assert_int_equal(sqlite3_exec(h, "UPDATE users SET extension = '7' WHERE name = 'bob'", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(store_users_generation(s, &g3), 0);
	assert_true(g3 != g2);
	assert_int_equal(store_user_del(s, "bob"), 0);
	assert_int_equal(store_users_generation(s, &g0), 0);
	assert_true(g0 != g3);
	store_close(s);
}

/* With a commit delay, submissions made one after another within it share one transaction, once a
 * transaction has been shared (there is load); a lone submission, or a client that waits for each answer
 * before it sends again, commits at once. */
static atomic_uint delayed_done;
static struct store_writer *delayed_w;

static void delayed_cb(int err, void *arg)
{
	(void)arg;
	if (!err)
		atomic_fetch_add(&delayed_done, 1);
}

static struct store_change delayed_put(unsigned i)
{
	char contact[64];

	snprintf(contact, sizeof(contact), "sip:d%u@192.0.2.1", i);
	return put("sip:delay@example.com", contact, 5000);
}

/* The first commit's callback, on the writer thread: two more submissions queue up while it runs, so the
 * next batch holds two (company), as submissions arriving during an fsync do under load. */
static void delayed_first_cb(int err, void *arg)
{
	struct store_change c[2] = { delayed_put(100), delayed_put(101) };

	delayed_cb(err, arg);
	assert_int_equal(store_writer_submit(delayed_w, &c[0], 1, delayed_cb, NULL), 0);
	assert_int_equal(store_writer_submit(delayed_w, &c[1], 1, delayed_cb, NULL), 0);
}

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)((t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000);
}

static void test_writer_commit_delay(void **state)
{
	struct store *s = open_ok(true);
	uint64_t batches, changes;
	struct timespec t0;

	(void)state;
	atomic_store(&delayed_done, 0);
	assert_int_equal(store_writer_new(&delayed_w, s, 64, 300 * 1000), 0);
	/* one client, each submission after the last one's answer: no wait (300 ms would show) */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < 3; i++) {
		struct store_change c = delayed_put(i);

		assert_int_equal(store_writer_submit(delayed_w, &c, 1, delayed_cb, NULL), 0);
		while (atomic_load(&delayed_done) < i + 1)
			usleep(1000);
	}
	assert_true(ms_since(&t0) < 250);
	store_writer_stats(delayed_w, &batches, &changes);
	assert_int_equal(batches, 3);

	/* load: a batch of two taken, so the next submission waits for company and five share its commit */
	{
		struct store_change c = delayed_put(3);

		assert_int_equal(store_writer_submit(delayed_w, &c, 1, delayed_first_cb, NULL), 0);
	}
	while (atomic_load(&delayed_done) < 6)
		usleep(1000);
	store_writer_stats(delayed_w, &batches, &changes);
	assert_int_equal(batches, 5); /* the one with the callback, then the two */
	for (unsigned i = 10; i < 15; i++) {
		struct store_change c = delayed_put(i);

		assert_int_equal(store_writer_submit(delayed_w, &c, 1, delayed_cb, NULL), 0);
		usleep(10 * 1000);
	}
	while (atomic_load(&delayed_done) < 11)
		usleep(1000);
	store_writer_stats(delayed_w, &batches, &changes);
	assert_int_equal(batches, 6);
	assert_int_equal(changes, 11);
	store_writer_free(delayed_w);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE aor = 'sip:delay@example.com'"), 11);
	store_close(s);
}

/* The file of a database URL, and the schemes that name none this build stores in. */
static void test_store_file(void **state)
{
	(void)state;
	assert_string_equal(store_file("sipd.db"), "sipd.db");
	assert_string_equal(store_file("/var/lib/sipd/sipd.db"), "/var/lib/sipd/sipd.db");
	assert_string_equal(store_file("sqlite:data/x.db"), "data/x.db");
	assert_string_equal(store_file("sqlite:///var/lib/sipd.db"), "/var/lib/sipd.db");
	assert_string_equal(store_file("sqlite://rel.db"), "rel.db");
	assert_string_equal(store_file("./a:b.db"), "./a:b.db");
	assert_string_equal(store_file("sqlite:"), "");
	assert_null(store_file("postgres://db.example/sipd"));
	assert_null(store_file("redis:6379"));
	assert_null(store_file("a:b.db"));
}

static void test_bad_args(void **state)
{
	struct store_writer *w = NULL;
	struct store_user u;

	(void)state;
	assert_int_equal(store_open(NULL, db, true, NULL), EINVAL);
	assert_int_equal(store_user_get(NULL, "a", &u), EINVAL);
	assert_int_equal(store_user_put(NULL, &u), EINVAL);
	assert_int_equal(store_user_del(NULL, "a"), EINVAL);
	assert_int_equal(store_apply(NULL, NULL, 0), EINVAL);
	assert_int_equal(store_writer_new(&w, NULL, 8, 0), EINVAL);
	assert_int_equal(store_writer_submit(NULL, NULL, 0, NULL, NULL), EINVAL);
	store_close(NULL);
	store_writer_free(NULL);
}

/* A grant of n seconds lives through the second it ends in, and is shown as n at the grant, never 0
 * while it lives. */
static void test_binding_time(void **state)
{
	const int64_t t = 1795700000;
	int64_t end = store_binding_end(t, 5);

	(void)state;
	assert_true(end == t + 6);
	assert_true(store_binding_left(end, t) == 5);
	assert_true(store_binding_left(end, t + 4) == 1);
	assert_true(store_binding_left(end, t + 5) == 1); /* granted at t.99: 5.01 s in, still its own */
	assert_true(store_binding_left(end, t + 6) == 0);
	assert_true(store_binding_left(end, t + 100) == 0);
	assert_true(store_binding_left(store_binding_end(t, 0), t) == 1);
}

/* A secret is drawn once per database: the first caller's fresh bytes are kept, a later caller (another
 * process, or sipd after a restart) reads them instead of its own; one of another length is refused. */
static void test_secret(void **state)
{
	uint8_t a[16], b[16], out[16], out2[16], longer[32];
	struct store *s, *s2;

	(void)state;
	memset(a, 0xa5, sizeof(a));
	memset(b, 0x5a, sizeof(b));
	memset(longer, 1, sizeof(longer));
	s = open_ok(true);
	assert_int_equal(store_secret(s, "rr", a, sizeof(a), out), 0);
	assert_memory_equal(out, a, sizeof(a));
	s2 = open_ok(true); /* another process on the same file */
	assert_int_equal(store_secret(s2, "rr", b, sizeof(b), out2), 0);
	assert_memory_equal(out2, a, sizeof(a));
	assert_int_equal(store_secret(s2, "rr", longer, sizeof(longer), longer), EINVAL);
	assert_int_equal(store_secret(s2, "other", b, sizeof(b), out2), 0); /* names apart */
	assert_memory_equal(out2, b, sizeof(b));
	store_close(s2);
	store_close(s);
	s = open_ok(false); /* a restart */
	memset(out, 0, sizeof(out));
	assert_int_equal(store_secret(s, "rr", b, sizeof(b), out), 0);
	assert_memory_equal(out, a, sizeof(a));
	assert_int_equal(store_secret(s, NULL, b, sizeof(b), out), EINVAL);
	assert_int_equal(store_secret(s, "rr", b, 0, out), EINVAL);
	store_close(s);
	assert_int_equal(sql_int("SELECT count(*) FROM secrets"), 2);
}

/* sipctl unregister: one contact, then the rest of the AOR, deleted at once and each left as a request
 * that sipd takes once, in order; an AOR with nothing stored leaves none; a batch taken max at a time. */
static void test_unbind(void **state)
{
	struct store *s = open_ok(true), *sipd = open_ok(true);
	struct store_change c[3];
	struct store_unbind got[4];
	size_t removed, n;

	(void)state;
	c[0] = put("sip:alice@example.com", "sip:alice@192.0.2.10:5060", 2000);
	c[1] = put("sip:alice@example.com", "sip:alice@192.0.2.11:5060", 2000);
	c[2] = put("sip:bob@example.com", "sip:bob@192.0.2.20:5060", 2000);
	assert_int_equal(store_apply(s, c, 3), 0);
	assert_int_equal(store_unbind(s, "sip:alice@example.com", "sip:alice@192.0.2.10:5060", &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings WHERE aor = 'sip:alice@example.com'"), 1);
	assert_int_equal(store_unbind(s, "sip:alice@example.com", "sip:alice@192.0.2.10:5060", &removed), 0);
	assert_int_equal(removed, 0); /* gone already: no request left */
	assert_int_equal(store_unbind(s, "sip:carol@example.com", NULL, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(store_unbind(s, "sip:alice@example.com", "", &removed), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(sql_int("SELECT count(*) FROM bindings"), 1); /* bob's */
	assert_int_equal(sql_int("SELECT count(*) FROM unbind"), 2);

	assert_int_equal(store_unbinds_take(sipd, got, 1, &n), 0); /* another connection, as sipd's */
	assert_int_equal(n, 1);
	assert_string_equal(got[0].aor, "sip:alice@example.com");
	assert_string_equal(got[0].contact, "sip:alice@192.0.2.10:5060");
	assert_int_equal(store_unbinds_take(sipd, got, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(got[0].aor, "sip:alice@example.com");
	assert_string_equal(got[0].contact, "");
	assert_int_equal(store_unbinds_take(sipd, got, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sql_int("SELECT count(*) FROM unbind"), 0);

	assert_int_equal(store_unbind(s, "", NULL, &removed), EINVAL);
	assert_int_equal(store_unbinds_take(sipd, got, 0, &n), EINVAL);
	store_close(sipd);
	store_close(s);
}

#define T(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_schema),
		T(test_not_a_database),
		T(test_users),
		T(test_bindings),
		T(test_bindings_in_runs),
		T(test_load_expires),
		T(test_reentrant),
		T(test_durable_reopen),
		T(test_crash_full),
		T(test_crash_normal),
		T(test_writer_threads),
		T(test_writer_grouping_eagain),
		T(test_writer_grouping),
		T(test_writer_bad_change),
		T(test_binding_copy),
		T(test_bindings_of),
		T(test_writer_later_of),
		T(test_users_generation),
		T(test_schema_upgrade_v1),
		T(test_bindings_by_row),
		T(test_writer_commit_delay),
		T(test_store_file),
		T(test_bad_args),
		T(test_binding_time),
		T(test_secret),
		T(test_unbind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
