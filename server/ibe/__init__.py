"""IRSA-compatible interfaces: the IBE image search and file tree (search.py, data.py)."""
