/*
 * Giving freed memory back to the system. glibc keeps what free() returns
 * inside its heap: a block freed among live ones only goes back by
 * malloc_trim(), which walks the heap and releases its free pages. After a
 * mass delete (1M members down to 1,000) that is the difference between
 * 198 MB and 12 MB resident (README, "Memory over time").
 *
 * The library counts the bytes it frees (value blocks: blk.c) and the
 * janitor trims (janitor.c): when its store has been idle a moment with
 * at least TRIM_IDLE_MIN freed since the last trim, or, under load, with
 * at least TRIM_BUSY_MIN freed and at most once a second. A trim holds
 * glibc's arena lock while it walks the heap (measured: 30 ms for a
 * 180 MB heap), which is why it waits for a quiet store when it can.
 *
 * State, process-wide as the heap is: `freed` is added to by any thread
 * that frees (relaxed: a statistic); `trimmed_at` (the value of `freed`
 * at the last trim) and `trim_ns` are claimed by compare-and-swap, so that
 * the janitors of several stores never trim twice for the same bytes.
 */
#include "base.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

static uint64_t freed, trimmed_at, trim_ns;

void dskvs__note_freed(size_t bytes)
{
	__atomic_add_fetch(&freed, bytes, __ATOMIC_RELAXED);
}

uint64_t dskvs__untrimmed_bytes(void)
{
	return __atomic_load_n(&freed, __ATOMIC_RELAXED) -
	       __atomic_load_n(&trimmed_at, __ATOMIC_RELAXED);
}

bool dskvs__trim(uint64_t min_bytes, uint64_t min_interval_ns)
{
	uint64_t f = __atomic_load_n(&freed, __ATOMIC_RELAXED);
	uint64_t t = __atomic_load_n(&trimmed_at, __ATOMIC_RELAXED);
	uint64_t now = dskvs__now_ns();
	uint64_t last = __atomic_load_n(&trim_ns, __ATOMIC_RELAXED);

	if (f - t < min_bytes || now - last < min_interval_ns)
		return false;
	if (!__atomic_compare_exchange_n(&trimmed_at, &t, f, false,
	                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return false; /* another janitor took these bytes */
	__atomic_store_n(&trim_ns, now, __ATOMIC_RELAXED);
#if defined(__GLIBC__)
	malloc_trim(0);
	return true;
#else
	return false;
#endif
}
