/*
 * Layer 0: a slab allocator for small objects (the value blocks), on 2 MiB
 * regions that ask for huge pages, that gives memory back.
 *
 * Why: a random get reaches a slot and then its block; with blocks from
 * malloc, spread over a heap of 4 KiB pages, the block costs a TLB miss
 * and a page walk on top of its cache miss (measured with a scratch build,
 * bench/README.md "Huge pages": +5% to +18% readrandom). malloc also puts
 * an 8-byte header in front of every block and rounds to 16 bytes; a slab
 * of 8-byte classes does neither.
 *
 * Layout. A region is 2 MiB, aligned to 2 MiB, mapped on its own, and cut
 * into slab pages of SLAB_PAGE (16 KiB, four system pages). Its first
 * SLAB_HDR_PAGES slab pages hold its header (struct dskvs__slab_region):
 * the owner and one descriptor per slab page. Every other slab page is
 * either empty or holds objects of one size class (8 .. SLAB_MAX bytes, a
 * multiple of 8), packed from the page's start, none crossing the page's
 * end. 16 KiB, not 4: a page's tail that no object fills is at most one
 * object, so 4 KiB pages of 152-byte blocks (the bench's) lost 3.5% of
 * each page (144 bytes) where 16 KiB pages lose 0.7% (120). Objects may
 * cross the system pages inside a slab page: the region counts, per
 * system page, the objects handed out that touch it, so a release gives
 * back every 4 KiB that holds no live object, inside slab pages in use
 * too (the free objects lying on it are dropped from their page's free
 * list first, and come back when the page empties). The owner and the page of
 * any object are found from its address alone (round down to 2 MiB, then the
 * page index), so an object is freed without knowing where it came from.
 *
 * Memory back (DESIGN rule 7: what the store holds now, never its
 * history). A page whose last object is freed goes back to its slab's list
 * of empty pages, for any class; a region whose pages are all empty is
 * unmapped at once (one spare kept per slab against map/unmap churn at a
 * boundary). dskvs__slab_release gives the empty pages of partly used
 * regions back to the system (MADV_DONTNEED: RSS drops at once), so after
 * a random delete of 99.9% only the 4 KiB system pages that still hold an
 * object stay resident, as with malloc_trim.
 *
 * Huge pages and giving back pull against each other: MADV_DONTNEED on part
 * of a huge page splits it, and khugepaged (max_ptes_none 511: one resident
 * page is enough) folds a region that still asks for huge pages back into
 * a whole 2 MiB, filling in what was given back. So a release decides per
 * region, from its garbage: the system pages that hold no live object,
 * not counting pages never handed out (a region being filled is not
 * garbage). Up to an eighth of garbage, the region keeps (or, at up to a
 * sixteenth, gets back) its huge-page advice and nothing inside it is given
 * back: at most 256 KiB a region stay resident unused. Past an eighth, it
 * is advised MADV_NOHUGEPAGE and every system page with no live object is
 * given back. A slab's first region asks only once a second is mapped, and
 * only if its garbage is that small: a small store stays on 4 KiB pages
 * and a few KiB of memory. Only where the system page is 4 KiB; elsewhere
 * a release only unmaps the spare region.
 *
 * Locking: none inside. Every call on a slab (and every free of an object
 * it owns) is made under the one lock its owner keeps for it (blk.c: the
 * shard's mutex). dskvs__slab_of only reads the region header's `owner`,
 * written once before any object of the region was handed out.
 *
 * Under ASan a free object is poisoned until it is handed out again, every
 * object is followed by a poisoned red zone of SLAB_REDZONE bytes (an
 * overflow into the next object is reported, as with malloc), a page is
 * poisoned until its objects are carved, and a region is unpoisoned
 * before it is unmapped.
 */
#ifndef DSKVS_SLAB_H
#define DSKVS_SLAB_H

#include "base.h"

#define SLAB_REGION  (2u << 20)
#define SLAB_PAGE    16384u
#define SLAB_SYS     4096u /* the system page: what madvise gives back */
#define SLAB_SYS_PER (SLAB_PAGE / SLAB_SYS)
#define SLAB_PAGES   (SLAB_REGION / SLAB_PAGE)
/* Classes are multiples of SLAB_GRAIN: 8, what a block's uint64_t needs,
 * and what leaves the queue its 3 tag bits (queue.h). */
#define SLAB_GRAIN   8u
#define SLAB_MAX     1016u /* the largest class */
#define SLAB_CLASSES (SLAB_MAX / SLAB_GRAIN + 1)
/* Under ASan every object is followed by a poisoned red zone, as malloc's
 * are, so that an overflow into the next object is reported. */
#if defined(__SANITIZE_ADDRESS__)
#define SLAB_REDZONE 16u
#else
#define SLAB_REDZONE 0u
#endif
/* The largest object one may ask for. */
#define SLAB_OBJ_MAX (SLAB_MAX - SLAB_REDZONE)

/* Where a slab page is (its `where`). */
enum {
	SLAB_ON_NONE,      /* in use and full */
	SLAB_ON_PARTIAL,   /* in use, with room: on its class's list */
	SLAB_ON_EMPTY,     /* empty and resident: on the slab's `empty` */
	SLAB_ON_EMPTY_REL, /* empty and given back: on `empty_rel` */
};

struct dskvs__slab_page {
	/* Either on its class's list of pages with room (partial), on the
	 * slab's list of empty pages, or full and on no list. */
	struct dskvs__slab_page *prev, *next;
	void *free;    /* freed objects of this page, linked through their
	                * first word */
	uint16_t live; /* objects handed out */
	uint16_t bump; /* objects ever carved since the page got its class */
	uint8_t cls;   /* size / SLAB_GRAIN; 0 while empty */
	uint8_t where; /* SLAB_ON_* */
	/* In use: which of its SLAB_SYS_PER system pages were given back
	 * (no object on them; free objects on them dropped from `free`).
	 * An empty page given back whole is on the slab's `empty_rel`. */
	uint8_t sys_released;
	uint8_t used_once; /* handed out a class since the region was mapped */
};

struct dskvs__slab;
struct dskvs__slab_region {
	struct dskvs__slab *owner;              /* constant */
	struct dskvs__slab_region *prev, *next; /* the owner's regions */
	unsigned used;  /* pages holding at least one object */
	bool huge;      /* advised MADV_HUGEPAGE now */
	unsigned fresh; /* data pages never handed out a class */
	struct dskvs__slab_page page[SLAB_PAGES];
	/* Objects handed out that touch each system page (an object crosses
	 * at most one system page boundary). */
	uint16_t sys_live[SLAB_REGION / SLAB_SYS];
};
#define SLAB_HDR_PAGES \
	((sizeof(struct dskvs__slab_region) + SLAB_PAGE - 1) / SLAB_PAGE)
#define SLAB_DATA_PAGES (SLAB_PAGES - SLAB_HDR_PAGES)

struct dskvs__slab {
	struct dskvs__slab_page *partial[SLAB_CLASSES];
	struct dskvs__slab_page *empty;     /* empty pages, resident */
	struct dskvs__slab_page *empty_rel; /* empty pages given back */
	struct dskvs__slab_region *regions;
	struct dskvs__slab_region *spare; /* an empty region kept mapped */
	unsigned nregions;                /* mapped, the spare included */
	size_t in_use;                    /* bytes of objects handed out */
};

DSKVS_LOCAL void dskvs__slab_init(struct dskvs__slab *s);
/* Unmap every region. Only once no object of s is in use or reachable. */
DSKVS_LOCAL void dskvs__slab_destroy(struct dskvs__slab *s);
/* An object of `size` bytes (SLAB_GRAIN .. SLAB_OBJ_MAX, a multiple of
 * SLAB_GRAIN), SLAB_GRAIN-aligned; NULL when no region can be mapped
 * (ENOMEM). Under the owner's lock; may map a region (system calls). */
DSKVS_LOCAL void *dskvs__slab_alloc(struct dskvs__slab *s, size_t size);
/* Free an object of s (dskvs__slab_of(p) == s). Under the owner's lock;
 * may unmap a region (a system call). */
DSKVS_LOCAL void dskvs__slab_free(struct dskvs__slab *s, void *p);
/* Give back to the system (MADV_DONTNEED) the 4 KiB pages of up to
 * max_regions regions that hold no object, taken from the head of the
 * region list and moved to its tail (so that calls of max_regions each,
 * nregions / max_regions of them, cover every region once), and unmap the
 * spare region. A region left with more than an eighth of its system
 * pages given back stops asking for huge pages (khugepaged would fill
 * them back in: with max_ptes_none at 511, one resident page is enough
 * for it to collapse a whole 2 MiB), and one with at most a sixteenth
 * asks again. Returns the bytes given back. Under the owner's lock: a
 * system call per run of given-back pages, so callers bound a call by
 * max_regions and let go of the lock between calls (blk.c). */
DSKVS_LOCAL size_t dskvs__slab_release(struct dskvs__slab *s,
                                       unsigned max_regions);

/* The slab that owns an object from dskvs__slab_alloc. Any thread that
 * holds the object. */
static inline struct dskvs__slab *dskvs__slab_of(const void *p)
{
	return ((const struct dskvs__slab_region *)((uintptr_t)p &
	                                            ~(uintptr_t)(SLAB_REGION -
	                                                         1)))
	    ->owner;
}

#endif
