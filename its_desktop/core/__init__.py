"""The vault core: format, crypto, secrets, audit. Imports no Qt and no cloud SDK."""
