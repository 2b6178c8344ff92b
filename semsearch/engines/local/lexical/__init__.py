"""BM25 over passage terms: the score matrix, term positions and their saved arrays."""
