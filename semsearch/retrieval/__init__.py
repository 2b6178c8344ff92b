"""Searching: filters, dense, lexical and hybrid ranking, fusion, duplicate collapse, reranking."""
