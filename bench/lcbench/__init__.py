"""The lttng-coredump benchmark harness (run it through bench/run).

Measures what a crash costs with our core_pattern handler against the
baselines a user would otherwise pick, all in one invocation, handlers
interleaved run by run, and prints one table.
"""
