"""The engine: no Qt here, so the CLI, benchmarks and most tests run headless."""
