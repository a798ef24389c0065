/*
 * The one tracepoint provider of the project's traced C programs
 * (programs/crasher.c, bench/loadgen.c):
 *   step  {seq, tag}   a test's or the benchmark's numbered events, found in
 *                      a snapshot by their tag;
 *   story {step, what} the demo's account of what the program does;
 *   load  {seq}        the benchmark's load generator's stream.
 * Separate event names let each user enable only its own events.
 */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER lttng_coredump

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "./lttng_coredump_tp.h"

#if !defined(LTTNG_COREDUMP_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define LTTNG_COREDUMP_TP_H

#include <lttng/tracepoint.h>

TRACEPOINT_EVENT(
	lttng_coredump,
	step,
	TP_ARGS(int, seq, const char *, tag),
	TP_FIELDS(
		ctf_integer(int, seq, seq)
		ctf_string(tag, tag)
	)
)

TRACEPOINT_EVENT(
	lttng_coredump,
	story,
	TP_ARGS(int, step, const char *, what),
	TP_FIELDS(
		ctf_integer(int, step, step)
		ctf_string(what, what)
	)
)

TRACEPOINT_EVENT(
	lttng_coredump,
	load,
	TP_ARGS(unsigned int, seq),
	TP_FIELDS(
		ctf_integer(unsigned int, seq, seq)
	)
)

#endif /* LTTNG_COREDUMP_TP_H */

#include <lttng/tracepoint-event.h>
