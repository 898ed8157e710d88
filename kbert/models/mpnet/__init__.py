"""MPNet: relative position bias shared across layers, RoBERTa-style positions, no token types."""
