/*
 * The slab (slab.h): 2 MiB regions of 16 KiB pages, one size class per
 * page, empty pages shared by every class, memory given back by page and
 * by region. Every function runs under the owner's lock (slab.h).
 */
#include "slab.h"

#include <sys/mman.h>
#include <unistd.h>

#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SLAB_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SLAB_POISON(p, n)   ((void)(p), (void)(n))
#define SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

_Static_assert(SLAB_HDR_PAGES == 1, "the header fits in one slab page");
_Static_assert(SLAB_PAGE / SLAB_GRAIN <= UINT16_MAX, "objects a page");
_Static_assert(SLAB_CLASSES <= 256, "class: uint8_t");

static inline struct dskvs__slab_region *region_of(const void *p)
{
	return (struct dskvs__slab_region *)((uintptr_t)p &
	                                     ~(uintptr_t)(SLAB_REGION - 1));
}

static inline char *page_base(struct dskvs__slab_page *pg)
{
	struct dskvs__slab_region *r = region_of(pg);
	return (char *)r + (size_t)(pg - r->page) * SLAB_PAGE;
}

/* The first and last system pages (indexes in the region) that the object
 * at p of size bytes touches: the same or adjacent, as an object is
 * smaller than a system page. */
static inline void sys_span(const struct dskvs__slab_region *r, const void *p,
                            size_t size, size_t *first, size_t *last)
{
	size_t off = (uintptr_t)p - (uintptr_t)r;
	*first = off / SLAB_SYS;
	*last = (off + size - 1) / SLAB_SYS;
}

/* Count an object in or out of the system pages it touches. */
static inline void sys_count(struct dskvs__slab_region *r, const void *p,
                             size_t size, int d)
{
	size_t first, last;
	sys_span(r, p, size, &first, &last);
	r->sys_live[first] = (uint16_t)(r->sys_live[first] + d);
	if (last != first)
		r->sys_live[last] = (uint16_t)(r->sys_live[last] + d);
}

/* Clear the given-back marks of the system pages an object touches (they
 * are resident again once it is written). */
static inline void sys_touch(struct dskvs__slab_region *r,
                             struct dskvs__slab_page *pg, const void *p,
                             size_t size)
{
	size_t base = (size_t)(pg - r->page) * SLAB_SYS_PER, first, last;
	sys_span(r, p, size, &first, &last);
	pg->sys_released &= (uint8_t) ~(1u << (first - base));
	pg->sys_released &= (uint8_t) ~(1u << (last - base));
}

/* A free object's link (its first word), which ASan keeps poisoned. */
static inline void *link_get(void *o)
{
	SLAB_UNPOISON(o, sizeof(void *));
	void *n = *(void **)o;
	SLAB_POISON(o, sizeof(void *));
	return n;
}
/* Not inlined: the one write the slab makes into a freed object's bytes,
 * which a reader may have read before the grace period that TSan cannot
 * see; stress/tsan.supp names it alone. */
static __attribute__((noinline)) void link_set(void *o, void *n)
{
	SLAB_UNPOISON(o, sizeof(void *));
	*(void **)o = n;
	SLAB_POISON(o, sizeof(void *));
}

static inline unsigned page_cap(unsigned cls)
{
	return SLAB_PAGE / (cls * SLAB_GRAIN);
}

/* ---- the lists ------------------------------------------------------------
 * Doubly linked, NULL-terminated; a page is on at most one (`where`). */

static void list_push(struct dskvs__slab_page **head,
                      struct dskvs__slab_page *pg, uint8_t where)
{
	pg->prev = NULL;
	pg->next = *head;
	if (*head != NULL)
		(*head)->prev = pg;
	*head = pg;
	pg->where = where;
}

static void list_unlink(struct dskvs__slab_page **head,
                        struct dskvs__slab_page *pg)
{
	if (pg->prev != NULL)
		pg->prev->next = pg->next;
	else
		*head = pg->next;
	if (pg->next != NULL)
		pg->next->prev = pg->prev;
	pg->prev = pg->next = NULL;
	pg->where = SLAB_ON_NONE;
}

/* ---- regions --------------------------------------------------------------
 */

static void region_advise(struct dskvs__slab_region *r, bool huge)
{
	/* Advisory: a kernel without THP says EINVAL, and that is fine. */
	(void)madvise(r, SLAB_REGION, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	r->huge = huge;
}

/* A region's garbage, in system pages: those that hold no live object,
 * pages never handed out aside. */
static unsigned region_garbage(const struct dskvs__slab_region *r)
{
	unsigned g = 0;
	for (unsigned i = SLAB_HDR_PAGES * SLAB_SYS_PER;
	     i < SLAB_PAGES * SLAB_SYS_PER; i++)
		g += r->sys_live[i] == 0;
	return g - r->fresh * SLAB_SYS_PER;
}

/* Map a region on a 2 MiB boundary: map 4 MiB, unmap the ends. */
static struct dskvs__slab_region *region_map(struct dskvs__slab *s)
{
	size_t len = 2 * (size_t)SLAB_REGION;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uintptr_t a =
	    ((uintptr_t)m + SLAB_REGION - 1) & ~(uintptr_t)(SLAB_REGION - 1);
	char *r0 = (char *)a;
	if (r0 > m)
		munmap(m, (size_t)(r0 - m));
	if (r0 + SLAB_REGION < m + len)
		munmap(r0 + SLAB_REGION,
		       (size_t)(m + len - (r0 + SLAB_REGION)));

	/* Advise before the first touch: a page fault in an unadvised
	 * range maps 4 KiB pages, and the range is then no longer eligible
	 * for a huge page on fault. Fresh anonymous memory is zero: every
	 * page descriptor is empty, on no list, not released. */
	struct dskvs__slab_region *r = (struct dskvs__slab_region *)r0;
	if (s->nregions >= 1)
		(void)madvise(r0, SLAB_REGION, MADV_HUGEPAGE);
	r->huge = s->nregions >= 1;
	r->owner = s;
	r->fresh = SLAB_DATA_PAGES;
	/* A second region: the first asks now too (khugepaged may collapse
	 * it later), unless a release found it sparse. */
	if (s->nregions == 1 && !s->regions->huge &&
	    region_garbage(s->regions) <= SLAB_DATA_PAGES * SLAB_SYS_PER / 16)
		region_advise(s->regions, true);
	r->next = s->regions;
	if (s->regions != NULL)
		s->regions->prev = r;
	s->regions = r;
	s->nregions++;
	for (unsigned i = SLAB_PAGES; i-- > SLAB_HDR_PAGES;)
		list_push(&s->empty, &r->page[i], SLAB_ON_EMPTY);
	return r;
}

static void region_unmap(struct dskvs__slab *s, struct dskvs__slab_region *r)
{
	for (unsigned i = SLAB_HDR_PAGES; i < SLAB_PAGES; i++) {
		if (r->page[i].where == SLAB_ON_EMPTY)
			list_unlink(&s->empty, &r->page[i]);
		else if (r->page[i].where == SLAB_ON_EMPTY_REL)
			list_unlink(&s->empty_rel, &r->page[i]);
	}
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		s->regions = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	s->nregions--;
	SLAB_UNPOISON(r, SLAB_REGION);
	munmap(r, SLAB_REGION);
}

/* A region has just lost its last used page. */
static void region_emptied(struct dskvs__slab *s, struct dskvs__slab_region *r)
{
	if (s->spare == NULL) {
		s->spare = r; /* its pages stay on the empty list */
		return;
	}
	region_unmap(s, r);
}

/* ---- objects ----------------------------------------------------------------
 */

void *dskvs__slab_alloc(struct dskvs__slab *s, size_t size)
{
	size_t osz = size + SLAB_REDZONE; /* the object, red zone included */
	unsigned cls = (unsigned)(osz / SLAB_GRAIN);
	struct dskvs__slab_page *pg = s->partial[cls];
	void *p;

	if (DSKVS_UNLIKELY(pg == NULL)) {
		/* A resident empty page first, then one given back, then a
		 * new region. */
		if (s->empty != NULL) {
			pg = s->empty;
			list_unlink(&s->empty, pg);
		} else if (s->empty_rel != NULL) {
			pg = s->empty_rel;
			list_unlink(&s->empty_rel, pg);
		} else if (region_map(s) != NULL) {
			pg = s->empty;
			list_unlink(&s->empty, pg);
		} else {
			return NULL;
		}
		struct dskvs__slab_region *r = region_of(pg);
		if (r == s->spare)
			s->spare = NULL;
		r->used++;
		pg->cls = (uint8_t)cls;
		pg->live = 0;
		pg->bump = 0;
		pg->free = NULL;
		pg->sys_released = 0;
		if (!pg->used_once) {
			pg->used_once = 1;
			r->fresh--;
		}
		/* Nothing in it is anyone's until carved. */
		SLAB_POISON(page_base(pg), SLAB_PAGE);
		list_push(&s->partial[cls], pg, SLAB_ON_PARTIAL);
	}
	if (pg->free != NULL) {
		p = pg->free;
		pg->free = link_get(p);
	} else {
		p = page_base(pg) + (size_t)pg->bump * osz;
		pg->bump++;
	}
	SLAB_UNPOISON(p, size); /* the red zone stays poisoned */
	pg->live++;
	if (pg->free == NULL && pg->bump == page_cap(cls))
		list_unlink(&s->partial[cls], pg); /* full */
	struct dskvs__slab_region *r = region_of(pg);
	sys_count(r, p, osz, +1);
	if (DSKVS_UNLIKELY(pg->sys_released))
		sys_touch(r, pg, p, osz);
	s->in_use += osz;
	return p;
}

void dskvs__slab_free(struct dskvs__slab *s, void *p)
{
	struct dskvs__slab_region *r = region_of(p);
	struct dskvs__slab_page *pg =
	    &r->page[((uintptr_t)p - (uintptr_t)r) / SLAB_PAGE];
	size_t size = (size_t)pg->cls * SLAB_GRAIN;

	DSKVS_CHECK(r->owner == s, "slab_free: object of another slab");
	DSKVS_CHECK(pg->live > 0, "slab_free: page holds no object");
	s->in_use -= size;
	sys_count(r, p, size, -1);
	if (--pg->live == 0) {
		/* Empty: any class may take it now. */
		if (pg->where == SLAB_ON_PARTIAL)
			list_unlink(&s->partial[pg->cls], pg);
		SLAB_POISON(page_base(pg), SLAB_PAGE);
		pg->cls = 0;
		pg->free = NULL;
		list_push(&s->empty, pg, SLAB_ON_EMPTY);
		if (--r->used == 0)
			region_emptied(s, r);
		return;
	}
	SLAB_POISON(p, size);
	link_set(p, pg->free);
	pg->free = p;
	if (pg->where == SLAB_ON_NONE) /* was full */
		list_push(&s->partial[pg->cls], pg, SLAB_ON_PARTIAL);
}

/* ---- giving memory back
 * ------------------------------------------------------ */

/* Give back the system pages of a slab page in use that no object handed
 * out touches: first drop the free objects that lie on them from the
 * page's free list (they come back when the page empties), then madvise.
 * Returns the bytes given back. */
static size_t release_in_use(struct dskvs__slab *s,
                             struct dskvs__slab_region *r,
                             struct dskvs__slab_page *pg)
{
	size_t base = (size_t)(pg - r->page) * SLAB_SYS_PER, given = 0;
	size_t size = (size_t)pg->cls * SLAB_GRAIN;
	unsigned mask = 0;

	for (unsigned k = 0; k < SLAB_SYS_PER; k++)
		if (r->sys_live[base + k] == 0 &&
		    !(pg->sys_released & (1u << k)))
			mask |= 1u << k;
	if (mask == 0)
		return 0;
	/* Unlink every free object that touches a page of the mask. */
	void *o = pg->free, *prev_obj = NULL;
	while (o != NULL) {
		void *nx = link_get(o);
		size_t first, last;
		sys_span(r, o, size, &first, &last);
		if ((mask >> (first - base) & 1) ||
		    (mask >> (last - base) & 1)) {
			if (prev_obj == NULL)
				pg->free = nx;
			else
				link_set(prev_obj, nx);
		} else {
			prev_obj = o;
		}
		o = nx;
	}
	/* Runs of adjacent pages: one madvise each. */
	char *a = (char *)r + base * SLAB_SYS;
	for (unsigned k = 0; k < SLAB_SYS_PER;) {
		if (!(mask & (1u << k))) {
			k++;
			continue;
		}
		unsigned j = k;
		while (j < SLAB_SYS_PER && (mask & (1u << j)))
			j++;
		if (madvise(a + (size_t)k * SLAB_SYS,
		            (size_t)(j - k) * SLAB_SYS, MADV_DONTNEED) == 0) {
			for (unsigned m = k; m < j; m++)
				pg->sys_released |= (uint8_t)(1u << m);
			given += (size_t)(j - k) * SLAB_SYS;
		}
		k = j;
	}
	/* Its room may have been only those free objects. */
	if (pg->where == SLAB_ON_PARTIAL && pg->free == NULL &&
	    pg->bump == page_cap(pg->cls))
		list_unlink(&s->partial[pg->cls], pg);
	return given;
}

/* Give back the empty pages of r that are still resident, in runs. */
static size_t release_empty(struct dskvs__slab *s, struct dskvs__slab_region *r)
{
	size_t given = 0;
	unsigned i = SLAB_HDR_PAGES;
	while (i < SLAB_PAGES) {
		if (r->page[i].where != SLAB_ON_EMPTY) {
			i++;
			continue;
		}
		unsigned j = i;
		while (j < SLAB_PAGES && r->page[j].where == SLAB_ON_EMPTY)
			j++;
		char *a = (char *)r + (size_t)i * SLAB_PAGE;
		size_t n = (size_t)(j - i) * SLAB_PAGE;
		if (madvise(a, n, MADV_DONTNEED) == 0) {
			given += n;
			for (unsigned k = i; k < j; k++) {
				list_unlink(&s->empty, &r->page[k]);
				list_push(&s->empty_rel, &r->page[k],
				          SLAB_ON_EMPTY_REL);
			}
		}
		i = j;
	}
	return given;
}

/* Move r from the head of the region list to its tail. */
static void region_rotate(struct dskvs__slab *s, struct dskvs__slab_region *r)
{
	if (r->next == NULL)
		return;
	struct dskvs__slab_region *t = r->next;
	while (t->next != NULL)
		t = t->next;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		s->regions = r->next;
	r->next->prev = r->prev;
	r->prev = t;
	r->next = NULL;
	t->next = r;
}

size_t dskvs__slab_release(struct dskvs__slab *s, unsigned max_regions)
{
	size_t given = 0;
	/* Pages are given back only where the system page is SLAB_SYS: a
	 * larger one would be rounded up over live neighbours. */
	bool sys4k = sysconf(_SC_PAGESIZE) == SLAB_SYS;
	const unsigned sys_data = SLAB_DATA_PAGES * SLAB_SYS_PER;

	/* The spare region goes whole. */
	if (s->spare != NULL) {
		region_unmap(s, s->spare);
		s->spare = NULL;
		given += SLAB_REGION;
	}
	if (!sys4k)
		return given;
	for (unsigned n = 0; n < max_regions && n < s->nregions; n++) {
		struct dskvs__slab_region *r = s->regions;
		unsigned garbage = region_garbage(r);
		region_rotate(s, r);
		if (garbage <= sys_data / 8) {
			/* Dense: huge pages are worth more than what giving
			 * back would win (and khugepaged would fill it in). */
			if (!r->huge && garbage <= sys_data / 16 &&
			    s->nregions > 1)
				region_advise(r, true);
			continue;
		}
		if (r->huge)
			region_advise(r, false);
		for (unsigned i = SLAB_HDR_PAGES; i < SLAB_PAGES; i++)
			if (r->page[i].where == SLAB_ON_PARTIAL ||
			    r->page[i].where == SLAB_ON_NONE)
				given += release_in_use(s, r, &r->page[i]);
		given += release_empty(s, r);
	}
	return given;
}

void dskvs__slab_init(struct dskvs__slab *s)
{
	memset(s, 0, sizeof(*s));
}

void dskvs__slab_destroy(struct dskvs__slab *s)
{
	while (s->regions != NULL) {
		struct dskvs__slab_region *r = s->regions;
		s->regions = r->next;
		SLAB_UNPOISON(r, SLAB_REGION);
		munmap(r, SLAB_REGION);
	}
	memset(s, 0, sizeof(*s));
}
