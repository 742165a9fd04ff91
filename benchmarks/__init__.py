"""Benchmarks of the guidance tool and the scorer, each run as `python -m benchmarks.<name>`."""
