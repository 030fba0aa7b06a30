"""Rotation that really rotates: one module per rotator, all driven by ``engine`` through the
same four steps (create → set → test → finish, as AWS Secrets Manager's rotation does).

``base`` is the small plugin interface, ``registry`` names the rotators, ``due`` runs the
automatic ones that the schedule says are due. Importing this package loads no driver or SDK.
"""
