#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TU_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_LSAN 1
#endif
#endif
#ifdef TU_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* Set by main() to a per-run directory that holds every test's directory,
 * so that a test that crashes (and so never reaches .fini) leaves nothing
 * behind either. */
#define TU_ROOT_ENV "DSKVS_TEST_ROOT"

char *tu_dir;

void tu_setup(void)
{
	tu_dir = tu_mkdtemp();
}

void tu_teardown(void)
{
	if (tu_dir) {
		tu_rmtree(tu_dir);
		free(tu_dir);
		tu_dir = NULL;
	}
	tu_check_leaks();
}

/*
 * Leak checking under ASan.
 *
 * Criterion 2.4 runs each test in a forked worker and ignores how the worker
 * exits once the test has reported: LeakSanitizer's report at the worker's
 * exit fails nothing, and neither does an assertion made in .fini. So the
 * worker checks for leaks itself at the end of .fini (everything the test
 * made is closed and freed by then) and writes the test's name to a file
 * that main() reads after the run and turns into a failing exit status.
 */
#define TU_LEAK_ENV "DSKVS_TEST_LEAK_FILE"

void tu_check_leaks(void)
{
#ifdef TU_LSAN
	if (__lsan_do_recoverable_leak_check() == 0)
		return;
	const char *path = getenv(TU_LEAK_ENV);
	FILE *f = path ? fopen(path, "a") : NULL;
	if (f) {
		fprintf(f, "%s::%s\n", criterion_current_suite->name,
		        criterion_current_test->name);
		fclose(f);
	}
#endif
}

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();

	/* --list, --help and bad options end inside here, before the run's
	 * directory exists. */
	if (!criterion_handle_args(argc, argv, true)) {
		criterion_finalize(tests);
		return 0;
	}

	char root[] = "/tmp/dskvs-tests-XXXXXX";
	/* 0711: tests that drop root privileges must still reach their own
	 * directories inside. */
	if (!mkdtemp(root) || chmod(root, 0711) != 0) {
		perror("mkdtemp");
		return 1;
	}
	char *leak_path = NULL;
	if (asprintf(&leak_path, "%s/leaks", root) < 0)
		return 1;
	/* Workers are forked from this process and inherit both. */
	setenv(TU_ROOT_ENV, root, 1);
	setenv(TU_LEAK_ENV, leak_path, 1);

	int result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);

	FILE *f = fopen(leak_path, "r");
	char line[512];
	int leaks = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (!leaks++)
			fprintf(stderr, "[LEAK] LeakSanitizer found leaks "
			                "(reports above) in:\n");
		fprintf(stderr, "[LEAK]   %s", line);
	}
	if (f)
		fclose(f);
	free(leak_path);
	tu_rmtree(root);
	if (leaks)
		result = 1;
	fflush(NULL);
	/* The runner process runs no test code, only Criterion, whose
	 * timeout watchdog leaks a few bytes per run; leaving with _exit
	 * skips LeakSanitizer's exit-time report on this process alone (the
	 * workers were checked above). */
	_exit(result);
}

char *tu_mkdtemp(void)
{
	const char *root = getenv(TU_ROOT_ENV);
	char *p = tu_fmt("%s/dskvs-test-XXXXXX", root ? root : "/tmp");

	cr_assert_not_null(p);
	cr_assert_not_null(mkdtemp(p), "mkdtemp: %s", strerror(errno));
	return p;
}

char *tu_subdir(const char *name)
{
	char *p = tu_fmt("%s/%s", tu_dir, name);

	cr_assert_eq(mkdir(p, 0700), 0, "mkdir(%s): %s", p, strerror(errno));
	return p;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	/* Best effort: a leftover only wastes /tmp space, never fails a test.
	 */
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static int chmod_one(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw)
{
	(void)ftw;
	/* Tests make directories unreadable on purpose; give them back. */
	if (flag == FTW_D || flag == FTW_DNR)
		chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

void tu_rmtree(const char *path)
{
	chmod(path, 0700);
	nftw(path, chmod_one, 16, FTW_PHYS);
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0, "vasprintf failed");
	return s;
}

char *tu_log_path(const char *dir)
{
	return tu_fmt("%s/dskvs.log", dir);
}

char *tu_repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

dskvs *tu_open_opts(const char *dir, const dskvs_options *opts)
{
	dskvs *s = NULL;
	int rc = dskvs_open(dir, opts, &s);

	cr_assert_eq(rc, DSKVS_OK, "dskvs_open(%s) = %d (%s): %s", dir, rc,
	             dskvs_err_name(rc), dskvs_errmsg(NULL));
	cr_assert_not_null(s);
	return s;
}

dskvs *tu_open(const char *dir)
{
	return tu_open_opts(dir, NULL);
}

void tu_close(dskvs *s)
{
	int rc = dskvs_close(s);

	cr_assert_eq(rc, DSKVS_OK, "dskvs_close = %d (%s)", rc,
	             dskvs_err_name(rc));
}

void tu_put(dskvs *s, const char *key, const void *val, size_t len)
{
	int rc = dskvs_put(s, key, val, len, NULL, NULL);

	cr_assert_eq(rc, DSKVS_OK, "put(%.60s, %zu bytes) = %d (%s)", key, len,
	             rc, dskvs_err_name(rc));
}

void tu_put_str(dskvs *s, const char *key, const char *val)
{
	tu_put(s, key, val, strlen(val));
}

void tu_check(dskvs *s, const char *key, const void *val, size_t len)
{
	void *got = NULL;
	size_t got_len = 0;
	int rc = dskvs_get_alloc(s, key, &got, &got_len);

	cr_assert_eq(rc, DSKVS_OK, "get(%.60s) = %d (%s)", key, rc,
	             dskvs_err_name(rc));
	cr_assert_not_null(got);
	int same = got_len == len && memcmp(got, val, len) == 0;
	size_t gl = got_len;
	free(got);
	cr_assert(same, "get(%.60s): %zu bytes, want %zu bytes%s", key, gl, len,
	          gl == len ? " (contents differ)" : "");
}

void tu_check_str(dskvs *s, const char *key, const char *val)
{
	tu_check(s, key, val, strlen(val));
}

void tu_check_absent(dskvs *s, const char *key)
{
	size_t len = 0;
	int rc = dskvs_get(s, key, NULL, 0, &len);

	cr_assert_eq(rc, DSKVS_NOTFOUND, "get(%.60s) = %d (%s), want NOTFOUND",
	             key, rc, dskvs_err_name(rc));
}

uint64_t tu_file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat(%s): %s", path, strerror(errno));
	return (uint64_t)st.st_size;
}

mode_t tu_file_mode(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat(%s): %s", path, strerror(errno));
	return st.st_mode & 07777;
}

void *tu_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	cr_assert(fd >= 0, "open(%s): %s", path, strerror(errno));
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	size_t n = (size_t)st.st_size;
	char *buf = malloc(n ? n : 1);
	cr_assert_not_null(buf);
	size_t done = 0;
	while (done < n) {
		ssize_t r = read(fd, buf + done, n - done);
		cr_assert(r > 0, "read(%s): %s", path, strerror(errno));
		done += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert(fd >= 0, "open(%s): %s", path, strerror(errno));
	const char *p = data;
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(fd, p + done, len - done);
		cr_assert(w > 0, "write(%s): %s", path, strerror(errno));
		done += (size_t)w;
	}
	close(fd);
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

void tu_fill(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t st = seed * 0x2545f4914f6cdd1dull + 1;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			tu_rand(&st);
		p[i] = (unsigned char)(st >> (8 * (i % 8)));
	}
}

/* ---- snapshots ---------------------------------------------------------- */

static void snap_push(struct tu_snap *m, char *key, size_t key_len,
                      const void *val, size_t len)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->kv = realloc(m->kv, m->cap * sizeof(*m->kv));
		cr_assert_not_null(m->kv);
	}
	struct tu_kv *e = &m->kv[m->n++];
	e->key = key;
	e->key_len = key_len;
	e->val = malloc(len ? len : 1);
	cr_assert_not_null(e->val);
	if (len)
		memcpy(e->val, val, len);
	e->val_len = len;
}

struct names {
	char **v;
	size_t *len;
	size_t n, cap;
};

static int collect_name(const char *name, size_t name_len, uint64_t members,
                        uint64_t value_bytes, void *arg)
{
	struct names *ns = arg;

	(void)members;
	(void)value_bytes;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? 2 * ns->cap : 16;
		ns->v = realloc(ns->v, ns->cap * sizeof(*ns->v));
		ns->len = realloc(ns->len, ns->cap * sizeof(*ns->len));
		if (!ns->v || !ns->len)
			return -1;
	}
	char *c = malloc(name_len + 1);
	if (!c)
		return -1;
	memcpy(c, name, name_len);
	c[name_len] = '\0';
	ns->len[ns->n] = name_len;
	ns->v[ns->n++] = c;
	return 0;
}

struct snap_walk {
	struct tu_snap *m;
	const char *coll;
	size_t coll_len;
};

static int collect_member(const char *member, size_t member_len,
                          const void *val, size_t val_len, void *arg)
{
	struct snap_walk *w = arg;
	char *key = malloc(w->coll_len + 1 + member_len + 1);

	if (!key)
		return -1;
	memcpy(key, w->coll, w->coll_len);
	key[w->coll_len] = '/';
	memcpy(key + w->coll_len + 1, member, member_len);
	key[w->coll_len + 1 + member_len] = '\0';
	snap_push(w->m, key, w->coll_len + 1 + member_len, val, val_len);
	return 0;
}

void tu_snap_take(dskvs *s, struct tu_snap *out)
{
	struct names ns = { 0 };

	memset(out, 0, sizeof(*out));
	int rc = dskvs_list_collections(s, collect_name, &ns);
	cr_assert_eq(rc, 0, "list_collections = %d", rc);
	for (size_t i = 0; i < ns.n; i++) {
		struct snap_walk w = { out, ns.v[i], ns.len[i] };
		rc = dskvs_get_all(s, ns.v[i], collect_member, &w);
		cr_assert_eq(rc, 0, "get_all(%.60s) = %d (%s)", ns.v[i], rc,
		             dskvs_err_name(rc));
		free(ns.v[i]);
	}
	free(ns.v);
	free(ns.len);
	tu_snap_sort(out);
}

static struct tu_kv *snap_find(struct tu_snap *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->kv[i].key, key) == 0)
			return &m->kv[i];
	return NULL;
}

void tu_snap_add(struct tu_snap *m, const char *key, const void *val,
                 size_t len)
{
	struct tu_kv *e = snap_find(m, key);

	if (e) {
		free(e->val);
		e->val = malloc(len ? len : 1);
		cr_assert_not_null(e->val);
		if (len)
			memcpy(e->val, val, len);
		e->val_len = len;
		return;
	}
	snap_push(m, strdup(key), strlen(key), val, len);
}

static void snap_remove_at(struct tu_snap *m, size_t i)
{
	free(m->kv[i].key);
	free(m->kv[i].val);
	m->kv[i] = m->kv[--m->n];
}

void tu_snap_del(struct tu_snap *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->kv[i].key, key) == 0) {
			snap_remove_at(m, i);
			return;
		}
	}
}

void tu_snap_del_coll(struct tu_snap *m, const char *coll)
{
	size_t cl = strlen(coll);

	for (size_t i = 0; i < m->n;) {
		if (strncmp(m->kv[i].key, coll, cl) == 0 &&
		    m->kv[i].key[cl] == '/')
			snap_remove_at(m, i);
		else
			i++;
	}
}

static int kv_cmp(const void *a, const void *b)
{
	const struct tu_kv *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c)
		return c;
	return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

void tu_snap_sort(struct tu_snap *m)
{
	if (m->n)
		qsort(m->kv, m->n, sizeof(*m->kv), kv_cmp);
}

void tu_snap_assert_eq(const struct tu_snap *want, const struct tu_snap *got)
{
	size_t i = 0, j = 0;

	while (i < want->n || j < got->n) {
		int c = i == want->n  ? 1
		        : j == got->n ? -1
		                      : kv_cmp(&want->kv[i], &got->kv[j]);
		cr_assert(c >= 0, "key %.80s missing (want %zu keys, got %zu)",
		          want->kv[i].key, want->n, got->n);
		cr_assert(c <= 0,
		          "unexpected key %.80s (want %zu keys, got %zu)",
		          got->kv[j].key, want->n, got->n);
		const struct tu_kv *w = &want->kv[i], *g = &got->kv[j];
		cr_assert(w->val_len == g->val_len &&
		              memcmp(w->val, g->val, w->val_len) == 0,
		          "key %.80s: value of %zu bytes, want %zu bytes%s",
		          w->key, g->val_len, w->val_len,
		          w->val_len == g->val_len ? " (contents differ)" : "");
		i++;
		j++;
	}
}

void tu_snap_free(struct tu_snap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->kv[i].key);
		free(m->kv[i].val);
	}
	free(m->kv);
	memset(m, 0, sizeof(*m));
}
