"""The benchmark harness: `make bench` (`python -m bench`). See BENCHMARKS.md."""
