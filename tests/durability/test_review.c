/*
 * Holes an adversarial review of the format-2 recovery found, each a case
 * that failed before its fix:
 *
 *  - torn_cut_then_close: open cuts a torn tail and the store is closed
 *    with no write. The surviving prefix of the cut batch was synced by the
 *    open and reported durable, so the log must end proven (a mark): a bit
 *    flipped in that prefix later is DSKVS_ECORRUPT, not another torn tail.
 *    The same when the process that opened it is killed before any write
 *    or close (torn_cut_then_kill): open writes the mark itself.
 *  - open_syncs_replayed: a log a killed process wrote but never synced is
 *    replayed and reported durable (seq_base), so open must fdatasync it
 *    before it says so (and before a later batch could claim it synced).
 *  - seq_headroom: a record with a sequence number the scanner allows but
 *    that leaves no room for more writes (within 2^40 of DSKVS_SEQ_MAX) is
 *    refused at open and by verify, instead of letting later writes make a
 * store that no longer opens.
 *  - new_dirs_parents_synced (issue "cost and memory", finding 4): when
 *    dskvs_open creates the store's directory and its parents, the parent
 *    of each directory it creates is fsynced.
 *  - v1_image_in_torn_value: format 1 has no salt, so the proof search
 *    must not look inside the damaged record's own value: a format-1 image
 *    there is not proof that its batch was synced.
 */
#include "dt.h"
#include "internal.h"
#include "v1log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static size_t put_rec(unsigned char *p, uint32_t salt, unsigned flags,
                      uint32_t batch, const char *key, const char *val,
                      uint64_t seq)
{
	size_t kl = strlen(key), vl = strlen(val);
	dskvs__rec_hdr_encode(p, salt, DSKVS_REC_PUT, flags, batch, key, kl,
	                      val, vl, seq);
	memcpy(p + DSKVS_REC_HDR, key, kl);
	memcpy(p + DSKVS_REC_HDR + kl, val, vl);
	return DSKVS_REC_HDR + kl + vl;
}

static void flip(const char *path, uint64_t off)
{
	size_t n;
	unsigned char *b = dt_read_file(path, &n);
	DT_CHECK(b != NULL && off < n, "flip at %llu", (unsigned long long)off);
	b[off] ^= 1;
	dt_write_file(path, b, n);
	free(b);
}

static void torn_cut(const char *dir, bool kill_after_open)
{
	unsigned char buf[1024] = { 0 };
	uint32_t salt = 0xabcdef01u;
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	size_t off = DSKVS_FILE_HDR;

	dskvs__file_hdr_encode(buf, salt, DSKVS_FILE_HDR);
	off += put_rec(buf + off, salt, DSKVS_REC_END, 1, "c/a", "value-a", 1);
	size_t r2 = off;
	off += put_rec(buf + off, salt, 0, 2, "c/b", "value-b", 2);
	size_t r3 = off;
	put_rec(buf + off, salt, DSKVS_REC_END, 2, "c/c", "value-c", 3);
	dt_write_file(log, buf, r3 + 20); /* torn inside c/c's header */

	dskvs *s;
	char v[16];
	size_t len;
	if (kill_after_open) {
		/* A process that opens the store and dies before any write
		 * or close: the proof must already be in the log. */
		fflush(NULL);
		pid_t pid = fork();
		DT_CHECK(pid >= 0, "fork");
		if (pid == 0) {
			dt_in_child = true;
			DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
			DT_RC(dskvs_get(s, "c/b", v, sizeof(v), &len),
			      DSKVS_OK);
			_exit(0);
		}
		int st;
		DT_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		             WEXITSTATUS(st) == 0,
		         "child failed");
	} else {
		DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
		DT_RC(dskvs_get(s, "c/b", v, sizeof(v), &len), DSKVS_OK);
		DT_CHECK(dskvs_durable_seq(s) >= 2, "c/b is reported durable");
		DT_RC(dskvs_close(s), DSKVS_OK);
	}
	DT_CHECK(dt_file_size(log) == (long long)(r3 + DSKVS_REC_HDR),
	         "log %lld bytes: close left no mark after the cut batch",
	         dt_file_size(log));
	flip(log, r2 + DSKVS_REC_HDR + 3 + 2); /* in c/b's value */
	DT_RC(dskvs_verify(dir, NULL, NULL, NULL), DSKVS_ECORRUPT);
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_ECORRUPT);
	free(log);
}

static int log_fd = -1;
static unsigned log_syncs;

static int count_openat(int d, const char *n, int f, mode_t m)
{
	int fd = dskvs__io_libc.openat(d, n, f, m);
	if (strcmp(n, DSKVS_LOG_NAME) == 0)
		log_fd = fd;
	return fd;
}

static int count_fdatasync(int fd)
{
	if (fd == log_fd)
		log_syncs++;
	return dskvs__io_libc.fdatasync(fd);
}

/* The fdatasyncs of the log done when open writes its first mark (a mark
 * claims every byte before it synced), or -1 if it writes none. */
static int syncs_at_mark = -1;

static ssize_t count_pwritev(int fd, const struct iovec *iov, int cnt,
                             off_t off)
{
	if (fd == log_fd && syncs_at_mark < 0 && cnt == 1 &&
	    iov[0].iov_len == DSKVS_REC_HDR &&
	    ((const unsigned char *)iov[0].iov_base)[8] == DSKVS_REC_MARK)
		syncs_at_mark = (int)log_syncs;
	return dskvs__io_libc.pwritev(fd, iov, cnt, off);
}

static void open_syncs_replayed(const char *dir)
{
	unsigned char buf[256] = { 0 };
	uint32_t salt = 99;
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	size_t off = DSKVS_FILE_HDR;

	/* What a killed writer leaves: a batch written, its fdatasync never
	 * done (written here with write(), never synced). */
	dskvs__file_hdr_encode(buf, salt, DSKVS_FILE_HDR);
	off += put_rec(buf + off, salt, DSKVS_REC_END, 1, "c/k", "two", 1);
	dt_write_file(log, buf, off);
	dskvs__io.openat = count_openat;
	dskvs__io.fdatasync = count_fdatasync;
	dskvs__io.pwritev = count_pwritev;
	dskvs *s;
	log_syncs = 0;
	syncs_at_mark = -1;
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
	unsigned at_open = log_syncs;
	/* Sequence 1 durable, and numbering goes on 2^32 above it: the log
	 * does not end with a closing mark (recover.c, next_seq_base). */
	DT_CHECK(dskvs_durable_seq(s) == 1 + (UINT64_C(1) << 32),
	         "durable_seq %llu", (unsigned long long)dskvs_durable_seq(s));
	DT_CHECK(at_open >= 1,
	         "open reported sequence 1 durable with no fdatasync of the "
	         "log");
	DT_CHECK(syncs_at_mark >= 1,
	         "open wrote a mark (%d fdatasyncs of the log before it) over "
	         "a batch it had not synced",
	         syncs_at_mark);
	DT_RC(dskvs_close(s), DSKVS_OK);
	dskvs__io = dskvs__io_libc;
	free(log);
}

static void seq_headroom(const char *dir)
{
	static const uint64_t seqs[2] = {
		DSKVS_SEQ_MAX, DSKVS_SEQ_MAX - (UINT64_C(1) << 40) + 1
	};
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	for (int i = 0; i < 2; i++) {
		unsigned char buf[128] = { 0 };
		size_t off = DSKVS_FILE_HDR;
		dskvs__file_hdr_encode(buf, 7, DSKVS_FILE_HDR);
		off += put_rec(buf + off, 7, DSKVS_REC_END, 1, "c/a", "v",
		               seqs[i]);
		dt_empty_dir(dir);
		dt_write_file(log, buf, off);
		dskvs *s;
		DT_RC(dskvs_verify(dir, NULL, NULL, NULL), DSKVS_ECORRUPT);
		DT_RC(dskvs_open(dir, NULL, &s), DSKVS_ECORRUPT);
	}
	/* Just below the limit opens. */
	unsigned char buf[128] = { 0 };
	size_t off = DSKVS_FILE_HDR;
	dskvs__file_hdr_encode(buf, 7, DSKVS_FILE_HDR);
	off += put_rec(buf + off, 7, DSKVS_REC_END, 1, "c/a", "v",
	               DSKVS_SEQ_MAX - (UINT64_C(1) << 40));
	dt_empty_dir(dir);
	dt_write_file(log, buf, off);
	dskvs *s;
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
	DT_RC(dskvs_close(s), DSKVS_OK);
	free(log);
}

static void v1_image_in_torn_value(const char *dir)
{
	struct v1log img, l;
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	size_t big = 16384;
	unsigned char *val = malloc(big);
	DT_CHECK(val != NULL, "out of memory");

	v1_init(&img);
	v1_rec(&img, V1_PUT, V1_END, 7, "x/y", "z", 1, 900);
	v1_init(&l);
	v1_rec(&l, V1_PUT, V1_END, 1, "c/a", "one", 3, 1);
	memset(val, 'v', big);
	memcpy(val + 12288, img.buf, img.len);
	size_t r2 = l.len;
	v1_rec(&l, V1_PUT, V1_END, 2, "c/big", val, big, 2);
	/* The crash: the record's first page never reached the disk. */
	memset(l.buf + r2 + 40, 0, 4096);
	dt_empty_dir(dir);
	v1_write(&l, log);
	dskvs *s;
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
	char v[8];
	size_t len;
	DT_RC(dskvs_get(s, "c/a", v, sizeof(v), &len), DSKVS_OK);
	DT_RC(dskvs_get(s, "c/big", NULL, 0, &len), DSKVS_NOTFOUND);
	DT_RC(dskvs_close(s), DSKVS_OK);
	v1_free(&img);
	v1_free(&l);
	free(val);
	free(log);
}

static void torn_cut_then_close(const char *dir)
{
	torn_cut(dir, false);
}

static void torn_cut_then_kill(const char *dir)
{
	torn_cut(dir, true);
}

static ino_t synced_dirs[16];
static unsigned nsynced_dirs;

static int record_fsync(int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && nsynced_dirs < 16)
		synced_dirs[nsynced_dirs++] = st.st_ino;
	return dskvs__io_libc.fsync(fd);
}

static bool dir_synced(const char *path)
{
	struct stat st;
	DT_CHECK(stat(path, &st) == 0, "stat %s", path);
	for (unsigned i = 0; i < nsynced_dirs; i++)
		if (synced_dirs[i] == st.st_ino)
			return true;
	return false;
}

static void new_dirs_parents_synced(const char *dir)
{
	char *leaf = dt_fmt("%s/a/b/store", dir);
	char *a = dt_fmt("%s/a", dir), *b = dt_fmt("%s/a/b", dir);
	dskvs *s;
	nsynced_dirs = 0;
	dskvs__io.fsync = record_fsync;
	DT_RC(dskvs_open(leaf, NULL, &s), DSKVS_OK);
	dskvs__io = dskvs__io_libc;
	DT_CHECK(dir_synced(dir) && dir_synced(a) && dir_synced(b),
	         "the parents of the directories open created were not all "
	         "fsynced (%u directory fsyncs)",
	         nsynced_dirs);
	DT_RC(dskvs_close(s), DSKVS_OK);
	free(leaf);
	free(a);
	free(b);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(const char *dir);
	} cases[] = {
		{ "torn_cut_then_close", torn_cut_then_close },
		{ "torn_cut_then_kill", torn_cut_then_kill },
		{ "open_syncs_replayed", open_syncs_replayed },
		{ "seq_headroom", seq_headroom },
		{ "new_dirs_parents_synced", new_dirs_parents_synced },
		{ "v1_image_in_torn_value", v1_image_in_torn_value },
	};
	dt_seed("test_review", 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *dir = dt_mkdtemp("review");
		cases[i].fn(dir);
		printf("%s: ok\n", cases[i].name);
		dt_rmtree(dir);
		free(dir);
	}
	return 0;
}
