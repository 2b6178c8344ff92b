"""Passage vectors: exact rows in numpy files and an approximate FAISS index sized to fit."""
