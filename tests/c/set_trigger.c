/*
 * C API test program: sets or unsets the OnAnyCoreDump trigger of a session
 * through a real struct lttng_handle, as an application linking
 * liblttng-ctl and liblttng-coredump would. Valid C and C++.
 *
 *   set_trigger set|unset SESSION snapshot|stop
 *       prints "<set|unset> <ret>" and exits 0 when ret is 0
 *   set_trigger errors MISSING_SESSION
 *       calls the API with each kind of bad argument and prints
 *       "<case> <ret>" for each (MISSING_SESSION must not exist)
 */
#include <lttng/lttng.h>
#include <lttng-coredump.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct lttng_handle *handle_for(const char *session)
{
	struct lttng_domain domain;

	memset(&domain, 0, sizeof(domain));
	domain.type = LTTNG_DOMAIN_UST;
	domain.buf_type = LTTNG_BUFFER_PER_UID;
	return lttng_create_handle(session, &domain);
}

static int parse_action(const char *name, enum lttng_trigger_action *action)
{
	if (strcmp(name, "snapshot") == 0) {
		*action = LTTNG_TRIGGER_ACTION_SNAPSHOT;
		return 0;
	}
	if (strcmp(name, "stop") == 0) {
		*action = LTTNG_TRIGGER_ACTION_STOP;
		return 0;
	}
	return -1;
}

static void report(const char *what, int ret)
{
	printf("%s %d\n", what, ret);
}

/*
 * Out-of-range enum values are taken from within each enum's range of
 * representable values (0 for the type, 3 for the action), so that the
 * casts are defined behaviour in C++ as well as in C.
 */
static int bad_arguments(const char *missing_session)
{
	struct lttng_handle *missing = handle_for(missing_session);
	struct lttng_trigger_onanycoredump crash;
	struct lttng_coredump_fire_report *fire_report = NULL;
	char nowhere[] = "/nonexistent/lttng-coredump/.lttng";
	enum lttng_trigger_type bad_type = (enum lttng_trigger_type) 0;
	enum lttng_trigger_action bad_action = (enum lttng_trigger_action) 3;

	if (!missing) {
		fprintf(stderr, "lttng_create_handle failed\n");
		return 1;
	}
	memset(&crash, 0, sizeof(crash));
	crash.pid = 42;
	crash.uid = 1000;
	crash.gid = 1000;
	strcpy(crash.exec_name, "apache2");
	strcpy(crash.hostname, "A_HOST_NAME");

	report("set_null_handle", lttng_trigger_set(NULL, LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
			LTTNG_TRIGGER_ACTION_SNAPSHOT, NULL, 0));
	report("set_bad_type", lttng_trigger_set(missing, bad_type,
			LTTNG_TRIGGER_ACTION_SNAPSHOT, NULL, 0));
	report("set_bad_action", lttng_trigger_set(missing, LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
			bad_action, NULL, 0));
	report("set_missing_session", lttng_trigger_set(missing, LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
			LTTNG_TRIGGER_ACTION_SNAPSHOT, NULL, 0));
	report("unset_null_handle", lttng_trigger_unset(NULL, LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
			LTTNG_TRIGGER_ACTION_STOP, NULL, 0));
	report("unset_bad_action", lttng_trigger_unset(missing, LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
			bad_action, NULL, 0));
	report("unset_not_set", lttng_trigger_unset(missing, LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
			LTTNG_TRIGGER_ACTION_STOP, NULL, 0));

	report("fire_bad_type", lttng_trigger(bad_type, NULL, &crash, sizeof(crash)));
	report("fire_null_opts", lttng_trigger(LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, NULL, NULL,
			sizeof(crash)));
	report("fire_short_nb_opt", lttng_trigger(LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, NULL, &crash,
			sizeof(crash) - 1));
	report("fire_no_daemon_at_path", lttng_trigger(LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, nowhere,
			&crash, sizeof(crash)));
	memset(crash.exec_name, 'A', sizeof(crash.exec_name));
	report("fire_unterminated_exec_name", lttng_trigger(LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, NULL,
			&crash, sizeof(crash)));
	strcpy(crash.exec_name, "apache2");
	memset(crash.hostname, 'B', sizeof(crash.hostname));
	report("fire_unterminated_hostname", lttng_trigger(LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, NULL,
			&crash, sizeof(crash)));
	strcpy(crash.hostname, "A_HOST_NAME");
	report("fire_null_report", lttng_coredump_trigger_fire(LTTNG_TRIGGER_TYPE_ONANYCOREDUMP,
			NULL, &crash, sizeof(crash), NULL));
	report("fire_report_bad_type", lttng_coredump_trigger_fire(bad_type, NULL, &crash,
			sizeof(crash), &fire_report));
	report("fire_report_is_null_after_refusal", fire_report == NULL ? 0 : 1);
	report("timeout_zero", lttng_coredump_set_fire_timeout_ms(0));
	report("timeout_kept", (int) lttng_coredump_get_fire_timeout_ms());
	report("report_null_count", (int) lttng_coredump_fire_report_get_count(NULL));
	report("report_null_status", lttng_coredump_fire_report_get_status(NULL, 0));
	report("report_null_session_is_null",
			lttng_coredump_fire_report_get_session(NULL, 0) == NULL ? 0 : 1);
	lttng_coredump_fire_report_destroy(NULL);

	lttng_destroy_handle(missing);
	return 0;
}

int main(int argc, char **argv)
{
	struct lttng_handle *handle;
	enum lttng_trigger_action action;
	int ret;

	if (argc == 3 && strcmp(argv[1], "errors") == 0)
		return bad_arguments(argv[2]);
	if (argc != 4 || parse_action(argv[3], &action) != 0) {
		fprintf(stderr, "usage: %s set|unset SESSION snapshot|stop | errors SESSION\n",
				argv[0]);
		return 2;
	}
	handle = handle_for(argv[2]);
	if (!handle) {
		fprintf(stderr, "lttng_create_handle failed\n");
		return 1;
	}
	if (strcmp(argv[1], "set") == 0)
		ret = lttng_trigger_set(handle, LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, action, NULL, 0);
	else
		ret = lttng_trigger_unset(handle, LTTNG_TRIGGER_TYPE_ONANYCOREDUMP, action, NULL, 0);
	report(argv[1], ret);
	if (ret)
		fprintf(stderr, "%s: %s\n", argv[1], lttng_strerror(ret));
	lttng_destroy_handle(handle);
	return ret ? 1 : 0;
}
