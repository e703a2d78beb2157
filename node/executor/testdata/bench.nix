# A trivial derivation, different for each n, for the build benchmark.
{ n }: derivation {
  name = "bench-${n}";
  system = "x86_64-linux";
  builder = "/bin/sh";
  args = [ "-c" "echo ${n} > $out" ];
}
