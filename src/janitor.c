/*
 * The janitor thread: one per store. It drains the queue in batches
 * (batch.c), compacts when garbage dominates or a caller asks (compact.c),
 * and at close writes what is left and seals the log's end. Also the
 * compaction requests, start and stop, and the statistics.
 *
 * Requests: callers bump compact_asked (or cut_asked) under q->mu, raise
 * compact_req and wait on q->durable_cv for compact_done (cut_done) to
 * reach their ticket; the janitor serves them between batches.
 */
#include "janitor.h"
#include "format.h"
#include "queue.h"
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the thread ------------------------------------------------------------
 */

/* Summing the live bytes walks the collections, so the trigger looks again
 * only after the log grew by an eighth (at least 1 MiB): the log overshoots
 * the threshold by at most that much plus one batch. */
static void schedule_check(struct dskvs__janitor *j)
{
	uint64_t step =
	    j->log_size / 8 > (1u << 20) ? j->log_size / 8 : (1u << 20);
	j->next_check = j->log_size + step;
}

/* Compact when the log is past the minimum size and garbage is more than
 * compact_garbage_pct of it. */
static bool want_compact(struct dskvs__janitor *j)
{
	if (!j->opts->auto_compact ||
	    j->log_size < j->opts->compact_min_bytes ||
	    j->log_size < j->next_check)
		return false;
	uint64_t live = dskvs__live_log_bytes(j->t) + DSKVS_FILE_HDR;
	schedule_check(j);
	pthread_mutex_lock(&j->stats_mu);
	j->st_log_live_bytes = live;
	pthread_mutex_unlock(&j->stats_mu);
	return live * 100 < j->log_size * (100 - j->opts->compact_garbage_pct);
}

/* Hand a cut to the requester (dskvs__janitor_cut). Called between
 * batches, where every record dequeued so far is in the current log and,
 * unless the store has a sticky error, fdatasync'ed. Call with q->mu. */
static void serve_cut(struct dskvs__janitor *j)
{
	int err = __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE);
	j->cut_fd = -1;
	j->cut_size = j->log_size;
	j->cut_rc = err;
	if (err == DSKVS_OK) {
		j->cut_fd = fcntl(j->logfd, F_DUPFD_CLOEXEC, 0);
		if (j->cut_fd < 0) {
			j->cut_errno = errno;
			j->cut_rc = DSKVS_EIO;
		}
	}
	j->cut_done = j->cut_asked;
}

/* Serve what callers asked for: a cut (cheap: a dup), then the compaction
 * or rewrite. */
static void serve_requests(struct dskvs__janitor *j)
{
	pthread_mutex_lock(&j->q->mu);
	__atomic_store_n(&j->compact_req, 0, __ATOMIC_RELAXED);
	if (j->cut_asked != j->cut_done) {
		serve_cut(j);
		pthread_cond_broadcast(&j->q->durable_cv);
	}
	uint64_t serving = j->compact_asked;
	int kind = j->compact_kind;
	j->compact_kind = 0;
	pthread_mutex_unlock(&j->q->mu);
	if (serving == j->compact_done)
		return; /* only a cut was asked (compact_done: janitor's) */

	int rc = dskvs__compact_run(j, kind == 2);
	schedule_check(j);

	pthread_mutex_lock(&j->q->mu);
	j->compact_done = serving;
	j->compact_rc = rc;
	pthread_cond_broadcast(&j->q->durable_cv);
	pthread_mutex_unlock(&j->q->mu);
}

/* Giving freed memory back (trim.c): at the end of each of the first
 * TRIM_IDLE_NAPS naps of TRIM_IDLE_NS after the last batch, once
 * TRIM_IDLE_MIN bytes were freed; under load once TRIM_BUSY_MIN were, at
 * most every TRIM_BUSY_INTERVAL_NS (a trim holds up other threads' malloc
 * while it walks the heap). An idle store wakes its janitor at most
 * TRIM_IDLE_NAPS times, then sleeps until the next write. */
#define TRIM_IDLE_NAPS        3
#define TRIM_IDLE_NS          (100 * 1000000ull)
#define TRIM_IDLE_MIN         (1u << 20)
#define TRIM_BUSY_MIN         (256u << 20)
#define TRIM_BUSY_INTERVAL_NS (1000 * 1000000ull)

static void *janitor_main(void *arg)
{
	struct dskvs__janitor *j = arg;
	unsigned naps = TRIM_IDLE_NAPS; /* idle naps since the last batch */
	uint64_t released_ns = 0;       /* the last busy slab release */

	for (;;) {
		/* Here the janitor holds no record: the collections removed
		 * since can go (table.h, "collections and their records"). */
		dskvs__colls_sweep(j->t, j->q->seq_base + j->q->dequeued);
		size_t n = dskvs__janitor_drain(j, 0);
		if (n) {
			dskvs__janitor_batch(j, n, false);
			if (want_compact(j)) {
				dskvs__compact_run(j, false);
				schedule_check(j);
			}
		}
		if (__atomic_load_n(&j->compact_req, __ATOMIC_ACQUIRE)) {
			serve_requests(j);
			continue;
		}
		if (n) {
			naps = 0;
			(void)dskvs__trim(TRIM_BUSY_MIN, TRIM_BUSY_INTERVAL_NS);
			/* The blocks' slabs, on the same terms (blk.h). */
			uint64_t now = dskvs__now_ns();
			if (now - released_ns >= TRIM_BUSY_INTERVAL_NS) {
				(void)dskvs__blk_pool_release(&j->t->pool,
				                              TRIM_BUSY_MIN);
				released_ns = now;
			}
			continue;
		}

		/* Idle. For the first few moments after the last batch, nap
		 * instead of sleeping: the blocks its writes replaced are
		 * freed a grace period later, by then perhaps megabytes, and
		 * a nap that ends with nothing queued gives them back. */
		bool nap = naps < TRIM_IDLE_NAPS;
		/* Blocks retired after the last batch began (blk.h). */
		dskvs__blk_pool_flush(&j->t->pool);
		if (dskvs__queue_sleep(j->q, &j->compact_req,
		                       nap ? TRIM_IDLE_NS : 0)) {
			dskvs__janitor_seal_tail(j);
			break;
		}
		if (nap && dskvs__queue_empty(j->q) &&
		    !__atomic_load_n(&j->compact_req, __ATOMIC_ACQUIRE)) {
			naps++;
			/* The batch scratch grew to the largest batch (up to
			 * batch_max_bytes); an idle store gives it back. */
			if (naps == TRIM_IDLE_NAPS && j->scratch_cap > 65536) {
				free(j->scratch);
				j->scratch = NULL;
				j->scratch_cap = 0;
			}
			/* So do the free blocks kept for the next puts;
			 * before that, the slabs' empty pages, on the
			 * terms of malloc_trim's (blk.h). */
			if (naps == TRIM_IDLE_NAPS)
				dskvs__blk_pool_trim(&j->t->pool);
			else
				(void)dskvs__blk_pool_release(&j->t->pool,
				                              TRIM_IDLE_MIN);
			(void)dskvs__trim(TRIM_IDLE_MIN, 0);
		}
	}
	return NULL;
}

int dskvs__janitor_start(struct dskvs__janitor *j)
{
	/* Twice: a drain runs past its bound to the end of a batch of
	 * writes (queue.h), which has at most batch_max_records records. */
	j->batch =
	    malloc(2 * (size_t)j->opts->batch_max_records * sizeof(*j->batch));
	if (j->batch == NULL)
		return DSKVS_ENOMEM;
	j->next_check = j->log_size;
	j->q->caught_up_ns = dskvs__now_ns();
	if (pthread_create(&j->thread, NULL, janitor_main, j) != 0)
		return DSKVS_ENOMEM;
	j->started = true;
	return DSKVS_OK;
}

int dskvs__janitor_stop(struct dskvs__janitor *j)
{
	if (j->started) {
		dskvs__queue_close(j->q);
		pthread_join(j->thread, NULL);
		dskvs__compact_join_closer(j);
		j->started = false;
	}
	return __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE);
}

int dskvs__janitor_compact(struct dskvs__janitor *j, int kind)
{
	int rc;
	pthread_mutex_lock(&j->q->mu);
	uint64_t mine = ++j->compact_asked;
	if (j->compact_kind < kind)
		j->compact_kind = kind;
	__atomic_store_n(&j->compact_req, 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&j->q->wake_cv);
	/* compact_done only reaches `mine` for a run that started after this
	 * request was registered. */
	while (j->compact_done < mine)
		pthread_cond_wait(&j->q->durable_cv, &j->q->mu);
	rc = j->compact_rc;
	if (rc != DSKVS_OK)
		dskvs__fail(rc, "%s",
		            j->q->err ? j->q->err_detail
		                      : "compaction failed (see the log "
		                        "hook for the cause)");
	pthread_mutex_unlock(&j->q->mu);
	return rc;
}

int dskvs__janitor_cut(struct dskvs__janitor *j, int *fd, uint64_t *size)
{
	int rc;
	*fd = -1;
	*size = 0;
	pthread_mutex_lock(&j->cut_mu);
	pthread_mutex_lock(&j->q->mu);
	uint64_t mine = ++j->cut_asked;
	__atomic_store_n(&j->compact_req, 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&j->q->wake_cv);
	while (j->cut_done < mine)
		pthread_cond_wait(&j->q->durable_cv, &j->q->mu);
	rc = j->cut_rc;
	if (rc == DSKVS_OK) {
		*fd = j->cut_fd;
		*size = j->cut_size;
	} else if (j->q->err) {
		dskvs__fail(rc, "%s", j->q->err_detail);
	} else {
		dskvs__fail(rc, "%s/" DSKVS_LOG_NAME ": dup: %s", j->path,
		            strerror(j->cut_errno));
	}
	j->cut_fd = -1;
	pthread_mutex_unlock(&j->q->mu);
	pthread_mutex_unlock(&j->cut_mu);
	return rc;
}

/* ---- set-up and statistics ------------------------------------------------
 */

void dskvs__janitor_init(struct dskvs__janitor *j, struct dskvs__tables *t,
                         struct dskvs__queue *q, const dskvs_options *opts,
                         const struct dskvs__diag *diag, int dirfd,
                         const char *path)
{
	j->t = t;
	j->q = q;
	j->opts = opts;
	j->diag = diag;
	j->dirfd = dirfd;
	j->path = path;
	j->logfd = -1;
	j->cut_fd = -1;
	pthread_mutex_init(&j->stats_mu, NULL);
	pthread_mutex_init(&j->cut_mu, NULL);
}

void dskvs__janitor_destroy(struct dskvs__janitor *j)
{
	if (j->logfd >= 0)
		dskvs__io.close(j->logfd);
	j->logfd = -1;
	pthread_mutex_destroy(&j->stats_mu);
	pthread_mutex_destroy(&j->cut_mu);
	free(j->batch);
	free(j->scratch);
	free(j->iov);
	j->batch = NULL;
	j->scratch = NULL;
	j->iov = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void dskvs__janitor_stats(struct dskvs__janitor *j, dskvs_stats *st)
{
	uint64_t *sorted = malloc(1024 * sizeof(*sorted));
	size_t n;

	pthread_mutex_lock(&j->stats_mu);
	st->log_bytes = __atomic_load_n(&j->log_size, __ATOMIC_RELAXED);
	st->batches = j->st_batches;
	st->records_written = j->st_records;
	st->bytes_written = j->st_bytes;
	st->last_batch_records = j->st_last_batch_records;
	st->last_batch_bytes = j->st_last_batch_bytes;
	st->compactions = j->st_compactions;
	st->last_compaction_unix = j->st_last_compaction_unix;
	n = j->hist.n < 1024 ? (size_t)j->hist.n : 1024;
	if (n)
		st->fsync_last_ns = j->hist.ns[(j->hist.n - 1) % 1024];
	if (n && sorted)
		memcpy(sorted, j->hist.ns, n * sizeof(uint64_t));
	pthread_mutex_unlock(&j->stats_mu);
	if (n && sorted) {
		qsort(sorted, n, sizeof(uint64_t), cmp_u64);
		st->fsync_p50_ns = sorted[n / 2];
		st->fsync_p99_ns = sorted[(n * 99) / 100];
		st->fsync_max_ns = sorted[n - 1];
	}
	free(sorted);
}
