/*
 * tap.h - the TAP-like reporting of the basic suite (see tests/README.md).
 *
 * Each check prints "ok N - desc" or "not ok N - desc: got X want Y"; the
 * program ends with "# passed P failed F" and exits 0 iff nothing failed.
 * Stdout is compared byte for byte between a native run and a run under
 * ringbox, so nothing printed here may vary between runs: no addresses,
 * ids or times, and errnos by name (strerror's wording differs between
 * glibc and musl).
 */
#ifndef RINGBOX_TESTS_BASIC_TAP_H
#define RINGBOX_TESTS_BASIC_TAP_H

#define _GNU_SOURCE
#include <stdlib.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../include/tap_common.h"

static int tap_n, tap_failed;

/* tap_report prints one result line. */
static void tap_report(int pass, const char *got, const char *want,
		       const char *fmt, ...)
{
	char desc[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof desc, fmt, ap);
	va_end(ap);
	tap_n++;
	if (pass) {
		printf("ok %d - %s\n", tap_n, desc);
	} else {
		tap_failed++;
		printf("not ok %d - %s: got %s want %s\n", tap_n, desc, got, want);
	}
}

/* ok records a boolean result. */
#define ok(cond, ...) tap_report(!!(cond), "false", "true", __VA_ARGS__)

/* check_eq compares two integers. */
#define check_eq(got_, want_, ...)                                       \
	do {                                                             \
		long long g_ = (long long)(got_), w_ = (long long)(want_); \
		char gs_[24], ws_[24];                                   \
		snprintf(gs_, sizeof gs_, "%lld", g_);                   \
		snprintf(ws_, sizeof ws_, "%lld", w_);                   \
		tap_report(g_ == w_, gs_, ws_, __VA_ARGS__);             \
	} while (0)

/* check_err evaluates a call that must return -1 with errno want_. */
#define check_err(call_, want_, ...)                                     \
	do {                                                             \
		errno = 0;                                               \
		long r_ = (long)(call_);                                 \
		int e_ = errno;                                          \
		char gs_[48];                                            \
		snprintf(gs_, sizeof gs_, "ret %ld errno %s", r_,        \
			 tap_errname(e_));                               \
		tap_report(r_ == -1 && e_ == (want_), gs_,               \
			   tap_errname(want_), __VA_ARGS__);             \
	} while (0)

/* check_ok evaluates a call that must not return -1. */
#define check_ok(call_, ...)                                             \
	do {                                                             \
		errno = 0;                                               \
		long r_ = (long)(call_);                                 \
		int e_ = errno;                                          \
		tap_report(r_ != -1, tap_errname(e_), "success",         \
			   __VA_ARGS__);                                 \
	} while (0)

/* tap_init unbuffers stdout, so that a crash loses no line, and arms the
 * watchdog that keeps a broken kernel from hanging the suite. */
static void tap_init(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	alarm(tap_watchdog_secs());
}

/* tap_done prints the summary and returns the exit status. */
static __attribute__((unused)) int tap_done(void)
{
	printf("# passed %d failed %d\n", tap_n - tap_failed, tap_failed);
	return tap_failed ? 1 : 0;
}

#endif
