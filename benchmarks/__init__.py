"""Benchmarks: scripts that print Markdown tables measured on this machine (``python benchmarks/NAME.py``).

A regular package, so ``benchmarks.NAME`` resolves here even when an installed distribution ships a top-level
``benchmarks`` package of its own (opacus 1.6 does), which would otherwise shadow this folder.
"""
