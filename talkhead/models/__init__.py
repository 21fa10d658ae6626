"""Learned models, one per file, named after their role."""
