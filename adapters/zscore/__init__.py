"""Rolling z-score engines: Rust (native_core) and the pure-Python reference, chosen by setting."""
