"""Identity and OAuth2: users, passwords, the token endpoint, revocation, introspection."""
