/*
 * The store directory as seen by several handles and processes: the lock
 * (EBUSY), unusable paths (EPATH) and a writer killed with SIGKILL.
 *
 * Children are forked before the parent touches dskvs in the test, so a child
 * never inherits a store (or RCU state) from its parent, and they leave with
 * _exit() so that no Criterion or sanitizer exit handler runs twice. They
 * report through their exit status or a pipe, never through assertions.
 */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(process, .init = tu_setup, .fini = tu_teardown, .timeout = 20);

/* dskvs codes as exit statuses: 0 for OK, -(code + 31000) for a dskvs code
 * (1..999 fits in 8 bits for the codes that exist), 255 otherwise. */
static int code_to_status(int rc)
{
	if (rc == 0)
		return 0;
	if (rc <= -31001 && rc >= -31254)
		return -(rc + 31000);
	return 255;
}

static int status_to_code(int status)
{
	cr_assert(WIFEXITED(status), "child did not exit normally (0x%x)",
	          status);
	int st = WEXITSTATUS(status);
	cr_assert_neq(st, 255, "child failed outside dskvs");
	return st == 0 ? 0 : -(31000 + st);
}

/* A child that waits for a byte on the returned fd's pipe, then tries to
 * open dir, closes it if that worked and exits with the code. */
static pid_t spawn_opener(const char *dir, int *go)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
	if (pid == 0) {
		char c;
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(255);
		dskvs *s = NULL;
		int rc = dskvs_open(dir, NULL, &s);
		if (rc == 0 && dskvs_close(s) != 0)
			_exit(255);
		_exit(code_to_status(rc));
	}
	close(p[0]);
	*go = p[1];
	return pid;
}

static int run_opener(pid_t pid, int go)
{
	int status;

	cr_assert_eq(write(go, "g", 1), 1);
	close(go);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status_to_code(status);
}

/* ---- EBUSY ------------------------------------------------------------------
 */

Test(process, second_open_in_same_process_is_ebusy)
{
	dskvs *a = tu_open(tu_dir);
	dskvs *b = (dskvs *)1;

	tu_put_str(a, "c/k", "a");
	cr_assert_eq(dskvs_open(tu_dir, NULL, &b), DSKVS_EBUSY);
	cr_assert_null(b);
	/* The first handle is unharmed. */
	tu_check_str(a, "c/k", "a");
	tu_put_str(a, "c/k", "a2");
	tu_close(a);
	/* Free again once closed. */
	b = tu_open(tu_dir);
	tu_check_str(b, "c/k", "a2");
	tu_close(b);
}

Test(process, other_spellings_of_an_open_directory_are_ebusy)
{
	dskvs *a = tu_open(tu_dir);
	dskvs *b = (dskvs *)1;
	char *dot = tu_fmt("%s/.", tu_dir);
	/* Inside tu_dir, so it goes with it. */
	char *link = tu_fmt("%s/self", tu_dir);

	cr_assert_eq(symlink(tu_dir, link), 0);
	cr_assert_eq(dskvs_open(dot, NULL, &b), DSKVS_EBUSY);
	cr_assert_null(b);
	cr_assert_eq(dskvs_open(link, NULL, &b), DSKVS_EBUSY);
	cr_assert_null(b);
	tu_close(a);
	free(link);
	free(dot);
}

Test(process, open_from_another_process_is_ebusy)
{
	int go;
	pid_t pid = spawn_opener(tu_dir, &go);
	dskvs *s = tu_open(tu_dir);

	int rc = run_opener(pid, go);
	cr_assert_eq(rc, DSKVS_EBUSY, "child's open = %d (%s)", rc,
	             dskvs_err_name(rc));
	tu_put_str(s, "c/k", "still mine");
	tu_close(s);
}

Test(process, other_process_opens_after_close)
{
	int go;
	pid_t pid = spawn_opener(tu_dir, &go);
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, "c/k", "v");
	tu_close(s);
	int rc = run_opener(pid, go);
	cr_assert_eq(rc, DSKVS_OK, "child's open = %d (%s)", rc,
	             dskvs_err_name(rc));
}

/* ---- EPATH -----------------------------------------------------------------
 */

Test(process, path_that_is_a_regular_file_is_epath)
{
	char *f = tu_fmt("%s/file", tu_dir);
	dskvs *s = (dskvs *)1;

	tu_write_file(f, "data", 4);
	cr_assert_eq(dskvs_open(f, NULL, &s), DSKVS_EPATH);
	cr_assert_null(s);
	size_t len;
	char *d = tu_read_file(f, &len);
	cr_assert_eq(len, 4, "the file was changed");
	free(d);
	free(f);
}

Test(process, path_under_a_regular_file_is_epath)
{
	char *f = tu_fmt("%s/file", tu_dir);
	char *p = tu_fmt("%s/file/store", tu_dir);
	char *pp = tu_fmt("%s/file/a/b", tu_dir);
	dskvs *s = (dskvs *)1;

	tu_write_file(f, "data", 4);
	cr_assert_eq(dskvs_open(p, NULL, &s), DSKVS_EPATH);
	cr_assert_null(s);
	cr_assert_eq(dskvs_open(pp, NULL, &s), DSKVS_EPATH);
	cr_assert_null(s);
	free(pp);
	free(p);
	free(f);
}

/* Root ignores permission bits; run as nobody for the duration, through the
 * effective uid only, so the test can come back and clean up. */
static int drop_root(void)
{
	if (geteuid() != 0)
		return 1;
	if (chmod(tu_dir, 0711) != 0)
		return 0;
	return seteuid(65534) == 0;
}

static void restore_root(int was_root)
{
	if (was_root)
		cr_assert_eq(seteuid(0), 0);
}

Test(process, unreadable_directory_is_epath)
{
	char *p = tu_fmt("%s/locked", tu_dir);
	char *ro = tu_fmt("%s/readonly", tu_dir);

	cr_assert_eq(mkdir(p, 0700), 0);
	cr_assert_eq(mkdir(ro, 0700), 0);
	/* A store written while permitted, then made inaccessible. */
	dskvs *s = tu_open(ro);
	tu_put_str(s, "c/k", "v");
	tu_close(s);
	cr_assert_eq(chmod(p, 0), 0);
	cr_assert_eq(chmod(ro, 0), 0);
	int was_root = geteuid() == 0;
	if (was_root) {
		/* Hand the directories to nobody, then strip its rights. */
		cr_assert_eq(chown(p, 65534, 65534), 0);
	}
	if (!drop_root()) {
		free(p);
		free(ro);
		cr_skip_test("running as root and cannot drop privileges");
	}
	dskvs *a = (dskvs *)1, *b = (dskvs *)1;
	int rc1 = dskvs_open(p, NULL, &a);
	int rc2 = dskvs_open(ro, NULL, &b);
	restore_root(was_root);
	cr_assert_eq(rc1, DSKVS_EPATH, "empty 0000 dir: open = %s",
	             dskvs_err_name(rc1));
	cr_assert_null(a);
	cr_assert_eq(rc2, DSKVS_EPATH, "store dir 0000: open = %s",
	             dskvs_err_name(rc2));
	cr_assert_null(b);
	free(p);
	free(ro);
}

Test(process, uncreatable_directory_is_epath)
{
	char *parent = tu_fmt("%s/parent", tu_dir);
	char *p = tu_fmt("%s/parent/store", tu_dir);

	cr_assert_eq(mkdir(parent, 0500), 0);
	int was_root = geteuid() == 0;
	if (was_root)
		cr_assert_eq(chown(parent, 65534, 65534), 0);
	if (!drop_root()) {
		free(p);
		free(parent);
		cr_skip_test("running as root and cannot drop privileges");
	}
	dskvs *s = (dskvs *)1;
	int rc = dskvs_open(p, NULL, &s);
	restore_root(was_root);
	cr_assert_eq(rc, DSKVS_EPATH, "open = %s", dskvs_err_name(rc));
	cr_assert_null(s);
	free(p);
	free(parent);
}

/* ---- kill -9 ------------------------------------------------------------ */

enum ack_mode { ACK_SYNC, ACK_WAIT_DURABLE, ACK_SYNC_ALWAYS };

static size_t value_len(uint32_t i)
{
	return 1 + (i * 37) % 300;
}

static void make_value(uint32_t i, char *buf)
{
	size_t n = value_len(i);

	for (size_t j = 0; j < n; j++)
		buf[j] = (char)('a' + (i + j) % 26);
	/* The version, readable back from the hot key. */
	memcpy(buf, &i, n < sizeof(i) ? n : sizeof(i));
}

/* The child: writes until killed. Every write it acknowledges (the index,
 * written to fd) has been made durable by the mode's mechanism. */
static void writer_child(const char *dir, enum ack_mode mode, int fd)
{
	dskvs_options o;
	dskvs *s = NULL;
	char key[32], val[512];

	dskvs_options_init(&o);
	if (mode == ACK_SYNC_ALWAYS)
		o.sync_mode = DSKVS_SYNC_ALWAYS;
	if (dskvs_open(dir, &o, &s) != 0)
		_exit(1);
	for (uint32_t i = 0;; i++) {
		uint64_t seq = 0;
		make_value(i, val);
		/* Unacknowledged noise, pending when the kill comes. */
		snprintf(key, sizeof(key), "noise/%u", i % 50);
		if (dskvs_put(s, key, val, value_len(i), NULL, NULL) != 0)
			_exit(2);
		snprintf(key, sizeof(key), "k/%u", i);
		if (dskvs_put(s, key, val, value_len(i), NULL, NULL) != 0)
			_exit(3);
		snprintf(key, sizeof(key), "d/%u", i);
		if (dskvs_put(s, key, "x", 1, NULL, NULL) != 0 ||
		    dskvs_delete(s, key) != 0)
			_exit(4);
		if (i % 10 == 0 && dskvs_delete_all(s, "noise") != 0)
			_exit(5);
		if (dskvs_put_seq(s, "hot/x", &i, sizeof(i), NULL, NULL,
		                  &seq) != 0)
			_exit(6);
		switch (mode) {
		case ACK_SYNC:
			if (dskvs_sync(s) != 0)
				_exit(7);
			break;
		case ACK_WAIT_DURABLE:
			if (dskvs_wait_durable(s, seq, -1) != 0)
				_exit(8);
			break;
		case ACK_SYNC_ALWAYS:
			break;
		}
		if (write(fd, &i, sizeof(i)) != (ssize_t)sizeof(i))
			_exit(9);
	}
}

static void kill_and_check(enum ack_mode mode)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		close(p[0]);
		writer_child(tu_dir, mode, p[1]);
		_exit(10);
	}
	close(p[1]);
	uint32_t i, last = 0;
	uint32_t acked = 0;
	while (acked < 150) {
		ssize_t r = read(p[0], &i, sizeof(i));
		cr_assert_eq(r, (ssize_t)sizeof(i),
		             "writer died early after %u acks", acked);
		cr_assert_eq(i, acked);
		acked++;
	}
	cr_assert_eq(kill(pid, SIGKILL), 0);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	          "writer exited by itself (status 0x%x)", status);
	/* Acks that were in flight when the kill came count too. */
	while (read(p[0], &i, sizeof(i)) == (ssize_t)sizeof(i)) {
		cr_assert_eq(i, acked);
		acked++;
	}
	close(p[0]);
	last = acked - 1;

	/* The lock died with the process. */
	dskvs *s = tu_open(tu_dir);
	char key[32], val[512];
	for (i = 0; i < acked; i++) {
		snprintf(key, sizeof(key), "k/%u", i);
		make_value(i, val);
		tu_check(s, key, val, value_len(i));
		snprintf(key, sizeof(key), "d/%u", i);
		tu_check_absent(s, key);
	}
	uint32_t hot = 0;
	size_t len = 0;
	cr_assert_eq(dskvs_get(s, "hot/x", &hot, sizeof(hot), &len), DSKVS_OK);
	cr_assert_eq(len, sizeof(hot));
	cr_assert_geq(hot, last, "hot/x went back to %u, %u was acked", hot,
	              last);
	/* The store took the crash in its stride: it writes and closes. */
	tu_put_str(s, "after/crash", "ok");
	tu_close(s);
	s = tu_open(tu_dir);
	tu_check_str(s, "after/crash", "ok");
	tu_close(s);
}

Test(process, kill9_keeps_every_synced_write)
{
	kill_and_check(ACK_SYNC);
}

Test(process, kill9_keeps_every_write_waited_durable)
{
	kill_and_check(ACK_WAIT_DURABLE);
}

Test(process, kill9_keeps_every_sync_always_write)
{
	kill_and_check(ACK_SYNC_ALWAYS);
}
