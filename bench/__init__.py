"""Benchmarks of the hub (not part of the installed package); see bench/README.md."""
