"""Optimisers that use the log: every candidate they try is a logged run."""
