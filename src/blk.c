/*
 * The value block (blk.h): allocation, references, and retirement through
 * RCU. Rules kept: a published block is never written again; the table's
 * reference is dropped only through call_rcu (dskvs__blk_retire), so a
 * reader that found the block inside a read-side section can finish with
 * it; the last reference frees.
 */
#include "blk.h"

#include <malloc.h>

#include <stdlib.h>
#include <string.h>

struct dskvs__blk *dskvs__blk_new(const char *coll, size_t clen,
                                  const char *member, size_t mlen,
                                  const void *val, size_t vlen, uint32_t refs)
{
	size_t sz =
	    offsetof(struct dskvs__blk, key) + clen + 1 + mlen + 1 + vlen;
	struct dskvs__blk *b = malloc(sz);
	if (b == NULL)
		return NULL;
	b->seq = 0;
	b->refs = refs;
	b->vlen = (uint32_t)vlen;
	b->clen = (uint16_t)clen;
	b->mlen = (uint16_t)mlen;
	memcpy(b->key, coll, clen);
	b->key[clen] = member ? '/' : '\0';
	if (mlen)
		memcpy(b->key + clen + 1, member, mlen);
	b->key[clen + 1 + mlen] = '\0';
	if (vlen)
		memcpy(dskvs__blk_val(b), val, vlen);
	return b;
}

void dskvs__blk_unref(struct dskvs__blk *b)
{
	if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		DSKVS_HOOK(DSKVS__HOOK_BLK_FREE, b);
		dskvs__note_freed(malloc_usable_size(b));
		free(b);
	}
}

static void blk_retire_cb(struct rcu_head *h)
{
	dskvs__blk_unref(caa_container_of(h, struct dskvs__blk, rcu));
}

void dskvs__blk_retire(struct dskvs__blk *b)
{
	dskvs__call_rcu(&b->rcu, blk_retire_cb);
}
