/*
 * Opening and closing a store: options, directory, lock file, recovery,
 * janitor start and stop, statistics, fork handling.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

void dskvs_options_init(dskvs_options *o)
{
	if (o == NULL)
		return;
	memset(o, 0, sizeof(*o));
	o->sync_mode = DSKVS_SYNC_ASYNC;
	/* 65536 records: enough to absorb a few milliseconds of writes
	 * from many threads while an fdatasync is in flight; 512 KiB of
	 * pointers. */
	o->queue_capacity = 65536;
	o->file_mode = 0600;
	o->batch_max_records = 16384;
	o->batch_max_bytes = 8u << 20;
	o->auto_compact = 1;
	o->compact_min_bytes = 64u << 20;
	o->compact_garbage_pct = 50;
	o->create = 1;
}

unsigned int dskvs_version(void)
{
	return DSKVS_VERSION_HEX;
}

const char *dskvs_version_string(void)
{
	return DSKVS_VERSION_STRING;
}

/* ---- fork handling --------------------------------------------------------
 * The call_rcu worker threads do not survive fork(); liburcu asks the
 * application to bracket fork() with its before/after calls so a child can
 * use RCU. Callers never call RCU functions, so dskvs installs the handlers.
 * The child also drops its copies of every open store's lock descriptor: a
 * flock belongs to the open file description, so the parent keeps its lock,
 * but a long-lived child would otherwise keep the directory locked after the
 * parent closes it. The child must not use a store the parent opened.
 */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static dskvs **open_stores; /* under open_mu */
static size_t n_open, cap_open;
static pthread_once_t rcu_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
	pthread_mutex_lock(&open_mu);
	dskvs__rcu_before_fork();
}

static void fork_parent(void)
{
	dskvs__rcu_after_fork_parent();
	pthread_mutex_unlock(&open_mu);
}

static void fork_child(void)
{
	dskvs__rcu_after_fork_child();
	for (size_t i = 0; i < n_open; i++) {
		if (open_stores[i]->lockfd >= 0) {
			close(open_stores[i]->lockfd);
			open_stores[i]->lockfd = -1;
		}
	}
	pthread_mutex_unlock(&open_mu);
}

static void rcu_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void dskvs__rcu_init_once(void)
{
	pthread_once(&rcu_once, rcu_init);
}

#if defined(DSKVS_URCU_MEMB)
__thread bool dskvs__rcu_registered;
static pthread_key_t rcu_key;
static pthread_once_t rcu_key_once = PTHREAD_ONCE_INIT;

static void rcu_thread_exit(void *arg)
{
	(void)arg;
	urcu_memb_unregister_thread();
}

static void rcu_key_init(void)
{
	pthread_key_create(&rcu_key, rcu_thread_exit);
}

void dskvs__rcu_register_slow(void)
{
	pthread_once(&rcu_key_once, rcu_key_init);
	urcu_memb_register_thread();
	pthread_setspecific(rcu_key, (void *)1);
	dskvs__rcu_registered = true;
}
#endif

static int track_open(dskvs *s, bool add)
{
	int rc = DSKVS_OK;
	pthread_mutex_lock(&open_mu);
	if (add) {
		if (n_open == cap_open) {
			size_t cap = cap_open ? cap_open * 2 : 8;
			dskvs **p = realloc(open_stores, cap * sizeof(*p));
			if (p == NULL)
				rc = DSKVS_ENOMEM;
			else {
				open_stores = p;
				cap_open = cap;
			}
		}
		if (rc == DSKVS_OK)
			open_stores[n_open++] = s;
	} else {
		for (size_t i = 0; i < n_open; i++)
			if (open_stores[i] == s) {
				open_stores[i] = open_stores[--n_open];
				break;
			}
		if (n_open == 0) {
			free(open_stores);
			open_stores = NULL;
			cap_open = 0;
		}
	}
	pthread_mutex_unlock(&open_mu);
	return rc;
}

/* ---- open ------------------------------------------------------------------
 */

static int check_options(const dskvs_options *o)
{
	if (o->sync_mode != DSKVS_SYNC_ASYNC &&
	    o->sync_mode != DSKVS_SYNC_ALWAYS)
		return dskvs__fail(DSKVS_EINVAL, "sync_mode must be "
		                                 "DSKVS_SYNC_ASYNC or "
		                                 "DSKVS_SYNC_ALWAYS");
	if (o->queue_capacity < 16 || o->queue_capacity > (1u << 24))
		return dskvs__fail(DSKVS_EINVAL,
		                   "queue_capacity must be 16 .. 2^24");
	if (o->batch_max_records < 1 || o->batch_max_records > (1u << 24))
		return dskvs__fail(DSKVS_EINVAL,
		                   "batch_max_records must be 1 .. 2^24");
	if (o->batch_max_bytes < 4096)
		return dskvs__fail(DSKVS_EINVAL,
		                   "batch_max_bytes must be at least 4096");
	if (o->compact_garbage_pct < 1 || o->compact_garbage_pct > 99)
		return dskvs__fail(DSKVS_EINVAL,
		                   "compact_garbage_pct must be 1 .. 99");
	if (o->file_mode & ~07777u)
		return dskvs__fail(DSKVS_EINVAL, "file_mode has bits beyond "
		                                 "07777");
	return DSKVS_OK;
}

/* mkdir -p. Returns 0 or errno. */
static int mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path);
	int rc = 0;
	if (p == NULL)
		return ENOMEM;
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST) {
			rc = errno;
			break;
		}
		*q = '/';
	}
	if (rc == 0 && mkdir(p, mode) != 0 && errno != EEXIST)
		rc = errno;
	free(p);
	return rc;
}

static int open_dir(dskvs *s, const char *path)
{
	mode_t dmode = 0700;
	if (s->opts.file_mode & 0040)
		dmode |= 0050;
	if (s->opts.file_mode & 0004)
		dmode |= 0005;
	s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0 && errno == ENOENT && s->opts.create) {
		int e = mkdir_p(path, dmode);
		if (e != 0)
			return dskvs__fail(DSKVS_EPATH, "%s: cannot create: %s",
			                   path, strerror(e));
		s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (s->dirfd < 0)
		return dskvs__fail(DSKVS_EPATH, "%s: %s", path,
		                   errno == ENOTDIR ? "not a directory"
		                                    : strerror(errno));
	return DSKVS_OK;
}

static int lock_dir(dskvs *s)
{
	s->lockfd = dskvs__io.openat(s->dirfd, DSKVS_LOCK_NAME,
	                             O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	                             (mode_t)s->opts.file_mode);
	if (s->lockfd < 0)
		return dskvs__fail(DSKVS_EPATH, "%s/" DSKVS_LOCK_NAME ": %s",
		                   s->path, strerror(errno));
	if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e == EWOULDBLOCK)
			return dskvs__fail(DSKVS_EBUSY,
			                   "%s: store is in use (locked by "
			                   "another handle or process)",
			                   s->path);
		return dskvs__fail(DSKVS_EIO,
		                   "%s/" DSKVS_LOCK_NAME ": flock: %s", s->path,
		                   strerror(e));
	}
	return DSKVS_OK;
}

static void free_store(dskvs *s)
{
	if (s->logfd >= 0)
		dskvs__io.close(s->logfd);
	if (s->efd >= 0)
		close(s->efd);
	if (s->lockfd >= 0)
		dskvs__io.close(s->lockfd); /* releases the flock */
	if (s->dirfd >= 0)
		close(s->dirfd);
	pthread_mutex_destroy(&s->jmu);
	pthread_mutex_destroy(&s->stats_mu);
	pthread_cond_destroy(&s->jcv);
	pthread_cond_destroy(&s->space_cv);
	pthread_cond_destroy(&s->durable_cv);
	free(s->ring_buf);
	free(s->batch);
	free(s->scratch);
	free(s->iov);
	free(s->path);
	free(s);
}

int dskvs_open(const char *path, const dskvs_options *opts, dskvs **out)
{
	dskvs_options defaults;
	pthread_condattr_t ca;
	dskvs *s;
	int rc;

	dskvs__clear_detail();
	if (out == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_open: out is NULL");
	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return dskvs__fail(DSKVS_EINVAL, "dskvs_open: empty path");
	if (opts == NULL) {
		dskvs_options_init(&defaults);
		opts = &defaults;
	}
	if ((rc = check_options(opts)) != DSKVS_OK)
		return rc;
	dskvs__rcu_init_once();

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_open");
	s->opts = *opts;
	s->dirfd = s->lockfd = s->logfd = s->efd = -1;
	pthread_mutex_init(&s->jmu, NULL);
	pthread_mutex_init(&s->stats_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->jcv, &ca);
	pthread_cond_init(&s->space_cv, &ca);
	pthread_cond_init(&s->durable_cv, &ca);
	pthread_condattr_destroy(&ca);
	s->ring_cap = 16;
	while (s->ring_cap < opts->queue_capacity)
		s->ring_cap <<= 1;
	s->path = strdup(path);
	s->ring_buf = aligned_alloc(64, s->ring_cap * sizeof(*s->ring_buf));
	if (s->path == NULL || s->ring_buf == NULL) {
		free_store(s);
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_open");
	}
	ck_ring_init(&s->ring, s->ring_cap);
	if (getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) !=
	    sizeof(s->seed))
		s->seed = dskvs__now_ns() ^ (uint64_t)(uintptr_t)s;

	if ((rc = open_dir(s, path)) != DSKVS_OK ||
	    (rc = lock_dir(s)) != DSKVS_OK) {
		free_store(s);
		return rc;
	}
	if ((rc = dskvs__tables_init(s)) != DSKVS_OK) {
		dskvs__fail(rc, "dskvs_open: tables");
		goto fail_tables;
	}
	if ((rc = dskvs__log_recover(s)) != DSKVS_OK)
		goto fail_tables;
	/* The lock file and a new log must survive a power loss. */
	if (dskvs__io.fsync(s->dirfd) != 0) {
		rc = dskvs__fail(DSKVS_EIO, "%s: fsync of the directory: %s",
		                 path, strerror(errno));
		goto fail_tables;
	}
	if ((rc = dskvs__janitor_start(s)) != DSKVS_OK) {
		dskvs__fail(rc, "dskvs_open: starting the janitor");
		goto fail_tables;
	}
	if (s->log_major < DSKVS_FORMAT_MAJOR) {
		/* A format-1 log: rewrite it in the current format now, so
		 * that its batches and its end can be proven synced from here
		 * on. If that fails the store works on, appending format 1. */
		int up = dskvs__request_compact(s, 1);
		dskvs__log(s, up == DSKVS_OK ? DSKVS_LOG_INFO : DSKVS_LOG_WARN,
		           "%s: format-1 log %s", path,
		           up == DSKVS_OK ? "rewritten in format 2"
		                          : "kept: rewriting it failed");
		dskvs__clear_detail();
	}
	if ((rc = track_open(s, true)) != DSKVS_OK) {
		dskvs__janitor_stop(s);
		dskvs__fail(rc, "dskvs_open");
		goto fail_tables;
	}
	*out = s;
	return DSKVS_OK;

fail_tables:
	/* Replay may have retired maps through call_rcu. */
	dskvs__rcu_barrier();
	dskvs__tables_destroy(s);
	free_store(s);
	return rc;
}

int dskvs_close(dskvs *s)
{
	int rc;
	if (s == NULL)
		return DSKVS_OK;
	DSKVS_CHECK(!dskvs__rcu_ongoing(),
	            "dskvs_close called inside a read-side section");
	track_open(s, false);
	rc = dskvs__janitor_stop(s);
	if (rc != DSKVS_OK) {
		pthread_mutex_lock(&s->jmu);
		dskvs__fail(rc, "%s", s->err_detail);
		pthread_mutex_unlock(&s->jmu);
	}
	/* Every block and map retired by this store must be freed before the
	 * tables go: wait for the callbacks queued so far. */
	dskvs__rcu_barrier();
	dskvs__tables_destroy(s);
	free_store(s);
	return rc;
}

/* ---- statistics
 * -------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int dskvs_stats_get(dskvs *s, dskvs_stats *st)
{
	static uint64_t sorted[1024];
	static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;
	uint64_t log_live;

	if (s == NULL || st == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_stats_get: NULL argument");
	memset(st, 0, sizeof(*st));
	dskvs__totals(s, &st->collections, &st->entries, &st->live_bytes,
	              &log_live);
	st->log_live_bytes = log_live + DSKVS_FILE_HDR;
	st->queue_capacity = s->ring_cap;
	st->seq = dskvs__committed_seq(s);
	st->durable_seq = dskvs_durable_seq(s);
	st->queue_depth = ck_ring_size(&s->ring);
	st->pending_bytes =
	    __atomic_load_n(&s->pending_bytes, __ATOMIC_RELAXED);
	if (st->seq > st->durable_seq) {
		uint64_t since =
		    __atomic_load_n(&s->st_caught_up_ns, __ATOMIC_RELAXED);
		uint64_t now = dskvs__now_ns();
		st->oldest_pending_ns = now > since ? now - since : 0;
	}
	st->format_major = DSKVS_FORMAT_MAJOR;
	st->format_minor = DSKVS_FORMAT_MINOR;

	pthread_mutex_lock(&s->stats_mu);
	st->log_bytes = __atomic_load_n(&s->log_size, __ATOMIC_RELAXED);
	st->batches = s->st_batches;
	st->records_written = s->st_records;
	st->bytes_written = s->st_bytes;
	st->last_batch_records = s->st_last_batch_records;
	st->last_batch_bytes = s->st_last_batch_bytes;
	st->compactions = s->st_compactions;
	st->last_compaction_unix = s->st_last_compaction_unix;
	size_t n = s->hist.n < 1024 ? (size_t)s->hist.n : 1024;
	if (n) {
		st->fsync_last_ns = s->hist.ns[(s->hist.n - 1) % 1024];
		pthread_mutex_lock(&sort_mu);
		memcpy(sorted, s->hist.ns, n * sizeof(uint64_t));
		pthread_mutex_unlock(&s->stats_mu);
		qsort(sorted, n, sizeof(uint64_t), cmp_u64);
		st->fsync_p50_ns = sorted[n / 2];
		st->fsync_p99_ns = sorted[(n * 99) / 100];
		st->fsync_max_ns = sorted[n - 1];
		pthread_mutex_unlock(&sort_mu);
	} else {
		pthread_mutex_unlock(&s->stats_mu);
	}

	pthread_mutex_lock(&s->jmu);
	st->last_error = s->err;
	st->last_errno = s->err_errno;
	pthread_mutex_unlock(&s->jmu);
	return DSKVS_OK;
}
