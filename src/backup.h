/*
 * Layer 3: backups (backup.c). Writing a prefix of a log as a new store at
 * a destination directory; dskvs_backup (store.c) composes it with the
 * janitor's cut (janitor.h), dskvs_backup_path with the scanner.
 */
#ifndef DSKVS_BACKUP_H
#define DSKVS_BACKUP_H

#include "base.h"

/* A backup's destination, owned by one thread (the caller of a backup). */
struct dskvs__dest {
	int dirfd;     /* the destination directory */
	char *path;    /* its canonical path */
	bool created;  /* the backup made it (abort removes it) */
	bool tmp_made; /* DSKVS_LOG_TMP exists in it */
	bool log_made; /* DSKVS_LOG_NAME exists in it */
};

/* Check and open the destination `dest` of a backup of the store at
 * `store_path`: it must not exist (then it is created with dir_mode; its
 * parent must exist) or be an empty directory, and must not be the
 * store's directory or lie inside it. Returns DSKVS_OK, or with the
 * thread's detail set (and nothing left behind):
 *   DSKVS_EINVAL  dest NULL or empty, or inside the store's directory;
 *   DSKVS_EEXIST  dest exists and is not a directory, or is a directory
 *                 that is not empty;
 *   DSKVS_EPATH   dest (or the store's path) cannot be reached, created
 *                 or opened (no permission, a missing parent, ...);
 *   DSKVS_ENOMEM. */
DSKVS_LOCAL int dskvs__dest_open(struct dskvs__dest *d, const char *store_path,
                                 const char *dest, unsigned dir_mode);
/* Copy bytes [0, size) of srcfd (a log prefix ending at a batch boundary;
 * size 0: no log, an empty store) into the destination as its log: through
 * DSKVS_LOG_TMP, fdatasync, rename, fsync of the directory and, if the
 * backup created it, of its parent. Returns DSKVS_OK, DSKVS_EIO (a read,
 * write or sync failed), DSKVS_EPATH (the file cannot be created),
 * DSKVS_ENOMEM. On failure call dskvs__dest_abort. */
DSKVS_LOCAL int dskvs__dest_write(struct dskvs__dest *d, int srcfd,
                                  uint64_t size, unsigned file_mode);
/* Undo: remove what the backup wrote (and the directory if it made it). */
DSKVS_LOCAL void dskvs__dest_abort(struct dskvs__dest *d);
/* Keep what was written; release d. */
DSKVS_LOCAL void dskvs__dest_done(struct dskvs__dest *d);

#endif
