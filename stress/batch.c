/*
 * dskvs-stress: batches of writes (dskvs_write_batch), shared by the
 * threaded run (run.c) and crash mode (crash.c). See stress.h "batches".
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

unsigned int bat_k_owned(unsigned int w)
{
	return 3 + (w * 7) % 14; /* 3 .. 16 members */
}

unsigned int bat_k_shared(unsigned int j)
{
	return j == 0 ? 8 : 33;
}

void bat_coll_name(char *buf, size_t cap, bool shared, unsigned int i)
{
	snprintf(buf, cap, "%s%u", shared ? "bs" : "bo", i);
}

uint32_t bat_kid(uint32_t ci, unsigned int i)
{
	return BAT_KID + (ci << 6) + i;
}

bool bat_all_del(uint64_t b)
{
	return b % 11 == 0; /* b == 0 (never written) too */
}

bool bat_present(uint64_t b, unsigned int i)
{
	if (bat_all_del(b))
		return false;
	return !(b % 5 == 0 && i % 2 == 1);
}

size_t bat_buf_size(const struct stress_opts *o)
{
	return (BAT_KMAX + 1) * o->value_max;
}

size_t bat_ops(const struct stress_opts *o, dskvs_batch_op *ops,
               char (*names)[8], unsigned char *vbuf, uint32_t ci,
               unsigned int k, uint64_t b, uint32_t writer)
{
	size_t n = 0;
	unsigned char *p = vbuf;
	for (unsigned int i = 0; i < k; i++)
		snprintf(names[i], sizeof names[i], "m%u", i % BAT_KMAX);
	/* A decoy first: the same member again later must win. */
	if (b % 3 == 0 && bat_present(b, 0)) {
		uint64_t v = b | BAT_DECOY;
		size_t len = sv_len(o, bat_kid(ci, 0), v);
		sv_fill(p, len, bat_kid(ci, 0), writer, v);
		ops[n++] = (dskvs_batch_op){ names[0], p, len, 0 };
		p += len;
	}
	for (unsigned int x = 1; x <= k; x++) {
		unsigned int i = x % k; /* m1 .. m(k-1), then m0 */
		if (!bat_present(b, i)) {
			ops[n++] = (dskvs_batch_op){ names[i], NULL, 0, 1 };
			continue;
		}
		size_t len = sv_len(o, bat_kid(ci, i), b);
		sv_fill(p, len, bat_kid(ci, i), writer, b);
		ops[n++] = (dskvs_batch_op){ names[i], p, len, 0 };
		p += len;
	}
	return n;
}

struct bwalk {
	const struct stress_opts *o;
	const char *who, *what, *coll;
	uint32_t ci;
	unsigned int k;
	uint64_t mask;
	struct bat_seen *out;
};

static int bat_walk_cb(const char *m, size_t mlen, const void *val, size_t vlen,
                       void *arg)
{
	struct bwalk *c = arg;
	struct bat_seen *out = c->out;
	char why[256];
	unsigned long i = 0;
	bool ok = mlen >= 2 && mlen <= 3 && m[0] == 'm';
	for (size_t x = 1; ok && x < mlen; x++)
		ok = m[x] >= '0' && m[x] <= '9',
		i = i * 10 + (unsigned)(m[x] - '0');
	if (!ok || i >= c->k || (mlen == 3 && m[1] == '0')) {
		violation(V_WALK,
		          "%s %s %s: member \"%.*s\" the harness never "
		          "writes",
		          c->who, c->what, c->coll,
		          (int)(mlen < 40 ? mlen : 40), m);
		out->bad = true;
		return 0;
	}
	if (c->mask & (1ull << i)) {
		violation(V_WALK, "%s %s %s: member m%lu visited twice", c->who,
		          c->what, c->coll, i);
		out->bad = true;
		return 0;
	}
	c->mask |= 1ull << i;
	struct sv_info in;
	if (!sv_check(c->o, val, vlen, &in, why, sizeof why)) {
		violation(V_TORN, "%s %s %s/m%lu: not a whole value: %s",
		          c->who, c->what, c->coll, i, why);
		out->bad = true;
		return 0;
	}
	if (in.key != bat_kid(c->ci, (unsigned int)i)) {
		violation(V_MISDIRECTED,
		          "%s %s %s/m%lu: a value of key id %" PRIu32
		          ", expected %" PRIu32,
		          c->who, c->what, c->coll, i, in.key,
		          bat_kid(c->ci, (unsigned int)i));
		out->bad = true;
		return 0;
	}
	if (in.version == 0 || in.version >= BAT_REJECT) {
		violation(V_BATCH,
		          "%s %s %s/m%lu: a value of %s (version %#" PRIx64
		          "): %s",
		          c->who, c->what, c->coll, i,
		          in.version & BAT_DECOY ? "a decoy op" : "no batch",
		          in.version,
		          in.version & BAT_DECOY
		              ? "a later op of the same batch on the same "
		                "member must win"
		              : "a batch that was rejected, or nothing");
		out->bad = true;
		return 0;
	}
	out->members++;
	out->bytes += vlen;
	if (!out->b) {
		out->b = in.version;
	} else if (out->b != in.version && !out->mixed) {
		violation(
		    V_BATCH,
		    "%s %s %s: members of two batches in one walk: "
		    "m%lu of batch %#" PRIx64 ", another of batch %#" PRIx64
		    " (every batch writes the same %u members)",
		    c->who, c->what, c->coll, i, in.version, out->b, c->k);
		out->mixed = out->bad = true;
	}
	return 0;
}

bool bat_walk(const struct stress_opts *o, dskvs *s, const char *who,
              const char *what, const char *coll, uint32_t ci, unsigned int k,
              struct bat_seen *out)
{
	memset(out, 0, sizeof *out);
	struct bwalk c = { o, who, what, coll, ci, k, 0, out };
	int rc = dskvs_get_all(s, coll, bat_walk_cb, &c);
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s %s %s: got %s (%s)", who, what, coll,
		          rc_name(rc), dskvs_errmsg(s));
		return false;
	}
	if (out->b && !out->mixed) {
		for (unsigned int i = 0; i < k; i++) {
			bool seen = (c.mask >> i) & 1;
			if (seen == bat_present(out->b, i))
				continue;
			violation(V_BATCH,
			          "%s %s %s: batch %#" PRIx64 " %s m%u, but "
			          "the walk %s it (part of a batch)",
			          who, what, coll, out->b,
			          seen ? "deletes" : "puts", i,
			          seen ? "visited" : "did not visit");
			out->bad = true;
			break;
		}
	}
	return !out->bad;
}
