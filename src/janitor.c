/*
 * The janitor: one thread per store that persists every write.
 *
 * DESIGN
 * ------
 * The queue (queue.c) hands the janitor tagged record pointers in sequence
 * order; the janitor is its only consumer.
 *
 * Batches. The janitor dequeues up to batch_max_records records or
 * batch_max_bytes bytes (a single larger record still goes whole), writes
 * them with pwritev at the log's tail and calls fdatasync once: group commit.
 * Records that arrive during an fdatasync form the next batch, so batches
 * grow with the load. After fdatasync returns, `durable` advances (release)
 * and waiters are told. The bound on a batch bounds how long a sync waiter
 * or a compaction request waits behind the batch in progress. When nothing
 * else is queued, a 32-byte mark follows the batch (format.c), so that the
 * log proves the batch was synced.
 *
 * Errors. A failed pwritev or fdatasync sets the sticky error. The janitor
 * never retries fdatasync on that file (the kernel may have dropped the
 * dirty pages, the PostgreSQL "fsyncgate" lesson) and never syncs it again:
 * it keeps draining the queue, discarding records, so writers never block;
 * writers refuse new writes; dskvs_sync and close report DSKVS_EIO;
 * `durable` stops. Only dskvs_rewrite() clears it, by writing the live set
 * from memory to a fresh file.
 *
 * The janitor composes the layers below it: the queue (what to write), the
 * format (how), and the tables (the compaction snapshot). It takes their
 * parts through the links in struct dskvs__janitor, never the whole store.
 *
 * Compaction. See do_compact() below.
 */
#include "janitor.h"
#include "format.h"
#include "queue.h"
#include "table.h"

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

/* Dequeue a batch (or exactly `limit` records) into j->batch. */
static size_t drain(struct dskvs__janitor *j, uint64_t limit)
{
	return dskvs__queue_drain(j->q, j->batch, j->opts->batch_max_records,
	                          j->opts->batch_max_bytes, limit);
}

int dskvs__log_create(struct dskvs__janitor *j, const char *name, uint32_t salt)
{
	unsigned char hdr[DSKVS_FILE_HDR];
	struct iovec iov = { hdr, sizeof(hdr) };
	int fd = dskvs__io.openat(
	    j->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    (mode_t)j->opts->file_mode);
	if (fd < 0) {
		int e = errno;
		dskvs__diag(j->diag, DSKVS_LOG_ERROR, "%s/%s: create: %s",
		            j->path, name, strerror(e));
		return dskvs__fail(DSKVS_EIO, "%s/%s: create: %s", j->path,
		                   name, strerror(e));
	}
	dskvs__file_hdr_encode(hdr, salt, DSKVS_FILE_HDR);
	int rc = dskvs__write_all(fd, &iov, 1, 0);
	if (rc != 0) {
		dskvs__io.close(fd);
		dskvs__io.unlinkat(j->dirfd, name, 0);
		dskvs__diag(j->diag, DSKVS_LOG_ERROR, "%s/%s: write header: %s",
		            j->path, name, strerror(-rc));
		return dskvs__fail(DSKVS_EIO, "%s/%s: write header: %s",
		                   j->path, name, strerror(-rc));
	}
	return fd;
}

/* ---- serialising records --------------------------------------------------
 */

static int ensure_scratch(struct dskvs__janitor *j, size_t bytes, size_t iovs)
{
	if (bytes > j->scratch_cap) {
		size_t cap = j->scratch_cap ? j->scratch_cap : 65536;
		while (cap < bytes)
			cap *= 2;
		char *p = realloc(j->scratch, cap);
		if (p == NULL)
			return -ENOMEM;
		j->scratch = p;
		j->scratch_cap = cap;
	}
	if (iovs > j->iov_cap) {
		size_t cap = j->iov_cap ? j->iov_cap : 64;
		while (cap < iovs)
			cap *= 2;
		struct iovec *p = realloc(j->iov, cap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		j->iov = p;
		j->iov_cap = cap;
	}
	return 0;
}

/*
 * Write n records (tagged pointers) at `off` of `fd` with as few pwritev
 * calls as IOV_MAX allows. Record i gets sequence number seqs[i] if seqs is
 * given, else first_seq + i; headers are checksummed with the target file's
 * salt. Returns 0 or -errno; *bytes receives the bytes written.
 */
static int write_records(struct dskvs__janitor *j, int fd, uint64_t off,
                         void **recs, size_t n, uint64_t first_seq,
                         const uint64_t *seqs, uint32_t salt, uint32_t batch,
                         bool end, uint64_t *bytes)
{
	size_t copy = 0, iovs = 1, total = 0, last = n;
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i], &op);
		if (op == DSKVS_OP_NOP)
			continue;
		size_t klen = dskvs__blk_klen(b), vlen = dskvs__op_vlen(b, op);
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
	int rc = ensure_scratch(j, copy, iovs);
	if (rc)
		return rc;

	char *p = j->scratch, *seg = j->scratch;
	int cnt = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i], &op);
		if (op == DSKVS_OP_NOP)
			continue;
		size_t klen = dskvs__blk_klen(b), vlen = dskvs__op_vlen(b, op);
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
			j->iov[cnt].iov_base = seg;
			j->iov[cnt++].iov_len = (size_t)(p - seg);
			j->iov[cnt].iov_base = (void *)val;
			j->iov[cnt++].iov_len = vlen;
			seg = p;
		}
	}
	if (p > seg) {
		j->iov[cnt].iov_base = seg;
		j->iov[cnt++].iov_len = (size_t)(p - seg);
	}
	return dskvs__write_all(fd, j->iov, cnt, (off_t)off);
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
			                       dskvs__op_vlen(b, op));
	}
	return sum;
}

static void record_fsync(struct dskvs__janitor *j, uint64_t ns, size_t n,
                         uint64_t bytes)
{
	pthread_mutex_lock(&j->stats_mu);
	j->hist.ns[j->hist.n++ % 1024] = ns;
	j->st_batches++;
	j->st_records += n;
	j->st_bytes += bytes;
	j->st_last_batch_records = n;
	j->st_last_batch_bytes = bytes;
	pthread_mutex_unlock(&j->stats_mu);
}

/*
 * A mark: a record without data that opens batch j->batch_no at the log's
 * end (format.c). It tells recovery that every byte before it had been
 * synced, so it is written only right after a successful fdatasync of the
 * log, and never to a format-1 log. Janitor only. Returns 0 or -errno.
 */
int dskvs__janitor_write_mark(struct dskvs__janitor *j)
{
	unsigned char hdr[DSKVS_REC_HDR];
	struct iovec iov = { hdr, sizeof(hdr) };
	dskvs__rec_hdr_encode(hdr, j->log_salt, DSKVS_REC_MARK, 0, j->batch_no,
	                      NULL, 0, NULL, 0,
	                      j->q->seq_base + j->q->dequeued);
	int rc = dskvs__write_all(j->logfd, &iov, 1, (off_t)j->log_size);
	if (rc == 0) {
		__atomic_store_n(&j->log_size, j->log_size + DSKVS_REC_HDR,
		                 __ATOMIC_RELAXED);
		j->tail_proven = true;
		j->mark_unsynced = true;
		pthread_mutex_lock(&j->stats_mu);
		j->st_bytes += DSKVS_REC_HDR;
		pthread_mutex_unlock(&j->stats_mu);
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
static void process_batch(struct dskvs__janitor *j, size_t n, bool keep)
{
	uint64_t first = j->q->seq_base + j->q->dequeued - n + 1;
	uint64_t bytes = records_bytes(j->batch, n);
	bool published = false;

	j->last_batch_ns = dskvs__now_ns();

	if (__atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE) == 0) {
		uint64_t written;
		int rc = write_records(j, j->logfd, j->log_size, j->batch, n,
		                       first, NULL, j->log_salt, j->batch_no,
		                       true, &written);
		if (rc != 0) {
			dskvs__queue_set_error(
			    j->q, DSKVS_EIO, -rc,
			    DSKVS_LOG_NAME
			    ": write of %llu bytes at offset %llu "
			    "failed: %s",
			    (unsigned long long)bytes,
			    (unsigned long long)j->log_size, strerror(-rc));
		} else {
			uint64_t t0 = dskvs__now_ns();
			if (dskvs__io.fdatasync(j->logfd) != 0) {
				int e = errno;
				dskvs__queue_set_error(j->q, DSKVS_EIO, e,
				                       DSKVS_LOG_NAME
				                       ": fdatasync failed: %s",
				                       strerror(e));
			} else {
				int mark_rc = 0;
				__atomic_store_n(&j->log_size,
				                 j->log_size + written,
				                 __ATOMIC_RELAXED);
				j->batch_no++;
				j->mark_unsynced = false;
				if (written)
					j->tail_proven = false;
				record_fsync(j, dskvs__now_ns() - t0, n,
				             written);
				if (!j->tail_proven && j->log_major >= 2 &&
				    dskvs__queue_empty(j->q))
					mark_rc = dskvs__janitor_write_mark(j);
				/* Not pending any more once durable: a caller
				 * woken by the publish must see both. */
				__atomic_sub_fetch(&j->q->pending_bytes, bytes,
				                   __ATOMIC_RELAXED);
				published = true;
				dskvs__queue_publish_durable(j->q,
				                             j->q->dequeued);
				/* A failed mark loses no data (the batch is
				 * synced; the next batch overwrites whatever
				 * part of it was written, and proves the
				 * batch instead): not a sticky error. */
				if (mark_rc != 0)
					dskvs__diag(
					    j->diag, DSKVS_LOG_WARN,
					    DSKVS_LOG_NAME
					    ": write of a batch mark at "
					    "offset %llu failed: %s",
					    (unsigned long long)j->log_size,
					    strerror(-mark_rc));
			}
		}
	}
	if (!published)
		__atomic_sub_fetch(&j->q->pending_bytes, bytes,
		                   __ATOMIC_RELAXED);
	if (!keep)
		release_records(j->batch, n);
	if (dskvs__queue_empty(j->q))
		__atomic_store_n(&j->q->caught_up_ns, dskvs__now_ns(),
		                 __ATOMIC_RELAXED);
}

/* At close, once everything is written: leave a log whose end is proven
 * synced (a synced mark after the last batch), so that damage anywhere in
 * it is refused at the next open rather than taken for a torn tail. Costs
 * one fdatasync of the mark when the last batch already has one; two
 * fdatasyncs and a mark when the log ends unproven (nothing was written
 * since an open that found it so). A failure here loses nothing that was
 * reported durable, so it is logged, not made sticky. */
static void seal_tail(struct dskvs__janitor *j)
{
	const char *what = NULL;
	int e = 0;

	if (j->log_major < 2 || __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE))
		return;
	if (!j->tail_proven) {
		/* What the mark claims must be true first. */
		if (dskvs__io.fdatasync(j->logfd) != 0) {
			e = errno;
			what = "fdatasync";
		} else if ((e = -dskvs__janitor_write_mark(j)) != 0) {
			what = "write of the closing mark";
		}
	}
	if (what == NULL && j->mark_unsynced) {
		if (dskvs__io.fdatasync(j->logfd) != 0) {
			e = errno;
			what = "fdatasync of the closing mark";
		} else {
			j->mark_unsynced = false;
		}
	}
	if (what)
		dskvs__diag(j->diag, DSKVS_LOG_WARN,
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
	struct dskvs__janitor *j;
};

/*
 * Called by dskvs__snapshot when a collection's lock is busy. Its holder may
 * be a writer waiting for room in a full queue, which only the janitor can
 * make: so keep the queue moving. On a healthy store the records go through
 * the current log as usual and are also kept for the new file; after an
 * I/O error the old file is never touched again and they are only kept.
 * Returns 0, or DSKVS_ENOMEM to give the compaction up.
 */
static int snapshot_progress(void *arg, bool busy)
{
	struct held *h = arg;
	struct dskvs__janitor *j = h->j;
	/* Between collections, let a batch through only when one is due (a
	 * millisecond since the last, or the ring half full): each costs an
	 * fdatasync inside the gather's read-side section, which holds up
	 * reclamation, and the records dequeued here are held until the
	 * snapshot is written. */
	if (!busy && (dskvs__queue_empty(j->q) ||
	              (dskvs__now_ns() - j->last_batch_ns < 1000000 &&
	               ck_ring_size(&j->q->ring) < j->q->ring_cap / 2)))
		return 0;
	size_t n = drain(j, 0);
	if (n == 0) {
		if (busy)
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
				process_batch(j, n, false);
			} else {
				__atomic_sub_fetch(&j->q->pending_bytes,
				                   records_bytes(j->batch, n),
				                   __ATOMIC_RELAXED);
				release_records(j->batch, n);
			}
			return DSKVS_ENOMEM;
		}
		h->cap = cap;
	}
	uint64_t first = j->q->seq_base + j->q->dequeued - n + 1;
	if (h->healthy)
		process_batch(j, n, true);
	else
		__atomic_sub_fetch(&j->q->pending_bytes,
		                   records_bytes(j->batch, n),
		                   __ATOMIC_RELAXED);
	for (size_t i = 0; i < n; i++) {
		h->recs[h->n] = j->batch[i];
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
static size_t chunk_end(struct dskvs__janitor *j, void **recs, size_t i,
                        size_t n)
{
	size_t e = i, bytes = 0;
	while (e < n && e - i < j->opts->batch_max_records &&
	       bytes < j->opts->batch_max_bytes) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[e], &op);
		if (op != DSKVS_OP_NOP)
			bytes += dskvs__rec_size(dskvs__blk_klen(b),
			                         dskvs__op_vlen(b, op));
		e++;
	}
	return e;
}

/* One batch through the current log, its records also appended to the new
 * file at *tail. Returns 0 or -errno (-EIO: the current log failed). */
static int interleave_batch(struct dskvs__janitor *j, int fd, uint32_t salt,
                            uint64_t *tail)
{
	if (dskvs__queue_empty(j->q))
		return 0;
	size_t n = drain(j, 0);
	if (n == 0)
		return 0;
	uint64_t first = j->q->seq_base + j->q->dequeued - n + 1, w = 0;
	process_batch(j, n, true);
	int e = __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE)
	            ? -EIO
	            : write_records(j, fd, *tail, j->batch, n, first, NULL,
	                            salt, 0, false, &w);
	release_records(j->batch, n);
	*tail += w;
	return e;
}

/* Close the replaced log from a thread of its own. Its last close frees
 * the file's blocks, which for a log of a gigabyte takes most of a second
 * (measured: 0.8 s with 1 GB live); the janitor must not make sync waiters
 * wait for that. At most one closer runs: the next compaction, and
 * janitor_stop, join it first, so dskvs_close returns only once the old
 * file is gone. The closer gets the seam's close as it was on the janitor
 * thread (tests swap the seam between stores). */
static void *closer(void *arg)
{
	struct dskvs__janitor *j = arg;
	j->closer_fn(j->closer_fd);
	return NULL;
}

static void closer_join(struct dskvs__janitor *j)
{
	if (j->closer_running) {
		pthread_join(j->closer, NULL);
		j->closer_running = false;
	}
}

static void close_behind(struct dskvs__janitor *j, int fd)
{
	closer_join(j);
	j->closer_fn = dskvs__io.close;
	j->closer_fd = fd;
	if (pthread_create(&j->closer, NULL, closer, j) == 0)
		j->closer_running = true;
	else
		dskvs__io.close(fd);
}

static int do_compact(struct dskvs__janitor *j, bool rewrite)
{
	uint64_t t0 = dskvs__now_ns(), snap_bytes = 0, tail, off, w, t_pos;
	uint64_t prev_off = 0, prev_len = 0;
	struct dskvs__blk **v = NULL;
	uint64_t *seqs = NULL;
	size_t n = 0, i = 0;
	int fd, e = 0;
	const char *what = "";
	bool healthy = __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE) == 0;
	uint32_t salt = dskvs__new_salt();

	if (!rewrite && !healthy)
		return DSKVS_EIO;
	fd = dskvs__log_create(j, DSKVS_LOG_TMP, salt);
	if (fd < 0)
		return DSKVS_EIO;

	struct held h = { .healthy = healthy, .j = j };
	if (dskvs__snapshot(j->t, &v, &seqs, &n, snapshot_progress, &h) !=
	    DSKVS_OK) {
		e = -ENOMEM;
		what = "gathering the snapshot";
		goto abandon_held;
	}
	if (healthy && __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE)) {
		e = -EIO;
		what = "gathering the snapshot (the current log failed)";
		goto abandon_snap;
	}
	/* T: every block in the snapshot was written by a record before T
	 * (a write queues its record under the lock the gather took). */
	t_pos = dskvs__queue_committed_pos(j->q);
	for (size_t k = 0; k < n; k++) {
		snap_bytes +=
		    dskvs__rec_size(dskvs__blk_klen(v[k]), v[k]->vlen);
		v[k] = dskvs__tag(v[k], DSKVS_OP_PUT);
	}
	tail = DSKVS_FILE_HDR + snap_bytes;
	for (size_t k = 0; k < h.n;) {
		size_t end = chunk_end(j, h.recs, k, h.n);
		e = write_records(j, fd, tail, h.recs + k, end - k, 0,
		                  h.seqs + k, salt, 0, false, &w);
		if (e) {
			what = "writing the records queued meanwhile";
			goto abandon_snap;
		}
		tail += w;
		k = end;
	}
	release_records(h.recs, h.n);
	free(h.recs);
	free(h.seqs);
	h = (struct held){ .healthy = healthy, .j = j };

	for (off = DSKVS_FILE_HDR; i < n;) {
		size_t end = chunk_end(j, (void **)v, i, n);
		e = write_records(j, fd, off, (void **)(v + i), end - i, 0,
		                  seqs + i, salt, 0, false, &w);
		release_records((void **)(v + i), end - i);
		i = end;
		if (e) {
			what = "writing the snapshot";
			goto abandon_snap;
		}
		flush_behind(fd, &prev_off, &prev_len, off, w);
		off += w;
		if (healthy && (e = interleave_batch(j, fd, salt, &tail))) {
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
	while (j->q->dequeued < t_pos) {
		uint64_t left = t_pos - j->q->dequeued;
		size_t m = drain(j, left < j->opts->batch_max_records
		                        ? left
		                        : j->opts->batch_max_records);
		uint64_t first = j->q->seq_base + j->q->dequeued - m + 1;
		if (healthy)
			process_batch(j, m, true);
		else
			__atomic_sub_fetch(&j->q->pending_bytes,
			                   records_bytes(j->batch, m),
			                   __ATOMIC_RELAXED);
		e = healthy && __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE)
		        ? -EIO
		        : write_records(j, fd, tail, j->batch, m, first, NULL,
		                        salt, 0, false, &w);
		release_records(j->batch, m);
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
	if (dskvs__io.renameat(j->dirfd, DSKVS_LOG_TMP, j->dirfd,
	                       DSKVS_LOG_NAME) != 0) {
		e = -errno;
		what = "rename over " DSKVS_LOG_NAME;
		goto abandon;
	}
	int dir_err = dskvs__io.fsync(j->dirfd) != 0 ? errno : 0;
	close_behind(j, j->logfd);
	j->logfd = fd;
	__atomic_store_n(&j->log_size, tail, __ATOMIC_RELAXED);
	j->log_major = DSKVS_FORMAT_MAJOR;
	j->log_salt = salt;
	j->batch_no = 1;
	j->tail_proven = true;
	j->mark_unsynced = false;
	if (dir_err) {
		/* The rename may or may not be durable; both files hold every
		 * synced write, but we can no longer tell which one the next
		 * open sees after a power loss: stop accepting writes. */
		dskvs__queue_set_error(j->q, DSKVS_EIO, dir_err,
		                       "fsync of the store directory after "
		                       "compaction failed: %s",
		                       strerror(dir_err));
		return DSKVS_EIO;
	}
	if (!healthy) {
		dskvs__queue_clear_error(j->q);
		/* Everything dequeued is in the new file, which is synced. */
		dskvs__queue_publish_durable(j->q, j->q->dequeued);
	}
	pthread_mutex_lock(&j->stats_mu);
	j->st_compactions++;
	j->st_last_compaction_unix = (int64_t)time(NULL);
	pthread_mutex_unlock(&j->stats_mu);
	dskvs__diag(j->diag, DSKVS_LOG_INFO,
	            "%s: log rewritten to %llu bytes in %.1f ms",
	            rewrite ? "rewrite" : "compaction",
	            (unsigned long long)tail,
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
	dskvs__io.unlinkat(j->dirfd, DSKVS_LOG_TMP, 0);
	dskvs__diag(j->diag, DSKVS_LOG_WARN, "%s abandoned while %s: %s",
	            rewrite ? "rewrite" : "compaction", what, strerror(-e));
	return DSKVS_EIO;
}

/* ---- the thread ------------------------------------------------------------
 */

/* Summing the live bytes walks the collections, so the trigger looks again
 * only after the log grew by an eighth (at least 1 MiB): the log overshoots
 * the threshold by at most that much plus one batch. */
static void schedule_check(struct dskvs__janitor *j)
{
	uint64_t step =
	    j->log_size / 8 > (1u << 20) ? j->log_size / 8 : (1u << 20);
	j->next_check = j->log_size + step;
}

/* Compact when the log is past the minimum size and garbage is more than
 * compact_garbage_pct of it. */
static bool want_compact(struct dskvs__janitor *j)
{
	if (!j->opts->auto_compact ||
	    j->log_size < j->opts->compact_min_bytes ||
	    j->log_size < j->next_check)
		return false;
	uint64_t live = dskvs__live_log_bytes(j->t) + DSKVS_FILE_HDR;
	schedule_check(j);
	pthread_mutex_lock(&j->stats_mu);
	j->st_log_live_bytes = live;
	pthread_mutex_unlock(&j->stats_mu);
	return live * 100 < j->log_size * (100 - j->opts->compact_garbage_pct);
}

/* Run the compaction or rewrite that callers asked for. */
static void serve_requests(struct dskvs__janitor *j)
{
	pthread_mutex_lock(&j->q->mu);
	uint64_t serving = j->compact_asked;
	int kind = j->compact_kind;
	j->compact_kind = 0;
	__atomic_store_n(&j->compact_req, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&j->q->mu);

	int rc = do_compact(j, kind == 2);
	schedule_check(j);

	pthread_mutex_lock(&j->q->mu);
	j->compact_done = serving;
	j->compact_rc = rc;
	pthread_cond_broadcast(&j->q->durable_cv);
	pthread_mutex_unlock(&j->q->mu);
}

static void *janitor_main(void *arg)
{
	struct dskvs__janitor *j = arg;

	for (;;) {
		size_t n = drain(j, 0);
		if (n) {
			process_batch(j, n, false);
			if (want_compact(j)) {
				do_compact(j, false);
				schedule_check(j);
			}
		}
		if (__atomic_load_n(&j->compact_req, __ATOMIC_ACQUIRE)) {
			serve_requests(j);
			continue;
		}
		if (n)
			continue;

		if (dskvs__queue_sleep(j->q, &j->compact_req)) {
			seal_tail(j);
			break;
		}
	}
	return NULL;
}

int dskvs__janitor_start(struct dskvs__janitor *j)
{
	j->batch = malloc(j->opts->batch_max_records * sizeof(*j->batch));
	if (j->batch == NULL)
		return DSKVS_ENOMEM;
	j->next_check = j->log_size;
	j->q->caught_up_ns = dskvs__now_ns();
	if (pthread_create(&j->thread, NULL, janitor_main, j) != 0)
		return DSKVS_ENOMEM;
	j->started = true;
	return DSKVS_OK;
}

int dskvs__janitor_stop(struct dskvs__janitor *j)
{
	if (j->started) {
		dskvs__queue_close(j->q);
		pthread_join(j->thread, NULL);
		closer_join(j);
		j->started = false;
	}
	return __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE);
}

int dskvs__janitor_compact(struct dskvs__janitor *j, int kind)
{
	int rc;
	pthread_mutex_lock(&j->q->mu);
	uint64_t mine = ++j->compact_asked;
	if (j->compact_kind < kind)
		j->compact_kind = kind;
	__atomic_store_n(&j->compact_req, 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&j->q->wake_cv);
	/* compact_done only reaches `mine` for a run that started after this
	 * request was registered. */
	while (j->compact_done < mine)
		pthread_cond_wait(&j->q->durable_cv, &j->q->mu);
	rc = j->compact_rc;
	if (rc != DSKVS_OK)
		dskvs__fail(rc, "%s",
		            j->q->err ? j->q->err_detail
		                      : "compaction failed (see the log "
		                        "hook for the cause)");
	pthread_mutex_unlock(&j->q->mu);
	return rc;
}

/* ---- set-up and statistics ------------------------------------------------
 */

void dskvs__janitor_init(struct dskvs__janitor *j, struct dskvs__tables *t,
                         struct dskvs__queue *q, const dskvs_options *opts,
                         const struct dskvs__diag *diag, int dirfd,
                         const char *path)
{
	j->t = t;
	j->q = q;
	j->opts = opts;
	j->diag = diag;
	j->dirfd = dirfd;
	j->path = path;
	j->logfd = -1;
	pthread_mutex_init(&j->stats_mu, NULL);
}

void dskvs__janitor_destroy(struct dskvs__janitor *j)
{
	if (j->logfd >= 0)
		dskvs__io.close(j->logfd);
	j->logfd = -1;
	pthread_mutex_destroy(&j->stats_mu);
	free(j->batch);
	free(j->scratch);
	free(j->iov);
	j->batch = NULL;
	j->scratch = NULL;
	j->iov = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void dskvs__janitor_stats(struct dskvs__janitor *j, dskvs_stats *st)
{
	uint64_t *sorted = malloc(1024 * sizeof(*sorted));
	size_t n;

	pthread_mutex_lock(&j->stats_mu);
	st->log_bytes = __atomic_load_n(&j->log_size, __ATOMIC_RELAXED);
	st->batches = j->st_batches;
	st->records_written = j->st_records;
	st->bytes_written = j->st_bytes;
	st->last_batch_records = j->st_last_batch_records;
	st->last_batch_bytes = j->st_last_batch_bytes;
	st->compactions = j->st_compactions;
	st->last_compaction_unix = j->st_last_compaction_unix;
	n = j->hist.n < 1024 ? (size_t)j->hist.n : 1024;
	if (n)
		st->fsync_last_ns = j->hist.ns[(j->hist.n - 1) % 1024];
	if (n && sorted)
		memcpy(sorted, j->hist.ns, n * sizeof(uint64_t));
	pthread_mutex_unlock(&j->stats_mu);
	if (n && sorted) {
		qsort(sorted, n, sizeof(uint64_t), cmp_u64);
		st->fsync_p50_ns = sorted[n / 2];
		st->fsync_p99_ns = sorted[(n * 99) / 100];
		st->fsync_max_ns = sorted[n - 1];
	}
	free(sorted);
}
