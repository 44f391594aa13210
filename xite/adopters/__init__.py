"""Label adoption: from retrieved English neighbours to pseudo-labels (DESIGN §1.3)."""
