"""The rights of the people whose data this is: a tenant's export, an account's export and its
erasure (GDPR Art. 17 and 20)."""
