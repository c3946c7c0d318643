"""The one scheduler process: publishes queued posts on their dates (python -m scheduler)."""
