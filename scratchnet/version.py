"""scratchnet's version, in a module of its own: code the package imports (saving, export)
reads it here rather than from ``scratchnet`` itself, which would be an import circle."""
__version__ = "0.1.0"
