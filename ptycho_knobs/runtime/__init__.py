"""Runtime pieces of ptycho-knobs: the built-in workload that training runs by default."""
