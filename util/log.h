/*
 * log: one line per event on stderr, with a wall-clock timestamp, the level
 * and the subsystem. Thread-safe (one write(2) a line).
 *
 *     log_msg(LOG_WARN, "conn", "%s: frame of %u bytes over jute.maxbuffer", peer, n);
 */
#ifndef QUORUM_LOG_H
#define QUORUM_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped; default LOG_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *subsystem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
