"""Step-by-step derivations and a derivation checker, over SymPy (``pip install 'chainrule[symbolic]'``).

``derive(name_or_expr)`` writes the derivation of a registered activation or loss, or of any
expression, one named rule per step, each step verified; ``check_derivation(path)`` grades a
derivation someone wrote (Markdown with LaTeX, or a LaTeX document) line by line.
"""
from chainrule.symbolic.derivations import derive
from chainrule.symbolic.steps import Derivation, Part, Step

__all__ = ["Derivation", "Part", "Step", "derive"]
