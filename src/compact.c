/*
 * Compaction: the janitor rewrites the log with only the live set, while
 * batches go on being written and synced to the current log. Runs in the
 * janitor thread only (janitor.c calls dskvs__compact_run between batches);
 * it uses the janitor's batch machinery (janitor.h) and the tables'
 * snapshot. The design, and why a failure loses nothing, is below.
 */
#include "janitor.h"
#include "format.h"
#include "queue.h"
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- compaction ------------------------------------------------------------
 *
 * dskvs__compact_run() rewrites the log with only the live set, in the janitor
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
	struct dskvs__rec_ref *recs;
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
	DSKVS_HOOK(DSKVS__HOOK_GATHER, &busy);
	/* Between collections, let a batch through only when one is due (a
	 * millisecond since the last, or the ring half full): each costs an
	 * fdatasync, and the records dequeued here are held until the
	 * snapshot is written. dskvs__snapshot calls this outside its
	 * read-side sections, so reclamation never waits for that fdatasync. */
	if (!busy && (dskvs__queue_empty(j->q) ||
	              (dskvs__now_ns() - j->last_batch_ns < 1000000 &&
	               ck_ring_size(&j->q->ring) < j->q->ring_cap / 2)))
		return 0;
	size_t n = dskvs__janitor_drain(j, 0);
	if (n == 0) {
		if (busy)
			sched_yield();
		return 0;
	}
	if (h->n + n > h->cap) {
		size_t cap = (h->n + n) * 2;
		struct dskvs__rec_ref *r = realloc(h->recs, cap * sizeof(*r));
		if (r)
			h->recs = r;
		uint64_t *q = r ? realloc(h->seqs, cap * sizeof(*q)) : NULL;
		if (q)
			h->seqs = q;
		if (r == NULL || q == NULL) {
			/* Cannot keep them for the new file: write them to
			 * the current log as usual and give up. */
			if (h->healthy) {
				dskvs__janitor_batch(j, n, false);
			} else {
				__atomic_sub_fetch(
				    &j->q->pending_bytes,
				    dskvs__records_bytes(j->batch, n),
				    __ATOMIC_RELAXED);
				dskvs__records_release(j->batch, n);
			}
			return DSKVS_ENOMEM;
		}
		h->cap = cap;
	}
	uint64_t first = j->q->seq_base + j->q->dequeued - n + 1;
	if (h->healthy)
		dskvs__janitor_batch(j, n, true);
	else
		__atomic_sub_fetch(&j->q->pending_bytes,
		                   dskvs__records_bytes(j->batch, n),
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
static size_t chunk_end(struct dskvs__janitor *j,
                        const struct dskvs__rec_ref *recs, size_t i, size_t n)
{
	size_t e = i, bytes = 0;
	while (e < n && e - i < j->opts->batch_max_records &&
	       bytes < j->opts->batch_max_bytes) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[e].p, &op);
		if (op != DSKVS_OP_NOP)
			bytes +=
			    dskvs__rec_size(dskvs__op_klen(recs[e].name, b, op),
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
		return DSKVS_OK;
	size_t n = dskvs__janitor_drain(j, 0);
	if (n == 0)
		return DSKVS_OK;
	uint64_t first = j->q->seq_base + j->q->dequeued - n + 1, w = 0;
	dskvs__janitor_batch(j, n, true);
	int rc = DSKVS_EIO;
	if (__atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE))
		j->io_errno = EIO; /* the current log failed */
	else
		rc = dskvs__janitor_write_records(
		    j, fd, *tail, j->batch, n, first, NULL, salt, 0, false, &w);
	dskvs__records_release(j->batch, n);
	*tail += w;
	return rc;
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

void dskvs__compact_join_closer(struct dskvs__janitor *j)
{
	if (j->closer_running) {
		pthread_join(j->closer, NULL);
		j->closer_running = false;
	}
}

static void close_behind(struct dskvs__janitor *j, int fd)
{
	dskvs__compact_join_closer(j);
	j->closer_fn = dskvs__io.close;
	j->closer_fd = fd;
	if (pthread_create(&j->closer, NULL, closer, j) == 0)
		j->closer_running = true;
	else
		dskvs__io.close(fd);
}

int dskvs__compact_run(struct dskvs__janitor *j, bool rewrite)
{
	uint64_t t0 = dskvs__now_ns(), snap_bytes = 0, tail, off, w, t_pos;
	uint64_t prev_off = 0, prev_len = 0;
	struct dskvs__rec_ref *v = NULL;
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
	if (dskvs__snapshot(j->t, &v, &n, snapshot_progress, &h) != DSKVS_OK) {
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
		struct dskvs__blk *b = v[k].p;
		snap_bytes += dskvs__rec_size(
		    dskvs__op_klen(v[k].name, b, DSKVS_OP_PUT), b->vlen);
		v[k].p = dskvs__tag(b, DSKVS_OP_PUT);
	}
	tail = DSKVS_FILE_HDR + snap_bytes;
	for (size_t k = 0; k < h.n;) {
		size_t end = chunk_end(j, h.recs, k, h.n);
		e = dskvs__janitor_write_records(j, fd, tail, h.recs + k,
		                                 end - k, 0, h.seqs + k, salt,
		                                 0, false, &w)
		        ? -j->io_errno
		        : 0;
		if (e) {
			what = "writing the records queued meanwhile";
			goto abandon_snap;
		}
		tail += w;
		k = end;
	}
	dskvs__records_release(h.recs, h.n);
	free(h.recs);
	free(h.seqs);
	h = (struct held){ .healthy = healthy, .j = j };

	for (off = DSKVS_FILE_HDR; i < n;) {
		size_t end = chunk_end(j, v, i, n);
		e = dskvs__janitor_write_records(j, fd, off, v + i, end - i, 0,
		                                 NULL, salt, 0, false, &w)
		        ? -j->io_errno
		        : 0;
		dskvs__records_release(v + i, end - i);
		i = end;
		if (e) {
			what = "writing the snapshot";
			goto abandon_snap;
		}
		flush_behind(fd, &prev_off, &prev_len, off, w);
		off += w;
		if (healthy &&
		    interleave_batch(j, fd, salt, &tail) != DSKVS_OK) {
			e = -j->io_errno;
			what = __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE)
			           ? "writing the current log"
			           : "appending a batch";
			goto abandon_snap;
		}
	}
	free(v);
	v = NULL;
	/* The records before T go into the sealed part too: the snapshot may
	 * hold the block of any of them, so a record after the sealed part
	 * must come after T (format.c: sequence numbers rise after it). At
	 * most a ring's worth, in batches. */
	while (j->q->dequeued < t_pos) {
		uint64_t left = t_pos - j->q->dequeued;
		size_t m =
		    dskvs__janitor_drain(j, left < j->opts->batch_max_records
		                                ? left
		                                : j->opts->batch_max_records);
		uint64_t first = j->q->seq_base + j->q->dequeued - m + 1;
		if (healthy)
			dskvs__janitor_batch(j, m, true);
		else
			__atomic_sub_fetch(&j->q->pending_bytes,
			                   dskvs__records_bytes(j->batch, m),
			                   __ATOMIC_RELAXED);
		if (healthy && __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE))
			e = -EIO;
		else if (dskvs__janitor_write_records(j, fd, tail, j->batch, m,
		                                      first, NULL, salt, 0,
		                                      false, &w) != DSKVS_OK)
			e = -j->io_errno;
		else
			e = 0;
		dskvs__records_release(j->batch, m);
		if (e) {
			what = "appending the records queued meanwhile";
			goto abandon;
		}
		tail += w;
	}

	/* The sealed part ends with a mark carrying the highest sequence
	 * number handed out before T: the snapshot keeps only live members,
	 * so without it a reopen would number from the highest live version
	 * and hand out again the versions of deleted and replaced values
	 * (a compare-and-swap holding one would succeed against a new value).
	 * Everything queued after T is numbered above it. */
	unsigned char mk[DSKVS_REC_HDR];
	struct iovec mkv = { mk, sizeof(mk) };
	dskvs__rec_hdr_encode(mk, salt, DSKVS_REC_MARK, 0, 0, NULL, 0, NULL, 0,
	                      j->q->seq_base + j->q->dequeued);
	if ((e = dskvs__write_all(fd, &mkv, 1, (off_t)tail)) != 0) {
		what = "writing the sealed part's mark";
		goto abandon;
	}
	tail += DSKVS_REC_HDR;

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
	j->tail_closed = false;
	j->tail_mark_off = 0;
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
	if (v != NULL) /* NULL for an empty store */
		dskvs__records_release(v + i, n - i);
abandon_held:
	free(v);
	dskvs__records_release(h.recs, h.n);
abandon:
	free(h.recs);
	free(h.seqs);
	dskvs__io.close(fd);
	dskvs__io.unlinkat(j->dirfd, DSKVS_LOG_TMP, 0);
	dskvs__diag(j->diag, DSKVS_LOG_WARN, "%s abandoned while %s: %s",
	            rewrite ? "rewrite" : "compaction", what, strerror(-e));
	return DSKVS_EIO;
}
