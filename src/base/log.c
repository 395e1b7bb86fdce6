/* log.c: timestamped lines on stderr. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum log_level cur_level = LOG_INFO;
static const char *const level_names[] = { "error", "warning", "info", "debug" };

void log_set_level(enum log_level lvl)
{
	cur_level = lvl;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warn") == 0)
		return LOG_WARN;
	return -1;
}

/* Control characters of the formatted text (names and URIs from the network among them) as \xNN, so
 * that no request writes a line of its own into the log, or escape sequences to the terminal reading
 * it. Returns the length of out; the text is cut where it would not fit. */
static size_t escape_controls(char *out, size_t cap, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 0x20 && c != 0x7f) {
			if (n + 1 > cap)
				break;
			out[n++] = (char)c;
			continue;
		}
		if (n + 4 > cap)
			break;
		out[n++] = '\\';
		out[n++] = 'x';
		out[n++] = hex[c >> 4];
		out[n++] = hex[c & 15];
	}
	return n;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char text[1024], line[1100];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n, t;

	if (lvl > cur_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		     level_names[lvl]);
	va_start(ap, fmt);
	t = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (t < 0)
		t = 0;
	if (t > (int)sizeof(text) - 1)
		t = (int)sizeof(text) - 1;
	n += (int)escape_controls(line + n, sizeof(line) - (size_t)n - 1, text, (size_t)t);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}
