/*
 * log: one line per event on stderr, with a wall-clock timestamp, the level
 * and the subsystem. Thread-safe (one write(2) a line).
 *
 *     log_msg(LOG_WARN, "conn", "%s: frame of %u bytes over jute.maxbuffer", peer, n);
 */
#ifndef QUORUM_LOG_H
#define QUORUM_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped; default LOG_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *subsystem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Rate-limited lines, for everything a client or a peer can make happen
 * as often as it likes (ZooKeeper's RateLogger is the precedent): each call
 * site writes at most LOG_RATE_LINES lines a second; the rest are counted,
 * and the next line written after that second says how many were dropped
 * and shows the last of them. So no sender can make the log grow faster
 * than a fixed rate per call site.
 *
 *     log_rl(LOG_WARN, "conn", "%s: frame of %d bytes; closing", peer, n);
 */
#define LOG_RATE_LINES 5

struct log_rate {
	int64_t window_ms;  /* when the current second began (monotonic) */
	unsigned lines;     /* written in it */
	unsigned dropped;   /* dropped since the last line written */
	char last[200];     /* the last dropped line's text */
};

void log_rated(struct log_rate *r, enum log_level level, const char *subsystem,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_rl(level, subsystem, ...)                                           \
	do {                                                                    \
		static struct log_rate log_rl_site_;                            \
		log_rated(&log_rl_site_, (level), (subsystem), __VA_ARGS__);    \
	} while (0)

#endif
