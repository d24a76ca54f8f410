/*
 * dskvs-bench workloads incr-*: increment a counter held in a value, from
 * every thread, on uniformly drawn keys of the preloaded store or on one
 * hot key, two ways:
 *   update  dskvs_update() with a callback that copies the value and adds
 *           1 to its first 8 bytes (the decision and the write under the
 *           collection's lock, no lock of the caller's);
 *   mutex   what users do without it: dskvs_get() + the same increment +
 *           dskvs_put(), under an application mutex, striped by key (256
 *           pthread mutexes, the stripe = key index mod 256; the hot key
 *           always takes the same one, a single mutex).
 * Both rewrite the whole value (its length stays --value-size), so they
 * differ only in where the read-modify-write is made atomic. dskvs only
 * (the calls are dskvs's; r->db is the dskvs handle).
 */
#include <pthread.h>
#include <string.h>

#include "dskvs.h"
#include "workload.h"

#define STRIPES                                               \
	256 /* enough that two threads on uniform keys rarely \
	     * share one; a power of two for the mask */

static pthread_mutex_t stripe[STRIPES];
static pthread_once_t stripe_once = PTHREAD_ONCE_INIT;

static void stripe_init(void)
{
	for (int i = 0; i < STRIPES; i++)
		pthread_mutex_init(&stripe[i], NULL);
}

struct incr_arg {
	char *buf;
	size_t cap;
};

static int incr_fn(const void *old, size_t old_len, int exists,
                   const void **new_val, size_t *new_len, void *arg)
{
	struct incr_arg *a = arg;
	size_t len = exists ? old_len : 8;
	uint64_t v = 0;

	if (len < 8 || len > a->cap)
		return DSKVS_ERANGE;
	if (exists)
		memcpy(a->buf, old, len);
	else
		memset(a->buf, 0, len);
	memcpy(&v, a->buf, 8);
	v++;
	memcpy(a->buf, &v, 8);
	*new_val = a->buf;
	*new_len = len;
	return DSKVS_UPDATE_SET;
}

/* param: bit 0 = the hot key, bit 1 = the mutex variant. */
static uint64_t loop_incr(struct worker *w, void *tctx)
{
	WL_LOOP_LOCALS(w);
	const uintptr_t mode = (uintptr_t)r->w->param;
	const int hot = mode & 1, mutex = (mode & 2) != 0;
	dskvs *s = r->db;
	struct incr_arg a = { w->buf, w->cap };
	struct keybuf kb;
	int rc;

	(void)e;
	(void)tctx;
	pthread_once(&stripe_once, stripe_init);
	while (!stopped(r)) {
		uint32_t i = hot ? 0 : w->idx[n & (IDX_PER_THR - 1)];
		const char *key = key_at(&kb, i, 0)->full;
		if (!mutex) {
			TIMED(rc = dskvs_update(s, key, incr_fn, &a, NULL));
		} else {
			pthread_mutex_t *m = &stripe[i & (STRIPES - 1)];
			size_t len = 0;
			uint64_t v;
			TIMED({
				pthread_mutex_lock(m);
				rc = dskvs_get(s, key, w->buf, w->cap, &len);
				if (rc == DSKVS_OK && len >= 8) {
					memcpy(&v, w->buf, 8);
					v++;
					memcpy(w->buf, &v, 8);
					rc = dskvs_put(s, key, w->buf, len,
					               NULL, NULL);
				}
				pthread_mutex_unlock(m);
			});
		}
		if (rc != 0)
			note_err(w, rc);
	}
	return n;
}

#define INCR(var, nm, wh, mode)                \
	const struct bench_workload var = {    \
		.name = nm,                    \
		.what = wh,                    \
		.param = (const void *)(mode), \
		.engine_only = "dskvs",        \
		.loop = loop_incr,             \
	}

INCR(wl_incr_update, "incr-update",
     "increment a uniform key's value with dskvs_update", 0);
INCR(wl_incr_mutex, "incr-mutex",
     "the same with get + put under a striped app mutex", 2);
INCR(wl_incr_hot_update, "incr-hot-update",
     "increment one hot key with dskvs_update", 1);
INCR(wl_incr_hot_mutex, "incr-hot-mutex",
     "the same with get + put under an app mutex", 3);
