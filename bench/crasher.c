/*
 * The benchmark's crashing program, traced with lttng-ust:
 *
 *   bench-crasher TAG EVENTS ALLOC_MB zero|random
 *
 * Touches ALLOC_MB MiB of memory (zeroes, or incompressible bytes) so that
 * its core has a known size, emits EVENTS lttng_coredump_bench:step events
 * (seq 0..EVENTS-1, tag TAG), then writes "MONO_NS REAL_NS\n" (the crash
 * instant on CLOCK_MONOTONIC and CLOCK_REALTIME) to file descriptor 3, and
 * writes through a NULL pointer. The clocks are read as the very last thing
 * before the fault, so that every latency measured from them starts at the
 * crash and includes nothing of the program's own set-up.
 */
#define _GNU_SOURCE
#define TRACEPOINT_DEFINE
#define TRACEPOINT_CREATE_PROBES
#include "tp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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
		perror("bench-crasher: mmap");
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

int main(int argc, char **argv)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	char stamp[64];
	long events, i;
	int len;

	if (argc != 5 || (strcmp(argv[4], "zero") != 0 && strcmp(argv[4], "random") != 0)) {
		fprintf(stderr, "usage: %s TAG EVENTS ALLOC_MB zero|random\n", argv[0]);
		return 2;
	}
	events = strtol(argv[2], NULL, 10);
	if (setrlimit(RLIMIT_CORE, &unlimited) != 0) {
		perror("bench-crasher: setrlimit(RLIMIT_CORE)");
		return 2;
	}
	fill_memory((size_t) strtoul(argv[3], NULL, 10), strcmp(argv[4], "random") == 0);

	for (i = 0; i < events; i++)
		tracepoint(lttng_coredump_bench, step, (int) i, argv[1]);

	len = snprintf(stamp, sizeof(stamp), "%lld %lld\n",
		       clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_REALTIME));
	if (write(3, stamp, (size_t) len) != len) {
		perror("bench-crasher: writing the crash instant to fd 3");
		return 2;
	}
	*(volatile int *) NULL = 42;
	return 0;
}
