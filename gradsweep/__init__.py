"""gradsweep: GradNorm's adaptive task weights against an exhaustive static-weight search."""

__version__ = "0.1.0"
