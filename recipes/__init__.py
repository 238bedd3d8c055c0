"""Offline training recipes: data generators and configs that reproduce MedAny's projectors.

Each recipe folder holds ``make_data.py`` (``python -m recipes.<name>.make_data OUT``),
``config.json`` (the full run) and ``config.ci.json`` (a tiny smoke version);
see ``recipes/README.md``.
"""
