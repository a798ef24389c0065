#!/bin/sh
# Baseline "pipe to cat": the floor of any core_pattern pipe handler that
# saves the core. Copies the core from stdin to a file, nothing else.
#
#   |/path/cat-handler.sh CORE_DIR %p
exec /bin/cat > "$1/core.$2"
