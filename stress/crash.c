/*
 * Crash mode.
 *
 * DESIGN
 *
 * Each cycle the parent writes its model (per key: last version taken and
 * version of the live value) to <dir>/model.bin and starts itself again as
 * the child (--crash-child) with posix_spawn: a fresh process image, and no
 * fork of a process that runs liburcu's call_rcu thread (glibc's posix_spawn
 * runs no pthread_atfork handlers, so dskvs's fork hooks, which restart that
 * thread in a forked child, never run; ThreadSanitizer refuses a thread
 * started after a multi-threaded fork). The child opens the store
 * and runs `writers` writer threads plus one thread that calls
 * dskvs_compact() every few tens of milliseconds. The parent kills it with
 * SIGKILL at a random moment, reopens the store and checks it.
 *
 * The child tells the parent what it does through a pipe, in 16-byte
 * records; each write() is at most PIPE_BUF bytes, so records of different
 * threads never interleave and a kill never leaves half a record:
 *   INTENT  before a writer runs a batch of writes it sends one intent per
 *           write (put key i / delete key i / delete_all collection c), in
 *           order. The parent replays the intents through its own copy of
 *           the model and so knows, for every key, each version that may have
 *           reached the store and in which order.
 *   ACK     "the first n writes of thread t are durable": sent after a write
 *           returned in DSKVS_SYNC_ALWAYS mode, after dskvs_sync() returned,
 *           after dskvs_wait_durable() returned, or when dskvs_durable_seq()
 *           passed the writes' sequence numbers (the child picks one of these
 *           at random after each batch, or none).
 *   CBEGIN/CEND around dskvs_compact(), so the parent knows whether the kill
 *           hit a compaction.
 *   MSG     a violation the child saw itself (its reads must see exactly
 *           its own writes; put's *old must be exactly the previous value).
 *
 * After the kill, for every key the parent takes h_a, the state left by the
 * last acknowledged write of the key (or the verified state at the start of
 * the cycle), and requires the reopened state to be h_a or one of the states
 * after it: a value must be the value of a put at or after h_a (an older one
 * is stale, one no put ever wrote is a phantom), and the key may be absent
 * only if h_a or a later intended write is a delete. Every value must be
 * whole. get_all of each collection must agree with the gets, the stats with
 * the count. The reopened state becomes the model of the next cycle.
 *
 * Counters (--atomic P, the atomic mix's counters; stress.h): P% of the
 * child's planned writes are increments of one of NCTR shared counters
 * (dskvs_update, or a get_seq + put_if_seq loop), announced with an INTENT
 * of kind OP_CTR like any write, and each ends its batch, so its intent
 * is sent right before its call. A counter only changes by +1, so after
 * the kill, with V0 its verified value at the start of the cycle:
 *   V0 + acked <= value <= V0 + intended
 * where acked counts its increments inside the threads' acknowledged
 * prefixes and intended all announced ones. Lower bound: an acknowledged
 * increment that wrote count c is durable, and a later record of the key
 * can only hold a larger count (log order = memory order per key), so the
 * value is at least the largest acknowledged count, which is at least V0
 * plus the number of acknowledged increments (they wrote distinct counts
 * above V0). Upper bound: an increment that never ran cannot be there.
 * With --sync always every increment that returned is acknowledged before
 * the thread's next call, so the slack (intended - acked) is at most one
 * increment per writer thread: the ones in flight at the kill.
 *
 * Not a violation but reported as a note: a writer's later write survived
 * while an earlier one of the same thread did not (allowed, since neither was
 * acknowledged, but a sign that the log is not replayed as a prefix).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#include "stress.h"

enum rec_type { R_READY = 1, R_INTENT, R_ACK, R_CBEGIN, R_CEND, R_MSG };

struct rec {
	uint8_t type;
	uint8_t
	    kind; /* INTENT: OP_PUT / OP_DELETE / OP_DELETE_ALL; MSG: vkind */
	uint16_t thread; /* writer index */
	uint32_t target; /* INTENT: key index or collection; MSG: text length */
	uint64_t val;    /* INTENT: write number; ACK: writes durable */
};
_Static_assert(sizeof(struct rec) == 16, "pipe records are 16 bytes");
_Static_assert(PIPE_BUF >= 4096, "a 4 KiB write to a pipe is atomic");

#define BATCH_MAX   64  /* writes planned per batch: 1 KiB of intents */
#define CHILD_FD    100 /* the pipe's write end in the child */
#define MSG_TEXT    480 /* child violation text, fits one atomic write */
#define MODEL_MAGIC 0x4c444f4d5653444bull
#define OP_CTR      OP_NKINDS       /* INTENT kind: a counter increment */
#define OP_BATCH    (OP_NKINDS + 1) /* INTENT kind: a batch of bo<w> */

/* The batch number of writer write number n of cycle `cycle`: unique,
 * and growing with n and with the cycle. */
static uint64_t crash_batch_no(unsigned int cycle, uint64_t n)
{
	return ((uint64_t)cycle << 32) + n + 1;
}

struct mkey {
	uint64_t ver;     /* last version taken */
	uint64_t val_ver; /* version of the live value, 0 = absent */
};

static int write_model(const char *path, const struct mkey *m, uint32_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	uint64_t hdr[2] = { MODEL_MAGIC, n };
	int ok = fwrite(hdr, sizeof hdr, 1, f) == 1 &&
	         fwrite(m, sizeof *m, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static int read_model(const char *path, struct mkey *m, uint32_t n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	uint64_t hdr[2];
	int ok = fread(hdr, sizeof hdr, 1, f) == 1 && hdr[0] == MODEL_MAGIC &&
	         hdr[1] == n && fread(m, sizeof *m, n, f) == n;
	fclose(f);
	return ok ? 0 : -1;
}

/* ==== child ================================================================
 */

static struct {
	struct stress_opts *o;
	struct keyspace ks;
	struct mkey *m;
	dskvs *s;
	int fd;
	int sync_mode;
	_Atomic unsigned int msgs;
	char ctr_key[NCTR][KEY_NAME_MAX];
} C;

static void send_recs(const struct rec *r, size_t n)
{
	const char *p = (const char *)r;
	size_t left = n * sizeof *r;
	while (left) {
		ssize_t w = write(C.fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(4); /* parent gone */
		p += w;
		left -= (size_t)w;
	}
}

static void send1(uint8_t type, uint8_t kind, unsigned int thread,
                  uint32_t target, uint64_t val)
{
	struct rec r = { type, kind, (uint16_t)thread, target, val };
	send_recs(&r, 1);
}

static void child_violation(enum vkind k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void child_violation(enum vkind k, const char *fmt, ...)
{
	if (atomic_fetch_add(&C.msgs, 1) >= C.o->max_report + 1u)
		return;
	struct rec buf[1 + (MSG_TEXT + 15) / 16];
	memset(buf, 0, sizeof buf);
	char *text = (char *)&buf[1];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, MSG_TEXT, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n >= MSG_TEXT)
		n = MSG_TEXT - 1;
	buf[0] = (struct rec){ R_MSG, (uint8_t)k, 0, (uint32_t)n, 0 };
	send_recs(buf, 1 + ((size_t)n + 15) / 16);
}

struct cwriter {
	pthread_t tid;
	unsigned int idx;
	uint64_t rng;
	uint64_t n;     /* writes done */
	uint64_t acked; /* writes reported durable */
	uint64_t *pend; /* seq of writes acked .. n-1 (0: changed nothing) */
	size_t pend_cap;
	unsigned char *wbuf, *rbuf, *bbuf;
	unsigned char *seen;
};

static void ack_upto(struct cwriter *w, uint64_t upto)
{
	if (upto <= w->acked)
		return;
	size_t drop = (size_t)(upto - w->acked);
	size_t keep = (size_t)(w->n - upto);
	memmove(w->pend, w->pend + drop, keep * sizeof *w->pend);
	w->acked = upto;
	send1(R_ACK, 0, w->idx, 0, upto);
}

static void note_write(struct cwriter *w, uint64_t seq)
{
	size_t used = (size_t)(w->n - w->acked);
	if (used == w->pend_cap) {
		size_t cap = w->pend_cap ? 2 * w->pend_cap : 256;
		uint64_t *p = realloc(w->pend, cap * sizeof *p);
		if (!p)
			_exit(2);
		w->pend = p;
		w->pend_cap = cap;
	}
	w->pend[used] = seq;
	w->n++;
	if (C.sync_mode == DSKVS_SYNC_ALWAYS && seq) {
		/* Returned, so durable; the ticket counter must agree within
		 * a bounded time (it may lag behind a concurrent write). */
		if (dskvs_wait_durable(C.s, seq, 5000) != DSKVS_OK)
			child_violation(V_DURABILITY,
			                "writer %u: a write returned in sync "
			                "always mode but seq %" PRIu64
			                " did not become durable in 5 s",
			                w->idx, seq);
		ack_upto(w, w->n);
	} else if (C.sync_mode == DSKVS_SYNC_ALWAYS) {
		ack_upto(w, w->n);
	}
}

static void child_expect(struct cwriter *w, uint32_t k, const char *what,
                         int rc, const void *data, size_t len)
{
	uint64_t want = C.m[k].val_ver;
	const char *key = C.ks.key[k];
	if (rc == DSKVS_NOTFOUND) {
		if (want)
			child_violation(
			    V_LOST,
			    "writer %u %s %s: expected version %" PRIu64
			    ", got not found",
			    w->idx, what, key, want);
		return;
	}
	if (rc != DSKVS_OK) {
		child_violation(V_RC, "writer %u %s %s: got %s", w->idx, what,
		                key, rc_name(rc));
		return;
	}
	struct sv_info in;
	char why[256];
	if (!sv_check(C.o, data, len, &in, why, sizeof why)) {
		child_violation(V_TORN, "writer %u %s %s: %s", w->idx, what,
		                key, why);
	} else if (in.key != k || in.writer != w->idx) {
		child_violation(
		    V_MISDIRECTED,
		    "writer %u %s %s: got a value of key id %" PRIu32
		    " writer %" PRIu32,
		    w->idx, what, key, in.key, in.writer);
	} else if (in.version != want) {
		child_violation(!want               ? V_RESURRECTED
		                : in.version < want ? V_STALE
		                                    : V_PHANTOM,
		                "writer %u %s %s: expected %s%" PRIu64
		                ", got version %" PRIu64,
		                w->idx, what, key,
		                want ? "version " : "absent ", want,
		                in.version);
	}
}

static void child_get(struct cwriter *w, uint32_t k, const char *what)
{
	size_t len = 0;
	int rc = dskvs_get(C.s, C.ks.key[k], w->rbuf, C.o->value_max, &len);
	if (rc == DSKVS_ERANGE)
		rc = DSKVS_OK, len = C.o->value_max;
	child_expect(w, k, what, rc, w->rbuf, len);
}

struct cwalk {
	struct cwriter *w;
	unsigned int c;
};

static int child_walk_cb(const char *m, size_t mlen, const void *val,
                         size_t vlen, void *arg)
{
	struct cwalk *cw = arg;
	long i = parse_owned_member(&C.ks, cw->c, m, mlen);
	if (i < 0) {
		child_violation(V_WALK,
		                "writer %u get_all: unknown member %.*s",
		                cw->w->idx, (int)(mlen < 64 ? mlen : 64), m);
		return 0;
	}
	size_t j = (size_t)i / C.ks.colls;
	if (cw->w->seen[j])
		child_violation(V_WALK, "writer %u get_all: member %.*s twice",
		                cw->w->idx, (int)mlen, m);
	cw->w->seen[j] = 1;
	child_expect(cw->w, cw->w->idx * C.ks.keys + (uint32_t)i,
	             "get_all of own collection", DSKVS_OK, val, vlen);
	return 0;
}

static void child_walk(struct cwriter *w, unsigned int c)
{
	memset(w->seen, 0, C.ks.per_coll_max + 1);
	struct cwalk cw = { w, c };
	int rc = dskvs_get_all(C.s, C.ks.coll[w->idx * C.ks.colls + c],
	                       child_walk_cb, &cw);
	if (rc != DSKVS_OK)
		child_violation(V_RC, "writer %u get_all: got %s", w->idx,
		                rc_name(rc));
	for (unsigned int i = c, j = 0; i < C.ks.keys; i += C.ks.colls, j++)
		if (!w->seen[j] && C.m[w->idx * C.ks.keys + i].val_ver)
			child_violation(V_WALK,
			                "writer %u get_all %s: member k%06u "
			                "(version %" PRIu64 ") not visited",
			                w->idx,
			                C.ks.coll[w->idx * C.ks.colls + c], i,
			                C.m[w->idx * C.ks.keys + i].val_ver);
}

static void write_failed(struct cwriter *w, const char *what, const char *key,
                         int rc)
{
	child_violation(V_RC, "writer %u %s %s: got %s (%s)", w->idx, what, key,
	                rc_name(rc), dskvs_errmsg(C.s));
	_exit(3); /* the model no longer knows the state */
}

static void child_put(struct cwriter *w, unsigned int i)
{
	uint32_t k = w->idx * C.ks.keys + i;
	uint64_t prev = C.m[k].val_ver;
	uint64_t v = ++C.m[k].ver;
	size_t len = sv_len(C.o, k, v);
	sv_fill(w->wbuf, len, k, w->idx, v);
	void *old = NULL;
	size_t old_len = 0;
	uint64_t seq = 0;
	bool want_old = rng_next(&w->rng) & 1;
	int rc = dskvs_put_seq(C.s, C.ks.key[k], w->wbuf, len,
	                       want_old ? &old : NULL, &old_len, &seq);
	if (rc != DSKVS_OK)
		write_failed(w, "put", C.ks.key[k], rc);
	if (want_old) {
		struct sv_info in;
		char why[256];
		if (!prev && old)
			child_violation(
			    V_BAD_OLD,
			    "writer %u put %s: *old: expected none, "
			    "got %zu bytes",
			    w->idx, C.ks.key[k], old_len);
		else if (prev && !old)
			child_violation(
			    V_BAD_OLD,
			    "writer %u put %s: *old: expected version "
			    "%" PRIu64 ", got none",
			    w->idx, C.ks.key[k], prev);
		else if (prev &&
		         !sv_check(C.o, old, old_len, &in, why, sizeof why))
			child_violation(V_TORN, "writer %u put %s: *old: %s",
			                w->idx, C.ks.key[k], why);
		else if (prev && (in.key != k || in.version != prev))
			child_violation(
			    V_BAD_OLD,
			    "writer %u put %s: *old: expected version "
			    "%" PRIu64 " of key id %" PRIu32
			    ", got version %" PRIu64 " of key id %" PRIu32,
			    w->idx, C.ks.key[k], prev, k, in.version, in.key);
	}
	free(old);
	C.m[k].val_ver = v;
	note_write(w, seq);
	if (rng_below(&w->rng, 4) == 0)
		child_get(w, k, "get after own put of");
}

static void child_delete(struct cwriter *w, unsigned int i)
{
	uint32_t k = w->idx * C.ks.keys + i;
	uint64_t prev = C.m[k].val_ver;
	++C.m[k].ver;
	uint64_t seq = 0;
	int rc = dskvs_delete_seq(C.s, C.ks.key[k], &seq);
	if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND)
		write_failed(w, "delete", C.ks.key[k], rc);
	if ((rc == DSKVS_OK) != (prev != 0))
		child_violation(prev ? V_LOST : V_RESURRECTED,
		                "writer %u delete %s: expected %s, got %s",
		                w->idx, C.ks.key[k],
		                prev ? "DSKVS_OK" : "DSKVS_NOTFOUND",
		                rc_name(rc));
	C.m[k].val_ver = 0;
	note_write(w, rc == DSKVS_OK ? seq : 0);
	if (rng_below(&w->rng, 4) == 0)
		child_get(w, k, "get after own delete of");
}

static void child_delete_all(struct cwriter *w, unsigned int c)
{
	bool any = false;
	for (unsigned int i = c; i < C.ks.keys; i += C.ks.colls) {
		struct mkey *mk = &C.m[w->idx * C.ks.keys + i];
		mk->ver++;
		any |= mk->val_ver != 0;
		mk->val_ver = 0;
	}
	const char *coll = C.ks.coll[w->idx * C.ks.colls + c];
	uint64_t seq = 0;
	int rc = dskvs_delete_all_seq(C.s, coll, &seq);
	if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND)
		write_failed(w, "delete_all", coll, rc);
	if ((rc == DSKVS_OK) != any)
		child_violation(
		    any ? V_LOST : V_RESURRECTED,
		    "writer %u delete_all %s: expected %s, got %s", w->idx,
		    coll, any ? "DSKVS_OK" : "DSKVS_NOTFOUND", rc_name(rc));
	note_write(w, rc == DSKVS_OK ? seq : 0);
}

/* One increment of counter i (dskvs_update or a CAS loop), then
 * note_write. A broken counter value ends the child (the model of the
 * counters would no longer hold). */
static void child_ctr(struct cwriter *w, unsigned int i)
{
	const char *key = C.ctr_key[i];
	uint64_t seq = 0;
	char why[200];
	if (i < NCTR_UPD) {
		struct ctr_incr a = { .id = i, .mode = CTR_SET };
		int rc = dskvs_update(C.s, key, ctr_incr_fn, &a, &seq);
		if (a.bad) {
			child_violation(V_TORN, "writer %u update %s: %s",
			                w->idx, key, a.why);
			_exit(3);
		}
		if (rc != DSKVS_OK)
			write_failed(w, "update", key, rc);
	} else {
		unsigned char buf[CTR_LEN + 8], nv[CTR_LEN];
		for (;;) {
			size_t len = 0;
			uint64_t q = 0, c = 0;
			int rc =
			    dskvs_get_seq(C.s, key, buf, sizeof buf, &len, &q);
			if (rc == DSKVS_OK &&
			    !ctr_check(buf, len, i, &c, why, sizeof why)) {
				child_violation(V_TORN,
				                "writer %u CAS read %s: %s",
				                w->idx, key, why);
				_exit(3);
			}
			if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND)
				write_failed(w, "CAS read", key, rc);
			ctr_fill(nv, i, c + 1);
			rc = dskvs_put_if_seq(C.s, key, nv, CTR_LEN, q, &seq);
			if (rc == DSKVS_OK)
				break;
			if (rc != DSKVS_ECONFLICT)
				write_failed(w, "put_if_seq", key, rc);
		}
	}
	note_write(w, seq);
}

/* Batch number crash_batch_no(cycle, w->n) of bo<w>, then note_write. */
static void child_batch(struct cwriter *w)
{
	dskvs_batch_op ops[BAT_KMAX + 1];
	char names[BAT_KMAX][8], coll[16];
	uint64_t b = crash_batch_no(C.o->child_cycle, w->n), seq = 0;
	bat_coll_name(coll, sizeof coll, false, w->idx);
	size_t n = bat_ops(C.o, ops, names, w->bbuf, w->idx,
	                   bat_k_owned(w->idx), b, w->idx);
	int rc = dskvs_write_batch(C.s, coll, ops, n, &seq);
	if (rc != DSKVS_OK)
		write_failed(w, "write_batch", coll, rc);
	note_write(w, seq);
}

static void child_ack_async(struct cwriter *w)
{
	if (w->acked == w->n)
		return;
	/* A long unacknowledged tail only makes the check weaker; cap it. */
	unsigned int how =
	    w->n - w->acked > 4096 ? 1 : (unsigned int)rng_below(&w->rng, 4);
	uint64_t last = 0;
	for (uint64_t i = w->acked; i < w->n; i++)
		if (w->pend[i - w->acked])
			last = w->pend[i - w->acked];
	switch (how) {
	case 1: {
		int rc = dskvs_sync(C.s);
		if (rc != DSKVS_OK)
			write_failed(w, "sync", "", rc);
		ack_upto(w, w->n);
		break;
	}
	case 2: {
		int rc = last ? dskvs_wait_durable(C.s, last, -1) : DSKVS_OK;
		if (rc != DSKVS_OK)
			write_failed(w, "wait_durable", "", rc);
		ack_upto(w, w->n);
		break;
	}
	case 3: {
		uint64_t d = dskvs_durable_seq(C.s), upto = w->acked;
		while (upto < w->n && w->pend[upto - w->acked] <= d)
			upto++;
		ack_upto(w, upto);
		break;
	}
	default:
		break; /* leave them unacknowledged for now */
	}
}

static void *child_writer(void *arg)
{
	struct cwriter *w = arg;
	const unsigned int all = (1u << OP_NKINDS) - 1;
	for (;;) {
		int ops[BATCH_MAX];
		unsigned int tgt[BATCH_MAX];
		struct rec intents[BATCH_MAX];
		unsigned int b =
		    1 + (unsigned int)rng_below(&w->rng, BATCH_MAX);
		unsigned int ni = 0;
		for (unsigned int x = 0; x < b; x++) {
			if (C.o->atomic_pct &&
			    rng_below(&w->rng, 100) < C.o->atomic_pct) {
				/* A counter increment (or a batch of writes)
				 * ends its batch, so its intent goes out
				 * right before its call. */
				ops[x] =
				    rng_below(&w->rng, 2) ? OP_BATCH : OP_CTR;
				tgt[x] = ops[x] == OP_BATCH
				             ? w->idx
				             : (unsigned int)rng_below(&w->rng,
				                                       NCTR);
				intents[ni] =
				    (struct rec){ R_INTENT, (uint8_t)ops[x],
					          (uint16_t)w->idx, tgt[x],
					          w->n + ni };
				ni++;
				b = x + 1;
				break;
			}
			ops[x] = pick_op(C.o, all, &w->rng);
			tgt[x] =
			    ops[x] == OP_DELETE_ALL || ops[x] == OP_GET_ALL
			        ? (unsigned int)rng_below(&w->rng, C.ks.colls)
			        : (unsigned int)rng_below(&w->rng, C.ks.keys);
			if (ops[x] == OP_PUT || ops[x] == OP_DELETE ||
			    ops[x] == OP_DELETE_ALL) {
				intents[ni] =
				    (struct rec){ R_INTENT, (uint8_t)ops[x],
					          (uint16_t)w->idx, tgt[x],
					          w->n + ni };
				ni++;
			}
		}
		/* Announce before doing: the parent must know every version
		 * that can have reached the store. */
		if (ni)
			send_recs(intents, ni);
		for (unsigned int x = 0; x < b; x++) {
			switch (ops[x]) {
			case OP_PUT:
				child_put(w, tgt[x]);
				break;
			case OP_DELETE:
				child_delete(w, tgt[x]);
				break;
			case OP_DELETE_ALL:
				child_delete_all(w, tgt[x]);
				break;
			case OP_CTR:
				child_ctr(w, tgt[x]);
				break;
			case OP_BATCH:
				child_batch(w);
				break;
			case OP_GET:
				child_get(w, w->idx * C.ks.keys + tgt[x],
				          "get of own key");
				break;
			case OP_GET_ALL:
				child_walk(w, tgt[x]);
				break;
			case OP_SYNC: {
				int rc = dskvs_sync(C.s);
				if (rc != DSKVS_OK)
					write_failed(w, "sync", "", rc);
				ack_upto(w, w->n);
				break;
			}
			default:
				sleep_s(0.001);
				break;
			}
		}
		if (C.sync_mode == DSKVS_SYNC_ASYNC)
			child_ack_async(w);
	}
	return NULL;
}

static void *child_compactor(void *arg)
{
	uint64_t rng = *(uint64_t *)arg;
	double avg = C.o->crash_compact_ms / 1000.0;
	for (;;) {
		sleep_s(rng_unit(&rng) * 2 * avg);
		send1(R_CBEGIN, 0, 0, 0, 0);
		int rc = dskvs_compact(C.s);
		send1(R_CEND, 0, 0, 0, 0);
		if (rc != DSKVS_OK)
			child_violation(V_RC,
			                "compactor: dskvs_compact gave %s (%s)",
			                rc_name(rc), dskvs_errmsg(C.s));
	}
	return NULL;
}

int crash_child_main(struct stress_opts *o, const char *store_dir)
{
	/* Die with the parent, whatever happens to it; the check after
	 * prctl closes the race with a parent that died before it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != (pid_t)o->child_parent)
		return 4;
	C.o = o;
	C.fd = o->child_fd;
	C.sync_mode =
	    o->sync == SYNC_ALWAYS ? DSKVS_SYNC_ALWAYS : DSKVS_SYNC_ASYNC;
	report_init(0);
	if (keyspace_init(&C.ks, o) != 0)
		return 2;
	for (unsigned int i = 0; i < NCTR; i++)
		ctr_key(C.ctr_key[i], sizeof C.ctr_key[i], i);
	C.m = calloc(C.ks.owned, sizeof *C.m);
	if (!C.m || read_model(o->child_model, C.m, C.ks.owned) != 0) {
		child_violation(V_CHILD, "child: cannot read model %s",
		                o->child_model);
		return 2;
	}
	dskvs_options opts;
	store_options(o, C.sync_mode, &opts);
	int rc = dskvs_open(store_dir, &opts, &C.s);
	if (rc != DSKVS_OK) {
		child_violation(V_OPEN, "child: dskvs_open gave %s: %s",
		                rc_name(rc), dskvs_errmsg(NULL));
		return 3;
	}
	send1(R_READY, 0, 0, 0, 0);
	struct cwriter *w = calloc(o->writers, sizeof *w);
	if (!w)
		return 2;
	for (unsigned int i = 0; i < o->writers; i++) {
		w[i].idx = i;
		w[i].rng =
		    mix64(o->seed ^ ((uint64_t)o->child_cycle << 32) ^ i);
		w[i].wbuf = malloc(o->value_max);
		w[i].rbuf = malloc(o->value_max);
		w[i].bbuf = malloc(bat_buf_size(o));
		w[i].seen = malloc(C.ks.per_coll_max + 1);
		if (!w[i].wbuf || !w[i].rbuf || !w[i].bbuf || !w[i].seen)
			return 2;
		pthread_create(&w[i].tid, NULL, child_writer, &w[i]);
	}
	uint64_t crng = mix64(o->seed ^ 0xc0ffee ^ o->child_cycle);
	pthread_t ct;
	if (o->crash_compact_ms)
		pthread_create(&ct, NULL, child_compactor, &crng);
	/* Runs until killed; never returns on its own. */
	for (;;)
		pause();
}

/* ==== parent ================================================================
 */

struct hist {
	uint64_t opno; /* write number within its thread */
	uint64_t ver;  /* version after it */
	bool present;  /* a put (true) or a delete / delete_all */
};

struct hvec {
	struct hist *h;
	size_t n, cap;
};

struct ivec {
	struct rec *r;
	size_t n, cap;
};

static struct {
	struct stress_opts *o;
	struct keyspace ks;
	struct mkey *m;
	struct hvec *hist;   /* per key, this cycle */
	struct ivec *intent; /* per writer, this cycle */
	uint64_t *acked;     /* per writer */
	unsigned char *buf;  /* everything the child sent */
	size_t len, cap;
	size_t scan;    /* read_child's parse position in buf */
	int compacting; /* compactions begun minus ended, as seen so far */
	/* totals */
	uint64_t intended, acknowledged, kills_compacting, torn_tails;
	uint64_t keys_checked, unready_kills;
	/* counters: verified value at the start of the cycle, this cycle's
	 * increments announced and acknowledged, totals */
	uint64_t ctr[NCTR], ctr_intended[NCTR], ctr_acked[NCTR];
	char ctr_key[NCTR][KEY_NAME_MAX];
	uint64_t ctr_tot_intended, ctr_tot_acked, ctr_tot_applied;
	uint64_t ctr_slack_max; /* most (intended - acked) of one cycle */
	/* batches, per writer: the batch bo<w> held at the start of the
	 * cycle (0: none), the last acknowledged one this cycle (h_a, or the
	 * start's), and this cycle's announced numbers after it */
	uint64_t *bat_b0, *bat_ha;
	struct ivec *bat_later; /* .val: the batch number */
	uint64_t bat_intended, bat_acked, bat_later_found, bat_checks;
} P;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return p;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *q = realloc(p, c * elem);
	if (!q) {
		fprintf(stderr, "dskvs-stress: out of memory\n");
		exit(2);
	}
	*cap = c;
	return q;
}

static void hpush(uint32_t k, uint64_t opno, uint64_t ver, bool present)
{
	struct hvec *v = &P.hist[k];
	v->h = grow(v->h, &v->cap, v->n + 1, sizeof *v->h);
	v->h[v->n++] = (struct hist){ opno, ver, present };
}

/* Follow the record stream as it arrives, only to know whether the child
 * is inside dskvs_compact() right now (MSG bodies are skipped). */
static void scan_new(void)
{
	while (P.scan + sizeof(struct rec) <= P.len) {
		struct rec x;
		memcpy(&x, P.buf + P.scan, sizeof x);
		size_t words = x.type == R_MSG ? 1 + (x.target + 15) / 16 : 1;
		if (P.scan + words * sizeof x > P.len)
			return;
		P.scan += words * sizeof x;
		P.compacting += x.type == R_CBEGIN;
		P.compacting -= x.type == R_CEND;
	}
}

/*
 * Collect what the child sends until `deadline` (0: until EOF). With
 * `in_compaction`, go on past the deadline (at most until `hard`) until the
 * child has announced a dskvs_compact() that has not returned yet.
 * Returns true at EOF.
 */
static bool read_child(int fd, double deadline, bool in_compaction, double hard)
{
	for (;;) {
		int ms = -1;
		if (deadline > 0) {
			double t = now_s();
			if (t >= deadline &&
			    (!in_compaction || P.compacting > 0 || t >= hard))
				return false;
			double until = t < deadline ? deadline : hard;
			ms = (int)((until - t) * 1000) + 1;
		}
		struct pollfd pfd = { fd, POLLIN, 0 };
		int r = poll(&pfd, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue; /* timeout: the loop head decides */
		P.buf = grow(P.buf, &P.cap, P.len + 65536, 1);
		ssize_t n = read(fd, P.buf + P.len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return true; /* EOF: the child and its threads are gone
			              */
		P.len += (size_t)n;
		scan_new();
	}
}

struct cycle_info {
	unsigned int cycle;
	bool ready, compacting;
	int sync_mode;
	uint64_t intended, acked;
};

/* Turn the child's records into per-key histories. */
static void replay(struct cycle_info *ci)
{
	unsigned int cbegin = 0, cend = 0;
	for (unsigned int t = 0; t < P.ks.writers; t++) {
		P.intent[t].n = 0;
		P.acked[t] = 0;
	}
	for (uint32_t k = 0; k < P.ks.owned; k++)
		P.hist[k].n = 0;
	for (unsigned int t = 0; t < P.ks.writers; t++) {
		P.bat_ha[t] = P.bat_b0[t];
		P.bat_later[t].n = 0;
	}
	memset(P.ctr_intended, 0, sizeof P.ctr_intended);
	memset(P.ctr_acked, 0, sizeof P.ctr_acked);
	if (P.len % sizeof(struct rec))
		fprintf(stderr, "dskvs-stress: %zu stray bytes from child\n",
		        P.len % sizeof(struct rec));
	size_t nrec = P.len / sizeof(struct rec);
	struct rec *r = (struct rec *)P.buf;
	for (size_t i = 0; i < nrec; i++) {
		struct rec x = r[i];
		if ((x.type == R_INTENT || x.type == R_ACK) &&
		    x.thread >= P.ks.writers) {
			fprintf(stderr,
			        "dskvs-stress: bad record from child\n");
			exit(2);
		}
		switch (x.type) {
		case R_READY:
			ci->ready = true;
			break;
		case R_INTENT: {
			struct ivec *v = &P.intent[x.thread];
			if (x.val != v->n) {
				fprintf(stderr,
				        "dskvs-stress: intent %" PRIu64
				        " of writer %u out of order\n",
				        x.val, x.thread);
				exit(2);
			}
			v->r = grow(v->r, &v->cap, v->n + 1, sizeof *v->r);
			v->r[v->n++] = x;
			break;
		}
		case R_ACK:
			if (x.val > P.acked[x.thread])
				P.acked[x.thread] = x.val;
			break;
		case R_CBEGIN:
			cbegin++;
			break;
		case R_CEND:
			cend++;
			break;
		case R_MSG: {
			size_t words = (x.target + 15) / 16;
			if (i + words >= nrec || x.kind >= V_NKINDS)
				break;
			violation((enum vkind)x.kind,
			          "crash cycle %u, child: %.*s", ci->cycle,
			          (int)x.target, (const char *)&r[i + 1]);
			i += words;
			break;
		}
		default:
			fprintf(stderr, "dskvs-stress: bad record type %u\n",
			        x.type);
			exit(2);
		}
	}
	ci->compacting = cbegin > cend;
	/* Replay each writer's intents on the model, key by key. */
	for (unsigned int t = 0; t < P.ks.writers; t++) {
		struct ivec *v = &P.intent[t];
		ci->intended += v->n;
		ci->acked += P.acked[t] < v->n ? P.acked[t] : v->n;
		for (size_t n = 0; n < v->n; n++) {
			struct rec x = v->r[n];
			if (x.kind == OP_BATCH) {
				uint64_t b = crash_batch_no(ci->cycle, n);
				P.bat_intended++;
				if (n < P.acked[t]) {
					P.bat_acked++;
					P.bat_ha[t] = b;
					P.bat_later[t].n = 0;
				} else {
					struct ivec *v2 = &P.bat_later[t];
					v2->r = grow(v2->r, &v2->cap, v2->n + 1,
					             sizeof *v2->r);
					v2->r[v2->n++] =
					    (struct rec){ .val = b };
				}
			} else if (x.kind == OP_CTR) {
				if (x.target >= NCTR) {
					fprintf(stderr, "dskvs-stress: bad "
					                "counter intent\n");
					exit(2);
				}
				P.ctr_intended[x.target]++;
				P.ctr_acked[x.target] += n < P.acked[t];
			} else if (x.kind == OP_DELETE_ALL) {
				for (unsigned int i = x.target; i < P.ks.keys;
				     i += P.ks.colls) {
					uint32_t k = t * P.ks.keys + i;
					hpush(k, n, ++P.m[k].ver, false);
				}
			} else {
				uint32_t k = t * P.ks.keys + x.target;
				hpush(k, n, ++P.m[k].ver, x.kind == OP_PUT);
			}
		}
	}
}

static void describe(char *b, size_t n, uint32_t k, const struct hist *h,
                     size_t j, unsigned int t)
{
	if (j == 0)
		snprintf(b, n,
		         "%s%" PRIu64 " (state at the start of the cycle)",
		         h[0].present ? "version " : "absent, last version ",
		         h[0].ver);
	else
		snprintf(b, n,
		         "%s%" PRIu64 " (write #%" PRIu64 " of writer %u)",
		         h[j].present ? "version " : "deleted at version ",
		         h[j].ver, h[j].opno, t);
	(void)k;
}

struct wstate {
	bool present;
	uint64_t ver;
	bool whole;
};

static int pwalk_cb(const char *m, size_t mlen, const void *val, size_t vlen,
                    void *arg)
{
	void **a = arg;
	const struct wstate *obs = a[0];
	unsigned int *wc = a[1];
	unsigned char *seen = a[2];
	const char *phase = a[3];
	unsigned int w = wc[0], c = wc[1];
	long i = parse_owned_member(&P.ks, c, m, mlen);
	if (i < 0) {
		violation(V_WALK, "%s get_all %s: unknown member \"%.*s\"",
		          phase, P.ks.coll[w * P.ks.colls + c],
		          (int)(mlen < 64 ? mlen : 64), m);
		return 0;
	}
	uint32_t k = w * P.ks.keys + (uint32_t)i;
	size_t j = (size_t)i / P.ks.colls;
	if (seen[j]++) {
		violation(V_WALK, "%s get_all: %s visited twice", phase,
		          P.ks.key[k]);
		return 0;
	}
	struct sv_info in;
	char why[256];
	if (!sv_check(P.o, val, vlen, &in, why, sizeof why))
		violation(V_TORN, "%s get_all %s: not a whole value: %s", phase,
		          P.ks.key[k], why);
	else if (!obs[k].present || in.version != obs[k].ver)
		violation(V_WALK,
		          "%s get_all %s: visited version %" PRIu64
		          ", but get gave %s%" PRIu64,
		          phase, P.ks.key[k], in.version,
		          obs[k].present ? "version " : "not found; last ",
		          obs[k].ver);
	return 0;
}

/* Reopen after the kill and check every key against its history. */
static int verify_cycle(const char *store_dir, struct cycle_info *ci)
{
	char phase[64];
	snprintf(phase, sizeof phase, "crash cycle %u: after reopen,",
	         ci->cycle);
	dskvs_verify_report rep;
	memset(&rep, 0, sizeof rep);
	int rc = dskvs_verify(store_dir, NULL, NULL, &rep);
	if (rc == DSKVS_OK)
		P.torn_tails += rep.torn_tail != 0;
	else if (!(rc == DSKVS_EPATH && !ci->ready))
		violation(V_OPEN, "%s dskvs_verify gave %s (%s)", phase,
		          rc_name(rc), dskvs_errmsg(NULL));
	dskvs_options opts;
	store_options(P.o, DSKVS_SYNC_ASYNC, &opts);
	dskvs *s = NULL;
	rc = dskvs_open(store_dir, &opts, &s);
	if (rc != DSKVS_OK) {
		violation(V_OPEN, "%s dskvs_open gave %s: %s", phase,
		          rc_name(rc), dskvs_errmsg(NULL));
		return -1;
	}
	struct wstate *obs = calloc(P.ks.owned, sizeof *obs);
	unsigned char *rbuf = malloc(P.o->value_max);
	unsigned char *seen = malloc(P.ks.per_coll_max + 1);
	struct hist *tmp = NULL;
	size_t tmpcap = 0;
	uint64_t *maxop = calloc(P.ks.writers, sizeof *maxop);
	if (!obs || !rbuf || !seen || !maxop)
		exit(2);
	uint64_t entries = 0;
	for (uint32_t k = 0; k < P.ks.owned; k++) {
		unsigned int t = k / P.ks.keys;
		size_t len = 0;
		char a[160], b[160];
		rc = dskvs_get(s, P.ks.key[k], rbuf, P.o->value_max, &len);
		/* h[0] is the state verified at the start of the cycle. */
		struct hvec *hv = &P.hist[k];
		tmp = grow(tmp, &tmpcap, hv->n + 1, sizeof *tmp);
		uint64_t v0 = hv->n ? hv->h[0].ver - 1 : P.m[k].ver;
		if (hv->n && P.m[k].ver != hv->h[hv->n - 1].ver)
			abort(); /* replay and history disagree: harness bug */
		tmp[0] = (struct hist){ 0, P.m[k].val_ver ? P.m[k].val_ver : v0,
			                P.m[k].val_ver != 0 };
		if (hv->n) /* hv->h is NULL for a key not written yet */
			memcpy(tmp + 1, hv->h, hv->n * sizeof *tmp);
		size_t nh = hv->n + 1, ja = 0;
		for (size_t j = 1; j < nh; j++)
			if (tmp[j].opno < P.acked[t])
				ja = j;
		describe(a, sizeof a, k, tmp, ja, t);
		obs[k].ver = 0;
		if (rc == DSKVS_NOTFOUND) {
			size_t j = ja;
			while (j < nh && tmp[j].present)
				j++;
			if (j == nh)
				violation(V_LOST,
				          "%s %s: expected the acknowledged %s "
				          "or a later state, got not found",
				          phase, P.ks.key[k], a);
			continue;
		}
		if (rc != DSKVS_OK && rc != DSKVS_ERANGE) {
			violation(V_RC, "%s get %s: got %s", phase, P.ks.key[k],
			          rc_name(rc));
			continue;
		}
		struct sv_info in;
		char why[256];
		if (!sv_check(P.o, rbuf,
		              len > P.o->value_max ? P.o->value_max : len, &in,
		              why, sizeof why)) {
			violation(V_TORN, "%s %s: not a whole value: %s", phase,
			          P.ks.key[k], why);
			continue;
		}
		if (in.key != k || in.writer != t) {
			violation(V_MISDIRECTED,
			          "%s %s: got a whole value of key id %" PRIu32
			          " writer %" PRIu32 " version %" PRIu64,
			          phase, P.ks.key[k], in.key, in.writer,
			          in.version);
			continue;
		}
		obs[k] = (struct wstate){ true, in.version, true };
		entries++;
		size_t j = 0;
		while (j < nh && !(tmp[j].present && tmp[j].ver == in.version))
			j++;
		if (j == nh) {
			snprintf(b, sizeof b, "version %" PRIu64, in.version);
			violation(
			    in.version < tmp[0].ver ? V_STALE : V_PHANTOM,
			    "%s %s: expected the acknowledged %s or a later "
			    "state, got %s, %s",
			    phase, P.ks.key[k], a, b,
			    in.version < tmp[0].ver
			        ? "older than the state at the start of "
			          "the cycle"
			        : "neither the state at the start of the "
			          "cycle nor written during it");
		} else if (j < ja) {
			describe(b, sizeof b, k, tmp, j, t);
			violation(
			    V_STALE,
			    "%s %s: expected the acknowledged %s or a later "
			    "state, got the older %s",
			    phase, P.ks.key[k], a, b);
		} else if (j > 0 && tmp[j].opno + 1 > maxop[t]) {
			maxop[t] = tmp[j].opno + 1;
		}
	}
	/* Order note: a later write of a thread survived, an earlier one not.
	 */
	for (uint32_t k = 0; k < P.ks.owned; k++) {
		unsigned int t = k / P.ks.keys;
		struct hvec *hv = &P.hist[k];
		size_t m = 0;
		for (size_t j = 0; j < hv->n; j++)
			if (hv->h[j].opno < maxop[t])
				m = j + 1;
		if (!m)
			continue;
		const struct hist *hm = &hv->h[m - 1];
		bool ok;
		if (obs[k].present) {
			ok = obs[k].ver >= hm->ver;
		} else {
			ok = false;
			for (size_t j = m - 1; j < hv->n; j++)
				ok |= !hv->h[j].present;
		}
		/* An acknowledged one that is missing is a violation already.
		 */
		if (!ok && hm->opno >= P.acked[t])
			note(
			    "crash cycle %u: writer %u's write #%" PRIu64
			    " survived the kill but its earlier write #%" PRIu64
			    " (%s %s version %" PRIu64
			    ") did not (allowed: neither was acknowledged)",
			    ci->cycle, t, maxop[t] - 1, hm->opno,
			    hm->present ? "put" : "delete", P.ks.key[k],
			    hm->ver);
	}
	/* Counters: V0 + acked <= value <= V0 + intended (see DESIGN). */
	uint64_t slack = 0;
	for (unsigned int i = 0; i < NCTR; i++) {
		unsigned char buf[CTR_LEN + 8];
		size_t len = 0;
		uint64_t c = 0;
		char why[200];
		uint64_t lo = P.ctr[i] + P.ctr_acked[i];
		uint64_t hi = P.ctr[i] + P.ctr_intended[i];
		slack += P.ctr_intended[i] - P.ctr_acked[i];
		rc = dskvs_get(s, P.ctr_key[i], buf, sizeof buf, &len);
		if (rc == DSKVS_OK &&
		    !ctr_check(buf, len, i, &c, why, sizeof why)) {
			violation(V_TORN, "%s %s: %s", phase, P.ctr_key[i],
			          why);
			continue;
		}
		if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND) {
			violation(V_RC, "%s get %s: got %s", phase,
			          P.ctr_key[i], rc_name(rc));
			continue;
		}
		entries += rc == DSKVS_OK;
		if (c < lo)
			violation(
			    rc == DSKVS_OK ? V_STALE : V_LOST,
			    "%s %s: count %" PRIu64 "%s, expected at least "
			    "%" PRIu64 " (%" PRIu64 " at the start of the "
			    "cycle + %" PRIu64 " acknowledged increments)",
			    phase, P.ctr_key[i], c,
			    rc == DSKVS_OK ? "" : " (not found)", lo, P.ctr[i],
			    P.ctr_acked[i]);
		else if (c > hi)
			violation(V_PHANTOM,
			          "%s %s: count %" PRIu64 ", expected at most "
			          "%" PRIu64 " (%" PRIu64
			          " at the start of the "
			          "cycle + %" PRIu64 " increments announced)",
			          phase, P.ctr_key[i], c, hi, P.ctr[i],
			          P.ctr_intended[i]);
		P.ctr_tot_intended += P.ctr_intended[i];
		P.ctr_tot_acked += P.ctr_acked[i];
		P.ctr_tot_applied += c > P.ctr[i] ? c - P.ctr[i] : 0;
		P.ctr[i] = c;
	}
	if (slack > P.ctr_slack_max)
		P.ctr_slack_max = slack;
	if (ci->sync_mode == DSKVS_SYNC_ALWAYS && slack > P.ks.writers)
		violation(V_COUNT,
		          "%s counters: %" PRIu64 " increments announced but "
		          "not acknowledged with --sync always, more than one "
		          "per writer (harness)",
		          phase, slack);
	/* Batches: bo<w> holds exactly one whole batch (bat_walk), h_a (the
	 * last acknowledged one, or the start's) or one announced after it;
	 * no member only if one of those deletes every member. */
	for (unsigned int t = 0; t < P.ks.writers; t++) {
		char coll[16];
		struct bat_seen out;
		bat_coll_name(coll, sizeof coll, false, t);
		P.bat_checks++;
		if (!bat_walk(P.o, s, "parent", phase, coll, t, bat_k_owned(t),
		              &out))
			continue;
		entries += out.members;
		struct ivec *v2 = &P.bat_later[t];
		uint64_t ha = P.bat_ha[t], now = 0;
		bool ok = false;
		if (out.b == 0) {
			if (bat_all_del(ha))
				ok = true, now = ha;
			for (size_t x = 0; !ok && x < v2->n; x++)
				if (bat_all_del(v2->r[x].val))
					ok = true, now = v2->r[x].val;
		} else {
			ok = out.b == ha;
			for (size_t x = 0; !ok && x < v2->n; x++)
				ok = out.b == v2->r[x].val;
			now = out.b;
		}
		if (!ok) {
			violation(out.b && out.b < ha ? V_STALE : V_BATCH,
			          "%s get_all %s: batch %#" PRIx64
			          " (0: no member), expected the last "
			          "acknowledged %#" PRIx64 " or one of the %zu "
			          "announced after it",
			          phase, coll, out.b, ha, v2->n);
			now = out.b;
		}
		P.bat_later_found += now != ha;
		P.bat_b0[t] = now;
	}
	/* Walks must agree with the gets. */
	for (unsigned int w = 0; w < P.ks.writers; w++) {
		for (unsigned int c = 0; c < P.ks.colls; c++) {
			unsigned int wc[2] = { w, c };
			void *arg[4] = { obs, wc, seen, phase };
			memset(seen, 0, P.ks.per_coll_max + 1);
			rc = dskvs_get_all(s, P.ks.coll[w * P.ks.colls + c],
			                   pwalk_cb, arg);
			if (rc != DSKVS_OK)
				violation(V_RC, "%s get_all %s: got %s", phase,
				          P.ks.coll[w * P.ks.colls + c],
				          rc_name(rc));
			for (unsigned int i = c, j = 0; i < P.ks.keys;
			     i += P.ks.colls, j++)
				if (!seen[j] && obs[w * P.ks.keys + i].present)
					violation(V_WALK,
					          "%s get_all: %s (version "
					          "%" PRIu64 ") not visited",
					          phase,
					          P.ks.key[w * P.ks.keys + i],
					          obs[w * P.ks.keys + i].ver);
		}
	}
	dskvs_stats st;
	if (dskvs_stats_get(s, &st) == DSKVS_OK && st.entries != entries)
		violation(V_COUNT,
		          "%s stats: expected %" PRIu64
		          " entries, got %" PRIu64,
		          phase, entries, st.entries);
	rc = dskvs_close(s);
	if (rc != DSKVS_OK)
		violation(V_OPEN, "%s dskvs_close gave %s: %s", phase,
		          rc_name(rc), dskvs_errmsg(NULL));
	/* The reopened state is the next cycle's starting point. */
	for (uint32_t k = 0; k < P.ks.owned; k++)
		P.m[k].val_ver = obs[k].present ? obs[k].ver : 0;
	P.keys_checked += P.ks.owned;
	free(obs);
	free(rbuf);
	free(seen);
	free(tmp);
	free(maxop);
	return 0;
}

static void add_arg(char **argv, int *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_arg(char **argv, int *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&argv[*n], fmt, ap) < 0)
		exit(2);
	va_end(ap);
	(*n)++;
}

static char **child_argv(const struct stress_opts *o, const char *work_dir,
                         const char *model, int fd, unsigned int cycle,
                         int sync_mode)
{
	char **argv = calloc(64, sizeof *argv);
	int n = 0;
	if (!argv)
		exit(2);
	add_arg(argv, &n, "dskvs-stress");
	add_arg(argv, &n, "--crash-child");
	add_arg(argv, &n, "--child-fd=%d", fd);
	add_arg(argv, &n, "--child-model=%s", model);
	add_arg(argv, &n, "--child-cycle=%u", cycle);
	add_arg(argv, &n, "--child-parent=%ld", (long)getpid());
	add_arg(argv, &n, "--dir=%s", work_dir);
	add_arg(argv, &n, "--writers=%u", o->writers);
	add_arg(argv, &n, "--keys=%u", o->keys);
	add_arg(argv, &n, "--collections=%u", o->colls);
	add_arg(argv, &n, "--value-min=%zu", o->value_min);
	add_arg(argv, &n, "--value-max=%zu", o->value_max);
	add_arg(argv, &n,
	        "--mix=get=%.17g,put=%.17g,delete=%.17g,"
	        "get_all=%.17g,delete_all=%.17g,sync=%.17g",
	        o->mix[OP_GET], o->mix[OP_PUT], o->mix[OP_DELETE],
	        o->mix[OP_GET_ALL], o->mix[OP_DELETE_ALL], o->mix[OP_SYNC]);
	add_arg(argv, &n, "--sync=%s",
	        sync_mode == DSKVS_SYNC_ALWAYS ? "always" : "async");
	add_arg(argv, &n, "--crash-compact-ms=%u", o->crash_compact_ms);
	add_arg(argv, &n, "--compact-min=%" PRIu64, o->compact_min);
	add_arg(argv, &n, "--queue=%u", o->queue);
	add_arg(argv, &n, "--atomic=%u", o->atomic_pct);
	add_arg(argv, &n, "--seed=%" PRIu64, o->seed);
	add_arg(argv, &n, "--max-report=%u", o->max_report);
	argv[n] = NULL;
	return argv;
}

int crash_main(struct stress_opts *o, const char *work_dir,
               const char *store_dir)
{
	P.o = o;
	if (keyspace_init(&P.ks, o) != 0)
		return 2;
	for (unsigned int i = 0; i < NCTR; i++)
		ctr_key(P.ctr_key[i], sizeof P.ctr_key[i], i);
	P.m = calloc(P.ks.owned, sizeof *P.m);
	P.hist = calloc(P.ks.owned, sizeof *P.hist);
	P.intent = calloc(o->writers, sizeof *P.intent);
	P.acked = calloc(o->writers, sizeof *P.acked);
	P.bat_b0 = calloc(o->writers, sizeof *P.bat_b0);
	P.bat_ha = calloc(o->writers, sizeof *P.bat_ha);
	P.bat_later = calloc(o->writers, sizeof *P.bat_later);
	if (!P.m || !P.hist || !P.intent || !P.acked || !P.bat_b0 ||
	    !P.bat_ha || !P.bat_later)
		return 2;
	char model[4096];
	snprintf(model, sizeof model, "%s/model.bin", work_dir);
	uint64_t rng = mix64(o->seed ^ 0xdead);
	double start = now_s();
	unsigned int done = 0;

	for (unsigned int cycle = 1; cycle <= o->crash; cycle++) {
		int sync_mode = o->sync == SYNC_ALWAYS ? DSKVS_SYNC_ALWAYS
		                : o->sync == SYNC_ASYNC
		                    ? DSKVS_SYNC_ASYNC
		                    : (cycle % 3 == 0 ? DSKVS_SYNC_ALWAYS
		                                      : DSKVS_SYNC_ASYNC);
		if (write_model(model, P.m, P.ks.owned) != 0) {
			fprintf(stderr, "dskvs-stress: cannot write %s: %s\n",
			        model, strerror(errno));
			return 2;
		}
		int fds[2];
		if (pipe2(fds, O_CLOEXEC) != 0) {
			perror("dskvs-stress: pipe");
			return 2;
		}
		char **argv =
		    child_argv(o, work_dir, model, CHILD_FD, cycle, sync_mode);
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, fds[1], CHILD_FD);
		double t_fork = now_s();
		pid_t pid;
		int err = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv,
		                      environ);
		posix_spawn_file_actions_destroy(&fa);
		if (err) {
			fprintf(stderr, "dskvs-stress: posix_spawn: %s\n",
			        strerror(err));
			return 2;
		}
		for (int i = 0; argv[i]; i++)
			free(argv[i]);
		free(argv);
		close(fds[1]);
		unsigned int span = o->kill_max_ms - o->kill_min_ms + 1;
		double delay =
		    (o->kill_min_ms + (double)rng_below(&rng, span)) / 1000.0;
		/* A quarter of the cycles aim the kill into a compaction:
		 * after the delay, wait for the next dskvs_compact() to begin
		 * and kill within 0..2 ms of hearing of it. */
		bool aim = o->crash_compact_ms && cycle % 4 == 2;
		P.len = P.scan = 0;
		P.compacting = 0;
		if (!read_child(fds[0], t_fork + delay, aim,
		                t_fork + delay + 2) &&
		    aim && P.compacting > 0)
			sleep_s((double)rng_below(&rng, 2000) / 1e6);
		kill(pid, SIGKILL);
		double t_kill = now_s();
		read_child(fds[0], 0, false, 0);
		close(fds[0]);
		int status = 0;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
		}
		struct cycle_info ci = { .cycle = cycle,
			                 .sync_mode = sync_mode };
		replay(&ci);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
			if (WIFSIGNALED(status))
				violation(
				    V_CHILD,
				    "crash cycle %u: child died of signal %d "
				    "before the kill",
				    cycle, WTERMSIG(status));
			else
				violation(V_CHILD,
				          "crash cycle %u: child exited with "
				          "status %d before the kill (see its "
				          "messages above)",
				          cycle, WEXITSTATUS(status));
		}
		P.intended += ci.intended;
		P.acknowledged += ci.acked;
		P.kills_compacting += ci.compacting;
		P.unready_kills += !ci.ready;
		double t_verify = now_s();
		int vr = verify_cycle(store_dir, &ci);
		done++;
		if (!o->quiet)
			printf("crash %u/%u: kill -9 after %.0f ms%s%s, %s | "
			       "writes intended %" PRIu64 ", acknowledged "
			       "%" PRIu64 " | reopen+check %.0f ms | "
			       "violations %" PRIu64 "\n",
			       cycle, o->crash, (t_kill - t_fork) * 1000,
			       ci.ready ? "" : " (before open finished)",
			       ci.compacting ? " (during compaction)" : "",
			       sync_mode == DSKVS_SYNC_ALWAYS ? "always"
			                                      : "async",
			       ci.intended, ci.acked,
			       (now_s() - t_verify) * 1000, violations_total());
		fflush(stdout);
		if (vr != 0)
			break; /* the store cannot be opened: nothing to go on
			        */
	}

	printf("\ndskvs-stress crash summary: %u of %u cycles in %.1f s, seed "
	       "%" PRIu64 ", %u writers, %u keys/writer in %u collections, "
	       "values %zu..%zu bytes, kill after %u..%u ms\n",
	       done, o->crash, now_s() - start, o->seed, o->writers, o->keys,
	       o->colls, o->value_min, o->value_max, o->kill_min_ms,
	       o->kill_max_ms);
	printf("  writes: intended %" PRIu64 ", acknowledged durable %" PRIu64
	       "; kills during compaction %" PRIu64
	       ", before the child's open finished %" PRIu64 "\n",
	       P.intended, P.acknowledged, P.kills_compacting, P.unready_kills);
	printf("  reopen checks: %u (%" PRIu64 " key states compared), torn "
	       "log tails found by dskvs_verify: %" PRIu64
	       ", crash cycles: %u\n",
	       done, P.keys_checked, P.torn_tails, done);
	if (o->atomic_pct)
		printf("  counters (%u%% of writes, %u counters): increments "
		       "announced %" PRIu64 ", acknowledged %" PRIu64
		       ", found applied after the kills %" PRIu64
		       "; most announced but unacknowledged in one cycle "
		       "%" PRIu64 "\n",
		       o->atomic_pct, NCTR, P.ctr_tot_intended, P.ctr_tot_acked,
		       P.ctr_tot_applied, P.ctr_slack_max);
	if (o->atomic_pct)
		printf("  batches (bo<w>, all or none): announced %" PRIu64
		       ", acknowledged %" PRIu64 ", collections checked after "
		       "kills %" PRIu64 ", holding an unacknowledged later "
		       "batch %" PRIu64 "\n",
		       P.bat_intended, P.bat_acked, P.bat_checks,
		       P.bat_later_found);
	report_summary(stdout);
	for (uint32_t k = 0; k < P.ks.owned; k++)
		free(P.hist[k].h);
	for (unsigned int t = 0; t < o->writers; t++) {
		free(P.intent[t].r);
		free(P.bat_later[t].r);
	}
	free(P.bat_b0);
	free(P.bat_ha);
	free(P.bat_later);
	free(P.hist);
	free(P.intent);
	free(P.acked);
	free(P.m);
	free(P.buf);
	keyspace_free(&P.ks);
	unlink(model);
	return violations_total() ? 1 : 0;
}
