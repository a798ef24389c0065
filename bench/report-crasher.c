/*
 * The crash of bench/report: fills FILL_MIB MiB of memory with
 * incompressible bytes (the core's size), starts three threads that
 * wait, and crashes three calls deep in its main thread.
 *
 *   report-crasher FILL_MIB
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static pthread_barrier_t started;
static volatile int sink;

static void *waiter(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&started);
	for (;;)
		pause();
	return NULL;
}

__attribute__((noinline)) static void bench_fault(int *p)
{
	*p = sink;
}

__attribute__((noinline)) static void bench_middle(int *p)
{
	bench_fault(p);
	sink++;
}

__attribute__((noinline)) static void bench_outer(int *p)
{
	bench_middle(p);
	sink++;
}

int main(int argc, char **argv)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	size_t bytes, i;
	uint64_t x = 88172645463325252ULL;
	uint64_t *fill;
	pthread_t threads[3];

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILL_MIB\n", argv[0]);
		return 2;
	}
	bytes = (size_t)strtoul(argv[1], NULL, 10) << 20;
	fill = malloc(bytes ? bytes : 1);
	if (!fill)
		return 1;
	for (i = 0; i < bytes / sizeof(*fill); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		fill[i] = x;
	}
	setrlimit(RLIMIT_CORE, &unlimited);
	pthread_barrier_init(&started, NULL, 4);
	for (i = 0; i < 3; i++)
		pthread_create(&threads[i], NULL, waiter, NULL);
	pthread_barrier_wait(&started);
	bench_outer(NULL);
	return 0;
}
