"""The OAuth2 authorization server: Authlib grants and endpoints over our storage."""
