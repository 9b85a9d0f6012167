"""The audit database: where audit writes and replay reads."""
