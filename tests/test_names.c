/*
 * A block does not copy its collection's name: a queued record points at
 * the name its collection holds (blk.h, queue.h), so the collection must
 * outlive every record queued for it, and the compaction's snapshot
 * (table.h, "collections and their records"). These tests break that
 * promise where it could break: a collection removed while its records
 * wait behind a stalled janitor, many of them, and one removed in the
 * middle of a compaction that holds its blocks. A name freed too early is
 * a use after free under ASan and, without it, a record written with
 * whatever bytes took the name's place (the reopen checks the log).
 */
#include "testutil.h"

#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(names, .init = tu_setup, .fini = tu_teardown, .timeout = 120);

/* ---- the memory the name took --------------------------------------- */

/* The bytes of blocks the store's slabs have handed out. */
static size_t slab_in_use(dskvs *s)
{
	size_t sum = 0;
	for (int i = 0; i < BLK_SHARDS; i++) {
		struct dskvs__blk_shard *sh = &s->t.pool.sh[i];
		pthread_mutex_lock(&sh->mu);
		sum += sh->slab.in_use;
		pthread_mutex_unlock(&sh->mu);
	}
	return sum;
}

Test(names, a_block_holds_no_copy_of_its_collection_name)
{
	enum { N = 200, CLEN = 400 };
	char key[CLEN + 16], val[8] = "12345678";
	memset(key, 'c', CLEN);
	dskvs *s = tu_open(tu_dir);
	size_t before = slab_in_use(s);
	for (int i = 0; i < N; i++) {
		snprintf(key + CLEN, 16, "/m%03d", i);
		tu_put(s, key, val, sizeof(val));
	}
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	size_t per = (slab_in_use(s) - before) / N;
	/* Header, "m000", NUL, value: 26 + 4 + 1 + 8, in an 8-byte class
	 * (and ASan's red zone). */
	cr_assert_leq(per, 40 + SLAB_REDZONE,
	              "%zu bytes per block for a 4-byte member and an 8-byte "
	              "value: the %d-byte collection name is in it",
	              per, CLEN);
	/* What the log holds still names the collection. */
	tu_close(s);
	s = tu_open(tu_dir);
	snprintf(key + CLEN, 16, "/m%03d", N - 1);
	tu_check(s, key, val, sizeof(val));
	tu_close(s);
}

/* ---- a janitor that waits ------------------------------------------- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool closed;  /* fdatasync waits while set */
	bool waiting; /* the janitor is waiting in it */
	int (*real)(int);
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false,
	   NULL };

static int gated_fdatasync(int fd)
{
	pthread_mutex_lock(&gate.mu);
	while (gate.closed) {
		gate.waiting = true;
		pthread_cond_broadcast(&gate.cv);
		pthread_cond_wait(&gate.cv, &gate.mu);
	}
	gate.waiting = false;
	pthread_mutex_unlock(&gate.mu);
	return gate.real(fd);
}

/* Close the gate and wait until the janitor is stuck in it with the
 * record of one put (so that whatever follows stays queued). */
static void stall_janitor(dskvs *s)
{
	gate.real = dskvs__io.fdatasync;
	dskvs__io.fdatasync = gated_fdatasync;
	pthread_mutex_lock(&gate.mu);
	gate.closed = true;
	pthread_mutex_unlock(&gate.mu);
	tu_put(s, "stall/x", "x", 1);
	pthread_mutex_lock(&gate.mu);
	while (!gate.waiting)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
}

static void release_janitor(void)
{
	pthread_mutex_lock(&gate.mu);
	gate.closed = false;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
	dskvs__io.fdatasync = gate.real;
}

static size_t zombies(dskvs *s)
{
	pthread_mutex_lock(&s->t.zombies_mu);
	size_t n = 0;
	for (struct dskvs__coll *c = s->t.zombies; c; c = c->zombie_next)
		n++;
	pthread_mutex_unlock(&s->t.zombies_mu);
	return n;
}

/* The janitor has passed the top of its loop after everything queued so
 * far, and every removed collection's destroy has run: two synced writes
 * after a barrier (the first batch may have begun before the barrier
 * ended; the second begins after a sweep that followed the first). */
static void settle(dskvs *s)
{
	dskvs__rcu_barrier();
	for (int i = 0; i < 2; i++) {
		tu_put(s, "settle/x", "x", 1);
		cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	}
}

/* The log file's bytes (malloc'd, *len). */
static char *read_log(size_t *len)
{
	char *path = tu_log_path(tu_dir);
	char *p = tu_read_file(path, len);
	free(path);
	return p;
}

static bool log_has(const char *p, size_t len, const char *s)
{
	return memmem(p, len, s, strlen(s)) != NULL;
}

Test(names, a_record_outlives_its_collection)
{
	dskvs *s = tu_open(tu_dir);
	stall_janitor(s);
	/* Removed by a DeleteAll, and by the delete of its last member. */
	tu_put(s, "gone-by-delete-all/m", "v1", 2);
	cr_assert_eq(dskvs_delete_all(s, "gone-by-delete-all"), DSKVS_OK);
	tu_put(s, "gone-by-delete/m", "v2", 2);
	cr_assert_eq(dskvs_delete(s, "gone-by-delete/m"), DSKVS_OK);
	/* Their destroys have run: they wait for the janitor. */
	dskvs__rcu_barrier();
	cr_expect_eq(zombies(s), 2, "%zu removed collections kept, not 2",
	             zombies(s));
	/* Memory a too-early free gave back is taken again, and written. */
	for (int i = 0; i < 64; i++) {
		char k[64];
		snprintf(k, sizeof(k), "%-18d/m", i);
		tu_put(s, k, "w", 1);
	}
	release_janitor();
	settle(s);
	cr_assert_eq(zombies(s), 0, "%zu removed collections never freed",
	             zombies(s));
	tu_close(s);

	size_t len;
	char *log = read_log(&len);
	cr_assert(log_has(log, len, "gone-by-delete-all/mv1"));
	cr_assert(log_has(log, len, "gone-by-delete/mv2"));
	/* The DeleteAll's key is the name alone: a second one. */
	const char *at = memmem(log, len, "gone-by-delete-all", 18);
	cr_assert_not_null(at);
	cr_assert_not_null(memmem(at + 18, len - (size_t)(at + 18 - log),
	                          "gone-by-delete-all", 18),
	                   "no DeleteAll record of gone-by-delete-all");
	free(log);

	s = tu_open(tu_dir);
	tu_check_absent(s, "gone-by-delete-all/m");
	tu_check_absent(s, "gone-by-delete/m");
	tu_check_str(s, "stall/x", "x");
	tu_close(s);
}

Test(names, many_removed_collections_wait_and_then_go)
{
	enum { N = 3000 };
	dskvs *s = tu_open(tu_dir);
	stall_janitor(s);
	char k[64];
	for (int i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "churn%d/m", i);
		tu_put(s, k, "v", 1);
		snprintf(k, sizeof(k), "churn%d", i);
		cr_assert_eq(dskvs_delete_all(s, k), DSKVS_OK);
	}
	dskvs__rcu_barrier();
	cr_assert_eq(zombies(s), N);
	release_janitor();
	settle(s);
	cr_assert_eq(zombies(s), 0);
	tu_close(s);
	s = tu_open(tu_dir);
	dskvs_stats st;
	cr_assert_eq(dskvs_stats_get(s, &st), DSKVS_OK);
	/* stall, settle */
	cr_assert_eq(st.collections, 2, "%llu collections after replay",
	             (unsigned long long)st.collections);
	tu_close(s);
}

/* ---- a compaction whose collection goes ------------------------------ */

#define COLLS   8
#define MEMBERS 50

static struct {
	dskvs *s;
	int armed;
	bool gathered_k; /* a k collection's members were gathered */
	int rc[COLLS];
	size_t zombies;
} g;

static void gather_hook(int point, void *arg)
{
	if (!__atomic_load_n(&g.armed, __ATOMIC_ACQUIRE))
		return;
	if (point == DSKVS__HOOK_MEMBERS_GATHER) {
		/* The gather order follows the hash seed, random per open:
		 * wait for a collection the deletes below will remove. */
		const struct dskvs__coll *c = arg;
		if (c->name.len == 2 && c->name.s[0] == 'k') /* not "keep" */
			g.gathered_k = true;
		return;
	}
	if (point != DSKVS__HOOK_GATHER || !g.gathered_k)
		return;
	g.armed = 0;
	/* Between two collections of the gather, on the janitor thread:
	 * every collection goes, those gathered already too, and their
	 * destroys run before the snapshot is written. */
	for (int i = 0; i < COLLS; i++) {
		char c[16];
		snprintf(c, sizeof(c), "k%d", i);
		g.rc[i] = dskvs_delete_all(g.s, c);
	}
	dskvs__rcu_barrier();
	g.zombies = zombies(g.s);
}

Test(names, a_compaction_keeps_the_names_of_its_snapshot)
{
	char key[32], val[64];
	dskvs_options o;
	dskvs_options_init(&o);
	o.auto_compact = 0; /* the log read below is this compaction's */
	dskvs *s = tu_open_opts(tu_dir, &o);
	for (int i = 0; i < COLLS; i++)
		for (int m = 0; m < MEMBERS; m++) {
			snprintf(key, sizeof(key), "k%d/m%d", i, m);
			snprintf(val, sizeof(val), "value %d %d", i, m);
			tu_put(s, key, val, strlen(val));
		}
	tu_put(s, "keep/x", "kept", 4);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	g.s = s;
	dskvs__hook = gather_hook;
	__atomic_store_n(&g.armed, 1, __ATOMIC_RELEASE);
	int rc = dskvs_compact(s);
	dskvs__hook = NULL;
	cr_assert_eq(rc, DSKVS_OK);
	cr_assert_eq(g.armed, 0, "the gather never called its hook");
	for (int i = 0; i < COLLS; i++)
		cr_assert_eq(g.rc[i], DSKVS_OK);
	/* Every collection was in the table when the gather began, and at
	 * least one k collection, gathered before the hook, is in the
	 * snapshot. */
	cr_assert_geq(g.zombies, 1);
	/* The compacted log holds the snapshot's records under their
	 * collections' names: those gathered before the hook. */
	size_t len, found = 0;
	char *log = read_log(&len);
	for (int i = 0; i < COLLS; i++) {
		snprintf(key, sizeof(key), "k%d/m%d", i, MEMBERS - 1);
		found += log_has(log, len, key);
	}
	free(log);
	cr_assert_geq(found, 1, "no snapshot record names its collection");
	settle(s);
	cr_assert_eq(zombies(s), 0);
	tu_close(s);

	s = tu_open(tu_dir);
	for (int i = 0; i < COLLS; i++) {
		snprintf(key, sizeof(key), "k%d/m0", i);
		tu_check_absent(s, key);
	}
	tu_check_str(s, "keep/x", "kept");
	tu_close(s);
}

/* ---- what a removed collection keeps -------------------------------- */

/* Its members go a grace period after the removal, as before names were
 * shared: only the struct with the name waits for the janitor. (Found by
 * review: the first version kept every block of a DeleteAll'd collection
 * until its record was written.) */
Test(names, a_removed_collections_members_go_before_its_records)
{
	enum { M = 5000 };
	char k[64], v[200];
	memset(v, 'v', sizeof(v));
	dskvs *s = tu_open(tu_dir);
	size_t base = slab_in_use(s);
	for (int i = 0; i < M; i++) {
		snprintf(k, sizeof(k), "big/m%d", i);
		tu_put(s, k, v, sizeof(v));
	}
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	size_t with = slab_in_use(s) - base;
	stall_janitor(s);
	cr_assert_eq(dskvs_delete_all(s, "big"), DSKVS_OK);
	dskvs__rcu_barrier();
	size_t after = slab_in_use(s) - base;
	size_t z = zombies(s);
	release_janitor();
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	cr_expect_eq(z, 1);
	cr_expect_lt(after, with / 100,
	             "the %d blocks of a DeleteAll'd collection wait for the "
	             "janitor: %zu of %zu bytes",
	             M, after, with);
	tu_close(s);
}

/* Close with removed collections still waiting for a janitor that has
 * only just been let go: the close frees each once (ASan: no leak, no
 * double free). */
Test(names, close_frees_the_collections_that_still_wait)
{
	dskvs *s = tu_open(tu_dir);
	stall_janitor(s);
	for (int i = 0; i < 100; i++) {
		char k[32];
		snprintf(k, sizeof(k), "z%d/m", i);
		tu_put(s, k, "v", 1);
		if (i % 2) {
			snprintf(k, sizeof(k), "z%d", i);
			cr_assert_eq(dskvs_delete_all(s, k), DSKVS_OK);
		} else {
			cr_assert_eq(dskvs_delete(s, k), DSKVS_OK);
		}
	}
	dskvs__rcu_barrier();
	cr_assert_eq(zombies(s), 100);
	release_janitor();
	tu_close(s);
	s = tu_open(tu_dir);
	tu_check_absent(s, "z98/m");
	tu_check_absent(s, "z99/m");
	tu_check_str(s, "stall/x", "x");
	tu_close(s);
}

/* ---- every path that queues a record -------------------------------- */

/* Four writers on a 16-slot ring over every call that queues a record
 * (puts of each kind, updates, deletes, DeleteAlls, batches with deletes
 * and NOP slots), collections coming and going, compactions meanwhile.
 * (From the review of the change.) */
static int upd_del(const void *o, size_t ol, int ex, const void **nv,
                   size_t *nl, void *arg)
{
	(void)o;
	(void)ol;
	(void)nv;
	(void)nl;
	(void)arg;
	return ex ? DSKVS_UPDATE_DELETE : DSKVS_UPDATE_KEEP;
}
static int upd_set(const void *o, size_t ol, int ex, const void **nv,
                   size_t *nl, void *arg)
{
	(void)o;
	(void)ol;
	(void)ex;
	*nv = arg;
	*nl = 3;
	return DSKVS_UPDATE_SET;
}

struct wargs {
	dskvs *s;
	int id;
};

static void *writer_main(void *arg)
{
	struct wargs *a = arg;
	uint64_t st = 0x9e3779b97f4a7c15ull * (uint64_t)(a->id + 1);
	char coll[64], key[128], mem[16][32];
	for (int it = 0; it < 3000; it++) {
		int cn = (int)(tu_rand(&st) % 5);
		snprintf(coll, sizeof(coll), "w%d-%s%d", a->id,
		         cn & 1 ? "a-much-longer-collection-name-" : "", cn);
		int m = (int)(tu_rand(&st) % 8);
		snprintf(key, sizeof(key), "%s/m%d", coll, m);
		uint64_t seq;
		switch (tu_rand(&st) % 9) {
		case 0:
			dskvs_put(a->s, key, "pv", 2, NULL, NULL);
			break;
		case 1:
			dskvs_put_if_absent(a->s, key, "pa", 2, &seq);
			break;
		case 2:
			dskvs_put_if_seq(a->s, key, "ps", 2, 12345, &seq);
			break;
		case 3:
			dskvs_update(a->s, key, upd_del, NULL, &seq);
			break;
		case 4:
			dskvs_update(a->s, key, upd_set, "upd", &seq);
			break;
		case 5:
			dskvs_delete(a->s, key);
			break;
		case 6:
			dskvs_delete_all(a->s, coll);
			break;
		default: {
			dskvs_batch_op ops[15];
			unsigned n = 1 + (unsigned)(tu_rand(&st) % 15);
			for (unsigned i = 0; i < n; i++) {
				snprintf(mem[i], sizeof(mem[i]), "m%u",
				         (unsigned)(tu_rand(&st) % 10));
				ops[i].member = mem[i];
				ops[i].val = "bv";
				ops[i].len = 2;
				ops[i].del = (int)(tu_rand(&st) % 2);
			}
			dskvs_write_batch(a->s, coll, ops, n, &seq);
		}
		}
	}
	return NULL;
}

Test(names, every_record_path_names_its_collection)
{
	dskvs_options o;
	dskvs_options_init(&o);
	o.queue_capacity = 16;
	o.batch_max_records = 15;
	dskvs *s = tu_open_opts(tu_dir, &o);
	enum { W = 4 };
	pthread_t t[W];
	struct wargs a[W];
	for (int i = 0; i < W; i++) {
		a[i] = (struct wargs){ s, i };
		pthread_create(&t[i], NULL, writer_main, &a[i]);
	}
	/* Compactions while they write: snapshots and records held during
	 * gathers carry names too. */
	for (int r = 0; r < 3; r++)
		cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	for (int i = 0; i < W; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	dskvs_stats st;
	cr_assert_eq(dskvs_stats_get(s, &st), DSKVS_OK);
	/* Queued bytes are counted from the names on the way in and on the
	 * way out: they must meet at zero. */
	cr_expect_eq(st.pending_bytes, 0, "%llu bytes pending after a sync",
	             (unsigned long long)st.pending_bytes);
	struct tu_snap before, after;
	tu_snap_take(s, &before);
	tu_close(s);
	s = tu_open(tu_dir);
	tu_snap_take(s, &after);
	tu_snap_assert_eq(&before, &after);
	tu_snap_free(&before);
	tu_snap_free(&after);
	tu_close(s);
}

/* ---- fork ------------------------------------------------------------ */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool held;
	pthread_mutex_t *lock;
} holder = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, NULL };

/* Holds a lock a callback takes (as a sweep or a writer would) while the
 * main thread forks, then lets it go. */
static void *hold_lock(void *arg)
{
	(void)arg;
	pthread_mutex_lock(holder.lock);
	pthread_mutex_lock(&holder.mu);
	holder.held = true;
	pthread_cond_broadcast(&holder.cv);
	pthread_mutex_unlock(&holder.mu);
	usleep(300 * 1000); /* the fork comes meanwhile */
	pthread_mutex_unlock(holder.lock);
	return NULL;
}

/* The child inherits the callbacks its parent left pending (liburcu hands
 * them to the child's call_rcu thread). One that needs a lock a parent's
 * thread held at fork hung there, and with it every rcu_barrier in the
 * child: a store the child opens could never close. (Found by review; the
 * same held for the pool's shard locks before.) */
Test(names, a_child_forked_while_a_callback_lock_is_held_can_close)
{
	dskvs *s = tu_open(tu_dir);
	tu_put(s, "gone/m", "v", 1);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	holder.lock = &s->t.zombies_mu;
	holder.held = false;
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, hold_lock, NULL), 0);
	pthread_mutex_lock(&holder.mu);
	while (!holder.held)
		pthread_cond_wait(&holder.cv, &holder.mu);
	pthread_mutex_unlock(&holder.mu);
	/* Its destroy is pending at the fork, and takes zombies_mu. */
	cr_assert_eq(dskvs_delete_all(s, "gone"), DSKVS_OK);
	char *dir = tu_subdir("child");
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		alarm(20);
		dskvs *c;
		if (dskvs_open(dir, NULL, &c) != DSKVS_OK)
			_exit(2);
		if (dskvs_put(c, "a/b", "c", 1, NULL, NULL) != DSKVS_OK)
			_exit(3);
		_exit(dskvs_close(c) == DSKVS_OK ? 0 : 4);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	pthread_join(th, NULL);
	cr_assert(WIFEXITED(st), "the child died of signal %d (hung: %s)",
	          WIFSIGNALED(st) ? WTERMSIG(st) : 0,
	          WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? "yes" : "no");
	cr_assert_eq(WEXITSTATUS(st), 0);
	free(dir);
	tu_close(s);
}
