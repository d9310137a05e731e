/*
 * log: the daemon's lines, to stderr in the foreground and to syslog as a
 * daemon.
 *
 * The one piece of process-wide state in fs/: where lines go is the
 * process's, as openlog(3)'s is. fs_log_setup() is called once by main()
 * before any thread starts; fs_log() from any thread afterwards.
 */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "fs.h"

static bool log_debug;   /* LOG_DEBUG lines go out (-d) */
static bool log_syslog;  /* to syslog, not stderr */

void fs_log_setup(bool debug, bool to_syslog)
{
	log_debug = debug;
	log_syslog = to_syslog;
}

void fs_log(int priority, const char *fmt, ...)
{
	if (priority == LOG_DEBUG && !log_debug)
		return;
	va_list ap;
	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(priority, fmt, ap);
	} else {
		char line[1024];
		vsnprintf(line, sizeof(line), fmt, ap);
		fprintf(stderr, "quorumfs: %s\n", line);
	}
	va_end(ap);
}
