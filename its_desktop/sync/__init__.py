"""Sync a vault folder with the secret stores that already run at scale.

``engine`` is the pure three-way comparison (local, the base both sides last agreed on, remote)
that makes a plan; ``payload`` is what a secret looks like on a remote; ``remotes`` keeps the
remote definitions in the vault's settings; ``backends`` is the small interface a store
implements, with one module per store (``openbao``, ``aws``) that alone imports its SDK;
``syncer`` lists, plans and applies with bounded concurrency, saving in batches.

Importing this package loads no SDK: ``its-vault get`` stays fast.
"""
