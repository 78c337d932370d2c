"""Architecture search: one-shot search and derivation, regularized evolution and its baseline."""
