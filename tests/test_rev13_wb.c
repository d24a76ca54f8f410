/*
 * rev13, white-box: a batch of writes that reallocates its collection's
 * map while it holds every producer of the store.
 *
 * api.c (batches of writes): "under it the members map is grown for all
 * the puts (the only allocation that could fail later), n consecutive
 * queue slots are reserved at once ... the apply is n table operations
 * with no allocation (the map has room) and no sleep." While the slots
 * are reserved every other producer of the store waits in its commit.
 * batch_undo_locked relies on the same: "Each restore puts back a member
 * that is in the map or just left its slot, which ck_ht refills without
 * growing."
 *
 * But a delete op goes through dskvs__member_remove_locked, whose
 * shape_note_remove rebuilds (shrinks) the map once the live count falls
 * far below its capacity. A batch that deletes most of a collection and
 * then puts new members therefore shrinks the map room_n had grown and
 * grows it again inside ck_ht_set_spmc, op by op, with the slots
 * reserved: allocations (and, for a big collection, rehashes of the whole
 * map) in the window where nothing may allocate, and a grow that can fail
 * with ENOMEM after deletes were applied -- the undo then re-inserts the
 * deleted members into the shrunk map, which needs the very grow that
 * just failed, and ignores the result ((void)dskvs__member_set_locked).
 */
#include "testutil.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>

TestSuite(rev13_wb, .init = tu_setup, .fini = tu_teardown, .timeout = 60);

static struct {
	dskvs *s;
	int armed;
	int sets;
	int maps; /* distinct map pointers seen at the batch's inserts */
	const void *last;
} g;

static void hook(int point, void *arg)
{
	(void)arg;
	if (point != DSKVS__HOOK_MEMBER_SET || !g.armed)
		return;
	/* The batch's thread, holding c's lock, inside a read-side section. */
	struct dskvs__coll *c = dskvs__coll_lookup(&g.s->t, "c", 1);
	if (c == NULL)
		return;
	const void *m = c->members.map;
	if (g.sets++ == 0 || m != g.last)
		g.maps++;
	g.last = m;
}

#define OLD 400
#define NEW 400

Test(rev13_wb, batch_does_not_reallocate_the_map_with_slots_reserved)
{
	dskvs *s = tu_open(tu_dir);
	char key[32];
	for (int i = 0; i < OLD; i++) {
		snprintf(key, sizeof(key), "c/old%d", i);
		tu_put_str(s, key, "v");
	}
	static char names[OLD + NEW][16];
	dskvs_batch_op ops[OLD + NEW];
	size_t n = 0;
	for (int i = 0; i < OLD - 2; i++) { /* delete nearly everything */
		snprintf(names[n], 16, "old%d", i);
		ops[n] = (dskvs_batch_op){ names[n], NULL, 0, 1 };
		n++;
	}
	for (int i = 0; i < NEW; i++) { /* then put as many new members */
		snprintf(names[n], 16, "new%d", i);
		ops[n] = (dskvs_batch_op){ names[n], "n", 1, 0 };
		n++;
	}
	g.s = s;
	dskvs__hook = hook;
	g.armed = 1;
	int rc = dskvs_write_batch(s, "c", ops, n, NULL);
	g.armed = 0;
	dskvs__hook = NULL;
	cr_assert_eq(rc, DSKVS_OK, "%s", dskvs_errmsg(NULL));
	cr_assert_eq(g.sets, NEW);
	cr_assert_eq(g.maps, 1,
	             "the batch's %d inserts saw %d different maps: the map "
	             "was rebuilt (shrunk by the deletes, grown again by the "
	             "puts) while the batch held %zu queue slots reserved",
	             g.sets, g.maps, n);
	tu_close(s);
}
