"""Exports of a checkpoint for use outside seqlab (the optional ``export`` extra)."""
