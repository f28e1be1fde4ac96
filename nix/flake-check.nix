# Evaluates the flake's outputs against stand-in inputs (nixpkgs and rust-overlay providing
# only what the flake uses) and returns, per system, what the tests check: which outputs
# exist, what they point at, and which pin file and channel the toolchain was made from.
#   nix-instantiate --eval --strict --json nix/flake-check.nix
let
  flake = import ../flake.nix;
  nixpkgs = {
    outPath = ./stand-in/nixpkgs;
    lib = import ./stand-in/lib.nix;
  };
  rust-overlay.overlays.default = final: prev: {
    rust-bin.fromRustupToolchainFile = file: {
      pname = "rust-toolchain";
      toolchainFile = baseNameOf (toString file);
      toolchainDir = baseNameOf (dirOf (toString file));
      channel = (builtins.fromTOML (builtins.readFile file)).toolchain.channel;
      components = (builtins.fromTOML (builtins.readFile file)).toolchain.components;
    };
  };
  self = { outPath = toString ../.; shortRev = "check"; };
  outputs = flake.outputs { inherit self nixpkgs rust-overlay; };
  names = builtins.attrNames;
  summary = system: {
    packages = names outputs.packages.${system};
    apps = names outputs.apps.${system};
    app = outputs.apps.${system}.default.program;
    devShells = names outputs.devShells.${system};
    checks = names outputs.checks.${system};
    checkRunsTests = outputs.checks.${system}.runner-unit-tests.doCheck;
    shell = {
      hermetic = outputs.devShells.${system}.default.RUNNER_HERMETIC;
      crossLinker = outputs.devShells.${system}.default.CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER or null;
      qemuLibraries = outputs.devShells.${system}.default.QEMU_LD_PREFIX or null;
      packages = map (p: p.pname) outputs.devShells.${system}.default.packages;
    };
    toolchain = {
      inherit (outputs.packages.${system}.default.builtWith) toolchainFile toolchainDir channel components;
    };
    image =
      if outputs.packages.${system} ? image then {
        entrypoint = outputs.packages.${system}.image.config.Entrypoint;
        workingDir = outputs.packages.${system}.image.config.WorkingDir;
      } else null;
  };
in
{
  systems = names outputs.packages;
  pinnedTools = outputs.lib.pinnedTools;
  perSystem = builtins.listToAttrs (map (system: { name = system; value = summary system; }) (names outputs.packages));
}
