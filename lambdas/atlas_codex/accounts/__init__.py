"""Accounts: API keys, and the spend ledger with its budgets."""
