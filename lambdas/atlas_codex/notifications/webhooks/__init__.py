"""Signed webhooks per the Standard Webhooks specification."""
