"""The extraction engine: strategies behind one entry point (see interface.py)."""
