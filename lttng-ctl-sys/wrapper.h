/* The whole public API of liblttng-ctl 2.13. */
#include <lttng/lttng.h>
