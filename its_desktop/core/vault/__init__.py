"""The vault file: header, key slots, sealed body, atomic storage, and the Vault API."""
