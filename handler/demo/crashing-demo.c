/*
 * The program `lttng-coredump demo` crashes: it traces what it does with
 * lttng-ust (events lttng_coredump_demo:step {step, what}), so that the
 * snapshot taken on its crash tells the story that led to it, then writes
 * through a NULL pointer.
 */
#define TRACEPOINT_DEFINE
#define TRACEPOINT_CREATE_PROBES
#include "crashing_demo_tp.h"

#include <stddef.h>
#include <sys/resource.h>

struct account {
	const char *owner;
	int balance;
};

static const char *const story[] = {
	"starting up",
	"loading 3 accounts",
	"account 1 loaded (owner alice)",
	"account 2 loaded (owner bob)",
	"account 3 has no owner record: left NULL",
	"paying interest on every account",
};

static const char *const paying[] = {
	"adding interest to account 1",
	"adding interest to account 2",
	"adding interest to account 3",
};

int main(void)
{
	/* The core is the point: a shell's `ulimit -c 0` must not suppress it. */
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct account *accounts[3] = { NULL, NULL, NULL };
	struct account alice = { "alice", 100 }, bob = { "bob", 50 };
	size_t i;

	if (setrlimit(RLIMIT_CORE, &unlimited) != 0) {
		struct rlimit current;

		if (getrlimit(RLIMIT_CORE, &current) == 0) {
			current.rlim_cur = current.rlim_max;
			setrlimit(RLIMIT_CORE, &current);
		}
	}
	accounts[0] = &alice;
	accounts[1] = &bob;
	for (i = 0; i < sizeof(story) / sizeof(story[0]); i++)
		tracepoint(lttng_coredump_demo, step, (int) i + 1, story[i]);

	for (i = 0; i < 3; i++) {
		tracepoint(lttng_coredump_demo, step, (int) (7 + i), paying[i]);
		/* Account 3 is NULL: this is the crash. */
		accounts[i]->balance += accounts[i]->balance / 100;
	}
	return 0;
}
