"""Label adoption: from retrieved English neighbours to pseudo-labels."""
