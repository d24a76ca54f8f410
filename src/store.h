/*
 * Layer 4: the store handle. struct dskvs embeds one part per layer below
 * (the tables, the queue, the janitor) and what only open and close touch.
 * api.c and store.c are the only files that see it; every layer below gets
 * its own part.
 */
#ifndef DSKVS_STORE_H
#define DSKVS_STORE_H

#include "base.h"
#include "janitor.h"
#include "queue.h"
#include "table.h"

struct dskvs {
	/* The queue first: its fields are cache-line aligned, and the store
	 * is allocated 64-aligned. */
	struct dskvs__queue q;
	struct dskvs__tables t;
	struct dskvs__janitor j;
	/* Constant after open. */
	dskvs_options opts;
	struct dskvs__diag diag;
	int dirfd;
	int lockfd;    /* also closed by a child of fork (store.c) */
	char *path;    /* as given to dskvs_open (messages) */
	char *abspath; /* its canonical form at open, or NULL */
};

/* DSKVS_EINVAL (with the detail) when the calling thread is inside a
 * dskvs_update callback on s, which holds one of s's collection locks: a
 * write, sync, compaction or close of s from there would deadlock. Any
 * thread; reads only its own thread-local state (api.c). */
DSKVS_LOCAL int dskvs__refuse_in_update(const dskvs *s, const char *what);

#endif
