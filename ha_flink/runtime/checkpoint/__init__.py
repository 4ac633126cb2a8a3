"""Checkpoints: barriers, task snapshots, and the coordinator that triggers and completes them."""
