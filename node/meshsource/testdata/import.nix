# A .drv closure with every kind of input a submitted graph carries: an input
# derivation, a source added by content (a path literal), and text sources
# (builtins.toFile), one referring to the other.
let
  helper = builtins.toFile "helper.sh" "echo helper";
  script = builtins.toFile "build.sh" ''
    . ${helper}
    mkdir -p $out
    cp $data $out/data
    cat $dep > $out/dep
  '';
  dep = derivation {
    name = "dep";
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "echo dep > $out" ];
  };
in derivation {
  name = "top";
  system = "x86_64-linux";
  builder = "/bin/sh";
  args = [ script ];
  data = ./data.txt;
  inherit dep;
  requiredSystemFeatures = [ "big-parallel" ];
}
