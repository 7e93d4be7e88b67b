"""Authentication and signing (DESIGN §10), shared by the server (`api/auth.py`) and the client package.

`keys`, `tokens` and `signing` are free of the server stack and the settings, so
the client package can use them; `policy` (startup rules) and `replay` (the
nonce cache) serve the server side.
"""
