/*
 * The live-core tests' target, and the benchmark's: a process that must not
 * notice it is dumped.
 *
 *   live_target [--fill MIB] [--random] [--thp always|never] [--writer MIBPS]
 *               [--emit TAG] [--nondumpable] [--quiet-threads] [--special]
 *               [--share-with-child] [--generations]
 *
 * Eight threads, each blocked in its own named function, each checking
 * what it gets back (a call that should never return, an EINTR, a register
 * that changed under it) and counting what is wrong in `errors`:
 *   blocked_in_read, blocked_in_nanosleep (relative: restart_syscall),
 *   blocked_in_futex, blocked_in_poll (with a timeout), blocked_in_select,
 *   blocked_in_epoll, blocked_in_sigwait, spinning_in_user_code.
 * (--quiet-threads leaves them out, for the benchmark.)
 * Service threads:
 *   counting_time     stamps CLOCK_MONOTONIC every 100 us (absolute
 *                     sleeps); keeps the number of stamps and the gaps over
 *                     1 ms (the pause seen from inside);
 *   reaping_children  waitpid(-1, WNOHANG) every millisecond, as a daemon
 *                     that reaps every child would, and counts SIGCHLDs;
 *   emitting_events   (--emit TAG) lttng_coredump:step {seq, tag} every
 *                     2 ms; `last_seq` is the last one emitted;
 *   writing_memory    (--writer MIBPS) rewrites the filled memory at that
 *                     rate;
 *   writing_generations (--generations) writes, as fast as it can, a
 *                     running generation number into the first word of
 *                     every page of the filled memory in order: page i
 *                     gets g, then page i+1, ..., then page 0 gets g+1.
 *                     Memory copied at one instant reads g for the pages
 *                     before one page k and g-1 from k on (pre-copy's
 *                     consistency test).
 * --fill MIB maps and touches MIB MiB (zeroes, or --random bytes), with
 * transparent huge pages asked for or refused (--thp).
 * SIGUSR1 is blocked in every thread (a test sends one: it must stay
 * pending); a POSIX timer is armed (/proc/PID/timers must not change).
 * --share-with-child forks a child that sleeps (and dies with this
 * process) after the memory is filled: the filled pages are then shared
 * copy-on-write with it, as in a pre-forking server.
 * --special maps three 64 KiB areas whose bytes say what they are, marked
 * MADV_DONTFORK (0xab), MADV_WIPEONFORK (0xcd) and MADV_DONTDUMP (0xef),
 * at dontfork_area, wipeonfork_area and dontdump_area.
 *
 * Prints "ready PID" once every thread runs, then answers lines on stdin:
 *   stats  -> "stats stamps=N errors=E reaped=R sigchld=S emitted=M last_seq=Q max_gap_ns=G"
 *   gaps   -> "gap FROM_NS TO_NS" for each gap over 1 ms (the last 65536), then "end"
 *   errors -> "error WHAT" for each error, then "end"
 *   reset  -> "reset": the largest gap starts again from zero (the
 *             benchmark measures each dump's pause from inside this way)
 *   fork   -> "fork ns=N": forks a child that exits at once (exit signal
 *             0, as our copy-on-write copy: the reaping thread does not
 *             see it) and reaps it; N: how long the fork took in this
 *             thread (the benchmark's baseline: the kernel's own fork of
 *             a process of this size)
 *   fill   -> "fill ADDR LEN" (hexadecimal, decimal): the filled memory
 *   mapfile PATH PAGES FROM TO -> "mapfile ADDR" (hexadecimal): maps PAGES
 *             pages of the file PATH private and writable (one such
 *             mapping at a time) and writes 0x57 ('W') over its pages
 *             [FROM, TO) (private copies: the mapping is "written to")
 *   madvise fill|file ADVICE OFF LEN -> "madvise R" (R: 0 or an errno):
 *             madvise(ADVICE) (dontneed, free, pageout, dontdump, dodump)
 *             on [OFF, OFF + LEN) of the filled memory or of the mapped
 *             file (the tests give pages back between a pre-copy pass and
 *             the final stop)
 *   exit   -> exits 0
 */
#define _GNU_SOURCE
#define TRACEPOINT_DEFINE
#define TRACEPOINT_CREATE_PROBES
#include "lttng_coredump_tp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

#define MAX_ERRORS 64
/* The gaps kept: enough for a minute of one gap a millisecond, so that on a
 * loaded machine the gap of a dump's stop is still there when a test asks
 * for it seconds later (256 were not: CI saw the ring wrap). */
#define MAX_GAPS 65536

static atomic_int errors;
static char error_text[MAX_ERRORS][96];
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int ready_threads;
static atomic_long stamps;
static atomic_long max_gap_ns;
static long long gaps[MAX_GAPS][2];
static atomic_int gap_count;
static atomic_int reaped;
static atomic_int sigchld_count;
static atomic_long emitted;
/* Read by the tests in the core (gdb: print last_seq). */
volatile int last_seq = -1;
static int never_written[2];
static int futex_word;
static unsigned char *fill;
static size_t fill_len;
static long writer_mibps;
static const char *emit_tag;
/* Read by the tests in the core (gdb). */
unsigned char *dontfork_area, *wipeonfork_area, *dontdump_area;
/* `mapfile`: a private file mapping. */
static unsigned char *file_area;

static void note_error(const char *what, long value)
{
	int i = atomic_fetch_add(&errors, 1);

	if (i < MAX_ERRORS) {
		pthread_mutex_lock(&error_lock);
		snprintf(error_text[i], sizeof(error_text[i]), "%s (%ld, errno %d)", what, value, errno);
		pthread_mutex_unlock(&error_lock);
	}
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void im_ready(void)
{
	atomic_fetch_add(&ready_threads, 1);
}

__attribute__((noinline)) static void *blocked_in_read(void *arg)
{
	char c;
	ssize_t n;

	(void) arg;
	im_ready();
	for (;;) {
		n = read(never_written[0], &c, 1);
		note_error("read returned", (long) n);
	}
	return NULL;
}

__attribute__((noinline)) static void *blocked_in_nanosleep(void *arg)
{
	struct timespec t = { 100000, 0 };

	(void) arg;
	im_ready();
	for (;;) {
		/* Relative: interrupted, it continues through restart_syscall. */
		if (nanosleep(&t, NULL) != 0)
			note_error("nanosleep failed", -1);
	}
	return NULL;
}

__attribute__((noinline)) static void *blocked_in_futex(void *arg)
{
	long r;

	(void) arg;
	im_ready();
	for (;;) {
		r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		note_error("futex wait returned", r);
	}
	return NULL;
}

__attribute__((noinline)) static void *blocked_in_poll(void *arg)
{
	struct pollfd fd = { .fd = never_written[0], .events = POLLIN };
	int r;

	(void) arg;
	im_ready();
	for (;;) {
		r = poll(&fd, 1, 100000 * 1000);
		if (r != 0)
			note_error("poll returned", r);
	}
	return NULL;
}

__attribute__((noinline)) static void *blocked_in_select(void *arg)
{
	fd_set set;
	struct timeval tv;
	int r;

	(void) arg;
	im_ready();
	for (;;) {
		FD_ZERO(&set);
		FD_SET(never_written[0], &set);
		tv.tv_sec = 100000;
		tv.tv_usec = 0;
		r = select(never_written[0] + 1, &set, NULL, NULL, &tv);
		if (r != 0)
			note_error("select returned", r);
	}
	return NULL;
}

__attribute__((noinline)) static void *blocked_in_epoll(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC), r;

	(void) arg;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, never_written[0], &ev) != 0)
		note_error("epoll set-up failed", ep);
	im_ready();
	for (;;) {
		r = epoll_wait(ep, &ev, 1, -1);
		note_error("epoll_wait returned", r);
	}
	return NULL;
}

__attribute__((noinline)) static void *blocked_in_sigwait(void *arg)
{
	sigset_t set;
	int r;

	(void) arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	im_ready();
	for (;;) {
		r = sigwaitinfo(&set, NULL);
		note_error("sigwaitinfo returned", r);
	}
	return NULL;
}

/*
 * Two copies of the same computation, in registers (integer and floating
 * point): any register changed under this thread makes them differ.
 */
__attribute__((noinline)) static void *spinning_in_user_code(void *arg)
{
	uint64_t a = 0x9e3779b97f4a7c15ULL, b = a;
	double x = 1.0, y = 1.0;
	long i;

	(void) arg;
	im_ready();
	for (;;) {
		for (i = 0; i < 1000000; i++) {
			a = a * 6364136223846793005ULL + 1442695040888963407ULL;
			b = b * 6364136223846793005ULL + 1442695040888963407ULL;
			x = x * 1.0000001 + 0.5;
			y = y * 1.0000001 + 0.5;
			if (x > 1e12) {
				x = 1.0;
				y = 1.0;
			}
		}
		if (a != b || x != y)
			note_error("register values changed", (long) (a ^ b));
		a = b;
		x = y;
	}
	return NULL;
}

__attribute__((noinline)) static void *counting_time(void *arg)
{
	struct timespec next;
	long long prev, now, gap;
	int slot;

	(void) arg;
	im_ready();
	clock_gettime(CLOCK_MONOTONIC, &next);
	prev = now_ns();
	for (;;) {
		next.tv_nsec += 100000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) != 0)
			note_error("clock_nanosleep failed", -1);
		now = now_ns();
		gap = now - prev;
		if (gap > max_gap_ns)
			max_gap_ns = gap;
		if (gap > 1000000) {
			slot = atomic_fetch_add(&gap_count, 1) % MAX_GAPS;
			gaps[slot][0] = prev;
			gaps[slot][1] = now;
		}
		/* Behind (it was stopped): start again from now. */
		if (now > (long long) next.tv_sec * 1000000000LL + next.tv_nsec + 1000000)
			clock_gettime(CLOCK_MONOTONIC, &next);
		prev = now;
		atomic_fetch_add(&stamps, 1);
	}
	return NULL;
}

static void on_sigchld(int sig)
{
	(void) sig;
	atomic_fetch_add(&sigchld_count, 1);
}

__attribute__((noinline)) static void *reaping_children(void *arg)
{
	sigset_t set;
	int status;
	pid_t pid;

	(void) arg;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	im_ready();
	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			atomic_fetch_add(&reaped, 1);
			note_error("reaped a child", pid);
		}
		usleep(1000);
	}
	return NULL;
}

__attribute__((noinline)) static void *emitting_events(void *arg)
{
	struct timespec t = { 0, 2000000 };
	int seq;

	(void) arg;
	im_ready();
	for (seq = 0;; seq++) {
		tracepoint(lttng_coredump, step, seq, emit_tag);
		last_seq = seq;
		atomic_fetch_add(&emitted, 1);
		nanosleep(&t, NULL);
	}
	return NULL;
}

__attribute__((noinline)) static void *writing_memory(void *arg)
{
	size_t chunk = (size_t) writer_mibps << 20;
	size_t at = 0;
	struct timespec next;
	unsigned char v = 1;

	(void) arg;
	/* Every 10 ms, a hundredth of a second's worth. */
	chunk /= 100;
	if (chunk > fill_len)
		chunk = fill_len;
	im_ready();
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		if (at + chunk > fill_len)
			at = 0;
		memset(fill + at, v++, chunk);
		at += chunk;
		next.tv_nsec += 10000000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	return NULL;
}

__attribute__((noinline)) static void *writing_generations(void *arg)
{
	size_t pages = fill_len / 4096, i;
	uint64_t g;

	(void) arg;
	im_ready();
	for (g = 1;; g++)
		for (i = 0; i < pages; i++)
			atomic_store_explicit((_Atomic uint64_t *)(fill + i * 4096), g,
					      memory_order_relaxed);
	return NULL;
}

static void fill_memory(size_t mib, int random_bytes, const char *thp)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL, *words;
	size_t i;

	fill_len = mib << 20;
	if (!fill_len)
		return;
	fill = mmap(NULL, fill_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fill == MAP_FAILED) {
		perror("live_target: mmap");
		exit(2);
	}
	if (thp && strcmp(thp, "always") == 0)
		madvise(fill, fill_len, MADV_HUGEPAGE);
	else if (thp && strcmp(thp, "never") == 0)
		madvise(fill, fill_len, MADV_NOHUGEPAGE);
	words = (uint64_t *) fill;
	for (i = 0; i < fill_len / 8; i++) {
		if (random_bytes) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			words[i] = x;
		} else {
			/* Touched (so present) but zero. */
			words[i] = 0;
		}
	}
}

/* Starts a thread named `name` (what the dump's report shows). */
static unsigned char *special_area(int advice, int byte)
{
	unsigned char *area = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (area == MAP_FAILED || madvise(area, 65536, advice) != 0) {
		perror("live_target: special area");
		exit(2);
	}
	memset(area, byte, 65536);
	return area;
}

static void start(void *(*fn)(void *), const char *name, int *count)
{
	pthread_t thread;

	if (pthread_create(&thread, NULL, fn, NULL) != 0) {
		perror("live_target: pthread_create");
		exit(2);
	}
	pthread_setname_np(thread, name);
	(*count)++;
}

static void answer(const char *line)
{
	int i;

	if (strncmp(line, "stats", 5) == 0) {
		printf("stats stamps=%ld errors=%d reaped=%d sigchld=%d emitted=%ld last_seq=%d max_gap_ns=%ld\n",
		       atomic_load(&stamps), atomic_load(&errors), atomic_load(&reaped),
		       atomic_load(&sigchld_count), atomic_load(&emitted), last_seq,
		       atomic_load(&max_gap_ns));
	} else if (strncmp(line, "gaps", 4) == 0) {
		int n = atomic_load(&gap_count);

		for (i = 0; i < n && i < MAX_GAPS; i++)
			printf("gap %lld %lld\n", gaps[i][0], gaps[i][1]);
		printf("end\n");
	} else if (strncmp(line, "errors", 6) == 0) {
		pthread_mutex_lock(&error_lock);
		for (i = 0; i < atomic_load(&errors) && i < MAX_ERRORS; i++)
			printf("error %s\n", error_text[i]);
		pthread_mutex_unlock(&error_lock);
		printf("end\n");
	} else if (strncmp(line, "reset", 5) == 0) {
		atomic_store(&max_gap_ns, 0);
		printf("reset\n");
	} else if (strncmp(line, "fork", 4) == 0) {
		struct timespec before, after;
		long child;

		clock_gettime(CLOCK_MONOTONIC, &before);
		/* fork() with exit signal 0 (flags 0, no new stack: the child
		 * goes on from here on a copy of this stack, as after fork). */
		child = syscall(SYS_clone, 0L, 0L, 0L, 0L, 0L);
		if (child == 0)
			_exit(0);
		clock_gettime(CLOCK_MONOTONIC, &after);
		if (child > 0)
			waitpid((pid_t)child, NULL, __WALL);
		printf("fork ns=%lld\n",
		       (long long)(after.tv_sec - before.tv_sec) * 1000000000LL +
			       (after.tv_nsec - before.tv_nsec));
	} else if (strncmp(line, "fill", 4) == 0) {
		printf("fill %lx %zu\n", (unsigned long) fill, fill_len);
	} else if (strncmp(line, "grow ", 5) == 0) {
		/* grow N: N MiB more of private memory, every page written
		 * (not zero): what a dump must now stage. */
		size_t len = (size_t)strtoul(line + 5, NULL, 10) << 20;
		unsigned char *more = mmap(NULL, len, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (more == MAP_FAILED) {
			printf("grow failed\n");
		} else {
			memset(more, 0x5a, len);
			printf("grown %lx %zu\n", (unsigned long) more, len);
		}
	} else if (strncmp(line, "mapfile ", 8) == 0) {
		char path[200];
		unsigned long pages, from, to;
		int fd;

		if (sscanf(line + 8, "%199s %lu %lu %lu", path, &pages, &from, &to) != 4 || from > to || to > pages) {
			printf("mapfile bad\n");
		} else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			printf("mapfile open errno %d\n", errno);
		} else {
			file_area = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
			close(fd);
			if (file_area == MAP_FAILED) {
				printf("mapfile mmap errno %d\n", errno);
				file_area = NULL;
			} else {
				memset(file_area + from * 4096, 0x57, (to - from) * 4096);
				printf("mapfile %lx\n", (unsigned long) file_area);
			}
		}
	} else if (strncmp(line, "madvise ", 8) == 0) {
		char which[8], name[16];
		unsigned long off, len;
		unsigned char *base;
		int advice = -1;

		if (sscanf(line + 8, "%7s %15s %lu %lu", which, name, &off, &len) != 4) {
			printf("madvise bad\n");
		} else {
			base = strcmp(which, "file") == 0 ? file_area : fill;
			if (strcmp(name, "dontneed") == 0)
				advice = MADV_DONTNEED;
			else if (strcmp(name, "free") == 0)
				advice = MADV_FREE;
			else if (strcmp(name, "pageout") == 0)
				advice = MADV_PAGEOUT;
			else if (strcmp(name, "dontdump") == 0)
				advice = MADV_DONTDUMP;
			else if (strcmp(name, "dodump") == 0)
				advice = MADV_DODUMP;
			if (!base || advice < 0)
				printf("madvise bad\n");
			else
				printf("madvise %d\n", madvise(base + off, len, advice) == 0 ? 0 : errno);
		}
	} else if (strncmp(line, "exit", 4) == 0) {
		exit(0);
	} else {
		printf("unknown command\n");
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	size_t mib = 0;
	int random_bytes = 0, nondumpable = 0, quiet = 0, special = 0, share = 0, threads = 0, i;
	int generations = 0;
	const char *thp = NULL;
	struct sigaction sa;
	struct sigevent sev;
	struct itimerspec period = { { 1000, 0 }, { 1000, 0 } };
	timer_t timer;
	sigset_t blocked;
	char line[256];

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--fill") == 0 && i + 1 < argc)
			mib = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--generations") == 0)
			generations = 1;
		else if (strcmp(argv[i], "--random") == 0)
			random_bytes = 1;
		else if (strcmp(argv[i], "--thp") == 0 && i + 1 < argc)
			thp = argv[++i];
		else if (strcmp(argv[i], "--writer") == 0 && i + 1 < argc)
			writer_mibps = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--emit") == 0 && i + 1 < argc)
			emit_tag = argv[++i];
		else if (strcmp(argv[i], "--nondumpable") == 0)
			nondumpable = 1;
		else if (strcmp(argv[i], "--quiet-threads") == 0)
			quiet = 1;
		else if (strcmp(argv[i], "--special") == 0)
			special = 1;
		else if (strcmp(argv[i], "--share-with-child") == 0)
			share = 1;
		else {
			fprintf(stderr, "usage: %s [--fill MIB] [--random] [--thp always|never] [--writer MIBPS] [--emit TAG] [--nondumpable] [--quiet-threads] [--special] [--share-with-child] [--generations]\n", argv[0]);
			return 2;
		}
	}
	if (nondumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		perror("live_target: prctl");
		return 2;
	}
	if (pipe(never_written) != 0) {
		perror("live_target: pipe");
		return 2;
	}
	fill_memory(mib, random_bytes, thp);
	if (share) {
		pid_t parent = getpid(), child = fork();

		if (child == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			if (getppid() != parent)
				_exit(0);
			for (;;)
				pause();
		}
		if (child < 0) {
			perror("live_target: fork");
			return 2;
		}
	}
	if (special) {
		dontfork_area = special_area(MADV_DONTFORK, 0xab);
		wipeonfork_area = special_area(MADV_WIPEONFORK, 0xcd);
		dontdump_area = special_area(MADV_DONTDUMP, 0xef);
	}

	/* SIGCHLD for the reaper only; SIGUSR2 for sigwaitinfo only. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGCHLD);
	sigaddset(&blocked, SIGUSR2);
	/* Blocked everywhere: a SIGUSR1 the tests send stays pending. */
	sigaddset(&blocked, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &blocked, NULL);
	/* A timer, armed, that nothing may change (/proc/PID/timers). */
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_NONE;
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0 || timer_settime(timer, 0, &period, NULL) != 0) {
		perror("live_target: timer");
		return 2;
	}

	if (!quiet) {
		start(blocked_in_read, "blocked_read", &threads);
		start(blocked_in_nanosleep, "blocked_sleep", &threads);
		start(blocked_in_futex, "blocked_futex", &threads);
		start(blocked_in_poll, "blocked_poll", &threads);
		start(blocked_in_select, "blocked_select", &threads);
		start(blocked_in_epoll, "blocked_epoll", &threads);
		start(blocked_in_sigwait, "blocked_sigwait", &threads);
		start(spinning_in_user_code, "spinning", &threads);
	}
	start(counting_time, "counting_time", &threads);
	start(reaping_children, "reaping", &threads);
	if (emit_tag)
		start(emitting_events, "emitting", &threads);
	if (writer_mibps > 0 && fill_len > 0)
		start(writing_memory, "writing", &threads);
	if (generations && fill_len > 0)
		start(writing_generations, "generations", &threads);
	while (atomic_load(&ready_threads) < threads)
		usleep(1000);
	/* Let every thread reach its blocking call. */
	usleep(20000);
	printf("ready %d\n", (int) getpid());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		answer(line);
	return 0;
}
