"""Moderation: reports, the review queue, actions, notices and appeals (decision 0032)."""
