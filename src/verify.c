/*
 * dskvs_verify: check a store's log without changing anything, with the
 * scanner open uses (format.c), so the two always agree.
 */
#include "format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- verification -------------------------------------------------------- */

static uint64_t count_kept_torn(int dirfd)
{
	int fd = dup(dirfd);
	uint64_t n = 0;
	if (fd < 0)
		return 0;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, DSKVS_TORN_PREFIX,
		             sizeof(DSKVS_TORN_PREFIX) - 1) == 0;
	closedir(d);
	return n;
}

/*
 * verify reads the log through the same pread window and scanner as open.
 * It holds the store's lock shared when it can get it (nobody has the store
 * open), so that an open meanwhile fails with DSKVS_EBUSY and the file it
 * checks is the file open would see; when the store is open elsewhere it
 * checks the file as it is, and a log that an open truncates meanwhile only
 * makes a read short.
 */
int dskvs_verify(const char *path, dskvs_damage_fn fn, void *arg,
                 dskvs_verify_report *rep)
{
	dskvs_verify_report local;
	struct dskvs__scan sc;
	struct dskvs__rec r;
	struct stat st;
	char *file = NULL, *lock = NULL, msg[512];
	int dirfd = -1, fd = -1, lockfd = -1, k, rc = DSKVS_OK;

	if (rep == NULL)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	memset(&sc, 0, sizeof(sc));
	if (path == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_verify: NULL path");
	if (asprintf(&file, "%s/" DSKVS_LOG_NAME, path) < 0)
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_verify");
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		rc = dskvs__fail(DSKVS_EPATH, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (asprintf(&lock, "%s/" DSKVS_LOCK_NAME, path) >= 0) {
		lockfd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		free(lock);
		if (lockfd >= 0 && flock(lockfd, LOCK_SH | LOCK_NB) != 0) {
			close(lockfd);
			lockfd = -1;
		}
	}
	fd = dskvs__io.openat(dirfd, DSKVS_LOG_NAME,
	                      O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
	if (fd < 0) {
		rc = dskvs__fail(DSKVS_EPATH, "%s: %s", file, strerror(errno));
		goto out;
	}
	if (dskvs__io.fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = dskvs__fail(DSKVS_EPATH, "%s: not a regular file", file);
		goto out;
	}
	rep->kept_torn_files = count_kept_torn(dirfd);
	dskvs__win_init_fd(&sc.w, fd, (uint64_t)st.st_size);
	rc = dskvs__scan_header(&sc, file);
	rep->file_bytes = sc.w.size;
	if (rc == DSKVS__SCAN_TORN_HEADER) {
		rc = DSKVS_OK;
		rep->torn_tail = 1;
		rep->torn_bytes = sc.w.size;
		if (fn)
			fn(file, 0,
			   "file header incomplete (crash while creating); "
			   "open will rewrite it",
			   arg);
		goto out;
	}
	if (rc != DSKVS_OK) {
		if (rc != DSKVS_EIO && rc != DSKVS_ENOMEM)
			rep->damaged = 1;
		if (fn)
			fn(file, 0, dskvs_errmsg(NULL), arg);
		goto out;
	}
	rep->format_major = sc.major;
	rep->format_minor = sc.minor;
	rep->sealed_bytes = sc.major >= 2 ? sc.sealed : 0;
	rep->valid_bytes = sc.off;
	for (;;) {
		k = dskvs__scan_next(&sc, &r);
		if (k == DSKVS__SCAN_REC) {
			rep->records += r.op != DSKVS_REC_MARK;
			rep->puts += r.op == DSKVS_REC_PUT;
			rep->deletes += r.op == DSKVS_REC_DEL;
			rep->delete_alls += r.op == DSKVS_REC_DELALL;
			rep->marks += r.op == DSKVS_REC_MARK;
			if (!rep->damaged)
				rep->valid_bytes = sc.off;
			continue;
		}
		if (k == DSKVS__SCAN_END)
			break;
		if (k == DSKVS__SCAN_EIO) {
			rc = dskvs__scan_failure(&sc, k, file);
			if (fn)
				fn(file, sc.bad_off, dskvs_errmsg(NULL), arg);
			break;
		}
		if (k == DSKVS__SCAN_TORN) {
			rep->torn_tail = 1;
			rep->torn_offset = sc.off;
			rep->torn_bytes = sc.w.size - sc.off;
			if (dskvs__torn_name_free(dirfd, sc.off, rep->torn_file,
			                          sizeof(rep->torn_file)) != 0)
				rep->torn_file[0] = '\0';
			snprintf(msg, sizeof(msg),
			         "%s; the last %llu bytes are the torn tail of "
			         "a batch never reported durable: open will "
			         "move them aside to %s/%s and cut them off",
			         sc.why, (unsigned long long)rep->torn_bytes,
			         path, rep->torn_file);
			if (fn)
				fn(file, sc.off, msg, arg);
			break;
		}
		/* DSKVS__SCAN_CORRUPT */
		uint64_t at = sc.bad_off, proof = sc.proof_off;
		bool sealed = sc.in_sealed;
		const char *why = sc.why;
		uint64_t q = dskvs__scan_resync(&sc);
		rep->damaged++;
		if (proof)
			snprintf(msg, sizeof(msg),
			         "%s, in a batch that was synced (the record "
			         "of a later batch at offset %llu proves it); "
			         "%llu damaged bytes before the next valid "
			         "record at offset %llu",
			         why, (unsigned long long)proof,
			         (unsigned long long)(q - at),
			         (unsigned long long)q);
		else
			snprintf(msg, sizeof(msg),
			         "%s%s; %llu damaged bytes before the next "
			         "valid record at offset %llu",
			         why,
			         sealed ? ", inside the part a compaction "
			                  "synced whole"
			                : "",
			         (unsigned long long)(q - at),
			         (unsigned long long)q);
		if (fn)
			fn(file, at, msg, arg);
		rc = dskvs__fail(DSKVS_ECORRUPT, "%s: damaged at offset %llu",
		                 file, (unsigned long long)at);
		if (q >= sc.w.size)
			break;
	}
out:
	dskvs__win_free(&sc.w);
	if (fd >= 0)
		dskvs__io.close(fd);
	if (lockfd >= 0)
		close(lockfd); /* releases the shared lock */
	if (dirfd >= 0)
		close(dirfd);
	free(file);
	return rc;
}
