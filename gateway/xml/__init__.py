"""XML handling: the safe parser for untrusted input and schema validation.

:mod:`gateway.xml.safe` parses bytes from outside without DTDs, entities or
network access; :mod:`gateway.xml.validation` checks parsed documents against
the project's own eCH XSDs (``schemas/`` at the repository root).
"""
