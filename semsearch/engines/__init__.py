"""Storage engines: where documents, passages, vectors and BM25 terms are kept and searched."""
