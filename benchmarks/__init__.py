"""Performance measurements of the generated component, each against a baseline;
run from the repository root: `python -m benchmarks.http_stack`."""
