/*
 * Backups: writing a copy of a prefix of the log as a new store, and
 * dskvs_backup_path, the copy of the part of a log proven synced (for a
 * store open in another process). dskvs_backup (store.c) gets its prefix
 * from the janitor (dskvs__janitor_cut) and writes it with the functions
 * here.
 *
 * Why a prefix of the log is a store: the log is append-only, and its file
 * header (salt, sealed length) describes every prefix that is at least the
 * sealed length long. A prefix that ends at a batch boundary (after a
 * batch's last record, or after a mark) scans to a clean end, so the copy
 * opens like a store whose process stopped there: recovery fdatasyncs it
 * and writes a mark if it ends without one (recover.c).
 *
 * Durability of the copy: the log goes to DSKVS_LOG_TMP in the
 * destination, is fdatasync'ed, renamed to DSKVS_LOG_NAME, the directory
 * is fsync'ed, and so is its parent when the backup created it. A crash
 * before the rename leaves a directory that opens as an empty store (open
 * removes the temporary file), never a store with part of the copy.
 */
#include "backup.h"
#include "format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* The copy moves the log through a buffer of this size: large enough that
 * the syscalls cost nothing next to the bytes, small enough to allocate
 * per call. */
#define COPY_CHUNK ((size_t)4 << 20)

/* A directory is empty: only "." and "..". 1, 0, or -errno. */
static int dir_is_empty(int dirfd)
{
	int fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct dirent *e;
	int empty = 1;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	}
	int err = errno;
	closedir(d);
	return empty == 1 && err ? -err : empty;
}

/* `inner` is `outer` or lies under it (both canonical). */
static bool path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);
	if (n == 1 && outer[0] == '/')
		return true;
	return strncmp(inner, outer, n) == 0 &&
	       (inner[n] == '\0' || inner[n] == '/');
}

/* The canonical form of `dest`, which may not exist yet: realpath of its
 * parent plus its last name. NULL with errno set on failure. */
static char *canonical_dest(const char *dest, bool exists)
{
	if (exists)
		return realpath(dest, NULL);
	char *copy = strdup(dest), *slash, *parent, *out = NULL;
	if (copy == NULL)
		return NULL;
	size_t len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy;
	if (slash == copy)
		parent = realpath("/", NULL);
	else if (slash) {
		*slash = '\0';
		parent = realpath(copy, NULL);
	} else {
		parent = realpath(".", NULL);
	}
	if (parent && asprintf(&out, "%s/%s", strcmp(parent, "/") ? parent : "",
	                       base) < 0)
		out = NULL;
	int e = errno;
	free(parent);
	free(copy);
	errno = e;
	return out;
}

int dskvs__dest_open(struct dskvs__dest *d, const char *store_path,
                     const char *dest, unsigned dir_mode)
{
	struct stat st;
	char *sreal = NULL, *dreal = NULL;
	bool exists;
	int rc = DSKVS_OK;

	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
	if (dest == NULL || dest[0] == '\0')
		return dskvs__fail(DSKVS_EINVAL, "backup: empty destination");
	if (stat(dest, &st) == 0) {
		exists = true;
		if (!S_ISDIR(st.st_mode))
			return dskvs__fail(DSKVS_EEXIST,
			                   "backup: %s exists and is not a "
			                   "directory",
			                   dest);
	} else if (errno == ENOENT) {
		exists = false;
	} else {
		return dskvs__fail(DSKVS_EPATH, "backup: %s: %s", dest,
		                   strerror(errno));
	}
	sreal = realpath(store_path, NULL);
	if (sreal == NULL)
		return dskvs__fail(DSKVS_EPATH, "backup: %s: %s", store_path,
		                   strerror(errno));
	dreal = canonical_dest(dest, exists);
	if (dreal == NULL) {
		rc = dskvs__fail(errno == ENOMEM ? DSKVS_ENOMEM : DSKVS_EPATH,
		                 "backup: %s: %s", dest, strerror(errno));
		goto out;
	}
	if (path_within(dreal, sreal)) {
		rc = dskvs__fail(DSKVS_EINVAL,
		                 "backup: %s lies inside the store's directory "
		                 "%s",
		                 dest, sreal);
		goto out;
	}
	if (!exists) {
		if (mkdir(dest, (mode_t)dir_mode) != 0) {
			rc = dskvs__fail(errno == EEXIST ? DSKVS_EEXIST
			                                 : DSKVS_EPATH,
			                 "backup: %s: cannot create: %s", dest,
			                 strerror(errno));
			goto out;
		}
		d->created = true;
	}
	d->path = dreal;
	dreal = NULL;
	d->dirfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0) {
		rc = dskvs__fail(DSKVS_EPATH, "backup: %s: %s", dest,
		                 strerror(errno));
		goto out;
	}
	if (exists) {
		int empty = dir_is_empty(d->dirfd);
		if (empty < 0)
			rc = dskvs__fail(DSKVS_EPATH, "backup: %s: %s", dest,
			                 strerror(-empty));
		else if (!empty)
			rc = dskvs__fail(DSKVS_EEXIST,
			                 "backup: %s is a directory that is "
			                 "not empty",
			                 dest);
	}
out:
	free(sreal);
	free(dreal);
	if (rc != DSKVS_OK)
		dskvs__dest_abort(d);
	return rc;
}

void dskvs__dest_abort(struct dskvs__dest *d)
{
	if (d->dirfd >= 0) {
		if (d->tmp_made)
			(void)dskvs__io.unlinkat(d->dirfd, DSKVS_LOG_TMP, 0);
		if (d->log_made)
			(void)dskvs__io.unlinkat(d->dirfd, DSKVS_LOG_NAME, 0);
		close(d->dirfd);
	}
	if (d->created && d->path)
		(void)rmdir(d->path);
	free(d->path);
	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
}

/* fsync the parent directory of `path` (canonical). 0 or errno. */
static int sync_parent(const char *path)
{
	char *p = strdup(path);
	int e = 0;
	if (p == NULL)
		return ENOMEM;
	char *slash = strrchr(p, '/');
	if (slash == p)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || dskvs__io.fsync(fd) != 0)
		e = errno;
	if (fd >= 0)
		close(fd);
	free(p);
	return e;
}

int dskvs__dest_write(struct dskvs__dest *d, int srcfd, uint64_t size,
                      unsigned file_mode)
{
	unsigned char *buf = NULL;
	int fd = -1, rc = DSKVS_OK;

	if (size > 0) {
		buf = malloc(COPY_CHUNK);
		if (buf == NULL)
			return dskvs__fail(DSKVS_ENOMEM, "backup");
		fd = dskvs__io.openat(d->dirfd, DSKVS_LOG_TMP,
		                      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		                          O_NOFOLLOW,
		                      (mode_t)file_mode);
		if (fd < 0) {
			rc = dskvs__fail(DSKVS_EPATH,
			                 "backup: %s/" DSKVS_LOG_TMP ": %s",
			                 d->path, strerror(errno));
			goto out;
		}
		d->tmp_made = true;
		for (uint64_t off = 0; off < size;) {
			size_t n = size - off < COPY_CHUNK
			               ? (size_t)(size - off)
			               : COPY_CHUNK;
			ssize_t got =
			    dskvs__read_all(srcfd, buf, n, (off_t)off);
			if (got != (ssize_t)n) {
				rc = dskvs__fail(
				    DSKVS_EIO,
				    "backup: reading the log at offset %llu: "
				    "%s",
				    (unsigned long long)off,
				    got < 0
				        ? strerror((int)-got)
				        : "the file is shorter than it was");
				goto out;
			}
			struct iovec iov = { buf, n };
			int e = dskvs__write_all(fd, &iov, 1, (off_t)off);
			if (e != 0) {
				rc = dskvs__fail(DSKVS_EIO,
				                 "backup: %s/" DSKVS_LOG_TMP
				                 ": write at offset %llu: %s",
				                 d->path,
				                 (unsigned long long)off,
				                 strerror(-e));
				goto out;
			}
			off += n;
		}
		if (dskvs__io.fdatasync(fd) != 0) {
			rc = dskvs__fail(DSKVS_EIO,
			                 "backup: %s/" DSKVS_LOG_TMP
			                 ": fdatasync: %s",
			                 d->path, strerror(errno));
			goto out;
		}
		if (dskvs__io.renameat(d->dirfd, DSKVS_LOG_TMP, d->dirfd,
		                       DSKVS_LOG_NAME) != 0) {
			rc = dskvs__fail(DSKVS_EIO,
			                 "backup: %s: rename to " DSKVS_LOG_NAME
			                 ": %s",
			                 d->path, strerror(errno));
			goto out;
		}
		d->tmp_made = false;
		d->log_made = true;
	}
	if (dskvs__io.fsync(d->dirfd) != 0) {
		rc = dskvs__fail(DSKVS_EIO, "backup: %s: fsync: %s", d->path,
		                 strerror(errno));
		goto out;
	}
	if (d->created) {
		int e = sync_parent(d->path);
		if (e) {
			rc = dskvs__fail(DSKVS_EIO,
			                 "backup: %s: fsync of the parent "
			                 "directory: %s",
			                 d->path, strerror(e));
			goto out;
		}
	}
out:
	if (fd >= 0)
		dskvs__io.close(fd);
	free(buf);
	return rc;
}

void dskvs__dest_done(struct dskvs__dest *d)
{
	if (d->dirfd >= 0)
		close(d->dirfd);
	free(d->path);
	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
}

/* ---- the synced part of a log open elsewhere -----------------------------
 *
 * What a process that has the store open may still change: the end of the
 * log (batches being written, not yet synced, later a torn tail that its
 * next open cuts off). What it never changes: bytes the log proves synced.
 * So this reads the log through one fd, scans it with the scanner open
 * uses, and takes the longest prefix that is proven synced by the rules of
 * format.c: the sealed part, everything before a mark (and the mark), and
 * everything before a record of a later batch. Such a prefix ends at a
 * batch boundary. A compaction meanwhile renames a new file over the name;
 * the fd keeps reading the old one, which is never written again.
 */
static int synced_prefix(struct dskvs__scan *sc, uint64_t *end, uint64_t *seq,
                         uint64_t *records, const char *file)
{
	struct dskvs__rec r;
	uint64_t max_seq = 0, n = 0;
	uint32_t prev_batch = 0;
	bool have_prev = false;
	int k;

	*end = DSKVS_FILE_HDR;
	*seq = 0;
	*records = 0;
	while ((k = dskvs__scan_next(sc, &r)) == DSKVS__SCAN_REC) {
		/* A record of a later batch proves everything before it. */
		if (have_prev && r.off >= sc->sealed && r.batch > prev_batch) {
			*end = r.off;
			*seq = max_seq;
			*records = n;
		}
		if (r.op != DSKVS_REC_MARK) {
			if (r.seq > max_seq)
				max_seq = r.seq;
			n++;
		}
		/* The sealed part is proven by the header; a mark proves
		 * everything before it (and is itself a whole record). */
		if (r.off + r.size <= sc->sealed || r.op == DSKVS_REC_MARK) {
			*end = r.off + r.size;
			*seq = max_seq;
			*records = n;
		}
		prev_batch = r.batch;
		have_prev = true;
	}
	if (k == DSKVS__SCAN_CORRUPT || k == DSKVS__SCAN_EIO)
		return dskvs__scan_failure(sc, k, file);
	return DSKVS_OK;
}

int dskvs_backup_path(const char *path, const char *dest,
                      dskvs_backup_report *rep)
{
	dskvs_backup_report local;
	struct dskvs__scan sc;
	struct dskvs__dest d;
	struct stat st;
	char *file = NULL, *lock = NULL;
	int fd = -1, lockfd = -1, rc;

	dskvs__clear_detail();
	if (rep == NULL)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	memset(&sc, 0, sizeof(sc));
	if (path == NULL || path[0] == '\0')
		return dskvs__fail(DSKVS_EINVAL, "dskvs_backup_path: no store");
	if (stat(path, &st) != 0)
		return dskvs__fail(DSKVS_EPATH, "%s: %s", path,
		                   strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return dskvs__fail(DSKVS_EPATH, "%s: not a directory", path);
	rc = dskvs__dest_open(&d, path, dest, 0700);
	if (rc != DSKVS_OK)
		return rc;
	/* Like verify: hold the lock shared when nobody has the store open,
	 * so that an open meanwhile (which may cut a torn tail) waits. */
	if (asprintf(&lock, "%s/" DSKVS_LOCK_NAME, path) >= 0) {
		lockfd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		free(lock);
		if (lockfd >= 0 && flock(lockfd, LOCK_SH | LOCK_NB) != 0) {
			rep->open_elsewhere = 1;
			close(lockfd);
			lockfd = -1;
		}
	}
	if (asprintf(&file, "%s/" DSKVS_LOG_NAME, path) < 0) {
		file = NULL;
		rc = dskvs__fail(DSKVS_ENOMEM, "dskvs_backup_path");
		goto out;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT) {
		rc = dskvs__fail(DSKVS_EPATH, "%s: %s", file, strerror(errno));
		goto out;
	}
	uint64_t end = 0;
	if (fd >= 0) {
		if (dskvs__io.fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			rc = dskvs__fail(DSKVS_EPATH, "%s: not a regular file",
			                 file);
			goto out;
		}
		rep->file_bytes = (uint64_t)st.st_size;
		dskvs__win_init_fd(&sc.w, fd, (uint64_t)st.st_size);
		rc = dskvs__scan_header(&sc, file);
		if (rc == DSKVS__SCAN_TORN_HEADER) {
			rc = DSKVS_OK; /* nothing was ever logged */
		} else if (rc == DSKVS_OK) {
			rc = synced_prefix(&sc, &end, &rep->seq, &rep->records,
			                   file);
		}
		if (rc != DSKVS_OK)
			goto out;
	}
	rep->bytes = end;
	rc = dskvs__dest_write(&d, fd, end, 0600);
	if (rc != DSKVS_OK)
		goto out;
	if (end > 0) {
		/* Check the copy by the rules open applies. */
		dskvs_verify_report vr;
		rc = dskvs_verify(d.path, NULL, NULL, &vr);
		if (rc == DSKVS_OK && (vr.torn_tail || vr.valid_bytes != end))
			rc = dskvs__fail(DSKVS_ECORRUPT,
			                 "backup: the copy in %s does not end "
			                 "where it should (%llu of %llu bytes "
			                 "valid)",
			                 d.path,
			                 (unsigned long long)vr.valid_bytes,
			                 (unsigned long long)end);
	}
out:
	if (rc == DSKVS_OK)
		dskvs__dest_done(&d);
	else
		dskvs__dest_abort(&d);
	dskvs__win_free(&sc.w);
	if (fd >= 0)
		close(fd);
	if (lockfd >= 0)
		close(lockfd);
	free(file);
	return rc;
}
