/*
 * kill -9 at random moments, then reopen.
 *
 * Each cycle forks a child that opens the store and writes a seeded mix of
 * puts, deletes and DeleteAlls from one thread while a second thread
 * compacts every few milliseconds (and the janitor compacts by itself: the
 * minimum size for that is small). Before and after each operation the
 * child reports on a pipe what it does and what it got, including which
 * writes are acknowledged as durable: every write before a dskvs_sync that
 * returned DSKVS_OK, every write in DSKVS_SYNC_ALWAYS mode once it returned,
 * every write whose sequence number dskvs_durable_seq() reached, or that
 * dskvs_wait_durable() waited for.
 *
 * The parent kills the child with SIGKILL after a seeded number of messages
 * (sometimes just as a compaction starts, sometimes after a short delay),
 * then reopens the store and checks that
 *   - dskvs_verify calls it healthy and dskvs_open succeeds,
 *   - no compaction temporary is left behind,
 *   - the state equals the model after some prefix of the child's
 *     operations that includes every acknowledged one (so nothing
 *     acknowledged is lost, and nothing appears out of order).
 * The recovered state is the starting state of the next cycle.
 *
 * A kill -9 keeps the page cache, so this tests the process crash, not the
 * power loss (test_powerloss does that). DSKVS_LONG=1 runs 400 cycles.
 */
#include "dt.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPS 6000

enum msg_type {
	M_START = 1,    /* idx: op begins */
	M_DONE,         /* idx, rc, seq: op returned */
	M_SYNC_DONE,    /* idx: dskvs_sync returned OK after ops < idx */
	M_DURABLE,      /* seq: dskvs_durable_seq() */
	M_WAITED,       /* idx: dskvs_wait_durable(seq of op idx) returned OK */
	M_COMPACT,      /* a dskvs_compact begins */
	M_COMPACT_DONE, /* rc */
	M_ERROR,        /* idx, rc: unexpected result; the child stops */
	M_END           /* the child ran out of operations */
};

struct msg {
	uint32_t type;
	uint32_t idx;
	int32_t rc;
	uint32_t pad;
	uint64_t seq;
};

static struct dt_op ops[MAX_OPS];
static struct dt_state model; /* state at the start of the cycle */
static int out_fd;            /* child: write end of the pipe */
static dskvs *store;          /* child */
static uint64_t child_seed;

/* ---- the child -------------------------------------------------------------
 */

static void send_msg(uint32_t type, uint32_t idx, int rc, uint64_t seq)
{
	struct msg m = { .type = type, .idx = idx, .rc = rc, .seq = seq };
	/* Smaller than PIPE_BUF: atomic, even from two threads. */
	if (write(out_fd, &m, sizeof(m)) != sizeof(m))
		_exit(3);
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { .tv_sec = (time_t)(us / 1000000),
		               .tv_nsec = (long)(us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *compactor(void *arg)
{
	uint64_t rng = child_seed ^ 0xc0ffee;
	(void)arg;
	for (;;) {
		sleep_us(200 + dt_below(&rng, 3000));
		send_msg(M_COMPACT, 0, 0, 0);
		int rc = dskvs_compact(store);
		send_msg(rc == DSKVS_OK ? M_COMPACT_DONE : M_ERROR, 0, rc, 0);
		if (rc != DSKVS_OK)
			_exit(4);
	}
	return NULL;
}

static void child(const char *dir, int mode, uint64_t seed)
{
	dskvs_options o;
	struct dt_state m = model;
	uint64_t rng = seed, seqs[MAX_OPS];
	pthread_t t;

	child_seed = seed;
	dt_options(&o, mode);
	o.compact_min_bytes = 16 << 10;
	o.compact_garbage_pct = 50;
	/* A small queue and small batches make writers wait for room and
	 * the janitor write many batches. */
	o.queue_capacity = 64;
	o.batch_max_records = dt_below(&rng, 2) ? 8 : 1024;
	int rc = dskvs_open(dir, &o, &store);
	if (rc != DSKVS_OK) {
		send_msg(M_ERROR, 0, rc, 0);
		_exit(2);
	}
	DT_CHECK(pthread_create(&t, NULL, compactor, NULL) == 0, "thread");
	for (uint32_t i = 0; i < MAX_OPS; i++) {
		bool changes = dt_apply(&m, &ops[i]);
		send_msg(M_START, i, 0, 0);
		rc = dt_do(store, &ops[i], 16, &seqs[i]);
		send_msg(M_DONE, i, rc, seqs[i]);
		if (rc != (changes ? DSKVS_OK : DSKVS_NOTFOUND)) {
			send_msg(M_ERROR, i, rc, 0);
			_exit(2);
		}
		uint64_t r = dt_below(&rng, 100);
		if (r < 6) {
			rc = dskvs_sync(store);
			send_msg(rc == DSKVS_OK ? M_SYNC_DONE : M_ERROR, i + 1,
			         rc, 0);
		} else if (r < 9 && seqs[i]) {
			rc = dskvs_wait_durable(store, seqs[i], -1);
			send_msg(rc == DSKVS_OK ? M_WAITED : M_ERROR, i, rc, 0);
		} else if (r < 30) {
			send_msg(M_DURABLE, i, 0, dskvs_durable_seq(store));
		}
		if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND)
			_exit(2);
	}
	send_msg(M_END, 0, 0, 0);
	for (;;)
		pause();
}

/* ---- the parent ------------------------------------------------------------
 */

struct cycle_result {
	uint64_t started, acked, recovered;
	uint64_t compactions;
};

/* Track what the child told us. */
struct tracker {
	uint32_t started;
	uint32_t acked;
	uint64_t compactions;
	int rc[MAX_OPS];
	uint64_t seq[MAX_OPS];
	bool done[MAX_OPS];
	bool ended;
};

static void ack_upto(struct tracker *tr, uint32_t n)
{
	if (n > tr->acked)
		tr->acked = n;
}

static void track(struct tracker *tr, const struct msg *m, int mode)
{
	switch (m->type) {
	case M_START:
		DT_CHECK(m->idx == tr->started, "START %u after %u", m->idx,
		         tr->started);
		tr->started = m->idx + 1;
		break;
	case M_DONE:
		DT_CHECK(m->idx + 1 == tr->started, "DONE %u", m->idx);
		tr->done[m->idx] = true;
		tr->rc[m->idx] = m->rc;
		tr->seq[m->idx] = m->seq;
		if (mode == DSKVS_SYNC_ALWAYS)
			ack_upto(tr, m->idx + 1);
		break;
	case M_SYNC_DONE:
		ack_upto(tr, m->idx);
		break;
	case M_WAITED:
		ack_upto(tr, m->idx + 1);
		break;
	case M_DURABLE:
		/* One writer thread: sequence numbers grow with the op
		 * index, so every op up to the last one numbered <= seq is
		 * durable. Ops answered NOTFOUND logged nothing. */
		for (uint32_t i = m->idx + 1; i-- > tr->acked;)
			if (tr->done[i] && tr->seq[i] && tr->seq[i] <= m->seq) {
				ack_upto(tr, i + 1);
				break;
			}
		break;
	case M_COMPACT:
		tr->compactions++;
		break;
	case M_COMPACT_DONE:
		break;
	case M_END:
		tr->ended = true;
		break;
	case M_ERROR:
		dt_fail(__FILE__, __LINE__,
		        "child: unexpected %s at op %u (%s)",
		        dskvs_err_name(m->rc), m->idx,
		        m->idx < MAX_OPS ? "see the op list" : "");
	default:
		dt_fail(__FILE__, __LINE__, "bad message type %u", m->type);
	}
}

/* Read one message; false at EOF. Fails if the child says nothing for a
 * long time (a hang is a bug too; the limit is far above any normal
 * pause). */
static bool read_msg(int fd, struct msg *m)
{
	size_t got = 0;
	while (got < sizeof(*m)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, 60000);
		DT_CHECK(r != 0, "the child said nothing for 60 s: hung?");
		if (r < 0 && errno == EINTR)
			continue;
		ssize_t n = read(fd, (char *)m + got, sizeof(*m) - got);
		if (n == 0) {
			DT_CHECK(got == 0, "torn message");
			return false;
		}
		if (n < 0 && errno == EINTR)
			continue;
		DT_CHECK(n > 0, "read: %s", strerror(errno));
		got += (size_t)n;
	}
	return true;
}

static struct tracker tr;

static void run_cycle(const char *dir, unsigned cycle, uint64_t seed,
                      struct cycle_result *res)
{
	uint64_t rng = dt_mix(seed ^ ((uint64_t)cycle << 20));
	int mode = cycle % 3 == 2 ? DSKVS_SYNC_ALWAYS : DSKVS_SYNC_ASYNC;
	int pfd[2];
	struct msg m;

	for (uint32_t i = 0; i < MAX_OPS; i++)
		ops[i] = dt_op_random(&rng, cycle * 100000u + i + 1);
	/* When to kill: after `target` messages; plan 1 waits a little
	 * more, plan 2 waits for the k-th compaction to start instead. */
	uint64_t plan = dt_below(&rng, 3);
	uint64_t target =
	    1 + dt_below(&rng, mode == DSKVS_SYNC_ALWAYS ? 200 : 1500);
	uint64_t kth = 1 + dt_below(&rng, 4);
	uint64_t delay_us = dt_below(&rng, 3000);
	uint64_t child_rng = dt_rand(&rng);

	DT_CHECK(pipe(pfd) == 0, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid_t pid = fork();
	DT_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dt_in_child = true;
		close(pfd[0]);
		out_fd = pfd[1];
		child(dir, mode, child_rng);
	}
	close(pfd[1]);
	memset(&tr, 0, sizeof(tr));

	uint64_t seen = 0;
	bool killed = false;
	while (!killed && read_msg(pfd[0], &m)) {
		track(&tr, &m, mode);
		seen++;
		bool now = plan == 2
		               ? m.type == M_COMPACT && tr.compactions >= kth
		               : seen >= target || tr.ended;
		if (plan == 2 && seen >= 4 * target)
			now = true; /* no compaction came */
		if (now) {
			if (plan != 0)
				sleep_us(delay_us);
			kill(pid, SIGKILL);
			killed = true;
		}
	}
	DT_CHECK(killed, "the child exited by itself");
	/* What the child wrote before it died is still in the pipe. */
	while (read_msg(pfd[0], &m))
		track(&tr, &m, mode);
	close(pfd[0]);
	int status;
	DT_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	DT_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	         "cycle %u: child did not die of SIGKILL (status %#x)", cycle,
	         status);

	/* Reopen and compare. */
	dskvs_verify_report rep;
	int vrc = dskvs_verify(dir, NULL, NULL, &rep);
	DT_CHECK(vrc == DSKVS_OK, "cycle %u: dskvs_verify: %s (%s)", cycle,
	         dskvs_err_name(vrc), dskvs_errmsg(NULL));
	struct dt_state got;
	int rc = dt_open_dump(dir, &got);
	DT_CHECK(rc == DSKVS_OK, "cycle %u: dskvs_open: %s (%s)", cycle,
	         dskvs_err_name(rc), dskvs_errmsg(NULL));
	char *tmp = dt_fmt("%s/dskvs.log.tmp", dir);
	DT_CHECK(dt_file_size(tmp) < 0, "cycle %u: %s left behind", cycle, tmp);
	free(tmp);
	long p = dt_match_prefix(&model, ops, tr.acked, tr.started, &got);
	if (p < 0) {
		struct dt_state want = model;
		for (uint32_t i = 0; i < tr.acked; i++)
			dt_apply(&want, &ops[i]);
		dt_fail(__FILE__, __LINE__,
		        "cycle %u (%s): recovered state is no prefix of ops "
		        "%u..%u (acknowledged %u); against the acknowledged "
		        "prefix: %s",
		        cycle, mode == DSKVS_SYNC_ALWAYS ? "always" : "async",
		        tr.acked, tr.started, tr.acked,
		        dt_state_diff(&want, &got));
	}
	model = got;
	res->started = tr.started;
	res->acked = tr.acked;
	res->recovered = (uint64_t)p;
	res->compactions = tr.compactions;
}

int main(void)
{
	uint64_t seed = dt_seed("test_kill", 77);
	unsigned cycles = dt_long() ? 400 : 40;
	char *dir = dt_mkdtemp("kill");
	uint64_t started = 0, acked = 0, recovered = 0, compactions = 0;

	signal(SIGPIPE, SIG_IGN);
	memset(&model, 0, sizeof(model));
	for (unsigned c = 0; c < cycles; c++) {
		struct cycle_result r;
		run_cycle(dir, c, seed, &r);
		started += r.started;
		acked += r.acked;
		recovered += r.recovered;
		compactions += r.compactions;
	}
	printf("kill cycles: %u; ops started %llu, acknowledged durable %llu, "
	       "recovered %llu (every acknowledged one: 0 writes lost); "
	       "%llu compactions started by the child\n",
	       cycles, (unsigned long long)started, (unsigned long long)acked,
	       (unsigned long long)recovered, (unsigned long long)compactions);
	dt_rmtree(dir);
	free(dir);
	return 0;
}
