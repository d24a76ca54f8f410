/*
 * dskvs-bench: latency histograms — TSC ticks into log buckets (16
 * sub-buckets per power of two, ~6% resolution), their percentiles in ns,
 * and the median of the repetitions.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include "bench.h"

double ns_per_tick;

void calibrate_tsc(void)
{
	double t0 = now_s();
	uint64_t c0 = __rdtsc();

	while (now_s() - t0 < 0.05)
		;
	ns_per_tick = (now_s() - t0) * 1e9 / (double)(__rdtsc() - c0);
}
static double hbucket_mid(unsigned int b)
{
	if (b < 16)
		return b;
	unsigned int msb = b / 16 + 3, sub = b % 16;
	double lo = ldexp(16 + sub, (int)msb - 4);
	return lo + ldexp(1, (int)msb - 4) / 2;
}

double hpercentile(const uint64_t *h, double q)
{
	uint64_t total = 0, acc = 0;

	for (int i = 0; i < HBUCKETS; i++)
		total += h[i];
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)ceil(q * (double)total);
	if (want == 0)
		want = 1;
	for (int i = 0; i < HBUCKETS; i++) {
		acc += h[i];
		if (acc >= want)
			return hbucket_mid(i) * ns_per_tick;
	}
	return 0;
}

/* ---- keys --------------------------------------------------------------- */
static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double median(const double *v, int n)
{
	double tmp[MAXREPS];

	if (n <= 0)
		return 0;
	memcpy(tmp, v, sizeof(double) * (size_t)n);
	qsort(tmp, (size_t)n, sizeof(double), cmp_d);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}
