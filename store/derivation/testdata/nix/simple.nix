# One output, no inputs.
with import ./common.nix;
mk { name = "simple"; args = [ "-c" "echo simple > $out" ]; }
