"""Models shipped with melodia as package data: ``piano.pt`` (see README.md here for its recipe).

Load them by name: ``melodia.generate("piano")`` or ``melodia.generation.load_model("piano")``.
"""
