"""Notifications that must not be lost: an outbox table written in the same transaction as
the change that causes them, and delivery through a pluggable sender (outbox.py)."""
