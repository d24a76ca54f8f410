/*
 * dskvs-compact-lag: how long a put + dskvs_sync() takes while a compaction
 * runs, against the same store when none runs.
 *
 *   dskvs-compact-lag [--live-mb N] [--baseline N] [--compactions N] DIR
 *
 * Opens a new store in DIR (which must not hold one already, and must be on
 * a real disk: tmpfs is refused, since its fdatasync costs nothing), fills
 * it with N MiB of values (--value-size bytes each, keys spread over
 * --collections collections), syncs, then from one thread measures
 * put + dskvs_sync() of one value (an overwrite of a random existing key,
 * so the live size stays put):
 *
 *   baseline    --baseline samples with no compaction running;
 *   compacting  samples taken while another thread calls dskvs_compact()
 *               --compactions times back to back; a sample counts when it
 *               starts between a dskvs_compact() call and its return;
 *   between     the samples of that phase that started outside every
 *               compaction (before the first began, or between two).
 *
 * Each sample is the wall time from just before dskvs_put() to just after
 * dskvs_sync() returned (CLOCK_MONOTONIC). Every option except those named
 * here is the library's default (async mode, batch_max_bytes 8 MiB unless
 * --batch-max-bytes says otherwise). It prints df of DIR, the fdatasync
 * p50/p99/max the library reports (dskvs_stats_get: over its last 1024
 * fdatasyncs) after each phase, each compaction's duration, and a table of
 * p50, p99, max and count per phase (--csv: every sample of the second
 * phase, with the compaction it started in, 0 for none). The store's files are
 * removed at the end unless --keep is given.
 */
#define _GNU_SOURCE
#include <dskvs.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define TMPFS_MAGIC_ 0x01021994
#define RAMFS_MAGIC_ 0x858458f6

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "dskvs-compact-lag: %s: %s (%s)\n", what,
	        dskvs_err_name(rc), dskvs_errmsg(NULL));
	exit(1);
}

/* ---- options ------------------------------------------------------------ */

static struct {
	const char *dir;
	uint64_t live_mb;
	size_t value_size;
	unsigned collections;
	size_t baseline;
	unsigned compactions;
	size_t batch_max_bytes; /* 0: the library's default */
	int keep;
	int allow_tmpfs;
	const char *csv; /* every sample of the compacting phase, or NULL */
} opt = { NULL, 100, 1024, 300, 2000, 3, 0, 0, 0, NULL };

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: dskvs-compact-lag [options] DIR\n"
	       "  --live-mb N          live data to fill, MiB (100)\n"
	       "  --value-size B       bytes per value (1024)\n"
	       "  --collections N      collections the keys spread over (300)\n"
	       "  --baseline N         put+sync samples without compaction "
	       "(2000)\n"
	       "  --compactions N      dskvs_compact() calls in the second "
	       "phase (3)\n"
	       "  --batch-max-bytes B  dskvs_options.batch_max_bytes "
	       "(library default)\n"
	       "  --csv FILE           write each compacting-phase sample "
	       "to FILE\n"
	       "  --keep               leave the store's files in DIR\n"
	       "  --allow-tmpfs        run even if DIR is on tmpfs/ramfs\n"
	       "DIR must be new or empty and on a real disk.\n");
}

static uint64_t num(const char *s, const char *name)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "dskvs-compact-lag: bad %s: %s\n", name, s);
		exit(2);
	}
	return v;
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "live-mb", required_argument, NULL, 'l' },
		{ "value-size", required_argument, NULL, 'v' },
		{ "collections", required_argument, NULL, 'c' },
		{ "baseline", required_argument, NULL, 'b' },
		{ "compactions", required_argument, NULL, 'n' },
		{ "batch-max-bytes", required_argument, NULL, 'B' },
		{ "csv", required_argument, NULL, 'C' },
		{ "keep", no_argument, NULL, 'k' },
		{ "allow-tmpfs", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'l':
			opt.live_mb = num(optarg, "--live-mb");
			break;
		case 'v':
			opt.value_size = num(optarg, "--value-size");
			break;
		case 'c':
			opt.collections =
			    (unsigned)num(optarg, "--collections");
			break;
		case 'b':
			opt.baseline = num(optarg, "--baseline");
			break;
		case 'n':
			opt.compactions =
			    (unsigned)num(optarg, "--compactions");
			break;
		case 'B':
			opt.batch_max_bytes = num(optarg, "--batch-max-bytes");
			break;
		case 'C':
			opt.csv = optarg;
			break;
		case 'k':
			opt.keep = 1;
			break;
		case 't':
			opt.allow_tmpfs = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		exit(2);
	}
	opt.dir = argv[optind];
	if (opt.live_mb == 0 || opt.value_size < 16 ||
	    opt.value_size > DSKVS_VALUE_MAX || opt.collections == 0 ||
	    opt.baseline == 0 || opt.compactions == 0) {
		fprintf(stderr,
		        "dskvs-compact-lag: an option is out of range\n");
		exit(2);
	}
}

/* ---- the directory ------------------------------------------------------ */

static int created_dir;

static void check_dir(void)
{
	struct stat st;
	if (stat(opt.dir, &st) != 0) {
		if (mkdir(opt.dir, 0700) != 0) {
			perror(opt.dir);
			exit(1);
		}
		created_dir = 1;
	} else {
		DIR *d = opendir(opt.dir);
		struct dirent *e;
		if (!d) {
			perror(opt.dir);
			exit(1);
		}
		while ((e = readdir(d)) != NULL) {
			if (strncmp(e->d_name, "dskvs.", 6) == 0) {
				fprintf(
				    stderr,
				    "dskvs-compact-lag: %s already holds %s; "
				    "give a new or empty directory\n",
				    opt.dir, e->d_name);
				exit(1);
			}
		}
		closedir(d);
	}
	struct statfs sf;
	if (statfs(opt.dir, &sf) != 0) {
		perror(opt.dir);
		exit(1);
	}
	if ((sf.f_type == TMPFS_MAGIC_ || sf.f_type == RAMFS_MAGIC_) &&
	    !opt.allow_tmpfs) {
		fprintf(stderr,
		        "dskvs-compact-lag: %s is on tmpfs/ramfs, where "
		        "fdatasync costs nothing; use a directory on a disk "
		        "(or --allow-tmpfs)\n",
		        opt.dir);
		if (created_dir)
			rmdir(opt.dir);
		exit(1);
	}
	printf("# directory %s\n", opt.dir);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "df -hT '%s' 2>&1", opt.dir);
	FILE *p = popen(cmd, "r");
	if (p) {
		char line[512];
		while (fgets(line, sizeof(line), p))
			printf("# df: %s", line);
		pclose(p);
	}
}

static void remove_store(void)
{
	DIR *d = opendir(opt.dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "dskvs.", 6) == 0) {
			char path[4200];
			snprintf(path, sizeof(path), "%s/%s", opt.dir,
			         e->d_name);
			unlink(path);
		}
	}
	closedir(d);
	if (created_dir)
		rmdir(opt.dir);
}

/* ---- samples ------------------------------------------------------------ */

struct sample {
	uint64_t start, ns;
};

struct samples {
	struct sample *v;
	size_t n, cap;
};

static void push(struct samples *s, uint64_t start, uint64_t ns)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4096;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v) {
			fprintf(stderr, "dskvs-compact-lag: out of memory\n");
			exit(1);
		}
	}
	s->v[s->n++] = (struct sample){ start, ns };
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct summary {
	size_t n;
	double p50, p99, max, mean; /* ms */
};

/* Nearest-rank percentiles of the latencies in v[0..n). Sorts v. */
static struct summary summarize(uint64_t *v, size_t n)
{
	struct summary r = { n, 0, 0, 0, 0 };
	if (n == 0)
		return r;
	qsort(v, n, sizeof(*v), cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	size_t i50 = (n * 50 + 99) / 100, i99 = (n * 99 + 99) / 100;
	r.p50 = v[i50 ? i50 - 1 : 0] / 1e6;
	r.p99 = v[i99 ? i99 - 1 : 0] / 1e6;
	r.max = v[n - 1] / 1e6;
	r.mean = sum / (double)n / 1e6;
	return r;
}

/* ---- the store ---------------------------------------------------------- */

static dskvs *st;
static uint64_t nkeys;
static unsigned char *val;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static void key_of(char *buf, size_t cap, uint64_t i)
{
	snprintf(buf, cap, "c%03u/m%010llu", (unsigned)(i % opt.collections),
	         (unsigned long long)i);
}

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One put + dskvs_sync(); returns its latency in ns, *start its start. */
static uint64_t put_sync(uint64_t *start, uint64_t stamp)
{
	char key[64];
	key_of(key, sizeof(key), next_rand() % nkeys);
	memcpy(val, &stamp, sizeof(stamp));
	uint64_t t0 = now_ns();
	int rc = dskvs_put(st, key, val, opt.value_size, NULL, NULL);
	if (rc != DSKVS_OK)
		die("dskvs_put", rc);
	rc = dskvs_sync(st);
	if (rc != DSKVS_OK)
		die("dskvs_sync", rc);
	uint64_t t1 = now_ns();
	*start = t0;
	return t1 - t0;
}

static void print_stats(const char *when)
{
	dskvs_stats s;
	int rc = dskvs_stats_get(st, &s);
	if (rc != DSKVS_OK)
		die("dskvs_stats_get", rc);
	printf("# stats %s: live %.1f MiB in %llu entries, log %.1f MiB, "
	       "compactions %llu, fdatasync p50 %.3f ms p99 %.3f ms max %.3f "
	       "ms (library: last 1024)\n",
	       when, s.live_bytes / 1048576.0, (unsigned long long)s.entries,
	       s.log_bytes / 1048576.0, (unsigned long long)s.compactions,
	       s.fsync_p50_ns / 1e6, s.fsync_p99_ns / 1e6,
	       s.fsync_max_ns / 1e6);
}

static uint64_t compactions_done(void)
{
	dskvs_stats s;
	int rc = dskvs_stats_get(st, &s);
	if (rc != DSKVS_OK)
		die("dskvs_stats_get", rc);
	return s.compactions;
}

/* ---- the compacting thread ---------------------------------------------- */

static uint64_t *c_begin, *c_end;
static atomic_int c_started, c_finished;

static void *compactor(void *arg)
{
	(void)arg;
	atomic_store(&c_started, 1);
	for (unsigned k = 0; k < opt.compactions; k++) {
		c_begin[k] = now_ns();
		int rc = dskvs_compact(st);
		c_end[k] = now_ns();
		if (rc != DSKVS_OK)
			die("dskvs_compact", rc);
	}
	atomic_store(&c_finished, 1);
	return NULL;
}

/* ---- main --------------------------------------------------------------- */

static void row(const char *phase, struct summary r)
{
	printf("%-12s %9zu %10.3f %10.3f %10.3f %10.3f\n", phase, r.n, r.p50,
	       r.p99, r.max, r.mean);
}

int main(int argc, char **argv)
{
	parse(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	check_dir();

	dskvs_options o;
	dskvs_options_init(&o);
	if (opt.batch_max_bytes)
		o.batch_max_bytes = opt.batch_max_bytes;
	printf("# dskvs %s, async mode, batch_max_bytes %zu, "
	       "batch_max_records %u, auto_compact %d\n",
	       dskvs_version_string(), o.batch_max_bytes, o.batch_max_records,
	       o.auto_compact);
	int rc = dskvs_open(opt.dir, &o, &st);
	if (rc != DSKVS_OK)
		die("dskvs_open", rc);

	val = malloc(opt.value_size);
	if (!val) {
		fprintf(stderr, "dskvs-compact-lag: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < opt.value_size; i++)
		val[i] = (unsigned char)next_rand();

	/* Fill. */
	nkeys = opt.live_mb * 1048576u / opt.value_size;
	printf("# filling %llu keys of %zu-byte values in %u collections\n",
	       (unsigned long long)nkeys, opt.value_size, opt.collections);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < nkeys; i++) {
		char key[64];
		key_of(key, sizeof(key), i);
		memcpy(val, &i, sizeof(i));
		rc = dskvs_put(st, key, val, opt.value_size, NULL, NULL);
		if (rc != DSKVS_OK)
			die("dskvs_put (fill)", rc);
	}
	rc = dskvs_sync(st);
	if (rc != DSKVS_OK)
		die("dskvs_sync (fill)", rc);
	printf("# filled and synced in %.2f s\n", (now_ns() - t0) / 1e9);
	print_stats("after fill");

	/* Baseline: a few unrecorded samples first, then the real ones. */
	uint64_t start, stamp = 0;
	for (int i = 0; i < 100; i++)
		put_sync(&start, stamp++);
	uint64_t comp0 = compactions_done();
	uint64_t *lat = malloc(opt.baseline * sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "dskvs-compact-lag: out of memory\n");
		return 1;
	}
	t0 = now_ns();
	for (size_t i = 0; i < opt.baseline; i++)
		lat[i] = put_sync(&start, stamp++);
	double base_s = (now_ns() - t0) / 1e9;
	if (compactions_done() != comp0)
		printf("# WARNING: the janitor compacted by itself during the "
		       "baseline; its samples are not all compaction-free\n");
	struct summary base = summarize(lat, opt.baseline);
	free(lat);
	printf("# baseline: %zu samples in %.2f s\n", opt.baseline, base_s);
	print_stats("after baseline");

	/* Compacting. */
	c_begin = calloc(opt.compactions, sizeof(*c_begin));
	c_end = calloc(opt.compactions, sizeof(*c_end));
	if (!c_begin || !c_end) {
		fprintf(stderr, "dskvs-compact-lag: out of memory\n");
		return 1;
	}
	struct samples all = { 0 };
	pthread_t th;
	if (pthread_create(&th, NULL, compactor, NULL) != 0) {
		fprintf(stderr, "dskvs-compact-lag: pthread_create failed\n");
		return 1;
	}
	while (!atomic_load(&c_started))
		sched_yield();
	t0 = now_ns();
	while (!atomic_load(&c_finished)) {
		uint64_t ns = put_sync(&start, stamp++);
		push(&all, start, ns);
	}
	pthread_join(th, NULL);
	double comp_s = (now_ns() - t0) / 1e9;
	uint64_t extra = compactions_done() - comp0 - opt.compactions;
	if (extra)
		printf("# note: the janitor also compacted %llu time(s) by "
		       "itself meanwhile\n",
		       (unsigned long long)extra);

	uint64_t *in = malloc((all.n + 1) * sizeof(*in));
	uint64_t *out = malloc((all.n + 1) * sizeof(*out));
	uint64_t *one = malloc((all.n + 1) * sizeof(*one));
	if (!in || !out || !one) {
		fprintf(stderr, "dskvs-compact-lag: out of memory\n");
		return 1;
	}
	size_t nin = 0, nout = 0;
	FILE *csv = NULL;
	if (opt.csv) {
		csv = fopen(opt.csv, "w");
		if (!csv) {
			perror(opt.csv);
			return 1;
		}
		fprintf(csv, "compaction,start_ms_into_it,latency_ms\n");
	}
	for (size_t i = 0; i < all.n; i++) {
		unsigned inside = 0;
		for (unsigned k = 0; k < opt.compactions && !inside; k++)
			if (all.v[i].start >= c_begin[k] &&
			    all.v[i].start < c_end[k])
				inside = k + 1;
		if (csv)
			fprintf(csv, "%u,%.3f,%.3f\n", inside,
			        inside
			            ? (all.v[i].start - c_begin[inside - 1]) /
			                  1e6
			            : 0.0,
			        all.v[i].ns / 1e6);
		if (inside)
			in[nin++] = all.v[i].ns;
		else
			out[nout++] = all.v[i].ns;
	}
	if (csv)
		fclose(csv);
	printf("# compacting phase: %zu samples in %.2f s\n", all.n, comp_s);
	double csum = 0;
	for (unsigned k = 0; k < opt.compactions; k++) {
		size_t m = 0;
		for (size_t i = 0; i < all.n; i++)
			if (all.v[i].start >= c_begin[k] &&
			    all.v[i].start < c_end[k])
				one[m++] = all.v[i].ns;
		struct summary r = summarize(one, m);
		double d = (c_end[k] - c_begin[k]) / 1e9;
		csum += d;
		printf("# compaction %u: %.3f s; %zu samples started in it, "
		       "p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		       k + 1, d, m, r.p50, r.p99, r.max);
	}
	print_stats("after compactions");
	struct summary cin = summarize(in, nin), cout = summarize(out, nout);

	printf("\nlive %llu MiB, values %zu B, batch_max_bytes %zu; "
	       "compaction mean %.3f s over %u\n",
	       (unsigned long long)opt.live_mb, opt.value_size,
	       o.batch_max_bytes, csum / opt.compactions, opt.compactions);
	printf("%-12s %9s %10s %10s %10s %10s\n", "phase", "samples", "p50_ms",
	       "p99_ms", "max_ms", "mean_ms");
	row("baseline", base);
	row("compacting", cin);
	row("between", cout);

	rc = dskvs_close(st);
	if (rc != DSKVS_OK)
		die("dskvs_close", rc);
	if (!opt.keep)
		remove_store();
	free(in);
	free(out);
	free(one);
	free(all.v);
	free(c_begin);
	free(c_end);
	free(val);
	return 0;
}
