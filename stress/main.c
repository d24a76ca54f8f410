/*
 * dskvs-stress: options, the work directory, and the choice of mode.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stress.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: dskvs-stress [options]\n"
	    "\n"
	    "Hammer a dskvs store from many threads and check every answer "
	    "against a\n"
	    "model; or (--crash N) kill a writing child with SIGKILL N times "
	    "and check\n"
	    "that every acknowledged write survived. Exit status: 0 no "
	    "violation,\n"
	    "1 violations (the first ones are described: key, expected, got), "
	    "2 usage\n"
	    "or setup error. With no options: a 10 s threaded run in a fresh "
	    "directory.\n"
	    "\n"
	    "Threaded run:\n"
	    "  -s, --seconds S         run for S seconds (default 10)\n"
	    "  -w, --writers N         writer threads (default 2). Each owns "
	    "its own keys\n"
	    "                          and also writes the shared collection\n"
	    "  -r, --readers N         reader threads (default 2); they only "
	    "read\n"
	    "  -k, --keys N            keys owned by each writer (default "
	    "1000)\n"
	    "  -c, --collections N     collections each writer spreads its "
	    "keys over\n"
	    "                          (default 4)\n"
	    "      --shared-keys N     keys of the \"shared\" collection all "
	    "writers fight\n"
	    "                          over (default 64; 0 = none)\n"
	    "      --shared-pct P      percent of operations aimed at the "
	    "shared\n"
	    "                          collection (default 20)\n"
	    "      --value-min B       smallest value in bytes (default 32, "
	    "the minimum:\n"
	    "                          the self-checking header)\n"
	    "      --value-max B       largest value in bytes (default 512)\n"
	    "  -m, --mix LIST          operation weights, e.g. the default\n"
	    "                          "
	    "get=40,put=35,delete=8,get_all=8,delete_all=0.3,sync=0.1\n"
	    "                          Weights not listed are 0. Writers use "
	    "all of them\n"
	    "                          on their own keys; readers use get and "
	    "get_all\n"
	    "      --sync MODE         durability mode: async "
	    "(DSKVS_SYNC_ASYNC), always\n"
	    "                          (DSKVS_SYNC_ALWAYS) or mixed (default): "
	    "switch at\n"
	    "                          every reopen (threaded run) or every "
	    "third cycle\n"
	    "                          is always (crash mode)\n"
	    "      --reopen-every S    every S seconds park all threads, "
	    "compare the store\n"
	    "                          with the model, close it, reopen it, "
	    "compare again\n"
	    "                          (default 2; 0 = only at the end)\n"
	    "      --compact-every S   call dskvs_compact() every S seconds "
	    "from an extra\n"
	    "                          thread (default 1; 0 = never)\n"
	    "      --compact-min B     dskvs_options.compact_min_bytes, so the "
	    "janitor also\n"
	    "                          compacts on its own (default 1048576)\n"
	    "      --queue N           dskvs_options.queue_capacity (default: "
	    "dskvs's)\n"
	    "      --churn P           the churn mix: P percent of each "
	    "thread's steps go\n"
	    "                          to short-lived keys and short-lived "
	    "collections\n"
	    "                          (created, used, deleted; a name never "
	    "comes back),\n"
	    "                          checked like owned keys (default 0; "
	    "threaded run only)\n"
	    "      --atomic P          the atomic mix: P percent of each "
	    "writer's steps\n"
	    "                          (and of each reader's) go to shared "
	    "counters\n"
	    "                          incremented by dskvs_update and by "
	    "get_seq +\n"
	    "                          put_if_seq loops, and to put_if_absent "
	    "races on\n"
	    "                          fresh keys, to batches "
	    "(dskvs_write_batch,\n"
	    "                          checked all or none) and once a second "
	    "to a hot\n"
	    "                          backup checked as a cut (default 5; 0 = "
	    "off;\n"
	    "                          crash mode: counters and batches)\n"
	    "\n"
	    "Crash mode:\n"
	    "      --crash N           run N crash cycles instead of the "
	    "threaded run: fork\n"
	    "                          a child that writes (--writers threads, "
	    "--keys,\n"
	    "                          --collections, --mix, --sync as above) "
	    "and reports\n"
	    "                          what was acknowledged durable; kill -9 "
	    "it; reopen;\n"
	    "                          check (--seconds and --readers are not "
	    "used)\n"
	    "      --kill-min-ms MS    earliest kill, after the fork (default "
	    "20)\n"
	    "      --kill-max-ms MS    latest kill (default 900)\n"
	    "      --crash-compact-ms MS  mean gap between the child's "
	    "dskvs_compact()\n"
	    "                          calls (default 50; 0 = never)\n"
	    "\n"
	    "Common:\n"
	    "      --seed N            random seed (default: from the clock; "
	    "printed, so a\n"
	    "                          run's choices can be repeated; thread "
	    "timing cannot)\n"
	    "  -d, --dir PATH          work directory; the store is "
	    "PATH/store, which must\n"
	    "                          not hold a store yet (default: a new "
	    "directory under\n"
	    "                          $TMPDIR or /tmp)\n"
	    "      --keep              keep the store afterwards (it is always "
	    "kept when a\n"
	    "                          violation was found)\n"
	    "      --max-report N      violations described in full (default "
	    "10)\n"
	    "  -q, --quiet             no progress lines\n"
	    "  -h, --help              this text\n");
}

enum {
	O_SHARED_KEYS = 256,
	O_SHARED_PCT,
	O_VALUE_MIN,
	O_VALUE_MAX,
	O_SYNC,
	O_REOPEN,
	O_COMPACT,
	O_COMPACT_MIN,
	O_QUEUE,
	O_CHURN,
	O_ATOMIC,
	O_CRASH,
	O_KILL_MIN,
	O_KILL_MAX,
	O_CRASH_COMPACT,
	O_SEED,
	O_KEEP,
	O_MAX_REPORT,
	O_CHILD,
	O_CHILD_FD,
	O_CHILD_MODEL,
	O_CHILD_CYCLE,
	O_CHILD_PARENT,
};

static const struct option longopts[] = {
	{ "seconds", required_argument, NULL, 's' },
	{ "writers", required_argument, NULL, 'w' },
	{ "readers", required_argument, NULL, 'r' },
	{ "keys", required_argument, NULL, 'k' },
	{ "collections", required_argument, NULL, 'c' },
	{ "shared-keys", required_argument, NULL, O_SHARED_KEYS },
	{ "shared-pct", required_argument, NULL, O_SHARED_PCT },
	{ "value-min", required_argument, NULL, O_VALUE_MIN },
	{ "value-max", required_argument, NULL, O_VALUE_MAX },
	{ "mix", required_argument, NULL, 'm' },
	{ "sync", required_argument, NULL, O_SYNC },
	{ "reopen-every", required_argument, NULL, O_REOPEN },
	{ "compact-every", required_argument, NULL, O_COMPACT },
	{ "compact-min", required_argument, NULL, O_COMPACT_MIN },
	{ "queue", required_argument, NULL, O_QUEUE },
	{ "churn", required_argument, NULL, O_CHURN },
	{ "atomic", required_argument, NULL, O_ATOMIC },
	{ "crash", required_argument, NULL, O_CRASH },
	{ "kill-min-ms", required_argument, NULL, O_KILL_MIN },
	{ "kill-max-ms", required_argument, NULL, O_KILL_MAX },
	{ "crash-compact-ms", required_argument, NULL, O_CRASH_COMPACT },
	{ "seed", required_argument, NULL, O_SEED },
	{ "dir", required_argument, NULL, 'd' },
	{ "keep", no_argument, NULL, O_KEEP },
	{ "max-report", required_argument, NULL, O_MAX_REPORT },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	/* Internal: how crash mode re-executes itself as the child. */
	{ "crash-child", no_argument, NULL, O_CHILD },
	{ "child-fd", required_argument, NULL, O_CHILD_FD },
	{ "child-model", required_argument, NULL, O_CHILD_MODEL },
	{ "child-cycle", required_argument, NULL, O_CHILD_CYCLE },
	{ "child-parent", required_argument, NULL, O_CHILD_PARENT },
	{ NULL, 0, NULL, 0 },
};

static void bad(const char *opt, const char *arg)
{
	fprintf(stderr, "dskvs-stress: bad value for %s: \"%s\" (see --help)\n",
	        opt, arg);
	exit(2);
}

static uint64_t num(const char *opt, const char *arg, uint64_t lo, uint64_t hi)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-' || v < lo || v > hi)
		bad(opt, arg);
	return v;
}

static double real(const char *opt, const char *arg)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= 0) || v > 1e9)
		bad(opt, arg);
	return v;
}

static void parse_mix(struct stress_opts *o, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	if (!copy)
		exit(2);
	for (int k = 0; k < OP_NKINDS; k++)
		o->mix[k] = 0;
	for (char *t = strtok_r(copy, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (!eq)
			bad("--mix", arg);
		*eq = '\0';
		int k;
		for (k = 0; k < OP_NKINDS; k++)
			if (strcmp(t, op_name[k]) == 0)
				break;
		if (k == OP_NKINDS)
			bad("--mix", arg);
		o->mix[k] = real("--mix", eq + 1);
	}
	free(copy);
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "dskvs-stress: cannot remove %s: %s\n", path,
		        strerror(errno));
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
	struct stress_opts o = {
		.seconds = 10,
		.readers = 2,
		.writers = 2,
		.keys = 1000,
		.colls = 4,
		.shared_keys = 64,
		.shared_pct = 20,
		.value_min = SV_HDR,
		.value_max = 512,
		.mix = { [OP_GET] = 40,
		         [OP_PUT] = 35,
		         [OP_DELETE] = 8,
		         [OP_GET_ALL] = 8,
		         [OP_DELETE_ALL] = 0.3,
		         [OP_SYNC] = 0.1 },
		.sync = SYNC_MIXED,
		.reopen_every = 2,
		.compact_every = 1,
		.compact_min = 1u << 20,
		.atomic_pct = 5,
		.kill_min_ms = 20,
		.kill_max_ms = 900,
		.crash_compact_ms = 50,
		.max_report = 10,
		.child_fd = -1,
	};
	bool seeded = false, child = false;
	int c;
	while ((c = getopt_long(argc, argv, "s:w:r:k:c:m:d:qh", longopts,
	                        NULL)) != -1) {
		switch (c) {
		case 's':
			o.seconds = real("--seconds", optarg);
			break;
		case 'w':
			o.writers =
			    (unsigned int)num("--writers", optarg, 1, 256);
			break;
		case 'r':
			o.readers =
			    (unsigned int)num("--readers", optarg, 0, 256);
			break;
		case 'k':
			o.keys =
			    (unsigned int)num("--keys", optarg, 1, 1000000);
			break;
		case 'c':
			o.colls = (unsigned int)num("--collections", optarg, 1,
			                            100000);
			break;
		case O_SHARED_KEYS:
			o.shared_keys = (unsigned int)num("--shared-keys",
			                                  optarg, 0, 10000);
			break;
		case O_SHARED_PCT:
			o.shared_pct =
			    (unsigned int)num("--shared-pct", optarg, 0, 100);
			break;
		case O_VALUE_MIN:
			o.value_min =
			    num("--value-min", optarg, SV_HDR, DSKVS_VALUE_MAX);
			break;
		case O_VALUE_MAX:
			o.value_max =
			    num("--value-max", optarg, SV_HDR, DSKVS_VALUE_MAX);
			break;
		case 'm':
			parse_mix(&o, optarg);
			break;
		case O_SYNC:
			if (strcmp(optarg, "async") == 0)
				o.sync = SYNC_ASYNC;
			else if (strcmp(optarg, "always") == 0)
				o.sync = SYNC_ALWAYS;
			else if (strcmp(optarg, "mixed") == 0)
				o.sync = SYNC_MIXED;
			else
				bad("--sync", optarg);
			break;
		case O_REOPEN:
			o.reopen_every = real("--reopen-every", optarg);
			break;
		case O_COMPACT:
			o.compact_every = real("--compact-every", optarg);
			break;
		case O_COMPACT_MIN:
			o.compact_min =
			    num("--compact-min", optarg, 0, UINT64_MAX);
			break;
		case O_QUEUE:
			o.queue =
			    (unsigned int)num("--queue", optarg, 0, 1u << 24);
			break;
		case O_CHURN:
			o.churn_pct =
			    (unsigned int)num("--churn", optarg, 0, 100);
			break;
		case O_ATOMIC:
			o.atomic_pct =
			    (unsigned int)num("--atomic", optarg, 0, 100);
			break;
		case O_CRASH:
			o.crash =
			    (unsigned int)num("--crash", optarg, 0, 1000000);
			break;
		case O_KILL_MIN:
			o.kill_min_ms = (unsigned int)num("--kill-min-ms",
			                                  optarg, 0, 3600000);
			break;
		case O_KILL_MAX:
			o.kill_max_ms = (unsigned int)num("--kill-max-ms",
			                                  optarg, 0, 3600000);
			break;
		case O_CRASH_COMPACT:
			o.crash_compact_ms = (unsigned int)num(
			    "--crash-compact-ms", optarg, 0, 3600000);
			break;
		case O_SEED:
			o.seed = num("--seed", optarg, 0, UINT64_MAX);
			seeded = true;
			break;
		case 'd':
			o.dir = optarg;
			break;
		case O_KEEP:
			o.keep = true;
			break;
		case O_MAX_REPORT:
			o.max_report =
			    (unsigned int)num("--max-report", optarg, 0, 10000);
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case O_CHILD:
			child = true;
			break;
		case O_CHILD_FD:
			o.child_fd = (int)num("--child-fd", optarg, 0, 1 << 20);
			break;
		case O_CHILD_MODEL:
			o.child_model = optarg;
			break;
		case O_CHILD_CYCLE:
			o.child_cycle = (unsigned int)num(
			    "--child-cycle", optarg, 0, UINT32_MAX);
			break;
		case O_CHILD_PARENT:
			o.child_parent =
			    (long)num("--child-parent", optarg, 1, INT32_MAX);
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dskvs-stress: unexpected argument \"%s\"\n",
		        argv[optind]);
		return 2;
	}
	if (o.value_max < o.value_min) {
		fprintf(stderr,
		        "dskvs-stress: --value-max below --value-min\n");
		return 2;
	}
	if (o.colls > o.keys) {
		fprintf(stderr, "dskvs-stress: more collections than keys\n");
		return 2;
	}
	if (o.churn_pct && o.crash) {
		fprintf(stderr, "dskvs-stress: --churn is for the threaded "
		                "run, not --crash\n");
		return 2;
	}
	if (o.kill_max_ms < o.kill_min_ms) {
		fprintf(stderr,
		        "dskvs-stress: --kill-max-ms below --kill-min-ms\n");
		return 2;
	}
	if (!seeded) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns =
		    (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
		/* Short enough to retype from a CI log. */
		o.seed = mix64(ns ^ (uint64_t)getpid()) % 1000000000ull;
	}
	report_init(o.max_report);

	char work[4096], store[4200];
	if (child) {
		if (!o.dir || o.child_fd < 0 || !o.child_model)
			return 2;
		snprintf(store, sizeof store, "%s/store", o.dir);
		return crash_child_main(&o, store);
	}
	bool made_work = false;
	if (o.dir) {
		snprintf(work, sizeof work, "%s", o.dir);
		if (mkdir(work, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "dskvs-stress: cannot create %s: %s\n",
			        work, strerror(errno));
			return 2;
		}
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(work, sizeof work, "%s/dskvs-stress.XXXXXX",
		         tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(work)) {
			fprintf(stderr, "dskvs-stress: mkdtemp %s: %s\n", work,
			        strerror(errno));
			return 2;
		}
		made_work = true;
	}
	snprintf(store, sizeof store, "%s/store", work);
	struct stat sb;
	if (stat(store, &sb) == 0) {
		fprintf(
		    stderr,
		    "dskvs-stress: %s already exists; the model starts from "
		    "an empty store, so remove it or pick another --dir\n",
		    store);
		return 2;
	}
	o.dir = work;

	printf("dskvs-stress %s (dskvs %s): %s, seed %" PRIu64 ", store %s\n",
	       DSKVS_VERSION_STRING, dskvs_version_string(),
	       o.crash ? "crash mode" : "threaded run", o.seed, store);
	fflush(stdout);
	int rc = o.crash ? crash_main(&o, work, store) : run_main(&o, store);
	printf("RESULT: %s", rc == 0 ? "PASS" : "FAIL");
	if (violations_total())
		printf(" (%" PRIu64 " violations)", violations_total());
	printf("\n");
	if (rc == 0 && !o.keep) {
		rm_tree(made_work ? work : store);
	} else {
		printf("store kept in %s (seed %" PRIu64 ")\n", store, o.seed);
	}
	return rc;
}
