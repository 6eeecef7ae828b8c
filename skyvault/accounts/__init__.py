"""Accounts: who may sign in, with which programs, and how guessing is slowed down.

- ``model``: users, argon2 passwords, groups and their programs, API tokens, sessions, and
  the ``Requester`` an account stands for;
- ``throttle``: failed password sign-ins counted per account and address (429 past a limit);
- ``cli``: ``skyvault users ...``.

The package's own import loads nothing: its modules are named where they are used.
"""
