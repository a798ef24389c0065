/*
 * Fire latency of OnAnyCoreDump through our C API against the CLI:
 *
 *   bench-fire N RUNS PREFIX OUTDIR
 *
 * Creates N snapshot-mode sessions PREFIX-0 .. PREFIX-(N-1) (snapshot output
 * OUTDIR/PREFIX-i), each recording lttng_coredump:load and started, and
 * registers an OnAnyCoreDump snapshot trigger on each with
 * lttng_trigger_set(). Then, RUNS times, it times alternately:
 *
 *   api  one lttng_trigger() call, which records the snapshots of every
 *        OnAnyCoreDump trigger of the root session daemon (our N);
 *   cli  what a script does instead: `lttng snapshot record -s PREFIX-i`
 *        for each of the N sessions, one after the other;
 *
 * and prints "api NS RC SNAPSHOTS" and "cli NS RC SNAPSHOTS" (RC:
 * lttng_trigger()'s return, or the number of lttng commands that failed;
 * SNAPSHOTS: how many of the N sessions got a snapshot, counted on disk, so
 * a fire that did less than asked cannot pass for a fast one). The snapshots
 * are deleted after each run. At the end the triggers are unset and the sessions destroyed.
 */
#define _GNU_SOURCE
#include <lttng/lttng.h>
#include "lttng-coredump.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *remove_root;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	if (ftw->level == 0 || strcmp(path, remove_root) == 0)
		return 0;
	return remove(path) == 0 ? 0 : -1;
}

/* Deletes what a session's snapshots left under its output directory. */
static void remove_snapshots(const char *dir)
{
	remove_root = dir;
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whether a session's output directory holds a snapshot. */
static int has_snapshot(const char *dir)
{
	struct dirent *entry;
	int found = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return 0;
	while (!found && (entry = readdir(d)) != NULL)
		found = entry->d_name[0] != '.';
	closedir(d);
	return found;
}

/* How many sessions got a snapshot; deletes them all. */
static int collect_snapshots(char (*outputs)[PATH_MAX], long n)
{
	int count = 0;
	long i;

	for (i = 0; i < n; i++) {
		count += has_snapshot(outputs[i]);
		remove_snapshots(outputs[i]);
	}
	return count;
}

static int cli_snapshot(const char *session)
{
	char *argv[] = { "lttng", "snapshot", "record", "-s", (char *) session, NULL };
	posix_spawn_file_actions_t actions;
	int status, rc;
	pid_t pid;

	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, "lttng", &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (rc != 0)
		return -1;
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct lttng_domain domain;
	struct lttng_trigger_onanycoredump crash;
	struct lttng_handle **handles;
	char (*names)[LTTNG_SYMBOL_NAME_LEN];
	char (*outputs)[PATH_MAX];
	long n, runs, i, r;
	int rc, failed = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: %s N RUNS PREFIX OUTDIR\n", argv[0]);
		return 2;
	}
	n = strtol(argv[1], NULL, 10);
	runs = strtol(argv[2], NULL, 10);
	if (n < 1 || runs < 1) {
		fprintf(stderr, "bench-fire: N and RUNS must be positive\n");
		return 2;
	}
	handles = calloc((size_t) n, sizeof(*handles));
	names = calloc((size_t) n, sizeof(*names));
	outputs = calloc((size_t) n, sizeof(*outputs));
	if (!handles || !names || !outputs)
		return 2;

	memset(&domain, 0, sizeof(domain));
	domain.type = LTTNG_DOMAIN_UST;
	domain.buf_type = LTTNG_BUFFER_PER_UID;
	for (i = 0; i < n && !failed; i++) {
		struct lttng_event event;
		char url[PATH_MAX + 8];

		snprintf(names[i], sizeof(names[i]), "%s-%ld", argv[3], i);
		snprintf(outputs[i], sizeof(outputs[i]), "%s/%s", argv[4], names[i]);
		snprintf(url, sizeof(url), "file://%s", outputs[i]);
		rc = lttng_create_session_snapshot(names[i], url);
		if (rc < 0) {
			fprintf(stderr, "bench-fire: creating session %s: %s\n", names[i], lttng_strerror(rc));
			failed = 1;
			break;
		}
		handles[i] = lttng_create_handle(names[i], &domain);
		memset(&event, 0, sizeof(event));
		event.type = LTTNG_EVENT_TRACEPOINT;
		event.loglevel_type = LTTNG_EVENT_LOGLEVEL_ALL;
		snprintf(event.name, sizeof(event.name), "lttng_coredump:load");
		if (!handles[i] || (rc = lttng_enable_event(handles[i], &event, NULL)) < 0 ||
		    (rc = lttng_start_tracing(names[i])) < 0 ||
		    (rc = lttng_trigger_set(handles[i], LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
					    LTTNG_TRIGGER_ACTION_SNAPSHOT, NULL, 0)) < 0) {
			fprintf(stderr, "bench-fire: setting up session %s: %s\n", names[i],
				lttng_strerror(handles[i] ? rc : -LTTNG_ERR_NOMEM));
			failed = 1;
		}
	}

	memset(&crash, 0, sizeof(crash));
	crash.pid = getpid();
	crash.uid = getuid();
	crash.gid = getgid();
	snprintf(crash.exec_name, sizeof(crash.exec_name), "bench-fire");
	gethostname(crash.hostname, sizeof(crash.hostname) - 1);

	for (r = 0; r < runs && !failed; r++) {
		long long start, end;
		int cli_failures = 0;

		start = clock_ns();
		rc = lttng_trigger(LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, NULL, &crash, sizeof(crash));
		end = clock_ns();
		printf("api %lld %d %d\n", end - start, rc, collect_snapshots(outputs, n));

		start = clock_ns();
		for (i = 0; i < n; i++)
			cli_failures += cli_snapshot(names[i]) != 0;
		end = clock_ns();
		printf("cli %lld %d %d\n", end - start, cli_failures, collect_snapshots(outputs, n));
		fflush(stdout);
	}

	for (i = 0; i < n; i++) {
		if (handles[i]) {
			lttng_trigger_unset(handles[i], LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
					    LTTNG_TRIGGER_ACTION_SNAPSHOT, NULL, 0);
			lttng_destroy_handle(handles[i]);
		}
		if (names[i][0])
			lttng_destroy_session(names[i]);
		remove_snapshots(outputs[i]);
		rmdir(outputs[i]);
	}
	free(handles);
	free(names);
	free(outputs);
	return failed ? 1 : 0;
}
