"""Optimisers that use the log: every candidate they try is logged with its score."""
