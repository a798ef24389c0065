/*
 * Runs one crash and measures it from the crashed program's parent:
 *
 *   bench-reap CRASHER [ARGS...]
 *
 * Starts CRASHER with a pipe on its file descriptor 3 (where bench-crasher
 * writes the crash instant), waits for it with waitpid() and prints one line:
 *
 *   pid=.. crash_mono_ns=.. crash_real_ns=.. reap_mono_ns=.. reap_real_ns=.. reap_ns=.. signal=.. core_dumped=0|1
 *
 * reap_ns is the crash-to-reap latency: from the crash instant to the moment
 * waitpid() returned here. The clock is read right after waitpid() and
 * before anything else, so the pipe is read only after the measurement.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long long reap_mono, reap_real, crash_mono = 0, crash_real = 0;
	char buf[128];
	size_t used = 0;
	ssize_t n;
	int fds[2], status;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CRASHER [ARGS...]\n", argv[0]);
		return 2;
	}
	if (pipe(fds) != 0) {
		perror("bench-reap: pipe");
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		perror("bench-reap: fork");
		return 2;
	}
	if (pid == 0) {
		if (dup2(fds[1], 3) < 0) {
			perror("bench-reap: dup2");
			_exit(127);
		}
		if (fds[0] != 3)
			close(fds[0]);
		if (fds[1] != 3)
			close(fds[1]);
		execv(argv[1], argv + 1);
		perror("bench-reap: exec");
		_exit(127);
	}
	close(fds[1]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("bench-reap: waitpid");
			return 2;
		}
	}
	reap_mono = clock_ns(CLOCK_MONOTONIC);
	reap_real = clock_ns(CLOCK_REALTIME);

	while (used < sizeof(buf) - 1 && (n = read(fds[0], buf + used, sizeof(buf) - 1 - used)) > 0)
		used += (size_t) n;
	buf[used] = '\0';
	if (sscanf(buf, "%lld %lld", &crash_mono, &crash_real) != 2) {
		fprintf(stderr, "bench-reap: the crasher wrote no crash instant (status 0x%x)\n", status);
		return 1;
	}
	if (!WIFSIGNALED(status)) {
		fprintf(stderr, "bench-reap: the crasher did not crash (status 0x%x)\n", status);
		return 1;
	}
	printf("pid=%d crash_mono_ns=%lld crash_real_ns=%lld reap_mono_ns=%lld reap_real_ns=%lld reap_ns=%lld signal=%d core_dumped=%d\n",
	       (int) pid, crash_mono, crash_real, reap_mono, reap_real, reap_mono - crash_mono,
	       WTERMSIG(status), WCOREDUMP(status) ? 1 : 0);
	return 0;
}
