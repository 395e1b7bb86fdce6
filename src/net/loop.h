/* loop.h: one epoll event loop per worker thread: fd readiness, its timer wheel, and jobs posted from other threads. */
#ifndef SIPD_NET_LOOP_H
#define SIPD_NET_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "base/timer.h"

struct loop;
typedef void (loop_fd_h)(int fd, uint32_t events, void *arg); /* events: EPOLLIN, EPOLLOUT, ... */
typedef void (loop_post_h)(void *arg);

int loop_new(struct loop **lp);
/* After loop_run has returned. Jobs still posted run first, on the calling thread. */
void loop_free(struct loop *l);
/* fd_add and fd_del on l's thread (or before it runs); delete before closing the fd. */
int loop_fd_add(struct loop *l, int fd, uint32_t events, loop_fd_h *h, void *arg);
/* Any thread, as long as the caller keeps fd registered meanwhile (e.g. under the owner's lock). */
int loop_fd_mod(struct loop *l, int fd, uint32_t events);
void loop_fd_del(struct loop *l, int fd);
/* Runs on the calling thread until loop_stop; returns 0. */
int loop_run(struct loop *l);
/* Thread-safe. */
void loop_stop(struct loop *l);
/* Thread-safe: h(arg) runs on l's thread, in posting order. 0 or ENOMEM. */
int loop_post(struct loop *l, loop_post_h *h, void *arg);
/* Runs h(arg) as l's own thread would, now: at once on l's thread; from another thread only while l's
 * thread sleeps with nothing posted to it, taking l's run lock (tried, never waited for) and running
 * l's due timers first. false: not run, post it instead. A post to a sleeping loop wakes its thread,
 * which on a virtual machine costs more than most jobs; a running loop reads its posts anyway. */
bool loop_run_as(struct loop *l, loop_post_h *h, void *arg);
/* begin(arg) before and end(arg) after each run of posted jobs, on l's thread: lets the transport
 * gather what those jobs send into one system call. Set before loop_run. */
void loop_set_post_batch(struct loop *l, loop_post_h *begin, loop_post_h *end, void *arg);
/* Monotonic milliseconds, refreshed once per loop iteration. */
uint64_t loop_now(const struct loop *l);
struct tmr_wheel *loop_timers(struct loop *l);
/* The loop running on the calling thread, or NULL. */
struct loop *loop_current(void);

#endif
