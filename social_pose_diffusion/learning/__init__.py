"""Training data from sessions and the training loop."""
