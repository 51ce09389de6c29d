"""Records: the records copy, retention schedules, legal holds and exports (decision 0033)."""
