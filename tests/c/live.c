/*
 * lttng_coredump_live() as a C daemon or watchdog calls it:
 *
 *   live dump CORE FLAGS   forks a child that waits in child_waits_in_pause(),
 *                          writes its core to CORE with lttng_coredump_live(),
 *                          then prints "ret <code>", "alive <0|1>" (the child
 *                          still runs), "parent-events <n>" (what waitpid
 *                          with WUNTRACED | WCONTINUED reported about it:
 *                          nothing is expected) and "child <pid>".
 *   live errors            prints "<case> <code>" for bad arguments.
 *
 * Exits 0 when the calls returned what they should.
 */
#include <lttng-coredump.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void child_waits_in_pause(void)
{
	for (;;)
		pause();
}

static int dump(const char *path, unsigned int flags)
{
	int fd, ret, events = 0, status;
	pid_t child = fork();

	if (child < 0)
		return 2;
	if (child == 0) {
		child_waits_in_pause();
		_exit(0);
	}
	/* Let the child reach its pause(). */
	usleep(100000);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror("live: open");
		return 2;
	}
	ret = lttng_coredump_live(child, fd, flags);
	close(fd);
	printf("ret %d\n", ret);
	printf("alive %d\n", kill(child, 0) == 0);
	while (waitpid(child, &status, WNOHANG | WUNTRACED | WCONTINUED) > 0)
		events++;
	printf("parent-events %d\n", events);
	printf("child %d\n", (int) child);
	kill(child, SIGKILL);
	waitpid(child, &status, 0);
	return ret == 0 ? 0 : 1;
}

static int errors(void)
{
	pid_t zombie = fork();

	if (zombie == 0)
		_exit(0);
	/* Let it become a zombie (reaped below). */
	usleep(100000);
	printf("bad_flags %d\n", lttng_coredump_live(getpid(), 1, 16));
	printf("both_methods %d\n", lttng_coredump_live(getpid(), 1, LTTNG_COREDUMP_LIVE_STOP_AND_COPY | LTTNG_COREDUMP_LIVE_COPY_ON_WRITE));
	printf("bad_fd %d\n", lttng_coredump_live(getpid(), -1, LTTNG_COREDUMP_LIVE_NO_SNAPSHOT));
	printf("closed_fd %d\n", lttng_coredump_live(getpid(), 1000, LTTNG_COREDUMP_LIVE_NO_SNAPSHOT));
	printf("pid_zero %d\n", lttng_coredump_live(0, 1, LTTNG_COREDUMP_LIVE_NO_SNAPSHOT));
	printf("zombie %d\n", lttng_coredump_live(zombie, 1, LTTNG_COREDUMP_LIVE_NO_SNAPSHOT));
	waitpid(zombie, NULL, 0);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "dump") == 0)
		return dump(argv[2], (unsigned int) strtoul(argv[3], NULL, 0));
	if (argc == 2 && strcmp(argv[1], "errors") == 0)
		return errors();
	fprintf(stderr, "usage: %s dump CORE FLAGS | errors\n", argv[0]);
	return 2;
}
