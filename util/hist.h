/*
 * hist: a log-linear histogram of non-negative integer observations (a
 * latency in ns or µs, a size in bytes), for quantiles without keeping
 * the samples.
 *
 * Exact below 128; above, 64 buckets per power of two, so a quantile is
 * within 1.6 % of the true value; values from 2^40 on are counted as
 * 2^40 - 1. Fixed size (18 KiB), no allocation: embed it, zero it with
 * hist_reset() (or static/calloc'd storage), merge two with hist_merge().
 */
#ifndef QUORUM_HIST_H
#define QUORUM_HIST_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_MAX ((UINT64_C(1) << 40) - 1)
#define HIST_BUCKETS ((40 - 6) * HIST_SUB + 2 * HIST_SUB)

struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t n, sum, min, max; /* min and max are 0 while n is 0 */
};

void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *h);
/* The q-quantile (0 < q <= 1): the middle of the bucket that holds it,
 * never beyond max; 0 when empty. */
double hist_quantile(const struct hist *h, double q);

#endif
