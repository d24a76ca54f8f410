/*
 * The dskvs backup and restore: dump writes the whole store to standard
 * output as JSON Lines, load puts a dump back, reading it with a line reader
 * that Ctrl-C can interrupt without a race.
 */
#include "cli.h"
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* First line of a dump, and the dump format version it announces. */
#define DUMP_FORMAT 1

static void on_interrupt(int sig)
{
	interrupted = sig;
}

/* Catch SIGINT and SIGTERM in the main thread without SA_RESTART, so that a
 * read blocked on a pipe or terminal returns and the loop can stop. */
void catch_interrupts(void)
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
                    size_t mlen, const void *val, size_t vlen, void *arg)
{
	struct dump_ctx *d = arg;

	(void)member;
	(void)mlen;
	d->line.len = 0;
	dump_put_record(&d->line, key, klen, val, vlen);
	progress_set(++d->done);
	return out_write(d->line.p, d->line.len) ? ST_STORE : ST_OK;
}

int cmd_dump(struct cmd_args *a)
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
	char *key, *val, *slash, where[300];
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
	/* The collection ends at the first '/'; the member is everything
	 * after it, any bytes (NUL included) and possibly empty, as the
	 * library's _bin calls take it. */
	snprintf(where, sizeof(where), "%s, line %llu", ls->src,
	         (unsigned long long)ls->lineno);
	slash = memchr(key, '/', klen);
	if (slash == NULL || slash == key)
		return key_fail(DSKVS_EBADKEY, key, 1, where);
	if (memchr(key, '\0', (size_t)(slash - key)) != NULL) {
		errorf("%s, line %llu: the collection name of key %s holds a "
		       "NUL byte, which collection names cannot",
		       ls->src, (unsigned long long)ls->lineno, q(key, klen));
		return ST_USAGE;
	}
	r = dskvs_put_bin(cli.s, key, (size_t)(slash - key), slash + 1,
	                  klen - (size_t)(slash - key) - 1, val, vlen, NULL,
	                  NULL, NULL);
	if (r != DSKVS_OK)
		return key_fail(r, key, 1, where);
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

int cmd_load(struct cmd_args *a)
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
