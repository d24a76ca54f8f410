/*
 * Simulated power loss at every I/O call of a workload.
 *
 * A forked child runs a fixed, seeded workload through the fsim seam (see
 * fsim.h): open a fresh store, writes, an explicit compaction, close,
 * reopen (whose first batch triggers an automatic compaction), writes, a
 * rewrite, close, reopen in asynchronous mode, writes with dskvs_sync, a
 * compaction, close. It tells the parent, through shared memory, how many
 * operations it started and how many were acknowledged as durable (the
 * write returned in DSKVS_SYNC_ALWAYS mode, or a later dskvs_sync or
 * dskvs_close returned DSKVS_OK).
 *
 * A dry run counts the seam calls. Then, for every call N and every crash
 * view, a child runs the workload again and "loses power" just before call
 * N: fsim rebuilds the directory as the view says (durable contents only;
 * with a garbage unsynced tail; with the names of the last directory fsync;
 * with the unsynced tail's pages written back in any order) and the child
 * dies. The parent then opens the directory with the real libc seam and
 * checks:
 *   - dskvs_verify does not call it damaged, and dskvs_open succeeds;
 *   - the state is exactly the model after some prefix of the workload's
 *     operations that includes every acknowledged one;
 *   - a second open sees the same state (recovery is idempotent).
 *
 * DSKVS_LONG=1 runs several seeds for the views that use randomness.
 */
#include "dt.h"
#include "fsim.h"
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOPS 80

/* Written by a workload child, read by its parent after it is gone. */
struct shared {
	uint64_t started;          /* operations begun */
	uint64_t acked;            /* operations known durable */
	uint64_t calls;            /* seam calls (dry run) */
	uint64_t batches, records; /* of the last phase */
};

/* Totals over all workers. */
struct totals {
	uint64_t points, crashed, finished;
	uint64_t per_view[FSIM_NVIEWS];
};

#define MAX_WORKERS 64

static struct dt_op ops[NOPS];
static struct shared *sh; /* this process's slot */
static struct shared *slots;
static struct totals *tot;
static char *dirs[MAX_WORKERS];
static uint64_t seed, total;
static unsigned seeds;

/* The parent's checks need no durability: skip the syncs, they cost
 * milliseconds each. */
static int no_sync(int fd)
{
	(void)fd;
	return 0;
}

static void use_fast_libc(void)
{
	dskvs__io = dskvs__io_libc;
	dskvs__io.fdatasync = no_sync;
	dskvs__io.fsync = no_sync;
}

/* ---- the workload (in the child) ----------------------------------------
 */

struct wl {
	dskvs *s;
	struct dt_state model;
	size_t next; /* next op */
	int mode;
};

static void wl_open(struct wl *w, const char *dir, int mode)
{
	dskvs_options o;
	dt_options(&o, mode);
	/* The first batch after an open checks whether to compact; with a
	 * small minimum it does once garbage dominates. */
	o.compact_min_bytes = 2048;
	o.compact_garbage_pct = 50;
	w->mode = mode;
	DT_RC(dskvs_open(dir, &o, &w->s), DSKVS_OK);
}

static void wl_ops(struct wl *w, size_t n, unsigned big_one_in)
{
	for (size_t i = 0; i < n && w->next < NOPS; i++, w->next++) {
		uint64_t seq;
		const struct dt_op *op = &ops[w->next];
		bool changes = dt_apply(&w->model, op);
		sh->started = w->next + 1;
		int rc = dt_do(w->s, op, big_one_in, &seq);
		DT_CHECK(rc == (changes ? DSKVS_OK : DSKVS_NOTFOUND),
		         "op %zu: %s", w->next, dskvs_err_name(rc));
		if (w->mode == DSKVS_SYNC_ALWAYS)
			sh->acked = w->next + 1;
	}
}

static void wl_sync(struct wl *w)
{
	DT_RC(dskvs_sync(w->s), DSKVS_OK);
	sh->acked = w->next;
}

static void wl_close(struct wl *w)
{
	DT_RC(dskvs_close(w->s), DSKVS_OK);
	w->s = NULL;
	sh->acked = w->next;
}

static void workload(const char *dir)
{
	struct wl w = { .next = 0 };

	wl_open(&w, dir, DSKVS_SYNC_ALWAYS);
	wl_ops(&w, 24, 0);
	DT_RC(dskvs_compact(w.s), DSKVS_OK);
	wl_ops(&w, 12, 0);
	wl_close(&w);

	wl_open(&w, dir, DSKVS_SYNC_ALWAYS);
	wl_ops(&w, 12, 0);
	DT_RC(dskvs_rewrite(w.s), DSKVS_OK);
	wl_ops(&w, 8, 0);
	wl_close(&w);

	/* Asynchronous writes form batches of several records, and big
	 * values make their unsynced tails span pages. */
	wl_open(&w, dir, DSKVS_SYNC_ASYNC);
	wl_ops(&w, 12, 2);
	wl_sync(&w);
	wl_ops(&w, 4, 2);
	DT_RC(dskvs_compact(w.s), DSKVS_OK);
	wl_ops(&w, 8, 2);
	{
		dskvs_stats st;
		DT_RC(dskvs_stats_get(w.s, &st), DSKVS_OK);
		sh->batches = st.batches;
		sh->records = st.records_written;
	}
	wl_close(&w);
}

/* Run the workload in a child; returns its wait status. */
static int run_child(const char *dir, const struct fsim_config *cfg)
{
	memset(sh, 0, sizeof(*sh));
	dt_empty_dir(dir);
	fflush(NULL);
	pid_t pid = fork();
	DT_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dt_in_child = true;
		fsim_install(dir, cfg);
		workload(dir);
		sh->calls = fsim_calls();
		fsim_uninstall();
		exit(0); /* not _exit: let LeakSanitizer look */
	}
	int status;
	DT_CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s",
	         strerror(errno));
	return status;
}

/* ---- checking an outcome (in the parent) ----------------------------------
 */

static void check_outcome_here(const char *dir, const char *what)
{
	struct dt_state empty = { { 0 } }, got, again;
	dskvs_verify_report rep;
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	bool have_log = dt_file_size(log) >= 0;
	free(log);

	int vrc = dskvs_verify(dir, NULL, NULL, &rep);
	DT_CHECK(vrc == DSKVS_OK || (vrc == DSKVS_EPATH && !have_log),
	         "%s: dskvs_verify says %s (%s)", what, dskvs_err_name(vrc),
	         dskvs_errmsg(NULL));
	int rc = dt_open_dump(dir, &got);
	DT_CHECK(rc == DSKVS_OK, "%s: dskvs_open: %s (%s)", what,
	         dskvs_err_name(rc), dskvs_errmsg(NULL));
	long p = dt_match_prefix(&empty, ops, sh->acked, sh->started, &got);
	if (p < 0) {
		struct dt_state want = empty;
		for (size_t i = 0; i < sh->acked; i++)
			dt_apply(&want, &ops[i]);
		dt_fail(__FILE__, __LINE__,
		        "%s: recovered state is not the state after any "
		        "prefix of %llu..%llu operations (acknowledged %llu); "
		        "against the acknowledged prefix: %s",
		        what, (unsigned long long)sh->acked,
		        (unsigned long long)sh->started,
		        (unsigned long long)sh->acked,
		        dt_state_diff(&want, &got));
	}
	rc = dt_open_dump(dir, &again);
	DT_CHECK(rc == DSKVS_OK, "%s: second open: %s", what,
	         dskvs_err_name(rc));
	DT_CHECK(dt_state_eq(&got, &again), "%s: second open differs: %s", what,
	         dt_state_diff(&got, &again));
}

struct outcome {
	const char *dir, *what;
};

static void check_outcome_fn(void *arg)
{
	struct outcome *o = arg;
	use_fast_libc();
	check_outcome_here(o->dir, o->what);
}

/* In a leaf process: see dt_run_forked. */
static void check_outcome(const char *dir, const char *what)
{
	struct outcome o = { dir, what };
	int status = dt_run_forked(check_outcome_fn, &o);
	DT_CHECK(status == 0, "%s: check failed (status %#x)", what, status);
}

/* ---- the crash points
 * ---------------------------------------------------------
 */

/* The views that draw random numbers gain from more seeds. */
static unsigned seeds_of(int v)
{
	return v == FSIM_GARBAGE_TAIL || v == FSIM_PAGES ? seeds : 1;
}

static size_t tasks_per_call(void)
{
	size_t n = 0;
	for (int v = 0; v < FSIM_NVIEWS; v++)
		n += seeds_of(v);
	return n;
}

/* Task t: crash before call t / tasks_per_call() + 1, in the view and seed
 * that t % tasks_per_call() picks. */
static void crash_task(size_t t, unsigned worker, void *arg)
{
	struct fsim_config cfg = { .real_sync = false };
	size_t k = t % tasks_per_call();
	int v = 0;
	char what[96];
	(void)arg;

	while (k >= seeds_of(v))
		k -= seeds_of(v++);
	sh = &slots[worker];
	cfg.crash_at = t / tasks_per_call() + 1;
	cfg.crash_view = (enum fsim_view)v;
	cfg.crash_seed =
	    dt_mix(seed ^ (cfg.crash_at << 8) ^ ((uint64_t)v << 4) ^ k);
	int status = run_child(dirs[worker], &cfg);
	snprintf(what, sizeof(what),
	         "crash before call %llu, view %s, seed %zu",
	         (unsigned long long)cfg.crash_at,
	         fsim_view_name((enum fsim_view)v), k);
	DT_CHECK(WIFEXITED(status) && (WEXITSTATUS(status) == FSIM_CRASH_EXIT ||
	                               WEXITSTATUS(status) == 0),
	         "%s: child failed (status %#x)", what, status);
	check_outcome(dirs[worker], what);
	__atomic_add_fetch(WEXITSTATUS(status) == FSIM_CRASH_EXIT
	                       ? &tot->crashed
	                       : &tot->finished, /* fewer calls this time */
	                   1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&tot->points, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&tot->per_view[v], 1, __ATOMIC_RELAXED);
}

/* ---- a torn batch written back out of order ---------------------------------
 *
 * A directed case of the "pages" view, made deterministic. The janitor
 * writes one batch of two records, A (over a page) then B (small), with one
 * pwritev; the power fails before its fdatasync returns, and the page
 * holding A's start never reached the disk while the later page holding B
 * did (writeback of unsynced pages has no order). Nothing acknowledged was
 * damaged, so the store must open with every synced write; A and B were
 * never acknowledged and may go.
 *
 * To get A and B into one batch, the fdatasync of the batch before them
 * (record Y) is held until both are queued.
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool armed, held, open, crash_next;
	uint64_t durable_len;
	const char *dir;
} G = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static int gate_fdatasync(int fd)
{
	struct stat st;
	pthread_mutex_lock(&G.mu);
	DT_CHECK(fstat(fd, &st) == 0, "fstat");
	if (G.crash_next) {
		/* Power loss: the first unsynced page is lost (zeros), the
		 * pages after it were written back. */
		size_t len = (size_t)st.st_size, from = G.durable_len;
		size_t to = (from / 4096 + 1) * 4096;
		unsigned char *b = malloc(len);
		DT_CHECK(b != NULL && pread(fd, b, len, 0) == (ssize_t)len,
		         "read the log");
		DT_CHECK(len > to + DSKVS_REC_HDR,
		         "batch too small to span pages (%zu..%zu)", from, len);
		memset(b + from, 0, to - from);
		char *p = dt_fmt("%s/" DSKVS_LOG_NAME, G.dir);
		dt_write_file(p, b, len);
		free(p);
		free(b);
		_exit(FSIM_CRASH_EXIT);
	}
	if (G.armed) {
		G.held = true;
		pthread_cond_broadcast(&G.cv);
		while (!G.open)
			pthread_cond_wait(&G.cv, &G.mu);
		G.armed = false;
		G.crash_next = true;
	}
	G.durable_len = (uint64_t)st.st_size;
	pthread_mutex_unlock(&G.mu);
	return 0;
}

static void put_str(dskvs *s, const char *key, char c, size_t len)
{
	char *v = malloc(len);
	DT_CHECK(v != NULL, "out of memory");
	memset(v, c, len);
	DT_RC(dskvs_put(s, key, v, len, NULL, NULL), DSKVS_OK);
	free(v);
}

static void torn_batch_child(const char *dir)
{
	dskvs_options o;
	dskvs *s;

	dskvs__io = dskvs__io_libc;
	dskvs__io.fdatasync = gate_fdatasync;
	dskvs__io.fsync = no_sync;
	G.dir = dir;
	dt_options(&o, DSKVS_SYNC_ASYNC);
	o.auto_compact = 0;
	DT_RC(dskvs_open(dir, &o, &s), DSKVS_OK);
	put_str(s, "t/x", 'x', 100);
	DT_RC(dskvs_sync(s), DSKVS_OK);
	/* Acknowledged: t/x. Now hold the next batch's fdatasync. */
	pthread_mutex_lock(&G.mu);
	G.armed = true;
	pthread_mutex_unlock(&G.mu);
	put_str(s, "t/y", 'y', 100);
	pthread_mutex_lock(&G.mu);
	while (!G.held)
		pthread_cond_wait(&G.cv, &G.mu);
	pthread_mutex_unlock(&G.mu);
	put_str(s, "t/a", 'a', 6000);
	put_str(s, "t/b", 'b', 10);
	pthread_mutex_lock(&G.mu);
	G.open = true;
	pthread_cond_broadcast(&G.cv);
	pthread_mutex_unlock(&G.mu);
	dskvs_sync(s); /* the crash happens in there */
	DT_CHECK(false, "no crash");
}

static bool torn_batch(void)
{
	char *dir = dt_mkdtemp("tornbatch");
	dskvs *s;
	char buf[128];
	size_t len;

	fflush(NULL);
	pid_t pid = fork();
	DT_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dt_in_child = true;
		torn_batch_child(dir);
	}
	int status;
	DT_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	DT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == FSIM_CRASH_EXIT,
	         "torn batch: child failed (status %#x)", status);
	use_fast_libc();
	int rc = dskvs_open(dir, NULL, &s);
	if (rc != DSKVS_OK) {
		fprintf(stderr,
		        "FAILED torn batch: the unsynced batch {t/a 6000 B, "
		        "t/b 10 B} was torn (its first page lost, the next "
		        "written back): dskvs_open says %s (%s); expected "
		        "DSKVS_OK with t/x (synced) and t/y\n",
		        dskvs_err_name(rc), dskvs_errmsg(NULL));
		dskvs__io = dskvs__io_libc;
		return false;
	}
	DT_RC(dskvs_get(s, "t/x", buf, sizeof(buf), &len), DSKVS_OK);
	DT_CHECK(len == 100 && buf[0] == 'x', "t/x damaged");
	DT_RC(dskvs_get(s, "t/y", buf, sizeof(buf), &len), DSKVS_OK);
	DT_RC(dskvs_close(s), DSKVS_OK);
	dskvs__io = dskvs__io_libc;
	dt_rmtree(dir);
	free(dir);
	printf("torn batch written back out of order: ok\n");
	return true;
}

int main(void)
{
	unsigned workers = dt_jobs(8);
	uint64_t rng;

	seed = dt_seed("test_powerloss", 20240601);
	seeds = dt_long() ? 8 : 1;
	rng = seed;
	DT_CHECK(workers <= MAX_WORKERS, "at most %d workers", MAX_WORKERS);
	slots = mmap(NULL, MAX_WORKERS * sizeof(*slots) + sizeof(*tot),
	             PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	DT_CHECK(slots != MAP_FAILED, "mmap: %s", strerror(errno));
	tot = (struct totals *)(slots + MAX_WORKERS);
	for (unsigned w = 0; w < workers; w++)
		dirs[w] = dt_mkdtemp("powerloss");
	for (size_t i = 0; i < NOPS; i++)
		ops[i] = dt_op_random(&rng, (uint32_t)i + 1);

	/* Dry run: the calls to enumerate. */
	struct fsim_config cfg = { .real_sync = false };
	sh = &slots[0];
	int status = run_child(dirs[0], &cfg);
	DT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	         "dry run failed (status %#x)", status);
	total = sh->calls;
	DT_CHECK(total > 50, "only %llu seam calls?",
	         (unsigned long long)total);
	check_outcome(dirs[0], "after the dry run");
	printf("workload: %d operations, %llu seam calls, last phase %llu "
	       "records in %llu batches; %u workers\n",
	       NOPS, (unsigned long long)total, (unsigned long long)sh->records,
	       (unsigned long long)sh->batches, workers);
	fflush(stdout);

	unsigned failed =
	    dt_parallel(total * tasks_per_call(), workers, crash_task, NULL);
	bool torn_ok = torn_batch();
	printf("crash points: %llu seam calls, %llu outcomes checked (%llu "
	       "crashed, %llu ran to the end with fewer calls); per view:",
	       (unsigned long long)total, (unsigned long long)tot->points,
	       (unsigned long long)tot->crashed,
	       (unsigned long long)tot->finished);
	for (int v = 0; v < FSIM_NVIEWS; v++)
		printf(" %s %llu", fsim_view_name((enum fsim_view)v),
		       (unsigned long long)tot->per_view[v]);
	printf("\n");
	DT_CHECK(failed == 0, "%u workers failed", failed);
	DT_CHECK(torn_ok, "torn batch case failed");
	DT_CHECK(tot->points == total * tasks_per_call(),
	         "%llu outcomes checked, %llu expected",
	         (unsigned long long)tot->points,
	         (unsigned long long)(total * tasks_per_call()));
	for (unsigned w = 0; w < workers; w++) {
		dt_rmtree(dirs[w]);
		free(dirs[w]);
	}
	munmap(slots, MAX_WORKERS * sizeof(*slots) + sizeof(*tot));
	return 0;
}
