/*
 * fsim: the file-system simulator behind the I/O seam; see fsim.h.
 */
#include "fsim.h"
#include "dt.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE 4096u

struct range {
	uint64_t from, to;
};

/* What the simulation knows of one inode. `live` while `ino` still names
 * it: an inode number freed and reused by a new file gets a new record, and
 * the old one stays reachable from the durable directory map. */
struct inode {
	dev_t dev;
	ino_t ino;
	bool live;
	unsigned char *dur; /* durable contents */
	size_t dlen;
	struct range *lost; /* bytes a failed sync dropped */
	size_t nlost;
	struct inode *next;
};

struct fault {
	enum fsim_kind kind;
	uint64_t n;
	enum fsim_fault f;
	bool persistent;
};

struct dentry {
	char *name;
	struct inode *in;
};

static struct {
	pthread_mutex_t mu;
	char *dir;
	struct fsim_config cfg;
	uint64_t calls, per[FSIM_NKINDS], faults;
	struct inode *inodes;
	struct dentry *dmap; /* durable directory */
	size_t ndmap;
	struct fault faults_armed[FSIM_MAX_FAULTS];
	size_t nfaults;
} S = { .mu = PTHREAD_MUTEX_INITIALIZER };

const char *fsim_kind_name(enum fsim_kind k)
{
	static const char *names[] = { "openat",    "close",     "pread",
		                       "pwritev",   "fdatasync", "fsync",
		                       "ftruncate", "renameat",  "unlinkat",
		                       "fstat" };
	return (unsigned)k < FSIM_NKINDS ? names[k] : "?";
}

const char *fsim_view_name(enum fsim_view v)
{
	static const char *names[] = { "durable", "garbage-tail",
		                       "durable-names", "pages" };
	return (unsigned)v < FSIM_NVIEWS ? names[v] : "?";
}

const char *fsim_fault_name(enum fsim_fault f)
{
	switch (f) {
	case FSIM_EIO:
		return "EIO";
	case FSIM_ENOSPC:
		return "ENOSPC";
	case FSIM_SHORT:
		return "short write";
	case FSIM_SHORT_THEN_ENOSPC:
		return "short write then ENOSPC";
	}
	return "?";
}

/* ---- inode records ---------------------------------------------------------
 */

static struct inode *inode_find(dev_t dev, ino_t ino)
{
	for (struct inode *in = S.inodes; in; in = in->next)
		if (in->live && in->dev == dev && in->ino == ino)
			return in;
	return NULL;
}

/* A record for a file just created (or first seen): the old record of a
 * reused inode number is detached, not freed. */
static struct inode *inode_new(dev_t dev, ino_t ino)
{
	struct inode *old = inode_find(dev, ino);
	if (old)
		old->live = false;
	struct inode *in = calloc(1, sizeof(*in));
	DT_CHECK(in != NULL, "out of memory");
	in->dev = dev;
	in->ino = ino;
	in->live = true;
	in->next = S.inodes;
	S.inodes = in;
	return in;
}

static struct inode *inode_of_fd(int fd, struct stat *st)
{
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode))
		return NULL;
	struct inode *in = inode_find(st->st_dev, st->st_ino);
	return in ? in : inode_new(st->st_dev, st->st_ino);
}

static unsigned char *read_fd(int fd, size_t *len)
{
	struct stat st;
	size_t got = 0;
	DT_CHECK(fstat(fd, &st) == 0, "fstat: %s", strerror(errno));
	unsigned char *b = malloc((size_t)st.st_size + 1);
	DT_CHECK(b != NULL, "out of memory");
	while (got < (size_t)st.st_size) {
		ssize_t r =
		    pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);
		DT_CHECK(r > 0, "pread: %s", r ? strerror(errno) : "EOF");
		got += (size_t)r;
	}
	*len = got;
	return b;
}

/* The file's contents are durable now, except what a failed sync lost. */
static void make_durable(struct inode *in, int fd)
{
	size_t len;
	unsigned char *b = read_fd(fd, &len);
	for (size_t i = 0; i < in->nlost; i++)
		for (uint64_t o = in->lost[i].from;
		     o < in->lost[i].to && o < len; o++)
			b[o] = 0;
	free(in->dur);
	in->dur = b;
	in->dlen = len;
}

static void mark_lost(struct inode *in, const struct stat *st)
{
	if ((uint64_t)st->st_size <= in->dlen)
		return;
	struct range *r = realloc(in->lost, (in->nlost + 1) * sizeof(*r));
	DT_CHECK(r != NULL, "out of memory");
	in->lost = r;
	in->lost[in->nlost].from = in->dlen;
	in->lost[in->nlost++].to = (uint64_t)st->st_size;
}

static void dmap_clear(void)
{
	for (size_t i = 0; i < S.ndmap; i++)
		free(S.dmap[i].name);
	free(S.dmap);
	S.dmap = NULL;
	S.ndmap = 0;
}

/* The directory's names are durable now. */
static void dir_durable(void)
{
	DIR *d = opendir(S.dir);
	struct dirent *e;
	DT_CHECK(d != NULL, "opendir %s: %s", S.dir, strerror(errno));
	dmap_clear();
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) !=
		        0 ||
		    !S_ISREG(st.st_mode))
			continue;
		struct inode *in = inode_find(st.st_dev, st.st_ino);
		if (in == NULL)
			in = inode_new(st.st_dev, st.st_ino);
		S.dmap = realloc(S.dmap, (S.ndmap + 1) * sizeof(*S.dmap));
		DT_CHECK(S.dmap != NULL, "out of memory");
		S.dmap[S.ndmap].name = strdup(e->d_name);
		S.dmap[S.ndmap++].in = in;
	}
	closedir(d);
}

/* ---- building a crash outcome
 * ------------------------------------------------
 */

struct outfile {
	char *name;
	unsigned char *data;
	size_t len;
};

static void garbage(uint64_t *rng, bool zeros, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = zeros ? 0 : (unsigned char)dt_rand(rng);
}

/* Contents of the current file `name` in view v. */
static void current_view(struct outfile *f, int dfd, enum fsim_view v,
                         uint64_t *rng)
{
	struct stat st;
	int fd = openat(dfd, f->name, O_RDONLY | O_CLOEXEC);
	DT_CHECK(fd >= 0, "open %s: %s", f->name, strerror(errno));
	DT_CHECK(fstat(fd, &st) == 0, "fstat");
	struct inode *in = inode_find(st.st_dev, st.st_ino);
	size_t dlen = in ? in->dlen : 0, clen;
	unsigned char *cur = read_fd(fd, &clen);
	close(fd);

	if (v == FSIM_DURABLE || clen <= dlen) {
		f->len = dlen;
		f->data = malloc(dlen + 1);
		DT_CHECK(f->data != NULL, "out of memory");
		if (dlen)
			memcpy(f->data, in->dur, dlen);
		free(cur);
		return;
	}
	/* cur keeps the unsynced tail; its durable prefix is restored. */
	if (dlen)
		memcpy(cur, in->dur, dlen);
	bool zeros = dt_below(rng, 2) == 0;
	if (v == FSIM_GARBAGE_TAIL) {
		size_t keep = (size_t)dt_below(rng, clen - dlen + 1);
		garbage(rng, zeros, cur + dlen + keep, clen - dlen - keep);
	} else {
		for (size_t p = dlen / PAGE * PAGE; p < clen; p += PAGE) {
			size_t from = p < dlen ? dlen : p;
			size_t to = p + PAGE < clen ? p + PAGE : clen;
			if (dt_below(rng, 2))
				garbage(rng, zeros, cur + from, to - from);
		}
	}
	f->data = cur;
	f->len = clen;
}

static void materialize_locked(const char *out, enum fsim_view view,
                               uint64_t seed)
{
	struct outfile *files = NULL;
	size_t n = 0;
	uint64_t rng = seed;

	if (view == FSIM_DURABLE_NAMES) {
		files = calloc(S.ndmap + 1, sizeof(*files));
		DT_CHECK(files != NULL, "out of memory");
		for (size_t i = 0; i < S.ndmap; i++) {
			struct inode *in = S.dmap[i].in;
			files[n].name = strdup(S.dmap[i].name);
			files[n].data = malloc(in->dlen + 1);
			DT_CHECK(files[n].data != NULL, "out of memory");
			if (in->dlen)
				memcpy(files[n].data, in->dur, in->dlen);
			files[n++].len = in->dlen;
		}
	} else {
		DIR *d = opendir(S.dir);
		struct dirent *e;
		DT_CHECK(d != NULL, "opendir %s: %s", S.dir, strerror(errno));
		while ((e = readdir(d)) != NULL) {
			struct stat st;
			if (fstatat(dirfd(d), e->d_name, &st,
			            AT_SYMLINK_NOFOLLOW) != 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			files = realloc(files, (n + 1) * sizeof(*files));
			DT_CHECK(files != NULL, "out of memory");
			files[n].name = strdup(e->d_name);
			current_view(&files[n++], dirfd(d), view, &rng);
		}
		closedir(d);
	}

	mkdir(out, 0700);
	dt_empty_dir(out);
	for (size_t i = 0; i < n; i++) {
		char *p = dt_fmt("%s/%s", out, files[i].name);
		dt_write_file(p, files[i].data, files[i].len);
		free(p);
		free(files[i].name);
		free(files[i].data);
	}
	free(files);
}

void fsim_materialize(const char *out, enum fsim_view view, uint64_t seed)
{
	pthread_mutex_lock(&S.mu);
	materialize_locked(out, view, seed);
	pthread_mutex_unlock(&S.mu);
}

/* ---- the wrappers
 * ------------------------------------------------------------
 */

/* Count the call, crash if it is the chosen one, and say which fault (0:
 * none) it must suffer. Under S.mu. */
static enum fsim_fault enter(enum fsim_kind k)
{
	S.calls++;
	S.per[k]++;
	if (S.cfg.crash_at && S.calls == S.cfg.crash_at) {
		materialize_locked(S.dir, S.cfg.crash_view, S.cfg.crash_seed);
		_exit(FSIM_CRASH_EXIT);
	}
	for (size_t i = 0; i < S.nfaults; i++) {
		const struct fault *f = &S.faults_armed[i];
		if (k != f->kind || S.per[k] < f->n)
			continue;
		if (S.per[k] == f->n) {
			S.faults++;
			return f->f;
		}
		if (f->f == FSIM_SHORT_THEN_ENOSPC) {
			S.faults++;
			return FSIM_ENOSPC;
		}
		if (f->persistent) {
			S.faults++;
			return f->f;
		}
	}
	return 0;
}

static int fail(enum fsim_fault f)
{
	errno = f == FSIM_ENOSPC ? ENOSPC : EIO;
	return -1;
}

static int w_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	struct stat st;
	pthread_mutex_lock(&S.mu);
	enum fsim_fault f = enter(FSIM_OPENAT);
	if (f) {
		pthread_mutex_unlock(&S.mu);
		return fail(f);
	}
	bool existed = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	int fd = openat(dirfd, name, flags, mode);
	int e = errno;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		/* A new file has no durable contents yet, and an inode
		 * number seen before now names something else. */
		if (!existed || inode_find(st.st_dev, st.st_ino) == NULL)
			inode_new(st.st_dev, st.st_ino);
	}
	pthread_mutex_unlock(&S.mu);
	errno = e;
	return fd;
}

static int w_close(int fd)
{
	pthread_mutex_lock(&S.mu);
	enum fsim_fault f = enter(FSIM_CLOSE);
	pthread_mutex_unlock(&S.mu);
	if (f) {
		/* The descriptor is gone even when close reports an error. */
		close(fd);
		return fail(f);
	}
	return close(fd);
}

static ssize_t w_pread(int fd, void *buf, size_t n, off_t off)
{
	pthread_mutex_lock(&S.mu);
	enum fsim_fault f = enter(FSIM_PREAD);
	ssize_t r = f ? fail(f) : pread(fd, buf, n, off);
	int e = errno;
	pthread_mutex_unlock(&S.mu);
	errno = e;
	return r;
}

static ssize_t w_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	ssize_t r;
	pthread_mutex_lock(&S.mu);
	enum fsim_fault f = enter(FSIM_PWRITEV);
	if (f == FSIM_SHORT || f == FSIM_SHORT_THEN_ENOSPC) {
		/* Write the first half of the bytes. */
		size_t total = 0, want, left;
		for (int i = 0; i < cnt; i++)
			total += iov[i].iov_len;
		want = total / 2 ? total / 2 : total;
		struct iovec *v = calloc((size_t)cnt + 1, sizeof(*v));
		DT_CHECK(v != NULL, "out of memory");
		int k = 0;
		for (left = want; k < cnt && left; k++) {
			v[k] = iov[k];
			if (v[k].iov_len > left)
				v[k].iov_len = left;
			left -= v[k].iov_len;
		}
		r = pwritev(fd, v, k, off);
		free(v);
	} else if (f) {
		r = fail(f);
	} else {
		r = pwritev(fd, iov, cnt, off);
	}
	int e = errno;
	pthread_mutex_unlock(&S.mu);
	errno = e;
	return r;
}

static int sync_file(int fd, enum fsim_kind k, int (*real)(int))
{
	struct stat st;
	pthread_mutex_lock(&S.mu);
	enum fsim_fault f = enter(k);
	if (fstat(fd, &st) != 0) {
		int e = errno;
		pthread_mutex_unlock(&S.mu);
		errno = e;
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		int r = f ? fail(f) : S.cfg.real_sync ? real(fd) : 0;
		int e = errno;
		if (r == 0)
			dir_durable();
		pthread_mutex_unlock(&S.mu);
		errno = e;
		return r;
	}
	struct inode *in = inode_of_fd(fd, &st);
	int r = f ? fail(f) : S.cfg.real_sync ? real(fd) : 0;
	int e = errno;
	if (in) {
		if (r == 0)
			make_durable(in, fd);
		else
			mark_lost(in, &st);
	}
	pthread_mutex_unlock(&S.mu);
	errno = e;
	return r;
}

static int w_fdatasync(int fd)
{
	return sync_file(fd, FSIM_FDATASYNC, fdatasync);
}

static int w_fsync(int fd)
{
	return sync_file(fd, FSIM_FSYNC, fsync);
}

static int w_ftruncate(int fd, off_t len)
{
	pthread_mutex_lock(&S.mu);
	enum fsim_fault f = enter(FSIM_FTRUNCATE);
	int r = f ? fail(f) : ftruncate(fd, len);
	int e = errno;
	pthread_mutex_unlock(&S.mu);
	errno = e;
	return r;
}

static int w_renameat(int od, const char *on, int nd, const char *nn)
{
	pthread_mutex_lock(&S.mu);
	enum fsim_fault f = enter(FSIM_RENAMEAT);
	int r = f ? fail(f) : renameat(od, on, nd, nn);
	int e = errno;
	pthread_mutex_unlock(&S.mu);
	errno = e;
	return r;
}

static int w_unlinkat(int dfd, const char *name, int flags)
{
	pthread_mutex_lock(&S.mu);
	enum fsim_fault f = enter(FSIM_UNLINKAT);
	int r = f ? fail(f) : unlinkat(dfd, name, flags);
	int e = errno;
	pthread_mutex_unlock(&S.mu);
	errno = e;
	return r;
}

static int w_fstat(int fd, struct stat *st)
{
	pthread_mutex_lock(&S.mu);
	enum fsim_fault f = enter(FSIM_FSTAT);
	int r = f ? fail(f) : fstat(fd, st);
	int e = errno;
	pthread_mutex_unlock(&S.mu);
	errno = e;
	return r;
}

static const struct dskvs__io_ops wrappers = {
	.openat = w_openat,
	.close = w_close,
	.pread = w_pread,
	.pwritev = w_pwritev,
	.fdatasync = w_fdatasync,
	.fsync = w_fsync,
	.ftruncate = w_ftruncate,
	.renameat = w_renameat,
	.unlinkat = w_unlinkat,
	.fstat = w_fstat,
};

/* ---- set-up
 * ------------------------------------------------------------------
 */

void fsim_install(const char *dir, const struct fsim_config *cfg)
{
	DIR *d;
	struct dirent *e;

	pthread_mutex_lock(&S.mu);
	DT_CHECK(S.dir == NULL, "fsim installed twice");
	S.dir = strdup(dir);
	S.cfg = *cfg;
	S.calls = S.faults = 0;
	memset(S.per, 0, sizeof(S.per));
	S.nfaults = 0;
	if (cfg->fault_n) {
		S.faults_armed[0] =
		    (struct fault){ cfg->fault_kind, cfg->fault_n, cfg->fault,
			            cfg->fault_persistent };
		S.nfaults = 1;
	}
	d = opendir(dir);
	DT_CHECK(d != NULL, "opendir %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) !=
		        0 ||
		    !S_ISREG(st.st_mode))
			continue;
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
		DT_CHECK(fd >= 0, "open %s: %s", e->d_name, strerror(errno));
		make_durable(inode_new(st.st_dev, st.st_ino), fd);
		close(fd);
	}
	closedir(d);
	dir_durable();
	dskvs__io = wrappers;
	pthread_mutex_unlock(&S.mu);
}

void fsim_uninstall(void)
{
	pthread_mutex_lock(&S.mu);
	dskvs__io = dskvs__io_libc;
	dmap_clear();
	while (S.inodes) {
		struct inode *in = S.inodes;
		S.inodes = in->next;
		free(in->dur);
		free(in->lost);
		free(in);
	}
	free(S.dir);
	S.dir = NULL;
	pthread_mutex_unlock(&S.mu);
}

void fsim_arm(enum fsim_kind k, uint64_t after, enum fsim_fault f,
              bool persistent)
{
	pthread_mutex_lock(&S.mu);
	DT_CHECK(S.nfaults < FSIM_MAX_FAULTS, "too many faults");
	S.faults_armed[S.nfaults++] =
	    (struct fault){ k, S.per[k] + after, f, persistent };
	pthread_mutex_unlock(&S.mu);
}

uint64_t fsim_calls(void)
{
	pthread_mutex_lock(&S.mu);
	uint64_t n = S.calls;
	pthread_mutex_unlock(&S.mu);
	return n;
}

uint64_t fsim_calls_of(enum fsim_kind k)
{
	pthread_mutex_lock(&S.mu);
	uint64_t n = S.per[k];
	pthread_mutex_unlock(&S.mu);
	return n;
}

uint64_t fsim_faults(void)
{
	pthread_mutex_lock(&S.mu);
	uint64_t n = S.faults;
	pthread_mutex_unlock(&S.mu);
	return n;
}
