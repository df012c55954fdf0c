"""Personalization: style spaces, preference models, profiles, and learning a user's style."""
