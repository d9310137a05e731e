/*
 * hist: see hist.h.
 *
 * Bucket i below 2 * HIST_SUB holds the value i. Above, a value v with its
 * highest bit at b (b >= 7) goes to (b - 6) * HIST_SUB + (v >> (b - 6)):
 * its top seven bits pick one of HIST_SUB buckets in [2^b, 2^(b+1)).
 */
#include "hist.h"

#include <math.h>
#include <string.h>

static unsigned index_of(uint64_t v)
{
	if (v > HIST_MAX)
		v = HIST_MAX;
	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - 6;
	return shift * HIST_SUB + (unsigned)(v >> shift);
}

/* The middle of bucket i. */
static double value_of(unsigned i)
{
	if (i < 2 * HIST_SUB)
		return i;
	unsigned shift = i / HIST_SUB - 1;
	uint64_t lower = (uint64_t)(i - shift * HIST_SUB) << shift;
	return (double)lower + (double)(UINT64_C(1) << shift) / 2.0;
}

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

void hist_add(struct hist *h, uint64_t v)
{
	h->count[index_of(v)]++;
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += v;
}

void hist_merge(struct hist *into, const struct hist *h)
{
	if (h->n == 0)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->count[i] += h->count[i];
	if (into->n == 0 || h->min < into->min)
		into->min = h->min;
	if (h->max > into->max)
		into->max = h->max;
	into->n += h->n;
	into->sum += h->sum;
}

double hist_quantile(const struct hist *h, double q)
{
	if (h->n == 0)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			double v = value_of(i);
			return v > (double)h->max ? (double)h->max : v;
		}
	}
	return (double)h->max;
}
