/*
 * Load generator for the retention benchmark, traced with lttng-ust:
 *
 *   bench-loadgen RATE THREADS
 *
 * Emits lttng_coredump:load events at RATE events per second in all,
 * spread over THREADS threads, thread i pinned to CPU i modulo the CPU count
 * so that every per-CPU buffer of the session takes its share. Each thread
 * paces itself against its own schedule (batches of 1000 events, then a
 * sleep until the next batch is due), so the rate holds steady rather than
 * bursting. Prints "ready" once every thread has started, and on SIGTERM or
 * SIGINT prints what it really did:
 *
 *   events=.. seconds=.. rate=.. min_1s_rate=..
 *
 * min_1s_rate is the slowest one-second window seen after the first second.
 */
#define _GNU_SOURCE
#define TRACEPOINT_DEFINE
#define TRACEPOINT_CREATE_PROBES
#include "lttng_coredump_tp.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BATCH 1000

static atomic_ullong emitted;
static atomic_int stopping;
static double per_thread_rate;

static long long clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void) sig;
	atomic_store(&stopping, 1);
}

static void *emit(void *arg)
{
	long cpu = (long) arg;
	long long start = clock_ns(), done = 0;
	unsigned int seq = 0;
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	CPU_SET((int) cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		long long due;

		for (i = 0; i < BATCH; i++)
			tracepoint(lttng_coredump, load, seq++);
		done += BATCH;
		atomic_fetch_add_explicit(&emitted, BATCH, memory_order_relaxed);
		due = start + (long long) ((double) done / per_thread_rate * 1e9);
		if (due > clock_ns()) {
			struct timespec ts = { due / 1000000000LL, due % 1000000000LL };

			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long long last_count = 0, count;
	double min_rate = -1, seconds;
	long long start, last;
	long threads, cpus, i;
	pthread_t *tids;
	struct sigaction sa = { .sa_handler = on_signal };

	if (argc != 3) {
		fprintf(stderr, "usage: %s RATE THREADS\n", argv[0]);
		return 2;
	}
	threads = strtol(argv[2], NULL, 10);
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1 || cpus < 1) {
		fprintf(stderr, "bench-loadgen: bad thread count\n");
		return 2;
	}
	per_thread_rate = strtod(argv[1], NULL) / (double) threads;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	tids = calloc((size_t) threads, sizeof(*tids));
	if (!tids)
		return 2;
	start = last = clock_ns();
	for (i = 0; i < threads; i++) {
		if (pthread_create(&tids[i], NULL, emit, (void *) (i % cpus)) != 0) {
			fprintf(stderr, "bench-loadgen: pthread_create failed\n");
			return 2;
		}
	}
	printf("ready\n");
	fflush(stdout);

	while (!atomic_load(&stopping)) {
		struct timespec second = { 1, 0 };
		long long now;

		nanosleep(&second, NULL);
		now = clock_ns();
		count = atomic_load(&emitted);
		/* The first window includes start-up: not a fair sample. */
		if (last != start && now - last >= 900000000LL) {
			double rate = (double) (count - last_count) * 1e9 / (double) (now - last);

			if (min_rate < 0 || rate < min_rate)
				min_rate = rate;
		}
		last_count = count;
		last = now;
	}
	for (i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);
	seconds = (double) (clock_ns() - start) / 1e9;
	count = atomic_load(&emitted);
	printf("events=%llu seconds=%.3f rate=%.0f min_1s_rate=%.0f\n",
	       count, seconds, (double) count / seconds, min_rate);
	free(tids);
	return 0;
}
