"""Encoders: text -> L2-normalised float32 vectors."""
