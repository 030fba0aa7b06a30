"""The agent: serves secrets from the unlocked vault to local processes over a Unix socket.

``protocol`` (wire format, socket location, errors; light enough for every bot to import),
``peer`` (who is on the other end of the socket), ``grants`` (who may read what, for how long),
``server`` (the single-threaded socket loop), ``run`` (``its-vault run``: references, masking,
secret files). The protocol is documented in docs/agent-protocol.md.

This package imports nothing at import time: bots import ``its_desktop.client``, which needs
``protocol`` only.
"""
