/*
 * dskvs export --resp: the store as a stream of Redis commands, so that
 * `dskvs export --resp | redis-cli --pipe` loads it into any server that
 * speaks the Redis protocol (redis-server, a Redis or Valkey cluster,
 * dskvs-server). A collection is a Redis hash, a member one of its fields.
 *
 * With --strings COLLECTION, the members of that collection (where
 * dskvs-server keeps the string keys that have no '/') go as SET MEMBER
 * VALUE instead, so that they come back as the string keys they were.
 *
 * The stream is RESP multibulk requests only, "*N\r\n" then N bulk strings
 * "$LEN\r\nBYTES\r\n", which carry any bytes (NUL included) and empty
 * strings: nothing is escaped, nothing is lost.
 */
#include "cli.h"
#include "progress.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * One HSET carries at most EXPORT_CHUNK_FIELDS members, and is closed once
 * its members and values pass EXPORT_CHUNK_BYTES. A hash of a million
 * members then goes as a thousand commands of a thousand fields: each one
 * is far below what a server accepts in one request (Redis's
 * client-query-buffer-limit is 1 GiB, proto-max-bulk-len 512 MiB), the
 * server parses and applies a bounded amount of work per command without
 * stalling its other clients, and this program buffers at most one chunk
 * (plus one value: a value bigger than the byte bound goes alone).
 */
#define EXPORT_CHUNK_FIELDS 1000
#define EXPORT_CHUNK_BYTES  (1u << 20)

struct export_ctx {
	const char *coll;  /* the collection being written */
	int as_strings;    /* its members go as SET MEMBER VALUE */
	size_t clen;       /* its length */
	struct cbuf args;  /* the pending chunk's field and value bulks */
	size_t nfields;    /* members in args */
	size_t bytes;      /* their names' and values' bytes */
	struct cbuf head;  /* scratch for a command's header */
	uint64_t done;     /* members written */
	uint64_t commands; /* HSETs written */
};

static void put_bulk(struct cbuf *b, const void *p, size_t n)
{
	char len[32];

	snprintf(len, sizeof(len), "$%zu\r\n", n);
	cbuf_puts(b, len);
	cbuf_put(b, p, n);
	cbuf_put(b, "\r\n", 2);
}

/* Write the pending chunk as one HSET. Returns the exit status. */
static int export_flush(struct export_ctx *e)
{
	char n[32];

	if (!e->nfields)
		return ST_OK;
	e->head.len = 0;
	snprintf(n, sizeof(n), "*%zu\r\n", 2 + 2 * e->nfields);
	cbuf_puts(&e->head, n);
	put_bulk(&e->head, "HSET", 4);
	put_bulk(&e->head, e->coll, e->clen);
	e->commands++;
	e->nfields = 0;
	e->bytes = 0;
	if (out_write(e->head.p, e->head.len) ||
	    out_write(e->args.p, e->args.len))
		return ST_STORE;
	e->args.len = 0;
	return ST_OK;
}

static int export_one(const char *key, size_t klen, const char *member,
                      size_t mlen, const void *val, size_t vlen, void *arg)
{
	struct export_ctx *e = arg;

	(void)key;
	(void)klen;
	if (e->as_strings) {
		e->head.len = 0;
		cbuf_puts(&e->head, "*3\r\n");
		put_bulk(&e->head, "SET", 3);
		put_bulk(&e->head, member, mlen);
		put_bulk(&e->head, val, vlen);
		e->commands++;
		progress_set(++e->done);
		return out_write(e->head.p, e->head.len) ? ST_STORE : ST_OK;
	}
	put_bulk(&e->args, member, mlen);
	put_bulk(&e->args, val, vlen);
	e->nfields++;
	e->bytes += mlen + vlen;
	progress_set(++e->done);
	if (e->nfields >= EXPORT_CHUNK_FIELDS || e->bytes >= EXPORT_CHUNK_BYTES)
		return export_flush(e);
	return ST_OK;
}

/* Remove the copy's directory and the files in it (a store directory is
 * flat). Best effort: it only ever holds our own copy. */
static void remove_copy(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	char p[4096];

	if (d) {
		while ((ent = readdir(d)) != NULL) {
			if (strcmp(ent->d_name, ".") == 0 ||
			    strcmp(ent->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, ent->d_name);
			unlink(p);
		}
		closedir(d);
	}
	if (rmdir(dir) != 0 && errno != ENOENT)
		notef("could not remove the temporary copy %s: %s", qs(dir),
		      strerror(errno));
}

/*
 * The store is open in another process: copy the part of its log proven
 * synced into a fresh directory under $TMPDIR (dskvs_backup_path, which
 * never disturbs the other process) and open the copy instead. On success
 * cli.s is the copy (or NULL for an empty one) and *copy its directory.
 */
static int open_copy(char *copy, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	const char *store = cli.store;
	dskvs_backup_report rep;
	int r, st;

	snprintf(copy, size, "%s/dskvs-export.XXXXXX",
	         tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(copy)) {
		errorf("the store is open elsewhere, and a directory for a "
		       "copy cannot be made in %s: %s",
		       qs(tmp && tmp[0] ? tmp : "/tmp"), strerror(errno));
		copy[0] = '\0';
		return ST_STORE;
	}
	r = dskvs_backup_path(store, copy, &rep);
	if (r != DSKVS_OK) {
		char what[600];
		snprintf(what, sizeof(what),
		         "the store is open elsewhere, and copying it to %s "
		         "failed",
		         qs(copy));
		return lib_fail(r, what);
	}
	notef("the store is open elsewhere: exporting the part of its log "
	      "proven synced, complete up to sequence number %llu",
	      (unsigned long long)rep.seq);
	if (rep.bytes == 0)
		return ST_OK; /* an empty store: nothing to open */
	cli.store = copy;
	st = store_open(0);
	cli.store = store;
	return st;
}

int cmd_export(struct cmd_args *a)
{
	struct colls c = { 0 };
	struct export_ctx e;
	dskvs_stats stats;
	uint64_t seen = 0;
	char copy[4096] = "", final[128];
	int st, r;

	if (!a->resp)
		return usagef("say which format: --resp (Redis commands)");
	catch_interrupts();
	st = store_open_or_busy();
	if (st == ST_BUSY)
		st = open_copy(copy, sizeof(copy));
	if (st || !cli.s)
		goto out;
	r = dskvs_stats_get(cli.s, &stats);
	if (r != DSKVS_OK) {
		st = lib_fail(r, "cannot read the statistics");
		goto out;
	}
	st = list_colls(&c);
	if (st)
		goto out;
	memset(&e, 0, sizeof(e));
	progress_begin("export", stats.entries, "entries");
	for (size_t i = 0; st == ST_OK && i < c.n && !interrupted; i++) {
		e.coll = c.v[i].name;
		e.clen = strlen(c.v[i].name);
		e.as_strings = a->strings && strcmp(a->strings, e.coll) == 0;
		st = walk_collection(c.v[i].name, export_one, &e, &seen);
		if (st == ST_OK && !interrupted)
			st = export_flush(&e);
		e.args.len = 0;
		e.nfields = 0;
		e.bytes = 0;
	}
	snprintf(final, sizeof(final), "export: %llu entries in %llu commands",
	         (unsigned long long)e.done, (unsigned long long)e.commands);
	progress_end(final);
	if (interrupted && !cli.epipe) {
		errorf("interrupted after %llu %s; the export is incomplete",
		       (unsigned long long)e.done,
		       plural(e.done, "entry", "entries"));
		st = 128 + interrupted;
	}
	if (st == ST_OK && out_flush())
		st = ST_STORE;
	cbuf_free(&e.args);
	cbuf_free(&e.head);
out:
	colls_free(&c);
	st = store_close(st);
	if (copy[0])
		remove_copy(copy);
	return st;
}
