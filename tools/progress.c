/*
 * Progress line on standard error; see progress.h.
 *
 * Threads: the caller's thread writes `done` (relaxed store) and calls
 * begin/end; the drawing thread reads `done` (relaxed load: a slightly old
 * count is harmless) and owns the terminal line between begin and end. `stop`
 * and `shown` are guarded by `mu`; end() joins the thread before it touches
 * the line itself, so the two never write to stderr at the same time.
 */
#include "progress.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Below a second nobody needs a progress line, and printing one would only
 * flicker. */
#define PROGRESS_DELAY_MS 1000
/* Redraws per second on a terminal: smooth enough, and costs nothing. */
#define PROGRESS_TICK_MS 200
/* Forced progress to a file or pipe writes whole lines; one a second keeps a
 * log readable. */
#define PROGRESS_LINE_MS 1000

static struct {
	int enabled, forced, tty;
	const char *label, *unit;
	uint64_t total;
	_Atomic uint64_t done;
	struct timespec t0;
	pthread_t thread;
	int running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop, shown;
} pg = { .mu = PTHREAD_MUTEX_INITIALIZER };

void progress_init(int mode)
{
	pg.tty = isatty(STDERR_FILENO);
	pg.forced = mode == 1;
	pg.enabled = mode == 1 || (mode < 0 && pg.tty);
}

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - t0->tv_sec) * 1000 +
	       (uint64_t)((t.tv_nsec - t0->tv_nsec) / 1000000);
}

static void fmt_amount(char *out, size_t cap, uint64_t v, const char *unit)
{
	if (strcmp(unit, "B") == 0) {
		static const char *suf[] = { "B", "KiB", "MiB", "GiB", "TiB" };
		double d = (double)v;
		int k = 0;

		while (d >= 1024 && k < 4) {
			d /= 1024;
			k++;
		}
		if (k == 0)
			snprintf(out, cap, "%llu B", (unsigned long long)v);
		else
			snprintf(out, cap, "%.1f %s", d, suf[k]);
	} else {
		snprintf(out, cap, "%llu", (unsigned long long)v);
	}
}

static void draw(uint64_t ms)
{
	char line[256], a[32], b[32];
	uint64_t done = atomic_load_explicit(&pg.done, memory_order_relaxed);
	int n;

	if (!pg.unit) {
		n = snprintf(line, sizeof(line), "%s... %llus", pg.label,
		             (unsigned long long)(ms / 1000));
	} else if (pg.total) {
		fmt_amount(a, sizeof(a), done, pg.unit);
		fmt_amount(b, sizeof(b), pg.total, pg.unit);
		n = snprintf(
		    line, sizeof(line), "%s: %s / %s%s%s (%u%%)", pg.label, a,
		    b, strcmp(pg.unit, "B") ? " " : "",
		    strcmp(pg.unit, "B") ? pg.unit : "",
		    (unsigned)(done >= pg.total ? 100 : done * 100 / pg.total));
	} else {
		fmt_amount(a, sizeof(a), done, pg.unit);
		n = snprintf(line, sizeof(line), "%s: %s%s%s", pg.label, a,
		             strcmp(pg.unit, "B") ? " " : "",
		             strcmp(pg.unit, "B") ? pg.unit : "");
	}
	if (n < 0)
		return;
	if (pg.tty)
		fprintf(stderr, "\r\033[K%s", line);
	else
		fprintf(stderr, "%s\n", line);
}

static void *run(void *arg)
{
	uint64_t delay = pg.forced ? 0 : PROGRESS_DELAY_MS;
	uint64_t tick = pg.tty ? PROGRESS_TICK_MS : PROGRESS_LINE_MS;
	uint64_t next = delay;

	(void)arg;
	pthread_mutex_lock(&pg.mu);
	while (!pg.stop) {
		uint64_t now = ms_since(&pg.t0);

		if (now >= next) {
			draw(now);
			pg.shown = 1;
			next = now + tick;
			continue;
		}
		/* Sleep until the next redraw or until end() wakes us. */
		struct timespec until;
		uint64_t wait = next - now;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)(wait / 1000);
		until.tv_nsec += (long)(wait % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&pg.cv, &pg.mu, &until);
	}
	pthread_mutex_unlock(&pg.mu);
	return NULL;
}

void progress_begin(const char *label, uint64_t total, const char *unit)
{
	pthread_condattr_t ca;
	sigset_t all, old;

	if (!pg.enabled || pg.running)
		return;
	pg.label = label;
	pg.unit = unit;
	pg.total = total;
	atomic_store_explicit(&pg.done, 0, memory_order_relaxed);
	pg.stop = 0;
	pg.shown = 0;
	clock_gettime(CLOCK_MONOTONIC, &pg.t0);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pg.cv, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals (SIGINT, SIGPIPE) belong to the main thread, which knows
	 * how to stop cleanly; the drawing thread starts with them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pg.running = pthread_create(&pg.thread, NULL, run, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!pg.running)
		pthread_cond_destroy(&pg.cv);
}

void progress_set(uint64_t done)
{
	atomic_store_explicit(&pg.done, done, memory_order_relaxed);
}

void progress_end(const char *final)
{
	int shown;

	if (!pg.running)
		return;
	pthread_mutex_lock(&pg.mu);
	pg.stop = 1;
	pthread_cond_signal(&pg.cv);
	pthread_mutex_unlock(&pg.mu);
	pthread_join(pg.thread, NULL);
	pthread_cond_destroy(&pg.cv);
	pg.running = 0;
	shown = pg.shown;
	if (shown && pg.tty)
		fputs("\r\033[K", stderr);
	if (final && (shown || pg.forced))
		fprintf(stderr, "%s\n", final);
}
