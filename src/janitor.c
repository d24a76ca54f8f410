/*
 * The janitor: one thread per store that persists every write.
 *
 * DESIGN
 * ------
 * Queue. Writers put a tagged pointer (block | op) into a bounded ck_ring
 * (MPSC) while they hold the writer lock of the key's collection. They use
 * ck_ring's reserve/commit pair so each record learns its ticket (its ring
 * position), from which its sequence number follows: seq = seq_base + pos +
 * 1. Commits happen in ticket order, so the records the janitor can see are
 * always a prefix of the positions handed out, and the log order of every
 * key equals the order in which its writes were applied in memory.
 *
 * Batches. The janitor dequeues up to batch_max_records records or
 * batch_max_bytes bytes (a single larger record still goes whole), writes
 * them with pwritev at the log's tail and calls fdatasync once: group commit.
 * Records that arrive during an fdatasync form the next batch, so batches
 * grow with the load. After fdatasync returns, `durable` advances (release)
 * and waiters are told. The bound on a batch bounds how long a sync waiter
 * or a compaction request waits behind the batch in progress.
 *
 * Waking. The janitor sleeps on jcv when the ring is empty, after raising
 * `jsleeping`. A writer, after committing, issues a full fence and reads
 * `jsleeping`; it takes jmu and signals only when it is set. The janitor
 * re-checks the ring under jmu after raising the flag: either the writer sees
 * the flag or the janitor sees the record (store -> fence -> load on both
 * sides), so no wakeup is lost and a busy janitor costs writers no system
 * call. Writers that find the ring full wait on space_cv the same way, with
 * `space_waiters` as the flag the janitor reads after dequeuing.
 *
 * Errors. A failed pwritev or fdatasync sets the sticky error. The janitor
 * never retries fdatasync on that file (the kernel may have dropped the
 * dirty pages, the PostgreSQL "fsyncgate" lesson) and never syncs it again:
 * it keeps draining the queue, discarding records, so writers never block;
 * writers refuse new writes; dskvs_sync and close report DSKVS_EIO;
 * `durable` stops. Only dskvs_rewrite() clears it, by writing the live set
 * from memory to a fresh file.
 *
 * Compaction. See do_compact() below.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Values at most this long are copied into the batch buffer; longer ones
 * are written from their block through their own iovec. */
#define COPY_MAX 4096

uint64_t dskvs__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void dskvs__log(dskvs *s, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	if (s->opts.log_fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->opts.log_fn(s->opts.log_arg, level, buf);
}

static void notify_efd(dskvs *s)
{
	int fd = __atomic_load_n(&s->efd, __ATOMIC_ACQUIRE);
	if (fd >= 0) {
		uint64_t one = 1;
		ssize_t r = write(fd, &one, sizeof(one));
		(void)r; /* EAGAIN: the counter is already non-zero */
	}
}

void dskvs__set_error(dskvs *s, int code, int errnum, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&s->jmu);
	if (s->err == 0) {
		snprintf(s->err_detail, sizeof(s->err_detail), "%s", buf);
		s->err_errno = errnum;
		__atomic_store_n(&s->err, code, __ATOMIC_SEQ_CST);
	}
	pthread_cond_broadcast(&s->durable_cv);
	pthread_mutex_unlock(&s->jmu);
	dskvs__log(s, DSKVS_LOG_ERROR, "%s", buf);
	notify_efd(s);
}

/* ---- positions and sequence numbers ------------------------------------- */

/* Widen a 32-bit ring counter to a 64-bit position. `base` must be a
 * position <= the counter's and less than 2^32 behind it: jdone qualifies,
 * since the janitor can never have dequeued past a committed or reserved
 * slot and it lags the ring's consumer by at most one batch. */
static inline uint64_t widen(uint64_t base, unsigned int ctr)
{
	return base + (uint32_t)(ctr - (uint32_t)base);
}

uint64_t dskvs__committed_seq(dskvs *s)
{
	uint64_t base = __atomic_load_n(&s->jdone, __ATOMIC_ACQUIRE);
	unsigned int tail = ck_pr_load_uint(&s->ring.p_tail);
	return s->seq_base + widen(base, tail);
}

static inline bool ring_empty(dskvs *s)
{
	return ck_pr_load_uint(&s->ring.p_tail) ==
	       ck_pr_load_uint(&s->ring.c_head);
}

static inline bool ring_full(dskvs *s)
{
	unsigned int head = ck_pr_load_uint(&s->ring.p_head);
	return head - ck_pr_load_uint(&s->ring.c_head) >= s->ring.mask;
}

static void wait_space(dskvs *s)
{
	pthread_mutex_lock(&s->jmu);
	__atomic_add_fetch(&s->space_waiters, 1, __ATOMIC_SEQ_CST);
	while (ring_full(s))
		pthread_cond_wait(&s->space_cv, &s->jmu);
	__atomic_sub_fetch(&s->space_waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&s->jmu);
}

static void kick(dskvs *s)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->jsleeping, __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&s->jmu);
		pthread_cond_signal(&s->jcv);
		pthread_mutex_unlock(&s->jmu);
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
 * fence, p_tail = ticket + 1.
 */
static inline void commit(dskvs *s, unsigned int ticket)
{
	unsigned spins = 0;
	while (ck_pr_load_uint(&s->ring.p_tail) != ticket) {
		if (++spins < 128)
			ck_pr_stall();
		else
			sched_yield();
	}
	ck_pr_fence_store();
	ck_pr_store_uint(&s->ring.p_tail, ticket + 1);
}

uint64_t dskvs__enqueue(dskvs *s, struct dskvs__blk *b, unsigned op)
{
	unsigned int ticket;
	void **slot;
	uint64_t seq;

	while ((slot = ck_ring_enqueue_reserve_mpsc(&s->ring, s->ring_buf,
	                                            &ticket)) == NULL)
		wait_space(s);
	seq = s->seq_base +
	      widen(__atomic_load_n(&s->jdone, __ATOMIC_ACQUIRE), ticket) + 1;
	/* A block records the write that created it. Read by compaction
	 * under the collection lock we hold. Only for puts: a delete's block
	 * is the removed entry, which a compaction that gathered it earlier
	 * may be writing out with its own sequence number right now. */
	if (op == DSKVS_OP_PUT)
		b->seq = seq;
	__atomic_add_fetch(&s->pending_bytes,
	                   dskvs__rec_size(dskvs__blk_klen(b),
	                                   op == DSKVS_OP_PUT ? b->vlen : 0),
	                   __ATOMIC_RELAXED);
	*slot = dskvs__tag(b, op);
	commit(s, ticket);
	kick(s);
	return seq;
}

int dskvs__wait_seq(dskvs *s, uint64_t seq, int timeout_ms)
{
	struct timespec deadline;
	uint64_t target = seq > s->seq_base ? seq - s->seq_base : 0;
	int rc = DSKVS_OK;

	if (DSKVS_LIKELY(__atomic_load_n(&s->durable, __ATOMIC_ACQUIRE) >=
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
	pthread_mutex_lock(&s->jmu);
	__atomic_add_fetch(&s->durable_waiters, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&s->durable, __ATOMIC_ACQUIRE) < target) {
		if (s->err) {
			rc = s->err;
			dskvs__fail(rc, "not durable: %s", s->err_detail);
			break;
		}
		if (timeout_ms == 0) {
			rc = DSKVS_ETIMEDOUT;
			break;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&s->durable_cv, &s->jmu);
		} else if (pthread_cond_timedwait(&s->durable_cv, &s->jmu,
		                                  &deadline) == ETIMEDOUT &&
		           __atomic_load_n(&s->durable, __ATOMIC_ACQUIRE) <
		               target) {
			rc = DSKVS_ETIMEDOUT;
			break;
		}
	}
	__atomic_sub_fetch(&s->durable_waiters, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&s->jmu);
	if (rc == DSKVS_ETIMEDOUT)
		dskvs__fail(rc, "sequence %llu not durable in %d ms",
		            (unsigned long long)seq, timeout_ms);
	return rc;
}

static void publish_durable(dskvs *s, uint64_t count)
{
	__atomic_store_n(&s->durable, count, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->durable_waiters, __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&s->jmu);
		pthread_cond_broadcast(&s->durable_cv);
		pthread_mutex_unlock(&s->jmu);
	}
	notify_efd(s);
}

/* ---- serialising records --------------------------------------------------
 */

static int ensure_scratch(dskvs *s, size_t bytes, size_t iovs)
{
	if (bytes > s->scratch_cap) {
		size_t cap = s->scratch_cap ? s->scratch_cap : 65536;
		while (cap < bytes)
			cap *= 2;
		char *p = realloc(s->scratch, cap);
		if (p == NULL)
			return -ENOMEM;
		s->scratch = p;
		s->scratch_cap = cap;
	}
	if (iovs > s->iov_cap) {
		size_t cap = s->iov_cap ? s->iov_cap : 64;
		while (cap < iovs)
			cap *= 2;
		struct iovec *p = realloc(s->iov, cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		s->iov = p;
		s->iov_cap = cap;
	}
	return 0;
}

static inline size_t rec_vlen(struct dskvs__blk *b, unsigned op)
{
	return op == DSKVS_OP_PUT ? b->vlen : 0;
}

/*
 * Write n records (tagged pointers) at `off` of `fd` with as few pwritev
 * calls as IOV_MAX allows. Record i gets sequence number seqs[i] if seqs is
 * given, else first_seq + i; headers are checksummed with the target file's
 * salt. Returns 0 or -errno; *bytes receives the bytes written.
 */
static int write_records(dskvs *s, int fd, uint64_t off, void **recs, size_t n,
                         uint64_t first_seq, const uint64_t *seqs,
                         uint32_t salt, uint32_t batch, bool end,
                         uint64_t *bytes)
{
	size_t copy = 0, iovs = 1, total = 0, last = n;
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i], &op);
		if (op == DSKVS_OP_NOP)
			continue;
		size_t klen = dskvs__blk_klen(b), vlen = rec_vlen(b, op);
		copy += DSKVS_REC_HDR + klen;
		if (vlen <= COPY_MAX)
			copy += vlen;
		else
			iovs += 2;
		total += dskvs__rec_size(klen, vlen);
		last = i;
	}
	*bytes = total;
	if (total == 0)
		return 0;
	int rc = ensure_scratch(s, copy, iovs);
	if (rc)
		return rc;

	char *p = s->scratch, *seg = s->scratch;
	int cnt = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i], &op);
		if (op == DSKVS_OP_NOP)
			continue;
		size_t klen = dskvs__blk_klen(b), vlen = rec_vlen(b, op);
		const char *val = dskvs__blk_val(b);
		uint64_t seq = seqs ? seqs[i] : first_seq + i;
		unsigned flags = (end && i == last) ? DSKVS_REC_END : 0;
		dskvs__rec_hdr_encode((unsigned char *)p, salt, op, flags,
		                      batch, b->key, klen, val, vlen, seq);
		p += DSKVS_REC_HDR;
		memcpy(p, b->key, klen);
		p += klen;
		if (vlen <= COPY_MAX) {
			memcpy(p, val, vlen);
			p += vlen;
		} else {
			s->iov[cnt].iov_base = seg;
			s->iov[cnt++].iov_len = (size_t)(p - seg);
			s->iov[cnt].iov_base = (void *)val;
			s->iov[cnt++].iov_len = vlen;
			seg = p;
		}
	}
	if (p > seg) {
		s->iov[cnt].iov_base = seg;
		s->iov[cnt++].iov_len = (size_t)(p - seg);
	}
	return dskvs__write_all(fd, s->iov, cnt, (off_t)off);
}

static void release_records(void **recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i], &op);
		if (op != DSKVS_OP_NOP)
			dskvs__blk_unref(b);
	}
}

static uint64_t records_bytes(void **recs, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i], &op);
		if (op != DSKVS_OP_NOP)
			sum += dskvs__rec_size(dskvs__blk_klen(b),
			                       rec_vlen(b, op));
	}
	return sum;
}

/* ---- batches --------------------------------------------------------------
 */

/* Dequeue up to the batch limits, or exactly `limit` records if non-zero. */
static size_t drain(dskvs *s, uint64_t limit)
{
	size_t n = 0, bytes = 0;
	size_t max = limit ? (size_t)limit : s->opts.batch_max_records;
	void *p;

	while (n < max && (limit || bytes < s->opts.batch_max_bytes) &&
	       ck_ring_dequeue_mpsc(&s->ring, s->ring_buf, &p)) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(p, &op);
		s->batch[n++] = p;
		if (op != DSKVS_OP_NOP)
			bytes += dskvs__rec_size(dskvs__blk_klen(b),
			                         rec_vlen(b, op));
	}
	if (n) {
		__atomic_store_n(&s->jdone, s->jdone + n, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->space_waiters, __ATOMIC_RELAXED)) {
			pthread_mutex_lock(&s->jmu);
			pthread_cond_broadcast(&s->space_cv);
			pthread_mutex_unlock(&s->jmu);
		}
	}
	return n;
}

static void record_fsync(dskvs *s, uint64_t ns, size_t n, uint64_t bytes)
{
	pthread_mutex_lock(&s->stats_mu);
	s->hist.ns[s->hist.n++ % 1024] = ns;
	s->st_batches++;
	s->st_records += n;
	s->st_bytes += bytes;
	s->st_last_batch_records = n;
	s->st_last_batch_bytes = bytes;
	pthread_mutex_unlock(&s->stats_mu);
}

/*
 * A mark: a record without data that opens batch s->batch_no at the log's
 * end (format.c). It tells recovery that every byte before it had been
 * synced, so it is written only right after a successful fdatasync of the
 * log, and never to a format-1 log. Janitor only. Returns 0 or -errno.
 */
static int write_mark(dskvs *s)
{
	unsigned char hdr[DSKVS_REC_HDR];
	struct iovec iov = { hdr, sizeof(hdr) };
	dskvs__rec_hdr_encode(hdr, s->log_salt, DSKVS_REC_MARK, 0, s->batch_no,
	                      NULL, 0, NULL, 0, s->seq_base + s->jdone);
	int rc = dskvs__write_all(s->logfd, &iov, 1, (off_t)s->log_size);
	if (rc == 0) {
		__atomic_store_n(&s->log_size, s->log_size + DSKVS_REC_HDR,
		                 __ATOMIC_RELAXED);
		s->tail_proven = true;
		s->mark_unsynced = true;
		pthread_mutex_lock(&s->stats_mu);
		s->st_bytes += DSKVS_REC_HDR;
		pthread_mutex_unlock(&s->stats_mu);
	}
	return rc;
}

/* Write and sync one batch of n records dequeued by drain(). The first has
 * position jdone - n. Releases the records unless `keep`.
 *
 * When nothing else is queued, the batch is followed by a mark before the
 * waiters are told (one 32-byte pwrite, no fdatasync): a crash after that
 * leaves a log that proves the batch was synced, so damage to it is
 * refused rather than cut as a torn tail. Under load the next batch is that
 * proof and no mark is written. */
static void process_batch(dskvs *s, size_t n, bool keep)
{
	uint64_t first = s->seq_base + s->jdone - n + 1;
	uint64_t bytes = records_bytes(s->batch, n);
	bool published = false;

	if (__atomic_load_n(&s->err, __ATOMIC_ACQUIRE) == 0) {
		uint64_t written;
		int rc = write_records(s, s->logfd, s->log_size, s->batch, n,
		                       first, NULL, s->log_salt, s->batch_no,
		                       true, &written);
		if (rc != 0) {
			dskvs__set_error(s, DSKVS_EIO, -rc,
			                 DSKVS_LOG_NAME
			                 ": write of %llu bytes at offset %llu "
			                 "failed: %s",
			                 (unsigned long long)bytes,
			                 (unsigned long long)s->log_size,
			                 strerror(-rc));
		} else {
			uint64_t t0 = dskvs__now_ns();
			if (dskvs__io.fdatasync(s->logfd) != 0) {
				int e = errno;
				dskvs__set_error(s, DSKVS_EIO, e,
				                 DSKVS_LOG_NAME
				                 ": fdatasync failed: %s",
				                 strerror(e));
			} else {
				int mark_rc = 0;
				__atomic_store_n(&s->log_size,
				                 s->log_size + written,
				                 __ATOMIC_RELAXED);
				s->batch_no++;
				s->mark_unsynced = false;
				if (written)
					s->tail_proven = false;
				record_fsync(s, dskvs__now_ns() - t0, n,
				             written);
				if (!s->tail_proven && s->log_major >= 2 &&
				    ring_empty(s))
					mark_rc = write_mark(s);
				/* Not pending any more once durable: a caller
				 * woken by the publish must see both. */
				__atomic_sub_fetch(&s->pending_bytes, bytes,
				                   __ATOMIC_RELAXED);
				published = true;
				publish_durable(s, s->jdone);
				/* A failed mark loses no data (the batch is
				 * synced; the next batch overwrites whatever
				 * part of it was written, and proves the
				 * batch instead): not a sticky error. */
				if (mark_rc != 0)
					dskvs__log(
					    s, DSKVS_LOG_WARN,
					    DSKVS_LOG_NAME
					    ": write of a batch mark at "
					    "offset %llu failed: %s",
					    (unsigned long long)s->log_size,
					    strerror(-mark_rc));
			}
		}
	}
	if (!published)
		__atomic_sub_fetch(&s->pending_bytes, bytes, __ATOMIC_RELAXED);
	if (!keep)
		release_records(s->batch, n);
	if (ring_empty(s))
		__atomic_store_n(&s->st_caught_up_ns, dskvs__now_ns(),
		                 __ATOMIC_RELAXED);
}

/* At close, once everything is written: leave a log whose end is proven
 * synced (a synced mark after the last batch), so that damage anywhere in
 * it is refused at the next open rather than taken for a torn tail. Costs
 * one fdatasync of the mark when the last batch already has one; two
 * fdatasyncs and a mark when the log ends unproven (nothing was written
 * since an open that found it so). A failure here loses nothing that was
 * reported durable, so it is logged, not made sticky. */
static void seal_tail(dskvs *s)
{
	const char *what = NULL;
	int e = 0;

	if (s->log_major < 2 || __atomic_load_n(&s->err, __ATOMIC_ACQUIRE))
		return;
	if (!s->tail_proven) {
		/* What the mark claims must be true first. */
		if (dskvs__io.fdatasync(s->logfd) != 0) {
			e = errno;
			what = "fdatasync";
		} else if ((e = -write_mark(s)) != 0) {
			what = "write of the closing mark";
		}
	}
	if (what == NULL && s->mark_unsynced) {
		if (dskvs__io.fdatasync(s->logfd) != 0) {
			e = errno;
			what = "fdatasync of the closing mark";
		} else {
			s->mark_unsynced = false;
		}
	}
	if (what)
		dskvs__log(s, DSKVS_LOG_WARN,
		           DSKVS_LOG_NAME ": %s at close failed (no write is "
		                          "lost; the end of the log stays "
		                          "unproven): %s",
		           what, strerror(e));
}

/* ---- compaction ------------------------------------------------------------
 *
 * do_compact() rewrites the log with only the live set, in the janitor
 * thread:
 *
 *  1. Create dskvs.log.tmp with a file header (a new salt).
 *  2. Snapshot memory: every live block, gathered under its collection's
 *     lock with a reference taken. Writers are held up one collection at a
 *     time, for as long as it takes to copy that collection's pointers.
 *     While a lock is busy the janitor keeps the queue moving
 *     (snapshot_progress): those records go through the current log as
 *     ordinary batches and are kept for the new file.
 *  3. The snapshot's size is now known, so the new file is laid out as
 *     [header][snapshot][every record dequeued since the gather began]. The
 *     kept records are written after the snapshot's place first.
 *  4. The snapshot is written in chunks bounded like batches. Between two
 *     chunks the janitor writes and syncs one batch of the current log, as
 *     it would without a compaction, and appends the same records after the
 *     snapshot's place: a dskvs_sync issued during a compaction waits about
 *     one chunk and one fdatasync, never the whole snapshot. Each chunk's
 *     writeback is started at once and waited for one chunk later, so the
 *     final fdatasync has little left to do.
 *  5. The header is rewritten with the sealed length (everything written),
 *     the file is fdatasync'ed, renamed over dskvs.log, the directory is
 *     fsynced, and the janitor switches to it. What is still queued goes to
 *     the new file as its first batches.
 *
 * Why the result replays to the current state: every write whose record was
 * dequeued before the gather began is in memory before the gather saw its
 * collection; every later one is in the new file after the snapshot, in
 * queue order. An entry of the snapshot may be newer than some of those
 * records, which is why replay applies a record only when it is newer than
 * what the key holds (engine.c).
 *
 * Why a failure loses nothing: in a compaction (and a rewrite of a healthy
 * store) every record also went through the current log, and its durability
 * was published only after that log's fdatasync; the temporary file is just
 * dropped. If the current log fails meanwhile, the store is sticky and the
 * compaction gives up. In a rewrite after an I/O error the old file is never
 * written or synced again: records dequeued during the gather live only in
 * memory and the new file, and `durable` moves past them only once the new
 * file is in place; nothing is dequeued while the snapshot is written (writers
 * are refused meanwhile, so the queue holds at most the writes in flight when
 * the error struck).
 *
 * A crash before the rename leaves the old log, which holds every synced
 * write; a crash after it leaves the new one, whose sealed part was synced
 * whole.
 */

/* Records the janitor dequeued while gathering the snapshot: they go into
 * the new file after it. Janitor-private. */
struct held {
	void **recs;
	uint64_t *seqs;
	size_t n, cap;
	bool healthy; /* the store had no sticky error when it began */
};

/*
 * Called by dskvs__snapshot when a collection's lock is busy. Its holder may
 * be a writer waiting for room in a full queue, which only the janitor can
 * make: so keep the queue moving. On a healthy store the records go through
 * the current log as usual and are also kept for the new file; after an
 * I/O error the old file is never touched again and they are only kept.
 * Returns 0, or DSKVS_ENOMEM to give the compaction up.
 */
static int snapshot_progress(dskvs *s, void *arg)
{
	struct held *h = arg;
	size_t n = drain(s, 0);
	if (n == 0) {
		sched_yield();
		return 0;
	}
	if (h->n + n > h->cap) {
		size_t cap = (h->n + n) * 2;
		void **r = realloc(h->recs, cap * sizeof(*r));
		if (r)
			h->recs = r;
		uint64_t *q = r ? realloc(h->seqs, cap * sizeof(*q)) : NULL;
		if (q)
			h->seqs = q;
		if (r == NULL || q == NULL) {
			/* Cannot keep them for the new file: write them to
			 * the current log as usual and give up. */
			if (h->healthy) {
				process_batch(s, n, false);
			} else {
				__atomic_sub_fetch(&s->pending_bytes,
				                   records_bytes(s->batch, n),
				                   __ATOMIC_RELAXED);
				release_records(s->batch, n);
			}
			return DSKVS_ENOMEM;
		}
		h->cap = cap;
	}
	uint64_t first = s->seq_base + s->jdone - n + 1;
	if (h->healthy)
		process_batch(s, n, true);
	else
		__atomic_sub_fetch(&s->pending_bytes,
		                   records_bytes(s->batch, n),
		                   __ATOMIC_RELAXED);
	for (size_t i = 0; i < n; i++) {
		h->recs[h->n] = s->batch[i];
		h->seqs[h->n++] = first + i;
	}
	return 0;
}

/* Start the writeback of [off, off + len) of fd and wait for that of the
 * previous range: at most two chunks of the new file are ever dirty, so
 * its final fdatasync is short. Advisory: errors surface at fdatasync. */
static void flush_behind(int fd, uint64_t *prev_off, uint64_t *prev_len,
                         uint64_t off, uint64_t len)
{
	if (*prev_len)
		(void)sync_file_range(
		    fd, (off64_t)*prev_off, (off64_t)*prev_len,
		    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
		        SYNC_FILE_RANGE_WAIT_AFTER);
	(void)sync_file_range(fd, (off64_t)off, (off64_t)len,
	                      SYNC_FILE_RANGE_WRITE);
	*prev_off = off;
	*prev_len = len;
}

/* End of the chunk that starts at recs[i]: bounded like a batch, so the
 * scratch buffer stays at batch_max_bytes plus one record. */
static size_t chunk_end(dskvs *s, void **recs, size_t i, size_t n)
{
	size_t j = i, bytes = 0;
	while (j < n && j - i < s->opts.batch_max_records &&
	       bytes < s->opts.batch_max_bytes) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[j], &op);
		if (op != DSKVS_OP_NOP)
			bytes += dskvs__rec_size(dskvs__blk_klen(b),
			                         rec_vlen(b, op));
		j++;
	}
	return j;
}

/* One batch through the current log, its records also appended to the new
 * file at *tail. Returns 0 or -errno (-EIO: the current log failed). */
static int interleave_batch(dskvs *s, int fd, uint32_t salt, uint64_t *tail)
{
	if (ring_empty(s))
		return 0;
	size_t n = drain(s, 0);
	if (n == 0)
		return 0;
	uint64_t first = s->seq_base + s->jdone - n + 1, w = 0;
	process_batch(s, n, true);
	int e = __atomic_load_n(&s->err, __ATOMIC_ACQUIRE)
	            ? -EIO
	            : write_records(s, fd, *tail, s->batch, n, first, NULL,
	                            salt, 0, false, &w);
	release_records(s->batch, n);
	*tail += w;
	return e;
}

static int do_compact(dskvs *s, bool rewrite)
{
	uint64_t t0 = dskvs__now_ns(), snap_bytes = 0, tail, off, w, t_pos;
	uint64_t prev_off = 0, prev_len = 0;
	struct dskvs__blk **v = NULL;
	uint64_t *seqs = NULL;
	size_t n = 0, i = 0;
	int fd, e = 0;
	const char *what = "";
	bool healthy = __atomic_load_n(&s->err, __ATOMIC_ACQUIRE) == 0;
	uint32_t salt = dskvs__new_salt();

	if (!rewrite && !healthy)
		return DSKVS_EIO;
	fd = dskvs__log_create(s, DSKVS_LOG_TMP, salt);
	if (fd < 0)
		return DSKVS_EIO;

	struct held h = { .healthy = healthy };
	if (dskvs__snapshot(s, &v, &seqs, &n, snapshot_progress, &h) !=
	    DSKVS_OK) {
		e = -ENOMEM;
		what = "gathering the snapshot";
		goto abandon_held;
	}
	if (healthy && __atomic_load_n(&s->err, __ATOMIC_ACQUIRE)) {
		e = -EIO;
		what = "gathering the snapshot (the current log failed)";
		goto abandon_snap;
	}
	/* T: every block in the snapshot was written by a record before T
	 * (a write queues its record under the lock the gather took). */
	t_pos = widen(s->jdone, ck_pr_load_uint(&s->ring.p_tail));
	for (size_t k = 0; k < n; k++) {
		snap_bytes +=
		    dskvs__rec_size(dskvs__blk_klen(v[k]), v[k]->vlen);
		v[k] = dskvs__tag(v[k], DSKVS_OP_PUT);
	}
	tail = DSKVS_FILE_HDR + snap_bytes;
	for (size_t k = 0; k < h.n;) {
		size_t j = chunk_end(s, h.recs, k, h.n);
		e = write_records(s, fd, tail, h.recs + k, j - k, 0, h.seqs + k,
		                  salt, 0, false, &w);
		if (e) {
			what = "writing the records queued meanwhile";
			goto abandon_snap;
		}
		tail += w;
		k = j;
	}
	release_records(h.recs, h.n);
	free(h.recs);
	free(h.seqs);
	h = (struct held){ .healthy = healthy };

	for (off = DSKVS_FILE_HDR; i < n;) {
		size_t j = chunk_end(s, (void **)v, i, n);
		e = write_records(s, fd, off, (void **)(v + i), j - i, 0,
		                  seqs + i, salt, 0, false, &w);
		release_records((void **)(v + i), j - i);
		i = j;
		if (e) {
			what = "writing the snapshot";
			goto abandon_snap;
		}
		flush_behind(fd, &prev_off, &prev_len, off, w);
		off += w;
		if (healthy && (e = interleave_batch(s, fd, salt, &tail))) {
			what = e == -EIO ? "writing the current log"
			                 : "appending a batch";
			goto abandon_snap;
		}
	}
	free(v);
	free(seqs);
	v = NULL;
	seqs = NULL;
	/* The records before T go into the sealed part too: the snapshot may
	 * hold the block of any of them, so a record after the sealed part
	 * must come after T (format.c: sequence numbers rise after it). At
	 * most a ring's worth, in batches. */
	while (s->jdone < t_pos) {
		uint64_t left = t_pos - s->jdone;
		size_t m = drain(s, left < s->opts.batch_max_records
		                        ? left
		                        : s->opts.batch_max_records);
		uint64_t first = s->seq_base + s->jdone - m + 1;
		if (healthy)
			process_batch(s, m, true);
		else
			__atomic_sub_fetch(&s->pending_bytes,
			                   records_bytes(s->batch, m),
			                   __ATOMIC_RELAXED);
		e = healthy && __atomic_load_n(&s->err, __ATOMIC_ACQUIRE)
		        ? -EIO
		        : write_records(s, fd, tail, s->batch, m, first, NULL,
		                        salt, 0, false, &w);
		release_records(s->batch, m);
		if (e) {
			what = "appending the records queued meanwhile";
			goto abandon;
		}
		tail += w;
	}

	/* Seal: everything written so far is synced whole before the file
	 * becomes the log. */
	unsigned char hdr[DSKVS_FILE_HDR];
	struct iovec iov = { hdr, sizeof(hdr) };
	dskvs__file_hdr_encode(hdr, salt, tail);
	if ((e = dskvs__write_all(fd, &iov, 1, 0)) != 0) {
		what = "writing the new file's header";
		goto abandon;
	}
	if (dskvs__io.fdatasync(fd) != 0) {
		e = -errno;
		what = "fdatasync of the new file";
		goto abandon;
	}
	if (dskvs__io.renameat(s->dirfd, DSKVS_LOG_TMP, s->dirfd,
	                       DSKVS_LOG_NAME) != 0) {
		e = -errno;
		what = "rename over " DSKVS_LOG_NAME;
		goto abandon;
	}
	int dir_err = dskvs__io.fsync(s->dirfd) != 0 ? errno : 0;
	dskvs__io.close(s->logfd);
	s->logfd = fd;
	__atomic_store_n(&s->log_size, tail, __ATOMIC_RELAXED);
	s->log_major = DSKVS_FORMAT_MAJOR;
	s->log_salt = salt;
	s->batch_no = 1;
	s->tail_proven = true;
	s->mark_unsynced = false;
	if (dir_err) {
		/* The rename may or may not be durable; both files hold every
		 * synced write, but we can no longer tell which one the next
		 * open sees after a power loss: stop accepting writes. */
		dskvs__set_error(s, DSKVS_EIO, dir_err,
		                 "fsync of the store directory after "
		                 "compaction failed: %s",
		                 strerror(dir_err));
		return DSKVS_EIO;
	}
	if (!healthy) {
		pthread_mutex_lock(&s->jmu);
		s->err = 0;
		s->err_errno = 0;
		s->err_detail[0] = '\0';
		pthread_mutex_unlock(&s->jmu);
		/* Everything dequeued is in the new file, which is synced. */
		publish_durable(s, s->jdone);
	}
	pthread_mutex_lock(&s->stats_mu);
	s->st_compactions++;
	s->st_last_compaction_unix = (int64_t)time(NULL);
	pthread_mutex_unlock(&s->stats_mu);
	dskvs__log(s, DSKVS_LOG_INFO,
	           "%s: log rewritten to %llu bytes in %.1f ms",
	           rewrite ? "rewrite" : "compaction", (unsigned long long)tail,
	           (double)(dskvs__now_ns() - t0) / 1e6);
	return DSKVS_OK;

abandon_snap:
	for (; i < n; i++)
		dskvs__blk_unref(dskvs__untag((void *)v[i], &(unsigned){ 0 }));
abandon_held:
	free(v);
	free(seqs);
	release_records(h.recs, h.n);
abandon:
	free(h.recs);
	free(h.seqs);
	dskvs__io.close(fd);
	dskvs__io.unlinkat(s->dirfd, DSKVS_LOG_TMP, 0);
	dskvs__log(s, DSKVS_LOG_WARN, "%s abandoned while %s: %s",
	           rewrite ? "rewrite" : "compaction", what, strerror(-e));
	return DSKVS_EIO;
}

/* ---- the thread ------------------------------------------------------------
 */

/* Summing the live bytes walks the collections, so the trigger looks again
 * only after the log grew by an eighth (at least 1 MiB): the log overshoots
 * the threshold by at most that much plus one batch. */
static void schedule_check(dskvs *s)
{
	uint64_t step =
	    s->log_size / 8 > (1u << 20) ? s->log_size / 8 : (1u << 20);
	s->next_check = s->log_size + step;
}

/* Compact when the log is past the minimum size and garbage is more than
 * compact_garbage_pct of it. */
static bool want_compact(dskvs *s)
{
	if (!s->opts.auto_compact || s->log_size < s->opts.compact_min_bytes ||
	    s->log_size < s->next_check)
		return false;
	uint64_t live = dskvs__live_log_bytes(s) + DSKVS_FILE_HDR;
	schedule_check(s);
	pthread_mutex_lock(&s->stats_mu);
	s->st_log_live_bytes = live;
	pthread_mutex_unlock(&s->stats_mu);
	return live * 100 < s->log_size * (100 - s->opts.compact_garbage_pct);
}

/* Run the compaction or rewrite that callers asked for. */
static void serve_requests(dskvs *s)
{
	pthread_mutex_lock(&s->jmu);
	uint64_t serving = s->compact_asked;
	int kind = s->compact_kind;
	s->compact_kind = 0;
	__atomic_store_n(&s->compact_req, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->jmu);

	int rc = do_compact(s, kind == 2);
	schedule_check(s);

	pthread_mutex_lock(&s->jmu);
	s->compact_done = serving;
	s->compact_rc = rc;
	pthread_cond_broadcast(&s->durable_cv);
	pthread_mutex_unlock(&s->jmu);
}

static void *janitor_main(void *arg)
{
	dskvs *s = arg;

	for (;;) {
		size_t n = drain(s, 0);
		if (n) {
			process_batch(s, n, false);
			if (want_compact(s)) {
				do_compact(s, false);
				schedule_check(s);
			}
		}
		if (__atomic_load_n(&s->compact_req, __ATOMIC_ACQUIRE)) {
			serve_requests(s);
			continue;
		}
		if (n)
			continue;

		pthread_mutex_lock(&s->jmu);
		__atomic_store_n(&s->jsleeping, 1, __ATOMIC_SEQ_CST);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		while (ring_empty(s) && !s->closing && !s->compact_req)
			pthread_cond_wait(&s->jcv, &s->jmu);
		__atomic_store_n(&s->jsleeping, 0, __ATOMIC_RELAXED);
		bool done = s->closing && ring_empty(s) && !s->compact_req;
		pthread_mutex_unlock(&s->jmu);
		if (done) {
			seal_tail(s);
			break;
		}
	}
	return NULL;
}

int dskvs__janitor_start(dskvs *s)
{
	s->batch = malloc(s->opts.batch_max_records * sizeof(*s->batch));
	if (s->batch == NULL)
		return DSKVS_ENOMEM;
	s->next_check = s->log_size;
	s->st_caught_up_ns = dskvs__now_ns();
	if (pthread_create(&s->janitor, NULL, janitor_main, s) != 0)
		return DSKVS_ENOMEM;
	s->janitor_started = true;
	return DSKVS_OK;
}

int dskvs__janitor_stop(dskvs *s)
{
	if (s->janitor_started) {
		pthread_mutex_lock(&s->jmu);
		s->closing = true;
		pthread_cond_signal(&s->jcv);
		pthread_mutex_unlock(&s->jmu);
		pthread_join(s->janitor, NULL);
		s->janitor_started = false;
	}
	return __atomic_load_n(&s->err, __ATOMIC_ACQUIRE);
}

int dskvs__request_compact(dskvs *s, int kind)
{
	int rc;
	pthread_mutex_lock(&s->jmu);
	uint64_t mine = ++s->compact_asked;
	if (s->compact_kind < kind)
		s->compact_kind = kind;
	__atomic_store_n(&s->compact_req, 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&s->jcv);
	/* compact_done only reaches `mine` for a run that started after this
	 * request was registered. */
	while (s->compact_done < mine)
		pthread_cond_wait(&s->durable_cv, &s->jmu);
	rc = s->compact_rc;
	if (rc != DSKVS_OK)
		dskvs__fail(rc, "%s",
		            s->err ? s->err_detail
		                   : "compaction failed (see the log "
		                     "hook for the cause)");
	pthread_mutex_unlock(&s->jmu);
	return rc;
}

/* ---- public calls
 * ------------------------------------------------------------ */

int dskvs_sync(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_sync: NULL store");
	int err = __atomic_load_n(&s->err, __ATOMIC_ACQUIRE);
	if (err) {
		pthread_mutex_lock(&s->jmu);
		dskvs__fail(err, "%s", s->err_detail);
		pthread_mutex_unlock(&s->jmu);
		return err;
	}
	return dskvs__wait_seq(s, dskvs__committed_seq(s), -1);
}

uint64_t dskvs_durable_seq(dskvs *s)
{
	if (s == NULL)
		return 0;
	return s->seq_base + __atomic_load_n(&s->durable, __ATOMIC_ACQUIRE);
}

int dskvs_wait_durable(dskvs *s, uint64_t seq, int timeout_ms)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_wait_durable: NULL store");
	if (seq > dskvs__committed_seq(s))
		return dskvs__fail(DSKVS_EINVAL,
		                   "sequence %llu was never handed out",
		                   (unsigned long long)seq);
	return dskvs__wait_seq(s, seq, timeout_ms);
}

int dskvs_durable_fd(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_durable_fd: NULL store");
	pthread_mutex_lock(&s->jmu);
	if (s->efd < 0) {
		int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			pthread_mutex_unlock(&s->jmu);
			return dskvs__fail(DSKVS_ENOMEM, "eventfd: %s",
			                   strerror(e));
		}
		__atomic_store_n(&s->efd, fd, __ATOMIC_RELEASE);
	}
	int fd = s->efd;
	pthread_mutex_unlock(&s->jmu);
	return fd;
}

int dskvs_compact(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_compact: NULL store");
	return dskvs__request_compact(s, 1);
}

int dskvs_rewrite(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_rewrite: NULL store");
	return dskvs__request_compact(s, 2);
}
