/*
 * The janitor's batches: writing records to the log, one fdatasync per
 * batch, marks, and the log's end at close. Janitor thread only (recovery
 * uses the mark and the log creation before the thread starts).
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
 * Compaction: compact.c.
 */
#include "janitor.h"
#include "format.h"
#include "queue.h"
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Values at most this long are copied into the batch buffer; longer ones
 * are written from their block through their own iovec. */
#define COPY_MAX 4096

/* Dequeue a batch (or exactly `limit` records) into j->batch. */
size_t dskvs__janitor_drain(struct dskvs__janitor *j, uint64_t limit)
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
		if (p == NULL) {
			j->io_errno = ENOMEM;
			return DSKVS_ENOMEM;
		}
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
 * given, else first_seq + i, or (first_seq 0) its block's own; headers are
 * checksummed with the target file's salt. Returns 0 or -errno; *bytes receives
 * the bytes written.
 */
int dskvs__janitor_write_records(struct dskvs__janitor *j, int fd, uint64_t off,
                                 struct dskvs__rec_ref *recs, size_t n,
                                 uint64_t first_seq, const uint64_t *seqs,
                                 uint32_t salt, uint32_t batch, bool end,
                                 uint64_t *bytes)
{
	size_t copy = 0, iovs = 1, total = 0, last = n;
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i].p, &op);
		if (op == DSKVS_OP_NOP)
			continue;
		size_t klen = dskvs__op_klen(recs[i].name, b, op);
		size_t vlen = dskvs__op_vlen(b, op);
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
		return DSKVS_OK;
	int rc = ensure_scratch(j, copy, iovs);
	if (rc != DSKVS_OK)
		return rc;

	char *p = j->scratch, *seg = j->scratch;
	int cnt = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i].p, &op);
		if (op == DSKVS_OP_NOP)
			continue;
		const struct dskvs__name *coll = recs[i].name;
		size_t klen = dskvs__op_klen(coll, b, op);
		size_t vlen = dskvs__op_vlen(b, op);
		const char *val = dskvs__blk_val(b);
		uint64_t seq = seqs        ? seqs[i]
		               : first_seq ? first_seq + i
		                           : b->seq; /* a snapshot's block */
		unsigned flags = (end && i == last) ? DSKVS_REC_END : 0;
		/* A batch of writes: every record but its last. Never with
		 * DSKVS_REC_END: the drain keeps such a batch whole. */
		if (dskvs__tag_grp(recs[i].p))
			flags |= DSKVS_REC_GRP;
		/* The key, "coll/member" (or "coll"), put together after the
		 * header's place; the header's checksum covers it there. */
		char *key = p + DSKVS_REC_HDR;
		memcpy(key, coll->s, coll->len);
		if (op != DSKVS_OP_DELALL) {
			key[coll->len] = '/';
			memcpy(key + coll->len + 1, dskvs__blk_member(b),
			       b->mlen);
		}
		dskvs__rec_hdr_encode((unsigned char *)p, salt, op, flags,
		                      batch, key, klen, val, vlen, seq);
		p = key + klen;
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
	int e = dskvs__write_all(fd, j->iov, cnt, (off_t)off);
	if (e != 0) {
		j->io_errno = -e;
		return DSKVS_EIO;
	}
	return DSKVS_OK;
}

void dskvs__records_release(struct dskvs__rec_ref *recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i].p, &op);
		if (op != DSKVS_OP_NOP)
			dskvs__blk_unref(b);
	}
}

uint64_t dskvs__records_bytes(const struct dskvs__rec_ref *recs, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned op;
		struct dskvs__blk *b = dskvs__untag(recs[i].p, &op);
		if (op != DSKVS_OP_NOP)
			sum +=
			    dskvs__rec_size(dskvs__op_klen(recs[i].name, b, op),
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
 * log, and never to a format-1 log. Its sequence number is the highest one
 * handed out so far (every write dequeued; nothing is queued when a mark
 * is written). flags: 0, or DSKVS_REC_END for the closing mark, which also
 * ends its batch. It is appended, or, if `over` and the log ends with a
 * mark past its sealed part (tail_mark_off), written over that mark: a
 * mark with the same claim or a higher number, so that open and close
 * leave the log's size alone. A crash that tears that write leaves damage
 * in an unproven last batch of a mark only, a torn tail that open cuts:
 * nothing synced depends on it. Janitor only (or recovery before it
 * starts). Returns DSKVS_OK or DSKVS_EIO (errno in j->io_errno).
 */
static int mark_write(struct dskvs__janitor *j, unsigned flags, bool over)
{
	unsigned char hdr[DSKVS_REC_HDR];
	struct iovec iov = { hdr, sizeof(hdr) };
	over = over && j->tail_mark_off;
	uint64_t at = over ? j->tail_mark_off : j->log_size;
	j->tail_closed = false;
	dskvs__rec_hdr_encode(hdr, j->log_salt, DSKVS_REC_MARK, flags,
	                      j->batch_no, NULL, 0, NULL, 0,
	                      j->q->seq_base + j->q->dequeued);
	int e = dskvs__write_all(j->logfd, &iov, 1, (off_t)at);
	if (e != 0) {
		j->io_errno = -e;
		return DSKVS_EIO;
	}
	if (!over)
		__atomic_store_n(&j->log_size, j->log_size + DSKVS_REC_HDR,
		                 __ATOMIC_RELAXED);
	j->tail_mark_off = (flags & DSKVS_REC_END) ? 0 : at;
	j->tail_proven = true;
	j->mark_unsynced = true;
	if (flags & DSKVS_REC_END)
		j->batch_no++;
	pthread_mutex_lock(&j->stats_mu);
	j->st_bytes += DSKVS_REC_HDR;
	pthread_mutex_unlock(&j->stats_mu);
	return DSKVS_OK;
}

int dskvs__janitor_write_mark(struct dskvs__janitor *j)
{
	return mark_write(j, 0, false);
}

int dskvs__janitor_open_mark(struct dskvs__janitor *j)
{
	return mark_write(j, 0, true);
}

/* Write and sync one batch of n records dequeued by dskvs__janitor_drain(). The
 * first has position jdone - n. Releases the records unless `keep`.
 *
 * When nothing else is queued, the batch is followed by a mark before the
 * waiters are told (one 32-byte pwrite, no fdatasync): a crash after that
 * leaves a log that proves the batch was synced, so damage to it is
 * refused rather than cut as a torn tail. Under load the next batch is that
 * proof and no mark is written. */
void dskvs__janitor_batch(struct dskvs__janitor *j, size_t n, bool keep)
{
	uint64_t first = j->q->seq_base + j->q->dequeued - n + 1;
	uint64_t bytes = dskvs__records_bytes(j->batch, n);
	bool published = false;

	j->last_batch_ns = dskvs__now_ns();
	j->tail_closed = false;
	j->tail_mark_off = 0;
	/* Blocks retired before these records were queued go to call_rcu
	 * now, before the batch is published durable: a retired block waits
	 * at most one batch for its grace period to begin (blk.h). */
	dskvs__blk_pool_flush(&j->t->pool);

	if (__atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE) == 0) {
		uint64_t written;
		int rc = dskvs__janitor_write_records(
		    j, j->logfd, j->log_size, j->batch, n, first, NULL,
		    j->log_salt, j->batch_no, true, &written);
		if (rc != DSKVS_OK) {
			dskvs__queue_set_error(
			    j->q, DSKVS_EIO, j->io_errno,
			    DSKVS_LOG_NAME
			    ": write of %llu bytes at offset %llu "
			    "failed: %s",
			    (unsigned long long)bytes,
			    (unsigned long long)j->log_size,
			    strerror(j->io_errno));
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
					    strerror(j->io_errno));
			}
		}
	}
	if (!published)
		__atomic_sub_fetch(&j->q->pending_bytes, bytes,
		                   __ATOMIC_RELAXED);
	if (!keep)
		dskvs__records_release(j->batch, n);
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
void dskvs__janitor_seal_tail(struct dskvs__janitor *j)
{
	const char *what = NULL;
	int e = 0;

	if (j->log_major < 2 || __atomic_load_n(&j->q->err, __ATOMIC_ACQUIRE))
		return;
	if (j->tail_closed)
		return; /* nothing written since the closing mark open found */
	/* What the mark claims must be true first: the last batch synced
	 * (proven already when the log ends with a mark or a sealed part). */
	if (!j->tail_proven && dskvs__io.fdatasync(j->logfd) != 0) {
		e = errno;
		what = "fdatasync";
	} else if (mark_write(j, DSKVS_REC_END, true) != DSKVS_OK) {
		e = j->io_errno;
		what = "write of the closing mark";
	}
	if (what == NULL && j->mark_unsynced) {
		if (dskvs__io.fdatasync(j->logfd) != 0) {
			e = errno;
			what = "fdatasync of the closing mark";
		} else {
			j->mark_unsynced = false;
		}
	}
	if (what == NULL)
		j->tail_closed = true;
	if (what)
		dskvs__diag(j->diag, DSKVS_LOG_WARN,
		            DSKVS_LOG_NAME ": %s at close failed (no write is "
		                           "lost; the end of the log stays "
		                           "unproven): %s",
		            what, strerror(e));
}
