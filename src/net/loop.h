/* loop.h: one epoll event loop per worker thread: fd readiness, its timer wheel, and jobs posted from other threads. */
#ifndef SIPD_NET_LOOP_H
#define SIPD_NET_LOOP_H

#include <stdint.h>

#include "base/timer.h"

struct loop;
typedef void (loop_fd_h)(int fd, uint32_t events, void *arg); /* events: EPOLLIN, EPOLLOUT, ... */
typedef void (loop_post_h)(void *arg);

int loop_new(struct loop **lp);
void loop_free(struct loop *l);
int loop_fd_add(struct loop *l, int fd, uint32_t events, loop_fd_h *h, void *arg);
int loop_fd_mod(struct loop *l, int fd, uint32_t events);
void loop_fd_del(struct loop *l, int fd);
/* Runs on the calling thread until loop_stop; returns 0. */
int loop_run(struct loop *l);
/* Thread-safe. */
void loop_stop(struct loop *l);
/* Thread-safe: h(arg) runs on l's thread, in posting order. 0 or ENOMEM. */
int loop_post(struct loop *l, loop_post_h *h, void *arg);
/* Monotonic milliseconds, refreshed once per loop iteration. */
uint64_t loop_now(const struct loop *l);
struct tmr_wheel *loop_timers(struct loop *l);
/* The loop running on the calling thread, or NULL. */
struct loop *loop_current(void);

#endif
