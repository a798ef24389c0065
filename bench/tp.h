/*
 * Tracepoint provider of the benchmark programs: `step` marks the crasher's
 * last events (counted in the snapshot to measure retention), `load` is the
 * load generator's stream.
 */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER lttng_coredump_bench

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "./tp.h"

#if !defined(BENCH_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define BENCH_TP_H

#include <lttng/tracepoint.h>

TRACEPOINT_EVENT(
	lttng_coredump_bench,
	step,
	TP_ARGS(int, seq, const char *, tag),
	TP_FIELDS(
		ctf_integer(int, seq, seq)
		ctf_string(tag, tag)
	)
)

TRACEPOINT_EVENT(
	lttng_coredump_bench,
	load,
	TP_ARGS(unsigned int, seq),
	TP_FIELDS(
		ctf_integer(unsigned int, seq, seq)
	)
)

#endif /* BENCH_TP_H */

#include <lttng/tracepoint-event.h>
