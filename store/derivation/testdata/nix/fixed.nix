# Fixed-output derivations: flat and recursive, several hash algorithms.
with import ./common.nix;
{
  flat-sha256 = mk {
    name = "flat-sha256";
    args = [ "-c" "printf hi > $out" ];
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4";
  };
  flat-sha1 = mk {
    name = "flat-sha1";
    args = [ "-c" "printf hi > $out" ];
    outputHashAlgo = "sha1";
    outputHash = "c22b5f9178342609428d6f51b2c5af4c0bde6a42";
  };
  recursive-sha256 = mk {
    name = "recursive-sha256";
    args = [ "-c" "mkdir $out" ];
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = "0sjjj9z1dhilhpc8pq4154czrb79z9cm044jvn75kxcjv6v5l2m5";
  };
  recursive-sha512 = mk {
    name = "recursive-sha512";
    args = [ "-c" "mkdir $out" ];
    outputHashMode = "recursive";
    outputHashAlgo = "sha512";
    outputHash = "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
  };
}
