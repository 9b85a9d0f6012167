"""Presentation: pure functions from a dashboard snapshot to a screen or a page."""
