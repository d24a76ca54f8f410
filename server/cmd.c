/*
 * dskvs-server: the commands. Each behaves as Redis 7.0's does, reply for
 * reply and error string for error string, except where README.md
 * ("dskvs-server", the compatibility table) says otherwise.
 *
 * The mapping (README.md says it for users)
 * -----------------------------------------
 * A hash key K is the collection K; its fields are the members (binary:
 * the _bin calls). A string key with a '/' ("artist/daft_punk") is that
 * member of that collection. A string key K without '/' is the member K of
 * the reserved collection STRINGS_COLL. A hash key must be a valid
 * collection name: not empty, no '/', no NUL, at most DSKVS_NAME_MAX bytes,
 * and not STRINGS_COLL.
 *
 * Types: K is a hash when the collection K has a member; else a string
 * when STRINGS_COLL holds K; else absent. The type checks and the writes
 * are separate store calls, so a write command holds the type locks of its
 * keys from its check to its write (cmd_dispatch: 256 mutexes striped by
 * the key's name, the part before a '/'): HSET K and SET K racing from two
 * connections, on any loops, cannot both create K; exactly one wins, as in
 * Redis. "The hash wins" is what remains for a store written behind the
 * server's back (another process, or a shadowed string left by an older
 * server): K is then a hash for every command (TYPE, HGET, GET's
 * WRONGTYPE), and DEL K removes both.
 *
 * Every call runs on the connection's loop thread; a callback given to
 * dskvs_update or dskvs_get_with only appends to that connection's output
 * buffer or to its own context (quick, as those calls require).
 */
#include "server.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct str {
	const char *p;
	size_t n;
} str;

typedef struct ctx {
	conn *c;
	resp_out *o;
	str *a;
	size_t n;
} ctx;

#define SC       STRINGS_COLL, STRINGS_COLL_LEN
#define A(i)     (x->a[i])
#define IS(s, l) (streqi((s), (l)))

static int streqi(str s, const char *lit)
{
	size_t n = strlen(lit);
	return s.n == n && strncasecmp(s.p, lit, n) == 0;
}

static const char WRONGTYPE[] =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
static const char NOTINT[] = "ERR value is not an integer or out of range";
static const char SYNTAX[] = "ERR syntax error";

/* ---- glob matching (Redis's MATCH / KEYS patterns) -------------------- */

/* Match s against pattern p: '*', '?', '[...]' with '^' and ranges, and
 * '\' escapes. Iterative with one backtrack point per '*' (the last),
 * which is enough for glob semantics and bounds the work to
 * O(len(p) * len(s)). */
static int glob_class(const char **pp, const char *pe, unsigned char ch)
{
	const char *p = *pp; /* just after '[' */
	int neg = 0, hit = 0;
	if (p < pe && *p == '^') {
		neg = 1;
		p++;
	}
	while (p < pe && *p != ']') {
		if (*p == '\\' && p + 1 < pe) {
			p++;
			if ((unsigned char)*p == ch)
				hit = 1;
			p++;
		} else if (p + 2 < pe && p[1] == '-' && p[2] != ']') {
			unsigned char lo = (unsigned char)p[0],
			              hi = (unsigned char)p[2];
			if (lo > hi) {
				unsigned char t = lo;
				lo = hi;
				hi = t;
			}
			if (ch >= lo && ch <= hi)
				hit = 1;
			p += 3;
		} else {
			if ((unsigned char)*p == ch)
				hit = 1;
			p++;
		}
	}
	if (p < pe)
		p++; /* ']' */
	*pp = p;
	return neg ? !hit : hit;
}

static int glob_match(const char *p, size_t pl, const char *s, size_t sl)
{
	const char *pe = p + pl, *se = s + sl;
	const char *star_p = NULL, *star_s = NULL;
	while (s < se) {
		if (p < pe && *p == '*') {
			while (p < pe && *p == '*')
				p++;
			if (p == pe)
				return 1;
			star_p = p;
			star_s = s;
			continue;
		}
		if (p < pe) {
			const char *np = p;
			int ok;
			if (*p == '?') {
				ok = 1;
				np = p + 1;
			} else if (*p == '[') {
				np = p + 1;
				ok = glob_class(&np, pe, (unsigned char)*s);
			} else if (*p == '\\' && p + 1 < pe) {
				ok = p[1] == *s;
				np = p + 2;
			} else {
				ok = *p == *s;
				np = p + 1;
			}
			if (ok) {
				p = np;
				s++;
				continue;
			}
		}
		if (star_p == NULL)
			return 0;
		p = star_p;
		s = ++star_s;
	}
	while (p < pe && *p == '*')
		p++;
	return p == pe;
}

/* ---- keys and types ---------------------------------------------------- */

/* Reply an error and return -1 unless k is a valid hash key. */
static int hkey_ok(ctx *x, str k)
{
	if (k.n == 0)
		resp_error(x->o, "ERR dskvs-server: a hash key cannot be "
		                 "empty");
	else if (memchr(k.p, '/', k.n))
		resp_error(x->o, "ERR dskvs-server: a hash key cannot contain "
		                 "'/' (it separates a collection from its "
		                 "member)");
	else if (memchr(k.p, '\0', k.n))
		resp_error(x->o, "ERR dskvs-server: a hash key cannot contain "
		                 "a NUL byte");
	else if (k.n > DSKVS_NAME_MAX)
		resp_error(x->o, "ERR dskvs-server: key longer than %u bytes",
		           DSKVS_NAME_MAX);
	else if (k.n == STRINGS_COLL_LEN && !memcmp(k.p, SC))
		resp_error(x->o,
		           "ERR dskvs-server: the key %s is reserved "
		           "for string keys",
		           STRINGS_COLL);
	else
		return 0;
	return -1;
}

static int field_ok(ctx *x, str f)
{
	if (f.n > DSKVS_NAME_MAX) {
		resp_error(x->o, "ERR dskvs-server: field longer than %u bytes",
		           DSKVS_NAME_MAX);
		return -1;
	}
	return 0;
}

/* Where a string key lives. */
typedef struct skey {
	const char *coll;
	size_t clen;
	const char *mem;
	size_t mlen;
	int bare; /* no '/': in STRINGS_COLL */
} skey;

static int skey_map(ctx *x, str k, skey *out)
{
	const char *sl = memchr(k.p, '/', k.n);
	if (sl == NULL) {
		if (k.n > DSKVS_NAME_MAX) {
			resp_error(x->o,
			           "ERR dskvs-server: key longer than "
			           "%u bytes",
			           DSKVS_NAME_MAX);
			return -1;
		}
		*out = (skey){ SC, k.p, k.n, 1 };
		return 0;
	}
	str coll = { k.p, (size_t)(sl - k.p) };
	if (coll.n == 0) {
		resp_error(x->o, "ERR dskvs-server: a key cannot start with "
		                 "'/' (the collection before it is empty)");
		return -1;
	}
	if (hkey_ok(x, coll) < 0)
		return -1;
	str mem = { sl + 1, k.n - coll.n - 1 };
	if (field_ok(x, mem) < 0)
		return -1;
	*out = (skey){ coll.p, coll.n, mem.p, mem.n, 0 };
	return 0;
}

static int stop_cb(const char *m, size_t ml, const void *v, size_t vl,
                   void *arg)
{
	(void)m, (void)ml, (void)v, (void)vl, (void)arg;
	return 1;
}

/* The collection k has a member. */
static int hash_exists(const char *k, size_t n)
{
	if (n == 0 || n > DSKVS_NAME_MAX || memchr(k, '/', n) ||
	    memchr(k, '\0', n))
		return 0;
	return dskvs_get_all_bin(srv.store, k, n, stop_cb, NULL) == 1;
}

static int member_exists(const char *coll, size_t clen, const void *m,
                         size_t ml)
{
	size_t len;
	int rc =
	    dskvs_get_bin(srv.store, coll, clen, m, ml, NULL, 0, &len, NULL);
	return rc == DSKVS_OK || rc == DSKVS_ERANGE;
}

static int string_exists(const char *k, size_t n)
{
	if (n > DSKVS_NAME_MAX)
		return 0;
	return member_exists(SC, k, n);
}

/* Before a hash write to K: WRONGTYPE when K is a string (and not a hash,
 * which wins). Returns -1 after replying. */
static int hash_write_ok(ctx *x, str k)
{
	if (string_exists(k.p, k.n) && !hash_exists(k.p, k.n)) {
		resp_error(x->o, "%s", WRONGTYPE);
		return -1;
	}
	return 0;
}

/* After a hash read found nothing: WRONGTYPE when K is a string. */
static int hash_missing_is_string(ctx *x, str k)
{
	if (string_exists(k.p, k.n) && !hash_exists(k.p, k.n)) {
		resp_error(x->o, "%s", WRONGTYPE);
		return 1;
	}
	return 0;
}

/* Before a string command on sk: WRONGTYPE when the key is a hash (bare
 * key naming a collection), or when a "coll/member" key's collection is a
 * string key. */
static int string_type_ok(ctx *x, const skey *sk)
{
	if (sk->bare ? hash_exists(sk->mem, sk->mlen)
	             : (string_exists(sk->coll, sk->clen) &&
	                !hash_exists(sk->coll, sk->clen))) {
		resp_error(x->o, "%s", WRONGTYPE);
		return -1;
	}
	return 0;
}

static void note_seq(ctx *x, uint64_t seq)
{
	if (seq > x->c->last_seq)
		x->c->last_seq = seq;
}

/* A store error as a reply. */
static void store_err(ctx *x, int rc)
{
	switch (rc) {
	case DSKVS_ETOOBIG:
		resp_error(x->o,
		           "ERR dskvs-server: name or value over the "
		           "store's limits (names %u bytes, values %u "
		           "bytes)",
		           DSKVS_NAME_MAX, DSKVS_VALUE_MAX);
		break;
	case DSKVS_EBATCH:
		resp_error(x->o, "ERR dskvs-server: too many fields or bytes "
		                 "for one atomic write (see the store's batch "
		                 "limits)");
		break;
	case DSKVS_ENOMEM:
		resp_error(x->o, "OOM command not allowed: out of memory");
		break;
	case DSKVS_EIO:
		resp_error(x->o,
		           "MISCONF dskvs-server: the store cannot "
		           "persist writes (%s)",
		           dskvs_errmsg(NULL));
		break;
	default:
		resp_error(x->o, "ERR dskvs-server: %s (%s)",
		           dskvs_strerror(rc), dskvs_err_name(rc));
	}
}

/* dskvs_get_with callback: the value as a bulk, written straight from the
 * store into the output buffer. */
static int bulk_cb(const void *val, size_t len, void *arg)
{
	resp_out *o = arg;
	char *d = resp_bulk_reserve(o, len);
	if (d != NULL && len)
		memcpy(d, val, len);
	return DSKVS_OK;
}

static int get_ll(ctx *x, str s, long long *v)
{
	if (!resp_str2ll(s.p, s.n, v)) {
		resp_error(x->o, "%s", NOTINT);
		return -1;
	}
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	const str *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = n ? memcmp(x->p, y->p, n) : 0;
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* How many distinct fields of fs[0..n) exist (present = 1) or are absent
 * (present = 0) in hash k now. Sorts fs. */
static long long count_distinct(str k, str *fs, size_t n, int present)
{
	qsort(fs, n, sizeof(*fs), str_cmp);
	long long cnt = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && str_cmp(&fs[i - 1], &fs[i]) == 0)
			continue;
		if (member_exists(k.p, k.n, fs[i].p, fs[i].n) == present)
			cnt++;
	}
	return cnt;
}

/* ---- hashes ------------------------------------------------------------ */

struct hset1 {
	const void *val;
	size_t len;
	int existed;
};

static int hset1_cb(const void *old, size_t old_len, int exists,
                    const void **nv, size_t *nl, void *arg)
{
	(void)old, (void)old_len;
	struct hset1 *h = arg;
	h->existed = exists;
	*nv = h->val;
	*nl = h->len;
	return DSKVS_UPDATE_SET;
}

/* HSET / HMSET: fields from argv[2], pairs. Returns new fields, or -1
 * after replying an error. */
static long long do_hset(ctx *x)
{
	str k = A(1);
	if (hkey_ok(x, k) < 0 || hash_write_ok(x, k) < 0)
		return -1;
	size_t pairs = (x->n - 2) / 2;
	for (size_t i = 0; i < pairs; i++)
		if (field_ok(x, A(2 + 2 * i)) < 0)
			return -1;
	uint64_t seq = 0;
	int rc;
	if (pairs == 1) {
		struct hset1 h = { A(3).p, A(3).n, 0 };
		rc = dskvs_update_bin(srv.store, k.p, k.n, A(2).p, A(2).n,
		                      hset1_cb, &h, &seq);
		if (rc != DSKVS_OK) {
			store_err(x, rc);
			return -1;
		}
		note_seq(x, seq);
		return !h.existed;
	}
	/* Several fields: one atomic batch. The count of new fields is
	 * taken just before it (exact unless another client writes the same
	 * fields meanwhile). */
	dskvs_batch_op_bin *ops = calloc(pairs, sizeof(*ops));
	if (ops == NULL) {
		store_err(x, DSKVS_ENOMEM);
		return -1;
	}
	str *fs = malloc(pairs * sizeof(*fs));
	if (fs == NULL) {
		free(ops);
		store_err(x, DSKVS_ENOMEM);
		return -1;
	}
	for (size_t i = 0; i < pairs; i++) {
		str f = A(2 + 2 * i), v = A(3 + 2 * i);
		ops[i] = (dskvs_batch_op_bin){ f.p, f.n, v.p, v.n, 0 };
		fs[i] = f;
	}
	long long added = count_distinct(k, fs, pairs, 0);
	free(fs);
	rc = dskvs_write_batch_bin(srv.store, k.p, k.n, ops, pairs, &seq);
	free(ops);
	if (rc != DSKVS_OK) {
		store_err(x, rc);
		return -1;
	}
	note_seq(x, seq);
	return added;
}

static void c_hset(ctx *x)
{
	if (x->n % 2) {
		resp_error(x->o, "ERR wrong number of arguments for 'hset' "
		                 "command");
		return;
	}
	long long n = do_hset(x);
	if (n >= 0)
		resp_int(x->o, n);
}

static void c_hmset(ctx *x)
{
	if (x->n % 2) {
		resp_error(x->o, "ERR wrong number of arguments for 'hmset' "
		                 "command");
		return;
	}
	if (do_hset(x) >= 0)
		resp_simple(x->o, "OK");
}

/* The reply of HSETNX and SETNX to dskvs_put_if_absent's rc: 1 when it
 * wrote (and the write's seq for WAITAOF), 0 when the member existed. */
static void reply_if_absent(ctx *x, int rc, uint64_t seq)
{
	if (rc == DSKVS_EEXIST) {
		resp_int(x->o, 0);
	} else if (rc == DSKVS_OK) {
		note_seq(x, seq);
		resp_int(x->o, 1);
	} else {
		store_err(x, rc);
	}
}

static void c_hsetnx(ctx *x)
{
	str k = A(1);
	if (hkey_ok(x, k) < 0 || field_ok(x, A(2)) < 0 ||
	    hash_write_ok(x, k) < 0)
		return;
	uint64_t seq;
	int rc = dskvs_put_if_absent_bin(srv.store, k.p, k.n, A(2).p, A(2).n,
	                                 A(3).p, A(3).n, &seq);
	reply_if_absent(x, rc, seq);
}

/* One field's value as a bulk, or null; 1 if found. */
static int hget_one(ctx *x, str k, str f)
{
	if (f.n > DSKVS_NAME_MAX) {
		resp_null(x->o);
		return 0;
	}
	int rc =
	    dskvs_get_with_bin(srv.store, k.p, k.n, f.p, f.n, bulk_cb, x->o);
	if (rc == DSKVS_OK)
		return 1;
	resp_null(x->o);
	return 0;
}

static void c_hget(ctx *x)
{
	str k = A(1);
	if (hkey_ok(x, k) < 0)
		return;
	size_t mark = x->o->len;
	if (hget_one(x, k, A(2))) {
		stat_add(&x->c->stats->hits, 1);
		return;
	}
	stat_add(&x->c->stats->misses, 1);
	if (string_exists(k.p, k.n) && !hash_exists(k.p, k.n)) {
		x->o->len = mark;
		resp_error(x->o, "%s", WRONGTYPE);
	}
}

static void c_hmget(ctx *x)
{
	str k = A(1);
	if (hkey_ok(x, k) < 0)
		return;
	if (!hash_exists(k.p, k.n) && hash_missing_is_string(x, k))
		return;
	resp_array(x->o, x->n - 2);
	for (size_t i = 2; i < x->n; i++)
		hget_one(x, k, A(i));
}

/* Walk a hash into the reply. */
struct walk {
	resp_out *o;
	int what; /* 1 fields, 2 values, 3 both */
	size_t count;
	const char *pat;
	size_t patlen;
};

static int walk_cb(const char *m, size_t ml, const void *v, size_t vl,
                   void *arg)
{
	struct walk *w = arg;
	if (w->pat && !glob_match(w->pat, w->patlen, m, ml))
		return 0;
	if (w->what & 1)
		resp_bulk(w->o, m, ml);
	if (w->what & 2)
		resp_bulk(w->o, v, vl);
	w->count++;
	return 0;
}

static int count_cb(const char *m, size_t ml, const void *v, size_t vl,
                    void *arg)
{
	(void)m, (void)ml, (void)v, (void)vl;
	(*(size_t *)arg)++;
	return 0;
}

/* Walk hash k's elements into w's scratch buffer (none unless `walk`), for
 * a reply whose header count is known only at the end. -1 after replying
 * an error (the scratch freed): the store's, or WRONGTYPE when nothing was
 * found and k is a string. */
static int hash_gather(ctx *x, str k, struct walk *w, int walk)
{
	int rc = walk ? dskvs_get_all_bin(srv.store, k.p, k.n, walk_cb, w)
	              : DSKVS_OK;
	if (rc != DSKVS_OK || w->o->oom) {
		resp_out_free(w->o);
		store_err(x, rc != DSKVS_OK ? rc : DSKVS_ENOMEM);
		return -1;
	}
	if (w->count == 0 && hash_missing_is_string(x, k)) {
		resp_out_free(w->o);
		return -1;
	}
	return 0;
}

static void hash_walk_reply(ctx *x, str k, int what, int as_map)
{
	if (hkey_ok(x, k) < 0)
		return;
	resp_out tmp = { .proto = x->o->proto };
	struct walk w = { &tmp, what, 0, NULL, 0 };
	if (hash_gather(x, k, &w, 1) < 0)
		return;
	if (as_map)
		resp_map(x->o, w.count);
	else
		resp_array(x->o, w.count);
	resp_raw(x->o, tmp.buf, tmp.len);
	resp_out_free(&tmp);
}

static void c_hgetall(ctx *x)
{
	hash_walk_reply(x, A(1), 3, 1);
}
static void c_hkeys(ctx *x)
{
	hash_walk_reply(x, A(1), 1, 0);
}
static void c_hvals(ctx *x)
{
	hash_walk_reply(x, A(1), 2, 0);
}

static void c_hlen(ctx *x)
{
	str k = A(1);
	if (hkey_ok(x, k) < 0)
		return;
	size_t n = 0;
	int rc = dskvs_get_all_bin(srv.store, k.p, k.n, count_cb, &n);
	if (rc != DSKVS_OK) {
		store_err(x, rc);
		return;
	}
	if (n == 0 && hash_missing_is_string(x, k))
		return;
	resp_int(x->o, (long long)n);
}

static void c_hexists(ctx *x)
{
	str k = A(1), f = A(2);
	if (hkey_ok(x, k) < 0)
		return;
	int e = f.n <= DSKVS_NAME_MAX && member_exists(k.p, k.n, f.p, f.n);
	if (!e && hash_missing_is_string(x, k))
		return;
	resp_int(x->o, e);
}

static void c_hstrlen(ctx *x)
{
	str k = A(1), f = A(2);
	if (hkey_ok(x, k) < 0)
		return;
	size_t len = 0;
	int rc = f.n > DSKVS_NAME_MAX ? DSKVS_NOTFOUND
	                              : dskvs_get_bin(srv.store, k.p, k.n, f.p,
	                                              f.n, NULL, 0, &len, NULL);
	if (rc == DSKVS_OK || rc == DSKVS_ERANGE) {
		resp_int(x->o, (long long)len);
		return;
	}
	if (!hash_missing_is_string(x, k))
		resp_int(x->o, 0);
}

static void c_hdel(ctx *x)
{
	str k = A(1);
	if (hkey_ok(x, k) < 0)
		return;
	size_t nf = x->n - 2;
	uint64_t seq = 0;
	if (nf == 1) {
		str f = A(2);
		int rc =
		    f.n > DSKVS_NAME_MAX
		        ? DSKVS_NOTFOUND
		        : dskvs_delete_bin(srv.store, k.p, k.n, f.p, f.n, &seq);
		if (rc == DSKVS_OK) {
			note_seq(x, seq);
			resp_int(x->o, 1);
		} else if (rc == DSKVS_NOTFOUND) {
			if (!hash_missing_is_string(x, k))
				resp_int(x->o, 0);
		} else {
			store_err(x, rc);
		}
		return;
	}
	/* Several: one batch; the count is of the distinct fields present
	 * just before it. */
	dskvs_batch_op_bin *ops = calloc(nf, sizeof(*ops));
	if (ops == NULL) {
		store_err(x, DSKVS_ENOMEM);
		return;
	}
	str *fs = malloc(nf * sizeof(*fs));
	if (fs == NULL) {
		free(ops);
		store_err(x, DSKVS_ENOMEM);
		return;
	}
	size_t m = 0;
	for (size_t i = 0; i < nf; i++) {
		str f = A(2 + i);
		if (f.n > DSKVS_NAME_MAX)
			continue;
		ops[m] = (dskvs_batch_op_bin){ f.p, f.n, NULL, 0, 1 };
		fs[m++] = f;
	}
	long long gone = count_distinct(k, fs, m, 1);
	free(fs);
	if (gone == 0)
		m = 0;
	int rc = m ? dskvs_write_batch_bin(srv.store, k.p, k.n, ops, m, &seq)
	           : DSKVS_OK;
	free(ops);
	if (rc != DSKVS_OK) {
		store_err(x, rc);
		return;
	}
	if (m == 0 && hash_missing_is_string(x, k))
		return;
	note_seq(x, seq);
	resp_int(x->o, gone);
}

/* Numeric read-modify-write of a hash field or a string. */
struct incr {
	int is_float;
	long long by;
	long double byf;
	int err; /* 1 not a number, 2 overflow, 3 nan/inf */
	long long result;
	char buf[5200];
	size_t blen;
};

static int incr_cb(const void *old, size_t old_len, int exists, const void **nv,
                   size_t *nl, void *arg)
{
	struct incr *in = arg;
	if (in->is_float) {
		long double v = 0;
		if (exists && !resp_str2ld(old, old_len, &v)) {
			in->err = 1;
			return DSKVS_UPDATE_KEEP;
		}
		v += in->byf;
		if (isnan(v) || isinf(v)) {
			in->err = 3;
			return DSKVS_UPDATE_KEEP;
		}
		int l = resp_ld2str(in->buf, sizeof(in->buf), v);
		if (l == 0) {
			in->err = 3;
			return DSKVS_UPDATE_KEEP;
		}
		in->blen = (size_t)l;
	} else {
		long long v = 0;
		if (exists && !resp_str2ll(old, old_len, &v)) {
			in->err = 1;
			return DSKVS_UPDATE_KEEP;
		}
		if ((in->by < 0 && v < 0 && in->by < LLONG_MIN - v) ||
		    (in->by > 0 && v > 0 && in->by > LLONG_MAX - v)) {
			in->err = 2;
			return DSKVS_UPDATE_KEEP;
		}
		v += in->by;
		in->result = v;
		in->blen = (size_t)resp_ll2str(in->buf, v);
	}
	*nv = in->buf;
	*nl = in->blen;
	return DSKVS_UPDATE_SET;
}

static void incr_run(ctx *x, const char *coll, size_t clen, const void *m,
                     size_t ml, struct incr *in, int hash)
{
	uint64_t seq = 0;
	int rc =
	    dskvs_update_bin(srv.store, coll, clen, m, ml, incr_cb, in, &seq);
	if (rc != DSKVS_OK) {
		store_err(x, rc);
		return;
	}
	if (in->err == 1) {
		if (in->is_float)
			resp_error(x->o,
			           hash ? "ERR hash value is not a float"
			                : "ERR value is not a valid float");
		else
			resp_error(x->o,
			           hash ? "ERR hash value is not an "
			                  "integer"
			                : "%s",
			           NOTINT);
		return;
	}
	if (in->err == 2) {
		resp_error(x->o, "ERR increment or decrement would overflow");
		return;
	}
	if (in->err == 3) {
		resp_error(x->o, "ERR increment would produce NaN or Infinity");
		return;
	}
	note_seq(x, seq);
	if (in->is_float)
		resp_bulk(x->o, in->buf, in->blen);
	else
		resp_int(x->o, in->result);
}

static void c_hincrby(ctx *x)
{
	str k = A(1);
	struct incr *in = calloc(1, sizeof(*in));
	if (in == NULL) {
		store_err(x, DSKVS_ENOMEM);
		return;
	}
	if (get_ll(x, A(3), &in->by) == 0 && hkey_ok(x, k) == 0 &&
	    field_ok(x, A(2)) == 0 && hash_write_ok(x, k) == 0)
		incr_run(x, k.p, k.n, A(2).p, A(2).n, in, 1);
	free(in);
}

static void c_hincrbyfloat(ctx *x)
{
	str k = A(1);
	struct incr *in = calloc(1, sizeof(*in));
	if (in == NULL) {
		store_err(x, DSKVS_ENOMEM);
		return;
	}
	in->is_float = 1;
	if (!resp_str2ld(A(3).p, A(3).n, &in->byf)) {
		resp_error(x->o, "ERR value is not a valid float");
	} else if (isinf(in->byf)) {
		resp_error(x->o, "ERR value is NaN or Infinity");
	} else if (hkey_ok(x, k) == 0 && field_ok(x, A(2)) == 0 &&
	           hash_write_ok(x, k) == 0) {
		incr_run(x, k.p, k.n, A(2).p, A(2).n, in, 1);
	}
	free(in);
}

/* HRANDFIELD: the fields (and values) gathered, then picked. */
struct fv {
	char *m;
	size_t ml;
	char *v;
	size_t vl;
};
struct fvs {
	struct fv *e;
	size_t n, cap;
	int oom;
	int values;
};

static int gather_cb(const char *m, size_t ml, const void *v, size_t vl,
                     void *arg)
{
	struct fvs *g = arg;
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 16;
		struct fv *e = realloc(g->e, nc * sizeof(*e));
		if (e == NULL) {
			g->oom = 1;
			return 1;
		}
		g->e = e;
		g->cap = nc;
	}
	struct fv *f = &g->e[g->n];
	f->m = malloc(ml + 1);
	f->v = g->values ? malloc(vl + 1) : NULL;
	if (f->m == NULL || (g->values && f->v == NULL)) {
		free(f->m);
		free(f->v);
		g->oom = 1;
		return 1;
	}
	memcpy(f->m, m, ml);
	f->ml = ml;
	if (g->values) {
		memcpy(f->v, v, vl);
		f->vl = vl;
	}
	g->n++;
	return 0;
}

static void fvs_free(struct fvs *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->e[i].m);
		free(g->e[i].v);
	}
	free(g->e);
}

static uint64_t rng_next(void)
{
	static __thread uint64_t s;
	if (s == 0)
		s = (uint64_t)now_ms() * 0x9E3779B97F4A7C15ull ^
		    (uint64_t)(uintptr_t)&s;
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

static void emit_fv(ctx *x, const struct fv *f, int withvalues)
{
	if (withvalues && x->o->proto >= 3)
		resp_array(x->o, 2);
	resp_bulk(x->o, f->m, f->ml);
	if (withvalues)
		resp_bulk(x->o, f->v, f->vl);
}

static void c_hrandfield(ctx *x)
{
	str k = A(1);
	long long count = 0;
	int have_count = x->n >= 3, withvalues = 0;
	if (x->n > 4 || (x->n == 4 && !IS(A(3), "withvalues"))) {
		resp_error(x->o, "%s", SYNTAX);
		return;
	}
	withvalues = x->n == 4;
	if (have_count) {
		if (get_ll(x, A(2), &count) < 0)
			return;
		if (count <= -LLONG_MAX ||
		    (withvalues && count < -LLONG_MAX / 2)) {
			resp_error(x->o, "ERR value is out of range");
			return;
		}
	}
	if (hkey_ok(x, k) < 0)
		return;
	struct fvs g = { .values = withvalues };
	int rc = dskvs_get_all_bin(srv.store, k.p, k.n, gather_cb, &g);
	if (rc != DSKVS_OK || g.oom) {
		fvs_free(&g);
		store_err(x, rc != DSKVS_OK ? rc : DSKVS_ENOMEM);
		return;
	}
	if (g.n == 0) {
		fvs_free(&g);
		if (hash_missing_is_string(x, k))
			return;
		if (have_count)
			resp_array(x->o, 0);
		else
			resp_null(x->o);
		return;
	}
	if (!have_count) {
		emit_fv(x, &g.e[rng_next() % g.n], 0);
	} else if (count == 0) {
		resp_array(x->o, 0);
	} else if (count < 0) {
		unsigned long long m = (unsigned long long)(-count);
		resp_array(x->o, withvalues && x->o->proto < 3 ? 2 * m : m);
		for (unsigned long long i = 0; i < m && !x->o->oom; i++)
			emit_fv(x, &g.e[rng_next() % g.n], withvalues);
	} else {
		size_t m =
		    (unsigned long long)count < g.n ? (size_t)count : g.n;
		/* A partial Fisher-Yates shuffle picks m distinct. */
		for (size_t i = 0; i < m; i++) {
			size_t j = i + (size_t)(rng_next() % (g.n - i));
			struct fv t = g.e[i];
			g.e[i] = g.e[j];
			g.e[j] = t;
		}
		resp_array(x->o, withvalues && x->o->proto < 3 ? 2 * m : m);
		for (size_t i = 0; i < m; i++)
			emit_fv(x, &g.e[i], withvalues);
	}
	fvs_free(&g);
}

/* SCAN-style options: MATCH, COUNT (checked, unused: one page), TYPE. */
static int scan_opts(ctx *x, size_t from, str *match, str *type)
{
	match->p = NULL;
	if (type != NULL)
		type->p = NULL;
	for (size_t i = from; i < x->n; i++) {
		if (i + 1 >= x->n) {
			resp_error(x->o, "%s", SYNTAX);
			return -1;
		}
		if (IS(A(i), "match")) {
			*match = A(++i);
		} else if (IS(A(i), "count")) {
			long long n;
			if (get_ll(x, A(++i), &n) < 0)
				return -1;
			if (n < 1) {
				resp_error(x->o, "%s", SYNTAX);
				return -1;
			}
		} else if (IS(A(i), "type") && type != NULL) {
			*type = A(++i);
		} else {
			resp_error(x->o, "%s", SYNTAX);
			return -1;
		}
	}
	return 0;
}

static int scan_cursor(ctx *x, str s, unsigned long long *cur)
{
	char buf[32];
	char *end;
	if (s.n == 0 || s.n >= sizeof(buf) || !isdigit((unsigned char)s.p[0]))
		goto bad;
	memcpy(buf, s.p, s.n);
	buf[s.n] = '\0';
	errno = 0;
	*cur = strtoull(buf, &end, 10);
	if (errno || *end)
		goto bad;
	return 0;
bad:
	resp_error(x->o, "ERR invalid cursor");
	return -1;
}

static void c_hscan(ctx *x)
{
	str k = A(1), match;
	unsigned long long cur;
	if (scan_cursor(x, A(2), &cur) < 0 ||
	    scan_opts(x, 3, &match, NULL) < 0 || hkey_ok(x, k) < 0)
		return;
	resp_out tmp = { .proto = x->o->proto };
	struct walk w = { &tmp, 3, 0, match.p, match.n };
	/* One page: any cursor but 0 is past the end. */
	if (hash_gather(x, k, &w, cur == 0) < 0)
		return;
	resp_array(x->o, 2);
	resp_bulk(x->o, "0", 1);
	resp_array(x->o, 2 * w.count);
	resp_raw(x->o, tmp.buf, tmp.len);
	resp_out_free(&tmp);
}

/* ---- the key space ----------------------------------------------------- */

struct names {
	str *v;
	size_t n, cap;
	int oom;
};

static int names_add(struct names *ns, const char *p, size_t n)
{
	if (ns->n == ns->cap) {
		size_t nc = ns->cap ? ns->cap * 2 : 64;
		str *v = realloc(ns->v, nc * sizeof(*v));
		if (v == NULL)
			return ns->oom = 1;
		ns->v = v;
		ns->cap = nc;
	}
	char *c = malloc(n + 1);
	if (c == NULL)
		return ns->oom = 1;
	memcpy(c, p, n);
	c[n] = '\0';
	ns->v[ns->n++] = (str){ c, n };
	return 0;
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free((char *)ns->v[i].p);
	free(ns->v);
}

static int coll_cb(const char *name, size_t nl, uint64_t members, uint64_t vb,
                   void *arg)
{
	(void)vb;
	if (members == 0 || (nl == STRINGS_COLL_LEN && !memcmp(name, SC)))
		return 0;
	return names_add(arg, name, nl);
}

static int str_cb(const char *m, size_t ml, const void *v, size_t vl, void *arg)
{
	(void)v, (void)vl;
	return names_add(arg, m, ml);
}

/* Every key: hashes in h (sorted), strings not shadowed by a hash in s.
 * Returns 0, or -1 after replying an error. */
static int all_keys(ctx *x, struct names *h, struct names *s)
{
	*h = (struct names){ 0 };
	*s = (struct names){ 0 };
	int rc = dskvs_list_collections(srv.store, coll_cb, h);
	if (rc == DSKVS_OK)
		rc = dskvs_get_all_bin(srv.store, SC, str_cb, s);
	if (rc != DSKVS_OK || h->oom || s->oom) {
		names_free(h);
		names_free(s);
		store_err(x, rc != DSKVS_OK && rc != 1 ? rc : DSKVS_ENOMEM);
		return -1;
	}
	if (h->n > 1)
		qsort(h->v, h->n, sizeof(str), str_cmp);
	size_t w = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (h->n && bsearch(&s->v[i], h->v, h->n, sizeof(str), str_cmp))
			free((char *)s->v[i].p);
		else
			s->v[w++] = s->v[i];
	}
	s->n = w;
	return 0;
}

static void keys_reply(ctx *x, str match, str type, int scan)
{
	struct names h, s;
	if (all_keys(x, &h, &s) < 0)
		return;
	int want_h = 1, want_s = 1;
	if (type.p) {
		want_h = IS(type, "hash");
		want_s = IS(type, "string");
	}
	size_t n = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			if (scan) {
				resp_array(x->o, 2);
				resp_bulk(x->o, "0", 1);
			}
			resp_array(x->o, n);
		}
		for (int t = 0; t < 2; t++) {
			struct names *ns = t ? &s : &h;
			if (!(t ? want_s : want_h))
				continue;
			for (size_t i = 0; i < ns->n; i++) {
				str k = ns->v[i];
				if (match.p &&
				    !glob_match(match.p, match.n, k.p, k.n))
					continue;
				if (pass == 0)
					n++;
				else
					resp_bulk(x->o, k.p, k.n);
			}
		}
	}
	names_free(&h);
	names_free(&s);
}

static void c_keys(ctx *x)
{
	str none = { NULL, 0 };
	keys_reply(x, A(1), none, 0);
}

static void c_scan(ctx *x)
{
	unsigned long long cur;
	str match, type;
	if (scan_cursor(x, A(1), &cur) < 0 ||
	    scan_opts(x, 2, &match, &type) < 0)
		return;
	if (cur != 0) {
		resp_array(x->o, 2);
		resp_bulk(x->o, "0", 1);
		resp_array(x->o, 0);
		return;
	}
	keys_reply(x, match, type, 1);
}

static long long dbsize(ctx *x)
{
	struct names h, s;
	if (all_keys(x, &h, &s) < 0)
		return -1;
	long long n = (long long)(h.n + s.n);
	names_free(&h);
	names_free(&s);
	return n;
}

static void c_dbsize(ctx *x)
{
	long long n = dbsize(x);
	if (n >= 0)
		resp_int(x->o, n);
}

static int flush_cb(const char *name, size_t nl, uint64_t members, uint64_t vb,
                    void *arg)
{
	(void)members, (void)vb;
	return names_add(arg, name, nl);
}

static void c_flushdb(ctx *x)
{
	if (x->n > 2 ||
	    (x->n == 2 && !IS(A(1), "async") && !IS(A(1), "sync"))) {
		resp_error(x->o, "%s", SYNTAX);
		return;
	}
	struct names ns = { 0 };
	int rc = dskvs_list_collections(srv.store, flush_cb, &ns);
	if (rc != DSKVS_OK || ns.oom) {
		names_free(&ns);
		store_err(x, rc != DSKVS_OK && rc != 1 ? rc : DSKVS_ENOMEM);
		return;
	}
	for (size_t i = 0; i < ns.n; i++) {
		uint64_t seq = 0;
		rc =
		    dskvs_delete_all_bin(srv.store, ns.v[i].p, ns.v[i].n, &seq);
		if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND) {
			names_free(&ns);
			store_err(x, rc);
			return;
		}
		note_seq(x, seq);
	}
	names_free(&ns);
	resp_simple(x->o, "OK");
}

/* Delete one key of any type; 1 if something was there. */
static int del_key(ctx *x, str k, int *err)
{
	skey sk;
	uint64_t seq = 0;
	const char *sl = memchr(k.p, '/', k.n);
	int hit = 0, rc;
	if (sl == NULL) {
		if (k.n > DSKVS_NAME_MAX)
			return 0;
		if (hash_exists(k.p, k.n)) {
			rc = dskvs_delete_all_bin(srv.store, k.p, k.n, &seq);
			if (rc == DSKVS_OK)
				hit = 1, note_seq(x, seq);
			else if (rc != DSKVS_NOTFOUND)
				return *err = rc, 0;
		}
		rc = dskvs_delete_bin(srv.store, SC, k.p, k.n, &seq);
		if (rc == DSKVS_OK)
			hit = 1, note_seq(x, seq);
		else if (rc != DSKVS_NOTFOUND)
			return *err = rc, 0;
		return hit;
	}
	resp_out scratch = { .proto = 2 };
	ctx y = { x->c, &scratch, NULL, 0 };
	if (skey_map(&y, k, &sk) < 0) {
		resp_out_free(&scratch);
		return 0; /* a key that cannot exist */
	}
	rc = dskvs_delete_bin(srv.store, sk.coll, sk.clen, sk.mem, sk.mlen,
	                      &seq);
	if (rc == DSKVS_OK)
		return note_seq(x, seq), 1;
	if (rc != DSKVS_NOTFOUND)
		*err = rc;
	return 0;
}

static void c_del(ctx *x)
{
	long long n = 0;
	int err = 0;
	for (size_t i = 1; i < x->n && !err; i++)
		n += del_key(x, A(i), &err);
	if (err)
		store_err(x, err);
	else
		resp_int(x->o, n);
}

/* The type of a key: 0 none, 1 string, 2 hash. */
static int key_type(ctx *x, str k)
{
	const char *sl = memchr(k.p, '/', k.n);
	if (sl == NULL) {
		if (hash_exists(k.p, k.n))
			return 2;
		return string_exists(k.p, k.n) ? 1 : 0;
	}
	skey sk;
	resp_out scratch = { .proto = 2 };
	ctx y = { x->c, &scratch, NULL, 0 };
	int ok = skey_map(&y, k, &sk) == 0;
	resp_out_free(&scratch);
	return ok && member_exists(sk.coll, sk.clen, sk.mem, sk.mlen) ? 1 : 0;
}

static void c_exists(ctx *x)
{
	long long n = 0;
	for (size_t i = 1; i < x->n; i++)
		n += key_type(x, A(i)) != 0;
	resp_int(x->o, n);
}

static void c_type(ctx *x)
{
	static const char *names[] = { "none", "string", "hash" };
	resp_simple(x->o, names[key_type(x, A(1))]);
}

static void c_memory(ctx *x)
{
	if (IS(A(1), "usage")) {
		if (x->n != 3 && !(x->n == 5 && IS(A(3), "samples"))) {
			resp_error(x->o, "%s", SYNTAX);
			return;
		}
		str k = A(2);
		int t = key_type(x, k);
		if (t == 0) {
			resp_null(x->o);
			return;
		}
		long long bytes = 64 + (long long)k.n;
		if (t == 2) {
			resp_out tmp = { .proto = 2 };
			struct walk w = { &tmp, 3, 0, NULL, 0 };
			dskvs_get_all_bin(srv.store, k.p, k.n, walk_cb, &w);
			bytes += (long long)tmp.len;
			resp_out_free(&tmp);
		} else {
			resp_out tmp = { .proto = 2 };
			skey sk;
			ctx y = { x->c, &tmp, NULL, 0 };
			if (skey_map(&y, k, &sk) == 0)
				dskvs_get_with_bin(srv.store, sk.coll, sk.clen,
				                   sk.mem, sk.mlen, bulk_cb,
				                   &tmp);
			bytes += (long long)tmp.len;
			resp_out_free(&tmp);
		}
		resp_int(x->o, bytes);
		return;
	}
	resp_error(x->o, "ERR unknown subcommand '%.*s'. Try MEMORY HELP.",
	           (int)(A(1).n > 128 ? 128 : A(1).n), A(1).p);
}

/* ---- strings ----------------------------------------------------------- */

static int skey_get(ctx *x, str k, skey *sk)
{
	return skey_map(x, k, sk) < 0 || string_type_ok(x, sk) < 0 ? -1 : 0;
}

static void c_get(ctx *x)
{
	skey sk;
	if (skey_get(x, A(1), &sk) < 0)
		return;
	int rc = dskvs_get_with_bin(srv.store, sk.coll, sk.clen, sk.mem,
	                            sk.mlen, bulk_cb, x->o);
	if (rc == DSKVS_OK) {
		stat_add(&x->c->stats->hits, 1);
		return;
	}
	stat_add(&x->c->stats->misses, 1);
	if (rc == DSKVS_NOTFOUND)
		resp_null(x->o);
	else
		store_err(x, rc);
}

static void c_strlen(ctx *x)
{
	skey sk;
	if (skey_get(x, A(1), &sk) < 0)
		return;
	size_t len = 0;
	int rc = dskvs_get_bin(srv.store, sk.coll, sk.clen, sk.mem, sk.mlen,
	                       NULL, 0, &len, NULL);
	resp_int(x->o,
	         rc == DSKVS_OK || rc == DSKVS_ERANGE ? (long long)len : 0);
}

static void c_mget(ctx *x)
{
	resp_array(x->o, x->n - 1);
	for (size_t i = 1; i < x->n; i++) {
		skey sk;
		resp_out scratch = { .proto = 2 };
		ctx y = { x->c, &scratch, NULL, 0 };
		int ok = skey_map(&y, A(i), &sk) == 0 &&
		         string_type_ok(&y, &sk) == 0;
		resp_out_free(&scratch);
		if (!ok ||
		    dskvs_get_with_bin(srv.store, sk.coll, sk.clen, sk.mem,
		                       sk.mlen, bulk_cb, x->o) != DSKVS_OK)
			resp_null(x->o);
	}
}

/* SET's conditional forms in one dskvs_update. */
struct setx {
	const void *val;
	size_t len;
	int nx, xx, get, del;
	resp_out *o; /* GET: the old value goes here */
	int did;
	/* APPEND */
	int append;
	char *nbuf;
	size_t nlen;
	int toobig;
};

static int setx_cb(const void *old, size_t old_len, int exists, const void **nv,
                   size_t *nl, void *arg)
{
	struct setx *s = arg;
	if (s->get) {
		if (exists)
			resp_bulk(s->o, old, old_len);
		else
			resp_null(s->o);
	}
	if ((s->nx && exists) || (s->xx && !exists))
		return DSKVS_UPDATE_KEEP;
	s->did = 1;
	if (s->del)
		return DSKVS_UPDATE_DELETE;
	if (s->append) {
		size_t ol = exists ? old_len : 0;
		if (ol + s->len > DSKVS_VALUE_MAX) {
			s->toobig = 1;
			s->did = 0;
			return DSKVS_UPDATE_KEEP;
		}
		s->nbuf = malloc(ol + s->len + 1);
		if (s->nbuf == NULL)
			return DSKVS_ENOMEM;
		if (ol)
			memcpy(s->nbuf, old, ol);
		if (s->len)
			memcpy(s->nbuf + ol, s->val, s->len);
		s->nlen = ol + s->len;
		*nv = s->nbuf;
		*nl = s->nlen;
		return DSKVS_UPDATE_SET;
	}
	*nv = s->val;
	*nl = s->len;
	return DSKVS_UPDATE_SET;
}

/* Run s on sk; on a store error drop what the callback wrote and reply
 * the error. Returns 0 on success. */
static int setx_run(ctx *x, const skey *sk, struct setx *s)
{
	size_t mark = x->o->len;
	uint64_t seq = 0;
	s->o = x->o;
	int rc = dskvs_update_bin(srv.store, sk->coll, sk->clen, sk->mem,
	                          sk->mlen, setx_cb, s, &seq);
	free(s->nbuf);
	s->nbuf = NULL;
	if (rc != DSKVS_OK) {
		x->o->len = mark;
		store_err(x, rc);
		return -1;
	}
	if (s->did)
		note_seq(x, seq);
	return 0;
}

/* A bare key that is a hash is replaced by SET (as Redis's SET replaces
 * a key of any type). */
static int drop_hash(ctx *x, const skey *sk)
{
	if (!sk->bare || !hash_exists(sk->mem, sk->mlen))
		return 0;
	uint64_t seq = 0;
	int rc = dskvs_delete_all_bin(srv.store, sk->mem, sk->mlen, &seq);
	if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND) {
		store_err(x, rc);
		return -1;
	}
	note_seq(x, seq);
	return 0;
}

static void c_set(ctx *x)
{
	struct setx s = { .val = A(2).p, .len = A(2).n };
	for (size_t i = 3; i < x->n; i++) {
		str o = A(i);
		if (IS(o, "nx") && !s.xx) {
			s.nx = 1;
		} else if (IS(o, "xx") && !s.nx) {
			s.xx = 1;
		} else if (IS(o, "get")) {
			s.get = 1;
		} else if (IS(o, "keepttl")) {
			/* no expiry here: nothing to keep */
		} else if ((IS(o, "ex") || IS(o, "px") || IS(o, "exat") ||
		            IS(o, "pxat")) &&
		           i + 1 < x->n) {
			long long t;
			if (get_ll(x, A(i + 1), &t) < 0)
				return;
			if (t <= 0) {
				resp_error(x->o, "ERR invalid expire time in "
				                 "'set' command");
				return;
			}
			resp_error(x->o,
			           "ERR dskvs-server: keys cannot "
			           "expire (EX, PX, EXAT and PXAT are not "
			           "supported)");
			return;
		} else {
			resp_error(x->o, "%s", SYNTAX);
			return;
		}
	}
	skey sk;
	if (skey_map(x, A(1), &sk) < 0)
		return;
	int is_hash = sk.bare && hash_exists(sk.mem, sk.mlen);
	if (!sk.bare && string_type_ok(x, &sk) < 0)
		return;
	if (is_hash && s.get) {
		resp_error(x->o, "%s", WRONGTYPE);
		return;
	}
	if (is_hash && s.nx) {
		resp_null(x->o);
		return;
	}
	if (is_hash && drop_hash(x, &sk) < 0)
		return;
	if (!s.nx && !s.xx && !s.get) {
		uint64_t seq = 0;
		int rc = dskvs_put_bin(srv.store, sk.coll, sk.clen, sk.mem,
		                       sk.mlen, s.val, s.len, NULL, NULL, &seq);
		if (rc != DSKVS_OK) {
			store_err(x, rc);
			return;
		}
		note_seq(x, seq);
		resp_simple(x->o, "OK");
		return;
	}
	if (is_hash)
		s.xx = 0; /* it existed (as a hash) and was replaced */
	if (setx_run(x, &sk, &s) < 0)
		return;
	if (!s.get) {
		if (s.did)
			resp_simple(x->o, "OK");
		else
			resp_null(x->o);
	}
}

static void c_setnx(ctx *x)
{
	skey sk;
	if (skey_map(x, A(1), &sk) < 0)
		return;
	if (sk.bare && hash_exists(sk.mem, sk.mlen)) {
		resp_int(x->o, 0);
		return;
	}
	if (!sk.bare && string_type_ok(x, &sk) < 0)
		return;
	uint64_t seq;
	int rc = dskvs_put_if_absent_bin(srv.store, sk.coll, sk.clen, sk.mem,
	                                 sk.mlen, A(2).p, A(2).n, &seq);
	reply_if_absent(x, rc, seq);
}

static void c_getdel(ctx *x)
{
	skey sk;
	if (skey_get(x, A(1), &sk) < 0)
		return;
	struct setx s = { .get = 1, .del = 1 };
	setx_run(x, &sk, &s);
}

static void c_append(ctx *x)
{
	skey sk;
	if (skey_get(x, A(1), &sk) < 0)
		return;
	struct setx s = { .val = A(2).p, .len = A(2).n, .append = 1 };
	if (setx_run(x, &sk, &s) < 0)
		return;
	if (s.toobig)
		resp_error(x->o, "ERR string exceeds maximum allowed size "
		                 "(proto-max-bulk-len)");
	else
		resp_int(x->o, (long long)s.nlen);
}

static void incr_generic(ctx *x, long long by)
{
	skey sk;
	if (skey_get(x, A(1), &sk) < 0)
		return;
	struct incr *in = calloc(1, sizeof(*in));
	if (in == NULL) {
		store_err(x, DSKVS_ENOMEM);
		return;
	}
	in->by = by;
	incr_run(x, sk.coll, sk.clen, sk.mem, sk.mlen, in, 0);
	free(in);
}

static void c_incr(ctx *x)
{
	incr_generic(x, 1);
}
static void c_decr(ctx *x)
{
	incr_generic(x, -1);
}
static void c_incrby(ctx *x)
{
	long long by;
	if (get_ll(x, A(2), &by) == 0)
		incr_generic(x, by);
}
static void c_decrby(ctx *x)
{
	long long by;
	if (get_ll(x, A(2), &by) < 0)
		return;
	if (by == LLONG_MIN) {
		resp_error(x->o, "ERR decrement would overflow");
		return;
	}
	incr_generic(x, -by);
}

static void c_incrbyfloat(ctx *x)
{
	skey sk;
	struct incr *in = calloc(1, sizeof(*in));
	if (in == NULL) {
		store_err(x, DSKVS_ENOMEM);
		return;
	}
	in->is_float = 1;
	/* As Redis: the type first, then the increment. */
	if (skey_get(x, A(1), &sk) == 0) {
		if (!resp_str2ld(A(2).p, A(2).n, &in->byf))
			resp_error(x->o, "ERR value is not a valid float");
		else
			incr_run(x, sk.coll, sk.clen, sk.mem, sk.mlen, in, 0);
	}
	free(in);
}

static void c_mset(ctx *x)
{
	if (x->n % 2 == 0) {
		resp_error(x->o, "ERR wrong number of arguments for 'mset' "
		                 "command");
		return;
	}
	size_t pairs = (x->n - 1) / 2;
	skey *sks = calloc(pairs, sizeof(*sks));
	dskvs_batch_op_bin *ops = calloc(pairs, sizeof(*ops));
	char *done = calloc(pairs, 1);
	if (sks == NULL || ops == NULL || done == NULL) {
		free(sks), free(ops), free(done);
		store_err(x, DSKVS_ENOMEM);
		return;
	}
	/* Check every key before writing any. */
	for (size_t i = 0; i < pairs; i++) {
		if (skey_map(x, A(1 + 2 * i), &sks[i]) < 0 ||
		    (!sks[i].bare && string_type_ok(x, &sks[i]) < 0))
			goto out;
	}
	for (size_t i = 0; i < pairs; i++)
		if (drop_hash(x, &sks[i]) < 0)
			goto out;
	/* One batch per collection, in the order of first appearance. */
	for (size_t i = 0; i < pairs; i++) {
		if (done[i])
			continue;
		size_t m = 0;
		for (size_t j = i; j < pairs; j++) {
			if (done[j] || sks[j].clen != sks[i].clen ||
			    memcmp(sks[j].coll, sks[i].coll, sks[i].clen))
				continue;
			done[j] = 1;
			str v = A(2 + 2 * j);
			ops[m++] =
			    (dskvs_batch_op_bin){ sks[j].mem, sks[j].mlen, v.p,
				                  v.n, 0 };
		}
		uint64_t seq = 0;
		int rc = dskvs_write_batch_bin(srv.store, sks[i].coll,
		                               sks[i].clen, ops, m, &seq);
		if (rc != DSKVS_OK) {
			store_err(x, rc);
			goto out;
		}
		note_seq(x, seq);
	}
	resp_simple(x->o, "OK");
out:
	free(sks);
	free(ops);
	free(done);
}

/* ---- connection -------------------------------------------------------- */

/* Constant-time in the length of the configured password. */
static int password_ok(str p)
{
	const unsigned char *a = (const unsigned char *)srv.password;
	size_t n = srv.password_len;
	unsigned diff = (unsigned)(p.n != n);
	for (size_t i = 0; i < n; i++) {
		unsigned char b = p.n ? (unsigned char)p.p[i % p.n] : 0;
		diff |= (unsigned)(a[i] ^ b);
	}
	return diff == 0;
}

/* Returns 0 and marks c authenticated, or replies and returns -1. */
static int do_auth(ctx *x, str user, str pass, int have_user)
{
	if (have_user && !(user.n == 7 && !memcmp(user.p, "default", 7))) {
		password_ok(pass); /* same time either way */
		resp_error(x->o, "WRONGPASS invalid username-password pair or "
		                 "user is disabled.");
		return -1;
	}
	if (!password_ok(pass)) {
		resp_error(x->o, "WRONGPASS invalid username-password pair or "
		                 "user is disabled.");
		return -1;
	}
	x->c->authed = 1;
	return 0;
}

static void c_auth(ctx *x)
{
	if (x->n > 3) {
		resp_error(x->o, "%s", SYNTAX);
		return;
	}
	if (srv.password == NULL) {
		if (x->n == 3 &&
		    !(A(1).n == 7 && !memcmp(A(1).p, "default", 7))) {
			resp_error(x->o, "WRONGPASS invalid username-password "
			                 "pair or user is disabled.");
			return;
		}
		if (x->n == 2) {
			resp_error(x->o, "ERR AUTH <password> called without "
			                 "any password configured for the "
			                 "default user. Are you sure your "
			                 "configuration is correct?");
			return;
		}
		resp_simple(x->o, "OK");
		return;
	}
	str none = { NULL, 0 };
	if (do_auth(x, x->n == 3 ? A(1) : none, A(x->n - 1), x->n == 3) == 0)
		resp_simple(x->o, "OK");
}

static void c_ping(ctx *x)
{
	if (x->n > 2) {
		resp_error(x->o, "ERR wrong number of arguments for 'ping' "
		                 "command");
		return;
	}
	if (x->n == 2)
		resp_bulk(x->o, A(1).p, A(1).n);
	else
		resp_simple(x->o, "PONG");
}

static void c_echo(ctx *x)
{
	resp_bulk(x->o, A(1).p, A(1).n);
}

static void c_select(ctx *x)
{
	long long db;
	if (get_ll(x, A(1), &db) < 0)
		return;
	if (db != 0)
		resp_error(x->o, "ERR DB index is out of range");
	else
		resp_simple(x->o, "OK");
}

static void c_quit(ctx *x)
{
	resp_simple(x->o, "OK");
	x->c->closing = 1;
}

static void set_proto(conn *c, int proto)
{
	c->out.proto = proto;
	atomic_store_explicit(&c->proto, proto, memory_order_relaxed);
}

static void c_reset(ctx *x)
{
	set_proto(x->c, 2);
	pthread_mutex_lock(&srv.reg_lock);
	free(x->c->name);
	x->c->name = NULL;
	pthread_mutex_unlock(&srv.reg_lock);
	x->c->authed = srv.password == NULL;
	resp_simple(x->o, "RESET");
}

static int name_ok(str n)
{
	for (size_t i = 0; i < n.n; i++)
		if (n.p[i] < '!' || n.p[i] > '~')
			return 0;
	return 1;
}

static void set_name(conn *c, str n)
{
	char *nm = NULL;
	if (n.n) {
		nm = malloc(n.n + 1);
		if (nm) {
			memcpy(nm, n.p, n.n);
			nm[n.n] = '\0';
		}
	}
	pthread_mutex_lock(&srv.reg_lock);
	free(c->name);
	c->name = nm;
	pthread_mutex_unlock(&srv.reg_lock);
}

static void c_hello(ctx *x)
{
	long long ver = 0;
	size_t i = 1;
	if (x->n >= 2) {
		if (!resp_str2ll(A(1).p, A(1).n, &ver)) {
			resp_error(x->o, "ERR Protocol version is not an "
			                 "integer or out of range");
			return;
		}
		if (ver < 2 || ver > 3) {
			resp_error(x->o, "NOPROTO unsupported protocol "
			                 "version");
			return;
		}
		i = 2;
	}
	str name = { NULL, 0 };
	int have_name = 0;
	for (; i < x->n; i++) {
		if (IS(A(i), "auth") && i + 2 < x->n) {
			if (srv.password == NULL) {
				if (!(A(i + 1).n == 7 &&
				      !memcmp(A(i + 1).p, "default", 7))) {
					resp_error(x->o,
					           "WRONGPASS invalid "
					           "username-password pair or "
					           "user is disabled.");
					return;
				}
			} else if (do_auth(x, A(i + 1), A(i + 2), 1) < 0) {
				return;
			}
			i += 2;
		} else if (IS(A(i), "setname") && i + 1 < x->n) {
			name = A(++i);
			have_name = 1;
			if (!name_ok(name)) {
				resp_error(x->o, "ERR Client names cannot "
				                 "contain spaces, newlines or "
				                 "special characters.");
				return;
			}
		} else {
			resp_error(x->o,
			           "ERR Syntax error in HELLO option "
			           "'%.*s'",
			           (int)(A(i).n > 128 ? 128 : A(i).n), A(i).p);
			return;
		}
	}
	if (!x->c->authed) {
		resp_error(x->o, "NOAUTH HELLO must be called with the client "
		                 "already authenticated, otherwise the HELLO "
		                 "AUTH <user> <pass> option can be "
		                 "used to authenticate the client and select "
		                 "the RESP protocol version at the same time");
		return;
	}
	if (have_name)
		set_name(x->c, name);
	if (ver)
		set_proto(x->c, (int)ver);
	resp_map(x->o, 7);
	resp_bulk_cstr(x->o, "server");
	resp_bulk_cstr(x->o, "redis");
	resp_bulk_cstr(x->o, "version");
	resp_bulk_cstr(x->o, "7.0.15");
	resp_bulk_cstr(x->o, "proto");
	resp_int(x->o, x->o->proto);
	resp_bulk_cstr(x->o, "id");
	resp_int(x->o, (long long)x->c->id);
	resp_bulk_cstr(x->o, "mode");
	resp_bulk_cstr(x->o, "standalone");
	resp_bulk_cstr(x->o, "role");
	resp_bulk_cstr(x->o, "master");
	resp_bulk_cstr(x->o, "modules");
	resp_array(x->o, 0);
}

void conn_info_line(conn *c, char *buf, size_t cap)
{
	time_t now = time(NULL);
	const char *cmd =
	    atomic_load_explicit(&c->last_cmd, memory_order_relaxed);
	size_t qb = atomic_load_explicit(&c->mon_qbuf, memory_order_relaxed);
	size_t qc = atomic_load_explicit(&c->mon_qcap, memory_order_relaxed);
	size_t om = atomic_load_explicit(&c->mon_omem, memory_order_relaxed);
	if (qb > qc)
		qb = qc;
	snprintf(buf, cap,
	         "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld "
	         "flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%zu "
	         "qbuf-free=%zu argv-mem=0 multi-mem=0 rbs=%zu rbp=0 obl=0 "
	         "oll=0 omem=%zu tot-mem=%zu events=r cmd=%s user=default "
	         "redir=-1 resp=%d",
	         (unsigned long long)c->id, c->addr, c->laddr, c->fd,
	         c->name ? c->name : "", (long long)(now - c->created),
	         (long long)(now - atomic_load_explicit(&c->last_active,
	                                                memory_order_relaxed)),
	         qb, qc - qb, qc, om, qc + om + sizeof(*c), cmd,
	         atomic_load_explicit(&c->proto, memory_order_relaxed));
}

static void c_client(ctx *x)
{
	str sub = A(1);
	conn *c = x->c;
	if (IS(sub, "setname") && x->n == 3) {
		if (!name_ok(A(2))) {
			resp_error(x->o, "ERR Client names cannot contain "
			                 "spaces, newlines or special "
			                 "characters.");
			return;
		}
		set_name(c, A(2));
		resp_simple(x->o, "OK");
	} else if (IS(sub, "getname") && x->n == 2) {
		if (c->name)
			resp_bulk_cstr(x->o, c->name); /* owner: no lock */
		else
			resp_null(x->o);
	} else if (IS(sub, "id") && x->n == 2) {
		resp_int(x->o, (long long)c->id);
	} else if (IS(sub, "info") && x->n == 2) {
		char line[1024];
		pthread_mutex_lock(&srv.reg_lock);
		conn_info_line(c, line, sizeof(line));
		pthread_mutex_unlock(&srv.reg_lock);
		strcat(line, "\n");
		resp_verbatim(x->o, line, strlen(line));
	} else if (IS(sub, "list")) {
		if (x->n != 2 &&
		    !(x->n == 4 && IS(A(2), "type") && IS(A(3), "normal"))) {
			resp_error(x->o, "%s", SYNTAX);
			return;
		}
		resp_out tmp = { .proto = 2 };
		char line[1024];
		pthread_mutex_lock(&srv.reg_lock);
		for (conn *o = srv.reg_head; o; o = o->rnext) {
			conn_info_line(o, line, sizeof(line));
			resp_raw(&tmp, line, strlen(line));
			resp_raw(&tmp, "\n", 1);
		}
		pthread_mutex_unlock(&srv.reg_lock);
		resp_verbatim(x->o, tmp.buf ? tmp.buf : "", tmp.len);
		resp_out_free(&tmp);
	} else if (IS(sub, "setinfo") && x->n == 4) {
		resp_simple(x->o, "OK");
	} else if (IS(sub, "help")) {
		static const char *h[] = {
			"CLIENT <subcommand> [<arg> [value] [opt] ...]. "
			"Subcommands are:",
			"GETNAME",
			"    Return the name of the current connection.",
			"ID",
			"    Return the ID of the current connection.",
			"INFO",
			"    Return information about the current client.",
			"LIST [TYPE normal]",
			"    Return information about client "
			"connections.",
			"SETNAME <name>",
			"    Assign the name <name> to the current "
			"connection.",
		};
		resp_array(x->o, sizeof(h) / sizeof(h[0]));
		for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
			resp_simple(x->o, h[i]);
	} else {
		resp_error(x->o,
		           "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
		           (int)(sub.n > 128 ? 128 : sub.n), sub.p);
	}
}

/* ---- server ------------------------------------------------------------ */

/* CONFIG parameters. Encoding and tuning parameters of Redis's own data
 * structures are accepted and remembered, and change nothing: dskvs has
 * one representation. */
struct cfg {
	const char *name;
	char value[64];
	int settable; /* 0 read-only, 1 stored, 2 maxclients, 3 timeout */
};
static pthread_mutex_t cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfg cfgs[] = {
	{ "maxclients", "", 2 },
	{ "timeout", "", 3 },
	{ "port", "", 0 },
	{ "bind", "", 0 },
	{ "unixsocket", "", 0 },
	{ "requirepass", "", 0 },
	{ "protected-mode", "yes", 0 },
	{ "databases", "1", 0 },
	{ "appendonly", "yes", 0 },
	{ "appendfsync", "", 0 },
	{ "save", "", 0 },
	{ "dir", "", 0 },
	{ "io-threads", "", 0 },
	{ "proto-max-bulk-len", "", 0 },
	{ "client-query-buffer-limit", "", 0 },
	{ "maxmemory", "0", 1 },
	{ "maxmemory-policy", "noeviction", 1 },
	{ "hash-max-ziplist-entries", "512", 1 },
	{ "hash-max-ziplist-value", "64", 1 },
	{ "hash-max-listpack-entries", "512", 1 },
	{ "hash-max-listpack-value", "64", 1 },
	{ "set-max-intset-entries", "512", 1 },
	{ "set-max-listpack-entries", "128", 1 },
	{ "zset-max-ziplist-entries", "128", 1 },
	{ "zset-max-ziplist-value", "64", 1 },
	{ "zset-max-listpack-entries", "128", 1 },
	{ "zset-max-listpack-value", "64", 1 },
	{ "list-max-ziplist-size", "-2", 1 },
	{ "list-max-listpack-size", "-2", 1 },
	{ "list-compress-depth", "0", 1 },
	{ "stream-node-max-bytes", "4096", 1 },
	{ "stream-node-max-entries", "100", 1 },
	{ "activerehashing", "yes", 1 },
	{ "lazyfree-lazy-user-del", "no", 1 },
	{ "lazyfree-lazy-user-flush", "no", 1 },
	{ "slowlog-log-slower-than", "10000", 1 },
	{ "slowlog-max-len", "128", 1 },
	{ "latency-tracking", "yes", 1 },
	{ "loglevel", "notice", 1 },
};
#define NCFG (sizeof(cfgs) / sizeof(cfgs[0]))
static _Atomic long cfg_maxclients_set;

static void cfg_value(struct cfg *c, char *buf, size_t cap)
{
	if (!strcmp(c->name, "maxclients"))
		snprintf(buf, cap, "%ld", srv.maxclients);
	else if (!strcmp(c->name, "timeout"))
		snprintf(buf, cap, "%ld", srv.timeout);
	else if (!strcmp(c->name, "port"))
		snprintf(buf, cap, "%d", srv.port);
	else if (!strcmp(c->name, "bind"))
		snprintf(buf, cap, "%s", srv.bind);
	else if (!strcmp(c->name, "unixsocket"))
		snprintf(buf, cap, "%s", srv.unixsocket ? srv.unixsocket : "");
	else if (!strcmp(c->name, "requirepass"))
		snprintf(buf, cap, "%s", ""); /* never shown */
	else if (!strcmp(c->name, "appendfsync"))
		snprintf(buf, cap, "%s",
		         srv.sync_mode == DSKVS_SYNC_ALWAYS ? "always"
		                                            : "everysec");
	else if (!strcmp(c->name, "dir"))
		snprintf(buf, cap, "%s", srv.store_dir);
	else if (!strcmp(c->name, "io-threads"))
		snprintf(buf, cap, "%d", srv.threads);
	else if (!strcmp(c->name, "proto-max-bulk-len"))
		snprintf(buf, cap, "%u", DSKVS_VALUE_MAX);
	else if (!strcmp(c->name, "client-query-buffer-limit"))
		snprintf(buf, cap, "%zu", RESP_QUERY_MAX);
	else
		snprintf(buf, cap, "%s", c->value);
}

static void c_config(ctx *x)
{
	str sub = A(1);
	if (IS(sub, "get") && x->n >= 3) {
		resp_out tmp = { .proto = x->o->proto };
		size_t n = 0;
		char *seen = calloc(NCFG, 1);
		pthread_mutex_lock(&cfg_lock);
		for (size_t i = 2; i < x->n; i++) {
			for (size_t j = 0; j < NCFG; j++) {
				if (seen && seen[j])
					continue;
				const char *nm = cfgs[j].name;
				char lower[128];
				size_t pl = A(i).n < sizeof(lower)
				                ? A(i).n
				                : sizeof(lower) - 1;
				for (size_t q = 0; q < pl; q++)
					lower[q] = (char)tolower(
					    (unsigned char)A(i).p[q]);
				if (!glob_match(lower, pl, nm, strlen(nm)))
					continue;
				if (seen)
					seen[j] = 1;
				char v[128];
				cfg_value(&cfgs[j], v, sizeof(v));
				resp_bulk_cstr(&tmp, nm);
				resp_bulk_cstr(&tmp, v);
				n++;
			}
		}
		pthread_mutex_unlock(&cfg_lock);
		free(seen);
		resp_map(x->o, n);
		resp_raw(x->o, tmp.buf, tmp.len);
		resp_out_free(&tmp);
	} else if (IS(sub, "set") && x->n >= 4 && x->n % 2 == 0) {
		/* Check all, then apply all. */
		for (size_t i = 2; i < x->n; i += 2) {
			struct cfg *c = NULL;
			for (size_t j = 0; j < NCFG; j++)
				if (IS(A(i), cfgs[j].name))
					c = &cfgs[j];
			if (c == NULL || c->settable == 0) {
				resp_error(x->o,
				           "ERR Unknown option or number "
				           "of arguments for CONFIG SET - "
				           "'%.*s'",
				           (int)(A(i).n > 128 ? 128 : A(i).n),
				           A(i).p);
				return;
			}
			long long v;
			if (c->settable >= 2 &&
			    (!resp_str2ll(A(i + 1).p, A(i + 1).n, &v) ||
			     v < (c->settable == 2 ? 1 : 0))) {
				resp_error(x->o,
				           "ERR CONFIG SET failed "
				           "(possibly related to argument "
				           "'%s') - argument couldn't be "
				           "parsed into an integer",
				           c->name);
				return;
			}
			if (A(i + 1).n >= sizeof(c->value)) {
				resp_error(x->o,
				           "ERR CONFIG SET failed "
				           "(possibly related to argument "
				           "'%s') - value too long",
				           c->name);
				return;
			}
		}
		pthread_mutex_lock(&cfg_lock);
		for (size_t i = 2; i < x->n; i += 2) {
			for (size_t j = 0; j < NCFG; j++) {
				struct cfg *c = &cfgs[j];
				if (!IS(A(i), c->name))
					continue;
				long long v = 0;
				resp_str2ll(A(i + 1).p, A(i + 1).n, &v);
				if (c->settable == 2) {
					srv.maxclients = (long)v;
					atomic_store(&cfg_maxclients_set, 1);
				} else if (c->settable == 3) {
					srv.timeout = (long)v;
				} else {
					memcpy(c->value, A(i + 1).p,
					       A(i + 1).n);
					c->value[A(i + 1).n] = '\0';
				}
			}
		}
		pthread_mutex_unlock(&cfg_lock);
		resp_simple(x->o, "OK");
	} else if (IS(sub, "resetstat") && x->n == 2) {
		for (int i = 0; i < srv.threads; i++) {
			struct loop_stats *ls = &srv.stats[i];
			atomic_store_explicit(&ls->cmds, 0,
			                      memory_order_relaxed);
			atomic_store_explicit(&ls->hits, 0,
			                      memory_order_relaxed);
			atomic_store_explicit(&ls->misses, 0,
			                      memory_order_relaxed);
		}
		resp_simple(x->o, "OK");
	} else if (IS(sub, "rewrite") && x->n == 2) {
		resp_error(x->o, "ERR The server is running without a config "
		                 "file");
	} else if (IS(sub, "get") || IS(sub, "set") || IS(sub, "resetstat")) {
		char lower[32];
		size_t l =
		    sub.n < sizeof(lower) - 1 ? sub.n : sizeof(lower) - 1;
		for (size_t i = 0; i < l; i++)
			lower[i] = (char)tolower((unsigned char)sub.p[i]);
		lower[l] = '\0';
		resp_error(x->o,
		           "ERR wrong number of arguments for "
		           "'config|%s' command",
		           lower);
	} else {
		resp_error(x->o,
		           "ERR unknown subcommand '%.*s'. Try CONFIG "
		           "HELP.",
		           (int)(sub.n > 128 ? 128 : sub.n), sub.p);
	}
}

static void c_time(ctx *x)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	char b[24];
	resp_array(x->o, 2);
	resp_bulk(x->o, b, (size_t)resp_ll2str(b, tv.tv_sec));
	resp_bulk(x->o, b, (size_t)resp_ll2str(b, tv.tv_usec));
}

static void c_shutdown(ctx *x)
{
	for (size_t i = 1; i < x->n; i++) {
		if (IS(A(i), "abort")) {
			resp_error(x->o, "ERR No shutdown in progress.");
			return;
		}
		if (!IS(A(i), "nosave") && !IS(A(i), "save") &&
		    !IS(A(i), "now") && !IS(A(i), "force")) {
			resp_error(x->o, "%s", SYNTAX);
			return;
		}
	}
	/* As Redis: no reply; the connection closes as the server exits. */
	x->c->no_reply_exit = 1;
	x->c->closing = 1;
	/* To the main thread, which waits for it in sigwait. */
	pthread_kill(srv.main_thread, SIGTERM);
}

static void c_function(ctx *x)
{
	str sub = A(1);
	if (IS(sub, "flush") && x->n <= 3)
		resp_simple(x->o, "OK");
	else if (IS(sub, "list"))
		resp_array(x->o, 0);
	else
		resp_error(x->o,
		           "ERR unknown subcommand '%.*s'. Try FUNCTION "
		           "HELP.",
		           (int)(sub.n > 128 ? 128 : sub.n), sub.p);
}

static void c_script(ctx *x)
{
	str sub = A(1);
	if (IS(sub, "flush") && x->n <= 3)
		resp_simple(x->o, "OK");
	else
		resp_error(x->o,
		           "ERR unknown subcommand '%.*s'. Try SCRIPT "
		           "HELP.",
		           (int)(sub.n > 128 ? 128 : sub.n), sub.p);
}

void cmd_waitaof_reply(conn *c)
{
	uint64_t d = dskvs_durable_seq(srv.store);
	resp_array(&c->out, 2);
	resp_int(&c->out, d >= c->wait_seq ? 1 : 0);
	resp_int(&c->out, 0);
}

static void c_waitaof(ctx *x)
{
	long long nl, nr, tmo;
	if (get_ll(x, A(1), &nl) < 0 || get_ll(x, A(2), &nr) < 0)
		return;
	if (!resp_str2ll(A(3).p, A(3).n, &tmo) || tmo < 0) {
		resp_error(x->o, "ERR timeout is out of range");
		return;
	}
	if (nl < 0 || nr < 0) {
		resp_error(x->o, "%s", NOTINT);
		return;
	}
	conn *c = x->c;
	c->wait_seq = c->last_seq;
	c->wait_numlocal = nl > 0;
	c->wait_numreplicas = nr;
	uint64_t d = dskvs_durable_seq(srv.store);
	if ((nl == 0 || d >= c->wait_seq) && nr == 0) {
		cmd_waitaof_reply(c);
		return;
	}
	c->wait_deadline_ms = tmo ? now_ms() + tmo : 0;
	loop_block_waitaof(c);
}

/* INFO */
static void info_section(resp_out *t, const char *name, int *first)
{
	if (!*first)
		resp_raw(t, "\r\n", 2);
	*first = 0;
	resp_raw(t, "# ", 2);
	resp_raw(t, name, strlen(name));
	resp_raw(t, "\r\n", 2);
}

static void info_line(resp_out *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void info_line(resp_out *t, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int l = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (l < 0)
		return;
	if ((size_t)l >= sizeof(b))
		l = sizeof(b) - 1;
	resp_raw(t, b, (size_t)l);
	resp_raw(t, "\r\n", 2);
}

static int want_section(ctx *x, const char *name, int dflt)
{
	if (x->n == 1)
		return dflt;
	for (size_t i = 1; i < x->n; i++)
		if (IS(A(i), name) || IS(A(i), "all") ||
		    IS(A(i), "everything") || (dflt && IS(A(i), "default")))
			return 1;
	return 0;
}

static void c_info(ctx *x)
{
	resp_out t = { .proto = 2 };
	int first = 1;
	time_t now = time(NULL);
	dskvs_stats st;
	memset(&st, 0, sizeof(st));
	dskvs_stats_get(srv.store, &st);
	if (want_section(x, "server", 1)) {
		info_section(&t, "Server", &first);
		info_line(&t, "redis_version:7.0.15");
		info_line(&t, "dskvs_version:%s", dskvs_version_string());
		info_line(&t, "redis_mode:standalone");
		info_line(&t, "os:Linux");
		info_line(&t, "arch_bits:%d", (int)(sizeof(void *) * 8));
		info_line(&t, "multiplexing_api:epoll");
		info_line(&t, "process_id:%ld", (long)srv.pid);
		info_line(&t, "tcp_port:%d", srv.port);
		info_line(&t, "server_time_usec:%lld",
		          (long long)now * 1000000);
		info_line(&t, "uptime_in_seconds:%lld",
		          (long long)(now - srv.started));
		info_line(&t, "uptime_in_days:%lld",
		          (long long)(now - srv.started) / 86400);
		info_line(&t, "io_threads_active:%d", srv.threads > 1);
		info_line(&t, "event_loops:%d", srv.threads);
		info_line(&t, "executable:dskvs-server");
		info_line(&t, "config_file:");
	}
	if (want_section(x, "clients", 1)) {
		info_section(&t, "Clients", &first);
		info_line(&t, "connected_clients:%ld",
		          atomic_load(&srv.clients));
		info_line(&t, "maxclients:%ld", srv.maxclients);
		info_line(&t, "blocked_clients:0");
	}
	if (want_section(x, "memory", 1)) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		info_section(&t, "Memory", &first);
		info_line(&t, "used_memory:%llu",
		          (unsigned long long)st.live_bytes);
		info_line(&t, "used_memory_rss:%lld",
		          (long long)ru.ru_maxrss * 1024);
		info_line(&t, "maxmemory:0");
		info_line(&t, "maxmemory_policy:noeviction");
		info_line(&t, "mem_allocator:libc");
	}
	if (want_section(x, "persistence", 1)) {
		info_section(&t, "Persistence", &first);
		info_line(&t, "loading:0");
		info_line(&t, "aof_enabled:1");
		info_line(&t, "aof_rewrite_in_progress:0");
		info_line(&t, "aof_last_write_status:%s",
		          st.last_error ? "err" : "ok");
		info_line(&t, "dskvs_sync_mode:%s",
		          srv.sync_mode == DSKVS_SYNC_ALWAYS ? "always"
		                                             : "async");
		info_line(&t, "dskvs_log_bytes:%llu",
		          (unsigned long long)st.log_bytes);
		info_line(&t, "dskvs_log_live_bytes:%llu",
		          (unsigned long long)st.log_live_bytes);
		info_line(&t, "dskvs_queue_depth:%llu",
		          (unsigned long long)st.queue_depth);
		info_line(&t, "dskvs_seq:%llu", (unsigned long long)st.seq);
		info_line(&t, "dskvs_durable_seq:%llu",
		          (unsigned long long)st.durable_seq);
		info_line(&t, "dskvs_pending_bytes:%llu",
		          (unsigned long long)st.pending_bytes);
		info_line(&t, "dskvs_oldest_pending_us:%llu",
		          (unsigned long long)st.oldest_pending_ns / 1000);
		info_line(&t, "dskvs_batches:%llu",
		          (unsigned long long)st.batches);
		info_line(&t, "dskvs_fsync_last_us:%llu",
		          (unsigned long long)st.fsync_last_ns / 1000);
		info_line(&t, "dskvs_fsync_p50_us:%llu",
		          (unsigned long long)st.fsync_p50_ns / 1000);
		info_line(&t, "dskvs_fsync_p99_us:%llu",
		          (unsigned long long)st.fsync_p99_ns / 1000);
		info_line(&t, "dskvs_fsync_max_us:%llu",
		          (unsigned long long)st.fsync_max_ns / 1000);
		info_line(&t, "dskvs_compactions:%llu",
		          (unsigned long long)st.compactions);
		info_line(&t, "dskvs_last_error:%s",
		          st.last_error ? dskvs_err_name(st.last_error)
		                        : "none");
	}
	if (want_section(x, "stats", 1)) {
		uint64_t sum[5] = { 0 };
		for (int i = 0; i < srv.threads; i++) {
			struct loop_stats *ls = &srv.stats[i];
			sum[0] += atomic_load_explicit(&ls->cmds,
			                               memory_order_relaxed);
			sum[1] += atomic_load_explicit(&ls->hits,
			                               memory_order_relaxed);
			sum[2] += atomic_load_explicit(&ls->misses,
			                               memory_order_relaxed);
			sum[3] += atomic_load_explicit(&ls->net_in,
			                               memory_order_relaxed);
			sum[4] += atomic_load_explicit(&ls->net_out,
			                               memory_order_relaxed);
		}
		info_section(&t, "Stats", &first);
		info_line(&t, "total_connections_received:%llu",
		          (unsigned long long)srv.conns_received);
		info_line(&t, "total_commands_processed:%llu",
		          (unsigned long long)sum[0]);
		info_line(&t, "total_net_input_bytes:%llu",
		          (unsigned long long)sum[3]);
		info_line(&t, "total_net_output_bytes:%llu",
		          (unsigned long long)sum[4]);
		info_line(&t, "rejected_connections:%llu",
		          (unsigned long long)srv.rejected_conns);
		info_line(&t, "keyspace_hits:%llu", (unsigned long long)sum[1]);
		info_line(&t, "keyspace_misses:%llu",
		          (unsigned long long)sum[2]);
		info_line(&t, "expired_keys:0");
		info_line(&t, "evicted_keys:0");
	}
	if (want_section(x, "keyspace", 1)) {
		info_section(&t, "Keyspace", &first);
		struct names h, s;
		resp_out scratch = { .proto = 2 };
		ctx y = { x->c, &scratch, NULL, 0 };
		if (all_keys(&y, &h, &s) == 0) {
			if (h.n + s.n)
				info_line(&t,
				          "db0:keys=%zu,expires=0,"
				          "avg_ttl=0",
				          h.n + s.n);
			names_free(&h);
			names_free(&s);
		}
		resp_out_free(&scratch);
	}
	resp_verbatim(x->o, t.buf ? t.buf : "", t.len);
	resp_out_free(&t);
}

/* ---- the command table ------------------------------------------------- */

#define F_WRITE  1
#define F_NOAUTH 2
#define F_RO     4
#define F_ADMIN  8
#define F_FAST   16

struct cmd {
	const char *name;
	int arity; /* Redis's: n exact, -n at least n */
	int flags;
	int first, last, step; /* key positions */
	void (*fn)(ctx *);
	const char *group;
	const char *since;
	const char *args; /* hint, for COMMAND DOCS */
	const char *summary;
};

static void c_command(ctx *x);

static const struct cmd cmds[] = {
	{ "hset", -4, F_WRITE | F_FAST, 1, 1, 1, c_hset, "hash", "2.0.0",
	  "key field value [field value ...]",
	  "Set the string value of a hash field" },
	{ "hsetnx", 4, F_WRITE | F_FAST, 1, 1, 1, c_hsetnx, "hash", "2.0.0",
	  "key field value", "Set a hash field only if it does not exist" },
	{ "hmset", -4, F_WRITE | F_FAST, 1, 1, 1, c_hmset, "hash", "2.0.0",
	  "key field value [field value ...]", "Set several hash fields" },
	{ "hget", 3, F_RO | F_FAST, 1, 1, 1, c_hget, "hash", "2.0.0",
	  "key field", "Get the value of a hash field" },
	{ "hmget", -3, F_RO | F_FAST, 1, 1, 1, c_hmget, "hash", "2.0.0",
	  "key field [field ...]", "Get the values of hash fields" },
	{ "hgetall", 2, F_RO, 1, 1, 1, c_hgetall, "hash", "2.0.0", "key",
	  "Get all the fields and values of a hash" },
	{ "hkeys", 2, F_RO, 1, 1, 1, c_hkeys, "hash", "2.0.0", "key",
	  "Get all the fields of a hash" },
	{ "hvals", 2, F_RO, 1, 1, 1, c_hvals, "hash", "2.0.0", "key",
	  "Get all the values of a hash" },
	{ "hlen", 2, F_RO | F_FAST, 1, 1, 1, c_hlen, "hash", "2.0.0", "key",
	  "Get the number of fields of a hash" },
	{ "hexists", 3, F_RO | F_FAST, 1, 1, 1, c_hexists, "hash", "2.0.0",
	  "key field", "Determine whether a hash field exists" },
	{ "hdel", -3, F_WRITE | F_FAST, 1, 1, 1, c_hdel, "hash", "2.0.0",
	  "key field [field ...]", "Delete hash fields" },
	{ "hstrlen", 3, F_RO | F_FAST, 1, 1, 1, c_hstrlen, "hash", "3.2.0",
	  "key field", "Get the length of a hash field's value" },
	{ "hincrby", 4, F_WRITE | F_FAST, 1, 1, 1, c_hincrby, "hash", "2.0.0",
	  "key field increment", "Increment a hash field by an integer" },
	{ "hincrbyfloat", 4, F_WRITE | F_FAST, 1, 1, 1, c_hincrbyfloat, "hash",
	  "2.6.0", "key field increment", "Increment a hash field by a float" },
	{ "hrandfield", -2, F_RO, 1, 1, 1, c_hrandfield, "hash", "6.2.0",
	  "key [count [WITHVALUES]]", "Get random fields of a hash" },
	{ "hscan", -3, F_RO, 1, 1, 1, c_hscan, "hash", "2.8.0",
	  "key cursor [MATCH pattern] [COUNT count]",
	  "Iterate the fields of a hash" },
	{ "del", -2, F_WRITE, 1, -1, 1, c_del, "generic", "1.0.0",
	  "key [key ...]", "Delete keys" },
	{ "unlink", -2, F_WRITE | F_FAST, 1, -1, 1, c_del, "generic", "4.0.0",
	  "key [key ...]", "Delete keys" },
	{ "exists", -2, F_RO | F_FAST, 1, -1, 1, c_exists, "generic", "1.0.0",
	  "key [key ...]", "Count the keys that exist" },
	{ "type", 2, F_RO | F_FAST, 1, 1, 1, c_type, "generic", "1.0.0", "key",
	  "Determine the type of a key" },
	{ "keys", 2, F_RO, 0, 0, 0, c_keys, "generic", "1.0.0", "pattern",
	  "Find all keys matching a pattern" },
	{ "scan", -2, F_RO, 0, 0, 0, c_scan, "generic", "2.8.0",
	  "cursor [MATCH pattern] [COUNT count] [TYPE type]",
	  "Iterate the key space" },
	{ "dbsize", 1, F_RO | F_FAST, 0, 0, 0, c_dbsize, "server", "1.0.0", "",
	  "Return the number of keys" },
	{ "flushdb", -1, F_WRITE, 0, 0, 0, c_flushdb, "server", "1.0.0",
	  "[ASYNC|SYNC]", "Remove all keys" },
	{ "flushall", -1, F_WRITE, 0, 0, 0, c_flushdb, "server", "1.0.0",
	  "[ASYNC|SYNC]", "Remove all keys" },
	{ "memory", -2, F_RO, 0, 0, 0, c_memory, "server", "4.0.0", "USAGE key",
	  "Estimate the memory of a key" },
	{ "get", 2, F_RO | F_FAST, 1, 1, 1, c_get, "string", "1.0.0", "key",
	  "Get the value of a key" },
	{ "set", -3, F_WRITE, 1, 1, 1, c_set, "string", "1.0.0",
	  "key value [NX|XX] [GET] [KEEPTTL]", "Set the value of a key" },
	{ "mget", -2, F_RO | F_FAST, 1, -1, 1, c_mget, "string", "1.0.0",
	  "key [key ...]", "Get the values of keys" },
	{ "mset", -3, F_WRITE, 1, -1, 2, c_mset, "string", "1.0.1",
	  "key value [key value ...]", "Set several keys" },
	{ "setnx", 3, F_WRITE | F_FAST, 1, 1, 1, c_setnx, "string", "1.0.0",
	  "key value", "Set a key only if it does not exist" },
	{ "getdel", 2, F_WRITE | F_FAST, 1, 1, 1, c_getdel, "string", "6.2.0",
	  "key", "Get the value of a key and delete it" },
	{ "incr", 2, F_WRITE | F_FAST, 1, 1, 1, c_incr, "string", "1.0.0",
	  "key", "Increment a key by one" },
	{ "incrby", 3, F_WRITE | F_FAST, 1, 1, 1, c_incrby, "string", "1.0.0",
	  "key increment", "Increment a key by an integer" },
	{ "incrbyfloat", 3, F_WRITE | F_FAST, 1, 1, 1, c_incrbyfloat, "string",
	  "2.6.0", "key increment", "Increment a key by a float" },
	{ "decr", 2, F_WRITE | F_FAST, 1, 1, 1, c_decr, "string", "1.0.0",
	  "key", "Decrement a key by one" },
	{ "decrby", 3, F_WRITE | F_FAST, 1, 1, 1, c_decrby, "string", "1.0.0",
	  "key decrement", "Decrement a key by an integer" },
	{ "append", 3, F_WRITE, 1, 1, 1, c_append, "string", "2.0.0",
	  "key value", "Append to the value of a key" },
	{ "strlen", 2, F_RO | F_FAST, 1, 1, 1, c_strlen, "string", "2.2.0",
	  "key", "Get the length of the value of a key" },
	{ "ping", -1, F_FAST, 0, 0, 0, c_ping, "connection", "1.0.0",
	  "[message]", "Ping the server" },
	{ "echo", 2, F_FAST, 0, 0, 0, c_echo, "connection", "1.0.0", "message",
	  "Echo the given string" },
	{ "hello", -1, F_NOAUTH | F_FAST, 0, 0, 0, c_hello, "connection",
	  "6.0.0", "[protover [AUTH username password] [SETNAME clientname]]",
	  "Handshake with the server" },
	{ "auth", -2, F_NOAUTH | F_FAST, 0, 0, 0, c_auth, "connection", "1.0.0",
	  "[username] password", "Authenticate the connection" },
	{ "select", 2, F_FAST, 0, 0, 0, c_select, "connection", "1.0.0",
	  "index", "Select the database (only 0)" },
	{ "quit", -1, F_NOAUTH | F_FAST, 0, 0, 0, c_quit, "connection", "1.0.0",
	  "", "Close the connection" },
	{ "reset", 1, F_NOAUTH | F_FAST, 0, 0, 0, c_reset, "connection",
	  "6.2.0", "", "Reset the connection" },
	{ "client", -2, 0, 0, 0, 0, c_client, "connection", "2.4.0",
	  "SETNAME|GETNAME|ID|INFO|LIST ...", "Manage the connection" },
	{ "info", -1, 0, 0, 0, 0, c_info, "server", "1.0.0",
	  "[section [section ...]]", "Information about the server" },
	{ "config", -2, F_ADMIN, 0, 0, 0, c_config, "server", "2.0.0",
	  "GET|SET|RESETSTAT ...", "Get or set parameters" },
	{ "command", -1, 0, 0, 0, 0, c_command, "server", "2.8.13",
	  "[COUNT|DOCS|INFO|LIST ...]", "Details about the commands" },
	{ "time", 1, F_FAST, 0, 0, 0, c_time, "server", "2.6.0", "",
	  "Return the server time" },
	{ "shutdown", -1, F_ADMIN, 0, 0, 0, c_shutdown, "server", "1.0.0",
	  "[NOSAVE|SAVE] [NOW] [FORCE]", "Persist everything and exit" },
	{ "function", -2, 0, 0, 0, 0, c_function, "scripting", "7.0.0",
	  "FLUSH|LIST", "No-op: there are no functions" },
	{ "script", -2, 0, 0, 0, 0, c_script, "scripting", "2.6.0", "FLUSH",
	  "No-op: there are no scripts" },
	{ "waitaof", 4, 0, 0, 0, 0, c_waitaof, "generic", "7.2.0",
	  "numlocal numreplicas timeout",
	  "Wait until this connection's writes are fsynced" },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

/* The table is small; comparing the length and the first letter first
 * makes a miss cost a byte compare. */
static const struct cmd *lookup(str name)
{
	if (name.n == 0 || name.n > 16)
		return NULL;
	int c0 = tolower((unsigned char)name.p[0]);
	for (size_t i = 0; i < NCMDS; i++) {
		const char *nm = cmds[i].name;
		if (nm[0] == c0 && strlen(nm) == name.n &&
		    !strncasecmp(name.p, nm, name.n))
			return &cmds[i];
	}
	return NULL;
}

static void cmd_info(ctx *x, const struct cmd *c)
{
	resp_array(x->o, 10);
	resp_bulk_cstr(x->o, c->name);
	resp_int(x->o, c->arity);
	size_t nf = !!(c->flags & F_WRITE) + !!(c->flags & F_RO) +
	            !!(c->flags & F_FAST) + !!(c->flags & F_NOAUTH) +
	            !!(c->flags & F_ADMIN);
	resp_set(x->o, nf);
	if (c->flags & F_WRITE)
		resp_simple(x->o, "write");
	if (c->flags & F_RO)
		resp_simple(x->o, "readonly");
	if (c->flags & F_FAST)
		resp_simple(x->o, "fast");
	if (c->flags & F_NOAUTH)
		resp_simple(x->o, "no_auth");
	if (c->flags & F_ADMIN)
		resp_simple(x->o, "admin");
	resp_int(x->o, c->first);
	resp_int(x->o, c->last);
	resp_int(x->o, c->step);
	resp_set(x->o, 0);
	resp_set(x->o, 0);
	resp_array(x->o, 0);
	resp_array(x->o, 0);
}

/* COMMAND DOCS arguments from a hint such as "key [field value ...]": a
 * lower-case word is an argument ("key" of type key, a few names integers,
 * the rest strings), an UPPER word a token, "A|B" a oneof of tokens,
 * "[...]" an optional argument (a block when it holds several), and "..."
 * makes the argument before it (or the group it ends) multiple. Writes the
 * arguments to o and returns how many. */
static const char *arg_type(const char *w)
{
	static const char *ints[] = { "count",       "increment", "decrement",
		                      "index",       "cursor",    "numlocal",
		                      "numreplicas", "timeout",   NULL };
	if (!strcmp(w, "key"))
		return "key";
	for (size_t i = 0; ints[i]; i++)
		if (!strcmp(w, ints[i]))
			return "integer";
	return "string";
}

static void put_lower(resp_out *o, const char *p, size_t n)
{
	char w[64];
	if (n >= sizeof(w))
		n = sizeof(w) - 1;
	for (size_t i = 0; i < n; i++)
		w[i] = (char)tolower((unsigned char)p[i]);
	resp_bulk(o, w, n);
}

static size_t docs_args(resp_out *o, const char *p, const char *end)
{
	size_t n = 0;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		if (!strncmp(p, "...", 3)) {
			p += 3;
			continue;
		}
		int opt = 0, multi = 0;
		const char *ws, *we;
		if (*p == '[') {
			opt = 1;
			int depth = 1;
			ws = ++p;
			while (p < end && depth) {
				if (*p == '[')
					depth++;
				else if (*p == ']')
					depth--;
				p++;
			}
			we = depth ? p : p - 1;
			const char *e = we;
			while (e > ws && e[-1] == ' ')
				e--;
			if (e - ws >= 3 && !strncmp(e - 3, "...", 3)) {
				multi = 1;
				we = e - 3;
			}
		} else {
			ws = p;
			while (p < end && *p != ' ')
				p++;
			we = p;
		}
		const char *q = p;
		while (q < end && *q == ' ')
			q++;
		if (end - q >= 3 && !strncmp(q, "...", 3)) {
			multi = 1;
			p = q + 3;
		}
		while (we > ws && we[-1] == ' ')
			we--;
		if (we <= ws)
			continue;
		const char *sp = memchr(ws, ' ', (size_t)(we - ws));
		const char *bar = memchr(ws, '|', (size_t)(we - ws));
		int token =
		    isupper((unsigned char)ws[0]) && sp == NULL && bar == NULL;
		const char *type = sp      ? "block"
		                   : bar   ? "oneof"
		                   : token ? "pure-token"
		                           : NULL;
		size_t wl = (size_t)((sp ? sp : we) - ws);
		char w[64];
		if (wl >= sizeof(w))
			wl = sizeof(w) - 1;
		memcpy(w, ws, wl);
		w[wl] = '\0';
		if (type == NULL)
			type = arg_type(w);
		size_t fields =
		    2 + (size_t)token + (opt || multi) + (sp || bar ? 1 : 0);
		resp_map(o, fields);
		resp_bulk_cstr(o, "name");
		put_lower(o, ws, bar ? (size_t)(we - ws) : wl);
		resp_bulk_cstr(o, "type");
		resp_bulk_cstr(o, type);
		if (token) {
			resp_bulk_cstr(o, "token");
			resp_bulk(o, ws, wl);
		}
		if (opt || multi) {
			resp_bulk_cstr(o, "flags");
			resp_set(o, (size_t)opt + (size_t)multi);
			if (opt)
				resp_simple(o, "optional");
			if (multi)
				resp_simple(o, "multiple");
		}
		if (sp) {
			resp_bulk_cstr(o, "arguments");
			resp_out sub = { .proto = o->proto };
			size_t k = docs_args(&sub, ws, we);
			resp_array(o, k);
			resp_raw(o, sub.buf, sub.len);
			resp_out_free(&sub);
		} else if (bar) {
			resp_bulk_cstr(o, "arguments");
			size_t k = 1;
			for (const char *t = ws; t < we; t++)
				k += *t == '|';
			resp_array(o, k);
			for (const char *t = ws; t < we;) {
				const char *te =
				    memchr(t, '|', (size_t)(we - t));
				if (te == NULL)
					te = we;
				resp_map(o, 3);
				resp_bulk_cstr(o, "name");
				put_lower(o, t, (size_t)(te - t));
				resp_bulk_cstr(o, "type");
				resp_bulk_cstr(o, "pure-token");
				resp_bulk_cstr(o, "token");
				resp_bulk(o, t, (size_t)(te - t));
				t = te + 1;
			}
		}
		n++;
	}
	return n;
}

static void cmd_docs(ctx *x, const struct cmd *c)
{
	resp_bulk_cstr(x->o, c->name);
	resp_map(x->o, 5);
	resp_bulk_cstr(x->o, "summary");
	resp_bulk_cstr(x->o, c->summary);
	resp_bulk_cstr(x->o, "since");
	resp_bulk_cstr(x->o, c->since);
	resp_bulk_cstr(x->o, "group");
	resp_bulk_cstr(x->o, c->group);
	resp_bulk_cstr(x->o, "complexity");
	resp_bulk_cstr(x->o, "see the dskvs-server README");
	resp_bulk_cstr(x->o, "arguments");
	resp_out tmp = { .proto = x->o->proto };
	size_t n = docs_args(&tmp, c->args, c->args + strlen(c->args));
	resp_array(x->o, n);
	resp_raw(x->o, tmp.buf, tmp.len);
	resp_out_free(&tmp);
}

static void c_command(ctx *x)
{
	if (x->n == 1) {
		resp_array(x->o, NCMDS);
		for (size_t i = 0; i < NCMDS; i++)
			cmd_info(x, &cmds[i]);
		return;
	}
	str sub = A(1);
	if (IS(sub, "count") && x->n == 2) {
		resp_int(x->o, (long long)NCMDS);
	} else if (IS(sub, "list")) {
		resp_array(x->o, NCMDS);
		for (size_t i = 0; i < NCMDS; i++)
			resp_bulk_cstr(x->o, cmds[i].name);
	} else if (IS(sub, "info")) {
		if (x->n == 2) {
			resp_array(x->o, NCMDS);
			for (size_t i = 0; i < NCMDS; i++)
				cmd_info(x, &cmds[i]);
			return;
		}
		resp_array(x->o, x->n - 2);
		for (size_t i = 2; i < x->n; i++) {
			const struct cmd *c = lookup(A(i));
			if (c)
				cmd_info(x, c);
			else
				resp_null_array(x->o);
		}
	} else if (IS(sub, "docs")) {
		size_t n = 0;
		for (size_t i = 2; i < x->n; i++)
			n += lookup(A(i)) != NULL;
		resp_map(x->o, x->n == 2 ? NCMDS : n);
		if (x->n == 2) {
			for (size_t i = 0; i < NCMDS; i++)
				cmd_docs(x, &cmds[i]);
		}
		for (size_t i = 2; i < x->n; i++) {
			const struct cmd *c = lookup(A(i));
			if (c)
				cmd_docs(x, c);
		}
	} else if (IS(sub, "getkeys") && x->n >= 3) {
		const struct cmd *c = lookup(A(2));
		if (c == NULL) {
			resp_error(x->o, "ERR Invalid command specified");
			return;
		}
		size_t argc = x->n - 2;
		if (c->first == 0) {
			resp_error(x->o,
			           "ERR The command has no key arguments");
			return;
		}
		if ((c->arity > 0 && (int)argc != c->arity) ||
		    (c->arity < 0 && (int)argc < -c->arity)) {
			resp_error(x->o, "ERR Invalid number of arguments "
			                 "specified for command");
			return;
		}
		size_t last = c->last < 0 ? argc - 1 : (size_t)c->last;
		size_t n = 0;
		for (size_t i = (size_t)c->first; i <= last && i < argc;
		     i += (size_t)c->step)
			n++;
		resp_array(x->o, n);
		for (size_t i = (size_t)c->first; i <= last && i < argc;
		     i += (size_t)c->step)
			resp_bulk(x->o, A(2 + i).p, A(2 + i).n);
	} else {
		resp_error(x->o,
		           "ERR unknown subcommand '%.*s'. Try COMMAND "
		           "HELP.",
		           (int)(sub.n > 128 ? 128 : sub.n), sub.p);
	}
}

/* ---- type locks -----------------------------------------------------------
 * A write command holds, for each of its keys, the mutex of the key's
 * stripe (a hash of the name the type is decided on: the part before a '/')
 * from its type check to its write, so that two commands creating one name
 * as a string and as a hash cannot both pass their checks. Stripes are
 * taken in increasing order (a command with several keys takes each stripe
 * once), so two commands never wait for each other in a cycle. Leaf locks:
 * nothing else is taken while one is held, but store calls are made under
 * them (a write in --sync always mode waits for its fdatasync there: only
 * writers of the same stripe wait with it). */
#define TYPE_STRIPES 256
static pthread_mutex_t type_lock[TYPE_STRIPES] = {
	[0 ... TYPE_STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER
};

static unsigned type_stripe(str k)
{
	const char *sl = memchr(k.p, '/', k.n);
	size_t n = sl ? (size_t)(sl - k.p) : k.n;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k.p[i]) * 16777619u;
	return h % TYPE_STRIPES;
}

/* The stripes of cmd's keys in a (a bitmap of TYPE_STRIPES bits). */
static void type_stripes(const struct cmd *cmd, const str *a, size_t argc,
                         uint64_t set[TYPE_STRIPES / 64])
{
	memset(set, 0, TYPE_STRIPES / 8);
	long last = cmd->last < 0 ? (long)argc + cmd->last : cmd->last;
	for (long i = cmd->first;
	     i <= last && i<(long)argc; i += cmd->step> 0 ? cmd->step : 1) {
		unsigned st = type_stripe(a[i]);
		set[st / 64] |= UINT64_C(1) << (st % 64);
	}
}

static void type_lock_all(const uint64_t set[TYPE_STRIPES / 64], bool lock)
{
	for (unsigned w = 0; w < TYPE_STRIPES / 64; w++)
		for (uint64_t b = set[w]; b; b &= b - 1) {
			unsigned st = w * 64 + (unsigned)__builtin_ctzll(b);
			if (lock)
				pthread_mutex_lock(&type_lock[st]);
			else
				pthread_mutex_unlock(&type_lock[st]);
		}
}

void cmd_dispatch(conn *c, resp_arg *argv, size_t argc)
{
	str small[16];
	str *a = argc <= 16 ? small : malloc(argc * sizeof(str));
	if (a == NULL) {
		resp_error(&c->out, "OOM command not allowed: out of memory");
		return;
	}
	for (size_t i = 0; i < argc; i++)
		a[i] = (str){ c->in + argv[i].off, argv[i].len };
	ctx x = { c, &c->out, a, argc };
	const struct cmd *cmd = lookup(a[0]);
	if (cmd == NULL) {
		char args[160];
		size_t l = 0;
		args[0] = '\0';
		for (size_t i = 1; i < argc && l < 128; i++) {
			int w = snprintf(
			    args + l, sizeof(args) - l, "'%.*s' ",
			    (int)(a[i].n > 128 - l ? 128 - l : a[i].n), a[i].p);
			if (w < 0)
				break;
			l += (size_t)w;
			if (l >= sizeof(args))
				l = sizeof(args) - 1;
		}
		resp_error(&c->out,
		           "ERR unknown command '%.*s', with args "
		           "beginning with: %s",
		           (int)(a[0].n > 128 ? 128 : a[0].n), a[0].p, args);
	} else if (!c->authed && !(cmd->flags & F_NOAUTH)) {
		resp_error(&c->out, "NOAUTH Authentication required.");
	} else if ((cmd->arity > 0 && (long)argc != cmd->arity) ||
	           (cmd->arity < 0 && (long)argc < -cmd->arity)) {
		resp_error(&c->out,
		           "ERR wrong number of arguments for '%s' "
		           "command",
		           cmd->name);
	} else {
		atomic_store_explicit(&c->last_cmd, cmd->name,
		                      memory_order_relaxed);
		if ((cmd->flags & F_WRITE) && cmd->first > 0) {
			uint64_t set[TYPE_STRIPES / 64];
			type_stripes(cmd, a, argc, set);
			type_lock_all(set, true);
			cmd->fn(&x);
			type_lock_all(set, false);
		} else {
			cmd->fn(&x);
		}
	}
	if (a != small)
		free(a);
}
