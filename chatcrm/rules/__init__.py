"""The rules of the model (docs/rules.md), each in one pure module named for it.

No database, no clock, no printing: the store, the service and the renderer import these,
and SQL that must agree with a rule is built from the definition here (or checked
against it by a test).
"""
