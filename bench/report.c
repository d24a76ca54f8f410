/*
 * dskvs-bench: the results and their output — the Markdown tables, the
 * goals of the issue checked against them (the targets in goals[] below),
 * the CSV and the gnuplot charts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "workload.h"

/* Paths are built into fixed buffers far larger than any real store path;
 * a truncated one just fails to open. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

struct result *results;
size_t nresults;
static size_t capresults;

struct result *add_result(void)
{
	if (nresults == capresults) {
		capresults = capresults ? capresults * 2 : 256;
		results = realloc(results, capresults * sizeof(*results));
		if (results == NULL)
			die("out of memory");
	}
	memset(&results[nresults], 0, sizeof(results[0]));
	return &results[nresults++];
}

/* ---- one measured run -----------------------------------------------------
 */

static const char *human(double v, char *buf, size_t n)
{
	if (v >= 1e9)
		snprintf(buf, n, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, n, "%.2fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, n, "%.1fk", v / 1e3);
	else
		snprintf(buf, n, "%.0f", v);
	return buf;
}

static const char *human_ns(double ns, char *buf, size_t n)
{
	if (ns >= 1e9)
		snprintf(buf, n, "%.2fs", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, n, "%.2fms", ns / 1e6);
	else if (ns >= 1e4)
		snprintf(buf, n, "%.1fus", ns / 1e3);
	else
		snprintf(buf, n, "%.0fns", ns);
	return buf;
}

static const struct result *find(const char *eng, const char *wl, int th)
{
	for (size_t i = 0; i < nresults; i++)
		if (strcmp(results[i].engine, eng) == 0 &&
		    strcmp(results[i].workload, wl) == 0 &&
		    (th == 0 || results[i].threads == th))
			return &results[i];
	return NULL;
}

/* Below a table: what the harness itself spends per operation, from the
 * null engine's run of the same workload: its timed threads' CPU time
 * (CLOCK_THREAD_CPUTIME_ID) per op, which other jobs taking turns on the
 * CPUs do not inflate as they do ops/s. Part of every other engine's
 * figure too. Not for workloads without timed loops (memory, lag). */
static void print_harness_cost(FILE *f, const struct bench_workload *w)
{
	const char *sep = "\nharness cost: ";

	if (w->tabulate)
		return;
	for (size_t i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		if (strcmp(r->workload, w->name) != 0 ||
		    strcmp(r->engine, "null") || r->cpu_ns_op <= 0)
			continue;
		fprintf(f, "%s%.1f ns/op at %d thread%s", sep, r->cpu_ns_op,
		        r->threads, r->threads == 1 ? "" : "s");
		sep = ", ";
	}
	if (sep[0] == ',')
		fprintf(f, " (null engine, CPU time per op)\n");
}

void print_tables(FILE *f)
{
	for (size_t wi = 0; wi < nworkloads; wi++) {
		const struct bench_workload *w = bench_workloads[wi];
		int any = 0;

		for (size_t i = 0; i < nresults; i++)
			if (strcmp(results[i].workload, w->name) == 0)
				any = 1;
		if (!any)
			continue;
		fprintf(f, "\n### %s: %s\n\n", w->name, w->what);
		fprintf(f,
		        "| engine | threads | ops/s | vs dskvs | p50 | p99 | "
		        "p999 | notes |\n");
		fprintf(f, "|---|--:|--:|--:|--:|--:|--:|---|\n");
		for (size_t i = 0; i < nresults; i++) {
			const struct result *r = &results[i];
			const struct result *d;
			char a[32], b[32], c[32], e[32], x[32] = "";

			if (strcmp(r->workload, w->name) != 0)
				continue;
			/* (a one-engine workload's rows are not threads) */
			d = w->engine_only
			        ? NULL
			        : find("dskvs", r->workload, r->threads);
			if (d && d->ops_s > 0)
				snprintf(x, sizeof(x), "%.2fx",
				         r->ops_s / d->ops_s);
			fprintf(
			    f, "| %s | %d | %s | %s | %s | %s | %s | %s |\n",
			    r->engine, r->threads, human(r->ops_s, a, 32), x,
			    human_ns(r->p50, b, 32), human_ns(r->p99, c, 32),
			    human_ns(r->p999, e, 32), r->extra);
		}
		print_harness_cost(f, w);
	}
}

void write_csv(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");

	if (f == NULL) {
		fprintf(stderr, "dskvs-bench: cannot write %s: %s\n", path,
		        strerror(errno));
		return;
	}
	fprintf(f, "engine,workload,threads,keys,value_size,ops,seconds,"
	           "ops_per_sec,p50_ns,p99_ns,p999_ns,rss_bytes,reps_ops_per_"
	           "sec,extra\n");
	for (size_t i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		fprintf(f,
		        "%s,%s,%d,%" PRIu64 ",%zu,%" PRIu64
		        ",%.6f,%.1f,%.0f,%.0f,%.0f,%" PRIu64 ",",
		        r->engine, r->workload, r->threads, r->keys,
		        r->value_size, r->ops, r->seconds, r->ops_s, r->p50,
		        r->p99, r->p999, r->rss);
		for (int j = 0; j < r->nrep; j++)
			fprintf(f, "%s%.0f", j ? " " : "", r->rep[j]);
		fprintf(f, ",\"%s\"\n", r->extra);
	}
	if (f != stdout)
		fclose(f);
}

void write_charts(const char *dir)
{
	char p[4200];

	mkdir(dir, 0755);
	for (size_t wi = 0; wi < nworkloads; wi++) {
		const struct bench_workload *w = bench_workloads[wi];
		const char *engs[nengines];
		int ne = 0;
		FILE *f;

		if (w->no_chart)
			continue;
		for (size_t i = 0; i < nresults; i++) {
			int seen = 0;
			if (strcmp(results[i].workload, w->name) != 0)
				continue;
			for (int j = 0; j < ne; j++)
				if (strcmp(engs[j], results[i].engine) == 0)
					seen = 1;
			if (!seen && ne < (int)nengines)
				engs[ne++] = results[i].engine;
		}
		if (ne == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s.gp", dir, w->name);
		f = fopen(p, "w");
		if (f == NULL)
			continue;
		fprintf(
		    f,
		    "set terminal pngcairo size 900,560 noenhanced\n"
		    "set output '%s/%s.png'\n"
		    "set title '%s: %s (%" PRIu64 " keys, %zu-byte values)'\n"
		    "set xlabel 'threads'\nset ylabel 'ops/s'\n"
		    "set logscale y\nset grid\nset key outside right\n"
		    "set xtics 1\n",
		    dir, w->name, w->name, w->what, cfg.keys, cfg.value_size);
		fprintf(f, "$data << EOD\n");
		for (int j = 0; j < ne; j++) {
			for (size_t i = 0; i < nresults; i++)
				if (strcmp(results[i].workload, w->name) == 0 &&
				    strcmp(results[i].engine, engs[j]) == 0)
					fprintf(f, "%d %.1f\n",
					        results[i].threads,
					        results[i].ops_s > 0
					            ? results[i].ops_s
					            : 1);
			fprintf(f, "\n\n");
		}
		fprintf(f, "EOD\nplot ");
		for (int j = 0; j < ne; j++)
			fprintf(
			    f,
			    "%s$data index %d with linespoints lw 2 title '%s'",
			    j ? ", " : "", j, engs[j]);
		fprintf(f, "\n");
		fclose(f);
		char cmd[8500];
		snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>&1", p);
		if (system(cmd) != 0)
			fprintf(stderr,
			        "dskvs-bench: gnuplot failed for %s "
			        "(apt-get install gnuplot-nox)\n",
			        p);
	}
}

/* ---- goals -------------------------------------------------------------- */

/* The goals of the issue: every target in one table, in the order they are
 * printed, each checked against this run's figures by the printer its kind
 * names. A name ending in '*' in a "not a peer" list is a prefix. */
enum goal_kind {
	G_VS,       /* dskvs >= want x each of peers[] (threads th..th2),
	             * and no engine outside notpeer[] ahead of dskvs */
	G_SCALING,  /* dskvs at th2 threads >= want x dskvs at th */
	G_DURABLE,  /* the same, for synced writes */
	G_KEEPS,    /* dskvs on wl >= want x dskvs on base (th..th2) */
	G_AHEAD,    /* dskvs ahead of the best engine outside notpeer[],
	             * at each of the --threads counts */
	G_JANITOR,  /* log_MBps >= want x dd_fdatasync_MBps (shown) */
	G_RECOVERY, /* open in < want s at 1M, >= want2 x sequential read */
	G_NOTE,     /* dskvs's notes next to a reference (note) */
	G_CHURN,    /* last window >= want x first, RSS after <= want2 x
	             * before (notes last_vs_first, rss_ratio) */
	G_LAG,      /* at each rate, lag p50 <= want x fdatasync p50 and
	             * lag p99 <= want2 x fdatasync p99 (notes) */
};

struct goal_peer {
	const char *engine;
	double want;
};

struct goal {
	enum goal_kind kind;
	const char *wl;
	const char *base; /* G_KEEPS: the workload compared with */
	int th, th2;
	double want, want2;
	const struct goal_peer *peers; /* G_VS: ends with a NULL engine */
	const char *const *notpeer;    /* ends with NULL */
	const char *note;
};

/* readrandom: 0.9x ceiling, 1.2x rwlock, 3x LMDB (issue 16); 0.85x
 * ceiling-hs and 10x LevelDB and RocksDB (the first bench's goals). */
static const struct goal_peer read_peers[] = {
	{ "ceiling", 0.9 }, { "ceiling-hs", 0.85 }, { "rwlock", 1.2 },
	{ "lmdb", 3 },      { "leveldb", 10 },      { "rocksdb", 10 },
	{ NULL, 0 },
};
static const char *const not_read_peers[] = { "dskvs", "ceiling*", "null",
	                                      NULL };
static const char *const not_write_peers[] = { "dskvs", "ceiling*", "rwlock",
	                                       "lfht",  "null",     NULL };

static const struct goal goals[] = {
	{ G_VS, "readrandom", NULL, 1, 2, 0, 0, read_peers, not_read_peers,
	  NULL },
	{ G_SCALING, "readrandom", NULL, 1, 2, 1.9, 0, NULL, NULL, NULL },
	{ G_KEEPS, "readwhilewriting", "readrandom", 1, 2, 0.90, 0, NULL, NULL,
	  NULL },
	{ G_AHEAD, "fillrandom", NULL, 0, 0, 0, 0, NULL, not_write_peers,
	  NULL },
	{ G_AHEAD, "overwrite", NULL, 0, 0, 0, 0, NULL, not_write_peers, NULL },
	{ G_JANITOR, "janitor", NULL, 0, 0, 0.8, 0, NULL, NULL, NULL },
	{ G_DURABLE, "durable", NULL, 1, 8, 4, 0, NULL, NULL, NULL },
	{ G_RECOVERY, "recovery", NULL, 0, 0, 1, 0.5, NULL, NULL, NULL },
	{ G_CHURN, "churn-members", NULL, 0, 0, 0.8, 1.2, NULL, NULL, NULL },
	{ G_CHURN, "churn-colls", NULL, 0, 0, 0.8, 1.2, NULL, NULL, NULL },
	{ G_LAG, "lag", NULL, 0, 0, 1.3, 2, NULL, NULL, NULL },
	{ G_NOTE, "memory", NULL, 0, 0, 0, 0, NULL, NULL,
	  "goal: at most 90 B beyond key and value at 1M keys; Redis 7: ~76 B "
	  "by used_memory, ~91 B by RSS per 1M keys/100-byte values" },
};

static int is_peer(const char *engine, const char *const *notpeer)
{
	for (; *notpeer; notpeer++) {
		size_t l = strlen(*notpeer);
		if ((*notpeer)[l - 1] == '*'
		        ? strncmp(engine, *notpeer, l - 1) == 0
		        : strcmp(engine, *notpeer) == 0)
			return 0;
	}
	return 1;
}

static const char *met(int ok)
{
	return ok ? "met" : "MISSED";
}

static void goal_vs(FILE *f, const struct goal *g)
{
	char a[32], b[32];

	for (int th = g->th; th <= g->th2; th++) {
		const struct result *d = find("dskvs", g->wl, th), *o;
		if (!d)
			continue;
		for (const struct goal_peer *p = g->peers; p->engine; p++) {
			o = find(p->engine, g->wl, th);
			if (!o || o->ops_s <= 0)
				continue;
			double x = d->ops_s / o->ops_s;
			fprintf(f,
			        "- %s t=%d: dskvs %s vs %s %s ops/s = "
			        "%.2fx (goal >= %.2fx): %s\n",
			        g->wl, th, human(d->ops_s, a, 32), p->engine,
			        human(o->ops_s, b, 32), x, p->want,
			        met(x >= p->want));
		}
		for (size_t i = 0; i < nresults; i++) {
			const struct result *r = &results[i];
			if (strcmp(r->workload, g->wl) || r->threads != th ||
			    !is_peer(r->engine, g->notpeer))
				continue;
			if (r->ops_s >= d->ops_s)
				fprintf(f,
				        "- %s t=%d: %s (%s) is ahead of "
				        "dskvs: MISSED\n",
				        g->wl, th, r->engine,
				        human(r->ops_s, a, 32));
		}
	}
}

static void goal_scaling(FILE *f, const struct goal *g)
{
	const struct result *d = find("dskvs", g->wl, g->th);
	const struct result *o = find("dskvs", g->wl, g->th2);
	char a[32], b[32];

	if (!d || !o)
		return;
	double x = o->ops_s / d->ops_s;
	if (g->kind == G_DURABLE)
		fprintf(f,
		        "- durable: %d threads %s synced writes/s vs %d thread "
		        "%s = %.2fx (goal >= %gx): %s\n",
		        g->th2, human(o->ops_s, a, 32), g->th,
		        human(d->ops_s, b, 32), x, g->want, met(x >= g->want));
	else
		fprintf(f,
		        "- read scaling: %d threads / %d thread = %.2fx (goal "
		        ">= %.2fx): %s\n",
		        g->th2, g->th, x, g->want, met(x >= g->want));
}

static void goal_keeps(FILE *f, const struct goal *g)
{
	for (int th = g->th; th <= g->th2; th++) {
		const struct result *d = find("dskvs", g->base, th);
		const struct result *o = find("dskvs", g->wl, th);
		if (d && o)
			fprintf(f,
			        "- %s t=%d: readers keep %.2fx of %s (goal >= "
			        "%.2fx): %s\n",
			        g->wl, th, o->ops_s / d->ops_s, g->base,
			        g->want, met(o->ops_s / d->ops_s >= g->want));
	}
}

static void goal_ahead(FILE *f, const struct goal *g)
{
	char a[32], b[32];

	for (int ti = 0; ti < cfg.nthreads; ti++) {
		int th = cfg.threads[ti];
		const struct result *d = find("dskvs", g->wl, th);
		if (!d)
			continue;
		const char *best = NULL;
		double bv = 0;
		for (size_t i = 0; i < nresults; i++) {
			const struct result *r = &results[i];
			if (strcmp(r->workload, g->wl) || r->threads != th ||
			    !is_peer(r->engine, g->notpeer))
				continue;
			if (r->ops_s > bv)
				bv = r->ops_s, best = r->engine;
		}
		if (best)
			fprintf(f,
			        "- %s t=%d: dskvs %s vs best peer %s %s "
			        "(goal: ahead): %s\n",
			        g->wl, th, human(d->ops_s, a, 32), best,
			        human(bv, b, 32), met(d->ops_s > bv));
	}
}

static void goal_recovery(FILE *f, const struct goal *g)
{
	const struct result *d = find("dskvs", g->wl, 0);
	double open_mb = 0, read_mb = 0;

	if (!d)
		return;
	const char *p = strstr(d->extra, "open_MBps=");
	if (p)
		open_mb = atof(p + 10);
	p = strstr(d->extra, "seqread_MBps=");
	if (p)
		read_mb = atof(p + 13);
	fprintf(f,
	        "- %s: %" PRIu64 " keys open in %.3f s (goal < %g s at 1M: "
	        "%s); %.1f MB/s vs sequential read %.1f MB/s = %.2fx (goal "
	        ">= %gx): %s\n",
	        g->wl, d->keys, d->seconds, g->want, met(d->seconds < g->want),
	        open_mb, read_mb, read_mb > 0 ? open_mb / read_mb : 0, g->want2,
	        met(read_mb > 0 && open_mb / read_mb >= g->want2));
}

/* A number the workload wrote into its notes as "name=value"; -1 if none. */
static double note_num(const struct result *r, const char *name)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "%s=", name);
	p = strstr(r->extra, pat);
	return p ? atof(p + strlen(pat)) : -1;
}

static void goal_churn(FILE *f, const struct goal *g)
{
	const struct result *d = find("dskvs", g->wl, 0);

	if (!d)
		return;
	double w = note_num(d, "last_vs_first"),
	       m = note_num(d, "rss_idle_ratio"), m0 = note_num(d, "rss_ratio");
	if (w < 0)
		fprintf(f, "- %s: dskvs did not finish the 10 windows: MISSED",
		        g->wl);
	else
		fprintf(f,
		        "- %s: dskvs last window / first = %.2fx (goal >= "
		        "%.2fx): %s; store RSS 1 s after / before = %.2fx "
		        "(goal <= %.2fx): %s (right after the churn: %.2fx)",
		        g->wl, w, g->want, met(w >= g->want), m, g->want2,
		        met(m >= 0 && m <= g->want2), m0);
	/* the other engines of the run, side by side */
	const char *sep = " (others: ";
	for (size_t i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		if (strcmp(r->workload, g->wl) || !strcmp(r->engine, "dskvs"))
			continue;
		fprintf(f, "%s%s %.2fx / %.2fx", sep, r->engine,
		        note_num(r, "last_vs_first"), note_num(r, "rss_ratio"));
		sep = ", ";
	}
	fprintf(f, "%s\n", sep[0] == ',' ? ")" : "");
}

static void goal_lag(FILE *f, const struct goal *g)
{
	for (size_t i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		if (strcmp(r->workload, g->wl) || strcmp(r->engine, "dskvs"))
			continue;
		double l50 = note_num(r, "lag_p50_us"),
		       l99 = note_num(r, "lag_p99_us"),
		       f50 = note_num(r, "fdatasync_p50_us"),
		       f99 = note_num(r, "fdatasync_p99_us");
		double x50 = f50 > 0 ? l50 / f50 : 0,
		       x99 = f99 > 0 ? l99 / f99 : 0;
		if (note_num(r, "rate") == 0) {
			/* unthrottled: no goal of its own; the README states
			 * and justifies the queue default from this line */
			fprintf(f,
			        "- %s unthrottled (queue capacity %.0f): %.0f "
			        "puts/s, put -> durable p50 %.1f us, p99 %.1f "
			        "us, max %.1f us (fdatasync p50 %.1f us, p99 "
			        "%.1f us)\n",
			        g->wl, note_num(r, "queue_capacity"), r->ops_s,
			        l50, l99, note_num(r, "lag_max_us"), f50, f99);
			continue;
		}
		fprintf(
		    f,
		    "- %s at %.0f puts/s (%.0f reached): put -> durable p50 "
		    "%.1f us = %.2fx fdatasync p50 %.1f us (goal <= %gx): "
		    "%s; p99 %.1f us = %.2fx fdatasync p99 %.1f us (goal "
		    "<= %gx): %s\n",
		    g->wl, note_num(r, "rate"), r->ops_s, l50, x50, f50,
		    g->want, met(f50 > 0 && x50 <= g->want), l99, x99, f99,
		    g->want2, met(f99 > 0 && x99 <= g->want2));
	}
}

void print_goals(FILE *f)
{
	fprintf(f, "\n### Goals\n\n");
	for (size_t i = 0; i < sizeof(goals) / sizeof(goals[0]); i++) {
		const struct goal *g = &goals[i];
		const struct result *d;

		switch (g->kind) {
		case G_VS:
			goal_vs(f, g);
			break;
		case G_SCALING:
		case G_DURABLE:
			goal_scaling(f, g);
			break;
		case G_KEEPS:
			goal_keeps(f, g);
			break;
		case G_AHEAD:
			goal_ahead(f, g);
			break;
		case G_JANITOR:
			d = find("dskvs", g->wl, 0);
			if (d)
				fprintf(f,
				        "- %s: %s (goal: log_MBps >= %g x "
				        "dd_fdatasync_MBps)\n",
				        g->wl, d->extra, g->want);
			break;
		case G_RECOVERY:
			goal_recovery(f, g);
			break;
		case G_CHURN:
			goal_churn(f, g);
			break;
		case G_LAG:
			goal_lag(f, g);
			break;
		case G_NOTE:
			d = find("dskvs", g->wl, 0);
			if (d)
				fprintf(f, "- %s: dskvs %s (%s)\n", g->wl,
				        d->extra, g->note);
			break;
		}
	}
}
