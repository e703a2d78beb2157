# Three derivations, each referring to the one before it, built by both Nix and
# the builtin executor. /bin/sh is busybox in both sandboxes, so mkdir, ln and
# cat are its applets. The middle one has two outputs, one referring to the other.
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  one = mk {
    name = "one";
    args = [ "-c" ''
      mkdir -p $out/bin $out/share
      printf '#!/bin/sh\necho one\n' > $out/bin/one
      chmod +x $out/bin/one
      ln -s ../bin/one $out/share/link
      echo "self: $out" > $out/share/self
    '' ];
  };
  two = mk {
    name = "two";
    outputs = [ "out" "doc" ];
    args = [ "-c" ''
      mkdir -p $out $doc
      echo "uses ${one}/bin/one" > $out/uses
      echo "docs for two" > $doc/README
      echo "see $doc" > $out/see
    '' ];
  };
in mk {
  name = "three";
  args = [ "-c" "cat ${two}/uses > $out; echo ${two.doc} >> $out" ];
}
