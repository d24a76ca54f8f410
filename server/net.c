/*
 * dskvs-server: options, listening sockets, the event loops, connections
 * and the shutdown. server.h says who owns what; cmd.c holds the commands.
 *
 * DESIGN
 * ------
 * One epoll loop per thread (default: one per online CPU). Each loop owns
 * its connections outright: reads, parsing, command execution and writes
 * of a connection all happen on its loop's thread, so a connection needs
 * no lock, and the store's own calls are thread-safe.
 *
 * Spreading connections: every loop has its own TCP listening socket bound
 * to the same address with SO_REUSEPORT, and the kernel hashes each new
 * connection to one of them. The alternative, one accepting loop handing
 * the descriptors to the others through a queue and an eventfd, costs one
 * wakeup and a lock per connection and puts every accept on one thread.
 * Measured side by side with redis-benchmark (-c 50, 2 loops, on the
 * shared 2-core development machine: server/README.md has the figures),
 * the two were within the run-to-run noise, for long-lived connections
 * and for a new connection per request (-k 0) alike. SO_REUSEPORT is the
 * default because it has no cross-thread step at all: accepting scales
 * with the loops, and a loop that is busy does not delay the connections
 * of the others (with a hand-off, a busy loop 0 delays every accept). Its
 * cost is that the kernel's hash may spread few connections unevenly. The
 * hand-off path is
 * kept: the Unix socket uses it (SO_REUSEPORT does not spread AF_UNIX
 * stream connections), and DSKVS_SERVER_ACCEPT=handoff selects it for TCP
 * to repeat the measurement.
 *
 * Per request: the parser (resp.c) works in the connection's input buffer;
 * each complete request runs at once (pipelining: many per read), its
 * reply appended to the output buffer, which is written when the read's
 * requests are done (or as soon as it passes OUT_SOFT). Bounded memory:
 * see RESP_QUERY_MAX and OUT_SOFT / OUT_HARD in server.h.
 *
 * WAITAOF: a blocked connection sits on its loop's waiter list; while the
 * list is not empty the loop watches the store's durable eventfd
 * (edge-triggered, never read: several loops may watch it at once, and a
 * read by one would hide the event from the others; the library writes 1
 * per advance, so the counter cannot overflow). Each event, and each
 * timeout, re-checks the waiters against dskvs_durable_seq. No thread
 * blocks.
 *
 * --sync always: the store is opened in DSKVS_SYNC_ASYNC mode, so that no
 * loop thread waits in a write for its fdatasync; instead a connection's
 * replies are held (not written) while its last write is not durable, the
 * connection sits on the waiter list (wait_flush) and runs no further
 * request, and the durable event releases it. The janitor's group commit
 * then covers every connection of every loop that wrote meanwhile, as
 * Redis's appendfsync always covers an event loop iteration.
 *
 * Shutdown (SIGTERM, SIGINT, SHUTDOWN): main sets srv.shutting_down = 1
 * and wakes every loop; each closes its listeners, runs the requests
 * already buffered, stops reading and reports. Main then calls
 * dskvs_sync (so WAITAOF waiters are answered), sets 2; the loops write
 * what is left (at most SHUTDOWN_FLUSH_MS), close their connections and
 * end. Main calls dskvs_close and exits 0 (1 if the store reported an
 * I/O error).
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SHUTDOWN_FLUSH_MS 2000
/* Bytes read per read(2) at least (more when a large bulk is expected). */
#define READ_CHUNK (16u * 1024u)

struct server srv;

/* epoll tags for the fds that are not connections. */
#define TAG_WAKE    ((uint64_t)1)
#define TAG_TCP     ((uint64_t)2)
#define TAG_UNIX    ((uint64_t)3)
#define TAG_DURABLE ((uint64_t)4)

struct loop {
	int idx;
	pthread_t th;
	int epfd;
	int wakefd;
	int tcp_fd;    /* listener, or -1 */
	int unix_fd;   /* listener (loop 0), or -1 */
	conn *head;    /* owner only */
	conn *waiters; /* owner only */
	int durable_watched;
	int phase; /* shutdown phase this loop has acted on */
	/* Hand-off queue of accepted descriptors: q_lock. */
	pthread_mutex_t q_lock;
	int *q;
	size_t qn, qcap;
};

static struct loop *loops;
static int handoff_tcp;
static _Atomic unsigned rr_next;
static pthread_mutex_t phase_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t phase_cv = PTHREAD_COND_INITIALIZER;
static int loops_drained;

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dskvs-server: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* ---- connections ------------------------------------------------------- */

static void wake_loop(struct loop *l)
{
	uint64_t one = 1;
	ssize_t r = write(l->wakefd, &one, sizeof(one));
	(void)r; /* EAGAIN: already pending */
}

static void loop_block_flush(conn *c);

/* --sync always: c's replies wait until its last write is durable. */
static int replies_held(const conn *c)
{
	return srv.sync_mode == DSKVS_SYNC_ALWAYS &&
	       c->last_seq > dskvs_durable_seq(srv.store);
}

static void set_events(conn *c)
{
	int want = 0;
	if (!c->closing && !c->blocked && srv.shutting_down == 0 &&
	    resp_out_pending(&c->out) < OUT_SOFT)
		want |= EPOLLIN;
	if (resp_out_pending(&c->out) > 0 && !replies_held(c))
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	struct epoll_event ev = { .events = (uint32_t)want, .data.ptr = c };
	epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->events = want;
}

static void waiter_remove(conn *c)
{
	struct loop *l = c->loop;
	if (c->wprev)
		c->wprev->wnext = c->wnext;
	else if (l->waiters == c)
		l->waiters = c->wnext;
	if (c->wnext)
		c->wnext->wprev = c->wprev;
	c->wprev = c->wnext = NULL;
	if (l->waiters == NULL && l->durable_watched) {
		int fd = dskvs_durable_fd(srv.store);
		if (fd >= 0)
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		l->durable_watched = 0;
	}
}

static void conn_free(conn *c)
{
	struct loop *l = c->loop;
	if (c->blocked)
		waiter_remove(c);
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_lock(&srv.reg_lock);
	if (c->rprev)
		c->rprev->rnext = c->rnext;
	else
		srv.reg_head = c->rnext;
	if (c->rnext)
		c->rnext->rprev = c->rprev;
	free(c->name);
	pthread_mutex_unlock(&srv.reg_lock);
	resp_parser_free(&c->parser);
	resp_out_free(&c->out);
	free(c->in);
	free(c);
	atomic_fetch_sub(&srv.clients, 1);
}

/* Write what can be written. Returns -1 when c was closed. */
static int conn_flush(conn *c)
{
	if (resp_out_pending(&c->out) > 0 && replies_held(c)) {
		if (!c->blocked)
			loop_block_flush(c);
		set_events(c);
		return 0;
	}
	while (resp_out_pending(&c->out) > 0) {
		ssize_t n = write(c->fd, c->out.buf + c->out.sent,
		                  resp_out_pending(&c->out));
		if (n > 0) {
			c->out.sent += (size_t)n;
			stat_add(&c->stats->net_out, (uint64_t)n);
			/* A client reading a long reply is not idle. */
			atomic_store_explicit(&c->last_active, time(NULL),
			                      memory_order_relaxed);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		conn_free(c);
		return -1;
	}
	resp_out_compact(&c->out);
	size_t pend = resp_out_pending(&c->out);
	if (c->out.oom || pend > OUT_HARD) {
		conn_free(c);
		return -1;
	}
	if (pend >= OUT_SOFT) {
		if (c->stalled_since == 0)
			c->stalled_since = time(NULL);
	} else {
		c->stalled_since = 0;
	}
	/* The SHUTDOWN caller stays connected until the process exits, as
	 * with Redis, so that it sees the close only once the server is
	 * gone. */
	if (pend == 0 && c->closing && !c->no_reply_exit) {
		conn_free(c);
		return -1;
	}
	set_events(c);
	return 0;
}

/* Run the complete requests in c's input buffer, then flush. Returns -1
 * when c was closed. */
static int conn_process(conn *c)
{
	resp_parser *p = &c->parser;
	while (!c->closing && !c->blocked &&
	       resp_out_pending(&c->out) < OUT_SOFT) {
		const char *err;
		p->unauth = srv.password != NULL && !c->authed;
		int rc = resp_parse(p, c->in, c->in_len, &err);
		if (rc == RESP_MORE)
			break;
		if (rc == RESP_NOMEM) {
			conn_free(c);
			return -1;
		}
		if (rc == RESP_ERR) {
			resp_error(&c->out, "%s", err);
			c->closing = 1;
			break;
		}
		if (p->argc > 0) {
			cmd_dispatch(c, p->argv, p->argc);
			stat_add(&c->stats->cmds, 1);
		}
		resp_parser_next(p);
		if (c->no_reply_exit)
			break;
	}
	/* Drop the bytes of the requests that are done. */
	if (p->start > 0) {
		memmove(c->in, c->in + p->start, c->in_len - p->start);
		c->in_len -= p->start;
		resp_parser_rebase(p, p->start);
	}
	if (c->in_len == 0 && c->in_cap > 64 * 1024) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	atomic_store_explicit(&c->mon_qbuf, c->in_len, memory_order_relaxed);
	atomic_store_explicit(&c->mon_qcap, c->in_cap, memory_order_relaxed);
	atomic_store_explicit(&c->mon_omem, c->out.cap, memory_order_relaxed);
	return conn_flush(c);
}

static void conn_readable(conn *c)
{
	size_t used = c->in_len - c->parser.start;
	if (used >= RESP_QUERY_MAX) {
		resp_error(&c->out, "ERR Protocol error: request larger than "
		                    "the query buffer limit");
		c->closing = 1;
		conn_flush(c);
		return;
	}
	/* Room for what a large bulk announced, but never more than twice
	 * what has arrived (plus 1 MiB): a "$<len>" line alone must not make
	 * the server allocate the whole value. */
	size_t need = READ_CHUNK;
	if (c->parser.want > used && c->parser.want - used > need) {
		need = c->parser.want - used;
		size_t cap = used > (1u << 20) ? used : (1u << 20);
		if (need > cap)
			need = cap;
	}
	if (c->in_cap - c->in_len < need) {
		size_t ncap = c->in_cap ? c->in_cap : READ_CHUNK;
		while (ncap - c->in_len < need)
			ncap *= 2;
		if (ncap > RESP_QUERY_MAX + READ_CHUNK)
			ncap = RESP_QUERY_MAX + READ_CHUNK;
		char *b = realloc(c->in, ncap);
		if (b == NULL) {
			conn_free(c);
			return;
		}
		c->in = b;
		c->in_cap = ncap;
	}
	ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
	if (n == 0) {
		conn_free(c);
		return;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		conn_free(c);
		return;
	}
	c->in_len += (size_t)n;
	stat_add(&c->stats->net_in, (uint64_t)n);
	atomic_store_explicit(&c->last_active, time(NULL),
	                      memory_order_relaxed);
	conn_process(c);
}

static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(buf, cap, "%s:%d", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(buf, cap, "%s:%d", host, port);
	} else {
		snprintf(buf, cap, "%s:0",
		         srv.unixsocket ? srv.unixsocket : "unix");
	}
}

/* Take over an accepted descriptor on loop l. */
static void conn_adopt(struct loop *l, int fd)
{
	long now = atomic_fetch_add(&srv.clients, 1) + 1;
	if (now > srv.maxclients) {
		static const char msg[] =
		    "-ERR max number of clients reached\r\n";
		ssize_t r = write(fd, msg, sizeof(msg) - 1);
		(void)r;
		close(fd);
		atomic_fetch_sub(&srv.clients, 1);
		atomic_fetch_add(&srv.rejected_conns, 1);
		return;
	}
	conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		atomic_fetch_sub(&srv.clients, 1);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->loop = l;
	c->stats = &srv.stats[l->idx];
	c->id = atomic_fetch_add(&srv.next_id, 1) + 1;
	c->created = time(NULL);
	atomic_store(&c->last_active, c->created);
	atomic_store(&c->last_cmd, "NULL");
	atomic_store(&c->proto, 2);
	c->out.proto = 2;
	c->authed = srv.password == NULL;
	resp_parser_init(&c->parser, DSKVS_VALUE_MAX);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
		fmt_addr(&ss, c->addr, sizeof(c->addr));
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		fmt_addr(&ss, c->laddr, sizeof(c->laddr));
	c->next = l->head;
	if (l->head)
		l->head->prev = c;
	l->head = c;
	pthread_mutex_lock(&srv.reg_lock);
	c->rnext = srv.reg_head;
	if (srv.reg_head)
		srv.reg_head->rprev = c;
	srv.reg_head = c;
	pthread_mutex_unlock(&srv.reg_lock);
	atomic_fetch_add(&srv.conns_received, 1);
	c->events = EPOLLIN;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		conn_free(c);
}

static void do_accept(struct loop *l, int lfd, int handoff)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a transient error (EMFILE...) */
		if (!handoff || srv.threads == 1) {
			conn_adopt(l, fd);
			continue;
		}
		struct loop *t = &loops[atomic_fetch_add(&rr_next, 1) %
		                        (unsigned)srv.threads];
		if (t == l) {
			conn_adopt(l, fd);
			continue;
		}
		pthread_mutex_lock(&t->q_lock);
		if (t->qn == t->qcap) {
			size_t nc = t->qcap ? t->qcap * 2 : 16;
			int *q = realloc(t->q, nc * sizeof(*q));
			if (q == NULL) {
				pthread_mutex_unlock(&t->q_lock);
				close(fd);
				continue;
			}
			t->q = q;
			t->qcap = nc;
		}
		t->q[t->qn++] = fd;
		pthread_mutex_unlock(&t->q_lock);
		wake_loop(t);
	}
}

/* ---- WAITAOF ----------------------------------------------------------- */

/* Put c on its loop's waiter list, watching the durable eventfd. */
static void block_on_durable(conn *c)
{
	struct loop *l = c->loop;
	c->blocked = 1;
	c->wnext = l->waiters;
	c->wprev = NULL;
	if (l->waiters)
		l->waiters->wprev = c;
	l->waiters = c;
	if (!l->durable_watched) {
		int fd = dskvs_durable_fd(srv.store);
		if (fd >= 0) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLET,
				                  .data.u64 = TAG_DURABLE };
			epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
			l->durable_watched = 1;
		}
	}
	set_events(c);
}

void loop_block_waitaof(conn *c)
{
	c->wait_flush = 0;
	block_on_durable(c);
}

static void loop_block_flush(conn *c)
{
	c->wait_flush = 1;
	c->wait_seq = c->last_seq;
	c->wait_deadline_ms = 0;
	block_on_durable(c);
}

/* Answer every waiter whose write is durable or whose time is up. */
static void check_waiters(struct loop *l)
{
	if (l->waiters == NULL)
		return;
	uint64_t d = dskvs_durable_seq(srv.store);
	int64_t now = now_ms();
	conn *c = l->waiters;
	while (c != NULL) {
		conn *nx = c->wnext;
		int local_ok = c->wait_numlocal == 0 || d >= c->wait_seq;
		int done = local_ok && c->wait_numreplicas == 0;
		if (!done && c->wait_deadline_ms != 0 &&
		    now >= c->wait_deadline_ms)
			done = 1;
		if (!done && srv.shutting_down >= 2)
			done = 1;
		if (c->wait_flush)
			done = d >= c->wait_seq || srv.shutting_down >= 2;
		if (done) {
			waiter_remove(c);
			c->blocked = 0;
			if (!c->wait_flush)
				cmd_waitaof_reply(c);
			c->wait_flush = 0;
			conn_process(c);
		}
		c = nx;
	}
}

static int waiters_timeout(struct loop *l, int ms)
{
	int64_t now = now_ms();
	for (conn *c = l->waiters; c; c = c->wnext) {
		if (c->wait_deadline_ms == 0)
			continue;
		int64_t left = c->wait_deadline_ms - now;
		if (left < 0)
			left = 0;
		if (left < ms)
			ms = (int)left;
	}
	return ms;
}

/* ---- the loop ---------------------------------------------------------- */

static void sweep(struct loop *l)
{
	time_t now = time(NULL);
	conn *c = l->head;
	while (c != NULL) {
		conn *nx = c->next;
		time_t idle = now - atomic_load_explicit(&c->last_active,
		                                         memory_order_relaxed);
		if (c->stalled_since != 0 &&
		    now - c->stalled_since > OUT_SOFT_SECS) {
			conn_free(c);
		} else if (srv.timeout > 0 && !c->blocked && !c->closing &&
		           idle > srv.timeout) {
			/* Best effort: the client may never read it. */
			static const char msg[] = "-ERR idle client timeout "
			                          "(--timeout), closing\r\n";
			ssize_t r = write(c->fd, msg, sizeof(msg) - 1);
			(void)r;
			conn_free(c);
		}
		c = nx;
	}
}

static void take_handoffs(struct loop *l)
{
	pthread_mutex_lock(&l->q_lock);
	int *q = l->q;
	size_t n = l->qn;
	l->q = NULL;
	l->qn = l->qcap = 0;
	pthread_mutex_unlock(&l->q_lock);
	for (size_t i = 0; i < n; i++) {
		if (srv.shutting_down)
			close(q[i]);
		else
			conn_adopt(l, q[i]);
	}
	free(q);
}

static void close_listeners(struct loop *l)
{
	if (l->tcp_fd >= 0) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->tcp_fd, NULL);
		close(l->tcp_fd);
		l->tcp_fd = -1;
	}
	if (l->unix_fd >= 0) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, l->unix_fd, NULL);
		close(l->unix_fd);
		l->unix_fd = -1;
	}
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct epoll_event evs[128];
	time_t last_sweep = time(NULL);
	int64_t flush_deadline = 0;

	for (;;) {
		int phase = srv.shutting_down;
		if (phase >= 1 && l->phase < 1) {
			close_listeners(l);
			take_handoffs(l);
			/* Run what was read; read nothing more. */
			for (conn *c = l->head, *nx; c; c = nx) {
				nx = c->next;
				conn_process(c);
			}
			l->phase = 1;
			pthread_mutex_lock(&phase_lock);
			loops_drained++;
			pthread_cond_broadcast(&phase_cv);
			pthread_mutex_unlock(&phase_lock);
		}
		if (phase >= 2 && l->phase < 2) {
			l->phase = 2;
			flush_deadline = now_ms() + SHUTDOWN_FLUSH_MS;
			check_waiters(l);
		}
		if (l->phase == 2) {
			int busy = 0;
			for (conn *c = l->head; c; c = c->next)
				if (resp_out_pending(&c->out) > 0)
					busy = 1;
			if (!busy || now_ms() >= flush_deadline)
				break;
		}
		int tmo = waiters_timeout(l, 1000);
		int n = epoll_wait(l->epfd, evs, 128, tmo);
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_WAKE) {
				uint64_t v;
				ssize_t r = read(l->wakefd, &v, sizeof(v));
				(void)r;
				take_handoffs(l);
			} else if (tag == TAG_TCP) {
				if (l->tcp_fd >= 0)
					do_accept(l, l->tcp_fd, handoff_tcp);
			} else if (tag == TAG_UNIX) {
				if (l->unix_fd >= 0)
					do_accept(l, l->unix_fd, 1);
			} else if (tag == TAG_DURABLE) {
				/* checked below */
			} else {
				conn *c = evs[i].data.ptr;
				uint32_t e = evs[i].events;
				/* Each connection appears at most once in a
				 * batch, and only its own events free it. */
				if (e & (EPOLLERR | EPOLLHUP) &&
				    !(e & EPOLLIN)) {
					conn_free(c);
					continue;
				}
				if (e & EPOLLOUT) {
					if (conn_flush(c) < 0)
						continue;
					if (resp_out_pending(&c->out) <
					        OUT_SOFT &&
					    conn_process(c) < 0)
						continue;
				}
				if ((e & EPOLLIN) && (c->events & EPOLLIN))
					conn_readable(c);
			}
		}
		check_waiters(l);
		time_t now = time(NULL);
		if (now != last_sweep) {
			last_sweep = now;
			sweep(l);
		}
	}
	while (l->head)
		conn_free(l->head);
	while (l->waiters)
		waiter_remove(l->waiters);
	return NULL;
}

/* ---- listeners --------------------------------------------------------- */

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return 1;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
			return a->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

static struct addrinfo *resolve_bind(void)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		                  .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_PASSIVE };
	char port[16];
	snprintf(port, sizeof(port), "%d", srv.port);
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(srv.bind, port, &hints, &res);
	if (rc != 0)
		die("--bind %s: %s", srv.bind, gai_strerror(rc));
	return res;
}

static int tcp_listen(const struct addrinfo *ai, int reuseport)
{
	int fd = socket(ai->ai_family,
	                ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                ai->ai_protocol);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		die("SO_REUSEPORT: %s", strerror(errno));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		die("bind %s:%d: %s", srv.bind, srv.port, strerror(errno));
	if (listen(fd, 511) < 0)
		die("listen: %s", strerror(errno));
	return fd;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		die("--unixsocket %s: path too long", path);
	strcpy(sa.sun_path, path);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind %s: %s", path, strerror(errno));
	if (listen(fd, 511) < 0)
		die("listen: %s", strerror(errno));
	return fd;
}

static void loop_add(struct loop *l, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* ---- options ----------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: dskvs-server --store DIR [--bind ADDR] [--port N]\n"
	      "         [--unixsocket PATH] [--threads N]\n"
	      "         [--requirepass PW | --requirepass-file F]\n"
	      "         [--sync always|async] [--maxclients N] "
	      "[--timeout S]\n"
	      "A Redis-protocol (RESP2/RESP3) server for a dskvs store; see "
	      "dskvs-server(1).\n",
	      f);
}

static long num_arg(const char *opt, const char *v, long lo, long hi)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *v == '\0' || *end != '\0' || n < lo || n > hi)
		die("%s: expected an integer in %ld..%ld, got '%s'", opt, lo,
		    hi, v);
	return n;
}

static char *read_password_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		die("--requirepass-file %s: %s", path, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	fclose(f);
	if (n <= 0)
		die("--requirepass-file %s: empty", path);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0)
		die("--requirepass-file %s: empty first line", path);
	return line;
}

static void parse_args(int argc, char **argv)
{
	srv.bind = "127.0.0.1";
	srv.port = 6380;
	srv.maxclients = 10000;
	srv.sync_mode = DSKVS_SYNC_ASYNC;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	srv.threads = cpus > 0 ? (int)(cpus > 256 ? 256 : cpus) : 1;
	int have_pw = 0;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(o, "--version")) {
			printf("dskvs-server %s\n", dskvs_version_string());
			exit(0);
		}
		if (i + 1 >= argc || strncmp(o, "--", 2) != 0) {
			usage(stderr);
			die("%s: %s", o,
			    strncmp(o, "--", 2) ? "unexpected argument"
			                        : "missing its value");
		}
		const char *v = argv[++i];
		if (!strcmp(o, "--store")) {
			srv.store_dir = v;
		} else if (!strcmp(o, "--bind")) {
			srv.bind = v;
		} else if (!strcmp(o, "--port")) {
			srv.port = (int)num_arg(o, v, 1, 65535);
		} else if (!strcmp(o, "--unixsocket")) {
			srv.unixsocket = v;
		} else if (!strcmp(o, "--threads")) {
			srv.threads = (int)num_arg(o, v, 1, 256);
		} else if (!strcmp(o, "--requirepass") ||
		           !strcmp(o, "--requirepass-file")) {
			if (have_pw++)
				die("give one of --requirepass and "
				    "--requirepass-file, once");
			srv.password =
			    o[13] == '\0' ? strdup(v) : read_password_file(v);
			if (srv.password == NULL)
				die("out of memory");
			if (srv.password[0] == '\0')
				die("%s: the password is empty", o);
			srv.password_len = strlen(srv.password);
		} else if (!strcmp(o, "--sync")) {
			if (!strcmp(v, "always"))
				srv.sync_mode = DSKVS_SYNC_ALWAYS;
			else if (!strcmp(v, "async"))
				srv.sync_mode = DSKVS_SYNC_ASYNC;
			else
				die("--sync: expected always or async, got "
				    "'%s'",
				    v);
		} else if (!strcmp(o, "--maxclients")) {
			srv.maxclients = num_arg(o, v, 1, 1000000);
		} else if (!strcmp(o, "--timeout")) {
			srv.timeout = num_arg(o, v, 0, 100000000);
		} else {
			usage(stderr);
			die("unknown option %s", o);
		}
	}
	if (srv.store_dir == NULL) {
		usage(stderr);
		die("--store DIR is required");
	}
}

static void store_log(void *arg, int level, const char *msg)
{
	(void)arg;
	static const char *names[] = { "error", "warning", "info" };
	fprintf(stderr, "dskvs-server: store %s: %s\n",
	        level >= 0 && level <= 2 ? names[level] : "note", msg);
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	srv.pid = getpid();
	srv.started = time(NULL);
	srv.started_ms = now_ms();
	srv.main_thread = pthread_self();
	pthread_mutex_init(&srv.reg_lock, NULL);
	const char *acc = getenv("DSKVS_SERVER_ACCEPT");
	handoff_tcp = acc != NULL && !strcmp(acc, "handoff");

	/* Protected mode, before anything is opened. */
	struct addrinfo *ai = resolve_bind();
	if (srv.password == NULL) {
		for (struct addrinfo *a = ai; a; a = a->ai_next)
			if (!is_loopback(a->ai_addr))
				die("refusing to listen on %s, which is not a "
				    "loopback address, without a password "
				    "(protected mode): give --requirepass or "
				    "--requirepass-file, or bind 127.0.0.1",
				    srv.bind);
	}

	/* Signals: every thread blocks them; main waits for them. */
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	dskvs_options opts;
	dskvs_options_init(&opts);
	/* --sync always holds replies, not threads (see the top). */
	opts.sync_mode = DSKVS_SYNC_ASYNC;
	opts.log_fn = store_log;
	int rc = dskvs_open(srv.store_dir, &opts, &srv.store);
	if (rc != DSKVS_OK)
		die("cannot open the store %s: %s (%s)", srv.store_dir,
		    dskvs_strerror(rc), dskvs_errmsg(NULL));
	if (dskvs_durable_fd(srv.store) < 0)
		die("cannot watch the store's durability: out of descriptors");

	loops = calloc((size_t)srv.threads, sizeof(*loops));
	srv.stats = aligned_alloc(64, (size_t)srv.threads * sizeof(*srv.stats));
	if (loops == NULL || srv.stats == NULL)
		die("out of memory");
	memset(srv.stats, 0, (size_t)srv.threads * sizeof(*srv.stats));
	for (int i = 0; i < srv.threads; i++) {
		struct loop *l = &loops[i];
		l->idx = i;
		l->tcp_fd = l->unix_fd = -1;
		pthread_mutex_init(&l->q_lock, NULL);
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (l->epfd < 0 || l->wakefd < 0)
			die("epoll/eventfd: %s", strerror(errno));
		loop_add(l, l->wakefd, TAG_WAKE);
		if (i == 0 || !handoff_tcp) {
			l->tcp_fd = tcp_listen(ai, !handoff_tcp);
			loop_add(l, l->tcp_fd, TAG_TCP);
		}
	}
	freeaddrinfo(ai);
	if (srv.unixsocket) {
		loops[0].unix_fd = unix_listen(srv.unixsocket);
		loop_add(&loops[0], loops[0].unix_fd, TAG_UNIX);
	}
	for (int i = 0; i < srv.threads; i++)
		if (pthread_create(&loops[i].th, NULL, loop_main, &loops[i]))
			die("cannot start thread %d", i);

	fprintf(stderr, "dskvs-server: ready on %s:%d\n", srv.bind, srv.port);
	fflush(stderr);

	int sig = 0;
	while (sigwait(&set, &sig) != 0)
		;
	atomic_store(&srv.shutting_down, 1);
	for (int i = 0; i < srv.threads; i++)
		wake_loop(&loops[i]);
	pthread_mutex_lock(&phase_lock);
	while (loops_drained < srv.threads)
		pthread_cond_wait(&phase_cv, &phase_lock);
	pthread_mutex_unlock(&phase_lock);
	int src = dskvs_sync(srv.store);
	atomic_store(&srv.shutting_down, 2);
	for (int i = 0; i < srv.threads; i++)
		wake_loop(&loops[i]);
	for (int i = 0; i < srv.threads; i++)
		pthread_join(loops[i].th, NULL);
	for (int i = 0; i < srv.threads; i++) {
		close(loops[i].epfd);
		close(loops[i].wakefd);
		pthread_mutex_destroy(&loops[i].q_lock);
		free(loops[i].q);
	}
	free(loops);
	free(srv.stats);
	if (srv.unixsocket)
		unlink(srv.unixsocket);
	rc = dskvs_close(srv.store);
	free(srv.password);
	if (rc != DSKVS_OK || src != DSKVS_OK) {
		fprintf(stderr,
		        "dskvs-server: the store could not persist every "
		        "write: %s\n",
		        dskvs_strerror(rc != DSKVS_OK ? rc : src));
		return 1;
	}
	fprintf(stderr, "dskvs-server: %s, store closed, exiting\n",
	        sig == SIGINT ? "SIGINT" : "shutdown");
	return 0;
}
