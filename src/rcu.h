/*
 * Which liburcu flavour dskvs uses, in one place.
 *
 * DESIGN.md asks that callers never register threads. Two flavours allow it:
 *
 *  - urcu-bp ("bulletproof", the default): rcu_read_lock() registers the
 *    calling thread on first use and a pthread key destructor unregisters it
 *    when the thread exits. The read-side cost is one thread-local load and
 *    test on top of urcu-memb's, and with sys_membarrier available (Linux
 *    >= 4.3) neither flavour issues a fence on the read side.
 *  - urcu-memb with lazy registration: we would have to do exactly what
 *    urcu-bp does (a TLS flag tested on every read lock plus a thread-exit
 *    hook), so it saves nothing and adds code of our own to get wrong.
 *
 * The flavour can be switched with -DDSKVS_URCU_FLAVOR=memb for measurement;
 * the memb path registers lazily with a pthread key destructor.
 */
#ifndef DSKVS_RCU_H
#define DSKVS_RCU_H

/* Inline the read-side fast paths (liburcu's static headers). dskvs is MIT
 * licensed, which is LGPL-compatible, as _LGPL_SOURCE requires.
 *
 * Not in sanitizer builds: liburcu-bp 0.13 places its per-thread reader
 * records 32 bytes past a 128-byte boundary although the type is declared
 * 128-byte aligned (harmless on x86: it only costs some false sharing), and
 * UBSan's alignment check reports that from every inlined read lock. Calling
 * the library's out-of-line functions keeps the check on for our own code. */
#if !defined(_LGPL_SOURCE) && !defined(DSKVS_SANITIZE)
#define _LGPL_SOURCE
#endif

#if defined(DSKVS_URCU_MEMB)
#include <urcu/urcu-memb.h>
#include <urcu/call-rcu.h>
#include <stdbool.h>

/* Registration state of the calling thread; only that thread touches it. */
extern __thread bool dskvs__rcu_registered;
void dskvs__rcu_register_slow(void);

static inline void dskvs__rcu_read_lock(void)
{
	if (__builtin_expect(!dskvs__rcu_registered, 0))
		dskvs__rcu_register_slow();
	urcu_memb_read_lock();
}
#define dskvs__rcu_read_unlock() urcu_memb_read_unlock()
#define dskvs__rcu_ongoing()     urcu_memb_read_ongoing()
#define dskvs__call_rcu(h, f)                                    \
	do {                                                     \
		if (__builtin_expect(!dskvs__rcu_registered, 0)) \
			dskvs__rcu_register_slow();              \
		urcu_memb_call_rcu((h), (f));                    \
	} while (0)
#define dskvs__rcu_barrier()           urcu_memb_barrier()
#define dskvs__rcu_before_fork()       urcu_memb_call_rcu_before_fork()
#define dskvs__rcu_after_fork_parent() urcu_memb_call_rcu_after_fork_parent()
#define dskvs__rcu_after_fork_child()  urcu_memb_call_rcu_after_fork_child()
#else
#include <urcu/urcu-bp.h>
#include <urcu/call-rcu.h>

#define dskvs__rcu_read_lock()   urcu_bp_read_lock()
#define dskvs__rcu_read_unlock() urcu_bp_read_unlock()
#define dskvs__rcu_ongoing()     urcu_bp_read_ongoing()
#define dskvs__call_rcu(h, f)    urcu_bp_call_rcu((h), (f))
#define dskvs__rcu_barrier()     urcu_bp_barrier()
#define dskvs__rcu_before_fork()                \
	do {                                    \
		urcu_bp_call_rcu_before_fork(); \
		urcu_bp_before_fork();          \
	} while (0)
#define dskvs__rcu_after_fork_parent()                \
	do {                                          \
		urcu_bp_after_fork_parent();          \
		urcu_bp_call_rcu_after_fork_parent(); \
	} while (0)
#define dskvs__rcu_after_fork_child()                \
	do {                                         \
		urcu_bp_after_fork_child();          \
		urcu_bp_call_rcu_after_fork_child(); \
	} while (0)
#endif

/* Install fork handlers once per process so that a child of fork() can use
 * dskvs (the call_rcu worker threads do not survive fork). */
void dskvs__rcu_init_once(void);

#endif
