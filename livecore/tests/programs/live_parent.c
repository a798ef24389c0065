/*
 * The live-core tests' parent: starts a program and watches it as a shell
 * or a service manager would, to show that a live dump of it is invisible
 * to its parent:
 *
 *   live_parent EVENTS_FILE PROGRAM [ARGS...]
 *
 * The program inherits stdin, stdout and stderr. Every event waitid()
 * reports about it (stopped, continued, exited: WEXITED | WSTOPPED |
 * WCONTINUED) is written to EVENTS_FILE as "stopped SIG", "continued" or
 * "exited STATUS", with the number of SIGCHLDs received ("sigchld N") when
 * the program has exited; then this exits with the program's status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int sigchld_count;

static void on_sigchld(int sig)
{
	(void) sig;
	atomic_fetch_add(&sigchld_count, 1);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	siginfo_t info;
	FILE *events;
	pid_t child;

	if (argc < 3) {
		fprintf(stderr, "usage: %s EVENTS_FILE PROGRAM [ARGS...]\n", argv[0]);
		return 2;
	}
	events = fopen(argv[1], "w");
	if (!events) {
		perror("live_parent: events file");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	child = fork();
	if (child < 0) {
		perror("live_parent: fork");
		return 2;
	}
	if (child == 0) {
		execv(argv[2], argv + 2);
		perror("live_parent: exec");
		_exit(127);
	}
	for (;;) {
		memset(&info, 0, sizeof(info));
		if (waitid(P_PID, (id_t) child, &info, WEXITED | WSTOPPED | WCONTINUED) != 0) {
			if (errno == EINTR)
				continue;
			fprintf(events, "waitid failed %d\n", errno);
			fflush(events);
			return 3;
		}
		switch (info.si_code) {
		case CLD_STOPPED:
		case CLD_TRAPPED:
			fprintf(events, "stopped %d\n", info.si_status);
			break;
		case CLD_CONTINUED:
			fprintf(events, "continued\n");
			break;
		default:
			fprintf(events, "exited %d\n", info.si_status);
			fprintf(events, "sigchld %d\n", atomic_load(&sigchld_count));
			fclose(events);
			return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
		}
		fflush(events);
	}
}
