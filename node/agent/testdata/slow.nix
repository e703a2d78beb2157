# A build that waits until the file gate exists on the host (the builtin
# executor's sandbox shows the host's file system, read-only): used to stop a
# node in the middle of a build.
{ gate }:
derivation {
  name = "slow";
  system = "x86_64-linux";
  builder = "/bin/sh";
  args = [ "-c" "echo started; while [ ! -e ${gate} ]; do sleep 0.1; done; echo done > $out" ];
}
