"""Feed: posts, comments, reactions, follows and timelines, kept apart by context."""
