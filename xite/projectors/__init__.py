"""Projectors: a language subspace fitted on language-labeled embeddings."""
