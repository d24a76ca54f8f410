/*
 * The out-of-line half of rcu.h: lazy registration of reader threads for
 * the urcu-memb flavour (urcu-bp registers by itself). Callers never
 * register threads (DESIGN rule 8): a thread registers on its first read
 * lock, and a pthread key destructor unregisters it when it exits.
 */
#include "base.h"
#include "rcu.h"

#include <pthread.h>

#if defined(DSKVS_URCU_MEMB)
__thread bool dskvs__rcu_registered;
static pthread_key_t rcu_key;
static pthread_once_t rcu_key_once = PTHREAD_ONCE_INIT;

static void rcu_thread_exit(void *arg)
{
	(void)arg;
	urcu_memb_unregister_thread();
}

static void rcu_key_init(void)
{
	pthread_key_create(&rcu_key, rcu_thread_exit);
}

void dskvs__rcu_register_slow(void)
{
	pthread_once(&rcu_key_once, rcu_key_init);
	urcu_memb_register_thread();
	pthread_setspecific(rcu_key, (void *)1);
	dskvs__rcu_registered = true;
}
#endif
