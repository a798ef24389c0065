/* Tracepoint provider of the demo's crashing program. */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER lttng_coredump_demo

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "./crashing_demo_tp.h"

#if !defined(CRASHING_DEMO_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define CRASHING_DEMO_TP_H

#include <lttng/tracepoint.h>

TRACEPOINT_EVENT(
	lttng_coredump_demo,
	step,
	TP_ARGS(int, step, const char *, what),
	TP_FIELDS(
		ctf_integer(int, step, step)
		ctf_string(what, what)
	)
)

#endif /* CRASHING_DEMO_TP_H */

#include <lttng/tracepoint-event.h>
