from ptycho_knobs.cli import main

main(prog_name="ptycho-knobs")
