"""The composition root's REST routing (urls.py); the shared REST plumbing lives in core.api."""
