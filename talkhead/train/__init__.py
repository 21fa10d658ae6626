"""Training for the learned parts; run by hand, results shipped in weights/."""
