/*
 * The blocks' slab (src/slab.h): objects never overlap and keep their
 * bytes, memory comes back (pages by madvise, regions by munmap), and a
 * store's values sit on memory that asked for huge pages.
 */
#include "testutil.h"

#include "internal.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif
#include <unistd.h>

TestSuite(slab, .init = tu_setup, .fini = tu_teardown, .timeout = 60);

struct obj {
	unsigned char *p;
	size_t size;
	unsigned char tag;
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(struct obj *o, size_t size, unsigned char tag,
                 struct dskvs__slab *s)
{
	o->p = dskvs__slab_alloc(s, size);
	cr_assert_not_null(o->p);
	cr_assert_eq((uintptr_t)o->p % SLAB_GRAIN, 0, "misaligned object");
	cr_assert_eq(dskvs__slab_of(o->p), s);
	o->size = size;
	o->tag = tag;
	memset(o->p, tag, size);
}

static void check(const struct obj *o)
{
	for (size_t i = 0; i < o->size; i++)
		if (o->p[i] != o->tag)
			cr_assert_fail(
			    "object %p (%zu bytes) byte %zu is %u, not %u",
			    (void *)o->p, o->size, i, o->p[i], o->tag);
}

static size_t rand_size(void)
{
	return SLAB_GRAIN * (1 + next_rand() % (SLAB_OBJ_MAX / SLAB_GRAIN));
}

/* Mixed sizes over several regions, freed and reallocated in random
 * order, with releases in between: every object keeps its bytes (none
 * overlaps another, none is handed out twice, none is given back while
 * live); once all are freed, only the spare region is left, and a release
 * unmaps it. */
Test(slab, objects_never_overlap_and_all_come_back)
{
	enum { N = 20000 };
	static struct obj o[N];
	struct dskvs__slab s;
	dskvs__slab_init(&s);
	for (size_t i = 0; i < N; i++)
		fill(&o[i], rand_size(), (unsigned char)(1 + i % 251), &s);
	cr_assert_gt(s.nregions, 3, "want several regions, got %u", s.nregions);
	for (size_t i = 0; i < N; i++)
		check(&o[i]);
	for (int round = 0; round < 6; round++) {
		/* Free most, give memory back (pages in use included), and
		 * check that nothing live was touched; then refill. */
		static bool gone[N];
		for (size_t i = 0; i < N; i++) {
			gone[i] = next_rand() % 8 != 0;
			if (gone[i])
				dskvs__slab_free(&s, o[i].p);
		}
		if (round % 2)
			(void)dskvs__slab_release(&s, ~0u);
		for (size_t i = 0; i < N; i++)
			if (!gone[i])
				check(&o[i]);
		for (size_t i = 0; i < N; i++)
			if (gone[i])
				fill(&o[i], rand_size(),
				     (unsigned char)(1 + next_rand() % 251),
				     &s);
		for (size_t i = 0; i < N; i++)
			check(&o[i]);
	}
	/* Free in a random order. */
	for (size_t i = N; i > 1; i--) {
		size_t j = next_rand() % i;
		struct obj t = o[i - 1];
		o[i - 1] = o[j];
		o[j] = t;
	}
	for (size_t i = 0; i < N; i++)
		dskvs__slab_free(&s, o[i].p);
	cr_assert_eq(s.in_use, 0);
	cr_assert_leq(s.nregions, 1,
	              "%u regions left mapped with nothing in "
	              "use (one spare allowed)",
	              s.nregions);
	(void)dskvs__slab_release(&s, ~0u);
	cr_assert_eq(s.nregions, 0);
	cr_assert_null(s.regions);
	dskvs__slab_destroy(&s);
}

/* Resident pages of [p, p + len), by mincore. */
static size_t resident_pages(void *p, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), n = 0;
	unsigned char *vec = malloc(len / pg);
	cr_assert_not_null(vec);
	cr_assert_eq(mincore(p, len, vec), 0);
	for (size_t i = 0; i < len / pg; i++)
		n += vec[i] & 1;
	free(vec);
	return n;
}

/* A random delete of 99.9% leaves a live object in nearly every region,
 * so no region can be unmapped: a release must give back the empty pages
 * inside them. Afterwards only the header pages and the pages that hold
 * a live object stay resident (one or two 4 KiB pages each, inside slab
 * pages still in use), and the released pages serve new objects
 * again. On the old allocator (malloc) there was no such call; the
 * store-level figure is churn::memory_comes_back_after_mass_deletes. */
Test(slab, release_gives_back_the_empty_pages_of_sparse_regions)
{
	enum { N = 100000, SZ = 160 };
	static struct obj o[N];
	struct dskvs__slab s;
	dskvs__slab_init(&s);
	for (size_t i = 0; i < N; i++)
		fill(&o[i], SZ, (unsigned char)(1 + i % 251), &s);
	unsigned regions = s.nregions;
	size_t live = 0;
	for (size_t i = 0; i < N; i++) {
		if (next_rand() % 1000 == 0) {
			o[live++] = o[i];
			continue;
		}
		dskvs__slab_free(&s, o[i].p);
	}
	cr_assert_eq(s.nregions, regions,
	             "a region was unmapped: the test "
	             "wants every region still used");
	size_t given = dskvs__slab_release(&s, ~0u);
	cr_assert_gt(given, (size_t)regions * SLAB_REGION / 2);
	size_t resident = 0;
	for (struct dskvs__slab_region *r = s.regions; r != NULL; r = r->next) {
		resident += resident_pages(r, SLAB_REGION);
		cr_assert(!r->huge,
		          "a sparse region still asks for huge pages");
	}
	cr_log_info("%u regions, %zu live objects, %zu pages resident", regions,
	            live, resident);
	/* In system pages: a live object touches one or two, a header
	 * slab page SLAB_SYS_PER. */
	cr_assert_leq(resident,
	              2 * live +
	                  (size_t)regions * SLAB_HDR_PAGES * SLAB_SYS_PER,
	              "%zu pages resident for %zu live objects in %u regions",
	              resident, live, regions);
	for (size_t i = 0; i < live; i++)
		check(&o[i]);
	/* Released pages serve again. */
	for (size_t i = live; i < N; i++)
		fill(&o[i], SZ, (unsigned char)(1 + i % 251), &s);
	for (size_t i = 0; i < N; i++)
		check(&o[i]);
	for (size_t i = 0; i < N; i++)
		dskvs__slab_free(&s, o[i].p);
	dskvs__slab_destroy(&s);
}

/* khugepaged (max_ptes_none 511) collapses a 2 MiB range with a single
 * resident page back into a whole huge page, filling in what a release
 * gave back. So a region left with more than an eighth given back must
 * stop asking for huge pages, however many of its pages are still in use
 * (a region half used kept asking before, and its given-back half was
 * resident again within a minute); and one that fills up again asks
 * again. */
Test(slab, a_half_empty_region_stops_asking_for_huge_pages)
{
	enum { SZ = 256 };
	size_t per_region =
	    (size_t)SLAB_DATA_PAGES * (SLAB_PAGE / (SZ + SLAB_REDZONE));
	size_t n = 3 * per_region;
	struct obj *o = calloc(n, sizeof(*o));
	cr_assert_not_null(o);
	struct dskvs__slab s;
	dskvs__slab_init(&s);
	for (size_t i = 0; i < n; i++)
		fill(&o[i], SZ, (unsigned char)(1 + i % 251), &s);
	cr_assert_eq(s.nregions, 3);
	for (struct dskvs__slab_region *r = s.regions; r; r = r->next)
		cr_assert(r->huge, "a full region of a slab of three does not "
		                   "ask for huge pages");
	/* Free the objects of every other slab page: half of each region. */
	for (size_t i = 0; i < n; i++) {
		size_t pg = ((uintptr_t)o[i].p % SLAB_REGION) / SLAB_PAGE;
		if (pg % 2 == 0) {
			dskvs__slab_free(&s, o[i].p);
			o[i].p = NULL;
		}
	}
	(void)dskvs__slab_release(&s, ~0u);
	for (struct dskvs__slab_region *r = s.regions; r; r = r->next)
		cr_assert(!r->huge,
		          "a region half given back still asks for "
		          "huge pages (used %u of %u pages)",
		          r->used, (unsigned)SLAB_DATA_PAGES);
	for (size_t i = 0; i < n; i++)
		if (o[i].p != NULL)
			check(&o[i]);
	/* Filled again: it asks again at the next release. */
	for (size_t i = 0; i < n; i++)
		if (o[i].p == NULL)
			fill(&o[i], SZ, (unsigned char)(1 + i % 251), &s);
	(void)dskvs__slab_release(&s, ~0u);
	for (struct dskvs__slab_region *r = s.regions; r; r = r->next)
		cr_assert(r->huge, "a region full again does not ask for huge "
		                   "pages");
	for (size_t i = 0; i < n; i++) {
		check(&o[i]);
		dskvs__slab_free(&s, o[i].p);
	}
	dskvs__slab_destroy(&s);
	free(o);
}

/* Does a mapping advised MADV_HUGEPAGE ("hg" in its VmFlags) hold p? */
static bool in_hg_mapping(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	cr_assert_not_null(f);
	char line[512];
	bool in = false, hg = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			hg = strstr(line, " hg") != NULL;
			break;
		}
	}
	fclose(f);
	return hg;
}

struct vals {
	const void *p[64];
	size_t n, seen;
};

static int collect(const char *member, size_t mlen, const void *val,
                   size_t vlen, void *arg)
{
	(void)member, (void)mlen, (void)vlen;
	struct vals *v = arg;
	if (v->seen++ % 512 == 0 && v->n < 64)
		v->p[v->n++] = val;
	return 0;
}

/* The promise of issue 16's first item: a store of more than a region's
 * worth of values keeps them on memory that asked for huge pages (with
 * malloc they sat in the heap, which never asks). */
Test(slab, values_sit_on_huge_page_memory)
{
	static char val[200];
	char key[64];
	dskvs *s = tu_open(tu_dir);
	for (unsigned i = 0; i < 30000; i++) {
		snprintf(key, sizeof(key), "c/m%u", i);
		cr_assert_eq(dskvs_put(s, key, val, sizeof(val), NULL, NULL),
		             DSKVS_OK);
	}
	struct vals v = { 0 };
	cr_assert_eq(dskvs_get_all(s, "c", collect, &v), DSKVS_OK);
	cr_assert_gt(v.n, 30);
	for (size_t i = 0; i < v.n; i++)
		cr_assert(in_hg_mapping(v.p[i]),
		          "value %zu of %zu at %p is not on memory advised "
		          "MADV_HUGEPAGE",
		          i, v.n, v.p[i]);
	tu_close(s);
}

/* Blocks allocated by one thread (its shard's slab) and freed by another
 * go back to the allocating shard's slab, under its lock: the pool ends
 * with nothing in use in any slab. */
struct xfree {
	struct dskvs__blk_pool *pool;
	struct dskvs__blk *b[4096];
};

static void *alloc_many(void *arg)
{
	struct xfree *x = arg;
	static const char val[100];
	for (size_t i = 0; i < 4096; i++) {
		x->b[i] = dskvs__blk_alloc(x->pool, "m", 1, val,
		                           sizeof(val) - i % 64, 1);
		cr_assert_not_null(x->b[i]);
	}
	return NULL;
}

static void *free_many(void *arg)
{
	struct xfree *x = arg;
	for (size_t i = 0; i < 4096; i++)
		dskvs__blk_unref(x->b[i]);
	return NULL;
}

Test(slab, a_block_freed_by_another_thread_goes_home)
{
	static struct dskvs__blk_pool pool;
	static struct xfree x[2];
	pthread_t t[2];
	dskvs__blk_pool_init(&pool);
	for (int i = 0; i < 2; i++) {
		x[i].pool = &pool;
		cr_assert_eq(pthread_create(&t[i], NULL, alloc_many, &x[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* Each thread frees the other's blocks, at the same time. */
	struct xfree swap = x[0];
	x[0] = x[1];
	x[1] = swap;
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, free_many, &x[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	size_t in_use = 0;
	for (unsigned i = 0; i < BLK_SHARDS; i++)
		in_use += pool.sh[i].slab.in_use;
	cr_assert_eq(in_use, 0, "%zu bytes still in use in the slabs", in_use);
	dskvs__blk_pool_trim(&pool);
	for (unsigned i = 0; i < BLK_SHARDS; i++)
		cr_assert_eq(pool.sh[i].slab.nregions, 0);
	dskvs__blk_pool_destroy(&pool);
}

/* Slab blocks are only 8-byte aligned (8-byte classes), so a ring entry
 * has 3 tag bits, not 4: every op, with and without the batch flag, must
 * come back whole, and the pointer too. (With the old 16-byte tags, the
 * flag's bit 3 fell inside such a pointer.) */
Test(slab, ring_tags_round_trip_on_8_byte_aligned_blocks)
{
	static const unsigned ops[] = { DSKVS_OP_PUT, DSKVS_OP_DEL,
		                        DSKVS_OP_DELALL, DSKVS_OP_NOP };
	struct dskvs__slab s;
	dskvs__slab_init(&s);
	void *p8 = NULL;
	/* An object at an odd multiple of 8. */
	for (int i = 0; i < 4 && p8 == NULL; i++) {
		void *p = dskvs__slab_alloc(&s, 24);
		if ((uintptr_t)p % 16 == 8)
			p8 = p;
	}
	cr_assert_not_null(p8);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		for (unsigned grp = 0; grp < 2; grp++) {
			if (grp && ops[i] == DSKVS_OP_DELALL)
				continue; /* never in a batch of writes */
			unsigned op = ops[i] | (grp ? DSKVS_OP_GRP : 0), got;
			void *e = dskvs__tag(p8, op);
			cr_assert_eq(dskvs__untag(e, &got), p8,
			             "op %u grp %u: pointer changed", ops[i],
			             grp);
			cr_assert_eq(got, ops[i],
			             "op %u grp %u came back as %u", ops[i],
			             grp, got);
			cr_assert_eq(dskvs__tag_grp(e), grp != 0);
		}
	dskvs__slab_destroy(&s);
}

/* Under ASan each object has a poisoned red zone after it, as malloc's
 * blocks do: a write one byte past an object is reported (the child dies)
 * instead of landing in the next object. Without the red zone the write
 * went silently into its neighbour's first byte. */
Test(slab, an_overflow_past_an_object_is_reported_under_asan)
{
#if !defined(__SANITIZE_ADDRESS__)
	cr_skip_test("needs ASan");
#else
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct dskvs__slab s;
		dskvs__slab_init(&s);
		volatile char *a = dskvs__slab_alloc(&s, 32);
		(void)dskvs__slab_alloc(&s, 32);
		a[32] = 1;
		_exit(0); /* not reported */
	}
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0),
	          "a write past a slab object was not reported");
#endif
}

#define NMAX 60000
static struct obj live[NMAX];
static size_t nlive;

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* Assert that the object at offset off (osz bytes) of region r, on slab
 * page pi, lies on no system page marked given back. */
static void on_kept_pages(const struct dskvs__slab_region *r, size_t pi,
                          size_t off, size_t osz, const char *what)
{
	const struct dskvs__slab_page *pg = &r->page[pi];
	unsigned bf = (unsigned)(off / SLAB_SYS - pi * SLAB_SYS_PER);
	unsigned bl =
	    (unsigned)((off + osz - 1) / SLAB_SYS - pi * SLAB_SYS_PER);
	cr_assert(!(pg->sys_released & (1u << bf)) &&
	              !(pg->sys_released & (1u << bl)),
	          "%s object on a system page marked given back", what);
}

/* Recompute everything the slab keeps from the set of live objects. */
static void invariants(struct dskvs__slab *s)
{
	static uint16_t sl[SLAB_REGION / SLAB_SYS];
	static uint16_t lv[SLAB_PAGES];
	static uintptr_t fr[NMAX * 4];
	size_t in_use = 0;
	unsigned nreg = 0;
	for (struct dskvs__slab_region *r = s->regions; r; r = r->next) {
		nreg++;
		cr_assert_eq(r->owner, s);
		memset(sl, 0, sizeof(sl));
		memset(lv, 0, sizeof(lv));
		for (size_t i = 0; i < nlive; i++) {
			uintptr_t a = (uintptr_t)live[i].p;
			if ((a & ~(uintptr_t)(SLAB_REGION - 1)) != (uintptr_t)r)
				continue;
			size_t off = a - (uintptr_t)r;
			size_t pi = off / SLAB_PAGE;
			struct dskvs__slab_page *pg = &r->page[pi];
			size_t osz = live[i].size + SLAB_REDZONE;
			cr_assert_eq(pg->cls * SLAB_GRAIN, osz,
			             "live obj on page of class %u, size %zu",
			             pg->cls, osz);
			cr_assert_eq((off % SLAB_PAGE) % osz, 0);
			cr_assert_lt((off % SLAB_PAGE) / osz, pg->bump,
			             "live object beyond bump");
			size_t f = off / SLAB_SYS,
			       l = (off + osz - 1) / SLAB_SYS;
			sl[f]++;
			if (l != f)
				sl[l]++;
			on_kept_pages(r, pi, off, osz, "live");
			lv[pi]++;
			in_use += osz;
		}
		for (size_t k = SLAB_HDR_PAGES * SLAB_SYS_PER;
		     k < SLAB_REGION / SLAB_SYS; k++)
			cr_assert_eq(r->sys_live[k], sl[k],
			             "sys_live[%zu] = %u, really %u", k,
			             r->sys_live[k], sl[k]);
		unsigned used = 0;
		for (unsigned i = SLAB_HDR_PAGES; i < SLAB_PAGES; i++) {
			struct dskvs__slab_page *pg = &r->page[i];
			cr_assert_eq(pg->live, lv[i], "page live %u, really %u",
			             pg->live, lv[i]);
			if (lv[i] == 0) {
				cr_assert(pg->where == SLAB_ON_EMPTY ||
				              pg->where == SLAB_ON_EMPTY_REL,
				          "empty page where=%u", pg->where);
				continue;
			}
			used++;
			size_t osz = pg->cls * SLAB_GRAIN;
			unsigned cap = SLAB_PAGE / osz;
			cr_assert_leq(pg->bump, cap);
			/* free list */
			size_t nf = 0;
			char *base = (char *)r + (size_t)i * SLAB_PAGE;
			for (void *o = pg->free; o;) {
				uintptr_t a = (uintptr_t)o;
				cr_assert(a >= (uintptr_t)base &&
				          a < (uintptr_t)base + SLAB_PAGE);
				cr_assert_eq((a - (uintptr_t)base) % osz, 0);
				cr_assert_lt((a - (uintptr_t)base) / osz,
				             pg->bump);
				on_kept_pages(r, i, a - (uintptr_t)r, osz,
				              "free-list");
				fr[nf++] = a;
				cr_assert_lt(nf, (size_t)cap + 1,
				             "free list loops");
#if defined(__SANITIZE_ADDRESS__)
				ASAN_UNPOISON_MEMORY_REGION(o, 8);
				void *nx = *(void **)o;
				ASAN_POISON_MEMORY_REGION(o, 8);
				o = nx;
#else
				o = *(void **)o;
#endif
			}
			/* no free object is live */
			qsort(fr, nf, sizeof(*fr), cmp_ptr);
			for (size_t j = 1; j < nf; j++)
				cr_assert_neq(fr[j], fr[j - 1], "dup free");
			for (size_t j = 0; j < nlive; j++) {
				uintptr_t a = (uintptr_t)live[j].p;
				if (a < (uintptr_t)base ||
				    a >= (uintptr_t)base + SLAB_PAGE)
					continue;
				cr_assert_null(
				    bsearch(&a, fr, nf, sizeof(*fr), cmp_ptr),
				    "a live object on a free list");
			}
			bool room = pg->free != NULL || pg->bump < cap;
			cr_assert_eq(pg->where == SLAB_ON_PARTIAL, room,
			             "page where=%u free=%p bump=%u cap=%u",
			             pg->where, pg->free, pg->bump, cap);
			if (!room)
				cr_assert_eq(pg->where, SLAB_ON_NONE);
		}
		cr_assert_eq(r->used, used);
	}
	cr_assert_eq(nreg, s->nregions);
	cr_assert_eq(s->in_use, in_use);
	/* partial lists: each page once, right class, consistent links */
	for (unsigned c = 1; c < SLAB_CLASSES; c++)
		for (struct dskvs__slab_page *pg = s->partial[c], *pv = NULL;
		     pg; pv = pg, pg = pg->next) {
			cr_assert_eq(pg->prev, pv);
			cr_assert_eq(pg->cls, c);
			cr_assert_eq(pg->where, SLAB_ON_PARTIAL);
		}
}

static void do_alloc(struct dskvs__slab *s, size_t size)
{
	if (nlive == NMAX)
		return;
	struct obj *o = &live[nlive];
	o->p = dskvs__slab_alloc(s, size);
	cr_assert_not_null(o->p);
	o->size = size;
	o->tag = (unsigned char)(1 + next_rand() % 254);
	/* fresh object: bytes given back read as zero, others anything */
	memset(o->p, o->tag, size);
	nlive++;
}

static void do_free(struct dskvs__slab *s, size_t i)
{
	check(&live[i]);
	dskvs__slab_free(s, live[i].p);
	live[i] = live[--nlive];
}

/* sizes: a few classes that straddle 4 KiB boundaries a lot */
static size_t pick_size(void)
{
	static const size_t cls[] = {
		8, 24, 152, 328, 584, 1000 - SLAB_REDZONE, SLAB_OBJ_MAX, 264, 40
	};
	size_t z = cls[next_rand() % (sizeof(cls) / sizeof(cls[0]))];
	if (z > SLAB_OBJ_MAX)
		z = SLAB_OBJ_MAX;
	return z;
}

/* Random allocations and frees of classes that straddle 4 KiB pages, with
 * partial releases in between; after each phase every counter, list and
 * free list the slab keeps is rebuilt from the set of live objects and
 * compared, and every live object's bytes are checked. */
Test(slab, random_alloc_free_release_against_a_model)
{
	struct dskvs__slab s;
	dskvs__slab_init(&s);
	nlive = 0;
	for (int phase = 0; phase < 8; phase++) {
		/* grow, or shrink hard, then release partly */
		size_t target = (phase % 3 == 0)   ? NMAX * 9 / 10
		                : (phase % 3 == 1) ? NMAX / 50
		                                   : NMAX / 3;
		size_t steps = 40000;
		for (size_t st = 0; st < steps; st++) {
			bool grow = nlive < target ? next_rand() % 4 != 0
			                           : next_rand() % 4 == 0;
			if (grow || nlive == 0)
				do_alloc(&s, pick_size());
			else
				do_free(&s, next_rand() % nlive);
			if (st % 5000 == 4999) {
				(void)dskvs__slab_release(&s,
				                          1 + next_rand() % 3);
				for (size_t i = 0; i < nlive; i++)
					check(&live[i]);
			}
		}
		(void)dskvs__slab_release(&s, ~0u);
		invariants(&s);
		for (size_t i = 0; i < nlive; i++)
			check(&live[i]);
	}
	while (nlive)
		do_free(&s, nlive - 1);
	cr_assert_eq(s.in_use, 0);
	dskvs__slab_destroy(&s);
}

/* Writers allocate, check and free blocks (cross-thread frees included)
 * while another thread releases in chunks all the time (half a second:
 * a bound on the run, not a measured time). Every value is checked before
 * it is freed, and every slab ends with nothing in use. */
#define CW 3
#define CN 40000
static struct dskvs__blk_pool cpool;
static struct dskvs__blk *cslot[CW][CN];
static volatile int cstop;

static void blk_chk(struct dskvs__blk *b)
{
	const unsigned char *v = (const unsigned char *)dskvs__blk_val(b);
	for (uint32_t i = 0; i < b->vlen; i++)
		if (v[i] != (unsigned char)(b->vlen + i))
			cr_assert_fail("block %p value byte %u damaged",
			               (void *)b, i);
}

static void *cwriter(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	uint64_t x = 0x9e3779b97f4a7c15ull * (id + 1);
	static __thread unsigned char val[1200];
	for (unsigned it = 0; !cstop; it++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		unsigned t = (unsigned)(x % CW), k = (unsigned)(x >> 20) % CN;
		struct dskvs__blk *b =
		    __atomic_exchange_n(&cslot[t][k], NULL, __ATOMIC_ACQ_REL);
		if (b) {
			blk_chk(b);
			dskvs__blk_discard(b);
		}
		if (t == id || (x >> 50) % 3 == 0) {
			size_t vlen = (size_t)(x >> 40) % 1000;
			for (size_t i = 0; i < vlen; i++)
				val[i] = (unsigned char)(vlen + i);
			b = dskvs__blk_alloc(&cpool, "m", 1, val, vlen, 1);
			cr_assert_not_null(b);
			b = __atomic_exchange_n(&cslot[id][k], b,
			                        __ATOMIC_ACQ_REL);
			if (b) {
				blk_chk(b);
				dskvs__blk_discard(b);
			}
		}
	}
	return NULL;
}

Test(slab, concurrent_alloc_free_with_chunked_release)
{
	dskvs__blk_pool_init(&cpool);
	pthread_t t[CW];
	for (unsigned i = 0; i < CW; i++)
		pthread_create(&t[i], NULL, cwriter, (void *)(uintptr_t)i);
	uint64_t t0 = dskvs__now_ns();
	size_t given = 0, calls = 0;
	while (dskvs__now_ns() - t0 < 500000000ull) {
		given += dskvs__blk_pool_release(&cpool, 1);
		calls++;
	}
	cstop = 1;
	for (unsigned i = 0; i < CW; i++)
		pthread_join(t[i], NULL);
	for (unsigned i = 0; i < CW; i++)
		for (unsigned k = 0; k < CN; k++)
			if (cslot[i][k]) {
				blk_chk(cslot[i][k]);
				dskvs__blk_discard(cslot[i][k]);
			}
	for (unsigned i = 0; i < BLK_SHARDS; i++)
		cr_assert_eq(cpool.sh[i].slab.in_use, 0);
	cr_log_info("%zu releases, %zu MiB given back", calls, given >> 20);
	dskvs__blk_pool_destroy(&cpool);
}

/* Objects of sz bytes that fill one region's data pages exactly. */
static size_t per_region(size_t sz)
{
	return (size_t)SLAB_DATA_PAGES * (SLAB_PAGE / (sz + SLAB_REDZONE));
}

/* n objects of sz bytes from a fresh slab s, in a calloc'd array. */
static void **alloc_n(struct dskvs__slab *s, size_t n, size_t sz)
{
	void **v = calloc(n, sizeof(*v));
	cr_assert_not_null(v);
	dskvs__slab_init(s);
	for (size_t i = 0; i < n; i++) {
		v[i] = dskvs__slab_alloc(s, sz);
		cr_assert_not_null(v[i]);
	}
	return v;
}

/* Free what is left of v (NULL slots skipped), then the slab and v. */
static void free_n(struct dskvs__slab *s, void **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] != NULL)
			dskvs__slab_free(s, v[i]);
	dskvs__slab_destroy(s);
	free(v);
}

/* A release while a region is being filled must not cost it its huge
 * page: pages never handed out are not garbage (the rule counted them,
 * advised the young region MADV_NOHUGEPAGE and gave its empty pages back,
 * splitting the huge page it got on first touch). */
Test(slab, a_release_while_loading_keeps_the_young_region_huge)
{
	size_t n = per_region(256) + per_region(256) / 10;
	struct dskvs__slab s;
	void **v = alloc_n(&s, n, 256);
	cr_assert_eq(s.nregions, 2);
	struct dskvs__slab_region *young = s.regions;
	cr_assert(young->huge);
	size_t given = dskvs__slab_release(&s, ~0u);
	cr_assert(young->huge, "a release midway un-advised the young region");
	cr_assert_eq(given, 0, "a release with nothing freed gave back %zu",
	             given);
	free_n(&s, v, n);
}

/* A region that keeps asking for huge pages gives nothing back inside it:
 * MADV_DONTNEED would split its huge page, and khugepaged would fill the
 * pages back in (measured: 4096 kB of huge pages down to 0 for 432 KiB
 * given back, with 7% of the pages emptied). */
Test(slab, a_dense_region_keeps_its_huge_page)
{
	enum { R = 3 };
	size_t n = R * per_region(256);
	struct dskvs__slab s;
	void **v = alloc_n(&s, n, 256);
	cr_assert_eq(s.nregions, R);
	for (size_t i = 0; i < n; i++) {
		size_t pg = ((uintptr_t)v[i] % SLAB_REGION) / SLAB_PAGE;
		if (pg % 14 == 3) {
			dskvs__slab_free(&s, v[i]);
			v[i] = NULL;
		}
	}
	size_t given = dskvs__slab_release(&s, ~0u);
	for (struct dskvs__slab_region *r = s.regions; r; r = r->next)
		cr_assert(r->huge);
	cr_assert_eq(given, 0,
	             "%zu bytes given back from regions that keep "
	             "asking for huge pages",
	             given);
	free_n(&s, v, n);
}

/* Mapping a second region advises the first too, but not one a release
 * found sparse: a region whose pages are all held, sparsely, by one class
 * has no room for another class without being full. */
Test(slab, a_second_region_leaves_a_sparse_first_one_alone)
{
	size_t n = 2 * per_region(256);
	struct dskvs__slab s;
	void **v = alloc_n(&s, n, 256);
	cr_assert_eq(s.nregions, 2);
	struct dskvs__slab_region *r1 = s.regions->next;
	/* The second region emptied (it becomes the spare); in the first,
	 * only the first object of every slab page kept. */
	for (size_t i = 0; i < n; i++) {
		bool in_r1 = ((uintptr_t)v[i] &
		              ~(uintptr_t)(SLAB_REGION - 1)) == (uintptr_t)r1;
		if (!in_r1 || (uintptr_t)v[i] % SLAB_PAGE != 0) {
			dskvs__slab_free(&s, v[i]);
			v[i] = NULL;
		}
	}
	(void)dskvs__slab_release(&s, ~0u); /* unmaps the spare too */
	cr_assert_eq(s.nregions, 1);
	cr_assert(!r1->huge);
	void *o = dskvs__slab_alloc(&s, 512); /* another class */
	cr_assert_eq(s.nregions, 2);
	cr_assert(!r1->huge, "mapping a second region re-advised a sparse "
	                     "first one");
	dskvs__slab_free(&s, o);
	free_n(&s, v, n);
}
