# Derivations that try to get out of the builtin executor's sandbox, for
# TestSandboxProbes. Each attempt writes a line to $out: "escaped: WHAT" if
# it worked, "denied: WHAT" if not, or what it saw, from which the test
# reads the verdict; errors go to the build log. /bin/sh is busybox; the host's /usr and /lib are shown
# read-only, so a probe has perl and the host's tools too.
# The mode tells apart the derivations built in each sandbox of the test.
# hostPid is a process of the host's PID namespace, for the chroot probe.
{ server ? "198.18.0.1:8080", buildRoot ? "/nonexistent", hash ? "", wrongHash ? "", mode ? "", hostPid ? "1" }:
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; probeMode = mode; } // attrs);
  sh = name: script: mk { inherit name; args = [ "-c" script ]; };
  try = what: cmd: ''
    if ${cmd}; then echo "escaped: ${what}" >> $out; else echo "denied: ${what}" >> $out; fi
  '';
  # An HTTP/1.0 request for the served file, over busybox's nc.
  get = "printf 'GET /file HTTP/1.0\\r\\n\\r\\n' | nc -w 10 ${builtins.replaceStrings [ ":" ] [ " " ] server}";
  victim = sh "probe-victim" "mkdir $out; echo original > $out/data; chmod 644 $out/data";
  download = outputHash: mk {
    name = "probe-download";
    outputHashMode = "flat"; outputHashAlgo = "sha256"; inherit outputHash;
    # busybox's static wget crashes with Debian's nsswitch.conf, which
    # fixed-output builds see: plain HTTP/1.0 over nc, headers cut off.
    args = [ "-c" ''
      cr=$(printf '\r')
      ${get} | sed "1,/^$cr\$/d" > $out
    '' ];
  };
in {
  uid-map = sh "probe-uid-map" "cat /proc/self/uid_map > $out";
  mknod = sh "probe-mknod" (try "mknod of /dev/null's device" "mknod /tmp/probe-null c 1 3");
  mount = sh "probe-mount" (try "mount of a tmpfs" "mkdir /tmp/m && mount -t tmpfs probe /tmp/m");
  net-dev = sh "probe-net-dev" "cat /proc/net/dev > $out";
  tcp = sh "probe-tcp" (try "HTTP request to ${server}" "${get} | grep -q 'fixed output'");
  inherit victim;
  write-input = sh "probe-write-input" (
    try "append to an input" "echo tampered >> ${victim}/data" +
    try "create a file in an input" "touch ${victim}/new" +
    try "remove a file of an input" "rm ${victim}/data" +
    try "chmod an input" "chmod 666 ${victim}");
  # Writes where the store's other items live; only the outputs may appear.
  write-store = sh "probe-write-store" ''
    touch $NIX_STORE/probe-evil 2>/dev/null
    mkdir $NIX_STORE/00000000000000000000000000000000-probe-evil 2>/dev/null
    echo done > $out
  '';
  # Holds a secret in its build directory until cancelled.
  secret = sh "probe-secret" "echo tbfg-probe-secret > secret; echo ready; sleep 600";
  other-build = sh "probe-other-build" ''
    echo ls: ${buildRoot}/* > $out
    cat ${buildRoot}/build-probe-secret-*/top/secret >> $out || true
  '';
  # /tmp/suid is a setuid-root copy of the test binary, which prints its
  # effective uid when TBFG_PROBE_SUID is set.
  setuid = mk {
    name = "probe-setuid"; TBFG_PROBE_SUID = "1";
    args = [ "-c" "/tmp/suid > $out 2>&1 || echo failed >> $out" ];
  };
  # How many processes can it start? The shell that forks them may die
  # when a fork fails; the count is taken outside it, without forking.
  nproc = sh "probe-nproc" ''
    ( i=0; while [ $i -lt 200 ]; do sleep 600 & i=$((i+1)); done ) 2>/dev/null
    set -- /proc/[0-9]*
    echo $# > $out
  '';
  fork-bomb = sh "probe-fork-bomb" "bomb() { bomb | bomb & }; bomb; echo bombing; exec sleep 600";
  # Leaves processes behind, daemonised; they sleep 61737 seconds, which
  # the test looks for afterwards.
  background = sh "probe-background" ''
    setsid sleep 61737 &
    ( sleep 61737 & ) &
    echo started > $out
  '';
  # Leaves its root the classic way (chroot into a subdirectory, then climb
  # above it), and checks that it sees the host's processes.
  chroot-escape = sh "probe-chroot-escape" (try "climb out of the root with chroot"
    "/usr/bin/perl -e 'mkdir q{/tmp/e}; chroot q{/tmp/e} or exit 1; chdir q{..} for 1..64; chroot q{.} or exit 1; exit(-e q{/proc/${hostPid}} ? 0 : 1)'");
  download = download hash;
  download-wrong = download wrongHash;
}
