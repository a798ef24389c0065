/*
 * Wraps a core_pattern pipe handler to measure its peak memory:
 *
 *   |/path/bench-rusage-wrap HANDLER [ARGS...]
 *
 * Runs HANDLER (with the same stdin, file descriptor 3, environment and
 * working directory the kernel gave us), waits for it with wait4() and
 * writes one line to RSS_DIR/<our pid> (RSS_DIR is fixed at compile time,
 * because the kernel's 127-byte core_pattern leaves no room for it):
 *
 *   maxrss_kb=.. status=.. handler_ns=.. start_real_ns=..
 *
 * start_real_ns is when the kernel started the wrapper (CLOCK_REALTIME), so
 * the benchmark can tell the kernel's share of a latency from the handler's.
 * maxrss_kb is the largest peak resident set of the handler or of any
 * descendant it waited for (wait4's rusage), so a shell script's `cat` or
 * `lttng` counts as much as the script itself. Every pipe handler of the
 * benchmark runs under this wrapper, so what it adds (a fork and an exec)
 * is the same for all of them.
 *
 * The wrapper closes its own stdin at once: the kernel waits (with
 * core_pipe_limit set) for every reader of the core pipe to close it, and
 * must wait for the handler, not for us.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RSS_DIR
#error "compile with -DRSS_DIR='\"/dir\"'"
#endif

static long long clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	char tmp[256], final[256], line[128];
	long long start, start_real, end;
	struct rusage usage;
	int status, fd, len;
	pid_t pid;

	if (argc < 2)
		return 127;
	start_real = clock_ns(CLOCK_REALTIME);
	start = clock_ns(CLOCK_MONOTONIC);
	pid = fork();
	if (pid < 0)
		return 127;
	if (pid == 0) {
		execv(argv[1], argv + 1);
		_exit(127);
	}
	close(0);
	while (wait4(pid, &status, 0, &usage) < 0) {
		if (errno != EINTR)
			return 127;
	}
	end = clock_ns(CLOCK_MONOTONIC);

	snprintf(tmp, sizeof(tmp), "%s/.%d", RSS_DIR, (int) getpid());
	snprintf(final, sizeof(final), "%s/%d", RSS_DIR, (int) getpid());
	len = snprintf(line, sizeof(line), "maxrss_kb=%ld status=%d handler_ns=%lld start_real_ns=%lld\n",
		       usage.ru_maxrss, status, end - start, start_real);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		/* The harness polls for the final name: it must appear complete. */
		if (write(fd, line, (size_t) len) == len && close(fd) == 0)
			rename(tmp, final);
		else
			unlink(tmp);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
