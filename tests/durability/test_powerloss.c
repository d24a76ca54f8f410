/*
 * Simulated power loss at every I/O call of a workload.
 *
 * A forked child runs a fixed, seeded workload through the fsim seam (see
 * fsim.h) and tells the parent, through shared memory, how many operations
 * it started and how many were acknowledged as durable (the write returned
 * in DSKVS_SYNC_ALWAYS mode, or a later dskvs_sync or dskvs_close returned
 * DSKVS_OK). Two workloads ("scenarios"):
 *
 *  fresh     open a new store, writes, an explicit compaction, close;
 *            reopen (its first batch triggers an automatic compaction),
 *            writes, a rewrite, close; reopen in asynchronous mode, writes
 *            with dskvs_sync (batches of several records, some values over
 *            a page), a compaction, close.
 *  recovery  start from a synced store whose log ends in garbage and next
 *            to a leftover compaction temporary, so the open itself
 *            unlinks, truncates and syncs; then writes, close, reopen,
 *            writes, dskvs_sync, close.
 *  concurrent  one writer thread (asynchronous, dskvs_sync every 12 ops,
 *            a 16-record queue) and a thread running six compactions
 *            meanwhile. Its seam calls vary from run to run; every run is
 *            still checked against the single writer's op sequence.
 *
 * A dry run counts the seam calls. Then, for every call N and every crash
 * view, a child runs the workload again and "loses power" just before call
 * N: fsim rebuilds the directory as the view says (durable contents only;
 * with a garbage unsynced tail; with the names of the last directory fsync;
 * with the unsynced tail's pages written back in any order) and the child
 * dies. The parent then opens the directory with the real libc seam (in a
 * leaf process) and checks:
 *   - dskvs_verify does not call it damaged, and dskvs_open succeeds;
 *   - the state is exactly the model after some prefix of the workload's
 *     operations that includes every acknowledged one;
 *   - a second open sees the same state (recovery is idempotent);
 *   - a copy of the crashed log with one byte flipped in a record the log
 *     proves was synced (sealed by a compaction, or followed by a later
 *     batch) is refused with DSKVS_ECORRUPT by verify and open, unchanged.
 * Big values hold images of dskvs records with later batch numbers and
 * larger sequence numbers (dt.c), so the page view, which loses some pages
 * of an unsynced batch, checks that such images are never taken for proof
 * that the batch was synced.
 *
 * Then a directed case of the page view, made deterministic (torn_batch).
 *
 * DSKVS_LONG=1 runs 8 seeds for the views that draw random numbers;
 * DSKVS_POWERLOSS_VIEWS=<mask> runs only some views (debugging).
 */
#include "dt.h"
#include "fsim.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Written by a workload child, read by its parent after it is gone. */
struct shared {
	uint64_t started;          /* operations begun */
	uint64_t acked;            /* operations known durable */
	uint64_t calls;            /* seam calls (dry run) */
	uint64_t batches, records; /* of the last asynchronous phase */
};

/* Totals over all workers. */
struct totals {
	uint64_t points, crashed, finished;
	uint64_t synced_damage; /* damaged copies refused as they must be */
	uint64_t per_view[FSIM_NVIEWS];
};

#define MAX_WORKERS 64
#define MAX_OPS     80

struct scenario {
	const char *name;
	void (*workload)(const char *dir);
	char *template_dir;   /* starting directory; NULL: empty */
	struct dt_state base; /* its state */
	struct dt_op ops[MAX_OPS];
	size_t nops;
	uint64_t calls; /* dry run */
};

static struct scenario fresh_sc, recovery_sc, concurrent_sc;
static struct scenario *sc; /* the one running */
static struct shared *sh;   /* this process's slot */
static struct shared *slots;
static struct totals *tot;
static char *dirs[MAX_WORKERS];
static uint64_t seed;
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

/* ---- the workloads (in the child) ----------------------------------------
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
	for (size_t i = 0; i < n && w->next < sc->nops; i++, w->next++) {
		uint64_t seq;
		const struct dt_op *op = &sc->ops[w->next];
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

static void wl_stats(struct wl *w)
{
	dskvs_stats st;
	DT_RC(dskvs_stats_get(w->s, &st), DSKVS_OK);
	sh->batches = st.batches;
	sh->records = st.records_written;
}

static void wl_close(struct wl *w)
{
	DT_RC(dskvs_close(w->s), DSKVS_OK);
	w->s = NULL;
	sh->acked = w->next;
}

static void fresh_workload(const char *dir)
{
	struct wl w = { .model = sc->base };

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
	wl_stats(&w);
	wl_close(&w);
}

static void recovery_workload(const char *dir)
{
	struct wl w = { .model = sc->base };

	wl_open(&w, dir, DSKVS_SYNC_ALWAYS);
	wl_ops(&w, 6, 0);
	wl_close(&w);
	wl_open(&w, dir, DSKVS_SYNC_ASYNC);
	wl_ops(&w, 6, 2);
	wl_sync(&w);
	wl_ops(&w, 4, 2);
	wl_stats(&w);
	wl_close(&w);
}

/* Compactions racing one writer thread. The queue holds 16 records, so the
 * writer often waits for room while it holds a collection's lock, and the
 * compaction's snapshot must keep draining the queue meanwhile (the records
 * it dequeues go to the old log and are kept for the new one). */
static struct {
	dskvs *s;
	size_t progress; /* atomic: ops the writer has started */
	bool done;       /* atomic */
} conc;

static void *compactor(void *arg)
{
	(void)arg;
	/* Six compactions, spread over the writer's run (or after it). */
	for (size_t k = 1; k <= 6; k++) {
		while (!__atomic_load_n(&conc.done, __ATOMIC_ACQUIRE) &&
		       __atomic_load_n(&conc.progress, __ATOMIC_ACQUIRE) <
		           k * 10)
			sched_yield();
		DT_RC(dskvs_compact(conc.s), DSKVS_OK);
	}
	return NULL;
}

static void concurrent_workload(const char *dir)
{
	struct wl w = { .model = sc->base };
	dskvs_options o;
	pthread_t t;

	dt_options(&o, DSKVS_SYNC_ASYNC);
	o.queue_capacity = 16;
	o.batch_max_records = 4;
	o.auto_compact = 0;
	w.mode = DSKVS_SYNC_ASYNC;
	DT_RC(dskvs_open(dir, &o, &w.s), DSKVS_OK);
	conc.s = w.s;
	conc.done = false;
	conc.progress = 0;
	DT_CHECK(pthread_create(&t, NULL, compactor, NULL) == 0, "thread");
	while (w.next < sc->nops) {
		wl_ops(&w, 1, 3);
		__atomic_store_n(&conc.progress, w.next, __ATOMIC_RELEASE);
		if (w.next % 12 == 0)
			wl_sync(&w);
	}
	__atomic_store_n(&conc.done, true, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	wl_stats(&w);
	wl_close(&w);
}

/* Run the workload in a child; returns its wait status. */
static int run_child(const char *dir, const struct fsim_config *cfg)
{
	memset(sh, 0, sizeof(*sh));
	dt_empty_dir(dir);
	if (sc->template_dir)
		dt_copy_dir(sc->template_dir, dir);
	fflush(NULL);
	pid_t pid = fork();
	DT_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dt_in_child = true;
		fsim_install(dir, cfg);
		sc->workload(dir);
		sh->calls = fsim_calls();
		fsim_uninstall();
		exit(0); /* not _exit: let LeakSanitizer look */
	}
	int status;
	DT_CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s",
	         strerror(errno));
	return status;
}

/* ---- checking an outcome (in a leaf process) ------------------------------
 */

/*
 * Damage to synced data is refused. In the log a crash left (one outcome
 * in four, chosen by `what`), pick (from
 * `what`, deterministically) a record the log proves was synced: one in the
 * part a compaction sealed, or one followed by a record of a later batch
 * with a larger sequence number (format.c). Flip one of its bytes in a
 * copy: verify and open must both say DSKVS_ECORRUPT and leave the file
 * as it was; never a torn tail, never a silent cut.
 */
static uint64_t str_hash(const char *p)
{
	uint64_t h = 1469598103934665603ull;
	while (*p)
		h = (h ^ (unsigned char)*p++) * 1099511628211ull;
	return dt_mix(h);
}

static void check_synced_damage(const char *dir, const unsigned char *log,
                                size_t len, const char *what)
{
	struct dskvs__scan sc;
	struct dskvs__rec r;
	uint64_t off[MAX_OPS * 8], size[MAX_OPS * 8], seq[MAX_OPS * 8];
	uint32_t batch[MAX_OPS * 8];
	size_t n = 0, proven[MAX_OPS * 8], np = 0;

	/* One outcome in four: the check costs two more opens. */
	if (str_hash(what) % 4 != 0)
		return;
	memset(&sc, 0, sizeof(sc));
	dskvs__win_init_mem(&sc.w, log, len);
	if (dskvs__scan_header(&sc, "copy") != DSKVS_OK || sc.major < 2)
		return;
	while (n < MAX_OPS * 8 &&
	       dskvs__scan_next(&sc, &r) == DSKVS__SCAN_REC) {
		off[n] = r.off;
		size[n] = r.size;
		seq[n] = r.seq;
		batch[n++] = r.batch;
	}
	for (size_t i = 0; i < n; i++) {
		bool p = off[i] < sc.sealed;
		for (size_t j = i + 1; j < n && !p; j++)
			p = off[j] >= sc.sealed && batch[j] != batch[i] &&
			    (uint32_t)(batch[j] - batch[i]) < (1u << 31) &&
			    seq[j] > seq[i];
		if (p)
			proven[np++] = i;
	}
	if (np == 0)
		return;
	uint64_t h = str_hash(what);
	size_t i = proven[h % np];
	size_t at = (size_t)(off[i] + (h >> 20) % size[i]);
	char *d2 = dt_fmt("%s.synced-damage", dir);
	char *log2 = dt_fmt("%s/" DSKVS_LOG_NAME, d2);
	mkdir(d2, 0700);
	dt_empty_dir(d2);
	unsigned char *bad = malloc(len);
	DT_CHECK(bad != NULL, "out of memory");
	memcpy(bad, log, len);
	bad[at] ^= 0x10;
	dt_write_file(log2, bad, len);
	dskvs_verify_report rep;
	int vrc = dskvs_verify(d2, NULL, NULL, &rep);
	DT_CHECK(vrc == DSKVS_ECORRUPT,
	         "%s: byte %zu of the synced record at %llu flipped: verify "
	         "says %s",
	         what, at, (unsigned long long)off[i], dskvs_err_name(vrc));
	dskvs *s = NULL;
	int rc = dskvs_open(d2, NULL, &s);
	DT_CHECK(rc == DSKVS_ECORRUPT,
	         "%s: byte %zu of the synced record at %llu flipped: open "
	         "says %s",
	         what, at, (unsigned long long)off[i], dskvs_err_name(rc));
	size_t n2;
	unsigned char *now = dt_read_file(log2, &n2);
	DT_CHECK(now != NULL && n2 == len && memcmp(now, bad, len) == 0,
	         "%s: the refused log was changed", what);
	__atomic_add_fetch(&tot->synced_damage, 1, __ATOMIC_RELAXED);
	free(now);
	free(bad);
	dt_empty_dir(d2);
	rmdir(d2);
	free(log2);
	free(d2);
}

static void check_outcome_here(const char *dir, const char *what)
{
	struct dt_state got, again;
	dskvs_verify_report rep;
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	bool have_log = dt_file_size(log) >= 0;
	size_t crash_len = 0;
	unsigned char *crash_log =
	    have_log ? dt_read_file(log, &crash_len) : NULL;
	free(log);

	int vrc = dskvs_verify(dir, NULL, NULL, &rep);
	DT_CHECK(vrc == DSKVS_OK || (vrc == DSKVS_EPATH && !have_log),
	         "%s: dskvs_verify says %s (%s)", what, dskvs_err_name(vrc),
	         dskvs_errmsg(NULL));
	int rc = dt_open_dump(dir, &got);
	DT_CHECK(rc == DSKVS_OK, "%s: dskvs_open: %s (%s)", what,
	         dskvs_err_name(rc), dskvs_errmsg(NULL));
	long p =
	    dt_match_prefix(&sc->base, sc->ops, sh->acked, sh->started, &got);
	if (p < 0) {
		struct dt_state want = sc->base;
		for (size_t i = 0; i < sh->acked; i++)
			dt_apply(&want, &sc->ops[i]);
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
	if (crash_log)
		check_synced_damage(dir, crash_log, crash_len, what);
	free(crash_log);
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
 * ----------------------------------------------------------
 */

/* Views to run: all, unless DSKVS_POWERLOSS_VIEWS (a bit mask of enum
 * fsim_view) narrows them while debugging. */
static unsigned view_mask = (1u << FSIM_NVIEWS) - 1;

/* The views that draw random numbers gain from more seeds. */
static unsigned seeds_of(int v)
{
	if (!(view_mask & (1u << v)))
		return 0;
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
	char what[128];
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
	         "%s: crash before call %llu, view %s, seed %zu", sc->name,
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

/* Dry run, then every crash point of the scenario. Returns the number of
 * failed workers. */
static unsigned run_scenario(struct scenario *s, unsigned workers)
{
	struct fsim_config cfg = { .real_sync = false };
	char what[64];

	sc = s;
	sh = &slots[0];
	/* The calls of a workload with threads vary from run to run: take
	 * the most of a few dry runs. */
	s->calls = 0;
	for (int i = 0; i < 3; i++) {
		int status = run_child(dirs[0], &cfg);
		DT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		         "%s: dry run failed (status %#x)", s->name, status);
		if (sh->calls > s->calls)
			s->calls = sh->calls;
	}
	DT_CHECK(s->calls > 20, "%s: only %llu seam calls?", s->name,
	         (unsigned long long)s->calls);
	snprintf(what, sizeof(what), "%s: after the dry run", s->name);
	check_outcome(dirs[0], what);
	printf("%s: %zu operations, %llu seam calls; the asynchronous phase "
	       "wrote %llu records in %llu batches\n",
	       s->name, s->nops, (unsigned long long)s->calls,
	       (unsigned long long)sh->records,
	       (unsigned long long)sh->batches);
	fflush(stdout);
	return dt_parallel(s->calls * tasks_per_call(), workers, crash_task,
	                   NULL);
}

/* ---- scenario set-up
 * ------------------------------------------------------------
 */

static void make_ops(struct scenario *s, size_t n, uint32_t first_ver,
                     uint64_t *rng)
{
	for (size_t i = 0; i < n; i++)
		s->ops[i] = dt_op_random(rng, first_ver + (uint32_t)i);
	s->nops = n;
}

static struct dt_op template_ops[24];

static void write_recovery_template(void *arg)
{
	dskvs *s;
	uint64_t seq;
	struct dt_state m = { { 0 } };
	(void)arg;
	DT_RC(dskvs_open(recovery_sc.template_dir, NULL, &s), DSKVS_OK);
	for (size_t i = 0; i < 24; i++) {
		bool changes = dt_apply(&m, &template_ops[i]);
		DT_RC(dt_do(s, &template_ops[i], 4, &seq),
		      changes ? DSKVS_OK : DSKVS_NOTFOUND);
	}
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* A synced store whose log ends in 300 bytes of garbage (a torn append),
 * and a half-written compaction temporary next to it. */
static void make_recovery_template(uint64_t *rng)
{
	struct scenario *s = &recovery_sc;
	s->template_dir = dt_mkdtemp("powerloss-template");
	memset(&s->base, 0, sizeof(s->base));
	for (size_t i = 0; i < 24; i++) {
		template_ops[i] = dt_op_random(rng, 500 + (uint32_t)i);
		dt_apply(&s->base, &template_ops[i]);
	}
	int status = dt_run_forked(write_recovery_template, NULL);
	DT_CHECK(status == 0, "writing the template failed (%#x)", status);
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, s->template_dir);
	char *tmp = dt_fmt("%s/" DSKVS_LOG_TMP, s->template_dir);
	size_t len;
	unsigned char *b = dt_read_file(log, &len);
	DT_CHECK(b != NULL && len > 400, "read %s", log);
	unsigned char *c = realloc(b, len + 300);
	DT_CHECK(c != NULL, "out of memory");
	for (size_t i = 0; i < 300; i++)
		c[len + i] = (unsigned char)dt_rand(rng);
	dt_write_file(log, c, len + 300);
	dt_write_file(tmp, c, len / 2);
	free(c);
	free(log);
	free(tmp);
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
	if (getenv("DSKVS_POWERLOSS_VIEWS"))
		view_mask =
		    (unsigned)strtoul(getenv("DSKVS_POWERLOSS_VIEWS"), NULL, 0);
	DT_CHECK(workers <= MAX_WORKERS, "at most %d workers", MAX_WORKERS);
	slots = mmap(NULL, MAX_WORKERS * sizeof(*slots) + sizeof(*tot),
	             PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	DT_CHECK(slots != MAP_FAILED, "mmap: %s", strerror(errno));
	tot = (struct totals *)(slots + MAX_WORKERS);
	for (unsigned w = 0; w < workers; w++)
		dirs[w] = dt_mkdtemp("powerloss");

	fresh_sc.name = "fresh";
	fresh_sc.workload = fresh_workload;
	make_ops(&fresh_sc, 80, 1, &rng);
	recovery_sc.name = "recovery";
	recovery_sc.workload = recovery_workload;
	make_recovery_template(&rng);
	make_ops(&recovery_sc, 16, 1000, &rng);
	concurrent_sc.name = "concurrent";
	concurrent_sc.workload = concurrent_workload;
	make_ops(&concurrent_sc, 64, 2000, &rng);

	unsigned failed = run_scenario(&fresh_sc, workers);
	failed += run_scenario(&recovery_sc, workers);
	failed += run_scenario(&concurrent_sc, workers);
	uint64_t calls =
	    fresh_sc.calls + recovery_sc.calls + concurrent_sc.calls;
	bool torn_ok = torn_batch();
	printf("crash points: %llu seam calls (fresh %llu, recovery %llu, "
	       "concurrent %llu), %llu outcomes checked (%llu crashed, %llu "
	       "ran to the end with fewer calls); per view:",
	       (unsigned long long)calls, (unsigned long long)fresh_sc.calls,
	       (unsigned long long)recovery_sc.calls,
	       (unsigned long long)concurrent_sc.calls,
	       (unsigned long long)tot->points,
	       (unsigned long long)tot->crashed,
	       (unsigned long long)tot->finished);
	for (int v = 0; v < FSIM_NVIEWS; v++)
		printf(" %s %llu", fsim_view_name((enum fsim_view)v),
		       (unsigned long long)tot->per_view[v]);
	printf("\n");
	printf("synced records damaged in a copy and refused: %llu\n",
	       (unsigned long long)tot->synced_damage);
	DT_CHECK(tot->synced_damage > 0, "no crash left a provably synced "
	                                 "record to damage");
	DT_CHECK(failed == 0, "%u workers failed", failed);
	DT_CHECK(torn_ok, "torn batch case failed");
	DT_CHECK(tot->points == calls * tasks_per_call(),
	         "%llu outcomes checked, %llu expected",
	         (unsigned long long)tot->points,
	         (unsigned long long)(calls * tasks_per_call()));
	for (unsigned w = 0; w < workers; w++) {
		dt_rmtree(dirs[w]);
		free(dirs[w]);
	}
	dt_rmtree(recovery_sc.template_dir);
	free(recovery_sc.template_dir);
	munmap(slots, MAX_WORKERS * sizeof(*slots) + sizeof(*tot));
	return 0;
}
