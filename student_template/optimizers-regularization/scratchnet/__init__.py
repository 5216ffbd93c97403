"""scratchnet: neural networks in NumPy, written from scratch.

The package grows over the course. Each assignment's handout lists the
modules you complete in it; the other modules are provided: data.py
(datasets), gradcheck.py (numerical gradients), plots.py (figures), the
command-line trainers, and the modules you completed in earlier assignments.
"""
