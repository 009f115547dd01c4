"""Model registry (registry.yaml), verified downloads, and Ultralytics export tools.

The export tools (models.export) need the optional `export` extra; nothing in the edge
runtime imports them.
"""
