# A small graph built across two nodes: b uses a's output and a builder
# script added as a source, c (two outputs) uses b, bad fails on purpose and
# after-bad depends on it. /bin/sh is busybox in every sandbox.
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  script = builtins.toFile "make-b.sh" ''
    mkdir -p $out
    cat $a/greeting > $out/copy
    echo "built from $a" > $out/from
  '';
  a = mk {
    name = "a";
    args = [ "-c" "mkdir -p $out; echo hello > $out/greeting; echo building a" ];
  };
  b = mk { name = "b"; inherit a; args = [ script ]; };
  c = mk {
    name = "c";
    outputs = [ "out" "doc" ];
    args = [ "-c" "mkdir -p $doc; cat ${b}/copy > $out; echo ${b} > $doc/uses" ];
  };
  bad = mk {
    name = "bad";
    inherit a;
    args = [ "-c" "echo failing on purpose; exit 1" ];
  };
  after-bad = mk { name = "after-bad"; args = [ "-c" "cat ${bad} > $out" ]; };
in { inherit a b c bad after-bad; }
