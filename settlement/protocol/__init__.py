"""Rules every app shares: canonical encoding, hashing, signing, Merkle trees, amounts.

Pure Python. Nothing here imports Django, DRF, Channels, Celery, Redis, psycopg or web3;
an import-linter contract keeps it that way.
"""
