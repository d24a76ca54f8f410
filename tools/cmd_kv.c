/*
 * The dskvs commands on keys and collections: get, put, del, getall, delall
 * and ls, and the listing of collections and members they stand on (which
 * dump and load use too).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- listing collections and members ------------------------------------ */

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

void colls_free(struct colls *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].name);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

int list_colls(struct colls *c)
{
	int r = dskvs_list_collections(cli.s, add_coll, c);

	if (r != DSKVS_OK)
		return lib_fail(r, "cannot list the collections");
	if (c->n > 1)
		qsort(c->v, c->n, sizeof(*c->v), coll_cmp);
	return ST_OK;
}

/* Member names with their lengths: a member may hold any bytes, NUL
 * included, and may be empty (the library's _bin calls). */
struct name {
	char *p; /* the name's bytes, with a NUL after them */
	size_t len;
};

struct names {
	struct name *v;
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
	char *p;

	(void)val;
	(void)vlen;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct name *v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return DSKVS_ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	p = malloc(len + 1);
	if (!p)
		return DSKVS_ENOMEM;
	memcpy(p, member, len);
	p[len] = '\0';
	m->v[m->n].p = p;
	m->v[m->n].len = len;
	m->n++;
	return 0;
}

/* Byte order; a name that is a prefix of another comes first. */
static int name_cmp(const void *a, const void *b)
{
	const struct name *x = a, *y = b;
	int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);

	if (c)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static void names_free(struct names *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].p);
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

int walk_collection(const char *coll, member_fn fn, void *arg, uint64_t *seen)
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
		cbuf_put(&key, m.v[i].p, m.v[i].len);
		cbuf_putc(&key, '\0');
		key.len--; /* the NUL is there for messages, not counted */
		r = dskvs_get_alloc_bin(cli.s, coll, clen, m.v[i].p, m.v[i].len,
		                        &val, &vlen);
		if (r == DSKVS_NOTFOUND)
			continue; /* cannot happen while we hold the lock */
		if (r != DSKVS_OK) {
			st = key_fail(r, key.p, 1, NULL);
			break;
		}
		st = fn(key.p, key.len, m.v[i].p, m.v[i].len, val, vlen, arg);
		free(val);
		(*seen)++;
	}
	cbuf_free(&key);
	names_free(&m);
	return st;
}

/* ---- commands ----------------------------------------------------------- */

int cmd_get(struct cmd_args *a)
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

int cmd_put(struct cmd_args *a)
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
	if (a->if_absent)
		r = dskvs_put_if_absent(cli.s, key, val, len, NULL);
	else
		r = dskvs_put(cli.s, key, val, len, NULL, NULL);
	cbuf_free(&b);
	if (r == DSKVS_EEXIST) {
		errorf("%s already has a value; nothing was changed", qs(key));
		return store_close(ST_EXISTS);
	}
	if (r != DSKVS_OK)
		return store_close(key_fail(r, key, 1, NULL));
	return store_close(ST_OK);
}

/* ---- incr ---------------------------------------------------------------- */

/* Parse a decimal integer: an optional '-' or '+', then 1 .. 19 digits,
 * nothing else (no spaces, no newline). Returns 0, or -1 if it is not one
 * or is outside the int64_t range. */
static int parse_i64(const char *p, size_t n, int64_t *out)
{
	size_t i = 0;
	int neg = 0;
	uint64_t v = 0, lim;

	if (n > 0 && (p[0] == '-' || p[0] == '+')) {
		neg = p[0] == '-';
		i = 1;
	}
	if (i == n)
		return -1;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (lim - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

/* Codes of the incr callback, returned by dskvs_update as they are. */
#define INCR_NOT_INT  (-1)
#define INCR_OVERFLOW (-2)

struct incr_arg {
	int64_t by;
	int64_t result;
	char out[24];
};

/* Runs under the collection's lock: quick, no writes to the store. */
static int incr_fn(const void *old, size_t old_len, int exists,
                   const void **new_val, size_t *new_len, void *arg)
{
	struct incr_arg *ia = arg;
	int64_t cur = 0;

	if (exists && parse_i64(old, old_len, &cur) != 0)
		return INCR_NOT_INT;
	if (__builtin_add_overflow(cur, ia->by, &ia->result))
		return INCR_OVERFLOW;
	snprintf(ia->out, sizeof(ia->out), "%lld", (long long)ia->result);
	*new_val = ia->out;
	*new_len = strlen(ia->out);
	return DSKVS_UPDATE_SET;
}

int cmd_incr(struct cmd_args *a)
{
	const char *key = a->pos[0];
	struct incr_arg ia = { .by = 1 };
	int r, st;

	if (a->npos == 2 &&
	    parse_i64(a->pos[1], strlen(a->pos[1]), &ia.by) != 0)
		return usagef("N must be a decimal integer in the 64-bit "
		              "signed range, not %s",
		              qs(a->pos[1]));
	st = store_open(1);
	if (st)
		return st;
	r = dskvs_update(cli.s, key, incr_fn, &ia, NULL);
	if (r == INCR_NOT_INT) {
		errorf("the value of %s is not a decimal integer; nothing was "
		       "changed",
		       qs(key));
		return store_close(ST_NOTINT);
	}
	if (r == INCR_OVERFLOW) {
		errorf("adding %lld to the value of %s leaves the 64-bit "
		       "signed range; nothing was changed",
		       (long long)ia.by, qs(key));
		return store_close(ST_NOTINT);
	}
	if (r != DSKVS_OK)
		return store_close(key_fail(r, key, 1, NULL));
	char line[32];
	int n = snprintf(line, sizeof(line), "%lld\n", (long long)ia.result);
	st = out_write(line, (size_t)n) == 0 ? ST_OK : ST_STORE;
	return store_close(st);
}

int cmd_del(struct cmd_args *a)
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

int cmd_delall(struct cmd_args *a)
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
                      size_t mlen, const void *val, size_t vlen, void *arg)
{
	struct getall_ctx *g = arg;

	g->line.len = 0;
	if (g->json) {
		dump_put_record(&g->line, key, klen, val, vlen);
	} else {
		text_put_escaped(&g->line, member, mlen);
		cbuf_putc(&g->line, '\t');
		text_put_escaped(&g->line, val, vlen);
		cbuf_putc(&g->line, '\n');
	}
	return out_write(g->line.p, g->line.len) ? ST_STORE : ST_OK;
}

int cmd_getall(struct cmd_args *a)
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

int cmd_ls(struct cmd_args *a)
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
