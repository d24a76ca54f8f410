/*
 * The file-I/O seam: one table of function pointers through which every
 * file operation of the library goes. Production calls libc directly; the
 * fault-injection and power-loss tests swap the table (dskvs_internal only).
 *
 * Return convention: the one exception in src/ (base.h). These functions
 * return -errno (or libc's own convention for the table's entries), and
 * their callers turn that into a DSKVS_E* code with the file and offset.
 */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int libc_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	return openat(dirfd, name, flags, mode);
}

static int libc_fstat(int fd, struct stat *st)
{
	return fstat(fd, st);
}

const struct dskvs__io_ops dskvs__io_libc = {
	.openat = libc_openat,
	.close = close,
	.pread = pread,
	.pwritev = pwritev,
	.fdatasync = fdatasync,
	.fsync = fsync,
	.ftruncate = ftruncate,
	.renameat = renameat,
	.unlinkat = unlinkat,
	.fstat = libc_fstat,
};

/* Replaced only by tests, before any store is opened. */
struct dskvs__io_ops dskvs__io = {
	.openat = libc_openat,
	.close = close,
	.pread = pread,
	.pwritev = pwritev,
	.fdatasync = fdatasync,
	.fsync = fsync,
	.ftruncate = ftruncate,
	.renameat = renameat,
	.unlinkat = unlinkat,
	.fstat = libc_fstat,
};

/* Test hooks (base.h); NULL in production. */
void (*dskvs__hook)(int point, void *arg);

int dskvs__write_all(int fd, struct iovec *iov, int cnt, off_t off)
{
	while (cnt > 0) {
		int chunk = cnt > IOV_MAX ? IOV_MAX : cnt;
		ssize_t w = dskvs__io.pwritev(fd, iov, chunk, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO; /* no progress: treat as an I/O error */
		off += w;
		/* Skip what was written, keeping a partial iovec. */
		while (cnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (w > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

ssize_t dskvs__read_all(int fd, void *buf, size_t n, off_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = dskvs__io.pread(fd, (char *)buf + got, n - got,
		                            off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}
