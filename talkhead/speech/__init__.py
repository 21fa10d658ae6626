"""Speech analysis for lip sync: phone timings, acoustic features, visemes."""
