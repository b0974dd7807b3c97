"""Rules: pure functions from observed state to Findings. No I/O, no clocks, no pytest."""
