"""Identity: accounts, professional and personal personas, tokens and signing keys."""
