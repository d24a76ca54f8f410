/*
 * rev13b: adversarial review of the fixes to issue 13 (closing marks, the
 * sealed part's mark, version numbering after crashes, get_all in
 * callbacks, the batch's hold of its members map, backup's path).
 * White-box: links dskvs_internal to reach the I/O seam.
 */
#include "testutil.h"

#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(rev13b, .init = tu_setup, .fini = tu_teardown, .timeout = 60);

/* ---- a crash in the middle of close's one write ------------------------ */

/* The child's pwritev: the first write of exactly one record header (the
 * closing mark) reaches the disk only half, then the process dies (a power
 * loss or kill -9 in the middle of that write). */
static ssize_t torn_mark_pwritev(int fd, const struct iovec *iov, int cnt,
                                 off_t off)
{
	size_t n = 0;
	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	if (n == DSKVS_REC_HDR && cnt == 1) {
		ssize_t w = pwrite(fd, iov[0].iov_base, DSKVS_REC_HDR / 2, off);
		(void)w;
		fdatasync(fd);
		_exit(9);
	}
	return pwritev(fd, iov, cnt, off);
}

/* Open and close the store in a child that dies in the middle of the
 * closing mark's write. */
static void open_close_torn(const char *dir)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		if (dskvs_open(dir, NULL, &s))
			_exit(2);
		dskvs__io.pwritev = torn_mark_pwritev;
		dskvs_close(s);
		_exit(0); /* no record header written at close */
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st));
	cr_log_info("child exit %d", WEXITSTATUS(st));
}

/*
 * A compaction leaves a log that ends with its sealed part, whose last
 * record is the mark carrying the high-water sequence number. After a
 * crash (no closing mark), the next open takes that mark for "the mark the
 * log ends with" (recover.c: tail_mark_off = log_size - DSKVS_REC_HDR) and
 * close writes its closing mark over it in place: over the last record of
 * the part the file header says was synced whole. A crash that tears that
 * one write leaves damage inside the sealed part, which every later open
 * refuses with DSKVS_ECORRUPT, although every write in the store had been
 * synced and nothing had been written since.
 */
Test(rev13b, torn_close_after_compaction_and_crash_keeps_the_store)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		if (dskvs_open(tu_dir, NULL, &s))
			_exit(2);
		dskvs_put(s, "c/a", "1", 1, NULL, NULL);
		dskvs_put(s, "c/y", "old", 3, NULL, NULL);
		dskvs_delete(s, "c/y");
		if (dskvs_compact(s) || dskvs_sync(s))
			_exit(3);
		_exit(0); /* crash: no close */
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* The store opens, and something only reads it and closes it (say
	 * `dskvs get`), dying mid-way through close's write. */
	open_close_torn(tu_dir);

	dskvs *s;
	int rc = dskvs_open(tu_dir, NULL, &s);
	cr_assert_eq(rc, DSKVS_OK,
	             "open after a torn closing mark: %s (%s): every write "
	             "was synced before, nothing written since",
	             dskvs_strerror(rc), dskvs_errmsg(NULL));
	tu_check_str(s, "c/a", "1");
	tu_close(s);
}

/* Control: the same without the compaction (the log ends with an idle
 * mark, which the closing mark may overwrite: a torn tail). */
Test(rev13b, torn_close_after_idle_mark_keeps_the_store)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		if (dskvs_open(tu_dir, NULL, &s))
			_exit(2);
		dskvs_put(s, "c/a", "1", 1, NULL, NULL);
		if (dskvs_sync(s))
			_exit(3);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	open_close_torn(tu_dir);
	dskvs *s;
	int rc = dskvs_open(tu_dir, NULL, &s);
	cr_assert_eq(rc, DSKVS_OK, "%s (%s)", dskvs_strerror(rc),
	             dskvs_errmsg(NULL));
	tu_check_str(s, "c/a", "1");
	tu_close(s);
}
