/*
 * Error codes (one list in dskvs.h generates everything) and the per-thread
 * error detail behind dskvs_errmsg().
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

/* The calling thread's detail of its last failure. Written and read only by
 * that thread. */
static __thread char detail[512];

const char *dskvs_strerror(int err)
{
	switch (err) {
	case DSKVS_OK:
		return "success";
#define XX(name, value, msg) \
	case DSKVS_##name:   \
		return msg;
		DSKVS_ERRNO_MAP(XX)
#undef XX
	default:
		return "unknown error";
	}
}

const char *dskvs_err_name(int err)
{
	switch (err) {
	case DSKVS_OK:
		return "DSKVS_OK";
#define XX(name, value, msg) \
	case DSKVS_##name:   \
		return "DSKVS_" #name;
		DSKVS_ERRNO_MAP(XX)
#undef XX
	default:
		return "DSKVS_UNKNOWN";
	}
}

const char *dskvs_errmsg(const dskvs *s)
{
	(void)s;
	return detail;
}

int dskvs__fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return code;
}

void dskvs__clear_detail(void)
{
	detail[0] = '\0';
}
