"""A local emulator of io.net's IO Intelligence secrets API, for tests, demos and benchmarks."""
