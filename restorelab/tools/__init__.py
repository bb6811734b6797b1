"""Developer tools: the documentation screenshots, the training pipeline of the shipped models."""
