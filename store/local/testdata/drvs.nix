# Two derivations, the second using the first's output, for the tests that
# copy .drv files from a real Nix store.
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  first = mk { name = "first"; args = [ "-c" "echo first > $out" ]; };
in mk { name = "second"; args = [ "-c" "echo ${first} > $out" ]; }
