/* What one snapshot costs LTTng itself: `lttng_snapshot_record()` against
 * the warm root session daemon, in a loop in one process (one connection
 * set-up per call, as liblttng-ctl does; nothing of ours). It records to
 * the session's own output under a name, as our handler does, so that the
 * session daemon does the same work as for a crash.
 *
 *   bench-snapshot-floor SESSION NAME COUNT
 *
 * prints one line per record: `ns=<wall time of the call>`. Exits non-zero
 * at the first failed record. */
#define _GNU_SOURCE
#include <lttng/lttng.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s SESSION NAME COUNT\n", argv[0]);
		return 2;
	}
	const char *session = argv[1];
	const char *name = argv[2];
	int count = atoi(argv[3]);
	for (int i = 0; i < count; i++) {
		struct lttng_snapshot_output *output = lttng_snapshot_output_create();
		if (!output || lttng_snapshot_output_set_name(name, output) != 0) {
			fprintf(stderr, "cannot make a snapshot output named %s\n", name);
			return 1;
		}
		long long start = now_ns();
		int ret = lttng_snapshot_record(session, output, 1);
		long long took = now_ns() - start;
		lttng_snapshot_output_destroy(output);
		if (ret < 0) {
			fprintf(stderr, "lttng_snapshot_record(%s): %s\n", session, lttng_strerror(ret));
			return 1;
		}
		printf("ns=%lld\n", took);
		fflush(stdout);
	}
	return 0;
}
