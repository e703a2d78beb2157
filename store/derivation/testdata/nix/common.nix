# Shared helpers for the derivations the tests instantiate with Nix 2.8.
{
  mk = attrs: derivation ({
    system = "x86_64-linux";
    builder = "/bin/sh";
  } // attrs);
}
