"""Data: tokenizers, text files, and batches."""
