from ptycho_knobs.fastpath import main

main(prog_name="ptycho-knobs")
