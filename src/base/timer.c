/* timer.c: a four-level hierarchical timer wheel, 256 slots per level at 1 ms resolution.
 *
 * Level L covers blocks of 2^(8L) ms. A timer sits on the lowest level whose next-larger block
 * it shares with the wheel's time: level 0 holds the rest of the current 256 ms block, one slot
 * per millisecond; level 1 the rest of the current 65536 ms block, one slot per 256 ms; and so
 * on. When time enters a block, that block's slot one level up is "cascaded": its timers are
 * placed again and fall to a lower level. Timers beyond level 3's 2^32 ms block wait on an
 * overflow list, placed again each time a 2^32 ms boundary passes.
 *
 * Every list is circular with a sentinel, so start and cancel are O(1) and a timer need not know
 * its slot. Slots at or before the wheel's position on each level are always empty, which lets
 * advance jump straight to the next non-empty slot instead of ticking every millisecond. Finding
 * that slot reads a bitmap per level (a bit per slot, set when a timer is placed there, cleared
 * when the slot is found empty or emptied), not the 256 list heads: cancel cannot clear the bit,
 * since a timer does not know its slot, so a set bit only says "maybe".
 */
#include "base/timer.h"

#include <errno.h>
#include <time.h>
#include <stdlib.h>

#define TMR_LEVELS 4
#define TMR_BITS 8
#define TMR_SLOTS (1u << TMR_BITS)
#define TMR_MASK (TMR_SLOTS - 1)
#define TMR_WORDS (TMR_SLOTS / 64)

struct tmr_wheel {
	uint64_t now;                              /* every timer due by now has fired */
	uint64_t count;                            /* running timers */
	struct tmr due;                            /* started with no delay: fire on the next advance */
	struct tmr over;                           /* beyond the current 2^32 ms block */
	struct tmr slot[TMR_LEVELS][TMR_SLOTS];
	uint64_t maybe[TMR_LEVELS][TMR_WORDS];     /* bit set: the slot may hold timers */
	/* wheel_next_event's answer, kept between calls (a loop asks every turn, a scan of the levels'
	 * bits costs about 170 instructions): when known, it is the next slot that holds a timer. A timer
	 * placed earlier lowers it; a timer cancelled, or the step to it (an advance), forgets it. */
	uint64_t next_at;
	bool next_known;
};

static void slot_mark(struct tmr_wheel *w, unsigned lvl, unsigned s)
{
	w->maybe[lvl][s >> 6] |= UINT64_C(1) << (s & 63);
}

static void slot_unmark(struct tmr_wheel *w, unsigned lvl, unsigned s)
{
	w->maybe[lvl][s >> 6] &= ~(UINT64_C(1) << (s & 63));
}

static void list_init(struct tmr *head)
{
	head->next = head;
	head->prev = head;
}

static bool list_empty(const struct tmr *head)
{
	return head->next == head;
}

static void list_append(struct tmr *head, struct tmr *t)
{
	t->prev = head->prev;
	t->next = head;
	head->prev->next = t;
	head->prev = t;
}

static void list_unlink(struct tmr *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = NULL;
	t->prev = NULL;
}

/* Moves every element of from onto the empty list to, keeping their order. */
static void list_move(struct tmr *to, struct tmr *from)
{
	list_init(to);
	if (list_empty(from))
		return;
	to->next = from->next;
	to->prev = from->prev;
	to->next->prev = to;
	to->prev->next = to;
	list_init(from);
}

/* When slot s of the level at shift comes due, seen from now: the slot's own millisecond on level 0,
 * the start of its block (where it cascades) on a higher one. */
static uint64_t slot_due(uint64_t now, unsigned shift, unsigned s)
{
	return ((now >> (shift + TMR_BITS)) << (shift + TMR_BITS)) | ((uint64_t)s << shift);
}

/* When the list of timers beyond the current 2^32 ms block comes due: that block's end. */
static uint64_t over_due(uint64_t now)
{
	return ((now >> 32) + 1) << 32;
}

/* A slot that holds a timer from now on is due at 'at' (slot_due, over_due). */
static void next_lower(struct tmr_wheel *w, uint64_t at)
{
	if (w->next_known && at < w->next_at)
		w->next_at = at;
}

/* Puts t (expires >= now) on the lowest level whose enclosing block it shares with now. */
static void wheel_place(struct tmr_wheel *w, struct tmr *t)
{
	uint64_t e = t->expires;

	for (unsigned lvl = 0; lvl < TMR_LEVELS; lvl++) {
		unsigned shift = lvl * TMR_BITS;

		if (((e ^ w->now) >> (shift + TMR_BITS)) == 0) {
			unsigned s = (unsigned)((e >> shift) & TMR_MASK);

			list_append(&w->slot[lvl][s], t);
			slot_mark(w, lvl, s);
			next_lower(w, slot_due(w->now, shift, s));
			return;
		}
	}
	list_append(&w->over, t);
	next_lower(w, over_due(w->now));
}

/* Places again every timer of list (now that time has entered their block). */
static void wheel_replace(struct tmr_wheel *w, struct tmr *list)
{
	struct tmr tmp;

	list_move(&tmp, list);
	while (!list_empty(&tmp)) {
		struct tmr *t = tmp.next;

		list_unlink(t);
		wheel_place(w, t);
	}
}

/* Time has just moved to w->now: bring down every slot whose block starts here, highest first
 * so that a timer can fall through several levels in one step. */
static void wheel_cascade(struct tmr_wheel *w)
{
	uint64_t n = w->now;

	if ((n & 0xffffffffu) == 0)
		wheel_replace(w, &w->over);
	for (unsigned lvl = TMR_LEVELS - 1; lvl > 0; lvl--) {
		unsigned shift = lvl * TMR_BITS;

		if ((n & ((UINT64_C(1) << shift) - 1)) == 0) {
			unsigned s = (unsigned)((n >> shift) & TMR_MASK);

			slot_unmark(w, lvl, s); /* its timers fall to lower levels, never back here */
			wheel_replace(w, &w->slot[lvl][s]);
		}
	}
}

/* Fires the timers of list. They are moved aside first, so a handler that starts a timer for
 * the same slot cannot make this loop run forever, and a handler cancelling another timer of
 * the batch simply unlinks it from the local list. */
static void wheel_fire(struct tmr_wheel *w, struct tmr *list)
{
	struct tmr batch;

	list_move(&batch, list);
	while (!list_empty(&batch)) {
		struct tmr *t = batch.next;

		list_unlink(t);
		t->wheel = NULL;
		w->count--;
		t->h(t, t->arg);
	}
}

/* The first slot after cur on level lvl that holds timers, or TMR_SLOTS; clears the bits of the
 * slots it finds empty on the way. */
static unsigned level_next_slot(struct tmr_wheel *w, unsigned lvl, unsigned cur)
{
	for (unsigned from = cur + 1; from < TMR_SLOTS; from = (from | 63) + 1) {
		uint64_t bits = w->maybe[lvl][from >> 6] & (~UINT64_C(0) << (from & 63));

		while (bits) {
			unsigned s = (from & ~63u) + (unsigned)__builtin_ctzll(bits);

			if (!list_empty(&w->slot[lvl][s]))
				return s;
			slot_unmark(w, lvl, s);
			bits &= bits - 1;
		}
	}
	return TMR_SLOTS;
}

/* Milliseconds from now to the next slot that holds anything: exact on level 0, the start of
 * the block to cascade on higher levels. 0 when the wheel holds nothing (the due list aside). */
static uint64_t wheel_scan_next(struct tmr_wheel *w)
{
	uint64_t n = w->now;

	for (unsigned lvl = 0; lvl < TMR_LEVELS; lvl++) {
		unsigned shift = lvl * TMR_BITS;
		unsigned s = level_next_slot(w, lvl, (unsigned)((n >> shift) & TMR_MASK));

		if (s < TMR_SLOTS)
			return slot_due(n, shift, s) - n;
	}
	if (!list_empty(&w->over))
		return over_due(n) - n;
	return 0;
}

/* As wheel_scan_next, from what the last scan found when that still holds (next_at). An empty wheel
 * is known as next_at UINT64_MAX, lowered by the next timer placed. */
static uint64_t wheel_next_event(struct tmr_wheel *w)
{
	uint64_t d;

	if (w->next_known && w->next_at > w->now)
		return w->next_at == UINT64_MAX ? 0 : w->next_at - w->now;
	d = wheel_scan_next(w);
	w->next_at = d ? w->now + d : UINT64_MAX;
	w->next_known = true;
	return d;
}

int tmr_wheel_new(struct tmr_wheel **wp, uint64_t now_ms)
{
	struct tmr_wheel *w;

	if (!wp)
		return EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return ENOMEM;
	w->now = now_ms;
	list_init(&w->due);
	list_init(&w->over);
	for (unsigned lvl = 0; lvl < TMR_LEVELS; lvl++)
		for (unsigned s = 0; s < TMR_SLOTS; s++)
			list_init(&w->slot[lvl][s]);
	*wp = w;
	return 0;
}

/* Timers still running are left untouched (their owners must not cancel them afterwards). */
void tmr_wheel_free(struct tmr_wheel *w)
{
	free(w);
}

void tmr_start(struct tmr_wheel *w, struct tmr *t, uint64_t delay_ms, tmr_h *h, void *arg)
{
	if (!w || !t || !h)
		return;
	tmr_cancel(t);
	t->h = h;
	t->arg = arg;
	t->wheel = w;
	t->expires = delay_ms > UINT64_MAX - w->now ? UINT64_MAX : w->now + delay_ms;
	if (delay_ms == 0)
		list_append(&w->due, t);
	else
		wheel_place(w, t);
	w->count++;
}

void tmr_start_lazy(struct tmr_wheel *w, struct tmr *t, uint64_t delay_ms, tmr_h *h, void *arg)
{
	uint64_t at;

	if (!w)
		return;
	if (delay_ms > UINT64_MAX - w->now - TMR_LAZY_MS) {
		tmr_start(w, t, delay_ms, h, arg);
		return;
	}
	at = (w->now + delay_ms + TMR_LAZY_MS - 1) / TMR_LAZY_MS * TMR_LAZY_MS;
	tmr_start(w, t, at - w->now, h, arg);
}

void tmr_cancel(struct tmr *t)
{
	if (!t || !t->next)
		return;
	list_unlink(t);
	t->wheel->count--;
	t->wheel->next_known = false; /* it may have been the next: no sleep cut short by a ghost */
	t->wheel = NULL;
}

bool tmr_isrunning(const struct tmr *t)
{
	return t && t->next != NULL;
}

void tmr_wheel_advance(struct tmr_wheel *w, uint64_t now_ms)
{
	if (!w)
		return;
	wheel_fire(w, &w->due);
	if (w->count == 0 && w->now < now_ms) {
		w->now = now_ms; /* nothing to cascade or fire: skip the slot scan */
		return;
	}
	while (w->now < now_ms) {
		uint64_t d = wheel_next_event(w);

		if (d == 0 || d > now_ms - w->now) {
			w->now = now_ms;
			break;
		}
		w->now += d;
		w->next_known = false; /* reached: what comes after it is found by the next scan */
		wheel_cascade(w);
		slot_unmark(w, 0, (unsigned)(w->now & TMR_MASK));
		wheel_fire(w, &w->slot[0][w->now & TMR_MASK]);
	}
}

int64_t tmr_wheel_next(struct tmr_wheel *w)
{
	uint64_t d;

	if (!w || w->count == 0)
		return -1;
	if (!list_empty(&w->due))
		return 0;
	d = wheel_next_event(w);
	return d > INT64_MAX ? INT64_MAX : (int64_t)d;
}

uint64_t tmr_wheel_now(const struct tmr_wheel *w)
{
	return w ? w->now : 0;
}

uint64_t tmr_wheel_count(const struct tmr_wheel *w)
{
	return w ? w->count : 0;
}

void tmr_deadline(struct timespec *ts, uint64_t us)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(us / 1000000u);
	ts->tv_nsec += (long)(us % 1000000u) * 1000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}
