/*
 * Error codes (one list in dskvs.h generates everything), the per-thread
 * error detail behind dskvs_errmsg(), the diagnostics hook, and the clock.
 */
#include "base.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

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

/* s is ignored: the detail is per thread, not per store. */
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

void dskvs__diag(const struct dskvs__diag *d, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	if (d->fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	d->fn(d->arg, level, buf);
}

uint64_t dskvs__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
