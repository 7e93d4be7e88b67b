"""Performance measurements of the generated component, each against a baseline measured in
the same run; all of them, as one table of ratios: `python -m benchmarks [--quick]` from the
repository root (one alone: `python -m benchmarks.http_stack`). See `benchmarks/table.py`."""
