/* main.c: sipd's entry point: options, configuration, and the wiring of transports to the core. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "base/log.h"
#include "core/core.h"
#include "mgmt/ctl.h"
#include "store/store.h"
#include "net/transport.h"
#include "sip/status.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sipd [-c FILE] [--check] [--dump-config [--show-secrets]]\n"
		"       sipd --explain CODE\n"
		"\n"
		"sipd is a SIP server (RFC 3261). With no -c it runs on its embedded defaults,\n"
		"listening on 127.0.0.1:5060 over UDP and TCP.\n"
		"\n"
		"  -c, --config FILE   read this INI file over the defaults\n"
		"      --check         check the configuration, print errors with line numbers, exit\n"
		"      --dump-config   print every key with the value in effect, exit; users'\n"
		"                      passwords and HA1s only with --show-secrets\n"
		"  -e, --explain CODE  what a SIP response code means, when it is sent, the headers it carries\n"
		"  -h, --help          this text\n"
		"  -V, --version       the version\n"
		"\n"
		"Signals: SIGTERM or SIGINT stop sipd cleanly; SIGHUP rereads the users of FILE and the database.\n"
		"Documentation: docs/configuration.md, docs/architecture.md\n");
}

static int explain(const char *arg)
{
	char *end;
	long code = strtol(arg, &end, 10);

	if (*end || code < 100 || code > 699 || sip_status_explain(stdout, (unsigned)code)) {
		fprintf(stderr, "sipd: %s is not a SIP response code (100 to 699)\n", arg);
		return 2;
	}
	return 0;
}

/* "udp:127.0.0.1:5060" into a listener, which advertises itself as advertise ("203.0.113.5[:PORT]",
 * empty for none) when that is of its address family: at the listener's port unless it names one. */
static int listener_parse(struct tp_listen *l, const char *s, const char *advertise)
{
	struct tp_addr adv;

	l->proto = strncasecmp(s, "tcp:", 4) == 0 ? TP_TCP : TP_UDP;
	if (tp_addr_parse(&l->addr, s + 4, 5060))
		return EINVAL;
	if (!advertise[0])
		return 0;
	if (tp_addr_parse(&adv, advertise, tp_addr_port(&l->addr)))
		return EINVAL;
	if (adv.u.sa.sa_family == l->addr.u.sa.sa_family)
		l->advertise = adv;
	return 0;
}

/* Room for every error line of a configuration file (--check and SIGHUP report them all): about
 * 6,000 lines of 80 characters. */
#define CONFIG_ERRS (512 * 1024)

/* SIGHUP, as daemons take it: the configuration file read again, its [user] sections (and the store's
 * users) taken at once; a file with errors changes nothing. Other keys wait for the next start. */
static void reload(struct core *core, const char *path)
{
	struct config fresh;
	static char errs[CONFIG_ERRS]; /* the main thread's alone */
	int n, err;

	if (!path) {
		err = core_reload_users(core, NULL, 0);
		log_info("SIGHUP: users read again from the store%s%s", err ? ": " : "", err ? strerror(err) : "");
		return;
	}
	config_defaults(&fresh);
	n = config_load(&fresh, path, errs, sizeof(errs));
	if (n != 0) {
		for (char *line = strtok(errs, "\n"); n > 0 && line; line = strtok(NULL, "\n"))
			log_warn("SIGHUP: %s", line);
		log_warn("SIGHUP: %s %s: nothing reloaded", path, n < 0 ? strerror(errno) : "has errors");
		config_free(&fresh);
		return;
	}
	err = core_reload_users(core, fresh.users, fresh.nusers);
	if (err)
		log_warn("SIGHUP: users not reloaded: %s", strerror(err));
	else
		log_info("SIGHUP: %u user(s) of %s and the store's taken; other settings take effect at the next "
			 "start", fresh.nusers, path);
	explicit_bzero(fresh.users, fresh.nusers * sizeof(*fresh.users));
	config_free(&fresh);
}

/* The main thread waits for SIGTERM/SIGINT (SIGHUP reloads the users); meanwhile, every 10 s, it ends
 * what only time ends (core_housekeeping: calls past max_call_duration) and hands the heap's free pages
 * back to the system: a burst of transactions (32 s each) leaves freed memory
 * behind that glibc keeps, and that resident memory would otherwise stay with sipd until the next burst. */
static int wait_for_signal(const sigset_t *set, struct core *core, const char *path)
{
	const struct timespec trim_every = { 10, 0 };

	for (;;) {
		int sig = sigtimedwait(set, NULL, &trim_every);

		if (sig == SIGHUP)
			reload(core, path);
		else if (sig > 0)
			return sig;
		else if (errno == EAGAIN) {
			core_housekeeping(core);
			malloc_trim(0);
		}
	}
}

/* Every listener, comma-separated, for the start-up line. */
static const char *listeners(const struct config *cfg, char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < cfg->nlisten && len < n; i++)
		len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", cfg->listen[i]);
	return buf;
}

/* The configuration's warnings (config_warnings): on stderr for --check, whose exit status stays 0
 * (the file is valid), else in the log as sipd starts. */
static void report_warnings(const struct config *cfg, bool to_stderr)
{
	char warnings[1024];

	if (!config_warnings(cfg, warnings, sizeof(warnings)))
		return;
	for (char *line = strtok(warnings, "\n"); line; line = strtok(NULL, "\n")) {
		if (to_stderr)
			fprintf(stderr, "sipd: warning: %s\n", line);
		else
			log_warn("config: %s", line);
	}
}

/* The control socket (sipctl's way to what only sipd's memory holds), when [general] control_socket
 * allows one. sipd runs without it when it cannot have it: the SIP service matters more. */
static struct ctl *control_start(const struct config *cfg, struct core *core)
{
	const char *db = store_file(cfg->db_path);
	char sock[CONFIG_STR];
	struct ctl *ctl = NULL;
	int err = config_control_path(cfg->control_socket, db ? db : cfg->db_path, sock, sizeof(sock));

	if (err == ENOENT)
		return NULL;
	if (err)
		log_warn("control socket: the database's path with .ctl is too long for a Unix socket; set [general] "
			 "control_socket (sipctl show blocks and unblock will not reach this sipd)");
	else if ((err = ctl_new(&ctl, sock, core_admin, core)) == EADDRINUSE)
		log_warn("control socket %s: another sipd answers there (give each its own [general] "
			 "control_socket); this one has none", sock);
	else if (err)
		log_warn("control socket %s: %s; sipd runs without one", sock, strerror(err));
	else
		log_info("control socket %s", sock);
	return ctl;
}

static int run(const struct config *cfg, const char *path)
{
	char all[CONFIG_MAX_LISTEN * 130];
	struct tp_config tc = { 0 };
	struct core *core = NULL;
	struct ctl *ctl;
	struct tp *tp = NULL;
	sigset_t set;
	int sig = 0, err;

	for (unsigned i = 0; i < cfg->nlisten; i++) {
		if (listener_parse(&tc.listen[i], cfg->listen[i],
				   cfg->listen_advertise[i][0] ? cfg->listen_advertise[i] : cfg->advertise)) {
			log_err("listen: cannot parse '%s'", cfg->listen[i]);
			return 1;
		}
	}
	report_warnings(cfg, false);
	tc.nlisten = cfg->nlisten;
	tc.workers = cfg->workers;
	tc.max_msg_size = cfg->max_message_size;
	tc.tcp_max_conns = cfg->tcp_max_connections;
	tc.tcp_idle_timeout_s = cfg->tcp_idle_timeout;
	tc.tcp_keepalive_s = cfg->tcp_keepalive;
	tc.frame = core_frame;
	tc.recv = core_on_message;
	tc.unreachable = core_unreachable;
	tc.worker_stop = core_worker_stop;
	tc.stopped = core_stopped;

	err = core_new(&core, cfg);
	if (err) {
		log_err("cannot start the core: %s", strerror(err));
		return 1;
	}
	if (getenv("SIPD_FAULT") && strcmp(getenv("SIPD_FAULT"), "txn_alloc") == 0) {
		log_warn("fault injection: every transaction allocation fails");
		core_fault_txn_alloc(core, 1);
	}
	tc.arg = core;

	/* Workers inherit this mask: only the main thread takes SIGTERM/SIGINT, through sigwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = tp_start(&tp, &tc);
	if (err) {
		log_err("cannot start the transports: %s", strerror(err));
		core_free(core);
		return 1;
	}
	ctl = control_start(cfg, core);
	log_info("sipd %s running: %u worker(s), %s", SIPD_VERSION, tp_worker_count(tp), listeners(cfg, all, sizeof(all)));
	sig = wait_for_signal(&set, core, path);
	log_info("signal %d: stopping", sig);
	ctl_free(ctl);
	tp_stop(tp);
	core_free(core);
	log_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
		{ "dump-config", no_argument, NULL, 'd' }, { "explain", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },	   { "version", no_argument, NULL, 'V' },
		{ "show-secrets", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	bool check = false, dump = false, secrets = false;
	struct config cfg;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:e:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'd':
			dump = true;
			break;
		case 's':
			secrets = true;
			break;
		case 'e':
			return explain(optarg);
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("sipd %s\n", SIPD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	config_defaults(&cfg);
	if (path) {
		static char errs[CONFIG_ERRS];
		int n = config_load(&cfg, path, errs, sizeof(errs));

		if (n < 0) {
			fprintf(stderr, "sipd: cannot open %s: %s\n", path, strerror(errno));
			return 1;
		}
		if (n > 0) {
			fputs(errs, stderr);
			fprintf(stderr, "sipd: %d error(s) in %s\n", n, path);
			config_free(&cfg);
			return 1;
		}
	}
	if (check || dump) {
		if (check) {
			report_warnings(&cfg, true);
			printf("%s: OK\n", path ? path : "(embedded defaults)");
		}
		else
			config_dump(&cfg, stdout, secrets);
		config_free(&cfg);
		return 0;
	}
	log_set_level((enum log_level)cfg.log_level);
	opt = run(&cfg, path);
	config_free(&cfg);
	return opt;
}
