"""Accounts: who may call the hub.

Owns the OAuth clients of partner systems with their tokens and scopes (`clients`), the
portal's users with their passwords, roles and single-use links (`users`), and the caller a
use case acts for (`callers`).
"""
