/*
 * The project's one crashing program, traced with lttng-ust, used by the
 * system tests, the benchmark (bench/run) and the demo (lttng-coredump demo):
 *
 *   crasher [--gate] [--more N] [--stamp-fd FD] [--story] TAG COUNT MODE [FILL_MIB [zero|random]] [NAME]
 *   crasher                        (the demo: --story demo 0 segv)
 *
 * In order:
 *   - NAME, when given, becomes the process name (prctl PR_SET_NAME), so
 *     tests can crash programs with hostile names;
 *   - touches FILL_MIB MiB of memory (zeroes, or incompressible bytes) so
 *     that its core has a known size;
 *   - emits COUNT events lttng_coredump:step {seq = 0..COUNT-1, tag = TAG};
 *     with --story, the demo's story as lttng_coredump:story events instead;
 *   - prints "ready <pid>" on stdout (not in the story); with --gate, then waits for a line on
 *     stdin (a test lets many registered programs crash at once);
 *   - with --more N, emits N more step events after that line (seq
 *     COUNT..COUNT+N-1), so that a test can make a daemon fail between the
 *     two bursts;
 *   - with --stamp-fd FD, writes "MONO_NS REAL_NS\n" (the crash instant on
 *     CLOCK_MONOTONIC and CLOCK_REALTIME, read as the very last thing before
 *     the fault, so the benchmark's latencies include none of the set-up);
 *   - MODE "exit" returns 0, "segv" writes through a NULL pointer (with
 *     --story: the story's NULL account), "abort" calls abort(). Before
 *     crashing it raises RLIMIT_CORE as far as it may: the core is the point.
 */
#define _GNU_SOURCE
#define TRACEPOINT_DEFINE
#define TRACEPOINT_CREATE_PROBES
#include "lttng_coredump_tp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct account {
	const char *owner;
	int balance;
};

static const char *const story[] = {
	"starting up",
	"loading 3 accounts",
	"account 1 loaded (owner alice)",
	"account 2 loaded (owner bob)",
	"account 3 has no owner record: left NULL",
	"paying interest on every account",
};

static const char *const paying[] = {
	"adding interest to account 1",
	"adding interest to account 2",
	"adding interest to account 3",
};

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--gate] [--more N] [--stamp-fd FD] [--story] TAG COUNT exit|segv|abort [FILL_MIB [zero|random]] [NAME]\n", argv0);
	exit(2);
}

static long long clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fill_memory(size_t mib, int random_fill)
{
	size_t len = mib << 20;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	uint64_t *mem;
	size_t i;

	if (len == 0)
		return;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("crasher: mmap");
		exit(2);
	}
	if (!random_fill) {
		/* Every page present (so the kernel dumps it), all zero. */
		memset(mem, 0, len);
		return;
	}
	for (i = 0; i < len / sizeof(uint64_t); i++) {
		/* xorshift64: incompressible, and cheap. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		mem[i] = x;
	}
}

/* Raises the core size limit as far as this process may. */
static void allow_core(void)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct rlimit current;

	if (setrlimit(RLIMIT_CORE, &unlimited) == 0)
		return;
	if (getrlimit(RLIMIT_CORE, &current) == 0) {
		current.rlim_cur = current.rlim_max;
		setrlimit(RLIMIT_CORE, &current);
	}
}

/* The demo's story, up to where it goes wrong. */
static void story_begins(void)
{
	size_t i;

	for (i = 0; i < sizeof(story) / sizeof(story[0]); i++)
		tracepoint(lttng_coredump, story, (int) i + 1, story[i]);
}

/* The demo's crash: paying interest on its NULL account. */
static void story_crashes(void)
{
	struct account alice = { "alice", 100 }, bob = { "bob", 50 };
	/* volatile: the compiler must not turn the known NULL into a trap. */
	struct account *volatile accounts[3] = { &alice, &bob, NULL };
	size_t i;

	for (i = 0; i < 3; i++) {
		tracepoint(lttng_coredump, story, (int) (7 + i), paying[i]);
		/* Account 3 is NULL: this is the crash. */
		accounts[i]->balance += accounts[i]->balance / 100;
	}
}

int main(int argc, char **argv)
{
	const char *tag, *mode;
	int gate = 0, stamp_fd = -1, with_story = 0, crash;
	long count, more = 0, i;
	int arg = 1;
	static char *demo_args[] = { NULL, "--story", "demo", "0", "segv", NULL };

	if (argc == 1) {
		/* What `lttng-coredump demo` runs. */
		demo_args[0] = argv[0];
		argv = demo_args;
		argc = 5;
	}
	for (; arg < argc && strncmp(argv[arg], "--", 2) == 0; arg++) {
		if (strcmp(argv[arg], "--gate") == 0)
			gate = 1;
		else if (strcmp(argv[arg], "--story") == 0)
			with_story = 1;
		else if (strcmp(argv[arg], "--more") == 0 && arg + 1 < argc)
			more = strtol(argv[++arg], NULL, 10);
		else if (strcmp(argv[arg], "--stamp-fd") == 0 && arg + 1 < argc)
			stamp_fd = atoi(argv[++arg]);
		else
			usage(argv[0]);
	}
	if (argc - arg < 3)
		usage(argv[0]);
	tag = argv[arg];
	count = strtol(argv[arg + 1], NULL, 10);
	mode = argv[arg + 2];
	if (strcmp(mode, "exit") != 0 && strcmp(mode, "segv") != 0 && strcmp(mode, "abort") != 0)
		usage(argv[0]);
	crash = strcmp(mode, "exit") != 0;
	if (argc - arg > 5)
		prctl(PR_SET_NAME, argv[arg + 5], 0, 0, 0);
	if (argc - arg > 3)
		fill_memory((size_t) strtoul(argv[arg + 3], NULL, 10),
			    argc - arg > 4 && strcmp(argv[arg + 4], "random") == 0);

	if (with_story) {
		story_begins();
	} else {
		for (i = 0; i < count; i++)
			tracepoint(lttng_coredump, step, (int) i, tag);
	}

	if (!with_story) {
		printf("ready %d\n", (int) getpid());
		fflush(stdout);
	}
	if (gate) {
		char line[16];

		if (!fgets(line, sizeof(line), stdin))
			return 3;
	}
	for (i = count; i < count + more; i++)
		tracepoint(lttng_coredump, step, (int) i, tag);
	if (crash)
		allow_core();
	if (stamp_fd >= 0) {
		char stamp[64];
		int len = snprintf(stamp, sizeof(stamp), "%lld %lld\n",
				   clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_REALTIME));

		if (write(stamp_fd, stamp, (size_t) len) != len) {
			perror("crasher: writing the crash instant");
			return 2;
		}
	}

	if (!crash)
		return 0;
	if (strcmp(mode, "abort") == 0)
		abort();
	if (with_story)
		story_crashes();
	*(volatile int *) NULL = 42;
	return 0;
}
