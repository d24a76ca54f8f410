/*
 * The queue between writers and the janitor: a bounded MPSC ck_ring of
 * tagged record pointers, ring position to sequence number, the durable
 * count and its waiters, the sticky error, and the wakeups both ways.
 *
 * DESIGN
 * ------
 * Producers (writers) reserve a slot and commit it, with ck_ring's MPSC
 * protocol (reimplemented here, ring_claim and commit, with __atomic
 * operations), while they hold the writer lock of the record's collection,
 * so each record learns its ticket (its ring position), from which its
 * sequence number follows: seq = seq_base + pos + 1. Beside each slot the
 * producer leaves its record's collection name (ring_name), which the
 * consumer takes along before it frees the slot. Commits happen in ticket
 * order, so what the consumer can see is always a prefix of the positions
 * handed out, and the log order of every key equals the order in which its
 * writes were applied in memory. There is one consumer, the janitor.
 *
 * Waking. The consumer sleeps on wake_cv when the ring is empty, after
 * raising `consumer_sleeping`. A producer, after committing, issues a full
 * fence and reads the flag; it takes `mu` and signals only when it is set.
 * The consumer re-checks the ring under `mu` after raising the flag: either
 * the producer sees the flag or the consumer sees the record (store ->
 * fence -> load on both sides), so no wakeup is lost and a busy consumer
 * costs producers no system call. Producers that find the ring full wait on
 * space_cv the same way, with `space_waiters` as the flag the consumer
 * reads after dequeuing.
 *
 * Durability. `durable` counts records known durable; the consumer raises
 * it (release) after the fdatasync that covered them returned, then wakes
 * waiters the same way (durable_waiters). The sticky error: once set, only
 * a successful rewrite clears it (dskvs__queue_clear_error).
 */
#include "queue.h"
#include "format.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static void notify_efd(struct dskvs__queue *q)
{
	int fd = __atomic_load_n(&q->efd, __ATOMIC_ACQUIRE);
	if (fd >= 0) {
		uint64_t one = 1;
		ssize_t r = write(fd, &one, sizeof(one));
		(void)r; /* EAGAIN: the counter is already non-zero */
	}
}

void dskvs__queue_set_error(struct dskvs__queue *q, int code, int errnum,
                            const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&q->mu);
	if (q->err == 0) {
		snprintf(q->err_detail, sizeof(q->err_detail), "%s", buf);
		q->err_errno = errnum;
		__atomic_store_n(&q->err, code, __ATOMIC_SEQ_CST);
	}
	pthread_cond_broadcast(&q->durable_cv);
	pthread_mutex_unlock(&q->mu);
	dskvs__diag(q->diag, DSKVS_LOG_ERROR, "%s", buf);
	notify_efd(q);
}

/* ---- positions and sequence numbers ------------------------------------- */

/* Widen a 32-bit ring counter to a 64-bit position. `base` must be a
 * position <= the counter's and less than 2^32 behind it: dequeued qualifies,
 * since the janitor can never have dequeued past a committed or reserved
 * slot and it lags the ring's consumer by at most one batch. */
static inline uint64_t widen(uint64_t base, unsigned int ctr)
{
	return base + (uint32_t)(ctr - (uint32_t)base);
}

uint64_t dskvs__queue_committed_pos(struct dskvs__queue *q)
{
	return widen(__atomic_load_n(&q->dequeued, __ATOMIC_ACQUIRE),
	             ck_pr_load_uint(&q->ring.p_tail));
}

uint64_t dskvs__queue_committed_seq(struct dskvs__queue *q)
{
	uint64_t base = __atomic_load_n(&q->dequeued, __ATOMIC_ACQUIRE);
	unsigned int tail = ck_pr_load_uint(&q->ring.p_tail);
	return q->seq_base + widen(base, tail);
}

bool dskvs__queue_empty(struct dskvs__queue *q)
{
	return ck_pr_load_uint(&q->ring.p_tail) ==
	       ck_pr_load_uint(&q->ring.c_head);
}

static void kick(struct dskvs__queue *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&q->consumer_sleeping, __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&q->mu);
		pthread_cond_signal(&q->wake_cv);
		pthread_mutex_unlock(&q->mu);
	}
}

/*
 * ck_ring_enqueue_commit_mpsc, with one change: producers publish in ticket
 * order, so a producer waits for its predecessor; ck_ring spins with `pause`
 * for as long as it takes. When there are more runnable threads than cores
 * and the predecessor was preempted between reserve and commit, every later
 * producer would spin away a whole time slice (a convoy we measured at ~100
 * writes/s on 2 cores under ASan). So spin briefly, then yield the CPU. The
 * protocol on p_tail is ck_ring's own: wait until p_tail == ticket, store
 * fence, p_tail = ticket + n (n slots of a batch of writes at once).
 */
static inline void commit(struct dskvs__queue *q, unsigned int ticket,
                          unsigned int n)
{
	unsigned spins = 0;
	while (__atomic_load_n(&q->ring.p_tail, __ATOMIC_ACQUIRE) != ticket) {
		if (++spins < 128)
			ck_pr_stall();
		else
			sched_yield();
	}
	/* ck_ring: store fence, p_tail = ticket + n. A release store, so
	 * that ThreadSanitizer sees the slots and their names published
	 * (ck_pr's stores are inline assembly it cannot see). */
	__atomic_store_n(&q->ring.p_tail, ticket + n, __ATOMIC_RELEASE);
	DSKVS_HOOK(DSKVS__HOOK_PUBLISH, q);
}

/*
 * Claim n consecutive slots: ck_ring's MPSC reserve (a CAS on p_head) for
 * n slots instead of one, sleeping while fewer than n are free. Returns
 * the first ticket. c_head is read with acquire: the consumer read the
 * slots it freed (and their names) before its release store of c_head,
 * so a producer's write into a reused slot comes after those reads.
 */
static unsigned int ring_claim(struct dskvs__queue *q, unsigned int n)
{
	unsigned int producer = ck_pr_load_uint(&q->ring.p_head);
	for (;;) {
		unsigned int consumer =
		    __atomic_load_n(&q->ring.c_head, __ATOMIC_ACQUIRE);
		if (producer - consumer + n <= q->ring.mask) {
			if (ck_pr_cas_uint_value(&q->ring.p_head, producer,
			                         producer + n, &producer))
				return producer;
			continue;
		}
		/* Not n free: sleep until the consumer makes room. */
		pthread_mutex_lock(&q->mu);
		__atomic_add_fetch(&q->space_waiters, 1, __ATOMIC_SEQ_CST);
		while (ck_pr_load_uint(&q->ring.p_head) -
		           ck_pr_load_uint(&q->ring.c_head) + n >
		       q->ring.mask)
			pthread_cond_wait(&q->space_cv, &q->mu);
		__atomic_sub_fetch(&q->space_waiters, 1, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&q->mu);
		producer = ck_pr_load_uint(&q->ring.p_head);
	}
}

uint64_t dskvs__queue_reserve(struct dskvs__queue *q, struct dskvs__slot *sl)
{
	sl->ticket = ring_claim(q, 1);
	sl->slot = &q->ring_buf[sl->ticket & q->ring.mask].value;
	return q->seq_base +
	       widen(__atomic_load_n(&q->dequeued, __ATOMIC_ACQUIRE),
	             sl->ticket) +
	       1;
}

void dskvs__queue_commit(struct dskvs__queue *q, struct dskvs__slot *sl,
                         const struct dskvs__name *coll, struct dskvs__blk *b,
                         unsigned op)
{
	if (op == DSKVS_OP_NOP) {
		b = NULL;
		coll = NULL;
	} else {
		__atomic_add_fetch(&q->pending_bytes,
		                   dskvs__rec_size(dskvs__op_klen(coll, b, op),
		                                   dskvs__op_vlen(b, op)),
		                   __ATOMIC_RELAXED);
	}
	q->ring_name[sl->ticket & q->ring.mask] = coll;
	*sl->slot = dskvs__tag(b, op);
	commit(q, sl->ticket, 1);
	kick(q);
}

/*
 * n consecutive slots at once (ring_claim). The consumer reads a slot only
 * once p_tail has passed it, and commit_n moves p_tail past all n at once,
 * so it sees the whole batch of writes or none of it.
 */
uint64_t dskvs__queue_reserve_n(struct dskvs__queue *q, struct dskvs__slots *sl,
                                unsigned int n)
{
	sl->ticket = ring_claim(q, n);
	sl->n = n;
	return q->seq_base +
	       widen(__atomic_load_n(&q->dequeued, __ATOMIC_ACQUIRE),
	             sl->ticket) +
	       1;
}

void dskvs__queue_slot_set(struct dskvs__queue *q,
                           const struct dskvs__slots *sl, unsigned int i,
                           const struct dskvs__name *coll, struct dskvs__blk *b,
                           unsigned op)
{
	unsigned code = op & DSKVS_OP_MASK;
	if (code == DSKVS_OP_NOP) {
		b = NULL;
		coll = NULL;
	} else {
		__atomic_add_fetch(
		    &q->pending_bytes,
		    dskvs__rec_size(dskvs__op_klen(coll, b, code),
		                    dskvs__op_vlen(b, code)),
		    __ATOMIC_RELAXED);
	}
	unsigned int at = (sl->ticket + i) & q->ring.mask;
	q->ring_name[at] = coll;
	q->ring_buf[at].value = dskvs__tag(b, op);
}

void dskvs__queue_commit_n(struct dskvs__queue *q,
                           const struct dskvs__slots *sl)
{
	commit(q, sl->ticket, sl->n);
	kick(q);
}

uint64_t dskvs__queue_enqueue(struct dskvs__queue *q,
                              const struct dskvs__name *coll,
                              struct dskvs__blk *b, unsigned op)
{
	struct dskvs__slot sl;
	DSKVS_HOOK(DSKVS__HOOK_ENQUEUE,
	           (&(struct dskvs__rec_ref){ dskvs__tag(b, op), coll }));
	uint64_t seq = dskvs__queue_reserve(q, &sl);

	/* A block records the write that created it. Only for puts: a
	 * delete's block is the removed entry, whose seq is its value's
	 * version and stays as it is (a compaction that gathered it earlier
	 * may be writing it out right now). A put that readers may already
	 * see should have used reserve/commit, so that seq is set before
	 * publication (see the declaration). */
	if (op == DSKVS_OP_PUT)
		b->seq = seq;
	dskvs__queue_commit(q, &sl, coll, b, op);
	return seq;
}

int dskvs__queue_wait_seq(struct dskvs__queue *q, uint64_t seq, int timeout_ms)
{
	struct timespec deadline;
	uint64_t target = seq > q->seq_base ? seq - q->seq_base : 0;
	int rc = DSKVS_OK;

	if (DSKVS_LIKELY(__atomic_load_n(&q->durable, __ATOMIC_ACQUIRE) >=
	                 target))
		return DSKVS_OK;
	if (timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&q->mu);
	__atomic_add_fetch(&q->durable_waiters, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&q->durable, __ATOMIC_ACQUIRE) < target) {
		if (q->err) {
			rc = q->err;
			dskvs__fail(rc, "not durable: %s", q->err_detail);
			break;
		}
		if (timeout_ms == 0) {
			rc = DSKVS_ETIMEDOUT;
			break;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&q->durable_cv, &q->mu);
		} else if (pthread_cond_timedwait(&q->durable_cv, &q->mu,
		                                  &deadline) == ETIMEDOUT &&
		           __atomic_load_n(&q->durable, __ATOMIC_ACQUIRE) <
		               target) {
			rc = DSKVS_ETIMEDOUT;
			break;
		}
	}
	__atomic_sub_fetch(&q->durable_waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&q->mu);
	if (rc == DSKVS_ETIMEDOUT)
		dskvs__fail(rc, "sequence %llu not durable in %d ms",
		            (unsigned long long)seq, timeout_ms);
	return rc;
}

void dskvs__queue_publish_durable(struct dskvs__queue *q, uint64_t count)
{
	__atomic_store_n(&q->durable, count, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&q->durable_waiters, __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&q->mu);
		pthread_cond_broadcast(&q->durable_cv);
		pthread_mutex_unlock(&q->mu);
	}
	notify_efd(q);
}

/*
 * ck_ring's single-consumer dequeue (_ck_ring_dequeue_sc), taking each
 * slot's name along, and moving c_head once for the whole batch: a slot
 * is the producers' again once c_head passes it, so both it and its name
 * are read before that store, which is a release (ck_ring: store fence).
 * p_tail is read with acquire (ck_ring: a load fence), pairing with the
 * commit's release.
 */
size_t dskvs__queue_drain(struct dskvs__queue *q, struct dskvs__rec_ref *batch,
                          size_t max_records, size_t max_bytes, uint64_t limit)
{
	size_t n = 0, bytes = 0;
	size_t max = limit ? (size_t)limit : max_records;
	const unsigned int mask = q->ring.mask;
	unsigned int consumer = ck_pr_load_uint(&q->ring.c_head);
	unsigned int producer =
	    __atomic_load_n(&q->ring.p_tail, __ATOMIC_ACQUIRE);
	bool in_group = false;

	/* Past the bounds while inside a batch of writes: its records were
	 * committed at once, so the rest are there, and at most max_records
	 * - 1 of them (api.c's limit). */
	while (in_group || (n < max && bytes < max_bytes)) {
		if (consumer == producer) {
			producer =
			    __atomic_load_n(&q->ring.p_tail, __ATOMIC_ACQUIRE);
			if (consumer == producer)
				break;
		}
		unsigned int at = consumer++ & mask;
		void *p = q->ring_buf[at].value;
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(p, &op);
		batch[n].p = p;
		batch[n].name = q->ring_name[at];
		if (op != DSKVS_OP_NOP)
			bytes += dskvs__rec_size(
			    dskvs__op_klen(batch[n].name, b, op),
			    dskvs__op_vlen(b, op));
		n++;
		in_group = dskvs__tag_grp(p);
	}
	if (n) {
		__atomic_store_n(&q->ring.c_head, consumer, __ATOMIC_RELEASE);
		__atomic_store_n(&q->dequeued, q->dequeued + n,
		                 __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&q->space_waiters, __ATOMIC_RELAXED)) {
			pthread_mutex_lock(&q->mu);
			pthread_cond_broadcast(&q->space_cv);
			pthread_mutex_unlock(&q->mu);
		}
	}
	return n;
}

/* ---- set-up and the sticky error -------------------------------------- */

int dskvs__queue_init(struct dskvs__queue *q, unsigned int capacity,
                      const struct dskvs__diag *diag)
{
	pthread_condattr_t ca;
	q->diag = diag;
	q->efd = -1;
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->wake_cv, &ca);
	pthread_cond_init(&q->space_cv, &ca);
	pthread_cond_init(&q->durable_cv, &ca);
	pthread_condattr_destroy(&ca);
	q->ring_cap = 16;
	while (q->ring_cap < capacity)
		q->ring_cap <<= 1;
	q->ring_buf = aligned_alloc(64, q->ring_cap * sizeof(*q->ring_buf));
	q->ring_name = calloc(q->ring_cap, sizeof(*q->ring_name));
	if (q->ring_buf == NULL || q->ring_name == NULL)
		return DSKVS_ENOMEM;
	ck_ring_init(&q->ring, q->ring_cap);
	return DSKVS_OK;
}

void dskvs__queue_destroy(struct dskvs__queue *q)
{
	if (q->efd >= 0)
		close(q->efd);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->wake_cv);
	pthread_cond_destroy(&q->space_cv);
	pthread_cond_destroy(&q->durable_cv);
	free(q->ring_buf);
	q->ring_buf = NULL;
	free(q->ring_name);
	q->ring_name = NULL;
}

int dskvs__queue_refuse(struct dskvs__queue *q, const char *what)
{
	int err = __atomic_load_n(&q->err, __ATOMIC_ACQUIRE);
	if (DSKVS_LIKELY(err == 0))
		return DSKVS_OK;
	pthread_mutex_lock(&q->mu);
	dskvs__fail(err, "%s: %s", what, q->err_detail);
	pthread_mutex_unlock(&q->mu);
	return err;
}

void dskvs__queue_clear_error(struct dskvs__queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->err = 0;
	q->err_errno = 0;
	q->err_detail[0] = '\0';
	pthread_mutex_unlock(&q->mu);
}

void dskvs__queue_error(struct dskvs__queue *q, int *code, int *errnum)
{
	pthread_mutex_lock(&q->mu);
	*code = q->err;
	*errnum = q->err_errno;
	pthread_mutex_unlock(&q->mu);
}

int dskvs__queue_fd(struct dskvs__queue *q)
{
	pthread_mutex_lock(&q->mu);
	if (q->efd < 0) {
		int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			pthread_mutex_unlock(&q->mu);
			return dskvs__fail(DSKVS_ENOMEM, "eventfd: %s",
			                   strerror(e));
		}
		__atomic_store_n(&q->efd, fd, __ATOMIC_RELEASE);
	}
	int fd = q->efd;
	pthread_mutex_unlock(&q->mu);
	return fd;
}

bool dskvs__queue_sleep(struct dskvs__queue *q, const int *more,
                        uint64_t timeout_ns)
{
	struct timespec deadline;
	if (timeout_ns) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		uint64_t ns = (uint64_t)deadline.tv_nsec + timeout_ns;
		deadline.tv_sec += (time_t)(ns / 1000000000u);
		deadline.tv_nsec = (long)(ns % 1000000000u);
	}
	pthread_mutex_lock(&q->mu);
	__atomic_store_n(&q->consumer_sleeping, 1, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	while (dskvs__queue_empty(q) && !q->closing &&
	       !__atomic_load_n(more, __ATOMIC_ACQUIRE)) {
		if (!timeout_ns)
			pthread_cond_wait(&q->wake_cv, &q->mu);
		else if (pthread_cond_timedwait(&q->wake_cv, &q->mu,
		                                &deadline) == ETIMEDOUT)
			break;
	}
	__atomic_store_n(&q->consumer_sleeping, 0, __ATOMIC_RELAXED);
	bool done = q->closing && dskvs__queue_empty(q) &&
	            !__atomic_load_n(more, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&q->mu);
	return done;
}

void dskvs__queue_close(struct dskvs__queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closing = true;
	pthread_cond_signal(&q->wake_cv);
	pthread_mutex_unlock(&q->mu);
}
