"""Accuracy measurements with established evaluators."""
