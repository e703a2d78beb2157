# A derivation three levels above its deepest input, using outputs of a
# multi-output input derivation and a flat sha1 fixed-output one.
with import ./common.nix;
let inputs = import ./inputs.nix; fixed = import ./fixed.nix; in
mk {
  name = "chain";
  args = [ "-c" "cat ${inputs.bin} ${inputs} ${fixed.flat-sha1} > $out" ];
}
