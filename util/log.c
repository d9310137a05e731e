/*
 * log: see log.h. Each line is formatted into a stack buffer and written
 * with one write(2), so lines from different threads never interleave.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level current = LOG_INFO;
static const char *const names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void log_set_level(enum log_level level) { current = level; }
enum log_level log_get_level(void) { return current; }

/* Writes one line: the prefix, then fmt. */
static void write_line(enum log_level level, const char *subsystem, const char *fmt, va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[level], subsystem);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

static void write_linef(enum log_level level, const char *subsystem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void write_linef(enum log_level level, const char *subsystem, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	write_line(level, subsystem, fmt, ap);
	va_end(ap);
}

void log_msg(enum log_level level, const char *subsystem, const char *fmt, ...)
{
	if (level > current)
		return;
	va_list ap;
	va_start(ap, fmt);
	write_line(level, subsystem, fmt, ap);
	va_end(ap);
}

static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_rate *rate_sites; /* under rate_lock */

/* Under rate_lock. */
static void write_dropped(struct log_rate *r)
{
	if (r->dropped == 0)
		return;
	write_linef(r->level, r->subsystem, "%u more like this were dropped, the last: %s",
		    r->dropped, r->last);
	r->dropped = 0;
}

void log_rated(struct log_rate *r, enum log_level level, const char *subsystem,
	       const char *fmt, ...)
{
	if (level > current)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	va_list ap;
	pthread_mutex_lock(&rate_lock);
	if (!r->started) {
		r->started = true;
		r->tokens = LOG_RATE_BURST;
		r->next = rate_sites;
		rate_sites = r;
	} else {
		r->tokens += (double)(now - r->last_ms) * LOG_RATE_LINES / 1000.0;
		if (r->tokens > LOG_RATE_BURST)
			r->tokens = LOG_RATE_BURST;
	}
	r->last_ms = now;
	bool write = r->tokens >= 1.0;
	if (write) {
		r->tokens -= 1.0;
		write_dropped(r);
		va_start(ap, fmt);
		write_line(level, subsystem, fmt, ap);
		va_end(ap);
	} else {
		r->dropped++;
		r->level = level;
		r->subsystem = subsystem;
		va_start(ap, fmt);
		vsnprintf(r->last, sizeof(r->last), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&rate_lock);
}

void log_rate_flush(void)
{
	pthread_mutex_lock(&rate_lock);
	for (struct log_rate *r = rate_sites; r; r = r->next)
		write_dropped(r);
	pthread_mutex_unlock(&rate_lock);
}
