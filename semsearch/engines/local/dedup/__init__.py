"""Near-duplicate passages: MinHash signatures, banded candidates and duplicate groups."""
