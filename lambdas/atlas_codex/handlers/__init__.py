"""Thin Lambda entry points: each parses its event, calls one domain function, shapes a reply."""
