"""Quark/gluon jet tagging with reasoning LLMs."""
