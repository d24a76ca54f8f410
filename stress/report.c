/*
 * Violation bookkeeping. Any thread may call violation(); counts are atomics,
 * the texts of the first few are kept under a mutex (violations are rare, so
 * the lock never sits on a hot path).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stress.h"

const char *const vkind_name[V_NKINDS] = {
	[V_TORN] = "torn",       [V_MISDIRECTED] = "misdirected",
	[V_STALE] = "stale",     [V_PHANTOM] = "phantom",
	[V_LOST] = "lost",       [V_RESURRECTED] = "resurrected",
	[V_BAD_OLD] = "bad_old", [V_LOST_UPDATE] = "lost_update",
	[V_WALK] = "walk",       [V_COUNT] = "count",
	[V_RC] = "rc",           [V_DURABILITY] = "durability",
	[V_OPEN] = "open",       [V_CHILD] = "child",
	[V_WINNERS] = "winners", [V_VERSION] = "version",
	[V_BATCH] = "batch",     [V_BACKUP] = "backup",
};

#define MSG_MAX    512
#define NOTES_KEPT 5

static struct timespec t0;
static _Atomic uint64_t counts[V_NKINDS];
static _Atomic uint64_t total, notes;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned int kept_max;
static unsigned int kept; /* under mu */
static char (*texts)[MSG_MAX];
static char note_texts[NOTES_KEPT][MSG_MAX];

void report_init(unsigned int max_report)
{
	clock_gettime(CLOCK_MONOTONIC, &t0);
	kept_max = max_report;
	texts = calloc(max_report ? max_report : 1, MSG_MAX);
}

double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0.tv_sec) +
	       (double)(t.tv_nsec - t0.tv_nsec) * 1e-9;
}

void sleep_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = { (time_t)s,
		               (long)((s - (double)(time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

void vviolation(enum vkind k, const char *fmt, va_list ap)
{
	atomic_fetch_add(&counts[k], 1);
	uint64_t n = atomic_fetch_add(&total, 1);
	if (n >= kept_max)
		return;
	char msg[MSG_MAX];
	int off =
	    snprintf(msg, sizeof msg, "[%s] t=%.3fs ", vkind_name[k], now_s());
	vsnprintf(msg + off, sizeof msg - (size_t)off, fmt, ap);
	pthread_mutex_lock(&mu);
	if (kept < kept_max)
		memcpy(texts[kept++], msg, MSG_MAX);
	pthread_mutex_unlock(&mu);
	fprintf(stderr, "VIOLATION %s\n", msg);
}

void violation(enum vkind k, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vviolation(k, fmt, ap);
	va_end(ap);
}

void note(const char *fmt, ...)
{
	uint64_t n = atomic_fetch_add(&notes, 1);
	if (n >= NOTES_KEPT)
		return;
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&mu);
	int off = snprintf(note_texts[n], MSG_MAX, "t=%.3fs ", now_s());
	vsnprintf(note_texts[n] + off, MSG_MAX - (size_t)off, fmt, ap);
	fprintf(stderr, "note: %s\n", note_texts[n]);
	pthread_mutex_unlock(&mu);
	va_end(ap);
}

uint64_t violations_total(void)
{
	return atomic_load(&total);
}

uint64_t notes_total(void)
{
	return atomic_load(&notes);
}

void report_summary(FILE *f)
{
	uint64_t n = violations_total();
	if (n == 0) {
		fprintf(f, "  violations: none\n");
	} else {
		fprintf(f, "  violations: %" PRIu64 " total:", n);
		for (int k = 0; k < V_NKINDS; k++) {
			uint64_t c = atomic_load(&counts[k]);
			if (c)
				fprintf(f, " %s %" PRIu64, vkind_name[k], c);
		}
		fprintf(f, "\n  first violations:\n");
		pthread_mutex_lock(&mu);
		for (unsigned int i = 0; i < kept; i++)
			fprintf(f, "   %2u. %s\n", i + 1, texts[i]);
		pthread_mutex_unlock(&mu);
		if (n > kept)
			fprintf(f, "   ... and %" PRIu64 " more\n", n - kept);
	}
	uint64_t nn = notes_total();
	if (nn) {
		fprintf(f,
		        "  notes (allowed by the contract, worth a look): "
		        "%" PRIu64 "\n",
		        nn);
		pthread_mutex_lock(&mu);
		for (uint64_t i = 0; i < nn && i < NOTES_KEPT; i++)
			fprintf(f, "   - %s\n", note_texts[i]);
		pthread_mutex_unlock(&mu);
	}
}
