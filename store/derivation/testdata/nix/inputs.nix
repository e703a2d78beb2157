# Input derivations (regular, multi-output, fixed-output), input sources and
# strings that need every escape of the ATerm format.
with import ./common.nix;
let
  multi = import ./multi-output.nix;
  fixed = import ./fixed.nix;
  lib = mk { name = "lib"; args = [ "-c" "echo lib > $out" ]; };
in
mk {
  name = "inputs";
  outputs = [ "out" "bin" ];
  args = [ "-c" "echo \"quoted\" 'back\\slash' > $out; echo ${lib} ${multi.dev} ${multi} > $bin" "tab\there" "cr\rlf\n" ];
  src = ./source.txt;
  script = builtins.toFile "script.sh" "cat ${./source.txt}\n";
  fixed = fixed.flat-sha256;
  rec256 = fixed.recursive-sha256;
  weird = "a\"b\\c\nd\re\tf \${x} ünïcödé";
  empty = "";
}
