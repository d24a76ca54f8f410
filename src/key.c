/*
 * Key parsing. "coll/member" is a member key; "coll" and "coll/" name a
 * collection. The collection is everything before the first '/'.
 */
#include "base.h"

#include <string.h>

int dskvs__key_parse(const char *key, int want_member, struct dskvs__key *k)
{
	/* Never scan further than the longest key that could be valid, so a
	 * huge string costs no more than a long one. */
	const size_t limit = 2 * (size_t)DSKVS_NAME_MAX + 2;
	size_t n;
	const char *slash;

	if (key == NULL || key[0] == '\0' || key[0] == '/')
		return DSKVS_EBADKEY;
	n = strnlen(key, limit);
	slash = memchr(
	    key, '/',
	    n < (size_t)DSKVS_NAME_MAX + 1 ? n : (size_t)DSKVS_NAME_MAX + 1);
	if (slash == NULL) {
		if (n > DSKVS_NAME_MAX)
			return DSKVS_ETOOBIG;
		if (want_member)
			return DSKVS_EBADKEY;
		k->coll = key;
		k->clen = n;
		k->member = NULL;
		k->mlen = 0;
		return DSKVS_OK;
	}
	k->coll = key;
	k->clen = (size_t)(slash - key);
	if (slash[1] == '\0') {
		if (want_member)
			return DSKVS_EBADKEY;
		k->member = NULL;
		k->mlen = 0;
		return DSKVS_OK;
	}
	if (!want_member)
		return DSKVS_EBADKEY;
	k->member = slash + 1;
	k->mlen = n - k->clen - 1;
	if (n == limit || k->mlen > DSKVS_NAME_MAX)
		return DSKVS_ETOOBIG;
	return DSKVS_OK;
}

int dskvs__key_make(const char *coll, size_t clen, const void *member,
                    size_t mlen, int want_member, struct dskvs__key *k)
{
	if (coll == NULL || clen == 0)
		return DSKVS_EBADKEY;
	if (clen > DSKVS_NAME_MAX)
		return DSKVS_ETOOBIG;
	if (memchr(coll, '/', clen) != NULL || memchr(coll, '\0', clen) != NULL)
		return DSKVS_EBADKEY;
	k->coll = coll;
	k->clen = clen;
	if (!want_member) {
		k->member = NULL;
		k->mlen = 0;
		return DSKVS_OK;
	}
	if (member == NULL && mlen > 0)
		return DSKVS_EBADKEY;
	if (mlen > DSKVS_NAME_MAX)
		return DSKVS_ETOOBIG;
	/* The tables want a pointer even for an empty name. */
	k->member = member ? (const char *)member : "";
	k->mlen = mlen;
	return DSKVS_OK;
}
