"""``make bench``: the feed's timeline and posting measured with a real load generator."""
