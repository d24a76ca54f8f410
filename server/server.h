/*
 * dskvs-server: the shared state of the event loops (net.c) and the
 * commands (cmd.c). README.md ("dskvs-server") and dskvs-server.1 describe
 * the program; this header says who owns what.
 *
 * Threads and ownership
 * ---------------------
 * The main thread parses options, opens the store, starts the loops, then
 * waits for SIGTERM/SIGINT (SHUTDOWN sends itself SIGTERM) and drives the
 * shutdown. Each loop thread owns its epoll instance and its connections:
 * a connection's buffers, parser and state are read and written only by
 * the loop that owns it (from accept to close), so they need no lock.
 * What other threads may see of a connection (CLIENT LIST) is in the
 * client registry: `srv.reg_lock` guards the registry list and each
 * connection's `name`; `id`, `addr` and `created` are written before the
 * connection is registered and never after; `last_active`, `last_cmd`,
 * `proto` and the `mon_*` sizes are relaxed atomics written by the owner (a
 * monitoring view needs no more than a recent value).
 */
#ifndef DSKVS_SERVER_H
#define DSKVS_SERVER_H

#include "resp.h"

#include <dskvs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* The reserved collection that holds string keys without '/'. A hash
 * command on this name is refused, so no hash can collide with it. */
#define STRINGS_COLL     "__dskvs_strings__"
#define STRINGS_COLL_LEN (sizeof(STRINGS_COLL) - 1)

/* The largest request (all its arguments and framing) buffered for one
 * connection: one value of DSKVS_VALUE_MAX with room for its command and
 * key, plus 16 MiB for requests of many smaller arguments. A request over
 * it is refused and the connection closed, as Redis does past
 * client-query-buffer-limit. */
#define RESP_QUERY_MAX ((size_t)DSKVS_VALUE_MAX + 16u * 1024u * 1024u)
/* Output: a connection whose unsent replies pass OUT_SOFT is no longer
 * read from, nor its buffered requests executed, until it drains; so a
 * pipelining client that does not read holds at most OUT_SOFT plus one
 * reply. Past OUT_HARD unsent bytes (one enormous reply), or above
 * OUT_SOFT for OUT_SOFT_SECS seconds without the client reading, it is
 * closed: Redis's client-output-buffer-limit. */
#define OUT_SOFT      (1u << 20)
#define OUT_HARD      ((size_t)512u << 20)
#define OUT_SOFT_SECS 60

struct loop;

/* Counters of one loop, for INFO. Only the loop's thread adds to them
 * (a relaxed load and store: no read-modify-write, so no cache line is
 * fought over between loops); INFO on any loop sums them with relaxed
 * loads, and CONFIG RESETSTAT sets them to zero (a reset that races with
 * an increment may lose that increment, as a statistics reset may).
 * Aligned to a cache line each. */
struct loop_stats {
	_Atomic uint64_t cmds, hits, misses, net_in, net_out;
} __attribute__((aligned(64)));

static inline void stat_add(_Atomic uint64_t *v, uint64_t n)
{
	atomic_store_explicit(v,
	                      atomic_load_explicit(v, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

typedef struct conn {
	int fd;
	struct loop *loop;
	struct loop_stats *stats;   /* the loop's counters */
	struct conn *prev, *next;   /* the loop's list (owner only) */
	struct conn *rprev, *rnext; /* the registry (reg_lock) */
	uint64_t id;
	char addr[64];
	char laddr[64];
	time_t created;
	_Atomic(time_t) last_active;
	_Atomic(const char *) last_cmd; /* static string */
	_Atomic int proto;              /* 2 or 3 */
	char *name;                     /* CLIENT SETNAME; reg_lock */
	/* Buffer sizes for CLIENT LIST, copied by the owner after each batch
	 * of requests (the buffers themselves are the owner's alone). */
	_Atomic size_t mon_qbuf, mon_qcap, mon_omem;

	char *in;
	size_t in_len, in_cap;
	resp_parser parser;
	resp_out out;

	int authed;
	int closing;          /* close once the output is written */
	int no_reply_exit;    /* SHUTDOWN: kept open until the process exits */
	int events;           /* epoll events currently registered */
	time_t stalled_since; /* output above OUT_SOFT since (0: not) */

	/* WAITAOF: the sequence number of this connection's last write, and
	 * while blocked, what it waits for and until when. */
	uint64_t last_seq;
	int blocked;
	int wait_numlocal;
	long long wait_numreplicas;
	uint64_t wait_seq;
	int wait_flush;             /* blocked only until wait_seq is durable
	                               (--sync always), no WAITAOF reply */
	int64_t wait_deadline_ms;   /* 0: none */
	struct conn *wprev, *wnext; /* the loop's waiters (owner only) */
} conn;

/* The server, process-wide. Set up by main before the loops start and
 * read-only afterwards, except the atomics and what reg_lock guards. */
struct server {
	dskvs *store;
	const char *store_dir;
	int sync_mode;
	char *password; /* NULL: no AUTH */
	size_t password_len;
	_Atomic long maxclients; /* CONFIG SET may change them */
	_Atomic long timeout;
	int threads;
	const char *bind;
	int port;
	const char *unixsocket;
	time_t started;
	int64_t started_ms;
	pid_t pid;
	pthread_t main_thread;

	_Atomic long clients;     /* connected now */
	_Atomic uint64_t next_id; /* CLIENT ID */
	_Atomic uint64_t conns_received, rejected_conns;
	struct loop_stats *stats; /* [threads], one per loop */
	_Atomic int shutting_down;

	pthread_mutex_t reg_lock;
	conn *reg_head;
};
extern struct server srv;

int64_t now_ms(void);

/* cmd.c: execute one request. Precondition: called by c's owner loop with
 * argc >= 1. Writes the reply (or none, for a blocked WAITAOF or
 * SHUTDOWN) into c->out and may set c->closing or c->blocked. */
void cmd_dispatch(conn *c, resp_arg *argv, size_t argc);
/* cmd.c: the reply to a WAITAOF that finished (durable or timed out). */
void cmd_waitaof_reply(conn *c);
/* net.c: block c until its WAITAOF is satisfied or times out; owner only. */
void loop_block_waitaof(conn *c);
/* net.c: the CLIENT LIST line of c (registry lock held by the caller). */
void conn_info_line(conn *c, char *buf, size_t cap);

#endif
