"""`ptycho-knobs fix`: rewrite the drifts the audit finds, losslessly, with libcst.

The audit (fast, `ast`) finds; findings carry `Edit`s (what to change, at an exact range);
this package decides whether each edit is safe and turns it into text:

- `carriers`  which field of which real config class holds a knob (registry `configs` and
              `field:` sources), verified against the class's source (read statically)
- `prescreen` an `ast` look: edits where no config object can be in scope skip libcst
- `scope`     which config objects are in scope, and surely not None, at a call site (libcst
              ScopeProvider, QualifiedNameProvider, ParentNodeProvider); `flow` holds its
              control-flow helpers (dominating bindings, None guards)
- `literals`  a literal or a sequence rewritten in the old literal's style
- `engine`    per file: parse once, resolve every edit, apply them all, check the result compiles
- `output`    the unified diff, the atomic write with a hash check, the summary
- `sarif`     the same changes as SARIF `fixes`, for `audit --format sarif`
- `command`   the `fix` verb

libcst is imported only here (and by SARIF rendering when findings carry edits), never by
`--help`, `audit` or `generate`.
"""
