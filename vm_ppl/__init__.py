"""vm_ppl: placeholder while modules land (full __init__ in progress)."""
