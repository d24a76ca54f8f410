/*
 * A progress line on standard error for the tool's long operations.
 *
 * One operation at a time. The caller publishes how far it got with
 * progress_set() (a relaxed atomic store, cheap enough for every record); a
 * helper thread redraws the line a few times a second, and only once the
 * operation has run for PROGRESS_DELAY_MS, so quick commands on small stores
 * never print anything. When progress is off every call is a no-op.
 */
#ifndef DSKVS_TOOL_PROGRESS_H
#define DSKVS_TOOL_PROGRESS_H

#include <stdint.h>

/* Decide once, at startup: mode 1 forces progress on (even to a file or a
 * pipe, then one line per update, from the start), 0 turns it off, -1 shows
 * it only when standard error is a terminal. */
void progress_init(int mode);

/* Start showing "label: done/total unit (pct%)"; total 0 means unknown and
 * shows "label: done unit"; unit NULL shows only the label and the elapsed
 * time (for work that reports no progress of its own). unit "B" formats
 * sizes in KiB/MiB/GiB. The strings must outlive progress_end(). */
void progress_begin(const char *label, uint64_t total, const char *unit);
void progress_set(uint64_t done);
/* Stop the thread and erase the line. If anything was shown (or progress was
 * forced), print `final` (if not NULL) as the last line. */
void progress_end(const char *final);

#endif /* DSKVS_TOOL_PROGRESS_H */
