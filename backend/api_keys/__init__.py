"""Personal API keys: created, listed and revoked by their users; revoked by tenant admins."""
