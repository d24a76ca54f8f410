/*
 * Layer 3: the janitor (janitor.c: batches, marks, compaction), recovery at
 * open (recover.c), and the log file they share. The janitor holds links to
 * the parts of the layers below that it composes: the tables (compaction's
 * snapshot) and the queue (what it writes).
 */
#ifndef DSKVS_JANITOR_H
#define DSKVS_JANITOR_H

#include "base.h"
#include "format.h"
#include "queue.h"
#include "table.h"

#include <pthread.h>

struct dskvs__fsync_hist {
	uint64_t ns[1024]; /* ring of the last latencies */
	uint64_t n;
};

struct dskvs__janitor {
	/* Links, constant after open. */
	struct dskvs__tables *t;
	struct dskvs__queue *q;
	const dskvs_options *opts;
	const struct dskvs__diag *diag;
	int dirfd;
	const char *path;

	/* The log file. Recovery sets these before the thread starts; then
	 * the janitor thread alone writes them. log_size is also read
	 * (relaxed) by stats. tail_proven: what the log ends with is proven
	 * synced (a mark, or the sealed part, follows the last batch);
	 * mark_unsynced: it ends with a mark not yet fdatasync'ed;
	 * tail_closed: it ends with a closing mark (DSKVS_REC_END, written
	 * by close and synced) and nothing was written since, so every
	 * sequence number ever handed out is at most that mark's (recovery
	 * sets it; every batch, mark and compaction clears it);
	 * tail_mark_off: the offset of the mark the log ends with, which the
	 * closing mark may be written over, or 0. */
	int logfd;
	uint64_t log_size;
	unsigned log_major;
	uint32_t log_salt;
	uint32_t batch_no; /* the number of the next batch */
	bool tail_proven;
	bool mark_unsynced;
	bool tail_closed;
	uint64_t tail_mark_off;
	uint64_t next_check;    /* log size of the next compaction check */
	uint64_t last_batch_ns; /* when the last batch began (janitor) */
	int io_errno;           /* errno of the janitor's last failed write */

	/* Janitor-private scratch, bounded by the batch options (a chunk of a
	 * compaction is bounded like a batch). */
	/* records: 2 * batch_max_records */
	struct dskvs__rec_ref *batch;
	char *scratch;
	size_t scratch_cap;
	struct iovec *iov;
	size_t iov_cap;

	/* Compaction requests, under q->mu: callers bump compact_asked and
	 * wait on q->durable_cv for compact_done to reach their ticket;
	 * compact_kind is 2 if any waiting caller asked for a rewrite.
	 * compact_req is also read without the mutex (atomic) as a hint. */
	int compact_req;
	int compact_kind;
	uint64_t compact_asked, compact_done;
	int compact_rc;

	/* Cut requests (dskvs_backup, backup.c), also under q->mu, and
	 * compact_req is raised for them too (it means "a request is
	 * pending"). cut_mu serialises the requesters, so at most one cut is
	 * asked at a time: the requester sets cut_asked = cut_done + 1 and
	 * waits on q->durable_cv until cut_done reaches it; the janitor, at
	 * a batch boundary, fills cut_fd (a dup of the log the requester
	 * then owns, or -1), cut_size and cut_rc, then bumps cut_done. */
	pthread_mutex_t cut_mu;
	uint64_t cut_asked, cut_done;
	int cut_fd;
	uint64_t cut_size;
	int cut_rc, cut_errno;

	/* Statistics: written by the janitor under stats_mu, read under it. */
	pthread_mutex_t stats_mu;
	uint64_t st_batches, st_records, st_bytes;
	uint64_t st_last_batch_records, st_last_batch_bytes;
	uint64_t st_compactions;
	int64_t st_last_compaction_unix;
	uint64_t st_log_live_bytes; /* as of the last trigger check */
	struct dskvs__fsync_hist hist;

	pthread_t thread;
	bool started;
	/* The thread closing the log a compaction replaced (janitor.c,
	 * close_behind): written by the janitor before it starts the closer,
	 * joined by the janitor or by janitor_stop after the janitor ended. */
	pthread_t closer;
	bool closer_running;
	int (*closer_fn)(int fd);
	int closer_fd;
};

/* Set the links and the locks; logfd -1. */
DSKVS_LOCAL void dskvs__janitor_init(struct dskvs__janitor *j,
                                     struct dskvs__tables *t,
                                     struct dskvs__queue *q,
                                     const dskvs_options *opts,
                                     const struct dskvs__diag *diag, int dirfd,
                                     const char *path);
/* Free what init and the thread allocated; closes the log. The thread must
 * be stopped. */
DSKVS_LOCAL void dskvs__janitor_destroy(struct dskvs__janitor *j);
DSKVS_LOCAL int dskvs__janitor_start(struct dskvs__janitor *j);
/* Finish everything queued, seal the log's end, join the thread. Returns
 * the sticky error (0 if none). */
DSKVS_LOCAL int dskvs__janitor_stop(struct dskvs__janitor *j);
/* Ask for a compaction (kind 1) or a rewrite (2) and wait for it. May
 * sleep; never inside a read-side section. DSKVS_OK, DSKVS_EIO,
 * DSKVS_ENOMEM. */
DSKVS_LOCAL int dskvs__janitor_compact(struct dskvs__janitor *j, int kind);
/* Ask the janitor for a cut of the log and wait for it: at a batch
 * boundary, where every record dequeued so far is written and fdatasync'ed
 * (or the store has a sticky error), it hands back *fd, a dup of the
 * current log (the caller closes it), and *size, the log's size there.
 * Bytes [0, *size) of that file never change afterwards: the log is only
 * appended to, recovery (the only truncation) runs before the janitor
 * starts, and a compaction renames a new file over the log's name but
 * leaves the old inode, readable through *fd. So [0, *size) replays to the
 * state after the first `durable` records of the queue. Call it after
 * waiting for what must be in the cut to be durable. May sleep; never
 * inside a read-side section. Waits behind a compaction that is running.
 * Returns DSKVS_OK, the sticky error, or DSKVS_EIO (dup failed). */
DSKVS_LOCAL int dskvs__janitor_cut(struct dskvs__janitor *j, int *fd,
                                   uint64_t *size);
/* The janitor's part of dskvs_stats_get. */
DSKVS_LOCAL void dskvs__janitor_stats(struct dskvs__janitor *j,
                                      dskvs_stats *st);

/* Write a mark opening batch j->batch_no at the log's end (format.c): it
 * claims every byte before it was synced, so call it only right after a
 * successful fdatasync of the log, and only for a format-2 log. The janitor
 * thread, or recovery before it starts. Returns DSKVS_OK or DSKVS_EIO
 * (errno in j->io_errno). */
DSKVS_LOCAL int dskvs__janitor_write_mark(struct dskvs__janitor *j);
/* The same, written over the mark the log ends with (tail_mark_off) when
 * there is one: recovery's mark of where the numbering goes on. */
DSKVS_LOCAL int dskvs__janitor_open_mark(struct dskvs__janitor *j);

/* ---- batch.c: the janitor's batch machinery, used by janitor.c and
 * compact.c (and by recovery for the mark and the log file) ------------
 * All of these run in the janitor thread only (or before it starts). */

/* Dequeue a batch (batch_max_records, at most `limit` if non-zero, and
 * batch_max_bytes) into j->batch; returns how many. */
DSKVS_LOCAL size_t dskvs__janitor_drain(struct dskvs__janitor *j,
                                        uint64_t limit);
/* Write n records (tagged pointers) at `off` of fd, with as few pwritev
 * calls as IOV_MAX allows; record i gets seqs[i] if seqs is given, else
 * first_seq + i, or with first_seq 0 its block's own seq (the puts of a
 * compaction snapshot, which keep their versions); headers checksummed with
 * `salt`; the last gets the end-of-batch flag if `end`. Returns DSKVS_OK,
 * DSKVS_EIO or DSKVS_ENOMEM, with the errno in j->io_errno for the caller's
 * message; *bytes gets the bytes written. Scratch stays within the batch limits
 * plus one record. */
DSKVS_LOCAL int dskvs__janitor_write_records(
    struct dskvs__janitor *j, int fd, uint64_t off, struct dskvs__rec_ref *recs,
    size_t n, uint64_t first_seq, const uint64_t *seqs, uint32_t salt,
    uint32_t batch, bool end, uint64_t *bytes);
/* Write and sync one batch of n records just drained (the first at
 * position dequeued - n) to the current log, publish it durable, and mark
 * it when nothing else is queued; on failure set the sticky error. Keeps
 * the records' references if `keep` (the caller releases them). May sleep
 * (fdatasync). */
DSKVS_LOCAL void dskvs__janitor_batch(struct dskvs__janitor *j, size_t n,
                                      bool keep);
/* At close, once everything is written: end the log with a synced closing
 * mark (a mark flagged DSKVS_REC_END carrying the highest sequence number
 * handed out), which proves the last batch and tells the next open that
 * no sequence number above it was ever handed out (batch.c, recover.c).
 * Failures are logged, not sticky. */
DSKVS_LOCAL void dskvs__janitor_seal_tail(struct dskvs__janitor *j);
/* Drop the queue's reference of each record; their log bytes. */
DSKVS_LOCAL void dskvs__records_release(struct dskvs__rec_ref *recs, size_t n);
DSKVS_LOCAL uint64_t dskvs__records_bytes(const struct dskvs__rec_ref *recs,
                                          size_t n);

/* compact.c: rewrite the log with only the live set (a rewrite after a
 * sticky error if `rewrite` and the store has one). DSKVS_OK or DSKVS_EIO
 * (nothing changed: see compact.c). Janitor thread only; may sleep. */
DSKVS_LOCAL int dskvs__compact_run(struct dskvs__janitor *j, bool rewrite);
/* Wait for the thread closing a replaced log, if one runs. */
DSKVS_LOCAL void dskvs__compact_join_closer(struct dskvs__janitor *j);

/* Create a fresh log file at `name` holding only a file header with the
 * given salt (sealed length: the header); returns an fd or a DSKVS_E*
 * code. */
DSKVS_LOCAL int dskvs__log_create(struct dskvs__janitor *j, const char *name,
                                  uint32_t salt);

/* recover.c: replay the log into the tables before the janitor starts;
 * moves a torn tail aside and truncates it. Sets j's log state and
 * *seq_base. May run several replay threads. */
DSKVS_LOCAL int dskvs__recover(struct dskvs__janitor *j, uint64_t *seq_base);

#endif
