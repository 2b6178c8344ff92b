"""Answering: cited answers made of exact quotes from the retrieved passages, or an abstention."""
