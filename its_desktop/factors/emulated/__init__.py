"""Software stand-ins for hardware keys, for tests and demos: no secret is protected by them."""
