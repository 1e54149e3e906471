"""Layerloom desktop app (Qt) and command line. Nothing imports builder; it imports the rest."""
