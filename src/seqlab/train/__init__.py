"""Training: the trainer, checkpoints and multi-process setup."""
