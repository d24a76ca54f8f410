/*
 * Durability tickets, the durable eventfd, dskvs_rewrite and statistics.
 *
 *  tickets:  sequence numbers grow; a write's ticket becomes durable and
 *            the eventfd turns readable (poll); dskvs_wait_durable waits,
 *            checks (timeout 0) and refuses numbers never handed out;
 *            numbers keep growing across a reopen.
 *  stats:    batches, records_written, bytes_written, durable_seq, the
 *            fdatasync latencies, queue and pending figures, compactions
 *            move as the janitor works, and agree with the log file.
 *  rewrite:  after an injected fdatasync failure (fsim seam): the ticket
 *            wait says DSKVS_EIO, the eventfd fires, stats carry
 *            last_error/last_errno, writes are refused; dskvs_rewrite
 *            clears it all, the ticket becomes durable, writes work again,
 *            and the directory, and what a power loss would leave of it,
 *            reopen with every accepted write and none of the refused.
 *
 * No timed assertion: waits are unbounded and CTest's timeout catches a
 * hang.
 */
#include "dt.h"
#include "fsim.h"
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void put(dskvs *s, const char *key, const char *val, uint64_t *seq,
                int want)
{
	DT_RC(dskvs_put_seq(s, key, val, strlen(val), NULL, NULL, seq), want);
}

static void expect(dskvs *s, const char *key, const char *val)
{
	char buf[256];
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

/* Block until the eventfd is readable, then clear it. */
static void wait_efd(int efd)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t v;
	int r;
	while ((r = poll(&p, 1, -1)) < 0 && errno == EINTR)
		;
	DT_CHECK(r == 1 && (p.revents & POLLIN), "poll: %d %s", r,
	         strerror(errno));
	DT_CHECK(read(efd, &v, sizeof(v)) == sizeof(v) && v > 0,
	         "eventfd read: %s", strerror(errno));
}

static void tickets(void)
{
	char *dir = dt_mkdtemp("tickets");
	dskvs_options o;
	dskvs *s;
	uint64_t a, b, c, d, last;

	dt_options(&o, DSKVS_SYNC_ASYNC);
	DT_RC(dskvs_open(dir, &o, &s), DSKVS_OK);
	int efd = dskvs_durable_fd(s);
	DT_CHECK(efd >= 0, "dskvs_durable_fd: %s", dskvs_err_name(efd));
	DT_CHECK(dskvs_durable_fd(s) == efd, "a second eventfd");

	put(s, "t/a", "1", &a, DSKVS_OK);
	DT_CHECK(a > 0, "first sequence number is 0");
	/* Poll until the ticket is durable: the eventfd fires on every
	 * advance, so this loop ends once the janitor synced it. */
	while (dskvs_durable_seq(s) < a)
		wait_efd(efd);
	DT_RC(dskvs_wait_durable(s, a, 0), DSKVS_OK);

	put(s, "t/b", "2", &b, DSKVS_OK);
	DT_RC(dskvs_delete_seq(s, "t/a", &c), DSKVS_OK);
	DT_RC(dskvs_delete_all_seq(s, "t", &d), DSKVS_OK);
	DT_CHECK(a < b && b < c && c < d,
	         "sequence numbers %llu %llu %llu "
	         "%llu do not grow",
	         (unsigned long long)a, (unsigned long long)b,
	         (unsigned long long)c, (unsigned long long)d);
	DT_RC(dskvs_wait_durable(s, d, -1), DSKVS_OK);
	DT_CHECK(dskvs_durable_seq(s) >= d, "durable_seq behind");
	DT_RC(dskvs_wait_durable(s, b, 0), DSKVS_OK);
	DT_RC(dskvs_wait_durable(s, d + 1000, 0), DSKVS_EINVAL);
	DT_RC(dskvs_wait_durable(NULL, 1, 0), DSKVS_EINVAL);
	DT_CHECK(dskvs_durable_seq(NULL) == 0, "durable_seq(NULL)");
	/* A failed write hands out no number. */
	uint64_t none = 77;
	DT_RC(dskvs_delete_seq(s, "t/nothing", &none), DSKVS_NOTFOUND);
	last = d;
	DT_RC(dskvs_close(s), DSKVS_OK);

	/* Numbers continue after a reopen: a ticket is never reused. */
	DT_RC(dskvs_open(dir, &o, &s), DSKVS_OK);
	put(s, "t/e", "5", &a, DSKVS_OK);
	DT_CHECK(a > last, "after reopen: %llu <= %llu", (unsigned long long)a,
	         (unsigned long long)last);
	DT_RC(dskvs_wait_durable(s, a, -1), DSKVS_OK);
	DT_RC(dskvs_close(s), DSKVS_OK);
	dt_rmtree(dir);
	free(dir);
	printf("tickets and eventfd: ok\n");
}

static void stats(void)
{
	char *dir = dt_mkdtemp("stats");
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	dskvs_options o;
	dskvs_stats s0, s1, s2;
	dskvs *s;
	uint64_t seq = 0;
	char val[200];

	dt_options(&o, DSKVS_SYNC_ASYNC);
	o.auto_compact = 0;
	DT_RC(dskvs_open(dir, &o, &s), DSKVS_OK);
	DT_RC(dskvs_stats_get(s, &s0), DSKVS_OK);
	DT_CHECK(s0.batches == 0 && s0.records_written == 0 &&
	             s0.compactions == 0 && s0.last_compaction_unix == 0 &&
	             s0.last_error == 0 && s0.entries == 0,
	         "fresh store: nonzero stats");
	DT_CHECK(s0.log_bytes == (uint64_t)dt_file_size(log),
	         "log_bytes %llu, file %lld", (unsigned long long)s0.log_bytes,
	         dt_file_size(log));

	/* 100 writes over 10 keys: 90 of them garbage after the fact. */
	for (int i = 0; i < 100; i++) {
		char key[16];
		snprintf(key, sizeof(key), "s/k%d", i % 10);
		memset(val, 'a' + i % 26, sizeof(val));
		DT_RC(dskvs_put_seq(s, key, val, sizeof(val), NULL, NULL, &seq),
		      DSKVS_OK);
	}
	DT_RC(dskvs_sync(s), DSKVS_OK);
	DT_RC(dskvs_stats_get(s, &s1), DSKVS_OK);
	DT_CHECK(s1.seq == seq && s1.durable_seq == seq,
	         "seq %llu durable %llu, last ticket %llu",
	         (unsigned long long)s1.seq, (unsigned long long)s1.durable_seq,
	         (unsigned long long)seq);
	DT_CHECK(s1.batches >= 1 && s1.batches <= 100, "batches %llu",
	         (unsigned long long)s1.batches);
	DT_CHECK(s1.records_written == 100, "records_written %llu",
	         (unsigned long long)s1.records_written);
	DT_CHECK(s1.bytes_written == s1.log_bytes - s0.log_bytes,
	         "bytes_written %llu, log grew %llu",
	         (unsigned long long)s1.bytes_written,
	         (unsigned long long)(s1.log_bytes - s0.log_bytes));
	DT_CHECK(s1.log_bytes == (uint64_t)dt_file_size(log),
	         "log_bytes %llu, file %lld", (unsigned long long)s1.log_bytes,
	         dt_file_size(log));
	DT_CHECK(s1.last_batch_records >= 1 && s1.last_batch_bytes > 0,
	         "last batch %llu records %llu bytes",
	         (unsigned long long)s1.last_batch_records,
	         (unsigned long long)s1.last_batch_bytes);
	DT_CHECK(s1.fsync_last_ns > 0 && s1.fsync_p50_ns > 0 &&
	             s1.fsync_p50_ns <= s1.fsync_p99_ns &&
	             s1.fsync_p99_ns <= s1.fsync_max_ns &&
	             s1.fsync_last_ns <= s1.fsync_max_ns,
	         "fsync latencies last %llu p50 %llu p99 %llu max %llu",
	         (unsigned long long)s1.fsync_last_ns,
	         (unsigned long long)s1.fsync_p50_ns,
	         (unsigned long long)s1.fsync_p99_ns,
	         (unsigned long long)s1.fsync_max_ns);
	DT_CHECK(s1.queue_depth == 0 && s1.pending_bytes == 0 &&
	             s1.oldest_pending_ns == 0,
	         "after sync: queue %llu pending %llu bytes, oldest %llu ns",
	         (unsigned long long)s1.queue_depth,
	         (unsigned long long)s1.pending_bytes,
	         (unsigned long long)s1.oldest_pending_ns);
	DT_CHECK(s1.collections == 1 && s1.entries == 10,
	         "%llu colls %llu "
	         "entries",
	         (unsigned long long)s1.collections,
	         (unsigned long long)s1.entries);
	DT_CHECK(s1.live_bytes == 10 * (2 + sizeof(val)), "live_bytes %llu",
	         (unsigned long long)s1.live_bytes);
	DT_CHECK(s1.log_live_bytes < s1.log_bytes / 5,
	         "log_live_bytes %llu of %llu",
	         (unsigned long long)s1.log_live_bytes,
	         (unsigned long long)s1.log_bytes);

	time_t before = time(NULL);
	DT_RC(dskvs_compact(s), DSKVS_OK);
	DT_RC(dskvs_stats_get(s, &s2), DSKVS_OK);
	DT_CHECK(s2.compactions == 1, "compactions %llu",
	         (unsigned long long)s2.compactions);
	DT_CHECK(s2.last_compaction_unix >= before &&
	             s2.last_compaction_unix <= time(NULL),
	         "last_compaction_unix %lld",
	         (long long)s2.last_compaction_unix);
	/* The sealed part ends with a mark (the highest sequence number
	 * handed out before it), which no member accounts for. */
	DT_CHECK(s2.log_bytes == s2.log_live_bytes + DSKVS_REC_HDR &&
	             s2.log_bytes == (uint64_t)dt_file_size(log),
	         "after compaction: log_bytes %llu, live %llu, file %lld",
	         (unsigned long long)s2.log_bytes,
	         (unsigned long long)s2.log_live_bytes, dt_file_size(log));
	DT_CHECK(s2.entries == 10 && s2.seq == s1.seq &&
	             s2.durable_seq == s1.durable_seq && s2.last_error == 0,
	         "compaction changed the data figures");
	DT_CHECK(s2.format_major == DSKVS_FORMAT_MAJOR, "format %u.%u",
	         s2.format_major, s2.format_minor);
	DT_RC(dskvs_close(s), DSKVS_OK);
	dt_rmtree(dir);
	free(dir);
	free(log);
	printf("stats: ok (100 records in %llu batches, fdatasync p50 %llu "
	       "us)\n",
	       (unsigned long long)s1.batches,
	       (unsigned long long)s1.fsync_p50_ns / 1000);
}

static void rewrite(void)
{
	char *dir = dt_mkdtemp("rewrite");
	struct fsim_config cfg = { .real_sync = true };
	dskvs_stats st;
	dskvs *s;
	uint64_t sa, sc, se;

	fsim_install(dir, &cfg);
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
	int efd = dskvs_durable_fd(s);
	DT_CHECK(efd >= 0, "eventfd");
	put(s, "r/a", "1", &sa, DSKVS_OK);
	put(s, "r/b", "2", NULL, DSKVS_OK);
	DT_RC(dskvs_sync(s), DSKVS_OK);
	while (read(efd, &(uint64_t){ 0 }, 8) == 8) /* clear it */
		;

	fsim_arm(FSIM_FDATASYNC, 1, FSIM_EIO, false);
	put(s, "r/c", "3", &sc, DSKVS_OK);
	DT_RC(dskvs_wait_durable(s, sc, -1), DSKVS_EIO);
	wait_efd(efd); /* the error was signalled */
	DT_RC(dskvs_stats_get(s, &st), DSKVS_OK);
	DT_CHECK(st.last_error == DSKVS_EIO && st.last_errno == EIO,
	         "last_error %s last_errno %d", dskvs_err_name(st.last_error),
	         st.last_errno);
	DT_CHECK(st.durable_seq < sc,
	         "durable_seq %llu passed the failed "
	         "write %llu",
	         (unsigned long long)st.durable_seq, (unsigned long long)sc);
	DT_CHECK(dskvs_durable_seq(s) >= sa, "durable_seq went back");
	put(s, "r/d", "4", NULL, DSKVS_EIO); /* refused */
	DT_RC(dskvs_sync(s), DSKVS_EIO);
	DT_RC(dskvs_compact(s), DSKVS_EIO);
	expect(s, "r/c", "3"); /* accepted, in memory */
	expect(s, "r/d", NULL);

	DT_RC(dskvs_rewrite(s), DSKVS_OK);
	DT_RC(dskvs_stats_get(s, &st), DSKVS_OK);
	DT_CHECK(st.last_error == 0 && st.last_errno == 0,
	         "after rewrite: last_error %s last_errno %d",
	         dskvs_err_name(st.last_error), st.last_errno);
	DT_CHECK(st.compactions == 1, "rewrite not counted: %llu",
	         (unsigned long long)st.compactions);
	DT_RC(dskvs_wait_durable(s, sc, 0), DSKVS_OK);
	put(s, "r/e", "5", &se, DSKVS_OK);
	DT_RC(dskvs_wait_durable(s, se, -1), DSKVS_OK);
	DT_RC(dskvs_sync(s), DSKVS_OK);
	DT_RC(dskvs_rewrite(s), DSKVS_OK); /* no error: still fine */
	DT_RC(dskvs_close(s), DSKVS_OK);

	char *vd = dt_fmt("%s.durable", dir), *vn = dt_fmt("%s.names", dir);
	fsim_materialize(vd, FSIM_DURABLE, 0);
	fsim_materialize(vn, FSIM_DURABLE_NAMES, 0);
	fsim_uninstall();
	const char *views[] = { dir, vd, vn };
	for (int i = 0; i < 3; i++) {
		DT_RC(dskvs_open(views[i], NULL, &s), DSKVS_OK);
		expect(s, "r/a", "1");
		expect(s, "r/b", "2");
		expect(s, "r/c", "3");
		expect(s, "r/d", NULL);
		expect(s, "r/e", "5");
		DT_RC(dskvs_close(s), DSKVS_OK);
	}
	dt_rmtree(vd);
	dt_rmtree(vn);
	dt_rmtree(dir);
	free(vd);
	free(vn);
	free(dir);
	printf("rewrite after a failed fdatasync: ok\n");
}

int main(void)
{
	dt_seed("test_tickets", 0);
	tickets();
	stats();
	rewrite();
	return 0;
}
