/*
 * The triggers RFC's core_pattern helper: given the crash's fields, fires
 * the OnAnyCoreDump triggers with lttng_trigger(), as a program set in
 * /proc/sys/kernel/core_pattern would:
 *
 *   |/path/coredump_helper %P %u %g %e %h
 *
 *   coredump_helper [--socket PATH] [--timeout-ms N] [--report] [--log FILE]
 *                   PID UID GID EXEC_NAME HOSTNAME
 *
 * Prints "ret <code>" (to FILE with --log: a core_pattern helper has no
 * terminal). With --report it calls lttng_coredump_trigger_fire() instead
 * and also prints, for each action, "entry <i> <status> <action> <owner uid>
 * <session> <trigger> <snapshot path or ->", and for each other error
 * "error <code> <message>". Exits 0 when the fire returned 0.
 */
#include <lttng-coredump.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_field(char *dst, size_t size, const char *src)
{
	strncpy(dst, src, size - 1);
	dst[size - 1] = '\0';
}

static const char *or_dash(const char *s)
{
	return s ? s : "-";
}

int main(int argc, char **argv)
{
	struct lttng_trigger_onanycoredump crash;
	struct lttng_coredump_fire_report *report = NULL;
	char *socket_path = NULL;
	const char *log_path = NULL;
	int with_report = 0, ret, i = 1;
	FILE *out = stdout;
	size_t n;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			socket_path = argv[++i];
		} else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
			if (lttng_coredump_set_fire_timeout_ms((unsigned int) strtoul(argv[++i], NULL, 10)))
				return 2;
		} else if (strcmp(argv[i], "--report") == 0) {
			with_report = 1;
		} else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
			log_path = argv[++i];
		} else {
			break;
		}
	}
	if (argc - i != 5) {
		fprintf(stderr, "usage: %s [--socket PATH] [--timeout-ms N] [--report] [--log FILE] "
				"PID UID GID EXEC_NAME HOSTNAME\n", argv[0]);
		return 2;
	}
	memset(&crash, 0, sizeof(crash));
	crash.pid = (pid_t) strtol(argv[i], NULL, 10);
	crash.uid = (uid_t) strtoul(argv[i + 1], NULL, 10);
	crash.gid = (gid_t) strtoul(argv[i + 2], NULL, 10);
	copy_field(crash.exec_name, sizeof(crash.exec_name), argv[i + 3]);
	copy_field(crash.hostname, sizeof(crash.hostname), argv[i + 4]);

	if (log_path) {
		out = fopen(log_path, "w");
		if (!out)
			return 3;
	}
	if (!with_report) {
		ret = lttng_trigger(LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, socket_path, &crash,
				sizeof(crash));
		fprintf(out, "ret %d\n", ret);
	} else {
		ret = lttng_coredump_trigger_fire(LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, socket_path,
				&crash, sizeof(crash), &report);
		fprintf(out, "ret %d\n", ret);
		for (n = 0; n < lttng_coredump_fire_report_get_count(report); n++) {
			fprintf(out, "entry %zu %d %d %lld %s %s %s\n", n,
					lttng_coredump_fire_report_get_status(report, n),
					lttng_coredump_fire_report_get_action(report, n),
					(long long) lttng_coredump_fire_report_get_owner_uid(report, n),
					or_dash(lttng_coredump_fire_report_get_session(report, n)),
					or_dash(lttng_coredump_fire_report_get_trigger_name(report, n)),
					or_dash(lttng_coredump_fire_report_get_snapshot_path(report, n)));
			if (lttng_coredump_fire_report_get_error_message(report, n))
				fprintf(out, "message %zu %s\n", n,
						lttng_coredump_fire_report_get_error_message(report, n));
		}
		for (n = 0; n < lttng_coredump_fire_report_get_error_count(report); n++)
			fprintf(out, "error %d %s\n",
					lttng_coredump_fire_report_get_error_code(report, n),
					or_dash(lttng_coredump_fire_report_get_error(report, n)));
		lttng_coredump_fire_report_destroy(report);
	}
	if (out != stdout)
		fclose(out);
	return ret ? 1 : 0;
}
