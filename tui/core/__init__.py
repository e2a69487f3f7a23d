"""The headless core: never imports textual (tests/unit/test_layering.py checks)."""
