"""Benchmarks run by `make bench` (`python -m bench`): each `bench_*.py` owns one section of docs/BENCHMARKS.md."""
