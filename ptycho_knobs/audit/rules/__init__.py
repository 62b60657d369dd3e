"""One module per audit rule; `ptycho_knobs.audit.rule.all_rules` finds them all."""
