"""Image recipe: pydicom's real test scans -> EfficientNet-Lite0 -> mlp2x_gelu -> SmolLM2."""
