/*
 * fsim: a file-system simulator behind the library's I/O seam (dskvs__io).
 *
 * It passes every call through to libc, and meanwhile keeps what a power
 * loss would leave of the store directory:
 *
 *  - per inode, the contents as of its last successful fdatasync/fsync (a
 *    copy; the workloads are small). A file that was never synced has
 *    empty durable contents. A failed sync makes the bytes that were dirty
 *    at that moment "lost": a later successful sync cannot bring them back
 *    (they read as zeros in the durable copy), as on Linux, where a failed
 *    writeback marks the pages clean (the PostgreSQL "fsyncgate");
 *  - the directory's name -> inode map as of its last fsync.
 *
 * From that it can build the directory a crash would leave (see enum
 * fsim_view), crash at the Nth seam call, and make chosen calls fail.
 *
 * Real fdatasync/fsync are skipped unless real_sync is set: the simulation
 * does not need them and they cost milliseconds each.
 *
 * One store directory per simulation; install before opening the store,
 * uninstall after closing it. All wrappers take one mutex, so a crash
 * rebuilds the directory while no other thread is inside the seam.
 */
#ifndef DSKVS_FSIM_H
#define DSKVS_FSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fsim_kind {
	FSIM_OPENAT,
	FSIM_CLOSE,
	FSIM_PREAD,
	FSIM_PWRITEV,
	FSIM_FDATASYNC,
	FSIM_FSYNC, /* fsync of the directory (or of a file) */
	FSIM_FTRUNCATE,
	FSIM_RENAMEAT,
	FSIM_UNLINKAT,
	FSIM_FSTAT,
	FSIM_NKINDS
};
const char *fsim_kind_name(enum fsim_kind k);

enum fsim_view {
	/* Current names; each file holds only its durable contents. */
	FSIM_DURABLE,
	/* Current names; durable contents, then the unsynced tail (the bytes
	 * past the durable length) replaced: a seeded number of its first
	 * bytes kept, the rest garbage (random bytes or zeros). */
	FSIM_GARBAGE_TAIL,
	/* Names as of the last directory fsync (creations, renames and
	 * unlinks since then undone), each with its durable contents. */
	FSIM_DURABLE_NAMES,
	/* Current names; the unsynced tail written back page by page (4 KiB,
	 * aligned to the file) in any order: each page of it either fully
	 * written or garbage, chosen by the seed. */
	FSIM_PAGES,
	FSIM_NVIEWS
};
const char *fsim_view_name(enum fsim_view v);

enum fsim_fault {
	FSIM_EIO = 1,
	FSIM_ENOSPC,
	FSIM_SHORT,            /* pwritev writes half of what it was given */
	FSIM_SHORT_THEN_ENOSPC /* half, then ENOSPC for every later call */
};
const char *fsim_fault_name(enum fsim_fault f);

struct fsim_config {
	bool real_sync;
	/* Crash before performing seam call number crash_at (1-based, all
	 * kinds counted); 0: never. The directory is rebuilt as crash_view
	 * (seeded with crash_seed), then the process _exit()s with
	 * FSIM_CRASH_EXIT. */
	uint64_t crash_at;
	enum fsim_view crash_view;
	uint64_t crash_seed;
	/* Make call number fault_n (1-based) of kind fault_kind fail with
	 * `fault`; every later one too when fault_persistent. 0: never. */
	enum fsim_kind fault_kind;
	uint64_t fault_n;
	enum fsim_fault fault;
	bool fault_persistent;
};

#define FSIM_CRASH_EXIT 86

/* Take over dskvs__io for the store directory `dir`. Every file already in
 * it is taken as durable, and its names too. */
void fsim_install(const char *dir, const struct fsim_config *cfg);
/* Give the seam back to libc and free the simulation. */
void fsim_uninstall(void);

/* Add a fault while running: call number `after` (1 = the next one) of
 * kind k from now fails with f, and every later one too if persistent.
 * At most FSIM_MAX_FAULTS faults in all, the config's included. */
#define FSIM_MAX_FAULTS 4
void fsim_arm(enum fsim_kind k, uint64_t after, enum fsim_fault f,
              bool persistent);

/* Seam calls so far, in all and per kind. */
uint64_t fsim_calls(void);
uint64_t fsim_calls_of(enum fsim_kind k);
/* Faults injected so far. */
uint64_t fsim_faults(void);

/* Write the directory a crash now would leave into `out` (emptied first;
 * may be the store directory itself). */
void fsim_materialize(const char *out, enum fsim_view view, uint64_t seed);

#endif
