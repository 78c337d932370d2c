"""The paper's study: running every variant and seed, the archive of finished runs, Table I and its statistics."""
