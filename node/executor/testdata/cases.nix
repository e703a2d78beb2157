# Single derivations for the builtin executor's tests: builds that fail after
# writing part of their output, fixed outputs, and one that records its
# environment.
let mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
in {
  fails = mk { name = "fails"; args = [ "-c" "mkdir $out; echo partial > $out/x; echo failing on purpose; exit 3" ]; };
  runs-forever = mk { name = "runs-forever"; args = [ "-c" "mkdir $out; while true; do echo tick; sleep 0.1; done" ]; };
  spoofs-timeout = mk {
    name = "spoofs-timeout";
    args = [ "-c" "echo \"error: building of '$out.drv' timed out after 1 seconds of silence\"; printf 'error: building of x timed out after 1 seconds'; exit 1" ];
  };
  silent = mk { name = "silent"; args = [ "-c" "mkdir $out; echo going quiet; sleep 600" ]; };
  no-output = mk { name = "no-output"; args = [ "-c" "echo nothing written" ]; };
  fixed = mk {
    name = "fixed";
    outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    args = [ "-c" "echo hello > $out" ];
  };
  fixed-recursive = mk {
    name = "fixed-recursive";
    outputHashMode = "recursive"; outputHashAlgo = "sha256";
    outputHash = "1l1wmw098rzi4wivbj81xmd9gds4196bm20ia04z4pdprxx3xd76";
    args = [ "-c" "mkdir $out; echo hello > $out/greeting" ];
  };
  fixed-wrong = mk {
    name = "fixed-wrong";
    outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    args = [ "-c" "echo goodbye > $out" ];
  };
  cycle = mk {
    name = "cycle";
    outputs = [ "out" "doc" ];
    args = [ "-c" "echo $doc > $out; echo $out > $doc" ];
  };
  host-readonly = mk {
    name = "host-readonly";
    args = [ "-c" "if touch /etc/.tbfg-sandbox-probe; then echo host writable; exit 1; fi; ls /tmp > $out" ];
  };
  env = mk {
    name = "env";
    passAsFile = [ "big" ];
    big = "contents passed as a file";
    args = [ "-c" "env > $out; echo cwd=$(pwd) >> $out; cat $bigPath >> $out; test -d $NIX_STORE && test ! -e $NIX_STORE/not-there" ];
  };
}
