/*
 * I/O error sweep: make the Nth openat, pwritev, fdatasync, renameat,
 * ftruncate or directory fsync fail, for every N the workload reaches,
 * with EIO or ENOSPC (pwritev also: a short write, and a short write then
 * ENOSPC), once or for good.
 *
 * Each case runs in a forked child (so a crash is one failed case, and
 * LeakSanitizer checks each case on its own) through the fsim seam, which
 * also keeps what a power loss would leave. The store starts from a small
 * synced store whose log ends in a torn tail, so opening it truncates and
 * syncs (ftruncate and fdatasync at open). The workload then writes with
 * dskvs_sync every few operations and two compactions, and closes.
 *
 * Checked in every case:
 *  - a failed dskvs_open says DSKVS_EIO or DSKVS_EPATH;
 *  - once a write or dskvs_sync has said DSKVS_EIO, the error is sticky:
 *    dskvs_sync, every later write and dskvs_close say DSKVS_EIO, nothing
 *    refused is applied, and reads still give the state of the writes that
 *    were accepted; stats report last_error;
 *  - a failed dskvs_compact either leaves the store working or sticky;
 *  - in half of the cases the workload calls dskvs_rewrite after the
 *    error: when it succeeds the store takes writes again;
 *  - afterwards (libc seam) the directory, its durable-contents view and
 *    its durable-names view (fsim) all open, and each holds exactly the
 *    state after a prefix of the accepted writes that includes every
 *    write acknowledged as durable (by dskvs_sync, dskvs_rewrite or
 *    dskvs_close returning DSKVS_OK): nothing acknowledged was only in the
 *    page cache.
 *
 * Then the held-out scenario: an fdatasync fails, then the disk is full.
 */
#include "dt.h"
#include "fsim.h"
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NBASE      16
#define NOPS       40
#define MAX_TASKS  4096
#define MAX_WORKER 64

static struct dt_op base_ops[NBASE], ops[NOPS];
static struct dt_state base; /* the template store's state */
static char *template_dir;
static char *dirs[MAX_WORKER];

struct task {
	enum fsim_kind kind;
	uint64_t n;
	enum fsim_fault fault;
	bool persistent;
};

static struct task tasks[MAX_TASKS];
static size_t ntasks;

/* Filled by cases (shared memory), summed by the parent. */
struct totals {
	uint64_t cases, fired, open_failed, sticky, rewrites_ok, compact_failed;
	uint64_t per_kind[FSIM_NKINDS];
	uint64_t calls[FSIM_NKINDS]; /* dry run */
};
static struct totals *tot;

static int no_sync(int fd)
{
	(void)fd;
	return 0;
}

/* The checks after a case need no durability. */
static void use_fast_libc(void)
{
	dskvs__io = dskvs__io_libc;
	dskvs__io.fdatasync = no_sync;
	dskvs__io.fsync = no_sync;
}

static void describe(const struct task *t, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s #%llu fails with %s%s", fsim_kind_name(t->kind),
	         (unsigned long long)t->n, fsim_fault_name(t->fault),
	         t->persistent ? ", persistently" : ", once");
}

/* The state of dir must be base + applied[0..p) for p in [synced, n]. */
static void check_dir(const char *dir, const struct dt_op *applied, size_t n,
                      size_t synced, const char *what)
{
	struct dt_state got;
	int vrc = dskvs_verify(dir, NULL, NULL, NULL);
	DT_CHECK(vrc == DSKVS_OK, "%s: dskvs_verify(%s): %s (%s)", what, dir,
	         dskvs_err_name(vrc), dskvs_errmsg(NULL));
	int rc = dt_open_dump(dir, &got);
	DT_CHECK(rc == DSKVS_OK, "%s: dskvs_open(%s): %s (%s)", what, dir,
	         dskvs_err_name(rc), dskvs_errmsg(NULL));
	if (dt_match_prefix(&base, applied, synced, n, &got) < 0) {
		struct dt_state want = base;
		for (size_t i = 0; i < synced; i++)
			dt_apply(&want, &applied[i]);
		dt_fail(
		    __FILE__, __LINE__,
		    "%s: %s holds no prefix of the %zu accepted writes that "
		    "includes the %zu acknowledged ones: %s",
		    what, dir, n, synced, dt_state_diff(&want, &got));
	}
}

/* ---- one case, in a forked child -------------------------------------------
 */

struct run {
	dskvs *s;
	struct dt_state mem; /* what reads must show */
	struct dt_op applied[NOPS];
	size_t n, synced;
	bool sticky, rewrite_after_error, rewritten;
	const char *what;
};

static void expect_sticky(struct run *r)
{
	struct dt_state got;
	struct dt_op probe = { .kind = DT_PUT, .key = 0, .ver = 999999 };
	uint64_t seq;
	dskvs_stats st;

	DT_RC(dskvs_stats_get(r->s, &st), DSKVS_OK);
	DT_CHECK(st.last_error == DSKVS_EIO, "%s: last_error %s", r->what,
	         dskvs_err_name(st.last_error));
	DT_CHECK(st.last_errno != 0, "%s: last_errno 0", r->what);
	DT_RC(dskvs_sync(r->s), DSKVS_EIO);
	DT_RC(dt_do(r->s, &probe, 0, &seq), DSKVS_EIO);
	const char *err = dt_dump(r->s, &got);
	DT_CHECK(err == NULL, "%s: reads after the error: %s", r->what, err);
	DT_CHECK(dt_state_eq(&r->mem, &got), "%s: reads after the error: %s",
	         r->what, dt_state_diff(&r->mem, &got));
}

/* The store just answered DSKVS_EIO to a write or a sync. */
static void went_sticky(struct run *r)
{
	r->sticky = true;
	expect_sticky(r);
	__atomic_add_fetch(&tot->sticky, 1, __ATOMIC_RELAXED);
	if (!r->rewrite_after_error)
		return;
	int rc = dskvs_rewrite(r->s);
	DT_CHECK(rc == DSKVS_OK || rc == DSKVS_EIO, "%s: dskvs_rewrite: %s",
	         r->what, dskvs_err_name(rc));
	if (rc == DSKVS_OK) {
		/* The whole live set is on disk again. */
		r->sticky = false;
		r->synced = r->n;
		r->rewritten = true;
		__atomic_add_fetch(&tot->rewrites_ok, 1, __ATOMIC_RELAXED);
	} else {
		expect_sticky(r);
	}
}

static void run_ops(struct run *r)
{
	for (size_t i = 0; i < NOPS; i++) {
		struct dt_state next = r->mem;
		bool changes = dt_apply(&next, &ops[i]);
		uint64_t seq;
		int rc = dt_do(r->s, &ops[i], 8, &seq);
		if (r->sticky) {
			DT_CHECK(rc == DSKVS_EIO,
			         "%s: op %zu after the error: %s", r->what, i,
			         dskvs_err_name(rc));
		} else if (rc == DSKVS_EIO) {
			/* Refused: nothing changed. */
			went_sticky(r);
		} else {
			DT_CHECK(rc == (changes ? DSKVS_OK : DSKVS_NOTFOUND),
			         "%s: op %zu: %s", r->what, i,
			         dskvs_err_name(rc));
			if (changes)
				r->applied[r->n++] = ops[i];
			r->mem = next;
		}
		if (i % 4 == 3) {
			rc = dskvs_sync(r->s);
			if (r->sticky)
				DT_CHECK(rc == DSKVS_EIO, "%s: sync: %s",
				         r->what, dskvs_err_name(rc));
			else if (rc == DSKVS_OK)
				r->synced = r->n;
			else if (rc == DSKVS_EIO)
				went_sticky(r);
			else
				DT_CHECK(false, "%s: sync: %s", r->what,
				         dskvs_err_name(rc));
		}
		if (i == 13 || i == 29) {
			rc = dskvs_compact(r->s);
			DT_CHECK(rc == DSKVS_OK || rc == DSKVS_EIO,
			         "%s: compact: %s", r->what,
			         dskvs_err_name(rc));
			if (rc == DSKVS_EIO) {
				dskvs_stats st;
				__atomic_add_fetch(&tot->compact_failed, 1,
				                   __ATOMIC_RELAXED);
				DT_RC(dskvs_stats_get(r->s, &st), DSKVS_OK);
				if (st.last_error != 0 && !r->sticky)
					went_sticky(r);
			}
		}
	}
}

static void run_case(const char *dir, const struct task *t, bool dry)
{
	struct fsim_config cfg = { .real_sync = false };
	struct run r = { .mem = base };
	dskvs_options o;
	char what[96];

	describe(t, what, sizeof(what));
	r.what = what;
	r.rewrite_after_error = t->n % 2 == 1;
	if (!dry) {
		cfg.fault_kind = t->kind;
		cfg.fault_n = t->n;
		cfg.fault = t->fault;
		cfg.fault_persistent = t->persistent;
	}
	fsim_install(dir, &cfg);
	dt_options(&o, DSKVS_SYNC_ASYNC);
	o.compact_min_bytes = 4096;
	int rc = dskvs_open(dir, &o, &r.s);
	if (rc != DSKVS_OK) {
		DT_CHECK(rc == DSKVS_EIO || rc == DSKVS_EPATH,
		         "%s: dskvs_open: %s", what, dskvs_err_name(rc));
		DT_CHECK(fsim_faults() > 0, "%s: open failed without a fault",
		         what);
		__atomic_add_fetch(&tot->open_failed, 1, __ATOMIC_RELAXED);
	} else {
		run_ops(&r);
		uint64_t before = fsim_faults();
		rc = dskvs_close(r.s);
		if (r.sticky)
			DT_CHECK(rc == DSKVS_EIO,
			         "%s: close after the error: %s", what,
			         dskvs_err_name(rc));
		else if (rc == DSKVS_OK)
			r.synced = r.n;
		else
			DT_CHECK(rc == DSKVS_EIO && fsim_faults() > before,
			         "%s: close: %s", what, dskvs_err_name(rc));
	}
	if (dry) {
		for (int k = 0; k < FSIM_NKINDS; k++)
			tot->calls[k] = fsim_calls_of((enum fsim_kind)k);
	}
	if (fsim_faults()) {
		__atomic_add_fetch(&tot->fired, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&tot->per_kind[t->kind], 1,
		                   __ATOMIC_RELAXED);
	} else {
		DT_CHECK(!r.sticky, "%s: sticky error without a fault", what);
	}
	char *vd = dt_fmt("%s.durable", dir), *vn = dt_fmt("%s.names", dir);
	fsim_materialize(vd, FSIM_DURABLE, 0);
	fsim_materialize(vn, FSIM_DURABLE_NAMES, 0);
	fsim_uninstall();
	use_fast_libc();
	check_dir(dir, r.applied, r.n, r.synced, what);
	check_dir(vd, r.applied, r.n, r.synced, what);
	check_dir(vn, r.applied, r.n, r.synced, what);
	dskvs__io = dskvs__io_libc;
	dt_rmtree(vd);
	dt_rmtree(vn);
	free(vd);
	free(vn);
}

static void fork_case(const char *dir, const struct task *t, bool dry)
{
	char what[96];
	dt_empty_dir(dir);
	dt_copy_dir(template_dir, dir);
	fflush(NULL);
	pid_t pid = fork();
	DT_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dt_in_child = true;
		run_case(dir, t, dry);
		exit(0); /* not _exit: let LeakSanitizer look */
	}
	int status;
	DT_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	describe(t, what, sizeof(what));
	DT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	         "%s: case failed (status %#x)", what, status);
	__atomic_add_fetch(&tot->cases, 1, __ATOMIC_RELAXED);
}

static void sweep_task(size_t i, unsigned worker, void *arg)
{
	(void)arg;
	fork_case(dirs[worker], &tasks[i], false);
}

/* ---- the held-out scenario -------------------------------------------------
 *
 * An fdatasync fails, then the disk is full (every pwritev: ENOSPC).
 * dskvs_sync, later writes, dskvs_rewrite and dskvs_close say DSKVS_EIO;
 * reads work; a reopen holds every write synced before the fault and none
 * of the refused ones.
 */
static void put_str(dskvs *s, const char *key, const char *val, int want)
{
	DT_RC(dskvs_put(s, key, val, strlen(val), NULL, NULL), want);
}

static void check_str(dskvs *s, const char *key, const char *val)
{
	char buf[64];
	size_t len;
	if (val == NULL) {
		DT_RC(dskvs_get(s, key, buf, sizeof(buf), &len),
		      DSKVS_NOTFOUND);
		return;
	}
	DT_RC(dskvs_get(s, key, buf, sizeof(buf), &len), DSKVS_OK);
	DT_CHECK(len == strlen(val) && memcmp(buf, val, len) == 0,
	         "%s: wrong value", key);
}

static void held_out_child(const char *dir)
{
	struct fsim_config cfg = { .real_sync = false };
	dskvs_stats st;
	dskvs *s;

	fsim_install(dir, &cfg);
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
	put_str(s, "h/a", "1", DSKVS_OK);
	put_str(s, "h/b", "2", DSKVS_OK);
	put_str(s, "g/x", "3", DSKVS_OK);
	DT_RC(dskvs_sync(s), DSKVS_OK); /* acknowledged: h/a h/b g/x */

	fsim_arm(FSIM_FDATASYNC, 1, FSIM_EIO, false);
	fsim_arm(FSIM_PWRITEV, 2, FSIM_ENOSPC, true);
	put_str(s, "h/c", "4", DSKVS_OK); /* its fdatasync fails */
	DT_RC(dskvs_sync(s), DSKVS_EIO);
	put_str(s, "h/d", "5", DSKVS_EIO); /* refused */
	put_str(s, "h/a", "6", DSKVS_EIO);
	DT_RC(dskvs_delete(s, "h/b"), DSKVS_EIO);
	DT_RC(dskvs_delete_all(s, "g"), DSKVS_EIO);
	DT_RC(dskvs_sync(s), DSKVS_EIO);
	/* Reads: every accepted write, none of the refused. */
	check_str(s, "h/a", "1");
	check_str(s, "h/b", "2");
	check_str(s, "h/c", "4");
	check_str(s, "h/d", NULL);
	check_str(s, "g/x", "3");
	/* The disk is full: a rewrite cannot help. */
	DT_RC(dskvs_rewrite(s), DSKVS_EIO);
	put_str(s, "h/e", "7", DSKVS_EIO);
	DT_RC(dskvs_stats_get(s, &st), DSKVS_OK);
	DT_CHECK(st.last_error == DSKVS_EIO && st.last_errno == EIO,
	         "stats: last_error %s, last_errno %d",
	         dskvs_err_name(st.last_error), st.last_errno);
	DT_RC(dskvs_close(s), DSKVS_EIO);

	char *vd = dt_fmt("%s.durable", dir);
	fsim_materialize(vd, FSIM_DURABLE, 0);
	fsim_uninstall();
	const char *views[] = { dir, vd };
	for (int i = 0; i < 2; i++) {
		DT_RC(dskvs_open(views[i], NULL, &s), DSKVS_OK);
		check_str(s, "h/a", "1");
		check_str(s, "h/b", "2");
		check_str(s, "g/x", "3");
		check_str(s, "h/d", NULL);
		check_str(s, "h/e", NULL);
		if (i == 1) /* never synced */
			check_str(s, "h/c", NULL);
		DT_RC(dskvs_close(s), DSKVS_OK);
	}
	dt_rmtree(vd);
	free(vd);
}

static void held_out(void)
{
	char *dir = dt_mkdtemp("heldout");
	fflush(NULL);
	pid_t pid = fork();
	DT_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dt_in_child = true;
		held_out_child(dir);
		exit(0);
	}
	int status;
	DT_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	DT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	         "held-out scenario failed (status %#x)", status);
	dt_rmtree(dir);
	free(dir);
	printf("held-out scenario (fdatasync EIO, then ENOSPC): ok\n");
}

/* ---- main
 * --------------------------------------------------------------------
 */

static void write_template(void *arg)
{
	dskvs *s;
	uint64_t seq;
	struct dt_state m = { { 0 } };
	(void)arg;
	DT_RC(dskvs_open(template_dir, NULL, &s), DSKVS_OK);
	for (size_t i = 0; i < NBASE; i++) {
		bool changes = dt_apply(&m, &base_ops[i]);
		DT_RC(dt_do(s, &base_ops[i], 0, &seq),
		      changes ? DSKVS_OK : DSKVS_NOTFOUND);
	}
	DT_RC(dskvs_close(s), DSKVS_OK);
}

static void make_template(uint64_t seed)
{
	uint64_t rng = seed;
	template_dir = dt_mkdtemp("faults-template");
	memset(&base, 0, sizeof(base));
	for (size_t i = 0; i < NBASE; i++) {
		base_ops[i] = dt_op_random(&rng, (uint32_t)i + 1);
		dt_apply(&base, &base_ops[i]);
	}
	for (size_t i = 0; i < NOPS; i++)
		ops[i] = dt_op_random(&rng, (uint32_t)(1000 + i));
	/* In a leaf process: see dt_run_forked. */
	int status = dt_run_forked(write_template, NULL);
	DT_CHECK(status == 0, "writing the template failed (%#x)", status);
	/* A torn tail: open will truncate it and sync. */
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, template_dir);
	size_t len;
	unsigned char *b = dt_read_file(log, &len);
	DT_CHECK(b != NULL, "read %s", log);
	unsigned char *c = realloc(b, len + 20);
	DT_CHECK(c != NULL, "out of memory");
	memset(c + len, 0xa5, 20);
	dt_write_file(log, c, len + 20);
	free(c);
	free(log);
}

static void add_task(enum fsim_kind k, uint64_t n, enum fsim_fault f,
                     bool persistent)
{
	DT_CHECK(ntasks < MAX_TASKS, "too many cases");
	tasks[ntasks++] = (struct task){ k, n, f, persistent };
}

static const enum fsim_kind kinds[] = { FSIM_OPENAT,    FSIM_PWRITEV,
	                                FSIM_FDATASYNC, FSIM_RENAMEAT,
	                                FSIM_FTRUNCATE, FSIM_FSYNC };
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* One sweep over a template and workload made from `seed`. Returns the
 * number of failed workers. */
static unsigned sweep(uint64_t seed, unsigned workers)
{
	make_template(seed);

	/* Dry run: how many calls of each kind to sweep. */
	struct task none = { FSIM_OPENAT, 0, FSIM_EIO, false };
	fork_case(dirs[0], &none, true);
	tot->cases--;
	printf("seed %llu: calls per kind:", (unsigned long long)seed);
	for (size_t i = 0; i < NKINDS; i++)
		printf(" %s %llu", fsim_kind_name(kinds[i]),
		       (unsigned long long)tot->calls[kinds[i]]);
	printf("\n");
	fflush(stdout);

	ntasks = 0;
	for (size_t i = 0; i < NKINDS; i++) {
		enum fsim_kind k = kinds[i];
		DT_CHECK(tot->calls[k] > 0, "the workload never calls %s",
		         fsim_kind_name(k));
		for (uint64_t n = 1; n <= tot->calls[k]; n++) {
			for (int p = 0; p < 2; p++) {
				add_task(k, n, FSIM_EIO, p);
				add_task(k, n, FSIM_ENOSPC, p);
				if (k == FSIM_PWRITEV)
					add_task(k, n, FSIM_SHORT, p);
			}
			if (k == FSIM_PWRITEV)
				add_task(k, n, FSIM_SHORT_THEN_ENOSPC, true);
		}
	}
	unsigned failed = dt_parallel(ntasks, workers, sweep_task, NULL);
	dt_rmtree(template_dir);
	free(template_dir);
	return failed;
}

int main(void)
{
	uint64_t seed = dt_seed("test_faults", 4242);
	unsigned workers = dt_jobs(8), rounds = dt_long() ? 6 : 1, failed = 0;

	DT_CHECK(workers <= MAX_WORKER, "at most %d workers", MAX_WORKER);
	tot = mmap(NULL, sizeof(*tot), PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	DT_CHECK(tot != MAP_FAILED, "mmap: %s", strerror(errno));
	for (unsigned w = 0; w < workers; w++)
		dirs[w] = dt_mkdtemp("faults");
	for (unsigned r = 0; r < rounds && failed == 0; r++)
		failed += sweep(seed + r, workers);

	printf("fault points swept: %llu cases (%llu injected a fault: %llu "
	       "failed the open, %llu made the store sticky, %llu rewrites "
	       "cleared it, %llu compactions failed); injected per kind:",
	       (unsigned long long)tot->cases, (unsigned long long)tot->fired,
	       (unsigned long long)tot->open_failed,
	       (unsigned long long)tot->sticky,
	       (unsigned long long)tot->rewrites_ok,
	       (unsigned long long)tot->compact_failed);
	for (size_t i = 0; i < NKINDS; i++)
		printf(" %s %llu", fsim_kind_name(kinds[i]),
		       (unsigned long long)tot->per_kind[kinds[i]]);
	printf("\n");
	DT_CHECK(failed == 0, "%u workers failed", failed);
	held_out();

	for (unsigned w = 0; w < workers; w++) {
		dt_rmtree(dirs[w]);
		free(dirs[w]);
	}
	munmap(tot, sizeof(*tot));
	return 0;
}
