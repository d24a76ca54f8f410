/*
 * Opening and closing a store: options, directory, lock file, recovery,
 * janitor start and stop, statistics, fork handling.
 */
#include "store.h"
#include "backup.h"
#include "rcu.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

/* With the call_rcu threads paused (before_fork), every open store's
 * callback locks are taken, so that none is held at fork by a thread the
 * child does not inherit: the child runs the callbacks the parent left
 * pending (liburcu hands them to its own call_rcu thread), and one of them
 * waiting on such a lock would hang every rcu_barrier in the child. */
static void fork_locks(bool lock)
{
	for (size_t i = 0; i < n_open; i++)
		dskvs__tables_fork_lock(&open_stores[i]->t, lock);
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&open_mu);
	dskvs__rcu_before_fork();
	fork_locks(true);
}

static void fork_parent(void)
{
	fork_locks(false);
	dskvs__rcu_after_fork_parent();
	pthread_mutex_unlock(&open_mu);
}

static void fork_child(void)
{
	fork_locks(false);
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

/* Make the directory entry of `path`, just created, durable: fsync its
 * parent (POSIX does not promise that a new directory survives a power
 * loss until its parent is synced). Returns 0 or errno. */
static int sync_parent(const char *path)
{
	char *p = strdup(path), *slash;
	int e = 0;
	if (p == NULL)
		return ENOMEM;
	slash = strrchr(p, '/');
	if (slash == p)
		slash[1] = '\0'; /* "/x": the parent is "/" */
	else if (slash)
		*slash = '\0';
	int fd = open(slash ? p : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || dskvs__io.fsync(fd) != 0)
		e = errno;
	if (fd >= 0)
		close(fd);
	free(p);
	return e;
}

/* mkdir -p, fsyncing the parent of every directory it creates. Returns
 * DSKVS_OK, or DSKVS_EPATH / DSKVS_EIO / DSKVS_ENOMEM with the thread's
 * detail set. */
static int mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path);
	int e = 0, se = 0;
	if (p == NULL)
		return dskvs__fail(DSKVS_ENOMEM, "%s: cannot create", path);
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, mode) == 0) {
			if (se == 0)
				se = sync_parent(p);
		} else if (errno != EEXIST) {
			e = errno;
			break;
		}
		*q = '/';
	}
	if (e == 0) {
		if (mkdir(p, mode) == 0) {
			if (se == 0)
				se = sync_parent(p);
		} else if (errno != EEXIST) {
			e = errno;
		}
	}
	free(p);
	if (e)
		return dskvs__fail(DSKVS_EPATH, "%s: cannot create: %s", path,
		                   strerror(e));
	if (se)
		return dskvs__fail(DSKVS_EIO,
		                   "%s: fsync of a parent directory: %s", path,
		                   strerror(se));
	return DSKVS_OK;
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
		int rc = mkdir_p(path, dmode);
		if (rc != DSKVS_OK)
			return rc;
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
	dskvs__janitor_destroy(&s->j);
	dskvs__queue_destroy(&s->q);
	if (s->lockfd >= 0)
		dskvs__io.close(s->lockfd); /* releases the flock */
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->path);
	free(s->abspath);
	free(s);
}

int dskvs_open(const char *path, const dskvs_options *opts, dskvs **out)
{
	dskvs_options defaults;
	uint64_t seed;
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

	/* 64-aligned: the queue's fields sit on cache lines of their own. */
	size_t sz =
	    (sizeof(*s) + DSKVS_CACHELINE - 1) & ~(size_t)(DSKVS_CACHELINE - 1);
	s = aligned_alloc(DSKVS_CACHELINE, sz);
	if (s == NULL)
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_open");
	memset(s, 0, sizeof(*s));
	s->opts = *opts;
	s->diag = (struct dskvs__diag){ opts->log_fn, opts->log_arg };
	s->dirfd = s->lockfd = -1;
	s->path = strdup(path);
	rc = dskvs__queue_init(&s->q, opts->queue_capacity, &s->diag);
	dskvs__janitor_init(&s->j, &s->t, &s->q, &s->opts, &s->diag, -1,
	                    s->path);
	if (s->path == NULL || rc != DSKVS_OK) {
		free_store(s);
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_open");
	}
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = dskvs__now_ns() ^ (uint64_t)(uintptr_t)s;

	if ((rc = open_dir(s, path)) != DSKVS_OK ||
	    (rc = lock_dir(s)) != DSKVS_OK) {
		free_store(s);
		return rc;
	}
	s->j.dirfd = s->dirfd;
	/* For dskvs_backup's check that a destination is not inside the
	 * store: the path given may be relative, and the process may change
	 * its directory later. */
	s->abspath = realpath(path, NULL);
	if ((rc = dskvs__tables_init(&s->t, seed)) != DSKVS_OK) {
		dskvs__fail(rc, "dskvs_open: tables");
		goto fail_tables;
	}
	if ((rc = dskvs__recover(&s->j, &s->q.seq_base)) != DSKVS_OK)
		goto fail_tables;
	/* The lock file and a new log must survive a power loss. */
	if (dskvs__io.fsync(s->dirfd) != 0) {
		rc = dskvs__fail(DSKVS_EIO, "%s: fsync of the directory: %s",
		                 path, strerror(errno));
		goto fail_tables;
	}
	if ((rc = dskvs__janitor_start(&s->j)) != DSKVS_OK) {
		dskvs__fail(rc, "dskvs_open: starting the janitor");
		goto fail_tables;
	}
	if (s->j.log_major < DSKVS_FORMAT_MAJOR) {
		/* A format-1 log: rewrite it in the current format now, so
		 * that its batches and its end can be proven synced from here
		 * on. If that fails the store works on, appending format 1. */
		int up = dskvs__janitor_compact(&s->j, 1);
		dskvs__diag(&s->diag,
		            up == DSKVS_OK ? DSKVS_LOG_INFO : DSKVS_LOG_WARN,
		            "%s: format-1 log %s", path,
		            up == DSKVS_OK ? "rewritten in format 2"
		                           : "kept: rewriting it failed");
		dskvs__clear_detail();
	}
	if ((rc = track_open(s, true)) != DSKVS_OK) {
		dskvs__janitor_stop(&s->j);
		dskvs__fail(rc, "dskvs_open");
		goto fail_tables;
	}
	*out = s;
	return DSKVS_OK;

fail_tables:
	/* Replay may have retired maps through call_rcu. */
	dskvs__rcu_barrier();
	dskvs__tables_destroy(&s->t);
	free_store(s);
	return rc;
}

int dskvs_close(dskvs *s)
{
	int rc;
	if (s == NULL)
		return DSKVS_OK;
	/* From inside an update callback: refuse, and leave s as it was. */
	if ((rc = dskvs__refuse_in_update(s, "dskvs_close")) != DSKVS_OK)
		return rc;
	DSKVS_CHECK(!dskvs__rcu_ongoing(),
	            "dskvs_close called inside a read-side section");
	track_open(s, false);
	rc = dskvs__janitor_stop(&s->j);
	if (rc != DSKVS_OK)
		dskvs__queue_refuse(&s->q, "close");
	/* Every block and map retired by this store must be freed before the
	 * tables go: wait for the callbacks queued so far. */
	dskvs__rcu_barrier();
	dskvs__tables_destroy(&s->t);
	free_store(s);
	return rc;
}

/* ---- statistics
 * -------------------------------------------------------------- */

int dskvs_stats_get(dskvs *s, dskvs_stats *st)
{
	uint64_t log_live;

	if (s == NULL || st == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_stats_get: NULL argument");
	memset(st, 0, sizeof(*st));
	dskvs__totals(&s->t, &st->collections, &st->entries, &st->live_bytes,
	              &log_live);
	st->log_live_bytes = log_live + DSKVS_FILE_HDR;
	st->queue_capacity = s->q.ring_cap;
	st->seq = dskvs__queue_committed_seq(&s->q);
	st->durable_seq = dskvs_durable_seq(s);
	st->queue_depth = ck_ring_size(&s->q.ring);
	st->pending_bytes =
	    __atomic_load_n(&s->q.pending_bytes, __ATOMIC_RELAXED);
	if (st->seq > st->durable_seq) {
		uint64_t since =
		    __atomic_load_n(&s->q.caught_up_ns, __ATOMIC_RELAXED);
		uint64_t now = dskvs__now_ns();
		st->oldest_pending_ns = now > since ? now - since : 0;
	}
	st->format_major = DSKVS_FORMAT_MAJOR;
	st->format_minor = DSKVS_FORMAT_MINOR;
	dskvs__janitor_stats(&s->j, st);
	dskvs__queue_error(&s->q, &st->last_error, &st->last_errno);
	return DSKVS_OK;
}

/* ---- hot backup ------------------------------------------------------------
 *
 * Why the copy is a consistent cut. A record at ring position p has
 * sequence number seq_base + p + 1, and the janitor writes records to the
 * log in ring order, so the log is a prefix of the ring (past the sealed
 * part of a compacted file, which replays to the state after the records
 * it was built from). A write is in the ring before it returns, and a
 * write that returned before another began has the lower position (both
 * reserve their slot before returning; tickets are handed out in order).
 * So any prefix of the ring is closed under "returned before", and the
 * prefix the janitor hands over at a batch boundary holds everything
 * durable there. Waiting first for the committed sequence number at the
 * call's start to be durable puts every write that returned before the
 * call into it. Replaying a prefix applies each key's records in memory
 * order (DESIGN rule 5), so the copy replays to the store's state at the
 * moment the janitor cut it.
 */
int dskvs_backup(dskvs *s, const char *dest)
{
	struct dskvs__dest d;
	uint64_t size;
	int fd = -1, rc;

	dskvs__clear_detail();
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_backup: NULL store");
	if ((rc = dskvs__refuse_in_update(s, "dskvs_backup")) != DSKVS_OK)
		return rc;
	DSKVS_CHECK(!dskvs__rcu_ongoing(),
	            "dskvs_backup called inside a read-side section");
	mode_t dmode = 0700;
	if (s->opts.file_mode & 0040)
		dmode |= 0050;
	if (s->opts.file_mode & 0004)
		dmode |= 0005;
	/* The store's directory where it is now (its descriptor, through
	 * /proc), else where it was at open: never s->path, which may be
	 * relative to a directory the process has left. */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", s->dirfd);
	char *where = realpath(self, NULL);
	if (where == NULL && s->abspath == NULL)
		return dskvs__fail(DSKVS_EPATH,
		                   "backup: the store's directory %s cannot be "
		                   "found",
		                   s->path);
	rc = dskvs__dest_open(&d, where ? where : s->abspath, dest, dmode);
	free(where);
	if (rc != DSKVS_OK)
		return rc;
	/* Every write that returned before this call is committed: wait for
	 * it to be durable, so the cut below holds it. */
	rc = dskvs__queue_refuse(&s->q, "dskvs_backup");
	if (rc == DSKVS_OK)
		rc = dskvs__queue_wait_seq(
		    &s->q, dskvs__queue_committed_seq(&s->q), -1);
	if (rc == DSKVS_OK)
		rc = dskvs__janitor_cut(&s->j, &fd, &size);
	if (rc == DSKVS_OK)
		rc = dskvs__dest_write(&d, fd, size, s->opts.file_mode);
	if (fd >= 0)
		close(fd);
	if (rc == DSKVS_OK)
		dskvs__dest_done(&d);
	else
		dskvs__dest_abort(&d);
	return rc;
}
