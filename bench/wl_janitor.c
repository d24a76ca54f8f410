/*
 * dskvs-bench workload janitor: dskvs's log bandwidth — overwrite 4 KiB
 * values on a fresh store, then sync, as bytes of log per second — next to
 * what dd conv=fdatasync gets from the same disk.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workload.h"

/* Paths are built into fixed buffers far larger than any real store path;
 * a truncated one just fails to open. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static double dd_bw; /* bytes/s of write + fdatasync on the store's disk */

static double measure_dd(uint64_t bytes)
{
	char p[4200];
	char *buf = xmalloc(1 << 20);
	int fd;

	memset(buf, 0x5a, 1 << 20);
	snprintf(p, sizeof(p), "%s/ddtest", cfg.dir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		free(buf);
		return 0;
	}
	double t0 = now_s();
	for (uint64_t w = 0; w < bytes; w += 1 << 20)
		if (write(fd, buf, 1 << 20) != 1 << 20)
			break;
	fdatasync(fd);
	double t = now_s() - t0;
	close(fd);
	unlink(p);
	free(buf);
	return (double)bytes / t;
}

static void setup_janitor(const struct bench_workload *w, size_t *vsize)
{
	(void)w;
	*vsize = *vsize > 4096 ? *vsize : 4096;
	dd_bw = measure_dd(cfg.quick ? 64u << 20 : 256u << 20);
}

static void after_janitor(struct wl_round *r, void *db, const char *dir,
                          struct cell *c, const struct measured *m)
{
	const struct bench_engine *e = c->slot->e;

	(void)r;
	double t0 = now_s();
	if (e->sync)
		e->sync(db);
	double ts = now_s() - t0;
	uint64_t b = dir_bytes(dir);
	c->aux[c->n] = (double)b / (m->secs + ts);
	c->aux2[c->n] = ts;
}

static struct measured run_janitor(struct wl_round *r, struct eslot *s,
                                   struct cell *c)
{
	return wl_run_fresh(r, s, c, 0, after_janitor);
}

static void report_janitor(struct result *res, struct cell *c)
{
	appendf(res->extra, sizeof(res->extra),
	        "%slog_MBps=%.1f dd_fdatasync_MBps=%.1f final_sync_s=%.3f",
	        res->extra[0] ? " " : "", median(c->aux, c->n) / 1e6,
	        dd_bw / 1e6, median(c->aux2, c->n));
}

const struct bench_workload wl_janitor = {
	.name = "janitor",
	.what = "dskvs log bandwidth (4 KiB values) vs dd conv=fdatasync",
	.in_quick = 1,
	.engine_only = "dskvs",
	.no_preload = 1,
	.loop = wl_loop_overwrite,
	.setup = setup_janitor,
	.run = run_janitor,
	.report = report_janitor,
};
