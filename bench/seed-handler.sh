#!/bin/sh
# Baseline "the seed's approach" (shared/seeds/000_9b63f431ba0804a8.txt,
# written from its description): a core_pattern pipe handler that saves the
# core from stdin with cat, THEN, if a root session daemon is running,
# records a snapshot of the session with the lttng command-line tool.
#
#   |/path/seed-handler.sh CORE_DIR SESSION %p
#
# For the benchmark only, it then writes "REALTIME_NS EXIT_CODE" to
# CORE_DIR/snapshot-done.PID: the moment `lttng snapshot record` returned.
#
# The kernel starts a pipe handler with an empty environment.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
export PATH HOME

core_dir=$1
session=$2
pid=$3

cat > "$core_dir/core.$pid"

if [ -S /var/run/lttng/client-lttng-sessiond ]; then
	lttng snapshot record -s "$session" > /dev/null 2>&1
	status=$?
	echo "$(date +%s%N) $status" > "$core_dir/snapshot-done.$pid"
fi
