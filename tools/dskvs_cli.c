/*
 * dskvs: the command-line tool for people who look after a store.
 *
 *   dskvs [--store DIR] COMMAND [ARGS...]
 *
 * It uses the public API only, like any other program would, so what it can
 * do is what the library promises. The manual is dskvs.1; this file keeps
 * to three rules that the manual documents:
 *
 *  - Exit status: 0 success, 1 not found, 2 usage error or bad input, 3 store
 *    or I/O error. Every failure prints exactly one line on stderr.
 *  - Standard output carries only the result (exact value bytes for get,
 *    JSON Lines for dump), so it is safe to pipe and redirect; everything
 *    for people (errors, notes, progress) goes to stderr, with colour only
 *    when stderr is a terminal.
 *  - The tool does only what was asked: commands that read never create a
 *    store, and automatic compaction is off while the tool holds a store.
 *
 * The tool holds the store's lock while it works, so nothing else writes to
 * the store meanwhile: a dump is a consistent snapshot, and a load cannot mix
 * with another program's writes.
 */
#include "codec.h"
#include "progress.h"

#include <dskvs.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
	ST_OK = 0,
	ST_NOTFOUND = 1,
	ST_USAGE = 2,
	ST_STORE = 3,
};

/* First line of a dump, and the dump format version it announces. */
#define DUMP_FORMAT 1

static struct {
	const char *store;      /* store directory */
	const char *store_from; /* "--store", "DSKVS_STORE", NULL: default */
	int progress;           /* -1 auto, 0 off, 1 forced */
	int err_color;          /* colour on stderr */
	int out_tty;            /* stdout is a terminal */
	int out_color;          /* colour on stdout (verify's verdict) */
	const char *cmd;        /* command name for messages */
	dskvs *s;               /* the open store, or NULL */
	int epipe;              /* stdout's reader went away */
} cli = { .progress = -1 };

/* While set, the first error message is kept in `held` instead of printed,
 * so that load can finish it with what became of the store (one line). */
static int hold_errors;
static struct cbuf held;

/* Set by the SIGINT/SIGTERM handler of dump and load, which stop between
 * records and close the store properly. */
static volatile sig_atomic_t interrupted;

/* ---- messages ----------------------------------------------------------- */

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* A name quoted for a message: escaped (no control bytes reach the
 * terminal) and cut at 200 bytes (a 64 KiB member name helps nobody). A few
 * rotating buffers, so one message can quote several names. */
static const char *q(const char *s, size_t n)
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

static const char *qs(const char *s)
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

__attribute__((format(printf, 1, 2))) static void errorf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(NULL, "\033[1;31m", fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2))) static void notef(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg("note", "\033[1;33m", fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2))) static int usagef(const char *fmt, ...)
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

static int lib_fail(int err, const char *what)
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

/* Explain a failed call on `key` in the words of the command that made it.
 * want_member: the command needs a member key (else a collection). */
static int key_fail(int err, const char *key, int want_member,
                    const char *where)
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

/* Write to stdout; on failure report it (quietly for a closed pipe) and
 * return -1. */
static int out_write(const void *p, size_t n)
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

static int out_flush(void)
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

/* Check that the store directory exists and holds a store; commands that
 * only read or remove never create one. */
static int store_exists(void)
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

/*
 * Open the store. create: a writing command (put, load) may create it, but
 * only where the user named a directory; the implicit current directory is
 * never turned into a store by accident.
 */
static int store_open(int create)
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

/* Close the store, making every write durable. Returns `st`, or ST_STORE
 * if the writes could not be persisted. */
static int store_close(int st)
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

/* ---- listing collections and members ------------------------------------ */

struct coll {
	char *name;
	uint64_t members, bytes;
};

struct colls {
	struct coll *v;
	size_t n, cap;
};

static int add_coll(const char *name, size_t len, uint64_t members,
                    uint64_t bytes, void *arg)
{
	struct colls *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct coll *v = realloc(c->v, cap * sizeof(*v));
		if (!v)
			return DSKVS_ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n].name = strndup(name, len);
	if (!c->v[c->n].name)
		return DSKVS_ENOMEM;
	c->v[c->n].members = members;
	c->v[c->n].bytes = bytes;
	c->n++;
	return 0;
}

static int coll_cmp(const void *a, const void *b)
{
	/* strcmp compares as unsigned char: byte order. Names hold no NUL. */
	return strcmp(((const struct coll *)a)->name,
	              ((const struct coll *)b)->name);
}

static void colls_free(struct colls *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* All collections, sorted by name. */
static int list_colls(struct colls *c)
{
	int r = dskvs_list_collections(cli.s, add_coll, c);

	if (r != DSKVS_OK)
		return lib_fail(r, "cannot list the collections");
	if (c->n > 1)
		qsort(c->v, c->n, sizeof(*c->v), coll_cmp);
	return ST_OK;
}

struct names {
	char **v;
	size_t n, cap;
};

/*
 * get_all callback: copy the member's name only. The values are fetched
 * afterwards one at a time, outside the walk, because the walk must stay
 * quick (it holds up memory reclamation) while writing a value out can
 * block for as long as the reader of a pipe likes.
 */
static int add_name(const char *member, size_t len, const void *val,
                    size_t vlen, void *arg)
{
	struct names *m = arg;

	(void)val;
	(void)vlen;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		char **v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return DSKVS_ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	m->v[m->n] = strndup(member, len);
	if (!m->v[m->n])
		return DSKVS_ENOMEM;
	m->n++;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(struct names *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i]);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* The members of `coll`, sorted by name. */
static int list_members(const char *coll, struct names *m)
{
	int r = dskvs_get_all(cli.s, coll, add_name, m);

	if (r != DSKVS_OK)
		return key_fail(r, coll, 0, NULL);
	if (m->n > 1) /* qsort wants a non-NULL array, even when empty */
		qsort(m->v, m->n, sizeof(*m->v), name_cmp);
	return ST_OK;
}

/*
 * Visit every member of `coll` in name order with its value: fn(key, klen,
 * member, val, vlen, arg) where key is "coll/member". Stops at fn's first
 * non-zero return, or when interrupted. *seen counts members visited.
 */
typedef int (*member_fn)(const char *key, size_t klen, const char *member,
                         const void *val, size_t vlen, void *arg);

static int walk_collection(const char *coll, member_fn fn, void *arg,
                           uint64_t *seen)
{
	struct names m = { 0 };
	struct cbuf key = { 0 };
	size_t clen = strcspn(coll, "/"), i; /* "artist/" is "artist" */
	int st;

	st = list_members(coll, &m);
	for (i = 0; st == ST_OK && i < m.n && !interrupted; i++) {
		void *val;
		size_t vlen;
		int r;

		key.len = 0;
		cbuf_put(&key, coll, clen);
		cbuf_putc(&key, '/');
		cbuf_puts(&key, m.v[i]);
		r = dskvs_get_alloc(cli.s, key.p, &val, &vlen);
		if (r == DSKVS_NOTFOUND)
			continue; /* cannot happen while we hold the lock */
		if (r != DSKVS_OK) {
			st = key_fail(r, key.p, 1, NULL);
			break;
		}
		st = fn(key.p, key.len, m.v[i], val, vlen, arg);
		free(val);
		(*seen)++;
	}
	cbuf_free(&key);
	names_free(&m);
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
struct cmd_args {
	const char *file; /* put --file */
	int merge;        /* load --merge */
	int json;         /* getall --json */
	int help;
	char **pos; /* positional arguments */
	int npos;
};

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

/* ---- commands ----------------------------------------------------------- */

struct command {
	const char *name;
	int (*run)(struct cmd_args *a);
	const struct opt *opts;
	int min_args, max_args;
	const char *usage;
	const char *help;
};

static int cmd_get(struct cmd_args *a)
{
	const char *key = a->pos[0];
	void *val;
	size_t len;
	int r, st;

	st = store_open(0);
	if (st)
		return st;
	r = dskvs_get_alloc(cli.s, key, &val, &len);
	if (r != DSKVS_OK)
		return store_close(key_fail(r, key, 1, NULL));
	st = out_write(val, len) == 0 ? ST_OK : ST_STORE;
	free(val);
	return store_close(st);
}

/* Read all of fd, refusing more than DSKVS_VALUE_MAX bytes. */
static int read_value(int fd, const char *name, struct cbuf *b)
{
	for (;;) {
		ssize_t n;

		cbuf_reserve(b, 65536);
		n = read(fd, b->p + b->len, 65536);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			errorf("cannot read %s: %s", name, strerror(errno));
			return ST_STORE;
		}
		if (n == 0)
			return ST_OK;
		b->len += (size_t)n;
		if (b->len > DSKVS_VALUE_MAX) {
			errorf("the value in %s is larger than %u MiB, the "
			       "most a value can hold",
			       name, DSKVS_VALUE_MAX >> 20);
			return ST_USAGE;
		}
	}
}

static int cmd_put(struct cmd_args *a)
{
	const char *key = a->pos[0];
	struct cbuf b = { 0 };
	const void *val;
	size_t len;
	int r, st;

	if (a->npos == 2 && a->file)
		return usagef("give the value as an argument or with --file, "
		              "not both");
	if (a->npos == 2) {
		val = a->pos[1];
		len = strlen(a->pos[1]);
	} else {
		/* Read the whole value before opening the store, so the
		 * store is not held while someone types. */
		const char *name = "standard input";
		int fd = STDIN_FILENO;

		if (a->file && strcmp(a->file, "-") != 0) {
			fd = open(a->file, O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				errorf("cannot open %s: %s", qs(a->file),
				       strerror(errno));
				return ST_USAGE;
			}
			name = qs(a->file);
		} else if (isatty(STDIN_FILENO)) {
			notef("reading the value from the terminal; end it "
			      "with Ctrl-D");
		}
		st = read_value(fd, name, &b);
		if (fd != STDIN_FILENO)
			close(fd);
		if (st) {
			cbuf_free(&b);
			return st;
		}
		val = b.p ? b.p : "";
		len = b.len;
	}
	if (len > DSKVS_VALUE_MAX) {
		cbuf_free(&b);
		errorf("the value is larger than %u MiB, the most a value can "
		       "hold",
		       DSKVS_VALUE_MAX >> 20);
		return ST_USAGE;
	}
	st = store_open(1);
	if (st) {
		cbuf_free(&b);
		return st;
	}
	r = dskvs_put(cli.s, key, val, len, NULL, NULL);
	cbuf_free(&b);
	if (r != DSKVS_OK)
		return store_close(key_fail(r, key, 1, NULL));
	return store_close(ST_OK);
}

static int cmd_del(struct cmd_args *a)
{
	const char *key = a->pos[0];
	int r, st;

	st = store_open(0);
	if (st)
		return st;
	r = dskvs_delete(cli.s, key);
	if (r != DSKVS_OK)
		return store_close(key_fail(r, key, 1, NULL));
	return store_close(ST_OK);
}

static int cmd_delall(struct cmd_args *a)
{
	const char *coll = a->pos[0];
	int r, st;

	st = store_open(0);
	if (st)
		return st;
	r = dskvs_delete_all(cli.s, coll);
	if (r != DSKVS_OK)
		return store_close(key_fail(r, coll, 0, NULL));
	return store_close(ST_OK);
}

struct getall_ctx {
	int json;
	struct cbuf line;
};

static int getall_one(const char *key, size_t klen, const char *member,
                      const void *val, size_t vlen, void *arg)
{
	struct getall_ctx *g = arg;

	g->line.len = 0;
	if (g->json) {
		dump_put_record(&g->line, key, klen, val, vlen);
	} else {
		text_put_escaped(&g->line, member, strlen(member));
		cbuf_putc(&g->line, '\t');
		text_put_escaped(&g->line, val, vlen);
		cbuf_putc(&g->line, '\n');
	}
	return out_write(g->line.p, g->line.len) ? ST_STORE : ST_OK;
}

static int cmd_getall(struct cmd_args *a)
{
	const char *coll = a->pos[0];
	struct getall_ctx g = { a->json, { 0 } };
	uint64_t seen = 0;
	int st;

	st = store_open(0);
	if (st)
		return st;
	st = walk_collection(coll, getall_one, &g, &seen);
	cbuf_free(&g.line);
	if (st == ST_OK && seen == 0)
		/* A collection exists while it has members: none means
		 * there is no such collection. */
		st = key_fail(DSKVS_NOTFOUND, coll, 0, NULL);
	return store_close(st);
}

static int cmd_ls(struct cmd_args *a)
{
	struct colls c = { 0 };
	struct cbuf b = { 0 }, name = { 0 };
	size_t i, w = 10;
	int st;

	(void)a;
	st = store_open(0);
	if (st)
		return st;
	st = list_colls(&c);
	if (st == ST_OK && cli.out_tty) {
		/* For a person: aligned columns under a header. */
		for (i = 0; i < c.n; i++) {
			name.len = 0;
			text_put_escaped(&name, c.v[i].name,
			                 strlen(c.v[i].name));
			if (name.len > w)
				w = name.len;
		}
		if (w > 60)
			w = 60;
		fprintf(stdout, "%-*s %12s %15s\n", (int)w, "COLLECTION",
		        "MEMBERS", "BYTES");
	}
	for (i = 0; st == ST_OK && i < c.n; i++) {
		char num[64];

		b.len = 0;
		name.len = 0;
		text_put_escaped(&name, c.v[i].name, strlen(c.v[i].name));
		if (cli.out_tty) {
			cbuf_put(&b, name.p, name.len);
			for (size_t k = name.len; k < w; k++)
				cbuf_putc(&b, ' ');
			snprintf(num, sizeof(num), " %12llu %15llu\n",
			         (unsigned long long)c.v[i].members,
			         (unsigned long long)c.v[i].bytes);
		} else {
			/* For a program: name TAB members TAB bytes. */
			cbuf_put(&b, name.p, name.len);
			snprintf(num, sizeof(num), "\t%llu\t%llu\n",
			         (unsigned long long)c.v[i].members,
			         (unsigned long long)c.v[i].bytes);
		}
		cbuf_puts(&b, num);
		if (out_write(b.p, b.len))
			st = ST_STORE;
	}
	cbuf_free(&b);
	cbuf_free(&name);
	colls_free(&c);
	return store_close(st);
}

static void on_interrupt(int sig)
{
	interrupted = sig;
}

/* Catch SIGINT and SIGTERM in the main thread without SA_RESTART, so that a
 * read blocked on a pipe or terminal returns and the loop can stop. */
static void catch_interrupts(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

struct dump_ctx {
	struct cbuf line;
	uint64_t done;
};

static int dump_one(const char *key, size_t klen, const char *member,
                    const void *val, size_t vlen, void *arg)
{
	struct dump_ctx *d = arg;

	(void)member;
	d->line.len = 0;
	dump_put_record(&d->line, key, klen, val, vlen);
	progress_set(++d->done);
	return out_write(d->line.p, d->line.len) ? ST_STORE : ST_OK;
}

static int cmd_dump(struct cmd_args *a)
{
	struct colls c = { 0 };
	struct dump_ctx d = { { 0 }, 0 };
	dskvs_stats stats;
	uint64_t seen = 0;
	char line[128], final[128];
	int st, r;

	(void)a;
	catch_interrupts();
	st = store_open(0);
	if (st)
		return st;
	r = dskvs_stats_get(cli.s, &stats);
	if (r != DSKVS_OK)
		return store_close(lib_fail(r, "cannot read the statistics"));
	st = list_colls(&c);
	if (st)
		return store_close(st);
	snprintf(line, sizeof(line), "{\"dskvs_dump\":%d,\"library\":\"%s\"}\n",
	         DUMP_FORMAT, dskvs_version_string());
	if (out_write(line, strlen(line)))
		st = ST_STORE;
	progress_begin("dump", stats.entries, "entries");
	for (size_t i = 0; st == ST_OK && i < c.n && !interrupted; i++)
		st = walk_collection(c.v[i].name, dump_one, &d, &seen);
	snprintf(final, sizeof(final), "dump: %llu entries",
	         (unsigned long long)d.done);
	progress_end(final);
	if (interrupted && !cli.epipe) {
		errorf("interrupted after %llu %s; the dump is incomplete "
		       "(it has no end line)",
		       (unsigned long long)d.done,
		       plural(d.done, "entry", "entries"));
		st = 128 + interrupted;
	}
	if (st == ST_OK) {
		/* The end line lets load tell a whole dump from a cut one. */
		snprintf(line, sizeof(line), "{\"dskvs_dump_end\":%llu}\n",
		         (unsigned long long)d.done);
		if (out_write(line, strlen(line)) || out_flush())
			st = ST_STORE;
	}
	cbuf_free(&d.line);
	colls_free(&c);
	return store_close(st);
}

/* Put back an empty store after a failed load into an empty store, so a
 * failed restore leaves nothing half-done behind. */
static int load_rollback(void)
{
	struct colls c = { 0 };
	int st = list_colls(&c), r;

	for (size_t i = 0; st == ST_OK && i < c.n; i++) {
		r = dskvs_delete_all(cli.s, c.v[i].name);
		if (r != DSKVS_OK && r != DSKVS_NOTFOUND)
			st = lib_fail(r, "cannot empty the store again");
	}
	colls_free(&c);
	return st;
}

static const struct json_field *field(const struct json_field *f, int n,
                                      const char *name)
{
	for (int i = 0; i < n; i++)
		if (f[i].name_len == strlen(name) &&
		    memcmp(f[i].name, name, f[i].name_len) == 0)
			return &f[i];
	return NULL;
}

struct load_state {
	const char *src; /* input name for messages */
	uint64_t lineno;
	uint64_t loaded;      /* records put */
	int in_dump;          /* a header was read, its end line not yet */
	uint64_t dump_count;  /* records since that header */
	uint64_t dump_header; /* line of that header */
};

/*
 * Decode a "key"/"key_b64" or "value"/"value_b64" field into *p, *len.
 * Returns 0, or -1 after reporting the problem.
 */
static int load_bytes(struct load_state *ls, const struct json_field *plain,
                      const struct json_field *b64, const char *what, char **p,
                      size_t *len)
{
	long long n;

	if (plain && b64) {
		errorf("%s, line %llu: both \"%s\" and \"%s_b64\"", ls->src,
		       (unsigned long long)ls->lineno, what, what);
		return -1;
	}
	if (!plain && !b64) {
		errorf("%s, line %llu: no \"%s\" (or \"%s_b64\") field",
		       ls->src, (unsigned long long)ls->lineno, what, what);
		return -1;
	}
	if ((plain ? plain : b64)->type != JSON_STRING) {
		errorf("%s, line %llu: \"%s%s\" must be a string", ls->src,
		       (unsigned long long)ls->lineno, what,
		       plain ? "" : "_b64");
		return -1;
	}
	if (plain) {
		*p = plain->val;
		*len = plain->len;
		return 0;
	}
	n = base64_decode(b64->val, b64->len, b64->val);
	if (n < 0) {
		errorf("%s, line %llu: \"%s_b64\" is not valid base64", ls->src,
		       (unsigned long long)ls->lineno, what);
		return -1;
	}
	b64->val[n] = '\0'; /* decoded text is shorter: still inside */
	*p = b64->val;
	*len = (size_t)n;
	return 0;
}

/* Apply one non-blank line. Returns ST_OK or an exit status. */
static int load_line(struct load_state *ls, char *line, size_t n)
{
	struct json_field f[8];
	const struct json_field *hdr, *end;
	const char *err;
	size_t col;
	char *key, *val;
	size_t klen, vlen;
	uint64_t v;
	int nf, r;

	nf = json_parse_object(line, n, f, 8, &err, &col);
	if (nf < 0) {
		errorf("%s, line %llu, column %zu: %s", ls->src,
		       (unsigned long long)ls->lineno, col, err);
		return ST_USAGE;
	}
	hdr = field(f, nf, "dskvs_dump");
	end = field(f, nf, "dskvs_dump_end");
	if (hdr) {
		if (json_to_u64(hdr, &v) || v == 0) {
			errorf("%s, line %llu: \"dskvs_dump\" must be a "
			       "format version number",
			       ls->src, (unsigned long long)ls->lineno);
			return ST_USAGE;
		}
		if (v > DUMP_FORMAT) {
			errorf("%s, line %llu: dump format %llu is newer than "
			       "this dskvs reads (%d); use a newer dskvs",
			       ls->src, (unsigned long long)ls->lineno,
			       (unsigned long long)v, DUMP_FORMAT);
			return ST_USAGE;
		}
		if (ls->in_dump) {
			errorf("%s, line %llu: a new dump starts before the "
			       "one from line %llu ended: that dump was cut "
			       "short",
			       ls->src, (unsigned long long)ls->lineno,
			       (unsigned long long)ls->dump_header);
			return ST_USAGE;
		}
		ls->in_dump = 1;
		ls->dump_count = 0;
		ls->dump_header = ls->lineno;
		return ST_OK;
	}
	if (end) {
		if (!ls->in_dump) {
			errorf("%s, line %llu: end line without a dump header",
			       ls->src, (unsigned long long)ls->lineno);
			return ST_USAGE;
		}
		if (json_to_u64(end, &v) || v != ls->dump_count) {
			errorf("%s, line %llu: the end line promises %.*s "
			       "entries but the dump holds %llu",
			       ls->src, (unsigned long long)ls->lineno,
			       (int)end->len, end->val,
			       (unsigned long long)ls->dump_count);
			return ST_USAGE;
		}
		ls->in_dump = 0;
		return ST_OK;
	}
	for (int i = 0; i < nf; i++) {
		static const char *known[] = { "key", "key_b64", "value",
			                       "value_b64" };
		int ok = 0;

		for (int k = 0; k < 4; k++)
			ok |= f[i].name_len == strlen(known[k]) &&
			      memcmp(f[i].name, known[k], f[i].name_len) == 0;
		if (!ok) {
			errorf("%s, line %llu: unknown field %s", ls->src,
			       (unsigned long long)ls->lineno,
			       q(f[i].name, f[i].name_len));
			return ST_USAGE;
		}
	}
	if (load_bytes(ls, field(f, nf, "key"), field(f, nf, "key_b64"), "key",
	               &key, &klen) ||
	    load_bytes(ls, field(f, nf, "value"), field(f, nf, "value_b64"),
	               "value", &val, &vlen))
		return ST_USAGE;
	if (strlen(key) != klen) {
		errorf("%s, line %llu: the key holds a NUL byte, which keys "
		       "cannot",
		       ls->src, (unsigned long long)ls->lineno);
		return ST_USAGE;
	}
	r = dskvs_put(cli.s, key, val, vlen, NULL, NULL);
	if (r != DSKVS_OK) {
		char where[300];
		snprintf(where, sizeof(where), "%s, line %llu", ls->src,
		         (unsigned long long)ls->lineno);
		return key_fail(r, key, 1, where);
	}
	ls->loaded++;
	ls->dump_count++;
	return ST_OK;
}

/*
 * A line reader on a raw descriptor that can be interrupted without a race.
 *
 * The classic "check a flag, then read()" loop loses a signal that arrives
 * between the two: the handler sets the flag, and read() then blocks for
 * ever on a quiet pipe. So load keeps SIGINT and SIGTERM blocked and waits
 * for input only in ppoll(), which unblocks them atomically for the wait:
 * a signal either arrives before (ppoll returns EINTR at once) or during
 * the wait (same), never in a gap.
 */
struct lreader {
	int fd;
	char *buf;
	size_t cap, start, end;
	int eof;
	sigset_t waitmask; /* the mask to wait with: INT and TERM open */
};

/* Longest line accepted: a 64 MiB value in base64 is 88 MiB, plus a key
 * of two 64 KiB names in base64 and the JSON around them. */
#define LINE_MAX_BYTES ((size_t)DSKVS_VALUE_MAX / 3 * 4 + (1u << 20))

enum { LR_EOF = -1, LR_ERROR = -2, LR_INTERRUPTED = -3, LR_TOO_LONG = -4 };

/* Next line (with its '\n', if any) in *line; its length, or an LR_ code.
 * The line stays valid until the next call and may be modified. */
static ssize_t lr_next(struct lreader *r, char **line)
{
	for (;;) {
		char *nl = r->end > r->start ? memchr(r->buf + r->start, '\n',
		                                      r->end - r->start)
		                             : NULL;
		size_t n;
		ssize_t got;
		struct pollfd pfd = { r->fd, POLLIN, 0 };

		if (nl || (r->eof && r->end > r->start)) {
			n = nl ? (size_t)(nl + 1 - (r->buf + r->start))
			       : r->end - r->start;
			*line = r->buf + r->start;
			r->start += n;
			return (ssize_t)n;
		}
		if (r->eof)
			return LR_EOF;
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		if (r->end == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 1u << 16;
			char *b;

			if (r->cap >= LINE_MAX_BYTES)
				return LR_TOO_LONG;
			b = realloc(r->buf, cap);
			if (!b) {
				errno = ENOMEM;
				return LR_ERROR;
			}
			r->buf = b;
			r->cap = cap;
		}
		if (ppoll(&pfd, 1, NULL, &r->waitmask) < 0) {
			if (errno != EINTR)
				return LR_ERROR;
			if (interrupted)
				return LR_INTERRUPTED;
			continue;
		}
		got = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return LR_ERROR;
		}
		if (got == 0)
			r->eof = 1;
		r->end += (size_t)got;
	}
}

static int cmd_load(struct cmd_args *a)
{
	struct load_state ls = { 0 };
	struct lreader in = { .fd = STDIN_FILENO };
	dskvs_stats stats;
	struct stat sb;
	sigset_t sigs, old;
	char *line, final[128];
	uint64_t consumed = 0;
	ssize_t n = 0;
	int st, r, sized, rerr = 0;

	ls.src = "standard input";
	if (a->npos == 1 && strcmp(a->pos[0], "-") != 0) {
		in.fd = open(a->pos[0], O_RDONLY | O_CLOEXEC);
		if (in.fd < 0) {
			errorf("cannot open %s: %s", qs(a->pos[0]),
			       strerror(errno));
			return ST_USAGE;
		}
		ls.src = qs(a->pos[0]);
	} else if (isatty(STDIN_FILENO)) {
		notef("reading a dump from the terminal; end it with Ctrl-D");
	}
	/* Blocked from here on, except while lr_next() waits for input. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	in.waitmask = old;
	sigdelset(&in.waitmask, SIGINT);
	sigdelset(&in.waitmask, SIGTERM);
	catch_interrupts();
	st = store_open(1);
	if (st)
		goto out;
	r = dskvs_stats_get(cli.s, &stats);
	if (r != DSKVS_OK) {
		st = store_close(lib_fail(r, "cannot read the statistics"));
		goto out;
	}
	if (!a->merge && stats.entries > 0) {
		errorf("store %s is not empty (%llu entries); load into an "
		       "empty store, or add --merge to load into this one",
		       qs(cli.store), (unsigned long long)stats.entries);
		st = store_close(ST_USAGE);
		goto out;
	}
	hold_errors = 1;
	sized = fstat(in.fd, &sb) == 0 && S_ISREG(sb.st_mode);
	if (sized)
		progress_begin("load", (uint64_t)sb.st_size, "B");
	else
		progress_begin("load", 0, "entries");
	for (;;) {
		size_t i;

		n = lr_next(&in, &line);
		if (n < 0) {
			rerr = errno;
			break;
		}
		ls.lineno++;
		consumed += (uint64_t)n;
		progress_set(sized ? consumed : ls.loaded);
		for (i = 0; i < (size_t)n; i++)
			if (!strchr(" \t\r\n", line[i]))
				break;
		if (i == (size_t)n)
			continue; /* blank line */
		st = load_line(&ls, line, (size_t)n);
		if (st)
			break;
	}
	snprintf(final, sizeof(final), "load: %llu entries",
	         (unsigned long long)ls.loaded);
	progress_end(final);
	if (st == ST_OK && n == LR_INTERRUPTED) {
		errorf("interrupted after %llu %s",
		       (unsigned long long)ls.loaded,
		       plural(ls.loaded, "entry", "entries"));
		st = 128 + interrupted;
	} else if (st == ST_OK && n == LR_TOO_LONG) {
		errorf("%s, line %llu: longer than %zu MiB, more than any "
		       "record can be",
		       ls.src, (unsigned long long)ls.lineno + 1,
		       LINE_MAX_BYTES >> 20);
		st = ST_USAGE;
	} else if (st == ST_OK && n == LR_ERROR) {
		errorf("cannot read %s: %s", ls.src, strerror(rerr));
		st = ST_STORE;
	} else if (st == ST_OK && ls.in_dump) {
		errorf("%s: the dump that starts on line %llu has no end "
		       "line: it was cut short",
		       ls.src, (unsigned long long)ls.dump_header);
		st = ST_USAGE;
	}
	hold_errors = 0;
	if (st != ST_OK) {
		const char *fate = "; nothing was loaded";
		char merged[96];
		int rb = ST_OK;

		if (a->merge) {
			snprintf(merged, sizeof(merged),
			         "; the %llu %s before it %s loaded",
			         (unsigned long long)ls.loaded,
			         ls.loaded == 1 ? "entry" : "entries",
			         ls.loaded == 1 ? "stays" : "stay");
			fate = ls.loaded ? merged : fate;
		} else if (ls.loaded > 0) {
			rb = load_rollback();
			if (rb) {
				fate = "; emptying the store again failed too";
				st = rb;
			}
		}
		if (held.len) {
			fwrite(held.p, 1, held.len, stderr);
			fprintf(stderr, "%s\n", fate);
		}
		cbuf_free(&held);
	}
	st = store_close(st);
out:
	/* A signal still pending now came after the work was done: its
	 * handler runs here and changes nothing. */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(in.buf);
	if (in.fd != STDIN_FILENO)
		close(in.fd);
	return st;
}

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

static int cmd_stats(struct cmd_args *a)
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

static int cmd_verify(struct cmd_args *a)
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

static int cmd_compact(struct cmd_args *a)
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

static int cmd_help(struct cmd_args *a);

static const struct opt put_opts[] = {
	{ "file", 'f', 1, OPT_FILE },
	{ NULL, 0, 0, 0 },
};
static const struct opt load_opts[] = {
	{ "merge", 0, 0, OPT_MERGE },
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
	{ "put", cmd_put, put_opts, 1, 2, "put [--file FILE] KEY [VALUE]",
	  "Set KEY (COLLECTION/MEMBER) to VALUE, to the contents of FILE, or,\n"
	  "with neither, to everything read from standard input ('-' as FILE\n"
	  "also means standard input). Values are bytes, at most 64 MiB.\n"
	  "Creates the store if --store or DSKVS_STORE names a directory that\n"
	  "does not hold one yet.\n"
	  "\n"
	  "  -f, --file FILE   read the value from FILE\n" },
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
	  "  {\"dskvs_dump\":1,\"library\":\"1.0.0\"}\n"
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
    "  del KEY              delete a key\n"
    "  getall COLLECTION    list a collection's members and values\n"
    "  delall COLLECTION    delete a whole collection\n"
    "  ls                   list collections, member counts and bytes\n"
    "  dump                 write the whole store as JSON Lines (a backup)\n"
    "  load [FILE]          read a dump into the store (a restore)\n"
    "  stats                entries, sizes, garbage ratio, format version\n"
    "  verify               check every record's checksum; changes nothing\n"
    "  compact              rewrite the log with only the live data\n"
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
    "3 store or I/O error (in use, damaged, unreadable, disk full).\n"
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
