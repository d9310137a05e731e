/*
 * log: one line per event on stderr, with a wall-clock timestamp, the level
 * and the subsystem. Thread-safe (one write(2) a line).
 *
 *     log_msg(LOG_WARN, "conn", "%s: frame of %u bytes over jute.maxbuffer", peer, n);
 */
#ifndef QUORUM_LOG_H
#define QUORUM_LOG_H

#include <stdbool.h>
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
 * site has a bucket of LOG_RATE_BURST lines, refilled at LOG_RATE_LINES a
 * second; a line that finds it empty is counted instead of written, and
 * the next line written, or log_rate_flush(), whichever comes first, says
 * how many were dropped and shows the last of them. So no sender can make
 * the log grow faster than a fixed rate per call site, while an occasional
 * burst is still seen line by line, and a flood that stops is still
 * summed up.
 *
 *     log_rl(LOG_WARN, "conn", "%s: frame of %d bytes; closing", peer, n);
 */
#define LOG_RATE_LINES 5
#define LOG_RATE_BURST 30

struct log_rate {
	int64_t last_ms;    /* when the bucket was last refilled (monotonic) */
	double tokens;      /* lines it may write now */
	bool started;
	unsigned dropped;   /* dropped since the last line written */
	enum log_level level;  /* of the last dropped line */
	const char *subsystem;
	char last[200];     /* the last dropped line's text */
	struct log_rate *next; /* every call site used so far, for the flush */
};

void log_rated(struct log_rate *r, enum log_level level, const char *subsystem,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Writes the summary line of every call site that dropped lines since it
 * last wrote one. A program with rate-limited lines calls it about once a
 * second (quorumd: every tick), so a summary is never held back until the
 * same site logs again. */
void log_rate_flush(void);

#define log_rl(level, subsystem, ...)                                           \
	do {                                                                    \
		static struct log_rate log_rl_site_;                            \
		log_rated(&log_rl_site_, (level), (subsystem), __VA_ARGS__);    \
	} while (0)

#endif
