"""Notifications: WebSocket status pushes and signed webhooks."""
