/*
 * dskvs: the command-line tool for people who look after a store.
 *
 *   dskvs [--store DIR] COMMAND [ARGS...]
 *
 * It uses the public API only, like any other program would, so what it can
 * do is what the library promises. The manual is dskvs.1; the tool keeps to
 * three rules that the manual documents:
 *
 *  - Exit status: 0 success, 1 not found, 2 usage error or bad input, 3 store
 *    or I/O error, 4 the key exists (put --if-absent), 5 the value is not
 *    a decimal integer or the sum overflows (incr). Every failure prints
 *    exactly one line on stderr.
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
 *
 * Layout (this header declares what the files share; the rest is static):
 *
 *   cli.c        main, argument parsing, the command table and help texts,
 *                messages and error reporting, opening and closing the
 *                store, standard output, quoting names
 *   cmd_kv.c     get, put, del, getall, delall, ls, and the listing of
 *                collections and members (shared with dump and load)
 *   cmd_dump.c   dump and load, and load's interruptible line reader
 *   cmd_export.c export --resp: the store as Redis commands
 *   cmd_admin.c  stats, verify, compact, backup
 *   codec.c/.h   text codecs: UTF-8, JSON, base64, escaped output
 *   progress.c/.h  the progress line on stderr
 */
#ifndef DSKVS_TOOL_CLI_H
#define DSKVS_TOOL_CLI_H

#include "codec.h"

#include <dskvs.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses. */
enum {
	ST_OK = 0,
	ST_NOTFOUND = 1,
	ST_USAGE = 2,
	ST_STORE = 3,
	ST_EXISTS = 4, /* put --if-absent: the key already has a value */
	ST_NOTINT = 5, /* incr: the value is not a decimal integer, or the
	                  sum is out of the 64-bit signed range */
};

/* ---- shared state (defined in cli.c) ------------------------------------ */

struct cli_state {
	const char *store;      /* store directory */
	const char *store_from; /* "--store", "DSKVS_STORE", NULL: default */
	int progress;           /* -1 auto, 0 off, 1 forced */
	int err_color;          /* colour on stderr */
	int out_tty;            /* stdout is a terminal */
	int out_color;          /* colour on stdout (verify's verdict) */
	const char *cmd;        /* command name for messages */
	dskvs *s;               /* the open store, or NULL */
	int epipe;              /* stdout's reader went away */
};
extern struct cli_state cli;

/* While set, the first error message is kept in `held` instead of printed,
 * so that load can finish it with what became of the store (one line). */
extern int hold_errors;
extern struct cbuf held;

/* Set by the SIGINT/SIGTERM handler of dump and load, which stop between
 * records and close the store properly. */
extern volatile sig_atomic_t interrupted;

/* Set `interrupted` on SIGINT and SIGTERM, without SA_RESTART, so that a
 * blocked read or write returns (cmd_dump.c; dump, load and export). */
void catch_interrupts(void);

/* ---- messages (cli.c) --------------------------------------------------- */

const char *plural(uint64_t n, const char *one, const char *many);

/* A name quoted for a message: escaped (no control bytes reach the
 * terminal) and cut at 200 bytes (a 64 KiB member name helps nobody). The
 * result stays valid for the next few calls. qs: the same for a C string. */
const char *q(const char *s, size_t n);
const char *qs(const char *s);

/* One line on stderr: "dskvs CMD: ..." for an error, "dskvs CMD: note: ..."
 * for a note. usagef also points to the help, and returns ST_USAGE. */
__attribute__((format(printf, 1, 2))) void errorf(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void notef(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) int usagef(const char *fmt, ...);

/* Report library error `err` after `what` on one line, with the library's
 * sentence and detail for this failure. Must be called before any other
 * dskvs call, which would replace the detail. Returns the exit status. */
int lib_fail(int err, const char *what);

/* Explain a failed call on `key` in the words of the command that made it.
 * want_member: the command needs a member key (else a collection). where:
 * what to put before the message (NULL for nothing). Returns the exit
 * status. */
int key_fail(int err, const char *key, int want_member, const char *where);

/* ---- standard output (cli.c) -------------------------------------------- */

/* Write to stdout; on failure report it (quietly for a closed pipe) and
 * return -1. */
int out_write(const void *p, size_t n);
int out_flush(void);

/* ---- the store (cli.c) -------------------------------------------------- */

/* Check that the store directory exists and holds a store; commands that
 * only read or remove never create one. Returns the exit status. */
int store_exists(void);

/* Open the store into cli.s. create: a writing command (put, load) may
 * create it, but only where the user named a directory; the implicit
 * current directory is never turned into a store by accident. Returns the
 * exit status, after reporting a failure. */
int store_open(int create);

/* store_open(0), except that a store another process holds is not an
 * error: returns ST_BUSY for it, silently, with cli.s NULL. */
enum { ST_BUSY = -1 };
int store_open_or_busy(void);

/* Close the store, making every write durable. Returns `st`, or ST_STORE
 * if the writes could not be persisted. */
int store_close(int st);

/* ---- listing collections and members (cmd_kv.c) ------------------------- */

struct coll {
	char *name;
	uint64_t members, bytes;
};

struct colls {
	struct coll *v;
	size_t n, cap;
};

/* All collections, sorted by name. Returns the exit status. */
int list_colls(struct colls *c);
void colls_free(struct colls *c);

/*
 * Visit every member of `coll` in byte order of name with its value:
 * fn(key, klen, member, mlen, val, vlen, arg) where key is "coll/member"
 * (klen bytes, then a NUL). A member may hold any bytes, NUL included, and
 * may be empty: use the lengths. Stops at fn's first non-zero return, or
 * when interrupted. *seen counts members visited.
 */
typedef int (*member_fn)(const char *key, size_t klen, const char *member,
                         size_t mlen, const void *val, size_t vlen, void *arg);

int walk_collection(const char *coll, member_fn fn, void *arg, uint64_t *seen);

/* ---- the commands (cmd_*.c) --------------------------------------------- */

/* What a command's options set. */
struct cmd_args {
	const char *file;    /* put --file */
	int merge;           /* load --merge */
	int json;            /* getall --json */
	int if_absent;       /* put --if-absent */
	int resp;            /* export --resp */
	const char *strings; /* export --strings COLLECTION */
	int help;
	char **pos; /* positional arguments */
	int npos;
};

/* Each runs one command with its parsed arguments, the store not yet open,
 * and returns the exit status. */
int cmd_get(struct cmd_args *a);
int cmd_put(struct cmd_args *a);
int cmd_incr(struct cmd_args *a);
int cmd_del(struct cmd_args *a);
int cmd_getall(struct cmd_args *a);
int cmd_delall(struct cmd_args *a);
int cmd_ls(struct cmd_args *a);
int cmd_dump(struct cmd_args *a);
int cmd_load(struct cmd_args *a);
int cmd_export(struct cmd_args *a);
int cmd_stats(struct cmd_args *a);
int cmd_verify(struct cmd_args *a);
int cmd_compact(struct cmd_args *a);
int cmd_backup(struct cmd_args *a);

#endif /* DSKVS_TOOL_CLI_H */
