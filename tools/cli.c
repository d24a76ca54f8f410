/*
 * The frame of the dskvs tool: main(), argument parsing, the command table
 * and the help texts, messages and error reporting, and the helpers every
 * command shares (opening and closing the store, standard output, quoting
 * names). The rules the tool keeps and the layout of its files are in cli.h.
 */
#include "cli.h"
#include "progress.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The shared state; cli.h says what each holds. */
struct cli_state cli = { .progress = -1 };
int hold_errors;
struct cbuf held;
volatile sig_atomic_t interrupted;

/* ---- messages ----------------------------------------------------------- */

const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* A few rotating buffers, so one message can quote several names. */
const char *q(const char *s, size_t n)
{
	static struct cbuf ring[4];
	static unsigned next;
	struct cbuf *b = &ring[next++ % 4];
	size_t cut = n > 200 ? 200 : n;

	b->len = 0;
	cbuf_putc(b, '\'');
	text_put_escaped(b, s, cut);
	if (cut < n)
		cbuf_puts(b, "...");
	cbuf_putc(b, '\'');
	return b->p;
}

const char *qs(const char *s)
{
	return q(s, strlen(s));
}

static void vmsg(const char *kind, const char *color, const char *fmt,
                 va_list ap)
{
	struct cbuf b = { 0 };
	char *text = NULL;

	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	if (cli.err_color)
		cbuf_puts(&b, color);
	cbuf_puts(&b, "dskvs");
	if (cli.cmd) {
		cbuf_putc(&b, ' ');
		cbuf_puts(&b, cli.cmd);
	}
	cbuf_putc(&b, ':');
	if (kind) {
		cbuf_putc(&b, ' ');
		cbuf_puts(&b, kind);
		cbuf_putc(&b, ':');
	}
	if (cli.err_color)
		cbuf_puts(&b, "\033[0m");
	cbuf_putc(&b, ' ');
	cbuf_puts(&b, text ? text : fmt);
	if (hold_errors && !kind) {
		if (!held.len)
			cbuf_put(&held, b.p, b.len);
	} else {
		cbuf_putc(&b, '\n');
		/* One write: the line never interleaves with another. */
		fwrite(b.p, 1, b.len, stderr);
	}
	cbuf_free(&b);
	free(text);
}

void errorf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(NULL, "\033[1;31m", fmt, ap);
	va_end(ap);
}

void notef(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("note", "\033[1;33m", fmt, ap);
	va_end(ap);
}

int usagef(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(NULL, "\033[1;31m", fmt, ap);
	va_end(ap);
	if (cli.cmd)
		fprintf(stderr, "Try 'dskvs %s --help'.\n", cli.cmd);
	else
		fputs("Try 'dskvs --help'.\n", stderr);
	return ST_USAGE;
}

/* Exit status for a library error code. */
static int status_of(int err)
{
	switch (err) {
	case DSKVS_OK:
		return ST_OK;
	case DSKVS_NOTFOUND:
		return ST_NOTFOUND;
	case DSKVS_EINVAL:
	case DSKVS_EBADKEY:
	case DSKVS_ETOOBIG:
	case DSKVS_ERANGE:
		return ST_USAGE;
	default:
		return ST_STORE;
	}
}

/*
 * Report library error `err` after `what` on one line: the library's
 * sentence (dskvs_strerror) and, when it has one, its detail for this
 * failure (dskvs_errmsg). Must be called before any other dskvs call, which
 * would replace the detail. Returns the exit status.
 */
static int lib_fail_detail(int err, const char *what, const char *detail)
{
	if (detail[0])
		errorf("%s: %s (%s)", what, dskvs_strerror(err), detail);
	else
		errorf("%s: %s", what, dskvs_strerror(err));
	return status_of(err);
}

int lib_fail(int err, const char *what)
{
	char detail[512];

	snprintf(detail, sizeof(detail), "%s", dskvs_errmsg(cli.s));
	return lib_fail_detail(err, what, detail);
}

/* 1 if key names a collection ("artist", "artist/") rather than a member. */
static int is_collection_key(const char *key)
{
	const char *slash = strchr(key, '/');
	return !slash || slash[1] == '\0';
}

int key_fail(int err, const char *key, int want_member, const char *where)
{
	const char *pre = where ? where : "";
	const char *sep = where ? ": " : "";

	if (err == DSKVS_NOTFOUND) {
		errorf("%s%sno such %s %s", pre, sep,
		       want_member ? "key" : "collection", qs(key));
		return ST_NOTFOUND;
	}
	if (err == DSKVS_EBADKEY && key[0] && key[0] != '/') {
		if (want_member && is_collection_key(key)) {
			errorf("%s%s%s names a collection; this command needs "
			       "a member key, COLLECTION/MEMBER",
			       pre, sep, qs(key));
			return ST_USAGE;
		}
		if (!want_member && !is_collection_key(key)) {
			errorf("%s%s%s is a member key; this command needs a "
			       "collection name",
			       pre, sep, qs(key));
			return ST_USAGE;
		}
	}
	if (err == DSKVS_EBADKEY) {
		errorf("%s%smalformed key %s: keys are COLLECTION/MEMBER, "
		       "not empty and not starting with '/'",
		       pre, sep, qs(key));
		return ST_USAGE;
	}
	char what[600];
	snprintf(what, sizeof(what), "%s%s%s", pre, sep, qs(key));
	return lib_fail(err, what);
}

/* ---- standard output ---------------------------------------------------- */

int out_write(const void *p, size_t n)
{
	if (cli.epipe)
		return -1;
	if (n && fwrite(p, 1, n, stdout) != n) {
		if (errno == EPIPE)
			cli.epipe = 1;
		else if (!(errno == EINTR && interrupted))
			/* (an interrupted dump says so itself) */
			errorf("cannot write standard output: %s",
			       strerror(errno));
		return -1;
	}
	return 0;
}

int out_flush(void)
{
	if (cli.epipe)
		return -1;
	if (fflush(stdout) != 0) {
		if (errno == EPIPE)
			cli.epipe = 1;
		else if (!(errno == EINTR && interrupted))
			/* (an interrupted dump says so itself) */
			errorf("cannot write standard output: %s",
			       strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the store ---------------------------------------------------------- */

static void on_log(void *arg, int level, const char *msg)
{
	(void)arg;
	/* Warnings matter to the person at the keyboard (a torn tail was
	 * cut off); INFO is chatter. */
	if (level <= DSKVS_LOG_WARN)
		notef("%s", msg);
}

/* 1 if dir holds a store's files. */
static int has_store_files(const char *dir)
{
	char p[4096];
	struct stat st;

	snprintf(p, sizeof(p), "%s/dskvs.log", dir);
	if (stat(p, &st) == 0)
		return 1;
	snprintf(p, sizeof(p), "%s/dskvs.lock", dir);
	return stat(p, &st) == 0;
}

int store_exists(void)
{
	struct stat st;

	if (stat(cli.store, &st) != 0) {
		if (errno == ENOENT)
			errorf("no store at %s: no such directory%s",
			       qs(cli.store),
			       cli.store_from ? ""
			                      : " (name one with --store DIR "
			                        "or DSKVS_STORE)");
		else
			errorf("cannot access %s: %s", qs(cli.store),
			       strerror(errno));
		return ST_STORE;
	}
	if (!S_ISDIR(st.st_mode)) {
		errorf("%s is not a directory; a store is a directory",
		       qs(cli.store));
		return ST_STORE;
	}
	if (!has_store_files(cli.store)) {
		errorf("no store in %s: it has no dskvs.log%s", qs(cli.store),
		       cli.store_from ? ""
		                      : " (name the store with --store DIR or "
		                        "DSKVS_STORE)");
		return ST_STORE;
	}
	return ST_OK;
}

static int store_open_ex(int create, int busy_ok);

int store_open(int create)
{
	return store_open_ex(create, 0);
}

int store_open_or_busy(void)
{
	return store_open_ex(0, 1);
}

static int store_open_ex(int create, int busy_ok)
{
	dskvs_options o;
	sigset_t block, old;
	char detail[512];
	int r, st;

	if (!create || !cli.store_from) {
		st = store_exists();
		if (st)
			return st;
	}
	dskvs_options_init(&o);
	o.create = create;
	/* Do what was asked and nothing else: a `get` must not start a
	 * rewrite of the log. `dskvs compact` is the way to compact. */
	o.auto_compact = 0;
	o.log_fn = on_log;
	/* The store's threads inherit this mask: Ctrl-C is for the main
	 * thread, whose handlers (dump, load) stop between records. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	progress_begin("opening the store", 0, NULL);
	r = dskvs_open(cli.store, &o, &cli.s);
	progress_end(NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == DSKVS_OK)
		return ST_OK;
	cli.s = NULL;
	snprintf(detail, sizeof(detail), "%s", dskvs_errmsg(NULL));
	switch (r) {
	case DSKVS_EBUSY:
		if (busy_ok)
			return ST_BUSY;
		errorf("store %s is in use by another process; stop that "
		       "program or wait until it closes the store",
		       qs(cli.store));
		return ST_STORE;
	case DSKVS_ECORRUPT:
		errorf("store %s is damaged: %s%s", qs(cli.store),
		       detail[0] ? detail : dskvs_strerror(r),
		       strstr(detail, "dskvs verify")
		           ? ""
		           : "; 'dskvs verify' lists the damage");
		return ST_STORE;
	case DSKVS_EVERSION:
		errorf("store %s was written by a newer, incompatible dskvs "
		       "format; use a newer dskvs%s%s%s",
		       qs(cli.store), detail[0] ? " (" : "", detail,
		       detail[0] ? ")" : "");
		return ST_STORE;
	default: {
		char what[300];
		snprintf(what, sizeof(what), "cannot open store %s",
		         qs(cli.store));
		/* Whatever the code, a store that cannot be opened is a
		 * store error (EINVAL here can only mean a bad path). */
		lib_fail_detail(r, what, detail);
		return ST_STORE;
	}
	}
}

int store_close(int st)
{
	int r;

	if (!cli.s)
		return st;
	r = dskvs_close(cli.s);
	cli.s = NULL;
	if (r != DSKVS_OK) {
		char what[300];
		snprintf(what, sizeof(what), "could not save changes to %s",
		         qs(cli.store));
		lib_fail(r, what);
		return ST_STORE;
	}
	return st;
}

/* ---- option parsing ----------------------------------------------------- */

enum {
	OPT_STORE = 1,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
	OPT_HELP,
	OPT_VERSION,
	OPT_FILE,
	OPT_MERGE,
	OPT_JSON,
	OPT_IF_ABSENT,
	OPT_RESP,
	OPT_STRINGS,
};

struct opt {
	const char *lng;
	char shrt;
	int has_arg;
	int id;
};

static const struct opt global_opts[] = {
	{ "store", 's', 1, OPT_STORE },
	{ "progress", 0, 0, OPT_PROGRESS },
	{ "no-progress", 0, 0, OPT_NO_PROGRESS },
	{ "help", 'h', 0, OPT_HELP },
	{ "version", 'V', 0, OPT_VERSION },
	{ NULL, 0, 0, 0 },
};

/* What a command's options set. */

static const struct opt *find_opt(const struct opt *a, const struct opt *b,
                                  const char *lng, size_t llen, char shrt)
{
	const struct opt *sets[2] = { a, b };

	for (int k = 0; k < 2; k++) {
		for (const struct opt *o = sets[k]; o && o->id; o++) {
			if (lng && o->lng && strlen(o->lng) == llen &&
			    strncmp(o->lng, lng, llen) == 0)
				return o;
			if (!lng && shrt && o->shrt == shrt)
				return o;
		}
	}
	return NULL;
}

static int print_version(void)
{
	printf("dskvs %s (library %s)\n", DSKVS_VERSION_STRING,
	       dskvs_version_string());
	return ST_OK;
}

/* Apply one option. Returns -1 to go on, or an exit status to stop with. */
static int apply_opt(const struct opt *o, const char *val, struct cmd_args *a)
{
	switch (o->id) {
	case OPT_STORE:
		if (!val[0])
			return usagef("--store needs a directory");
		cli.store = val;
		cli.store_from = "--store";
		break;
	case OPT_PROGRESS:
		cli.progress = 1;
		break;
	case OPT_NO_PROGRESS:
		cli.progress = 0;
		break;
	case OPT_HELP:
		a->help = 1;
		break;
	case OPT_VERSION:
		return print_version();
	case OPT_FILE:
		a->file = val;
		break;
	case OPT_MERGE:
		a->merge = 1;
		break;
	case OPT_JSON:
		a->json = 1;
		break;
	case OPT_IF_ABSENT:
		a->if_absent = 1;
		break;
	case OPT_RESP:
		a->resp = 1;
		break;
	case OPT_STRINGS:
		if (!val[0] || strchr(val, '/'))
			return usagef("--strings needs a collection name "
			              "(not empty, no '/')");
		a->strings = val;
		break;
	}
	return -1;
}

/*
 * Parse argv[0..argc) against the command's options and the global ones.
 * Options may come anywhere (GNU style) until "--"; the rest are positional
 * and collected in a->pos (which must have room for argc entries). With
 * stop_at_word, stop at the first positional argument (the command name) and
 * return its index through *stop. Returns -1 to go on, or an exit status.
 */
static int parse_args(int argc, char **argv, const struct opt *cmd_opts,
                      struct cmd_args *a, int stop_at_word, int *stop)
{
	int i, r, dashdash = 0;

	for (i = 0; i < argc; i++) {
		char *arg = argv[i];

		if (dashdash || arg[0] != '-' || arg[1] == '\0') {
			if (stop_at_word) {
				*stop = i;
				return -1;
			}
			a->pos[a->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			dashdash = 1;
			if (stop_at_word) {
				*stop = i + 1;
				return -1;
			}
			continue;
		}
		if (arg[1] == '-') {
			const char *name = arg + 2, *eq = strchr(name, '=');
			size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
			const struct opt *o =
			    find_opt(cmd_opts, global_opts, name, nlen, 0);

			if (!o)
				return usagef("unknown option %s (put '--' "
				              "before a key or value that "
				              "starts with '-')",
				              q(arg, eq ? (size_t)(eq - arg)
				                        : strlen(arg)));
			if (o->has_arg && !eq) {
				if (i + 1 >= argc)
					return usagef("option --%s needs a "
					              "value",
					              o->lng);
				eq = argv[++i] - 1;
			} else if (!o->has_arg && eq) {
				return usagef("option --%s takes no value",
				              o->lng);
			}
			r = apply_opt(o, eq ? eq + 1 : NULL, a);
			if (r >= 0)
				return r;
			continue;
		}
		/* A cluster of short options: -hV, -sDIR, -s DIR. */
		for (char *c = arg + 1; *c; c++) {
			const struct opt *o =
			    find_opt(cmd_opts, global_opts, NULL, 0, *c);
			const char *val = NULL;

			if (!o)
				return usagef("unknown option '-%c' (put '--' "
				              "before a key or value that "
				              "starts with '-')",
				              *c);
			if (o->has_arg) {
				if (c[1]) {
					val = c + 1;
				} else if (i + 1 < argc) {
					val = argv[++i];
				} else {
					return usagef("option -%c needs a "
					              "value",
					              *c);
				}
			}
			r = apply_opt(o, val, a);
			if (r >= 0)
				return r;
			if (val)
				break;
		}
	}
	if (stop_at_word)
		*stop = argc;
	return -1;
}

/* ---- the command table and help ---------------------------------------- */

struct command {
	const char *name;
	int (*run)(struct cmd_args *a);
	const struct opt *opts;
	int min_args, max_args;
	const char *usage;
	const char *help;
};

static int cmd_help(struct cmd_args *a);

static const struct opt put_opts[] = {
	{ "file", 'f', 1, OPT_FILE },
	{ "if-absent", 0, 0, OPT_IF_ABSENT },
	{ NULL, 0, 0, 0 },
};
static const struct opt load_opts[] = {
	{ "merge", 0, 0, OPT_MERGE },
	{ NULL, 0, 0, 0 },
};
static const struct opt export_opts[] = {
	{ "resp", 0, 0, OPT_RESP },
	{ "strings", 0, 1, OPT_STRINGS },
	{ NULL, 0, 0, 0 },
};
static const struct opt getall_opts[] = {
	{ "json", 0, 0, OPT_JSON },
	{ NULL, 0, 0, 0 },
};

static const struct command commands[] = {
	{ "get", cmd_get, NULL, 1, 1, "get KEY",
	  "Write the value of KEY (COLLECTION/MEMBER) to standard output: its\n"
	  "exact bytes, nothing added, so 'dskvs get KEY > FILE' recovers it.\n"
	  "Exit status 1 if there is no such key.\n" },
	{ "put", cmd_put, put_opts, 1, 2,
	  "put [--if-absent] [--file FILE] KEY [VALUE]",
	  "Set KEY (COLLECTION/MEMBER) to VALUE, to the contents of FILE, or,\n"
	  "with neither, to everything read from standard input ('-' as FILE\n"
	  "also means standard input). Values are bytes, at most 64 MiB.\n"
	  "Creates the store if --store or DSKVS_STORE names a directory that\n"
	  "does not hold one yet.\n"
	  "\n"
	  "  -f, --file FILE   read the value from FILE\n"
	  "  --if-absent       only if KEY has no value yet; exit status 4,\n"
	  "                    and nothing changed, if it has one\n" },
	{ "incr", cmd_incr, NULL, 1, 2, "incr KEY [N]",
	  "Add N (default 1, may be negative) to the value of KEY, a decimal\n"
	  "integer (an absent KEY counts as 0), atomically: other programs'\n"
	  "writes cannot come in between the read and the write. Prints the\n"
	  "new value. Exit status 5, and nothing changed, if the value is not\n"
	  "a decimal integer (optional sign, digits, nothing else) or the sum\n"
	  "leaves the 64-bit signed range; 2 if N is not such an integer.\n" },
	{ "del", cmd_del, NULL, 1, 1, "del KEY",
	  "Delete KEY (COLLECTION/MEMBER). Exit status 1 if there is no such "
	  "key.\n" },
	{ "getall", cmd_getall, getall_opts, 1, 1, "getall [--json] COLLECTION",
	  "List the members of COLLECTION in byte order, one per line:\n"
	  "MEMBER, a tab, VALUE. Both are escaped so that each entry stays on\n"
	  "one line: \\\\ \\t \\n \\r, and \\xHH for each byte of a control\n"
	  "character or of invalid UTF-8. Exit status 1 if the collection "
	  "does\n"
	  "not exist (a collection exists while it has members).\n"
	  "\n"
	  "  --json   print dump records instead (see 'dskvs help dump'), to\n"
	  "           get the exact bytes or to feed 'dskvs load --merge'\n" },
	{ "delall", cmd_delall, NULL, 1, 1, "delall COLLECTION",
	  "Delete every member of COLLECTION. Exit status 1 if the collection\n"
	  "does not exist.\n" },
	{ "ls", cmd_ls, NULL, 0, 0, "ls",
	  "List the collections in byte order with their member counts and\n"
	  "the bytes of their values. To a pipe or file: NAME, MEMBERS and\n"
	  "BYTES separated by tabs, names escaped as in getall; to a "
	  "terminal:\n"
	  "aligned columns under a header.\n" },
	{ "dump", cmd_dump, NULL, 0, 0, "dump",
	  "Write the whole store to standard output as JSON Lines, a backup\n"
	  "that 'dskvs load' restores exactly:\n"
	  "\n"
	  "  {\"dskvs_dump\":1,\"library\":\"1.2.0\"}\n"
	  "  {\"key\":\"artist/daft punk\",\"value\":\"Discovery\"}\n"
	  "  {\"key\":\"img/logo\",\"value_b64\":\"iVBORw0KGgo=\"}\n"
	  "  {\"dskvs_dump_end\":2}\n"
	  "\n"
	  "A key or value that is valid UTF-8 is a JSON string (\"key\",\n"
	  "\"value\"); any other is base64 (\"key_b64\", \"value_b64\"). "
	  "Records\n"
	  "come in byte order of collection, then member. The end line counts\n"
	  "the records, so a cut-off dump is detected. The dump is a\n"
	  "consistent snapshot: the tool holds the store while it runs.\n" },
	{ "load", cmd_load, load_opts, 0, 1, "load [--merge] [FILE]",
	  "Read a dump (see 'dskvs help dump') from FILE or standard input\n"
	  "and put every record into the store, creating it if --store or\n"
	  "DSKVS_STORE names a directory that does not hold one yet. Without\n"
	  "--merge the store must be empty, and load is all or nothing: if it\n"
	  "fails, it empties the store again. Lines without a dump header are\n"
	  "accepted too (e.g. from 'getall --json').\n"
	  "\n"
	  "  --merge   load into a store that already has data: records\n"
	  "            replace existing values; on failure, the records "
	  "before\n"
	  "            the failing line stay\n" },
	{ "export", cmd_export, export_opts, 0, 0,
	  "export --resp [--strings COLLECTION]",
	  "Write the whole store to standard output as Redis commands (RESP\n"
	  "multibulk requests, binary-safe): one HSET COLLECTION MEMBER VALUE\n"
	  "... per collection, split into several HSETs of at most 1000\n"
	  "members or about 1 MiB each, collections and members in byte\n"
	  "order. 'dskvs export --resp | redis-cli --pipe' loads the store\n"
	  "into any Redis-compatible server; each collection becomes a hash.\n"
	  "Works while another program has the store open: it then exports\n"
	  "the part of the log proven synced, from a copy in $TMPDIR, and\n"
	  "says up to which write on stderr.\n"
	  "\n"
	  "  --resp                 the format (the only one, and required)\n"
	  "  --strings COLLECTION   write the members of COLLECTION as string\n"
	  "                         keys instead, one SET MEMBER VALUE each:\n"
	  "                         the collection where dskvs-server keeps\n"
	  "                         bare string keys (see dskvs-server(1))\n" },
	{ "stats", cmd_stats, NULL, 0, 0, "stats",
	  "Print the store's statistics, one 'name value' per line:\n"
	  "\n"
	  "  entries          members in all collections\n"
	  "  collections      collections with at least one member\n"
	  "  live_bytes       bytes of the member names and values\n"
	  "  log_bytes        size of dskvs.log\n"
	  "  log_live_bytes   bytes of the log still holding live data\n"
	  "  garbage_ratio    1 - log_live_bytes/log_bytes: what compact "
	  "reclaims\n"
	  "  format_version   the on-disk format, MAJOR.MINOR\n"
	  "  last_compaction  when the current log file was written (UTC): "
	  "the\n"
	  "                   last compaction, or the store's creation; "
	  "'unknown'\n"
	  "                   if the file system does not record it\n" },
	{ "verify", cmd_verify, NULL, 0, 0, "verify",
	  "Check every record's checksum in the store's files without "
	  "changing\n"
	  "anything. Works while a program has the store open (it checks a\n"
	  "copy read into memory) and on copies; on a store nobody has open\n"
	  "it holds the lock shared, so an open meanwhile is told 'busy'.\n"
	  "Lists each damage as FILE: offset N: WHAT, then a summary line.\n"
	  "Exit status 0 when the store is healthy (a partial last record,\n"
	  "left by an interrupted write, counts as healthy: the next open\n"
	  "drops it), 3 when damaged.\n" },
	{ "compact", cmd_compact, NULL, 0, 0, "compact",
	  "Rewrite the log with only the live data and report the log's size\n"
	  "before and after. Safe against crashes at any moment.\n" },
	{ "backup", cmd_backup, NULL, 1, 1, "backup DEST",
	  "Copy the store into DEST, a new directory or an empty one, as a\n"
	  "store that dskvs opens; synced to disk before it returns. When no\n"
	  "other program has the store open, the copy holds every write.\n"
	  "When one has, it holds the part of the log proven synced (what a\n"
	  "crash would keep): the line printed says up to which sequence\n"
	  "number, and the copy is verified. Exit status 2 when DEST is\n"
	  "refused (it exists and is not an empty directory, lies inside the\n"
	  "store, or cannot be created), 3 on a store or I/O error.\n" },
	{ "help", cmd_help, NULL, 0, 1, "help [COMMAND]",
	  "Show the help for dskvs or for COMMAND.\n" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char main_help[] =
    "Usage: dskvs [--store DIR] COMMAND [ARGS...]\n"
    "\n"
    "Look inside, back up, restore, check and compact a dskvs store.\n"
    "\n"
    "Commands:\n"
    "  get KEY              write a value's exact bytes to standard output\n"
    "  put KEY [VALUE]      set a value (VALUE, --file FILE, or standard "
    "input)\n"
    "  incr KEY [N]         add N (default 1) to an integer value\n"
    "  del KEY              delete a key\n"
    "  getall COLLECTION    list a collection's members and values\n"
    "  delall COLLECTION    delete a whole collection\n"
    "  ls                   list collections, member counts and bytes\n"
    "  dump                 write the whole store as JSON Lines (a backup)\n"
    "  load [FILE]          read a dump into the store (a restore)\n"
    "  export --resp        write the store as Redis HSET commands\n"
    "  stats                entries, sizes, garbage ratio, format version\n"
    "  verify               check every record's checksum; changes nothing\n"
    "  compact              rewrite the log with only the live data\n"
    "  backup DEST          copy the store to DEST, even while it is open\n"
    "  help [COMMAND]       show help for a command\n"
    "\n"
    "Keys are COLLECTION/MEMBER: 'artist/daft punk' is member 'daft punk'\n"
    "of collection 'artist'.\n"
    "\n"
    "Options (anywhere before '--'):\n"
    "  -s, --store DIR   the store's directory; default $DSKVS_STORE, else\n"
    "                    the current directory, which must then hold a "
    "store\n"
    "      --progress    show progress on stderr even if it is not a "
    "terminal\n"
    "      --no-progress never show progress\n"
    "  -h, --help        show this help, or a command's with COMMAND "
    "--help\n"
    "  -V, --version     show the tool's and the library's versions\n"
    "\n"
    "Exit status: 0 success, 1 not found, 2 usage error or bad input,\n"
    "3 store or I/O error (in use, damaged, unreadable, disk full),\n"
    "4 the key exists (put --if-absent), 5 not an integer (incr).\n"
    "Manual: man dskvs\n";

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void command_help(const struct command *c)
{
	printf("Usage: dskvs [--store DIR] %s\n\n%s", c->usage, c->help);
}

static int cmd_help(struct cmd_args *a)
{
	const struct command *c;

	if (a->npos == 0) {
		fputs(main_help, stdout);
		return ST_OK;
	}
	c = find_command(a->pos[0]);
	if (!c)
		return usagef("no command %s", qs(a->pos[0]));
	command_help(c);
	return ST_OK;
}

static int run(int argc, char **argv)
{
	struct cmd_args a;
	const struct command *c;
	const char *env;
	int r, at = 0;

	memset(&a, 0, sizeof(a));
	a.pos = calloc((size_t)argc + 1, sizeof(char *));
	if (!a.pos) {
		errorf("out of memory");
		return ST_STORE;
	}
	/* Global options, up to the command's name. */
	r = parse_args(argc - 1, argv + 1, NULL, &a, 1, &at);
	if (r >= 0)
		goto out;
	at++; /* index in argv */
	if (a.help) {
		fputs(main_help, stdout);
		r = ST_OK;
		goto out;
	}
	if (at >= argc) {
		fputs(main_help, stderr);
		r = ST_USAGE;
		goto out;
	}
	c = find_command(argv[at]);
	if (!c) {
		r = usagef("unknown command %s", qs(argv[at]));
		goto out;
	}
	cli.cmd = c->name;
	r = parse_args(argc - at - 1, argv + at + 1, c->opts, &a, 0, NULL);
	if (r >= 0)
		goto out;
	if (a.help) {
		command_help(c);
		r = ST_OK;
		goto out;
	}
	if (a.npos < c->min_args) {
		r = usagef("missing argument; usage: dskvs %s", c->usage);
		goto out;
	}
	if (a.npos > c->max_args) {
		r = usagef("too many arguments (%s...); usage: dskvs %s",
		           qs(a.pos[c->max_args]), c->usage);
		goto out;
	}
	if (!cli.store) {
		env = getenv("DSKVS_STORE");
		if (env && env[0]) {
			cli.store = env;
			cli.store_from = "DSKVS_STORE";
		} else {
			cli.store = ".";
		}
	}
	progress_init(cli.progress);
	r = c->run(&a);
out:
	free(a.pos);
	return r;
}

int main(int argc, char **argv)
{
	static char outbuf[1 << 16];
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
	int st, color_ok;

	/* A reader that goes away (dskvs dump | head) must not kill us in
	 * the middle of a library call: writes fail with EPIPE instead, the
	 * store is closed properly, and then we die of SIGPIPE as a
	 * well-behaved filter does. */
	signal(SIGPIPE, SIG_IGN);
	color_ok = !(nc && nc[0]) && !(term && strcmp(term, "dumb") == 0);
	cli.out_tty = isatty(STDOUT_FILENO);
	cli.out_color = cli.out_tty && color_ok;
	cli.err_color = isatty(STDERR_FILENO) && color_ok;
	/* Big blocks to a file or pipe (a dump is mostly small lines); line
	 * by line to a person. */
	if (!cli.out_tty)
		setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	st = run(argc, argv);
	if (out_flush() && st == ST_OK)
		st = ST_STORE;
	if (cli.epipe) {
		signal(SIGPIPE, SIG_DFL);
		raise(SIGPIPE);
	}
	return st;
}
