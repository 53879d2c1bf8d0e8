"""Persistent state (catalog, Annoy indexes): no Qt here."""
