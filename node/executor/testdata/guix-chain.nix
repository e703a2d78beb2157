# The three derivations of chain.nix for guix-daemon, whose builds see only
# their inputs: the builder is busybox, a store item (BUSYBOX/bin/busybox,
# added under the name busybox, as Guix's add-to-store adds it), and nonce
# makes the derivations new in a store that outlives the test.
#   nix-instantiate guix-chain.nix --arg busybox /abs/dir --argstr nonce N
{ busybox, nonce }:
let
  bb = builtins.path { path = busybox; name = "busybox"; };
  mk = { script, ... } @ attrs: derivation ({
    system = "x86_64-linux";
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-c" script ];
    inherit nonce;
  } // builtins.removeAttrs attrs [ "script" ]);
  one = mk {
    name = "one";
    script = ''
      mkdir -p $out/bin $out/share
      printf '#!/bin/sh\necho one\n' > $out/bin/one
      chmod +x $out/bin/one
      ln -s ../bin/one $out/share/link
      echo "self: $out" > $out/share/self
      echo "one: built"
    '';
  };
  two = mk {
    name = "two";
    outputs = [ "out" "doc" ];
    script = ''
      mkdir -p $out $doc
      echo "uses ${one}/bin/one" > $out/uses
      echo "docs for two" > $doc/README
      echo "see $doc" > $out/see
      echo "two: built"
    '';
  };
in mk {
  name = "three";
  script = "cat ${two}/uses > $out; echo ${two.doc} >> $out; echo three: built";
}
