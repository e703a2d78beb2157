# A build that waits until the file gate exists on the host (the test shows
# its directory to builds as a sandbox path): used to stop a node in the
# middle of a build.
{ gate }:
derivation {
  name = "slow";
  system = "x86_64-linux";
  builder = "/bin/sh";
  args = [ "-c" "echo started; while [ ! -e ${gate} ]; do sleep 0.1; done; echo done > $out" ];
}
