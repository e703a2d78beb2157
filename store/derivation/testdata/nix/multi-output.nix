# Three outputs; each gets its own path and environment variable.
with import ./common.nix;
mk {
  name = "multi";
  outputs = [ "out" "dev" "doc" ];
  args = [ "-c" "echo > $out; echo > $dev; echo > $doc" ];
}
