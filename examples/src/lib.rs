//! Runnable examples and benchmarks.
