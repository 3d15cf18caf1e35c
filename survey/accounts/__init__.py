"""Staff accounts: users and roles, API tokens, login sessions, and the audit log of staff actions."""
