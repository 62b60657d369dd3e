"""`ptycho-knobs fix`: rewrite the drifts the audit finds, losslessly, with libcst.

The audit (fast, `ast`) finds; findings carry `Edit`s (what to change, at an exact range);
this package decides whether each edit is safe and turns it into text:

- `carriers`  which field of which real config class holds a knob (registry `configs` and
              `field:` sources), verified against the class's source (read statically)
- `scope`     which config objects are in scope, and surely not None, at a call site (libcst
              ScopeProvider, QualifiedNameProvider, ParentNodeProvider)
- `literals`  a literal or a sequence rewritten in the old literal's style
- `engine`    per file: parse once, resolve every edit, apply them all, check the result compiles
- `output`    the unified diff, the atomic write with a hash check, the summary

libcst is imported only here (and by SARIF rendering when findings carry edits), never by
`--help`, `audit` or `generate`.
"""
