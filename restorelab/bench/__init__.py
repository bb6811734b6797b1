"""Benchmarks: commands that print a table and write it to BENCHMARKS.md (not tests)."""
