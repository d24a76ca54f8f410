/*
 * The slab (slab.h): 2 MiB regions of 4 KiB pages, one size class per
 * page, empty pages shared by every class, memory given back by page and
 * by region. Every function runs under the owner's lock (slab.h).
 */
#include "slab.h"

#include <sys/mman.h>

#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SLAB_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SLAB_POISON(p, n)   ((void)(p), (void)(n))
#define SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

enum { SLAB_ON_NONE, SLAB_ON_PARTIAL, SLAB_ON_EMPTY };

_Static_assert(SLAB_HDR_PAGES < SLAB_PAGES / 8, "header too large");
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
	/* A second region: the first was full, and asks now too (khugepaged
	 * may collapse it later). */
	if (s->nregions == 1 && !s->regions->huge)
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
	for (unsigned i = SLAB_HDR_PAGES; i < SLAB_PAGES; i++)
		if (r->page[i].where == SLAB_ON_EMPTY)
			list_unlink(&s->empty, &r->page[i]);
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
	unsigned cls = (unsigned)(size / SLAB_GRAIN);
	struct dskvs__slab_page *pg = s->partial[cls];
	void *p;

	if (DSKVS_UNLIKELY(pg == NULL)) {
		if (s->empty == NULL && region_map(s) == NULL)
			return NULL;
		pg = s->empty;
		list_unlink(&s->empty, pg);
		struct dskvs__slab_region *r = region_of(pg);
		if (r == s->spare)
			s->spare = NULL;
		r->used++;
		if (!r->huge && s->nregions > 1 &&
		    r->used >= SLAB_DATA_PAGES / 4 * 3)
			region_advise(r, true);
		pg->cls = (uint8_t)cls;
		pg->live = 0;
		pg->bump = 0;
		pg->free = NULL;
		pg->released = 0;
		list_push(&s->partial[cls], pg, SLAB_ON_PARTIAL);
	}
	if (pg->free != NULL) {
		p = pg->free;
		SLAB_UNPOISON(p, size);
		pg->free = *(void **)p;
	} else {
		p = page_base(pg) + (size_t)pg->bump * size;
		pg->bump++;
		SLAB_UNPOISON(p, size);
	}
	pg->live++;
	if (pg->free == NULL && pg->bump == page_cap(cls))
		list_unlink(&s->partial[cls], pg); /* full */
	s->in_use += size;
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
	*(void **)p = pg->free;
	pg->free = p;
	SLAB_POISON(p, size);
	if (pg->where == SLAB_ON_NONE) /* was full */
		list_push(&s->partial[pg->cls], pg, SLAB_ON_PARTIAL);
}

/* ---- giving memory back
 * ------------------------------------------------------ */

size_t dskvs__slab_release(struct dskvs__slab *s)
{
	size_t given = 0;
	struct dskvs__slab_page *released = NULL, *tail = NULL;

	/* The spare region goes whole. */
	if (s->spare != NULL) {
		region_unmap(s, s->spare);
		s->spare = NULL;
		given += SLAB_REGION;
	}
	for (struct dskvs__slab_region *r = s->regions; r != NULL;
	     r = r->next) {
		if (r->huge && r->used < SLAB_DATA_PAGES / 4)
			region_advise(r, false);
		/* Runs of empty, still resident pages: one madvise each. */
		unsigned i = SLAB_HDR_PAGES;
		while (i < SLAB_PAGES) {
			struct dskvs__slab_page *pg = &r->page[i];
			if (pg->where != SLAB_ON_EMPTY || pg->released) {
				i++;
				continue;
			}
			unsigned j = i;
			while (j < SLAB_PAGES &&
			       r->page[j].where == SLAB_ON_EMPTY &&
			       !r->page[j].released)
				j++;
			char *a = (char *)r + (size_t)i * SLAB_PAGE;
			size_t n = (size_t)(j - i) * SLAB_PAGE;
			if (madvise(a, n, MADV_DONTNEED) == 0) {
				given += n;
				for (unsigned k = i; k < j; k++)
					r->page[k].released = 1;
			}
			i = j;
		}
	}
	/* Released pages to the end of the empty list, so that allocation
	 * takes resident ones first. */
	for (struct dskvs__slab_page *pg = s->empty, *nx; pg != NULL; pg = nx) {
		nx = pg->next;
		if (!pg->released)
			continue;
		list_unlink(&s->empty, pg);
		pg->next = NULL;
		pg->prev = tail;
		pg->where = SLAB_ON_EMPTY;
		if (tail != NULL)
			tail->next = pg;
		else
			released = pg;
		tail = pg;
	}
	if (released != NULL) {
		struct dskvs__slab_page **end = &s->empty;
		struct dskvs__slab_page *last = NULL;
		while (*end != NULL) {
			last = *end;
			end = &(*end)->next;
		}
		*end = released;
		released->prev = last;
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
