/*
 * Shared helpers of the durability tests; see dt.h.
 */
#include "dt.h"
#include "internal.h"

#include <pthread.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

bool dt_in_child;

void dt_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	if (dt_in_child)
		_exit(DT_FAIL_EXIT);
	abort();
}

bool dt_long(void)
{
	const char *v = getenv("DSKVS_LONG");
	return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

uint64_t dt_seed(const char *test, uint64_t dflt)
{
	const char *v = getenv("DSKVS_SEED");
	uint64_t seed = v ? strtoull(v, NULL, 0) : dflt;
	printf("%s: seed %llu (set DSKVS_SEED to replay)%s\n", test,
	       (unsigned long long)seed, dt_long() ? ", long variant" : "");
	fflush(stdout);
	return seed;
}

/* ---- files ---------------------------------------------------------------
 */

char *dt_fmt(const char *fmt, ...)
{
	va_list ap;
	char *p;
	va_start(ap, fmt);
	int n = vasprintf(&p, fmt, ap);
	va_end(ap);
	DT_CHECK(n >= 0, "out of memory");
	return p;
}

char *dt_mkdtemp(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *p =
	    dt_fmt("%s/dskvs-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	DT_CHECK(mkdtemp(p) != NULL, "mkdtemp %s: %s", p, strerror(errno));
	return p;
}

void dt_empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *p = dt_fmt("%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			dt_rmtree(p);
		else
			unlink(p);
		free(p);
	}
	closedir(d);
}

void dt_rmtree(const char *path)
{
	dt_empty_dir(path);
	rmdir(path);
}

void dt_copy_dir(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *e;
	DT_CHECK(d != NULL, "opendir %s: %s", src, strerror(errno));
	mkdir(dst, 0700);
	while ((e = readdir(d)) != NULL) {
		char *p = dt_fmt("%s/%s", src, e->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			size_t n;
			unsigned char *b = dt_read_file(p, &n);
			char *q = dt_fmt("%s/%s", dst, e->d_name);
			DT_CHECK(b != NULL, "read %s", p);
			dt_write_file(q, b, n);
			free(q);
			free(b);
		}
		free(p);
	}
	closedir(d);
}

unsigned char *dt_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	unsigned char *b;
	size_t got = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return NULL;
	}
	b = malloc((size_t)st.st_size + 1);
	DT_CHECK(b != NULL, "out of memory");
	while (got < (size_t)st.st_size) {
		ssize_t r =
		    pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	b[got] = 0;
	*len = got;
	return b;
}

void dt_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;
	DT_CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	while (done < len) {
		ssize_t w = write(fd, (const char *)data + done, len - done);
		DT_CHECK(w > 0, "write %s: %s", path, strerror(errno));
		done += (size_t)w;
	}
	close(fd);
}

long long dt_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* ---- the model -------------------------------------------------------------
 */

void dt_key_name(uint32_t key, char *buf, size_t cap)
{
	snprintf(buf, cap, "c%u/m%u", key / DT_NMEMB, key % DT_NMEMB);
}

void dt_coll_name(uint32_t coll, char *buf, size_t cap)
{
	snprintf(buf, cap, "c%u", coll);
}

static uint64_t vhash(uint32_t key, uint32_t ver)
{
	return dt_mix(((uint64_t)key << 32) ^ ver ^ 0x5eedull);
}

static size_t len_small(uint32_t key, uint32_t ver)
{
	return 8 + (size_t)(vhash(key, ver) % 300);
}

static size_t len_big(uint32_t key, uint32_t ver)
{
	return 4097 + (size_t)(vhash(key, ver) % 6000);
}

size_t dt_value_len(uint32_t key, uint32_t ver, unsigned big_one_in)
{
	if (big_one_in && dt_mix(vhash(key, ver)) % big_one_in == 0)
		return len_big(key, ver);
	return len_small(key, ver);
}

/*
 * Big values carry, from byte IMG_AT on, images of whole dskvs records
 * (header, key, value, valid checksums) such as an application that keeps
 * log excerpts or backups in a store would write: one as format 1 writes
 * it (salt 0) and one from another format-2 file (another salt), both
 * claiming a much later batch and a much larger sequence number. When a
 * crash loses the page of such a value's record that holds its header,
 * recovery must not take the images for proof that the batch was synced.
 */
#define IMG_AT 4100
static unsigned char img[512];
static size_t img_len;
static pthread_once_t img_once = PTHREAD_ONCE_INIT;

static void img_init(void)
{
	static const uint32_t salts[2] = { 0, 0x5eed5a17u };
	for (int k = 0; k < 2; k++) {
		const char *key = "c1/m3";
		const char val[] = "an image of a record";
		unsigned char *p = img + img_len;
		dskvs__rec_hdr_encode(p, salts[k], DSKVS_REC_PUT, DSKVS_REC_END,
		                      0x40000000u + (uint32_t)k, key,
		                      strlen(key), val, sizeof(val),
		                      (UINT64_C(1) << 61) + (uint64_t)k);
		memcpy(p + DSKVS_REC_HDR, key, strlen(key));
		memcpy(p + DSKVS_REC_HDR + strlen(key), val, sizeof(val));
		img_len += DSKVS_REC_HDR + strlen(key) + sizeof(val);
	}
}

static unsigned char filler_at(uint64_t h, size_t i, size_t len)
{
	if (i >= IMG_AT && len >= IMG_AT + sizeof(img)) {
		pthread_once(&img_once, img_init);
		if (i - IMG_AT < img_len)
			return img[i - IMG_AT];
	}
	return (unsigned char)(dt_mix(h + i / 8) >> (8 * (i % 8)));
}

void dt_value_fill(uint32_t key, uint32_t ver, unsigned char *buf, size_t len)
{
	uint64_t h = vhash(key, ver);
	for (int i = 0; i < 4; i++) {
		buf[i] = (unsigned char)(key >> (8 * i));
		buf[4 + i] = (unsigned char)(ver >> (8 * i));
	}
	for (size_t i = 8; i < len; i++)
		buf[i] = filler_at(h, i, len);
}

uint32_t dt_value_parse(uint32_t key, const void *val, size_t len)
{
	const unsigned char *b = val;
	uint32_t k = 0, ver = 0;
	if (len < 8)
		return 0;
	for (int i = 0; i < 4; i++) {
		k |= (uint32_t)b[i] << (8 * i);
		ver |= (uint32_t)b[4 + i] << (8 * i);
	}
	if (k != key || ver == 0 ||
	    (len != len_small(key, ver) && len != len_big(key, ver)))
		return 0;
	uint64_t h = vhash(key, ver);
	for (size_t i = 8; i < len; i++)
		if (b[i] != filler_at(h, i, len))
			return 0;
	return ver;
}

struct dt_op dt_op_random(uint64_t *rng, uint32_t ver)
{
	struct dt_op op = { .ver = 0 };
	uint64_t r = dt_below(rng, 100);
	if (r < 68) {
		op.kind = DT_PUT;
		op.key = (uint32_t)dt_below(rng, DT_NKEYS);
		op.ver = ver;
	} else if (r < 96) {
		op.kind = DT_DEL;
		op.key = (uint32_t)dt_below(rng, DT_NKEYS);
	} else {
		op.kind = DT_DELALL;
		op.key = (uint32_t)dt_below(rng, DT_NCOLL);
	}
	return op;
}

bool dt_apply(struct dt_state *st, const struct dt_op *op)
{
	bool changed = false;
	switch (op->kind) {
	case DT_PUT:
		st->ver[op->key] = op->ver;
		return true;
	case DT_DEL:
		changed = st->ver[op->key] != 0;
		st->ver[op->key] = 0;
		return changed;
	case DT_DELALL:
		for (uint32_t m = 0; m < DT_NMEMB; m++) {
			changed |= st->ver[op->key * DT_NMEMB + m] != 0;
			st->ver[op->key * DT_NMEMB + m] = 0;
		}
		return changed;
	}
	return false;
}

int dt_do(dskvs *s, const struct dt_op *op, unsigned big_one_in, uint64_t *seq)
{
	char name[32];
	*seq = 0;
	switch (op->kind) {
	case DT_PUT: {
		size_t len = dt_value_len(op->key, op->ver, big_one_in);
		unsigned char *v = malloc(len);
		DT_CHECK(v != NULL, "out of memory");
		dt_value_fill(op->key, op->ver, v, len);
		dt_key_name(op->key, name, sizeof(name));
		int rc = dskvs_put_seq(s, name, v, len, NULL, NULL, seq);
		free(v);
		return rc;
	}
	case DT_DEL:
		dt_key_name(op->key, name, sizeof(name));
		return dskvs_delete_seq(s, name, seq);
	case DT_DELALL:
		dt_coll_name(op->key, name, sizeof(name));
		return dskvs_delete_all_seq(s, name, seq);
	}
	return DSKVS_EINVAL;
}

/* ---- reading a store back ------------------------------------------------
 */

struct dump_ctx {
	dskvs *s;
	struct dt_state *st;
	uint32_t coll;
	const char *err;
};

static char dump_msg[256];

static bool parse_index(const char *name, size_t len, char prefix,
                        uint32_t limit, uint32_t *out)
{
	uint32_t v = 0;
	if (len < 2 || len > 4 || name[0] != prefix)
		return false;
	for (size_t i = 1; i < len; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(name[i] - '0');
	}
	if (v >= limit || (len > 2 && name[1] == '0'))
		return false;
	*out = v;
	return true;
}

static int dump_member(const char *member, size_t mlen, const void *val,
                       size_t vlen, void *arg)
{
	struct dump_ctx *c = arg;
	uint32_t m, key, ver;
	if (!parse_index(member, mlen, 'm', DT_NMEMB, &m)) {
		snprintf(dump_msg, sizeof(dump_msg),
		         "unexpected member \"%.*s\" in c%u", (int)mlen, member,
		         c->coll);
		c->err = dump_msg;
		return 1;
	}
	key = c->coll * DT_NMEMB + m;
	ver = dt_value_parse(key, val, vlen);
	if (ver == 0) {
		snprintf(dump_msg, sizeof(dump_msg),
		         "c%u/m%u: damaged value (%zu bytes)", c->coll, m,
		         vlen);
		c->err = dump_msg;
		return 1;
	}
	if (c->st->ver[key] != 0) {
		snprintf(dump_msg, sizeof(dump_msg), "c%u/m%u seen twice",
		         c->coll, m);
		c->err = dump_msg;
		return 1;
	}
	c->st->ver[key] = ver;
	return 0;
}

static int dump_coll(const char *name, size_t len, uint64_t members,
                     uint64_t value_bytes, void *arg)
{
	struct dump_ctx *c = arg;
	uint32_t idx;
	(void)members;
	(void)value_bytes;
	if (!parse_index(name, len, 'c', DT_NCOLL, &idx)) {
		snprintf(dump_msg, sizeof(dump_msg),
		         "unexpected collection \"%.*s\"", (int)len, name);
		c->err = dump_msg;
		return 1;
	}
	return 0;
}

const char *dt_dump(dskvs *s, struct dt_state *st)
{
	struct dump_ctx c = { .s = s, .st = st };
	char name[16];
	memset(st, 0, sizeof(*st));
	int rc = dskvs_list_collections(s, dump_coll, &c);
	if (c.err)
		return c.err;
	if (rc != DSKVS_OK) {
		snprintf(dump_msg, sizeof(dump_msg),
		         "dskvs_list_collections: %s", dskvs_err_name(rc));
		return dump_msg;
	}
	for (c.coll = 0; c.coll < DT_NCOLL; c.coll++) {
		dt_coll_name(c.coll, name, sizeof(name));
		rc = dskvs_get_all(s, name, dump_member, &c);
		if (c.err)
			return c.err;
		if (rc != DSKVS_OK) {
			snprintf(dump_msg, sizeof(dump_msg),
			         "dskvs_get_all(%s): %s", name,
			         dskvs_err_name(rc));
			return dump_msg;
		}
	}
	/* Point reads agree with the walk. */
	for (uint32_t k = 0; k < DT_NKEYS; k++) {
		void *v = NULL;
		size_t len = 0;
		dt_key_name(k, name, sizeof(name));
		rc = dskvs_get_alloc(s, name, &v, &len);
		uint32_t ver = rc == DSKVS_OK ? dt_value_parse(k, v, len) : 0;
		free(v);
		if ((rc != DSKVS_OK && rc != DSKVS_NOTFOUND) ||
		    ver != st->ver[k]) {
			snprintf(dump_msg, sizeof(dump_msg),
			         "%s: get says %s version %u, the walk %u",
			         name, dskvs_err_name(rc), ver, st->ver[k]);
			return dump_msg;
		}
	}
	return NULL;
}

bool dt_state_eq(const struct dt_state *a, const struct dt_state *b)
{
	return memcmp(a->ver, b->ver, sizeof(a->ver)) == 0;
}

const char *dt_state_diff(const struct dt_state *want,
                          const struct dt_state *got)
{
	static char msg[128];
	char name[16];
	for (uint32_t k = 0; k < DT_NKEYS; k++) {
		if (want->ver[k] != got->ver[k]) {
			dt_key_name(k, name, sizeof(name));
			snprintf(msg, sizeof(msg),
			         "%s: want version %u, got %u", name,
			         want->ver[k], got->ver[k]);
			return msg;
		}
	}
	return "no difference";
}

long dt_match_prefix(const struct dt_state *base, const struct dt_op *ops,
                     size_t lo, size_t hi, const struct dt_state *got)
{
	struct dt_state m = *base;
	for (size_t i = 0; i < lo; i++)
		dt_apply(&m, &ops[i]);
	for (size_t p = lo;; p++) {
		if (dt_state_eq(&m, got))
			return (long)p;
		if (p == hi)
			return -1;
		dt_apply(&m, &ops[p]);
	}
}

void dt_options(dskvs_options *o, int sync_mode)
{
	dskvs_options_init(o);
	o->sync_mode = sync_mode;
}

int dt_open_dump(const char *dir, struct dt_state *st)
{
	dskvs *s = NULL;
	int rc = dskvs_open(dir, NULL, &s);
	if (rc != DSKVS_OK)
		return rc;
	const char *err = dt_dump(s, st);
	DT_CHECK(err == NULL, "%s: %s", dir, err);
	DT_RC(dskvs_close(s), DSKVS_OK);
	return DSKVS_OK;
}

int dt_run_forked(void (*fn)(void *arg), void *arg)
{
	int status;
	fflush(NULL);
	pid_t pid = fork();
	DT_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		dt_in_child = true;
		fn(arg);
		fflush(NULL);
		exit(0); /* not _exit: let LeakSanitizer look */
	}
	DT_CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s",
	         strerror(errno));
	return status;
}

unsigned dt_jobs(unsigned dflt)
{
	const char *v = getenv("DSKVS_TEST_JOBS");
	unsigned n = v ? (unsigned)strtoul(v, NULL, 10) : dflt;
	return n ? n : 1;
}

unsigned dt_parallel(size_t ntasks, unsigned workers,
                     void (*fn)(size_t task, unsigned worker, void *arg),
                     void *arg)
{
	pid_t *pids;
	unsigned failed = 0;

	workers = dt_jobs(workers);
	pids = calloc(workers, sizeof(*pids));
	DT_CHECK(pids != NULL, "out of memory");
	fflush(NULL);
	for (unsigned w = 0; w < workers; w++) {
		pids[w] = fork();
		DT_CHECK(pids[w] >= 0, "fork: %s", strerror(errno));
		if (pids[w] == 0) {
			dt_in_child = true;
			free(pids);
			for (size_t t = w; t < ntasks; t += workers)
				fn(t, w, arg);
			fflush(NULL);
			exit(0); /* not _exit: let LeakSanitizer look */
		}
	}
	for (unsigned w = 0; w < workers; w++) {
		int status;
		DT_CHECK(waitpid(pids[w], &status, 0) == pids[w], "waitpid: %s",
		         strerror(errno));
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "worker %u failed (status %#x)\n", w,
			        status);
			failed++;
		}
	}
	free(pids);
	return failed;
}
