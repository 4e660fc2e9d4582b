"""Unblur's damage detector for old-photo repair (see net.py, damage.py, train.py)."""
