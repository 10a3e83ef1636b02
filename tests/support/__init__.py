"""Shared test support: random small requests and an exhaustive reference solver."""
