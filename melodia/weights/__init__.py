"""Models shipped with melodia as package data: ``piano.pt`` and ``band.pt`` (see README.md here for its recipe).

Load them by name: ``melodia.generate("piano")`` or ``melodia.load("piano")``.
"""
