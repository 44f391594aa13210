"""Retrievers: top-k source rows by cosine for each query row."""
