/*
 * The dskvs commands that look after a store as a whole: stats, verify and
 * compact.
 */
#include "cli.h"
#include "progress.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void fmt_time(char *out, size_t cap, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) ||
	    !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, cap, "%lld", (long long)t);
}

/*
 * When the current log file was created. Compaction writes a new log and
 * renames it into place, so this is the time of the last compaction, or of
 * the store's creation when it was never compacted. 0 when the file system
 * does not record birth times.
 */
static int64_t log_birth_time(void)
{
	char p[4096];
	struct statx sx;

	snprintf(p, sizeof(p), "%s/dskvs.log", cli.store);
	if (statx(AT_FDCWD, p, 0, STATX_BTIME, &sx) != 0 ||
	    !(sx.stx_mask & STATX_BTIME))
		return 0;
	return sx.stx_btime.tv_sec;
}

static void stat_line(struct cbuf *b, const char *name, uint64_t v, int size)
{
	char line[160];

	snprintf(line, sizeof(line), "%-16s %llu", name, (unsigned long long)v);
	cbuf_puts(b, line);
	if (size && cli.out_tty && v >= 1024) {
		static const char *suf[] = { "KiB", "MiB", "GiB", "TiB" };
		double d = (double)v / 1024;
		int k = 0;

		while (d >= 1024 && k < 3) {
			d /= 1024;
			k++;
		}
		snprintf(line, sizeof(line), " (%.1f %s)", d, suf[k]);
		cbuf_puts(b, line);
	}
	cbuf_putc(b, '\n');
}

int cmd_stats(struct cmd_args *a)
{
	dskvs_stats s;
	struct cbuf b = { 0 };
	char line[160], when[64];
	int64_t t;
	double garbage;
	int r, st;

	(void)a;
	st = store_open(0);
	if (st)
		return st;
	r = dskvs_stats_get(cli.s, &s);
	if (r != DSKVS_OK)
		return store_close(lib_fail(r, "cannot read the statistics"));
	garbage = s.log_bytes && s.log_live_bytes <= s.log_bytes
	              ? 1.0 - (double)s.log_live_bytes / (double)s.log_bytes
	              : 0.0;
	stat_line(&b, "entries", s.entries, 0);
	stat_line(&b, "collections", s.collections, 0);
	stat_line(&b, "live_bytes", s.live_bytes, 1);
	stat_line(&b, "log_bytes", s.log_bytes, 1);
	stat_line(&b, "log_live_bytes", s.log_live_bytes, 1);
	snprintf(line, sizeof(line), "%-16s %.3f\n", "garbage_ratio", garbage);
	cbuf_puts(&b, line);
	snprintf(line, sizeof(line), "%-16s %u.%u\n", "format_version",
	         s.format_major, s.format_minor);
	cbuf_puts(&b, line);
	t = s.last_compaction_unix ? s.last_compaction_unix : log_birth_time();
	if (t)
		fmt_time(when, sizeof(when), t);
	else
		snprintf(when, sizeof(when), "unknown");
	snprintf(line, sizeof(line), "%-16s %s\n", "last_compaction", when);
	cbuf_puts(&b, line);
	st = out_write(b.p, b.len) ? ST_STORE : ST_OK;
	cbuf_free(&b);
	return store_close(st);
}

static void on_damage(const char *file, uint64_t offset, const char *what,
                      void *arg)
{
	struct cbuf *b = arg;
	size_t flen = strlen(file);
	char num[32];

	/* Kept until verify returns, so the list does not tangle with the
	 * progress line on the terminal. */
	text_put_escaped(b, file, strlen(file));
	snprintf(num, sizeof(num),
	         ": offset %llu: ", (unsigned long long)offset);
	cbuf_puts(b, num);
	/* Some descriptions repeat the file name; it is already there. */
	if (strncmp(what, file, flen) == 0 &&
	    strncmp(what + flen, ": ", 2) == 0)
		what += flen + 2;
	text_put_escaped(b, what, strlen(what));
	cbuf_putc(b, '\n');
}

/* Name the torn tails earlier opens kept in the store's directory. */
static void list_kept_torn(struct cbuf *out)
{
	DIR *d = opendir(cli.store);
	struct dirent *e;
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "dskvs.torn.", 11) != 0)
			continue;
		cbuf_puts(out, "kept: ");
		text_put_escaped(out, cli.store, strlen(cli.store));
		cbuf_putc(out, '/');
		text_put_escaped(out, e->d_name, strlen(e->d_name));
		cbuf_puts(out, " (the torn tail an earlier open cut off; "
		               "inspect, then delete it)\n");
	}
	closedir(d);
}

int cmd_verify(struct cmd_args *a)
{
	dskvs_verify_report rep;
	struct cbuf out = { 0 };
	char line[512], format[32];
	const char *on = cli.out_color ? "\033[1;32m" : "";
	const char *bad = cli.out_color ? "\033[1;31m" : "";
	const char *off = cli.out_color ? "\033[0m" : "";
	int r, st;

	(void)a;
	/* verify needs no exclusive lock, so it works on a store that
	 * another process has open, and on copies (see dskvs_verify). */
	st = store_exists();
	if (st)
		return st;
	memset(&rep, 0, sizeof(rep));
	progress_begin("verifying", 0, NULL);
	r = dskvs_verify(cli.store, on_damage, &out, &rep);
	progress_end(NULL);
	if (rep.format_major)
		snprintf(format, sizeof(format), "%u.%u", rep.format_major,
		         rep.format_minor);
	else
		snprintf(format, sizeof(format), "unknown");
	if (r != DSKVS_OK && r != DSKVS_ECORRUPT) {
		char what[300];
		cbuf_free(&out);
		snprintf(what, sizeof(what), "cannot verify %s", qs(cli.store));
		lib_fail(r, what);
		return ST_STORE;
	}
	snprintf(line, sizeof(line),
	         "%s%s%s: %llu %s (%llu %s, %llu %s, %llu %s), %llu of %llu "
	         "bytes valid, format %s",
	         r == DSKVS_OK ? on : bad,
	         r == DSKVS_OK ? "healthy" : "damaged", off,
	         (unsigned long long)rep.records,
	         plural(rep.records, "record", "records"),
	         (unsigned long long)rep.puts, plural(rep.puts, "put", "puts"),
	         (unsigned long long)rep.deletes,
	         plural(rep.deletes, "delete", "deletes"),
	         (unsigned long long)rep.delete_alls,
	         plural(rep.delete_alls, "delete-all", "delete-alls"),
	         (unsigned long long)rep.valid_bytes,
	         (unsigned long long)rep.file_bytes, format);
	cbuf_puts(&out, line);
	if (r == DSKVS_ECORRUPT) {
		snprintf(line, sizeof(line), "; %llu damaged %s",
		         (unsigned long long)rep.damaged,
		         plural(rep.damaged, "region", "regions"));
		cbuf_puts(&out, line);
	}
	if (rep.torn_tail) {
		snprintf(line, sizeof(line),
		         "; the log ends in a partial record (an interrupted "
		         "write never reported durable): the next open moves "
		         "its %llu bytes aside to %s/%s and cuts them off",
		         (unsigned long long)rep.torn_bytes, cli.store,
		         rep.torn_file);
		cbuf_puts(&out, line);
	}
	cbuf_putc(&out, '\n');
	if (rep.kept_torn_files)
		list_kept_torn(&out);
	st = out_write(out.p, out.len) ? ST_STORE : ST_OK;
	cbuf_free(&out);
	if (r == DSKVS_ECORRUPT) {
		errorf("store %s is damaged", qs(cli.store));
		return ST_STORE;
	}
	return st;
}

int cmd_compact(struct cmd_args *a)
{
	dskvs_stats before, after;
	char line[200];
	int r, st;

	(void)a;
	st = store_open(0);
	if (st)
		return st;
	r = dskvs_stats_get(cli.s, &before);
	if (r != DSKVS_OK)
		return store_close(lib_fail(r, "cannot read the statistics"));
	progress_begin("compacting", 0, NULL);
	r = dskvs_compact(cli.s);
	progress_end(NULL);
	if (r != DSKVS_OK)
		return store_close(lib_fail(r, "compaction failed"));
	r = dskvs_stats_get(cli.s, &after);
	if (r != DSKVS_OK)
		return store_close(lib_fail(r, "cannot read the statistics"));
	snprintf(line, sizeof(line), "compacted: log %llu -> %llu bytes\n",
	         (unsigned long long)before.log_bytes,
	         (unsigned long long)after.log_bytes);
	st = out_write(line, strlen(line)) ? ST_STORE : ST_OK;
	return store_close(st);
}

/* A refused destination is bad input (2); anything else a store or I/O
 * error (3). */
static int backup_fail(int r, const char *dest)
{
	char what[600];
	if (r == DSKVS_EEXIST || r == DSKVS_EINVAL || r == DSKVS_EPATH) {
		errorf("cannot back up to %s: %s", qs(dest),
		       dskvs_errmsg(NULL)[0] ? dskvs_errmsg(NULL)
		                             : dskvs_strerror(r));
		return ST_USAGE;
	}
	snprintf(what, sizeof(what), "backup of %s to %s failed", qs(cli.store),
	         qs(dest));
	return lib_fail(r, what);
}

int cmd_backup(struct cmd_args *a)
{
	const char *dest = a->pos[0];
	dskvs_backup_report rep;
	dskvs_options o;
	dskvs_stats s;
	char line[700];
	dskvs *h = NULL;
	int r, st;

	st = store_exists();
	if (st)
		return st;
	dskvs_options_init(&o);
	o.create = 0;
	o.auto_compact = 0;
	progress_begin("backing up", 0, NULL);
	r = dskvs_open(cli.store, &o, &h);
	if (r == DSKVS_OK) {
		/* Nobody else has it: a hot backup through this handle holds
		 * every write the store has. */
		r = dskvs_backup(h, dest);
		if (r == DSKVS_OK)
			r = dskvs_stats_get(h, &s);
		progress_end(NULL);
		if (r != DSKVS_OK) {
			st = backup_fail(r, dest);
			dskvs_close(h);
			return st;
		}
		if ((r = dskvs_close(h)) != DSKVS_OK)
			return lib_fail(r, "closing the store failed");
		snprintf(line, sizeof(line),
		         "backed up %s to %s: complete, every write up to "
		         "sequence number %llu\n",
		         cli.store, dest, (unsigned long long)s.seq);
	} else if (r == DSKVS_EBUSY) {
		/* Another process has it open: copy what its log proves
		 * synced, and say up to where. */
		r = dskvs_backup_path(cli.store, dest, &rep);
		progress_end(NULL);
		if (r != DSKVS_OK)
			return backup_fail(r, dest);
		snprintf(line, sizeof(line),
		         "backed up %s to %s: the store is open elsewhere; "
		         "copied the part of its log proven synced, %llu of "
		         "%llu bytes, %llu %s, complete up to sequence number "
		         "%llu; checked\n",
		         cli.store, dest, (unsigned long long)rep.bytes,
		         (unsigned long long)rep.file_bytes,
		         (unsigned long long)rep.records,
		         plural(rep.records, "record", "records"),
		         (unsigned long long)rep.seq);
	} else {
		progress_end(NULL);
		return lib_fail(r, "cannot open the store");
	}
	return out_write(line, strlen(line)) ? ST_STORE : ST_OK;
}
